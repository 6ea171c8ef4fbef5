"""The demo in a real browser: `python app.py` in a subprocess, driven in Debian Chromium by Playwright.

Chromium's fake capture device plays a real clip (signer_selfie.mp4 turned into y4m at test
time) as the webcam, so recording and live streaming are exercised end to end. The server runs
locked (API_KEY set), as a shared deployment should. Screenshots of every step go to
test-artifacts/screenshots/demo/ (gitignored) to look at after a run.

SIGNSEEK_DEMO_URL=http://127.0.0.1:7860 runs the same steps against a server that is already up
(its API_KEY must then be conftest.DEMO_KEY). The server is shared with tests/test_demo_client.py.
Needs /usr/bin/chromium (apt package `chromium`; `make system-deps`). Never `playwright install`.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import DEMO_KEY as KEY
from demo_support import PROJECT_ROOT, phone_clip, video_to_y4m

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots" / "demo"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
    # The webcam: no permission prompt, a fake device playing our clip.
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]
WAIT_MS = 180_000  # one MediaPipe run (maybe behind the start-up warm-up) on a shared CPU, with room to spare

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(400)]

# Every test stands alone, in any order (pytest --random-order): it opens the tab it uses, makes the
# result it inspects, and a sign it needs is added by the test (and deleted, pass or fail). The page,
# the browser and the server are shared: a page load and a server start cost seconds.


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"BROWSER TEST SKIPPED: {CHROMIUM} is missing. Install Debian's chromium "
                    "(`make system-deps` or `apt-get install chromium`); never `playwright install`.")
    return CHROMIUM


@pytest.fixture(scope="module")
def app_url(demo_server):
    return demo_server[0]  # shared with tests/test_demo_client.py (tests/conftest.py)


@pytest.fixture(scope="module")
def browser(chromium_path, selfie_clip, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    camera = video_to_y4m(selfie_clip, tmp_path_factory.mktemp("camera") / "camera.y4m")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(chromium_path),
                                      args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera}"])
        yield chromium
        chromium.close()


def _open(browser, app_url: str, width: int, height: int):
    context = browser.new_context(viewport={"width": width, "height": height})
    context.grant_permissions(["camera", "microphone"])
    tab = context.new_page()
    tab.goto(app_url + "/")
    tab.wait_for_selector("#random-sample", timeout=WAIT_MS)
    return tab


@pytest.fixture(scope="module")
def page(browser, app_url):
    return _open(browser, app_url, 1400, 1000)


@pytest.fixture(scope="module")
def client(app_url):
    """The same server through gradio_client: what a test needs set up, without the page."""
    from gradio_client import Client

    return Client(app_url + "/", verbose=False)


@contextmanager
def deleted_afterwards(client, name: str) -> Iterator[str]:
    """Whatever the test does with sign ``name``, it is gone afterwards (the server is shared)."""
    try:
        yield name
    finally:
        signs, _ = client.predict(api_name="/list_signs")
        if name in [row[0] for row in signs["data"]]:
            client.predict(name, KEY, api_name="/delete_sign")


@contextmanager
def added_sign(client, name: str, takes: list[Path]) -> Iterator[str]:
    """Sign ``name`` added from ``takes`` by the demo's own /enrol_sign (as the page does), then deleted."""
    from gradio_client import handle_file

    with deleted_afterwards(client, name):
        files = [handle_file(str(p)) for p in takes]
        status = html.unescape(client.predict(name, files, None, None, None, "new", KEY, api_name="/enrol_sign")[0])
        assert f"Added '{name}' from {len(takes)} clips" in status, status
        yield name


@pytest.fixture(scope="module")
def upright_selfie_hands(client, selfie_clip) -> int:
    """Frames with hands in signer_selfie.mp4 as the server sees it (the landmarks are then cached)."""
    from gradio_client import handle_file

    banner = client.predict(handle_file(str(selfie_clip)), api_name="/recognise_video")[0]
    return int(re.search(r"hands in (\d+)", banner).group(1))


def shot(page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, timeout=WAIT_MS)
    return path


