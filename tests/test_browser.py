"""The demo in a real browser: `python app.py` in a subprocess, driven in Debian Chromium by Playwright.

Chromium's fake capture device plays a real clip (signer_selfie.mp4 turned into y4m at test
time) as the webcam, so recording and live streaming are exercised end to end. Screenshots of
every step go to test-artifacts/screenshots/demo/ (gitignored) to look at after a run.

SIGNSEEK_DEMO_URL=http://127.0.0.1:7860 runs the same steps against a server that is already up.
Needs /usr/bin/chromium (apt package `chromium`; `make system-deps`). Never `playwright install`.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from demo_support import PROJECT_ROOT, clip_variants, demo_env, running_app, video_to_y4m

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots" / "demo"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
    # The webcam: no permission prompt, a fake device playing our clip.
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]
WAIT_MS = 60_000  # one MediaPipe run on the shared CPU, with room to spare

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"BROWSER TEST SKIPPED: {CHROMIUM} is missing. Install Debian's chromium "
                    "(`make system-deps` or `apt-get install chromium`); never `playwright install`.")
    return CHROMIUM


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if os.environ.get("SIGNSEEK_DEMO_URL"):  # a server already running (e.g. while developing)
        yield os.environ["SIGNSEEK_DEMO_URL"].rstrip("/")
        return
    tmp = tmp_path_factory.mktemp("browser-demo")
    with running_app(demo_env(tmp), tmp / "app.log") as url:
        yield url


@pytest.fixture(scope="module")
def page(chromium_path, app_url, selfie_clip, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    camera = video_to_y4m(selfie_clip, tmp_path_factory.mktemp("camera") / "camera.y4m")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium_path),
                                     args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera}"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.grant_permissions(["camera", "microphone"])
        tab = context.new_page()
        tab.goto(app_url + "/")
        tab.wait_for_selector("#random-sample", timeout=WAIT_MS)
        yield tab
        browser.close()


def shot(page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def wait_for_result(page, must_contain: str = "", previous: str | None = None) -> str:
    """The verdict banner once it shows a result (or a problem) that differs from ``previous``."""
    deadline = time.monotonic() + WAIT_MS / 1000
    banner = page.locator("#recognise-banner .ss-banner")  # not the progress text over it
    text = ""
    while time.monotonic() < deadline:
        if banner.count():
            text = banner.inner_text()
            if banner.locator("xpath=self::*[contains(@class, 'ss-ok') or contains(@class, 'ss-no') or "
                              "contains(@class, 'ss-err')]").count() and text != previous and must_contain in text:
                return text
        page.wait_for_timeout(250)
    raise AssertionError(f"no result containing {must_contain!r} in the banner; it says {text!r}")


def banner_text(page) -> str:
    banner = page.locator("#recognise-banner .ss-banner")
    return banner.inner_text() if banner.count() else ""


def choose_source(page, source: str) -> None:
    """Empty the Recognise input and switch it to "Upload file" or "Capture from camera"."""
    video = page.locator("#recognise-video")
    clear = video.get_by_role("button", name=re.compile("^clear", re.I))
    if clear.count():
        clear.first.click(force=True)  # the player's own overlay may sit over it
    video.get_by_role("button", name=source).click()


def upload_clip(page, path: Path) -> None:
    choose_source(page, "Upload file")
    page.locator("#recognise-video input[type=file]").set_input_files(str(path))


def ranked_signs(page) -> list[str]:
    # Gradio's virtual table: the header is a <tr>, each data row a div[role=row] of cells.
    rows = page.locator("#recognise-ranked div[role=row]")
    rows.first.wait_for(timeout=WAIT_MS)
    return [rows.nth(i).evaluate("row => row.children[1].innerText").strip() for i in range(rows.count())]


def test_upload_a_real_clip_and_get_a_ranked_result(page, selfie_clip):
    upload_clip(page, selfie_clip)
    banner = wait_for_result(page, "signer_selfie.mp4")
    assert re.search(r"Recognised|Not sure|No sign", banner)
    signs = ranked_signs(page)
    assert signs and all(signs)
    page.locator("#recognise-skeleton video").wait_for(timeout=WAIT_MS)
    assert "decode + landmarks" in page.locator("#recognise-timings").inner_text()
    shot(page, "01_recognise_upload")


def test_click_an_example_and_see_a_ranked_explained_result(page):
    before = banner_text(page)
    examples = page.locator("#recognise-examples")
    examples.get_by_role("button", name="hoy", exact=True).click()  # an MSL-150 clip (HEVC, converted)
    banner = wait_for_result(page, "hoy", previous=before)
    assert "Problem" not in banner, banner
    assert ranked_signs(page)
    assert page.locator("#recognise-chart .js-plotly-plot").count() == 1
    shot(page, "02_recognise_example")


def test_random_reference_sample_is_replayed_as_a_skeleton(page):
    before = banner_text(page)
    page.click("#random-sample")
    banner = wait_for_result(page, "signs_sample.npz", previous=before)
    assert "signed as" in banner
    shot(page, "03_random_sample")


def test_bad_input_shows_a_message_not_a_traceback(page, tmp_path):
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is not a video")
    before = banner_text(page)
    upload_clip(page, not_video)
    banner = wait_for_result(page, "Problem", previous=before)
    assert "cannot be used" in banner and "Traceback" not in page.content()
    shot(page, "04_bad_input")


def test_record_from_the_webcam_and_recognise(page):
    choose_source(page, "Capture from camera")
    video = page.locator("#recognise-video")
    video.get_by_text("Click to Access Webcam").click()
    before = banner_text(page)
    video.get_by_role("button", name=re.compile("record", re.I)).first.click()
    page.wait_for_timeout(2000)  # the fake camera plays the selfie clip
    video.get_by_role("button", name=re.compile("record|stop", re.I)).first.click()
    banner = wait_for_result(page, previous=before)
    assert "Problem" not in banner, banner
    shot(page, "05_recognise_webcam")


def test_live_tab_streams_the_webcam_with_landmarks_and_captions(page):
    open_tab(page, "Live")
    cam = page.locator("#live-webcam")
    cam.get_by_text("Click to Access Webcam").click()
    cam.get_by_role("button", name="capture photo").click()  # starts streaming
    page.locator("#live-overlay img").wait_for(timeout=WAIT_MS)
    captions = page.locator("#live-captions")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not re.search(r"latency \d+ ms", captions.inner_text()):
        page.wait_for_timeout(500)
    text = captions.inner_text()
    assert re.search(r"latency \d+ ms", text) and "now:" in text, text
    page.wait_for_timeout(1500)  # let the window fill and be recognised
    shot(page, "06_live")
    cam.get_by_role("button", name="capture photo").click()  # the same button stops the stream


def test_add_a_sign_from_three_clips_and_get_it_back(page, selfie_clip, tmp_path):
    takes = clip_variants(selfie_clip, tmp_path / "takes")
    open_tab(page, "Add a sign")
    page.locator("#enrol-name input, #enrol-name textarea").first.fill("wave-browser")
    page.locator("#enrol-files input[type=file]").set_input_files([str(p) for p in takes])
    page.wait_for_timeout(1000)
    page.click("#enrol-run")
    status = page.locator("#enrol-status")
    status.get_by_text(re.compile("Added|Problem")).wait_for(timeout=2 * WAIT_MS)
    assert "Added 'wave-browser' from 3 clips" in status.inner_text(), status.inner_text()
    assert "wave-browser" in page.locator("#enrol-signs").inner_text()
    shot(page, "07_enrolled")

    open_tab(page, "Recognise")
    before = banner_text(page)
    upload_clip(page, selfie_clip)
    wait_for_result(page, "signer_selfie.mp4", previous=before)
    assert ranked_signs(page)[0] == "wave-browser"
    shot(page, "08_enrolled_sign_recognised")


def test_model_tab_shows_the_card(page):
    open_tab(page, "Model")
    page.locator("#model-card").get_by_text("References").wait_for(timeout=WAIT_MS)
    assert "SIM_THRESHOLD" in page.locator("#model-thresholds").inner_text()
    shot(page, "09_model")

