"""Speed of the explorer: seconds per refresh for each control; prints one JSON line.

An :class:`qbdi_utils.explore.Explorer` on the default model and the default query (its Output widgets
are filled exactly as in a browser, without one) has each control moved several times; every move is
one refresh (transmit + decode, metrics, piano-roll PNG, audio; the instrument control re-renders the
audio only). Reported per control: the median
refresh in ms and its stages ("visible" = until the metrics and plot are sent to the browser, which
happens before the audio is rendered); the query control also encodes the newly chosen query.

Audio goes through ``render.synthesize`` with whatever engine it uses here (``audio_engine``); the
SoundFont engine's cost on the same excerpt is also measured directly (``soundfont_audio_ms``), so the
refresh time with it can be read off even where render still uses another engine.

Target: median refresh <= 500 ms for every control on 2 cores (``target_met``). The load average is
reported because on a shared machine other processes slow every stage down.

The model is the default one (``models_dir()/default``) when it has been trained; otherwise a model of
the paper's size trained for one epoch on synthetic frames (same cost per forward pass).

Run: .venv/bin/python benchmarks/bench_explore.py

``--startup [--model DIR] [--repo PATH]``: instead, the web page's start-up. Runs ``python -m
qbdi_utils.explore`` (of the checkout ``--repo``, default this one) on a free port and loads the page
in headless Chromium (playwright's client, the system's ``chromium``; no browser download); prints
seconds from the command to the port open (``port_open_s``), to the first page content
(``page_content_s``: the progress line or the explorer), to the controls (``controls_s``) and to the
first plot (``plot_s``), with the load average; ``--shot PNG`` saves the first whole view. Comparing ``--repo`` of an older checkout gives a
before/after on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from _common import load_model  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

TARGET_S = 0.5
MOVES = {
    "bits": [0, 4, 16, 64, 256, "full", 8, 32],  # no stop twice: the audio cache stays cold
    "mode": ["corpus", "prior", "posterior", "query", "corpus", "query"],
    "seed": [1, 2, 3, 4, 5, 0],
    "program": [19, 48, 52, 73],  # each new for the excerpt (a repeat would come from the audio cache)
}


def _median(xs):
    return float(np.median(np.asarray(xs, dtype=np.float64)))


def main() -> None:
    from qbdi_utils import corpus, explore, render, soundfont
    from qbdi_utils.explore.content import bar_excerpt, bar_starts

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    model, which = load_model()
    t0 = time.perf_counter()
    ex = explore.Explorer(model, corpus.DEFAULT_QUERY, bits=32)
    first_s = time.perf_counter() - t0
    result = {"benchmark": "explore", "model": which, "query": corpus.DEFAULT_QUERY,
              "query_bars": int(len(ex._encoded[1].frames)), "first_view_s": first_s,
              "audio_engine": render.synthesis_engine()}
    ex.bits.value = 16  # warm-up
    worst = 0.0
    for control, values in MOVES.items():
        widget = getattr(ex, control)
        totals, stages = [], {}
        for v in values:
            widget.value = v
            totals.append(ex.timings["total"])
            for k in ("channel", "metrics", "plot", "visible", "audio"):
                if k in ex.timings:  # the instrument control renders the audio only
                    stages.setdefault(k, []).append(ex.timings[k])
        result[f"{control}_refresh_ms"] = 1e3 * _median(totals)
        for k, xs in stages.items():
            result[f"{control}_{k}_ms"] = 1e3 * _median(xs)
        worst = max(worst, _median(totals))
    qt, enc = [], []
    for name in list(corpus.QUERY_NAMES[1:]) + [corpus.QUERY_NAMES[0]]:
        ex.query.value = name
        qt.append(ex.timings["total"])
        enc.append(ex.timings["encode"])
    result["query_refresh_ms"] = 1e3 * _median(qt)
    result["query_encode_ms"] = 1e3 * _median(enc)
    if soundfont.available():
        out = ex.improvisation
        clip = bar_excerpt(out.roll, ex.audio_bars, out.spec, bar_starts(out))  # the explorer's bars
        notes = render.roll_notes(clip, out.spec)
        sps = 60.0 / out.tempo_bpm / out.spec.steps_per_quarter
        timed = np.column_stack([notes[:, 0], notes[:, 1] * sps, notes[:, 2] * sps])
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            soundfont.render_notes(timed, sample_rate=ex.sample_rate)
            ts.append(time.perf_counter() - t)
        result["soundfont_audio_ms"] = 1e3 * _median(ts)
        result["soundfont_audio_notes"] = int(len(notes))
    result["encode_count"] = ex.encode_count
    result["target_s"] = TARGET_S
    result["target_met"] = bool(worst <= TARGET_S)
    result["load_average_1min_at_start"] = load
    result["cpu_count"] = os.cpu_count()
    result["python"] = platform.python_version()
    ex.close()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))


def startup(repo: Path, model: str | None, shot: str | None = None) -> None:
    """Seconds from ``python -m qbdi_utils.explore`` to the port, the page, its controls, its plot
    (and a screenshot of the first whole view to ``shot``)."""
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("QBDI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("no Chromium (apt-get install chromium, or set QBDI_CHROMIUM)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    load = os.getloadavg()[0]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
               TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "qbdi_utils.explore", "--port", str(port)] + (["--model", model] if model else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(repo), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    urls: list[str] = []

    def read():
        for line in proc.stdout:
            m = re.search(r"(http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]{10,})", line)
            if m:
                urls.append(m.group(1))

    threading.Thread(target=read, daemon=True).start()
    result = {"benchmark": "explore_startup", "repo": str(repo), "model": model or "default"}
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 1800:
                    raise SystemExit("the explorer did not open its port")
                time.sleep(0.05)
        result["port_open_s"] = time.perf_counter() - t0
        while not urls:
            time.sleep(0.05)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(urls[0], timeout=1_800_000, wait_until="commit")
            # attached, not visible: the first HTML widget of the page is a hidden one (its script), and
            # waiting for it to show never ended
            page.wait_for_selector(".widget-html, .widget-upload", state="attached", timeout=1_800_000)
            result["page_content_s"] = time.perf_counter() - t0
            page.wait_for_selector(".widget-upload", timeout=1_800_000)
            result["controls_s"] = time.perf_counter() - t0
            page.wait_for_selector(".widget-output img", timeout=1_800_000)
            result["plot_s"] = time.perf_counter() - t0
            if shot:
                page.set_viewport_size({"width": 1300, "height": 1000})
                page.wait_for_function("() => document.body.innerText.includes('encoded once')",
                                       timeout=1_800_000)
                page.screenshot(path=str(shot), full_page=True)
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
    result["load_average_1min_at_start"] = load
    result["load_average_1min_at_end"] = os.getloadavg()[0]
    result["cpu_count"] = os.cpu_count()
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--startup", action="store_true", help="measure the web page's start-up instead")
    ap.add_argument("--model", default=None, help="with --startup: a model folder (default: the default model)")
    ap.add_argument("--shot", default=None, help="with --startup: save a screenshot of the first view here")
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]),
                    help="with --startup: the checkout whose explorer is started")
    a = ap.parse_args()
    if a.startup:
        startup(Path(a.repo).resolve(), a.model, a.shot)
    else:
        main()