def open_tab(page, name: str) -> None:
    """Select tab ``name``, whatever tab an earlier test left open (through Gradio's overflow menu if
    the tab's button does not fit: the demo's tabs wrap, so that is a fallback)."""
    tab = page.get_by_role("tab", name=name, exact=True)
    if tab.is_visible():
        tab.click()
    else:
        page.locator("#tabs .overflow-menu button").first.click()
        page.locator("#tabs .overflow-dropdown").get_by_role("button", name=name, exact=True).click()
    page.wait_for_function("name => [...document.querySelectorAll('#tabs [role=tab]')].some(t => "
                           "t.textContent.trim() === name && t.getAttribute('aria-selected') === 'true')",
                           arg=name, timeout=WAIT_MS)


# Gradio's status tracker over the banner: class "hide" unless the event is pending or still generating
# (an upload answers first, then sends the overlay and the chart). Watched from the moment it is armed:
# an answer that repeats the banner's text (the same held-out clip twice in a row) still counts as new.
_BUSY = ("[...document.querySelectorAll('#recognise-banner [data-testid=status-tracker]')]"
         ".some(w => !w.classList.contains('hide'))")
_WATCH_BANNER = f"""() => {{
  const busy = () => {_BUSY};
  if (window.__ssWatch) window.__ssWatch.disconnect();
  window.__ssBusySeen = busy();
  const box = document.querySelector('#recognise-banner');
  if (!box) return;
  window.__ssWatch = new MutationObserver(() => {{ if (busy()) window.__ssBusySeen = true; }});
  window.__ssWatch.observe(box, {{subtree: true, childList: true, attributes: true,
                                 attributeFilter: ['class']}});
}}"""
_BANNER_BUSY = f"() => [window.__ssBusySeen === true, {_BUSY}]"


def watch_banner(page) -> str:
    """Before an action on the Recognise tab: the banner's text now, and start watching it."""
    page.evaluate(_WATCH_BANNER)
    return banner_text(page)


def wait_for_result(page, must_contain: str = "", previous: str | None = None) -> str:
    """The verdict banner once the event is over and it shows a result (or a problem) containing
    ``must_contain`` that came after ``watch_banner`` (``previous``, its return value): new text, or
    the same text after a busy spell."""
    deadline = time.monotonic() + WAIT_MS / 1000
    banner = page.locator("#recognise-banner .ss-banner").first  # not the progress text over it
    text = ""
    while time.monotonic() < deadline:
        if banner.count():
            text = banner.inner_text()
            final = banner.locator("xpath=self::*[contains(@class, 'ss-ok') or contains(@class, 'ss-no') or "
                                   "contains(@class, 'ss-err')]").count()
            if final and must_contain in text:
                seen, busy = page.evaluate(_BANNER_BUSY)
                if not busy and (previous is None or text != previous or seen):
                    return text
        page.wait_for_timeout(250)
    raise AssertionError(f"no result containing {must_contain!r} in the banner; it says {text!r}")


def banner_text(page) -> str:
    banner = page.locator("#recognise-banner .ss-banner").first
    return banner.inner_text() if banner.count() else ""


def choose_source(page, source: str) -> None:
    """Empty the Recognise input and switch it to "Upload file" or "Capture from camera"."""
    video = page.locator("#recognise-video")
    clear = video.get_by_role("button", name=re.compile("^clear", re.I))
    if clear.count():
        clear.first.click(force=True)  # the player's own overlay may sit over it
    video.get_by_role("button", name=source).click()


def upload_clip(page, path: Path) -> str:
    """Upload ``path`` on the Recognise tab; returns the banner's text before (for wait_for_result)."""
    open_tab(page, "Recognise")
    choose_source(page, "Upload file")
    before = watch_banner(page)
    page.locator("#recognise-video input[type=file]").set_input_files(str(path))
    return before


def fill_enrolment(page, name: str, takes: list[Path], key: str) -> None:
    """The Add a sign form: key, name and exactly ``takes`` (files an earlier test left are cleared)."""
    open_tab(page, "Add a sign")
    page.get_by_label("API key").fill(key)
    page.get_by_label("Sign name").fill(name)
    files = page.locator("#enrol-files")
    clear = files.get_by_role("button", name=re.compile("^clear", re.I))
    if clear.count():
        clear.first.click()
    files.locator("input[type=file]").set_input_files([str(p) for p in takes])
    page.wait_for_timeout(1000)


