"""The Gradio Blocks: Recognise, Signs, Live, Add a sign, About, Model.

Every event a script needs has an ``api_name``, so everything the page does can be scripted with
`gradio_client` (see tests/test_demo_client.py):

    /recognise_video  (video)                    -> banner, explained table, all scores, chart, skeleton,
                                                    timings, raw, flag status, input preview (a generator:
                                                    the answer first, then the same with the skeleton)
    /run_example      (example id)               -> the same, for a built-in example ("sample:45", "clip:hoy_001.mp4")
    /random_sample    ()                         -> the same, for a random held-out stored clip
    /flag_result      (correction, consent)      -> status   (the last result of this session, kept as feedback)
    /delete_flag      ()                         -> status   (this session's last flag, deleted)
    /live_stream      (image)                    -> overlay, captions   (the browser's webcam stream)
    /live_frame       (image)                    -> overlay, captions   (the same, one call a frame)
    /live_reset       ()                         -> captions
    /enrol_sign       (name, files, clip1..3, mode "new"|"add", key) -> status, signs, deletable names
    /list_signs       ()                         -> signs, deletable names
    /delete_sign      (name, key)                -> status, signs, deletable names
    /gallery          ()                         -> every sign: [(thumbnail, caption)]
    /model_info       ()                         -> card, vocabulary, thresholds, manifest
"""

from __future__ import annotations

import html
import json
import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402

from signseek.feedback import WHAT_IS_KEPT  # noqa: E402

from . import views  # noqa: E402
from .backend import LANGUAGE, DemoBackend, DemoInputError, LiveSession, Outcome, unexpected  # noqa: E402
from .examples import NO_SIGN  # noqa: E402

log = logging.getLogger("signseek.demo")

NOT_IN_LIST = "(a sign not in this list)"


def intro(backend: DemoBackend) -> str:
    return (f"# SignSeek: {LANGUAGE} sign recognition\n"
            f"{backend.vocabulary_summary()} Sign one of them into your webcam or upload a clip (about 2 s, upper "
            "body and hands in view), or click an example. The **Signs** tab shows how each one is made; "
            "**About** says what this demo is for and what it cannot do.")


ABOUT = """## About this demo

**What it is for.** SignSeek recognises single, isolated signs from a short clip, to show how
sign recognition can work as *retrieval*: your clip is compared with reference clips of each
sign, and a new sign can be added from three clips without retraining. It is a research demo,
not an interpreter: it does not translate sentences, and it must not be relied on where a
misunderstanding matters (health, law, emergencies). Ask Deaf signers what they need.

**Language and data.** {language}. The shipped signs come from the traduttore ASL dataset
(landmark recordings of a few signers in a café setting: {n_signs} signs, a few sittings each,
MIT license). The "signs it does not know" examples are Mexican Sign Language clips from MSL-150
(MIT; cite its CITATION.cff). The phone selfie clip comes from the pose-format project's test
data (MIT). The model and code are MIT licensed.

**How it decides.** MediaPipe finds your body and hand landmarks (the video itself is not kept);
the model turns the movement into a vector and looks for the closest reference clips, re-checks
the best ones frame by frame (DTW), and compares your clip with each sign's average. It answers
only when the best sign is close enough, clearly ahead of the next one, and agrees with the
average; otherwise it says **Not sure**, **Not a sign it knows** or **No sign**, and why.

**Unknown signs.** A sign outside the vocabulary should be rejected ("Not a sign it knows"). It
is not always: a sign that moves like a known one can be taken for it. The examples marked
"should be rejected" show how it does on signs of another language; the verdict says when an
example did not give what it should.

**Limitations.** Few signers and sittings: other signers, lighting, camera angles, left-handed
signing and fast or partial signs do worse. Fingerspelled letters that differ only in hand shape
are easily confused. Only one sign per clip; no facial grammar is read (the shipped model does
not use the face). Landmarks run on the server: a 2-second clip takes a few seconds.

**Your data.** Clips you upload are used to answer and are not stored, except their landmarks
for a short time in memory. {feedback} Signs added in "Add a sign" are kept on this server until
deleted.

**Numbers in the results.**
{legend}
"""


