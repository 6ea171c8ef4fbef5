"""The Gradio Blocks: Recognise, Live, Add a sign, Model.

Every event has an ``api_name``, so everything the page does can be scripted with
`gradio_client` (see tests/test_demo_client.py):

    /recognise_video  (video)                   -> banner, ranked, chart, skeleton, timings, raw
    /random_sample    ()                        -> the same (and an emptied input), for a stored sequence
    /live_stream      (image)                   -> overlay, captions   (the browser's webcam stream)
    /live_frame       (image)                   -> overlay, captions   (the same, one call a frame)
    /live_reset       ()                        -> captions
    /enrol_sign       (name, files, clip1..3)   -> status, signs, deletable names
    /list_signs       ()                        -> signs, deletable names
    /delete_sign      (name)                    -> status, signs, deletable names
    /model_info       ()                        -> card, vocabulary, thresholds, manifest
"""

from __future__ import annotations

import json
import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402

from . import views  # noqa: E402
from .backend import DemoBackend, DemoInputError, LiveSession, Outcome, unexpected  # noqa: E402

log = logging.getLogger("signseek.demo")

INTRO = """# SignSeek
Sign into your webcam or upload a clip: MediaPipe finds your hands, face and body, the encoder
turns the movement into an embedding, and the nearest reference signs are ranked (with DTW
re-ranking and a check against each sign's average). New signs can be added from three clips,
with no retraining."""


def _outcome_outputs(outcome: Outcome, thresholds: dict) -> tuple:
    """An Outcome -> (banner, ranked, chart, skeleton video, timings, raw result)."""
    if outcome.error:
        gr.Warning(outcome.error)
        empty = views.ranked_table(None)
        return (views.error_banner(outcome.error), empty, None, None,
                views.timings_table(outcome.timings), {"error": outcome.error})
    result = outcome.result
    return (
        views.banner_markdown(result, thresholds, outcome.source),
        views.ranked_table(result),
        views.candidates_figure(result, thresholds),
        str(outcome.skeleton_video) if outcome.skeleton_video else None,
        views.timings_table(outcome.timings),
        {**views.as_dict(result), "source": outcome.source, "stage_timings_ms": outcome.timings},
    )


def build_ui(backend: DemoBackend) -> gr.Blocks:
    """The demo's Blocks, bound to one backend (shared with the API when mounted by demo.server)."""
    with gr.Blocks(title="SignSeek — sign recognition demo", analytics_enabled=False) as blocks:
        gr.Markdown(INTRO)
        with gr.Tabs():
            with gr.Tab("Recognise", id="recognise"):
                _recognise_tab(backend)
            with gr.Tab("Live", id="live"):
                _live_tab(backend)
            with gr.Tab("Add a sign", id="enrol"):
                _enrol_tab(backend)
            with gr.Tab("Model", id="model"):
                model_info, model_outputs = _model_tab(backend)
        # The model card fills in when the page opens (scripted callers use /model_info).
        blocks.load(model_info, None, model_outputs, api_name=False)
    return blocks