def ranked_signs(page) -> list[str]:
    rows = page.locator("#recognise-ranked table.ss-ranked tbody tr")
    rows.first.wait_for(timeout=WAIT_MS)
    return [rows.nth(i).locator("th").evaluate("th => th.firstChild.textContent").strip() for i in range(rows.count())]


def click_example(page, elem_id: str, must_contain: str) -> str:
    open_tab(page, "Recognise")
    before = watch_banner(page)
    page.click(f"#{elem_id}")
    return wait_for_result(page, must_contain, previous=before)


def videos(page, selector: str) -> list[dict]:
    """Size and duration of the <video> elements under ``selector`` (once their metadata loaded)."""
    page.wait_for_function(f"() => [...document.querySelectorAll('{selector} video')].every(v => v.readyState >= 1)",
                           timeout=WAIT_MS)
    return page.evaluate(f"() => [...document.querySelectorAll('{selector} video')].map(v => "
                         "({width: v.videoWidth, height: v.videoHeight, duration: v.duration}))")


def visible_toasts(page) -> list[str]:
    """The text of every pop-up message on screen."""
    return page.evaluate("() => [...document.querySelectorAll('[data-testid=toast-text]')]"
                         ".filter(t => t.offsetParent !== null).map(t => t.textContent.trim())")


def test_first_screen_names_the_language_and_every_sign(page):
    intro = page.locator("#intro").inner_text()
    assert "American Sign Language (ASL)" in intro and "32 signs" in intro
    for sign in ("coffee", "thank-you", "hello", "water"):
        assert sign in intro
    assert [t.inner_text() for t in page.get_by_role("tab").all()] == ["Recognise", "Signs", "Live", "Add a sign",
                                                                       "About", "Model"]
    # Refreshed when the page opens, never greyed out while that runs (the first thing a visitor reads).
    faded = page.locator("#intro").evaluate(  # the text's own opacity times its ancestors'
        "el => [...el.querySelectorAll('h1, p')].filter(e => { let o = 1; "
        "for (let n = e; n; n = n.parentElement) o *= +getComputedStyle(n).opacity; return o < 1; }).length")
    assert faded == 0
    shot(page, "00_first_screen")


def test_upload_a_real_clip_and_get_a_ranked_explained_result(page, selfie_clip, upright_selfie_hands):
    before = upload_clip(page, selfie_clip)
    banner = wait_for_result(page, "signer_selfie.mp4", previous=before)
    assert re.search(r"Recognised|Not sure|No sign|Not a sign it knows", banner)
    signs = ranked_signs(page)
    assert signs and all(signs)
    assert int(re.search(r"hands in (\d+)", banner).group(1)) == upright_selfie_hands  # as scripts see it
    page.locator("#recognise-skeleton video").wait_for(timeout=WAIT_MS)
    assert "decode + landmarks" in page.locator("#recognise-timings").inner_text()
    # Every number has its tooltip and the legend explains them.
    headings = page.locator("#recognise-ranked thead abbr")
    assert headings.count() == 4 and all(headings.nth(i).get_attribute("title") for i in range(4))
    page.locator("#recognise-ranked summary").click()
    assert "Below 0 means unlike that sign on average" in page.locator("#recognise-ranked").inner_text()
    shot(page, "01_recognise_upload")


def test_held_out_clips_of_shipped_signs_give_their_sign(page):
    from playwright.sync_api import expect

    banner = click_example(page, "example-hello", "hello")  # a held-out clip of 'hello'
    assert "Recognised: hello" in banner and "Should give: 'hello'" in banner and "as expected" in banner
    assert ranked_signs(page)[0] == "hello"
    # Plotly draws after the answer (its script loads with the page's first chart): wait for it.
    expect(page.locator("#recognise-chart .js-plotly-plot")).to_have_count(1, timeout=WAIT_MS)
    shot(page, "02_example_known_sign")
    banner = click_example(page, "example-resting", "resting")
    assert banner.startswith("No sign") and "as expected" in banner
    expect(page.locator("#recognise-chart .js-plotly-plot")).to_have_count(0)  # nothing compared: no empty axes
    shot(page, "03_example_resting")


