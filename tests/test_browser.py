"""A real browser: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against
``streamlit run app.py`` on localhost. Upload a MIDI file, train with the tiny preset, generate,
check an audio element with a non-zero duration and a working MIDI download, save a screenshot
(to $SEQGAN_MUSIC_SCREENSHOT when set, e.g. docs/screenshot.png)."""

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
        proc.wait(15)


def test_upload_train_listen_download_in_chromium(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    songs = [write(random_melody_pm(i), tmp_path / f"tune_{i}.mid") for i in range(4)]
    songs.append(write(song_pm(1), tmp_path / "band.mid"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(60_000)
        page.goto(server)
        page.locator("input[type=file]").first.set_input_files(songs)
        expect(page.get_by_text("tune_0.mid")).to_be_visible()
        page.get_by_role("button", name="Prepare dataset").click()
        expect(page.get_by_text("What the model will learn")).to_be_visible()

        page.get_by_role("tab", name="2 · Train").click()
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Preset").click()
        page.get_by_role("option", name="Tiny (tests)").click()
        page.get_by_role("button", name="Start training").click()
        page.wait_for_function("document.body.innerText.includes('Status: done')", timeout=120_000)
        expect(page.get_by_text("Newest sample")).to_be_visible()

        page.get_by_role("tab", name="3 · Generate").click()
        page.get_by_role("button", name="Generate", exact=True).click()
        expect(page.get_by_text("Melody 1", exact=False)).to_be_visible()
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
        page.reload()  # the workspace keeps the melodies: the Generate tab shows them again
        page.get_by_role("tab", name="3 · Generate").click()
        expect(page.get_by_text("Melody 1", exact=False)).to_be_visible()
        shot = os.environ.get("SEQGAN_MUSIC_SCREENSHOT") or str(tmp_path / "screenshot.png")
        page.evaluate("document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
        page.screenshot(path=shot, full_page=True)
        browser.close()
    assert Path(shot).stat().st_size > 10_000