def _about(backend: DemoBackend) -> str:
    legend = "\n".join(f"- **{name}**: {text}" for name, text in views.LEGEND.items())
    if backend.feedback is None:
        feedback = "Feedback flags are switched off on this deployment: nothing else is kept."
    else:
        feedback = (f"If you flag a wrong answer and agree, we keep {WHAT_IS_KEPT}, for "
                    f"{backend.feedback.retention_days:g} days at most, apart from the signs the demo answers with.")
    return ABOUT.format(language=LANGUAGE, n_signs=len(backend.vocabulary()), feedback=feedback, legend=legend)


def build_ui(backend: DemoBackend) -> gr.Blocks:
    """The demo's Blocks, bound to one backend (shared with the API when mounted by demo.server)."""
    backend.start_warming()
    # delete_cache: Gradio's copies of uploads and answers older than 2 h go every 30 min (bounded disk).
    with gr.Blocks(title="SignSeek — ASL sign recognition demo", analytics_enabled=False,
                   delete_cache=(1800, 7200)) as blocks:
        intro_md = gr.Markdown(intro(backend), elem_id="intro")
        # "wrap": at 390 px every tab stays in view on a second row, none behind a "more" menu.
        with gr.Tabs(elem_id="tabs", overflow_behavior="wrap") as tabs:
            with gr.Tab("Recognise", id="recognise"):
                recognise = _recognise_tab(backend)
            with gr.Tab("Signs", id="signs"):
                signs_view = _signs_tab(backend, tabs, recognise)
            with gr.Tab("Live", id="live"):
                _live_tab(backend)
            with gr.Tab("Add a sign", id="enrol"):
                enrol_view = _enrol_tab(backend)
            with gr.Tab("About", id="about"):
                gr.Markdown(_about(backend), elem_id="about")
            with gr.Tab("Model", id="model"):
                model_info, model_outputs = _model_tab(backend)

        # After every change to the signs, every list on the page is redrawn.
        def refresh_lists():
            table = backend.signs_table()
            return (backend.gallery.items(), table, table, gr.Dropdown(choices=[*backend.vocabulary(), NOT_IN_LIST]))

        def refresh_all():
            return (intro(backend), *refresh_lists())

        lists = [signs_view["gallery"], signs_view["table"], model_outputs[1], recognise["correction"]]
        for event in enrol_view["changed"]:
            event.then(refresh_all, None, [intro_md, *lists], api_name=False, show_progress="hidden")
        # The model card and the lists fill in when the page opens (scripts use /model_info, /gallery).
        blocks.load(model_info, None, model_outputs, api_name=False)
        blocks.load(refresh_lists, None, lists, api_name=False, show_progress="minimal")
        # The first screen's text follows too (signs added since the start), never greyed out while it loads.
        blocks.load(lambda: intro(backend), None, [intro_md], api_name=False, show_progress="hidden")
    return blocks


DRAWING = "drawing the landmarks over the clip and the chart…"


def _outcome_outputs(outcome: Outcome, thresholds: dict, input_update=None) -> tuple:
    """An Outcome -> (banner, explained, all scores, chart, skeleton, timings, raw, flag status, last, input)."""
    if input_update is None:
        input_update = gr.Video(value=str(outcome.preview)) if outcome.preview else gr.skip()
    if outcome.error:  # said in the banner (a toast would cover it)
        empty = views.ranked_table(None)
        return (views.error_banner(outcome.error), "", empty, None, None, views.timings_table(outcome.timings),
                {"error": outcome.error}, "", None, input_update)
    result = outcome.result
    last = {"points": outcome.points, "result": result, "clip": outcome.clip}
    # The answer first; the chart and the overlay (a fraction of a second to draw, more on a busy machine) follow
    # in the next update. (Plain values, not component updates: scripts read these outputs as files.)
    if outcome.drawing:
        skeleton, chart, source = None, None, f"{outcome.source} · {DRAWING}"
    else:
        skeleton = str(outcome.skeleton_video) if outcome.skeleton_video else None
        chart, source = views.candidates_figure(result, thresholds), outcome.source
    return (
        views.banner_markdown(result, thresholds, source),
        views.ranked_html(result, thresholds),
        views.ranked_table(result),
        chart,
        skeleton,
        views.timings_table(outcome.timings),
        {**views.as_dict(result), "source": outcome.source, "stage_timings_ms": outcome.timings},
        "",
        last,
        input_update,
    )