def test_a_sign_it_does_not_know_is_rejected(page):
    """The Mexican Sign Language example should be rejected. Depends on the decision rule of the
    trust issue (10): the model shipped on 2026-11-23 accepts hoy_001 as 'c'."""
    banner = click_example(page, "example-hoy_001", "hoy_001.mp4")
    shot(page, "04_example_unknown_sign")
    assert "Should give: rejected (not a sign it knows)" in banner
    assert "as expected" in banner, banner


def test_random_held_out_clip_says_which_sign_it_is(page):
    open_tab(page, "Recognise")
    before = watch_banner(page)
    page.click("#random-sample")
    banner = wait_for_result(page, "stored clip", previous=before)
    assert "Should give:" in banner and "a stored clip of" in banner
    shot(page, "05_random_held_out")


def test_bad_input_shows_a_message_not_a_traceback(page, tmp_path):
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is not a video")
    before = upload_clip(page, not_video)
    banner = wait_for_result(page, "Problem", previous=before)
    assert "cannot be used" in banner and "Traceback" not in page.content()
    assert not visible_toasts(page), visible_toasts(page)  # the banner says it; no pop-up over it
    shot(page, "06_bad_input")


def test_rotated_hevc_phone_clip_is_previewed_and_recognised_upright(page, selfie_clip, upright_selfie_hands,
                                                                     tmp_path):
    try:
        clip = phone_clip(selfie_clip, tmp_path)  # stored sideways, tagged to be shown upright; HEVC
    except FileNotFoundError as exc:
        pytest.skip(f"PHONE CLIP TEST SKIPPED: {exc}")
    before = upload_clip(page, clip)
    banner = wait_for_result(page, clip.name, previous=before)
    assert "Problem" not in banner, banner
    hands = int(re.search(r"hands in (\d+)", banner).group(1))
    upright = upright_selfie_hands  # the same clip, recorded sideways and tagged: about the same hands
    assert hands >= 0.8 * upright > 0, f"hands in {hands} frames of the phone clip, {upright} upright"
    # Chromium cannot play HEVC: the input now shows an H.264 preview, upright like the overlay.
    timings = page.locator("#recognise-timings").inner_text()
    assert "preview (codec)" in timings
    page.locator("#recognise-skeleton video").wait_for(timeout=WAIT_MS)
    shown = videos(page, "#recognise-video")
    overlay = videos(page, "#recognise-skeleton")
    assert shown and overlay
    for video in (*shown, *overlay):
        assert video["height"] > video["width"] > 0, video  # portrait, as the phone showed it
    # Chromium's own "Video not playable" for the HEVC upload is not shown: the preview answers it.
    assert not visible_toasts(page), visible_toasts(page)
    shot(page, "07_phone_clip")


def test_record_from_the_webcam_and_recognise(page):
    open_tab(page, "Recognise")
    choose_source(page, "Capture from camera")
    video = page.locator("#recognise-video")
    video.get_by_text("Click to Access Webcam").click()
    before = watch_banner(page)
    video.get_by_role("button", name=re.compile("record", re.I)).first.click()
    page.wait_for_timeout(2000)  # the fake camera plays the selfie clip
    video.get_by_role("button", name=re.compile("record|stop", re.I)).first.click()
    banner = wait_for_result(page, previous=before)
    assert "Problem" not in banner, banner
    # The recording's own webm has no duration ("0:00 / Infinity"): the player gets a preview that has one.
    assert "preview (no duration)" in page.locator("#recognise-timings").inner_text()
    recorded = videos(page, "#recognise-video")
    assert recorded and all(0 < v["duration"] < 60 for v in recorded), recorded
    shot(page, "08_recognise_webcam")


