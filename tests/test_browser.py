"""A real browser: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against
``streamlit run app.py`` on localhost. Upload MIDI files, train with the Fast demo preset, reload
during training (the page re-attaches on the tab that was open and progress moves on), stop it
from a second tab on the same address, resume it to the end, evaluate it (the reading and chart,
again after a reload), compare MLE and best side by side, generate, check an audio element with a
non-zero duration, a MIDI and a MusicXML download and the engraved score, reload (dataset and
melodies are found again), continue a primer, let the Whole tunes preset set up its 8-bar windows
from the songs kept in the workspace, save screenshots (to $SEQGAN_MUSIC_SCREENSHOT when set, e.g.
docs/screenshot.png, with docs/score.png beside it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from midi_factory import random_melody_pm, song_pm, write
from ports import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed (scripts/setup.sh --dev)"),
]



@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = dict(os.environ, SEQGAN_MUSIC_APP_DIR=str(tmp_path / "app"), SEQGAN_MUSIC_CACHE=str(tmp_path / "cache"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise AssertionError("streamlit did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:  # a timing probe of a larger preset still running: it ends at exit only
            proc.kill()
            proc.wait(15)


def test_upload_train_listen_download_in_chromium(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    songs = [write(random_melody_pm(i), tmp_path / f"tune_{i}.mid") for i in range(19)]  # 2 held out
    songs.append(write(song_pm(1), tmp_path / "band.mid"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)  # generating (rollout rewards, audio, scores) takes seconds on a busy CPU
        page.goto(server)
        page.locator("input[type=file]").first.set_input_files(songs)
        expect(page.get_by_text("tune_0.mid", exact=True)).to_be_visible()
        # the upload reruns the page: a click while it runs, or just before it starts, can be lost
        # with the elements it replaces; then the button is still there to click again
        for attempt in range(3):
            expect(page.get_by_test_id("stApp")).not_to_have_attribute("data-test-script-state", "running")
            page.get_by_role("button", name="Prepare dataset").click()
            try:
                expect(page.get_by_text("What the model will learn")).to_be_visible(timeout=30_000 * (attempt + 1))
                break
            except AssertionError:
                if attempt == 2:
                    raise

        page.get_by_role("tab", name="2 · Train").click()
        expect(page.get_by_label("The folk base model")).to_be_checked()  # the default start
        page.get_by_role("button", name="Start training").click()  # the default preset, Fast demo
        expect(page.get_by_text("The generator started from the folk base model", exact=False)).to_be_visible()
        unit = """() => { const m = document.body.innerText.match(/unit (\\d+)\\/\\d+/); return m ? +m[1] : -1; }"""
        page.wait_for_function(f"({unit})() >= 2", timeout=120_000)
        page.reload()  # the running training belongs to the workspace: the page re-attaches to it
        expect(page.get_by_role("tab", name="2 · Train")).to_have_attribute("aria-selected", "true")  # the open tab
        expect(page.get_by_text("Status:", exact=False)).to_be_visible()
        before = page.evaluate(unit)
        page.wait_for_function(f"({unit})() > {before}", timeout=60_000)  # progress moves on
        second = browser.new_page(viewport={"width": 1400, "height": 1000})  # the same address in another tab
        second.set_default_timeout(60_000)
        second.goto(page.url)
        second.get_by_role("tab", name="2 · Train").click()
        expect(second.get_by_text("Status: running", exact=False)).to_be_visible()
        # the training's Stop, not the toolbar's Stop of a running script
        second.locator('[role="tabpanel"]:visible').get_by_role("button", name="Stop", exact=True).click()
        second.wait_for_function("document.body.innerText.includes('Status: stopped')", timeout=60_000)
        page.wait_for_function("document.body.innerText.includes('Status: stopped')", timeout=60_000)
        second.close()

        expect(page.get_by_test_id("stApp")).not_to_have_attribute("data-test-script-state", "running")
        page.locator('[role="tabpanel"]:visible').get_by_role("button", name="Resume", exact=True, disabled=False).click()
        page.wait_for_function("document.body.innerText.includes('Status: done')", timeout=180_000)

        page.get_by_role("tab", name="4 · Evaluate").click()
        page.get_by_role("button", name="Evaluate", exact=True).click()
        reading = page.get_by_text("than the MLE model", exact=False)
        expect(reading).to_be_visible(timeout=180_000)
        expect(page.locator('[role="tabpanel"]:visible canvas, [role="tabpanel"]:visible .vega-embed').first).to_be_visible()
        page.reload()  # the evaluation is kept in the run folder, and the page opens on its tab
        expect(page.get_by_role("tab", name="4 · Evaluate")).to_have_attribute("aria-selected", "true")
        expect(reading).to_be_visible()

        page.get_by_role("tab", name="3 · Generate").click()
        panel = page.locator('[role="tabpanel"]:visible')
        panel.get_by_text("Compare MLE and best").click()
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(panel.get_by_role("heading", name="MLE")).to_be_visible()
        expect(panel.get_by_role("heading", name="Best")).to_be_visible()
        assert panel.locator("audio").count() >= 2
        panel.get_by_text("Compare MLE and best").click()  # back to one model's melodies
        expect(page.get_by_test_id("stApp")).not_to_have_attribute("data-test-script-state", "running")
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(panel.get_by_role("heading", name="Best")).to_have_count(0)
        expect(page.get_by_text("Melody 1", exact=False)).to_have_count(1)
        audio = page.locator('[role="tabpanel"]:visible audio').first
        duration = audio.evaluate("""el => new Promise(resolve => {
            if (el.readyState >= 1) resolve(el.duration);
            else { el.addEventListener('loadedmetadata', () => resolve(el.duration)); el.load(); }
        })""")
        assert duration > 0.5
        with page.expect_download() as info:
            page.get_by_role("button", name="Download MIDI").first.click()
        midi = Path(info.value.path()).read_bytes()
        assert midi.startswith(b"MThd")
        score = page.locator('[role="tabpanel"]:visible img[src^="data:image/svg+xml"]').first
        expect(score).to_be_visible()
        assert score.evaluate("el => el.naturalWidth") > 200  # the browser decoded the engraved SVG
        with page.expect_download() as info:
            page.get_by_role("button", name="Download MusicXML").first.click()
        from music21 import converter

        assert len(converter.parse(info.value.path(), format="musicxml").flatten().notes) >= 1
        if os.environ.get("SEQGAN_MUSIC_SCREENSHOT"):
            score.screenshot(path=str(Path(os.environ["SEQGAN_MUSIC_SCREENSHOT"]).with_name("score.png")))
        page.reload()  # the workspace keeps the dataset and the melodies
        expect(page.get_by_role("tab", name="3 · Generate")).to_have_attribute("aria-selected", "true")
        expect(page.get_by_text("Melody 1", exact=False)).to_be_visible()
        primer = write(random_melody_pm(9, notes=5), tmp_path / "primer.mid")
        page.locator('[role="tabpanel"]:visible input[type=file]').first.set_input_files(primer)
        expect(page.get_by_text("primer.mid")).to_be_visible()
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.get_by_text("mean reward of the new notes", exact=False).first).to_be_visible()
        shot = os.environ.get("SEQGAN_MUSIC_SCREENSHOT") or str(tmp_path / "screenshot.png")
        page.get_by_role("tab", name="2 · Train").click()  # the Whole tunes preset gets its 8-bar windows
        page.get_by_label("Preset").click()
        page.get_by_role("option", name="Whole tunes (CPU)").click()
        page.get_by_role("button", name="Prepare 8-bar windows").click()
        expect(page.get_by_role("tab", name="1 · Songs")).to_have_attribute("aria-selected", "true")
        expect(page.get_by_text("press Prepare dataset", exact=False)).to_be_visible()
        page.get_by_role("button", name="Prepare dataset").click()  # the songs uploaded before, kept in the workspace
        expect(page.get_by_text("Reading songs", exact=False)).to_have_count(0)
        expect(page.get_by_test_id("stApp")).not_to_have_attribute("data-test-script-state", "running")
        page.get_by_role("tab", name="2 · Train").click()
        expect(page.get_by_text("Windows: 8 bars", exact=False)).to_be_visible()
        page.get_by_role("tab", name="3 · Generate").click()
        page.evaluate("document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
        page.screenshot(path=shot, full_page=True)
        browser.close()
    assert Path(shot).stat().st_size > 10_000