def _recognise_tab(backend: DemoBackend) -> dict:
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            video_in = gr.Video(sources=["webcam", "upload"], label="Sign a clip (webcam or upload)",
                                include_audio=True, elem_id="recognise-video", height=340)
            with gr.Row():
                run = gr.Button("Recognise", variant="primary", elem_id="recognise-run")
                sample = gr.Button("Random held-out clip", elem_id="random-sample")
            example_buttons = _example_buttons(backend)
        with gr.Column(scale=1, min_width=300):
            banner = gr.HTML(views.info_banner("Record or upload a clip, or click an example."),
                             elem_id="recognise-banner")
            skeleton = gr.Video(label="What the model saw (landmarks over the clip)", interactive=False,
                                autoplay=True, loop=True, elem_id="recognise-skeleton", height=300)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            explained = gr.HTML(elem_id="recognise-ranked", label="Closest signs")
        with gr.Column(scale=2, min_width=300):
            chart = gr.Plot(label="Similarity of the closest signs", elem_id="recognise-chart")
    last = gr.State(None)
    flag_id = gr.State(None)
    with gr.Accordion("Wrong answer? Tell us", open=False, elem_id="flag"):
        gr.Markdown(backend.feedback_notice, elem_id="flag-notice")
        with gr.Row():
            correction = gr.Dropdown(choices=[*backend.vocabulary(), NOT_IN_LIST], value=None,
                                     allow_custom_value=True, label="What did you sign?", elem_id="flag-correction",
                                     info="Pick the sign, or type its name if it is not in the list.")
            consent = gr.Checkbox(label="I agree that the landmarks and the answer are kept as described above",
                                  elem_id="flag-consent")
        with gr.Row():
            send = gr.Button("Send feedback", elem_id="flag-send", interactive=backend.feedback is not None)
            undo = gr.Button("Delete what I sent", elem_id="flag-delete", variant="stop", visible=False)
        flag_status = gr.HTML(elem_id="flag-status")
    with gr.Accordion("All scores (table)", open=False):
        ranked = gr.Dataframe(value=views.ranked_table(None), label="Ranked candidates, every score",
                              interactive=False, elem_id="recognise-scores", wrap=False)
    with gr.Row(equal_height=False):  # side by side on a wide screen, stacked on a phone
        with gr.Column(min_width=300):
            timings = gr.Dataframe(value=views.timings_table({}), label="Time of each stage (ms)",
                                   interactive=False, elem_id="recognise-timings")
        with gr.Column(min_width=300):
            with gr.Accordion("Raw result", open=False):
                raw = gr.JSON(label="Engine result")
    outputs = [banner, explained, ranked, chart, skeleton, timings, raw, flag_status, last, video_in]

    def recognise_video(video: str | None, progress: gr.Progress = gr.Progress()):  # noqa: B008
        # A generator: the verdict is sent as soon as the engine answers, the overlay (and a preview of a
        # clip the browser cannot play) in a second update; a script's predict() returns the last one.
        shown = False  # the input's preview (a clip the browser cannot play) is sent once, with the answer
        for outcome in backend.recognise_clip_steps(video, progress=progress):
            yield _outcome_outputs(outcome, backend.thresholds(), gr.skip() if shown else None)
            shown = shown or outcome.preview is not None

    def run_example(example_id: str, progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008
        example = backend.example(example_id)
        outcome = backend.run_example(example_id, progress=progress)
        clip = backend.example_playable(example) if example is not None and example.video is not None else None
        # The input shows the example clip (or nothing, for a stored landmark replay).
        return _outcome_outputs(outcome, backend.thresholds(), gr.Video(value=str(clip) if clip else None))

    def random_sample(progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008
        outcome = backend.recognise_random_sample(progress=progress)
        # The input is emptied: the result is the stored clip's, replayed as a skeleton.
        return _outcome_outputs(outcome, backend.thresholds(), gr.Video(value=None))

    def flag_result(correction_value: str | None, agreed: bool, last_result: dict | None):
        text = "" if correction_value == NOT_IN_LIST else correction_value
        try:
            item = backend.flag(last_result, text, agreed)
        except DemoInputError as exc:
            return views.error_banner(str(exc)), None, gr.Button(visible=False)
        except Exception as exc:
            log.exception("keeping a feedback flag failed")
            return views.error_banner(unexpected(exc)), None, gr.Button(visible=False)
        return (views.success_banner(f"Thank you: kept as feedback {item} ({WHAT_IS_KEPT}). You can delete it "
                                     "now with the button below."), item, gr.Button(visible=True))

    def delete_flag(item: str | None):
        if backend.unflag(item):
            return views.success_banner(f"Deleted feedback {item}."), None, gr.Button(visible=False)
        return views.info_banner("There is no feedback of yours to delete."), None, gr.Button(visible=False)

    run.click(recognise_video, [video_in], outputs, api_name="recognise_video", concurrency_limit=2)
    # An upload or a finished webcam recording is recognised as soon as it lands in the input.
    video_in.upload(recognise_video, [video_in], outputs, api_name=False, concurrency_limit=2)
    video_in.stop_recording(recognise_video, [video_in], outputs, api_name=False, concurrency_limit=2)
    sample.click(random_sample, None, outputs, api_name="random_sample", concurrency_limit=2)
    example_id = gr.Textbox(visible=False)
    hidden_run = gr.Button(visible=False)
    hidden_run.click(run_example, [example_id], outputs, api_name="run_example", concurrency_limit=2)
    for button, eid in example_buttons:
        button.click(run_example, [gr.State(eid)], outputs, api_name=False, concurrency_limit=2)
    sent = send.click(flag_result, [correction, consent, last], [flag_status, flag_id, undo], api_name="flag_result",
                      concurrency_limit=1)
    # Each flag is agreed to on its own: the consent box is cleared once one is kept.
    sent.success(lambda item: gr.Checkbox(value=False) if item else gr.skip(), [flag_id], [consent], api_name=False,
                 show_progress="hidden")
    undo.click(delete_flag, [flag_id], [flag_status, flag_id, undo], api_name="delete_flag")
    return {"outputs": outputs, "run_example": run_example, "random_sample": random_sample,
            "correction": correction}


def _example_buttons(backend: DemoBackend) -> list[tuple[gr.Button, str]]:
    """One button an example, grouped by what it should give."""
    buttons = []
    examples = backend.examples()
    known = [e for e in examples if e.sample_index is not None]
    unknown = [e for e in examples if e.sample_index is None]
    with gr.Group(elem_id="recognise-examples"):
        if known:
            gr.Markdown("**Known signs**: clips of signers and sittings the model never used as references; "
                        "each should give its sign (resting: no sign).", elem_classes=["ss-ex-head"])
            with gr.Row(elem_classes=["ss-ex-row"]):
                for e in known:
                    label = "resting → no sign" if e.expected == NO_SIGN else e.title
                    buttons.append((gr.Button(label, size="sm", min_width=60, elem_classes=["ss-ex"],
                                              elem_id=f"example-{e.slug}"), e.id))
        if unknown:
            gr.Markdown("**Signs it does not know**: should be rejected (\"not a sign it knows\").",
                        elem_classes=["ss-ex-head"])
            with gr.Row(elem_classes=["ss-ex-row"]):
                for e in unknown:
                    buttons.append((gr.Button(e.title, size="sm", min_width=60, elem_classes=["ss-ex"],
                                              elem_id=f"example-{e.slug}"), e.id))
    return buttons


def _signs_tab(backend: DemoBackend, tabs: gr.Tabs, recognise: dict) -> dict:
    gr.Markdown("Every sign this deployment knows, drawn from one of its reference clips as the model sees it "
                "(upper body and hands). Select a sign to see it larger and to try a held-out clip of it.")
    gallery = gr.Gallery(value=None, label="Signs", columns=6, height="auto", object_fit="contain",
                         allow_preview=False, elem_id="signs-gallery", show_label=True)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280):
            detail = gr.Markdown("Select a sign above.", elem_id="signs-detail")
            try_it = gr.Button("Recognise a held-out clip of this sign", elem_id="signs-try", visible=False)
        with gr.Column(scale=1, min_width=280):
            big = gr.Video(label="How it is made (reference landmarks)", interactive=False, autoplay=True,
                           loop=True, elem_id="signs-video", height=300)
            recorded = gr.Video(label="Recorded video of the sign", interactive=False, visible=False,
                                elem_id="signs-recorded", height=300)
    table = gr.Dataframe(value=None, label="Vocabulary", interactive=False, elem_id="signs-table")
    chosen = gr.State(None)

    def show_gallery():
        return backend.gallery.items()

    def select_sign(evt: gr.SelectData):
        cards = backend.gallery.cards()
        card = cards[evt.index] if evt.index is not None and 0 <= evt.index < len(cards) else None
        if card is None:
            return "Select a sign above.", None, gr.Video(visible=False), gr.Button(visible=False), None
        held = backend.held_out()
        n_held = len(held.of(card.label)) if held else 0
        text = (f"### {html.escape(card.label)}\n{card.category or 'sign'} · **{card.references}** reference clips · "
                f"{'added on this deployment' if card.enrolled else 'shipped with the model'}\n\n"
                "The skeleton is the reference clip closest to the sign's average, as the model sees it: "
                "shoulders, arms and both hands (orange and blue), timing stretched to 32 steps.")
        if n_held:
            text += f"\n\n{n_held} held-out clip(s) of it can be tried (never references)."
        video = backend.gallery.skeleton_video(card)
        return (text, str(video) if video else None,
                gr.Video(value=str(card.video) if card.video else None, visible=card.video is not None),
                gr.Button(visible=n_held > 0), card.label)

    def try_sign(label: str | None, progress: gr.Progress = gr.Progress()):  # noqa: B008
        outcome = backend.recognise_random_sample(label, progress=progress)
        return (*_outcome_outputs(outcome, backend.thresholds(), gr.Video(value=None)), gr.Tabs(selected="recognise"))

    gallery.select(select_sign, None, [detail, big, recorded, try_it, chosen], api_name=False)
    try_it.click(try_sign, [chosen], [*recognise["outputs"], tabs], api_name=False, concurrency_limit=2)
    hidden = gr.Button(visible=False)
    hidden.click(show_gallery, None, [gallery], api_name="gallery")
    return {"gallery": gallery, "table": table}


def _live_tab(backend: DemoBackend) -> None:
    gr.Markdown("Start the webcam and sign: landmarks are drawn live, and the last couple of seconds "
                "are recognised continuously. Accepted signs are added to the captions; "
                "**no sign** is shown while your hands rest.")
    with gr.Row():
        cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam",
                       elem_id="live-webcam", height=360)
        overlay = gr.Image(label="Landmarks (what the model sees)", interactive=False, format="jpeg",
                           elem_id="live-overlay", height=360)
    captions = gr.HTML(views.live_caption_markdown([], "no sign", None), elem_id="live-captions")
    reset = gr.Button("Clear captions", elem_id="live-reset")
    session = gr.State(None, delete_callback=LiveSession.close_quietly)

    def live_frame(image, live: LiveSession | None):
        live = live if live is not None else backend.new_live_session()
        if image is None:
            return None, live.caption_html(), live
        try:
            annotated = live.push(image)
        except Exception as exc:  # one bad frame must not end the stream
            log.exception("live frame failed")
            return None, views.error_banner(unexpected(exc)), live
        return annotated, live.caption_html(), live

    def live_reset(live: LiveSession | None):
        if live is not None:
            live.reset()
            return live.caption_html(), live
        return views.live_caption_markdown([], "no sign", None), live

    cam.stream(live_frame, [cam, session], [overlay, captions, session], api_name="live_stream",
               stream_every=backend.live_stream_every, time_limit=backend.live_time_limit_s,
               concurrency_limit=backend.live_concurrency, show_progress="hidden")
    # gradio_client cannot drive a streaming event, so scripts send frames one call at a time here.
    one_frame = gr.Button("Send one frame", visible=False)
    one_frame.click(live_frame, [cam, session], [overlay, captions, session], api_name="live_frame",
                    concurrency_limit=backend.live_concurrency)
    reset.click(live_reset, [session], [captions, session], api_name="live_reset")