def test_wrong_answer_flag_asks_consent_keeps_and_deletes(page):
    click_example(page, "example-hello", "hello")  # an answer to flag (a stored clip: no MediaPipe)
    page.locator("#flag").get_by_text("Wrong answer? Tell us").click()
    notice = page.locator("#flag-notice").inner_text()
    assert "landmark coordinates (no video, no face" in notice and "days at most" in notice
    correction = page.locator("#flag-correction input")
    correction.fill("wave")
    correction.press("Enter")
    page.click("#flag-send")
    status = page.locator("#flag-status")
    status.get_by_text("nothing was kept").wait_for(timeout=WAIT_MS)  # no consent yet
    page.get_by_label("I agree that the landmarks and the answer are kept as described above").check()
    page.click("#flag-send")
    status.get_by_text("Thank you: kept as feedback").wait_for(timeout=WAIT_MS)
    consent = page.get_by_label("I agree that the landmarks and the answer are kept as described above")
    page.wait_for_function("el => !el.checked", arg=consent.element_handle(), timeout=WAIT_MS)  # asked again next time
    shot(page, "09_flagged")
    page.click("#flag-delete")
    status.get_by_text("Deleted feedback").wait_for(timeout=WAIT_MS)


def test_gallery_shows_every_sign_and_tries_one(page):
    open_tab(page, "Signs")
    gallery = page.locator("#signs-gallery")
    gallery.locator("img").first.wait_for(timeout=WAIT_MS)
    thumbs = gallery.locator("button img")
    assert thumbs.count() >= 32
    captions = gallery.inner_text()
    for sign in ("coffee", "hello", "thank-you", "z"):
        assert f"{sign} · " in captions
    gallery.get_by_text("hello · ", exact=False).first.click()
    page.locator("#signs-detail").get_by_text("hello").first.wait_for(timeout=WAIT_MS)
    assert "shipped with the model" in page.locator("#signs-detail").inner_text()
    page.locator("#signs-video video").wait_for(timeout=WAIT_MS)
    shot(page, "10_gallery")
    before = watch_banner(page)
    page.click("#signs-try")
    banner = wait_for_result(page, "hello", previous=before)  # the Recognise tab, with a held-out clip
    assert page.get_by_role("tab", name="Recognise", exact=True).get_attribute("aria-selected") == "true"
    assert "Should give: 'hello'" in banner


def test_locked_deployment_asks_for_the_key_adds_asks_before_adding_more_and_delete_confirms(page, client,
                                                                                            demo_takes):
    """The whole Add a sign story on the page, from no sign to the sign deleted (each step needs the last)."""
    from playwright.sync_api import expect

    takes = demo_takes
    with deleted_afterwards(client, "wave-browser"):
        fill_enrolment(page, "wave-browser", takes, key="")
        assert "locked" in page.locator("#enrol-access").inner_text()
        status = page.locator("#enrol-status")
        page.click("#enrol-run")  # no key
        status.get_by_text("locked").wait_for(timeout=WAIT_MS)
        shot(page, "11_enrol_locked")
        page.get_by_label("API key").fill("not-the-key")
        page.click("#enrol-run")
        status.get_by_text("does not match").wait_for(timeout=WAIT_MS)
        page.get_by_label("API key").fill(KEY)
        page.click("#enrol-run")
        status.get_by_text("Added 'wave-browser'").wait_for(timeout=2 * WAIT_MS)
        assert "Added 'wave-browser' from 3 clips" in status.inner_text(), status.inner_text()
        assert "wave-browser" in page.locator("#enrol-signs").inner_text()
        shot(page, "12_enrolled")
        # Every list on the page follows, without "Refresh list".
        open_tab(page, "Signs")
        page.locator("#signs-gallery").get_by_text("wave-browser · 3 refs · added here").wait_for(timeout=WAIT_MS)
        assert "wave-browser" in page.locator("#intro").inner_text()

        # The same name and clips again: it asks before adding to the existing sign.
        open_tab(page, "Add a sign")
        page.click("#enrol-run")
        status.get_by_text("'wave-browser' already exists (3 references").wait_for(timeout=WAIT_MS)
        page.locator("#enrol-confirm-add").wait_for(state="visible", timeout=WAIT_MS)
        shot(page, "14_add_to_existing_asks")
        page.click("#enrol-confirm-add")
        status.get_by_text("Added to 'wave-browser'").wait_for(timeout=2 * WAIT_MS)
        assert "(6 references of it" in status.inner_text()

        page.get_by_label("Added sign to delete").click()
        page.get_by_role("option", name="wave-browser").click()
        page.click("#enrol-delete")
        question = page.locator("#delete-confirm")
        question.get_by_text("Delete 'wave-browser' and its 6 references?").wait_for(timeout=WAIT_MS)
        shot(page, "15_delete_asks")
        page.click("#delete-confirm-yes")
        status.get_by_text("Deleted 'wave-browser'").wait_for(timeout=WAIT_MS)
        assert "wave-browser" not in page.locator("#enrol-signs").inner_text()
        expect(page.locator("#intro")).not_to_contain_text("wave-browser", timeout=WAIT_MS)  # the first screen too