def _recognise_tab(backend: DemoBackend) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            video_in = gr.Video(sources=["webcam", "upload"], label="Sign a clip (webcam or upload)",
                                include_audio=True, elem_id="recognise-video", height=360)
            with gr.Row():
                run = gr.Button("Recognise", variant="primary", elem_id="recognise-run")
                sample = gr.Button("Random reference sample", elem_id="random-sample")
            example_slot = gr.Column()  # filled below, once the outputs exist
            examples = backend.example_videos()

        with gr.Column(scale=1):
            banner = gr.HTML(views.info_banner("Record or upload a clip, pick an example, or try a "
                                               "random reference sample."), elem_id="recognise-banner")
            skeleton = gr.Video(label="What the model saw (landmarks)", interactive=False, autoplay=True,
                                loop=True, elem_id="recognise-skeleton", height=300)
    with gr.Row():
        with gr.Column(scale=3):
            ranked = gr.Dataframe(value=views.ranked_table(None), label="Ranked candidates",
                                  interactive=False, elem_id="recognise-ranked", wrap=True,
                                  column_widths=["7%", "16%", "11%", "11%", "11%", "11%", "11%", "11%", "11%"])
        with gr.Column(scale=2):
            chart = gr.Plot(label="Candidates", elem_id="recognise-chart")
    with gr.Row():
        timings = gr.Dataframe(value=views.timings_table({}), label="Timings (ms)", interactive=False,
                               elem_id="recognise-timings")
        with gr.Accordion("Raw result", open=False):
            raw = gr.JSON(label="Engine result")
    outputs = [banner, ranked, chart, skeleton, timings, raw]

    def recognise_video(video: str | None, progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008
        outcome = backend.recognise_clip(video, progress=progress)
        return _outcome_outputs(outcome, backend.thresholds())

    def random_sample(progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008
        outcome = backend.recognise_random_sample(progress=progress)
        # The input player is emptied: the result is the stored sample's, not the clip shown there.
        return (*_outcome_outputs(outcome, backend.thresholds()), None)

    def run_example(video: str | None, progress: gr.Progress = gr.Progress()) -> tuple:  # noqa: B008
        return recognise_video(video, progress)

    if examples:
        with example_slot:
            # Clicking one recognises it at once. Never cached: on Spaces caching would run every
            # example through MediaPipe at start-up.
            gr.Examples(examples=[[str(path)] for _, path in examples], inputs=[video_in], outputs=outputs,
                        fn=run_example, run_on_click=True, cache_examples=False,
                        example_labels=[label for label, _ in examples], label="Real clips (no webcam needed)",
                        elem_id="recognise-examples", api_visibility="private")
    run.click(recognise_video, [video_in], outputs, api_name="recognise_video", concurrency_limit=2)
    # An upload or a finished webcam recording is recognised as soon as it lands in the input.
    video_in.upload(recognise_video, [video_in], outputs, api_name=False, concurrency_limit=2)
    video_in.stop_recording(recognise_video, [video_in], outputs, api_name=False, concurrency_limit=2)
    sample.click(random_sample, None, [*outputs, video_in], api_name="random_sample", concurrency_limit=2)


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


def _enrol_tab(backend: DemoBackend) -> None:
    gr.Markdown(f"Add a new sign from **at least {backend.min_enrol_clips} clips** of it (upload several "
                "files at once and/or record them below). It is recognised at once: no retraining.")
    with gr.Row():
        with gr.Column():
            name = gr.Textbox(label="Sign name", placeholder="e.g. good-morning", elem_id="enrol-name",
                              max_length=64)
            files = gr.File(file_count="multiple", file_types=["video"], label="Clips (upload several)",
                            elem_id="enrol-files")
            with gr.Row():
                clips = [gr.Video(sources=["webcam", "upload"], label=f"Clip {i}", include_audio=True,
                                  elem_id=f"enrol-clip-{i}", height=260) for i in (1, 2, 3)]
            enrol = gr.Button("Add sign", variant="primary", elem_id="enrol-run")
            status = gr.HTML(elem_id="enrol-status")
        with gr.Column():
            signs = gr.Dataframe(value=backend.signs_table(), label="Signs in the reference store",
                                 interactive=False, elem_id="enrol-signs")
            with gr.Row():
                deletable = gr.Dropdown(choices=backend.enrolled_names(), label="Enrolled sign",
                                        elem_id="enrol-delete-name", allow_custom_value=True)
                delete = gr.Button("Delete", variant="stop", elem_id="enrol-delete")
            refresh = gr.Button("Refresh list", size="sm")

    def listing() -> tuple:
        return backend.signs_table(), gr.Dropdown(choices=backend.enrolled_names(), value=None)

    def enrol_sign(sign_name, uploaded, clip1, clip2, clip3, progress: gr.Progress = gr.Progress()):  # noqa: B008
        paths = [getattr(f, "name", f) for f in (uploaded or [])] + [c for c in (clip1, clip2, clip3) if c]
        try:
            html = views.success_banner(backend.enrol(sign_name, paths, progress=progress))
        except DemoInputError as exc:
            gr.Warning(str(exc))
            html = views.error_banner(str(exc))
        except Exception as exc:  # a bug: logged with its traceback, said plainly in the page
            log.exception("enrolling %r failed", sign_name)
            html = views.error_banner(unexpected(exc))
        return (html, *listing())

    def list_signs():
        return listing()

    def delete_sign(sign_name):
        try:
            html = views.success_banner(backend.delete(sign_name))
        except DemoInputError as exc:
            gr.Warning(str(exc))
            html = views.error_banner(str(exc))
        except Exception as exc:
            log.exception("deleting %r failed", sign_name)
            html = views.error_banner(unexpected(exc))
        return (html, *listing())

    enrol.click(enrol_sign, [name, files, *clips], [status, signs, deletable], api_name="enrol_sign",
                concurrency_limit=1)
    refresh.click(list_signs, None, [signs, deletable], api_name="list_signs")
    delete.click(delete_sign, [deletable], [status, signs, deletable], api_name="delete_sign",
                 concurrency_limit=1)


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
