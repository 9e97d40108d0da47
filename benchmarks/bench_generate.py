"""Speed of query-based improvisation: prints one JSON line.

1. Latency of one improvisation (256 bits per frame) of a 64-frame query once the model is loaded,
   split into the model's forward passes (encode + decode) and everything else (framing, channel,
   thresholding, building the Piece). Median of repeats, after one warm-up call.
2. The full claims sweep: 8 rates x 5 seeds with every metric and the chance levels, same split.

Target: everything besides the forward passes costs no more than the forward passes themselves
(``other_over_forward`` <= 1).

The model is the default one (``models_dir()/default``) when it has been trained; otherwise a model of
the paper's size (2496 -> 500 -> 500) trained for one epoch on synthetic frames, which costs the same
per forward pass. The query is the default query tiled/cut to 64 bars when the corpus module and its
data are there, else synthetic chord bars.

Run: .venv/bin/python benchmarks/bench_generate.py
"""

from __future__ import annotations

import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from _common import load_model  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

N_FRAMES = 64
REPEATS = 7


class TimedModel:
    """Delegates to a StyleVAE and accumulates the wall time of its forward passes."""

    def __init__(self, model):
        self._m = model
        self.forward_seconds = 0.0
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._m, name)

    def _timed(self, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        self.forward_seconds += time.perf_counter() - t0
        self.calls += 1
        return out

    def encode(self, frames):
        return self._timed(self._m.encode, frames)

    def decode(self, z):
        return self._timed(self._m.decode, z)


def load_query(spec):
    from qbdi_utils import pianoroll

    need = N_FRAMES * spec.steps_per_frame
    try:
        from qbdi_utils import corpus

        q = corpus.load_query(spec=spec)
        roll, name = q.roll, q.name
    except Exception:  # corpus or its data not there yet: synthetic bars of the same size
        from qbdi_utils.model import synthetic_frames

        roll, name = pianoroll.from_frames(synthetic_frames(N_FRAMES, seed=1), spec), "synthetic"
    reps = -(-need // len(roll))
    roll = pianoroll.make_valid(np.tile(roll, (reps, 1))[:need], spec)
    return pianoroll.Piece(roll=roll, spec=spec, name=name, tempo_map=[(0, 100.0)],
                           time_signatures=[(0, 4, 4)])


def split(fn, model, repeats):
    """Median total and forward seconds of ``fn(timed_model)`` over repeats (after a warm-up)."""
    fn(TimedModel(model))
    totals, forwards = [], []
    for _ in range(repeats):
        tm = TimedModel(model)
        t0 = time.perf_counter()
        fn(tm)
        totals.append(time.perf_counter() - t0)
        forwards.append(tm.forward_seconds)
    i = int(np.argsort(totals)[len(totals) // 2])
    total, forward = totals[i], forwards[i]
    return total, forward, total - forward, tm.calls


def main() -> None:
    from qbdi_utils.claims import claims_sweep
    from qbdi_utils.improvise import CLAIM_RATES, improvise

    t0 = time.perf_counter()
    model, which = load_model()
    load_s = time.perf_counter() - t0
    query = load_query(model.spec)

    one = split(lambda m: improvise(m, query, bits=256, seed=0), model, REPEATS)
    sweep = split(lambda m: claims_sweep(m, query, CLAIM_RATES, 5), model, 3)
    result = {
        "benchmark": "generate",
        "model": which,
        "latent_dim": model.latent_dim,
        "query": query.name,
        "query_frames": N_FRAMES,
        "model_load_s": load_s,
        "improvise_ms": 1e3 * one[0],
        "improvise_forward_ms": 1e3 * one[1],
        "improvise_other_ms": 1e3 * one[2],
        "improvise_forward_calls": one[3],
        "improvise_other_over_forward": one[2] / one[1],
        "sweep_rates": len(CLAIM_RATES),
        "sweep_seeds": 5,
        "sweep_s": sweep[0],
        "sweep_forward_s": sweep[1],
        "sweep_other_s": sweep[2],
        "sweep_forward_calls": sweep[3],
        "sweep_other_over_forward": sweep[2] / sweep[1],
        "target_met": bool(one[2] <= one[1] and sweep[2] <= sweep[1]),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