def test_the_added_sign_is_recognised_at_once(page, client, demo_takes, selfie_clip, tmp_path):
    """A sign added from three cuts of the selfie is the nearest for the whole selfie clip, at once."""
    clip = tmp_path / "selfie_after_adding.mp4"  # its own name in the banner (same content: cached landmarks)
    clip.write_bytes(selfie_clip.read_bytes())
    with added_sign(client, "wave-browser-2", demo_takes):
        before = upload_clip(page, clip)
        wait_for_result(page, clip.name, previous=before)
        shot(page, "13_enrolled_sign_recognised")
        signs = ranked_signs(page)
        assert signs[0] == "wave-browser-2", signs


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
    shot(page, "16_live")
    cam.get_by_role("button", name="capture photo").click()  # the same button stops the stream


def test_model_and_about_tabs(page):
    open_tab(page, "Model")
    page.locator("#model-card").get_by_text("References").wait_for(timeout=WAIT_MS)
    assert "SIM_THRESHOLD" in page.locator("#model-thresholds").inner_text()
    open_tab(page, "About")
    about = page.locator("#about").inner_text()
    for words in ("What it is for", "Language and data", "Unknown signs", "Limitations", "MIT"):
        assert words in about
    shot(page, "17_about")


def test_phone_width_every_tab_reachable_compact_results_keyboard(browser, app_url):
    page = _open(browser, app_url, 390, 844)
    tabs = page.get_by_role("tab")
    assert tabs.count() == 6 and all(tabs.nth(i).is_visible() for i in range(6))  # none behind a menu
    for name in ("Signs", "Add a sign", "About", "Recognise"):
        open_tab(page, name)
        assert page.get_by_role("tab", name=name).get_attribute("aria-selected") == "true"
    # Keyboard only: Tab to an example, Enter, and the answer comes.
    target = page.locator("#example-hello")
    for _ in range(60):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            break
    else:
        raise AssertionError("the example button was not reached with the Tab key")
    before = watch_banner(page)
    page.keyboard.press("Enter")
    wait_for_result(page, "hello", previous=before)
    # Compact results: the key columns stay, the wide ones hide, nothing is wider than the screen.
    table = page.locator("#recognise-ranked table.ss-ranked")
    assert table.locator("th.ss-wide").first.evaluate("el => getComputedStyle(el).display") == "none"
    assert table.evaluate("el => el.getBoundingClientRect().right") <= 390
    chart = page.locator("#recognise-chart .js-plotly-plot")
    chart.wait_for(timeout=WAIT_MS)
    assert chart.evaluate("el => el.getBoundingClientRect().right") <= 390
    # The stage timings stack under each other: both columns of the table are on the screen.
    ms_heading = page.locator("#recognise-timings").get_by_text("ms", exact=True).first
    assert ms_heading.evaluate("el => el.getBoundingClientRect().right") <= 390
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 391
    # Labelled controls: every button has a name, the form fields have labels.
    unnamed = page.evaluate("() => [...document.querySelectorAll('button')].filter(b => b.offsetParent && "
                            "!(b.innerText.trim() || b.getAttribute('aria-label') || b.title)).length")
    assert unnamed == 0
    shot(page, "18_phone_390")
    page.context.close()
