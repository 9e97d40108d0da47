"""The explorer's web page in a real browser: headless Chromium (the system's package) driven by
playwright's Python client, against ``python -m qbdi_utils.explore --model DIR`` on a free port.

One walk through the page: it names the model, an uploaded query is selected and named on the upload
button, it is still there after a reload (the page's new kernel reads it back), a bar range moved in
the browser changes what is heard, and one click on a download button saves the file.

Skips, saying why, where playwright or Chromium is not installed: ``pip install playwright`` (no
``playwright install``: the test never downloads a browser) and ``apt-get install chromium``, or point
``QBDI_CHROMIUM`` at a Chromium binary. Screenshots go to ``QBDI_SHOTS_DIR`` when set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                               "(pip install playwright; the test uses the system's Chromium, no browser download)")

CHROMIUM = os.environ.get("QBDI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="no Chromium on this machine (apt-get install chromium, "
                                "or set QBDI_CHROMIUM to its binary)")

REPO = Path(__file__).resolve().parents[1]
WAIT_MS = 300_000  # a loaded 2-core machine starts a kernel and a model slowly


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cadence_midi(path: Path, spec) -> Path:
    from qbdi_utils import pianoroll

    roll = np.zeros((64, spec.n_columns), np.uint8)
    for step, chord in ((0, (60, 64, 67)), (16, (65, 69, 72)), (32, (67, 71, 74)), (48, (60, 64, 67))):
        for p in chord:
            i = p - spec.min_pitch
            roll[step:step + 16, i] = 1
            roll[step, spec.n_pitches + i] = 1
    return pianoroll.write_midi(roll, path, spec=spec)


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    """The explorer serving the tiny model; yields (url, cache dir)."""
    cache = tmp_path_factory.mktemp("explore_cache")
    port = _free_port()
    env = dict(os.environ, QBDI_CACHE_DIR=str(cache), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.Popen([sys.executable, "-m", "qbdi_utils.explore", "--model", tiny_model.info["model_dir"],
                             "--port", str(port)], cwd=str(REPO), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    found = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if re.search(r"\?token=[A-Za-z0-9_-]{10,}", line):
                found.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert found.wait(WAIT_MS / 1000), "".join(lines)
        url = re.search(r"(http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]{10,})", "".join(lines)).group(1)
        t0 = time.monotonic()
        while True:  # the port opens once Voila is up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() - t0 < WAIT_MS / 1000, "".join(lines)
                time.sleep(0.2)
        yield url, cache
    finally:
        proc.terminate()  # the explorer stops Voila and its kernels on SIGTERM
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _shot(page, name: str, tmp_path: Path) -> None:
    d = Path(os.environ.get("QBDI_SHOTS_DIR") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(d / f"{name}.png"), full_page=True)


def _selected_query(page) -> str:
    text = page.locator(".widget-dropdown select").first.evaluate("s => s.options[s.selectedIndex].text")
    return text.replace("\xa0", " ")  # the widget draws spaces as no-break spaces


def _wait_for_view(page) -> None:
    try:
        page.wait_for_selector(".widget-upload", timeout=WAIT_MS)  # the controls
        page.wait_for_selector(".widget-output img", timeout=WAIT_MS)  # the first view's plot
    except sync_api.TimeoutError:
        pytest.fail("the page showed no explorer; it reads:\n" + page.inner_text("body")[:2000])


def test_upload_reload_bar_range_and_download_in_a_browser(server, browser, tiny_model, tmp_path):
    from qbdi_utils import pianoroll

    url, cache = server
    page = browser.new_page(viewport={"width": 1300, "height": 1150}, accept_downloads=True)
    page.goto(url, timeout=WAIT_MS)
    _wait_for_view(page)
    model_name = Path(tiny_model.info["model_dir"]).name
    assert f"model {model_name}: trained on" in page.inner_text("body")
    assert _selected_query(page) == "haydn_op74no1_mvt1"
    upload = page.locator(".widget-upload")
    # the label is the title (CSS ::after); the widget's own "upload MIDI (0)" text is drawn at size 0
    assert upload.get_attribute("title") == "upload MIDI"
    assert upload.evaluate("b => getComputedStyle(b).fontSize") == "0px"
    assert upload.evaluate("b => getComputedStyle(b, '::after').fontSize") != "0px"

    # upload a query through the button's file chooser
    midi = _cadence_midi(tmp_path / "cadence.mid", tiny_model.spec)
    with page.expect_file_chooser(timeout=WAIT_MS) as chooser:
        upload.click()
    chooser.value.set_files(str(midi))
    page.wait_for_function("() => document.querySelector('.widget-upload').title === 'cadence.mid'",
                           timeout=WAIT_MS)
    page.wait_for_function("() => document.body.innerText.includes('cadence: 4 bars encoded once')",
                           timeout=WAIT_MS)  # the status line: the whole view (plot, audio) is done
    assert "cadence @ 32 bits" in page.inner_text("body")
    assert _selected_query(page) == "cadence.mid (uploaded)"
    _shot(page, "explorer_uploaded", tmp_path)

    # reload: a new kernel, which finds the upload (and the settings) in the cache dir
    page.reload(timeout=WAIT_MS)
    _wait_for_view(page)
    page.wait_for_function("() => document.body.innerText.includes('cadence @ 32 bits')", timeout=WAIT_MS)
    assert _selected_query(page) == "cadence.mid (uploaded)"
    assert page.locator(".widget-upload").get_attribute("title") == "cadence.mid"
    kept = json.loads((cache / "explorer" / "state.json").read_text())
    assert kept["query"].startswith("upload:") and kept["uploads"][0]["name"] == "cadence.mid"

    # the bars heard: move the lower handle of "hear bars" (1-4 of the 4-bar cadence) one bar right
    hear = page.locator(".widget-hslider", has_text="hear bars")
    assert re.search(r"1\s*[–-]\s*4", hear.inner_text())
    handle = hear.locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    page.wait_for_function("() => document.body.innerText.includes('bars 2-4,')", timeout=WAIT_MS)
    t0 = time.monotonic()
    while json.loads((cache / "explorer" / "state.json").read_text())["audio_bars"] != [2, 4]:
        assert time.monotonic() - t0 < 60, "the moved range was not kept"
        time.sleep(0.2)
    _shot(page, "explorer_bars", tmp_path)

    # one click on a download button saves the file
    with page.expect_download(timeout=WAIT_MS) as dl:
        page.locator("button[title='download the improvisation as MIDI']").click()
    assert dl.value.suggested_filename == "cadence_32bits_query_seed0.mid"
    saved = tmp_path / dl.value.suggested_filename
    dl.value.save_as(str(saved))
    piece = pianoroll.read_midi(saved, tiny_model.spec)
    assert piece.n_steps >= 64 - tiny_model.spec.steps_per_frame and piece.roll.any()
    _shot(page, "explorer_downloaded", tmp_path)
    page.close()
