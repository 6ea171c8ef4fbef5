"""Training loop for the sign encoder (contrastive) and the classifier heads (cross-entropy).

    python -m trainer train --config configs/encoder_signs.yaml epochs=20 seed=1

Encoder loss: NT-Xent over two augmented views of each clip + `supcon_weight` x supervised
contrastive over the labels of both views. Classifier loss: cross-entropy on one augmented view.
AdamW with linear warmup then cosine decay, early stopping on the validation sessions
(nearest-reference top-1 for the encoder, accuracy for a classifier) or, with
`val_label_fraction` > 0, on few-shot episodes of labels kept out of training, a checkpoint every epoch
(`last.pt`, plus `best.pt`), exact resume (`resume=.../last.pt` continues at the same step),
tqdm bars, tensorboard logs under runs/, mixed precision on CUDA, DDP under torchrun.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from signseek.datasets.splits import validation_label_folds
from signseek.features import FeatureConfig, FeatureStats

from . import ddp
from .augment import augment
from .config import TrainConfig
from .data import ClipSet, DataError, heldout_labels, load_clips, pad_batch, session_split
from .losses import nt_xent, supcon
from .models import HandShapeDescriptor, HybridEncoder, SignEncoder, build_classifier

# Few-shot validation scores the served form of the embedding (learned + fixed view) at this mix;
# the export calibrates the mix itself afterwards on the same validation labels.
VALIDATION_MIX = 1.0


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def build_model(cfg: TrainConfig, fcfg: FeatureConfig, n_classes: int = 0) -> nn.Module:
    descriptor = HandShapeDescriptor(fcfg, cfg.embedding_dim) if cfg.hand_descriptor else None
    if cfg.task == "encoder":
        return SignEncoder(fcfg.feature_dim, fcfg.motion_column, cfg.hidden, cfg.embedding_dim, cfg.dropout,
                           descriptor)
    return build_classifier(cfg.classifier, fcfg.feature_dim, n_classes, cfg.hidden, cfg.dropout, descriptor)


@torch.no_grad()
def embed_sequences(
    model: nn.Module, sequences: list[np.ndarray], stats: FeatureStats, device: str = "cpu", batch: int = 512
) -> np.ndarray:
    """Run a model (encoder or classifier) over prepared sequences in eval mode -> [N, D] outputs."""
    was_training = model.training
    model.eval()
    outs = []
    for start in range(0, len(sequences), batch):
        x, mask = pad_batch([stats.apply(s) for s in sequences[start : start + batch]])
        outs.append(model(x.to(device), mask.to(device)).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def fewshot_encoder_top1(embeddings: np.ndarray, labels: np.ndarray, shots=(1, 3), seeds=(0, 1, 2)) -> float:
    """Mean nearest-reference top-1 over seeded enrolment episodes (`shots` clips a label enrolled,
    the rest queried): the few-shot validation score on labels the encoder never trained on."""
    from signseek.datasets.splits import few_shot_episode

    scores = []
    for k in shots:
        for seed in seeds:
            episode = few_shot_episode(labels, k, seed)
            enrol, query = episode.references, episode.queries
            scores.append(nearest_top1(embeddings[query], labels[query], embeddings[enrol], labels[enrol]))
    return float(np.mean(scores))


def nearest_top1(query: np.ndarray, query_labels, refs: np.ndarray, ref_labels) -> float:
    sims = query @ refs.T
    return float(np.mean(np.asarray(ref_labels)[sims.argmax(axis=1)] == np.asarray(query_labels)))


@dataclass
class Prepared:
    """Everything a run needs from the data, fixed before the first step."""

    clips: ClipSet
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    labels: list[str]  # classes trained on
    heldout: list[str]  # never trained on: the few-shot test labels
    val_labels: list[str]  # never trained on: few-shot validation (early stopping, calibration)
    stats: FeatureStats
    ssl_only: list[np.ndarray]  # extra unlabelled clips for the NT-Xent term


def prepare_data(cfg: TrainConfig, fcfg: FeatureConfig) -> Prepared:
    clips = load_clips(cfg.data, fcfg)
    split = session_split(clips.labels, clips.sessions, cfg.split)
    heldout = heldout_labels(clips.labels, cfg.holdout_label_fraction, cfg.holdout_seed)
    remaining = clips.labels[~np.isin(clips.labels, heldout)]
    if cfg.val_folds > 1 and cfg.val_label_fraction > 0:
        val_labels = validation_label_folds(remaining, cfg.val_label_fraction, cfg.holdout_seed + 1,
                                            cfg.val_folds)[cfg.val_fold]
        if not val_labels:
            raise DataError(f"val_fold={cfg.val_fold} of val_folds={cfg.val_folds} holds no label of {cfg.data}: "
                            "use fewer folds")
    else:
        val_labels = heldout_labels(remaining, cfg.val_label_fraction, cfg.holdout_seed + 1, stratified=True)
    seen = ~np.isin(clips.labels, heldout + val_labels)
    train_idx = np.intersect1d(split["train"], np.flatnonzero(seen))
    val_idx = np.intersect1d(split["val"], np.flatnonzero(seen))
    test_idx = np.intersect1d(split["test"], np.flatnonzero(seen))
    ssl_only = []
    for extra in cfg.extra_ssl_data:
        ssl_only.extend(load_clips(extra, fcfg).features)
    labels = sorted(set(clips.labels[train_idx].tolist()))
    stats = FeatureStats.fit([clips.features[i] for i in train_idx])
    return Prepared(clips, train_idx, val_idx, test_idx, labels, heldout, val_labels, stats, ssl_only)


def lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state()}


def save_checkpoint(path: Path, **state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def train(cfg: TrainConfig, data: Prepared | None = None) -> Path:
    """Train per `cfg`; returns the output folder holding best.pt / last.pt / history.json."""
    device = pick_device(cfg.device)
    info = ddp.init_distributed(device)
    if device == "cuda" and info.distributed:
        device = f"cuda:{info.local_rank}"
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    fcfg = cfg.feature_config()
    data = data or prepare_data(cfg, fcfg)
    clips, stats = data.clips, data.stats
    label_index = {name: i for i, name in enumerate(data.labels)}
    train_labels = np.array([label_index[name] for name in clips.labels[data.train_idx]])
    pool = [clips.features[i] for i in data.train_idx]
    pool_labels = train_labels
    if cfg.task == "encoder" and data.ssl_only:
        pool = pool + data.ssl_only
        pool_labels = np.concatenate([train_labels, -np.ones(len(data.ssl_only), dtype=np.int64)])

    model = build_model(cfg, fcfg, len(data.labels))
    if getattr(model, "descriptor", None) is not None:
        model.descriptor.fit(stats, [stats.apply(clips.features[i]) for i in data.train_idx])
    model = model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(pool) // (cfg.batch_size * info.world_size))
    total_steps = cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, cfg.warmup_steps, total_steps)
    )
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {"epoch": 0, "batch": 0, "step": 0, "best": -1.0, "bad_epochs": 0, "history": []}
    if cfg.resume:
        ckpt = torch.load(cfg.resume, map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state.update(ckpt["progress"])
        torch.set_rng_state(ckpt["rng"]["torch"])
    wrapped = model
    if info.distributed:
        wrapped = nn.parallel.DistributedDataParallel(model, device_ids=[info.local_rank] if "cuda" in device else None)
    use_amp = cfg.amp and "cuda" in device
    writer = None
    if info.is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(Path(cfg.log_dir) / (cfg.run_name or out_dir.name)))

    def checkpoint_state() -> dict:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "progress": {k: state[k] for k in ("epoch", "batch", "step", "best", "bad_epochs", "history")},
            "rng": _rng_state(),
            "config": cfg.to_dict(),
            "feature_config": fcfg.to_dict(),
            "stats": {"mean": stats.mean, "std": stats.std},
            "labels": data.labels,
            "heldout_labels": data.heldout,
            "val_labels": data.val_labels,
            "data": {"path": clips.source, "n_train": len(data.train_idx), "n_val": len(data.val_idx),
                     "n_test": len(data.test_idx)},
        }

    def validate() -> float:
        if cfg.task == "encoder" and data.val_labels:
            rows = np.flatnonzero(np.isin(clips.labels, data.val_labels))
            view = HybridEncoder(model, fcfg.feature_dim, VALIDATION_MIX, view=cfg.fixed_view).to(device)
            emb = embed_sequences(view, [clips.features[i] for i in rows], stats, device)
            return fewshot_encoder_top1(emb, clips.labels[rows])
        if len(data.val_idx) == 0:
            return -state["history"][-1]["loss"] if state["history"] else 0.0
        val_feats = [clips.features[i] for i in data.val_idx]
        if cfg.task == "encoder":
            refs = embed_sequences(model, [clips.features[i] for i in data.train_idx], stats, device)
            queries = embed_sequences(model, val_feats, stats, device)
            return nearest_top1(queries, clips.labels[data.val_idx], refs, clips.labels[data.train_idx])
        logits = embed_sequences(model, val_feats, stats, device)
        predicted = np.array(data.labels)[logits.argmax(axis=1)]
        return float(np.mean(predicted == clips.labels[data.val_idx]))

    done = state["step"] >= cfg.max_steps > 0
    model.train()
    while state["epoch"] < cfg.epochs and not done:
        epoch = state["epoch"]
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(pool))
        order = order[: steps_per_epoch * cfg.batch_size * info.world_size][info.rank :: info.world_size]
        rng = np.random.default_rng([cfg.seed, epoch, info.rank, 1])
        started = time.perf_counter()
        losses = []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (cfg.progress and info.is_main), leave=False)
        for b in bar:
            batch_idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            if b < state["batch"]:
                for _ in range(2 if cfg.task == "encoder" else 1):  # replay the draws: exact resume
                    for i in batch_idx:
                        augment(pool[i], fcfg, cfg, rng)
                continue
            n_views = 2 if cfg.task == "encoder" else 1
            views = [stats.apply(augment(pool[i], fcfg, cfg, rng)) for _ in range(n_views) for i in batch_idx]
            x, mask = pad_batch(views)
            y = torch.from_numpy(np.tile(pool_labels[batch_idx], n_views)).to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                out = wrapped(x.to(device), mask.to(device))
                if cfg.task == "encoder":
                    z1, z2 = out.float().chunk(2)
                    loss = cfg.ssl_weight * nt_xent(z1, z2, cfg.temperature)
                    if cfg.supcon_weight > 0:
                        loss = loss + cfg.supcon_weight * supcon(out.float(), y, cfg.temperature)
                else:
                    loss = F.cross_entropy(out.float(), y, label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            state["step"] += 1
            state["batch"] = b + 1
            losses.append(float(loss.item()))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if writer:
                writer.add_scalar("train/loss", losses[-1], state["step"])
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], state["step"])
            if cfg.max_steps and state["step"] >= cfg.max_steps:
                done = True
                break
        seconds = time.perf_counter() - started
        if done and state["batch"] < steps_per_epoch:
            break  # stopped mid-epoch (max_steps): last.pt below lets a resume finish the epoch
        state["epoch"] += 1
        state["batch"] = 0
        mean_loss = ddp.all_reduce_mean(float(np.mean(losses)) if losses else 0.0, info, device)
        state["history"].append({"epoch": epoch + 1, "loss": mean_loss, "seconds": seconds})
        score = validate()
        state["history"][-1]["val"] = score
        if writer:
            writer.add_scalar("val/score", score, state["step"])
            writer.add_scalar("time/epoch_seconds", seconds, state["step"])
        improved = score > state["best"]
        if improved:
            state["best"], state["bad_epochs"] = score, 0
        else:
            state["bad_epochs"] += 1
        if info.is_main:
            tqdm.write(f"epoch {epoch + 1}: loss {mean_loss:.4f} val {score:.4f} ({seconds:.1f}s)"
                       + (" *" if improved else ""))
            if improved:
                save_checkpoint(out_dir / "best.pt", **checkpoint_state())
            save_checkpoint(out_dir / "last.pt", **checkpoint_state())
        if state["bad_epochs"] >= cfg.patience:
            if info.is_main:
                tqdm.write(f"early stop: no validation gain for {cfg.patience} epochs")
            break
    if info.is_main:
        save_checkpoint(out_dir / "last.pt", **checkpoint_state())
        if not (out_dir / "best.pt").exists():
            save_checkpoint(out_dir / "best.pt", **checkpoint_state())
        (out_dir / "history.json").write_text(json.dumps(state["history"], indent=1))
        writer.close()
    if info.distributed:
        torch.save(model.state_dict(), out_dir / f"final_rank{info.rank}.pt")
        ddp.barrier(info)
    ddp.cleanup(info)
    return out_dir