def _access_notice(backend: DemoBackend) -> str:
    if backend.access == "read_only":
        return views.warning_banner("This is a read-only public demo: signs cannot be added or deleted here, so "
                                    "every visitor gets the same answers. Run SignSeek yourself (make run) to add "
                                    "your own signs.")
    if backend.access == "key":
        return views.warning_banner("This deployment is locked: adding or deleting signs needs its API key. Enter "
                                    "it below; without it the clips are not processed.")
    return ""


def _enrol_tab(backend: DemoBackend) -> dict:
    gr.HTML(_access_notice(backend), elem_id="enrol-access")
    writable = backend.access != "read_only"
    with gr.Row(visible=writable, equal_height=False):
        with gr.Column(min_width=300):
            gr.Markdown(f"Add a new sign from **at least {backend.min_enrol_clips} clips** of it (upload several "
                        "files at once and/or record them below). It is recognised at once: no retraining. Signs "
                        "added here are recognised for every visitor until deleted.")
            key = gr.Textbox(value="", label="API key", type="password", visible=backend.access == "key",
                             elem_id="enrol-key", placeholder="the deployment's API key")
            name = gr.Textbox(label="Sign name", placeholder="e.g. good-morning", elem_id="enrol-name",
                              max_length=64)
            files = gr.File(file_count="multiple", file_types=["video"], label="Clips (upload several)",
                            elem_id="enrol-files")
            with gr.Row():
                clips = [gr.Video(sources=["webcam", "upload"], label=f"Clip {i}", include_audio=True,
                                  elem_id=f"enrol-clip-{i}", min_width=160) for i in (1, 2, 3)]
                # (No fixed height: Gradio's video box then cuts off its own upload/webcam switch.)
            mode = gr.Textbox(value="new", visible=False)
            enrol = gr.Button("Add sign", variant="primary", elem_id="enrol-run")
            status = gr.HTML(elem_id="enrol-status")
            with gr.Group(visible=False, elem_id="enrol-confirm") as confirm_box:
                confirm_text = gr.HTML()
                with gr.Row():
                    add_more = gr.Button("Add these clips to it", variant="primary", elem_id="enrol-confirm-add")
                    cancel_add = gr.Button("Cancel: I will choose another name", elem_id="enrol-confirm-cancel")
        with gr.Column(min_width=300):
            signs = gr.Dataframe(value=backend.signs_table(), label="Signs it knows (added here first)",
                                 interactive=False, elem_id="enrol-signs")
            with gr.Row():
                deletable = gr.Dropdown(choices=backend.enrolled_names(), label="Added sign to delete",
                                        elem_id="enrol-delete-name", allow_custom_value=True)
                delete = gr.Button("Delete…", variant="stop", elem_id="enrol-delete")
            with gr.Group(visible=False, elem_id="delete-confirm") as delete_box:
                delete_text = gr.HTML()
                with gr.Row():
                    yes = gr.Button("Yes, delete it", variant="stop", elem_id="delete-confirm-yes")
                    no = gr.Button("Cancel", elem_id="delete-confirm-no")
            refresh = gr.Button("Refresh list", size="sm")
    pending = gr.State(None)  # "confirm" when the last Add needs an answer

    def listing() -> tuple:
        return backend.signs_table(), gr.Dropdown(choices=backend.enrolled_names(), value=None)

    def enrol_sign(sign_name, uploaded, clip1, clip2, clip3, how, api_key,
                   progress: gr.Progress = gr.Progress()):  # noqa: B008
        paths = [getattr(f, "name", f) for f in (uploaded or [])] + [c for c in (clip1, clip2, clip3) if c]
        ask = None
        try:
            outcome = backend.enrol(sign_name, paths, progress=progress, mode=how or "new", key=api_key)
            if outcome.kind == "confirm":  # the question, with its two answers in the box below
                html_out, ask = views.warning_banner(outcome.message), outcome.message
            else:
                html_out = views.success_banner(outcome.message)
                if outcome.warning:
                    html_out += views.warning_banner(outcome.warning)
        except DemoInputError as exc:  # said in the status under the button (no toast over the lists)
            html_out = views.error_banner(str(exc))
        except Exception as exc:  # a bug: logged with its traceback, said plainly in the page
            log.exception("enrolling %r failed", sign_name)
            html_out = views.error_banner(unexpected(exc))
        return (html_out, *listing(), ask)

    def show_confirm(ask):
        return gr.Group(visible=bool(ask)), "<p class='ss-ask'>Your answer to the question above:</p>" if ask else ""

    def list_signs():
        return listing()

    def ask_delete(sign_name):
        try:
            question = backend.delete_question(sign_name)
        except DemoInputError as exc:
            return gr.Group(visible=False), "", views.error_banner(str(exc))
        return gr.Group(visible=True), views.warning_banner(question), ""

    def delete_sign(sign_name, api_key):
        try:
            html_out = views.success_banner(backend.delete(sign_name, key=api_key))
        except DemoInputError as exc:
            html_out = views.error_banner(str(exc))
        except Exception as exc:
            log.exception("deleting %r failed", sign_name)
            html_out = views.error_banner(unexpected(exc))
        return (html_out, *listing())

    def hide():
        return gr.Group(visible=False)

    inputs = [name, files, *clips, mode, key]
    added = enrol.click(enrol_sign, inputs, [status, signs, deletable, pending], api_name="enrol_sign",
                        concurrency_limit=1)
    added.then(show_confirm, [pending], [confirm_box, confirm_text], api_name=False, show_progress="hidden")
    more = add_more.click(hide, None, [confirm_box], api_name=False).then(
        enrol_sign, [name, files, *clips, gr.State("add"), key], [status, signs, deletable, pending], api_name=False,
        concurrency_limit=1)
    cancel_add.click(hide, None, [confirm_box], api_name=False).then(
        lambda: views.info_banner("Nothing was added. Choose another name for a new sign."), None, [status],
        api_name=False)
    refresh.click(list_signs, None, [signs, deletable], api_name="list_signs")
    delete.click(ask_delete, [deletable], [delete_box, delete_text, status], api_name=False)
    removed = yes.click(hide, None, [delete_box], api_name=False).then(
        delete_sign, [deletable, key], [status, signs, deletable], api_name=False, concurrency_limit=1)
    no.click(hide, None, [delete_box], api_name=False)
    # Scripts delete directly (no confirmation step): /delete_sign (name, key).
    script_delete = gr.Button(visible=False)
    scripted = script_delete.click(delete_sign, [deletable, key], [status, signs, deletable], api_name="delete_sign",
                                   concurrency_limit=1)
    return {"changed": [added, more, removed, scripted]}


def _model_tab(backend: DemoBackend) -> tuple:
    card = gr.Markdown(elem_id="model-card")
    with gr.Row():
        vocabulary = gr.Dataframe(label="Vocabulary", interactive=False, elem_id="model-vocabulary")
        thresholds = gr.Dataframe(label="Thresholds and settings in force", interactive=False,
                                  elem_id="model-thresholds")
    with gr.Accordion("Export manifest", open=False):
        # Code, not JSON: gradio_client would take the manifest's {"path": ...} for a file to fetch.
        manifest = gr.Code(label="export_manifest.json", language="json")
    load = gr.Button("Reload", size="sm")

    def model_info():
        info = backend.model_info()
        return info.card, info.vocabulary, info.thresholds, json.dumps(info.manifest, indent=2, default=str)

    outputs = [card, vocabulary, thresholds, manifest]
    load.click(model_info, None, outputs, api_name="model_info")
    return model_info, outputs
