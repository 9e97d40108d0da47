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
"""

from __future__ import annotations

import json
import os
import platform
import time

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
    from qbdi_utils.explore import _excerpt

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
        clip = _excerpt(out.roll, ex.audio_bars, out.spec)
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


if __name__ == "__main__":
    main()
