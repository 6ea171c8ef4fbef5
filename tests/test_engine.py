"""The engine on a real (untrained, ONNX) fixture bundle and real landmark clips from the sample."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from fixtures.bundle_factory import build_fixture_bundle

from signseek.engine import Engine, InputError, MicroBatcher, ReferenceSet
from signseek.engine.gates import hand_frames
from signseek.features import prepare_sequence
from signseek.landmarks.layouts import canonical_to_flat
from signseek.landmarks.schema import LEFT_HAND, RIGHT_HAND
from signseek.settings import Settings


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return build_fixture_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def engine(fx):
    return Engine.from_bundle(fx.directory, _env_file=None)


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def engine_with(engine, references=None, **values) -> Engine:
    return Engine.from_parts(engine.encoder, engine.stats, engine.feature_config,
                             references or engine.references, settings(**values),
                             idle_labels=engine.idle_labels, classifiers=engine.classifiers)


def clip_of(fx, label, with_hands=True):
    for points, y in zip(fx.reference_points, fx.reference_labels, strict=True):
        if y == label and (hand_frames(points) > 0) == with_hands:
            return points
    raise LookupError(label)


# ------------------------------------------------------------------ acceptance and gates


def test_a_reference_clip_is_recognised_as_itself(engine, fx):
    result = engine.recognize(clip_of(fx, "hello"))
    assert result.accepted and result.rejection_reason == "none"
    assert result.label == "hello" and result.candidates[0].label == "hello"
    top = result.candidates[0]
    assert top.raw_similarity == pytest.approx(1.0, abs=1e-5)
    # Reference sequences are stored as float16 (bundle.write_reference_files): the clip's DTW
    # distance to its own stored copy is that rounding, far below another sign's (~0.6).
    assert top.dtw_distance == pytest.approx(0.0, abs=2e-3) and top.dtw_score == pytest.approx(1.0, abs=5e-3)
    assert top.similarity == pytest.approx(1.0, abs=2e-3)
    assert 0 < result.confidence <= 1 and result.confidence == top.confidence
    assert {"prepare", "embed", "search", "dtw", "decide", "total"} <= set(result.timings_ms)
    assert result.model == "encoder" and result.backend == "onnxruntime-cpu"
    assert result.to_dict()["candidates"][0]["label"] == "hello"


def test_no_hands_is_no_sign(engine, fx):
    points = clip_of(fx, "hello").copy()
    points[:, LEFT_HAND] = np.nan
    points[:, RIGHT_HAND] = np.nan
    result = engine.recognize(points)
    assert not result.accepted and result.rejection_reason == "no_hands" and result.label is None
    assert result.candidates == []


def test_a_frozen_clip_is_low_motion(engine, fx):
    points = clip_of(fx, "hello")
    frozen = np.repeat(points[5:6], len(points), axis=0)
    result = engine.recognize(frozen)
    assert result.rejection_reason == "low_motion" and result.motion < engine.settings.MOTION_FLOOR


def test_static_letters_pass_the_motion_gate(engine, fx):
    # Static handshapes barely move: hand presence, not motion, must be the idle signal.
    for label in ("a", "s", "b"):
        result = engine.recognize(clip_of(fx, label))
        assert result.rejection_reason != "low_motion", (label, result.motion)


def test_an_idle_clip_with_hands_is_no_sign(engine, fx):
    result = engine.recognize(clip_of(fx, "-", with_hands=True))
    assert result.rejection_reason == "idle" and not result.accepted
    assert all(c.label != "-" for c in result.candidates)
    assert result.idle_similarity == pytest.approx(1.0, abs=2e-3)  # float16-stored reference (see above)


def test_unknown_sign(engine, fx):
    strict = engine_with(engine, SIM_THRESHOLD=0.9999, PROTOTYPE_CHECK=False)
    queries = [(p, y) for p, y in zip(fx.queries, fx.query_labels, strict=True) if y != "-"]
    reasons = {strict.recognize(p).rejection_reason for p, _ in queries}
    assert "unknown_sign" in reasons and "none" not in reasons


def test_ambiguous_margin_between_two_labels_with_the_same_clip(engine, fx):
    clip = clip_of(fx, "hello")
    feats = prepare_sequence(clip, engine.feature_config)
    refs = ReferenceSet.from_sequences(engine, [feats, feats, prepare_sequence(clip_of(fx, "tea"), engine.feature_config)],
                                       ["hello", "hallo", "tea"])
    result = engine_with(engine, refs).recognize(clip)
    assert result.rejection_reason == "ambiguous_margin"
    assert {c.label for c in result.candidates[:2]} == {"hello", "hallo"} and result.margin == pytest.approx(0, abs=1e-6)


def test_prototype_disagreement(engine, fx):
    cfg = engine.feature_config
    query = prepare_sequence(clip_of(fx, "hello"), cfg)
    rng = np.random.default_rng(0)
    far = [prepare_sequence(clip_of(fx, y), cfg) for y in ("tea", "coffee", "water")]
    near = [(query + rng.normal(0, 0.1, query.shape) * engine.stats.std).astype(np.float32) for _ in range(3)]
    refs = ReferenceSet.from_sequences(engine, [query, *far, *near], ["A"] * 4 + ["B"] * 3)
    result = engine_with(engine, refs, SIM_MARGIN=0.0, SIM_THRESHOLD=0.0, DTW_ENABLED=False).recognize(clip_of(fx, "hello"))
    assert result.candidates[0].label == "A" and result.prototype_label == "B"
    assert result.rejection_reason == "prototype_disagreement"
    assert result.candidates[0].prototype_similarity < result.candidates[1].prototype_similarity


# ------------------------------------------------------------------ DTW re-rank


def test_dtw_rerank_changes_the_order_when_it_should(engine, fx):
    # The fixture encoder averages over time: a time-reversed clip has the same embedding (cosine 1)
    # although it is a different movement; DTW sees that and ranks the near-copy first.
    query = prepare_sequence(clip_of(fx, "hello"), engine.feature_config)
    noise = np.random.default_rng(1).normal(0, 0.1, query.shape) * engine.stats.std  # 0.1 std per column
    noisy = (query + noise).astype(np.float32)
    refs = ReferenceSet.from_sequences(engine, [query[::-1].copy(), noisy], ["reversed", "same"])
    eng = engine_with(engine, refs, DTW_WEIGHT=0.5)
    assert eng.rank_labels([query], mode="encoder")[0] == ["reversed", "same"]
    assert eng.rank_labels([query], mode="full")[0] == ["same", "reversed"]
    full = eng.recognize(clip_of(fx, "hello"), top_k=2)
    by_label = {c.label: c for c in full.candidates}
    assert by_label["reversed"].raw_similarity > by_label["same"].raw_similarity
    assert by_label["reversed"].dtw_distance > by_label["same"].dtw_distance
    assert full.candidates[0].label == "same"


def test_dtw_backends_agree_on_real_sequences(engine, fx):
    from signseek.engine import dtw

    seqs = [engine.stats.apply(prepare_sequence(p, engine.feature_config)) for p in fx.queries[:6]]
    rng = np.random.default_rng(0)
    seqs.append(rng.normal(size=(17, seqs[0].shape[1])))  # unequal length too
    for a in seqs[:3]:
        d_dtai = dtw.distances(a, seqs, "dtaidistance", window=None)
        d_fast = dtw.distances(a, seqs, "fastdtw", window=None)
        np.testing.assert_allclose(d_dtai, d_fast, rtol=1e-6, atol=1e-9)
        # With a constraint both only ever lengthen the best path's cost.
        assert np.all(dtw.distances(a, seqs, "dtaidistance", window=2) >= d_dtai - 1e-9)
        assert np.all(dtw.distances(a, seqs, "fastdtw", window=2) >= d_dtai - 1e-9)
    with pytest.raises(dtw.DTWError, match="unknown DTW backend"):
        dtw.raw_distance(seqs[0], seqs[1], "nope")


def test_fastdtw_pipeline_gives_the_same_ranking_without_window(engine, fx):
    a = engine_with(engine, DTW_BACKEND="dtaidistance", DTW_WINDOW=None)
    b = engine_with(engine, DTW_BACKEND="fastdtw", DTW_WINDOW=None)
    for points in fx.queries[1:6]:
        ra, rb = a.recognize(points), b.recognize(points)
        assert [c.label for c in ra.candidates] == [c.label for c in rb.candidates]
        assert [c.dtw_distance for c in ra.candidates] == pytest.approx([c.dtw_distance for c in rb.candidates])


# ------------------------------------------------------------------ inputs, batch paths, evaluation API


def test_flat_layouts_give_the_same_result(engine, fx):
    clip = clip_of(fx, "tea")
    canonical = engine.recognize(clip)
    flat = engine.recognize(canonical_to_flat(clip, "pose_hands"))
    assert [c.label for c in flat.candidates] == [c.label for c in canonical.candidates]
    with pytest.raises(InputError, match="values"):
        engine.recognize(np.zeros((10, 99), dtype=np.float32))
    with pytest.raises(InputError, match="shape"):
        engine.recognize(np.zeros((10, 5, 5, 5), dtype=np.float32))


def test_recognize_many_matches_recognize(engine, fx):
    clips = fx.queries[:8]
    many = engine.recognize_many(clips)
    for clip, batch_result in zip(clips, many, strict=True):
        single = engine.recognize(clip)
        assert batch_result.rejection_reason == single.rejection_reason
        assert [c.label for c in batch_result.candidates] == [c.label for c in single.candidates]
        for x, y in zip(batch_result.candidates, single.candidates, strict=True):
            assert x.similarity == pytest.approx(y.similarity, abs=1e-5)


def test_encoder_only_mode_has_no_dtw_and_no_gates(engine, fx):
    result = engine.recognize(clip_of(fx, "hello"), mode="encoder")
    assert result.mode == "encoder" and all(c.dtw_distance is None for c in result.candidates)
    assert all(c.similarity == c.raw_similarity for c in result.candidates)


def test_from_parts_and_rank_labels_score_retrieval(engine, fx):
    cfg = engine.feature_config
    refs = ReferenceSet.from_sequences(engine.encoder, [prepare_sequence(p, cfg) for p in fx.reference_points],
                                       fx.reference_labels, stats=engine.stats)
    eng = Engine.from_parts(engine.encoder, engine.stats, cfg, refs, settings())
    queries = [prepare_sequence(p, cfg) for p in fx.queries]
    ranked = eng.rank_labels(queries, mode="encoder")
    assert all(len(r) == len(set(fx.reference_labels)) for r in ranked)
    top1 = np.mean([r[0] == y for r, y in zip(ranked, fx.query_labels, strict=True)])
    assert top1 > 0.3  # an untrained projection still beats chance (1/33) on real clips
    top5 = eng.rank_labels(queries, mode="full", k=5, include_idle=False)
    assert all(len(r) == 5 and "-" not in r for r in top5)


def test_hands_only_input_goes_to_the_fingerspelling_classifier(engine, fx):
    results = [engine.recognize(p) for p in fx.hands_queries[:20]]
    answered = [r for r in results if r.rejection_reason != "no_hands"]
    assert answered and all(r.model == "fingerspelling" for r in answered)
    hits = sum(r.candidates[0].label == y for r, y in zip(results, fx.hands_labels[:20], strict=True) if r.candidates)
    assert hits >= 5


def test_without_a_classifier_hands_only_input_uses_the_encoder(engine, fx):
    eng = Engine.from_parts(engine.encoder, engine.stats, engine.feature_config, engine.references, settings())
    result = next(r for r in map(eng.recognize, fx.hands_queries) if r.candidates)
    assert result.model == "encoder"


# ------------------------------------------------------------------ micro-batching


def test_micro_batcher_merges_announced_callers_into_one_call():
    calls = []

    def fn(items):
        calls.append(list(items))
        return [x * 10 for x in items]

    batcher = MicroBatcher(fn, max_size=16, max_wait_ms=1000)
    barrier = threading.Barrier(6)
    results = {}

    def worker(i):
        with batcher.expect() as ticket:
            barrier.wait()
            results[i] = ticket.submit(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i * 10 for i in range(6)}
    assert len(calls) == 1 and sorted(calls[0]) == list(range(6))
    assert batcher(7) == 70 and calls[-1] == [7]  # alone: runs at once, in its own call


def test_micro_batcher_passes_errors_to_every_caller():
    def fn(items):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        MicroBatcher(fn)(1)


def test_concurrent_recognitions_share_onnx_calls(engine, fx):
    eng = engine_with(engine, BATCH_MAX_WAIT_MS=200, BATCH_MAX_SIZE=32)
    clips = [p for p in fx.queries if hand_frames(p) > 0][:8]
    expected = [[c.label for c in eng.recognize(p).candidates] for p in clips]
    before = eng.encoder.calls
    barrier = threading.Barrier(len(clips))
    got = [None] * len(clips)

    def worker(i):
        barrier.wait()
        got[i] = [c.label for c in eng.recognize(clips[i]).candidates]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(clips))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected  # each caller gets its own result
    assert eng.encoder.calls - before < len(clips) / 2, list(eng.batcher.batch_sizes)


def test_recognize_async_batches_concurrent_awaits(engine, fx):
    import asyncio

    clips = [p for p in fx.queries if hand_frames(p) > 0][:6]
    eng = engine_with(engine, BATCH_MAX_WAIT_MS=1000, BATCH_MAX_SIZE=len(clips))

    async def run_all():
        return await asyncio.gather(*(eng.recognize_async(p) for p in clips))

    before = eng.encoder.calls
    # One more caller announced and still "preparing" for the whole run: no request is ever alone
    # (alone, it would run at once), so on a loaded machine, where the threads start one after the
    # other, the worker still waits for the batch to fill (6 items) instead of each running solo.
    with eng.batcher.expect():
        results = asyncio.run(run_all())
    batched_calls = eng.encoder.calls - before
    assert [r.candidates[0].label for r in results] == [eng.recognize(p).candidates[0].label for p in clips]
    assert batched_calls < len(clips) and max(eng.batcher.batch_sizes) > 1, list(eng.batcher.batch_sizes)


# ------------------------------------------------------------------ backends


def test_torchscript_fallback_when_onnx_runtime_cannot_load(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is not installed: TorchScript fallback untestable")
    from signseek.engine import Encoder

    class Mean(torch.nn.Module):
        def forward(self, features, mask):
            pooled = (features * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
            return torch.nn.functional.normalize(pooled, dim=-1)

    ts = tmp_path / "sign_encoder.ts"
    torch.jit.script(Mean()).save(str(ts))
    broken = tmp_path / "sign_encoder.onnx"
    broken.write_bytes(b"not an onnx model")
    encoder = Encoder.load(broken, ts)
    assert encoder.backend == "torchscript"
    out = encoder.embed(np.ones((2, 4, 3), np.float32), np.ones((2, 4), np.float32))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    from signseek.engine import EncoderError

    with pytest.raises(EncoderError, match=r"sign_encoder\.onnx"):
        Encoder.load(broken, None)


# ------------------------------------------------------------------ handedness (canonical_hand)


@pytest.fixture(scope="module")
def canonical(tmp_path_factory):
    fx = build_fixture_bundle(tmp_path_factory.mktemp("canonical"), canonical_hand=True)
    return fx, Engine.from_bundle(fx.directory, _env_file=None)


def test_a_left_handed_take_gets_the_same_answer_as_the_right_handed_one(canonical):
    from signseek.landmarks.schema import mirror_points

    fx, eng = canonical
    clip = clip_of(fx, "hello")  # one-handed, right hand
    right, left = eng.recognize(clip), eng.recognize(mirror_points(clip))
    assert not right.mirrored and left.mirrored  # the left-handed take was mirrored back
    assert [c.label for c in left.candidates] == [c.label for c in right.candidates]
    assert left.candidates[0].similarity == pytest.approx(right.candidates[0].similarity, abs=1e-5)
    assert left.confidence == pytest.approx(right.confidence, abs=1e-5)


def test_a_hand_gives_the_same_letter_in_either_slot_and_mirrored(canonical):
    from signseek.evaluation import swap_hand_slots_points
    from signseek.landmarks.schema import mirror_points

    fx, eng = canonical
    for points in fx.hands_queries[:12]:
        answers = [eng.recognize(p) for p in (points, swap_hand_slots_points(points), mirror_points(points))]
        assert {a.model for a in answers} == {"fingerspelling"}
        probabilities = [[c.confidence for c in a.candidates] for a in answers]
        assert [c.label for c in answers[1].candidates] == [c.label for c in answers[0].candidates]
        assert [c.label for c in answers[2].candidates] == [c.label for c in answers[0].candidates]
        assert np.allclose(probabilities[1], probabilities[0], atol=1e-5)
        assert np.allclose(probabilities[2], probabilities[0], atol=1e-5)
