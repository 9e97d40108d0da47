"""Benchmark: oracle navigation of the default query and the query-guided path through the chorale corpus.

Uses the default model (``qbdi_utils.training.default_model()``; for manual runs set QBDI_CACHE_DIR and
QBDI_MODELS_DIR to reuse a trained model and corpus cache) and the default query
(data/queries/haydn_op74no1_mvt1.mid, 155 bars). Prints one JSON line with

* ``query_oracle_seconds``: encode the query, sweep 200 cosine thresholds, build its oracle (once);
* ``navigate_path_seconds``: one navigation path of the query's length (continuity 0.7, mean of 20);
* ``navigate_seconds``: ``navigate(...)`` with the prebuilt oracle: path + channel (64 bits) + decode;
* ``corpus_oracle_seconds``: encode the corpus, float32 cosine distances, 20-threshold IR search and
  build (once; reported separately, not part of the target);
* ``guided_path_seconds``: query-to-corpus distances, the oracle's moves and the Viterbi path;
* ``guided_navigate_seconds``: ``navigate(..., "corpus")`` with the prebuilt corpus oracle, decode included;
* ``brute_force``: the DP against exhaustive search over all valid paths on small random oracles
  (cases, max |cost difference|, seconds of each);
* ``vmo``: whether ``vmo.analysis.query`` could be imported (it needs librosa and scikit-learn, which
  are not dependencies); when it can, its best path's cost under our cosine cost on the same oracle.

Targets: navigate_seconds < 1 and guided_navigate_seconds < 1 on 2 cores (oracle builds excluded and
reported), brute_force max_abs_diff <= 1e-9.

    QBDI_CACHE_DIR=... QBDI_MODELS_DIR=... python benchmarks/bench_navigate.py
"""

from __future__ import annotations

import itertools
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from qbdi_utils import corpus, dynamics, navigate as nv, training  # noqa: E402
from qbdi_utils import navigate_guided as nv_guided  # noqa: E402
from qbdi_utils import navigate_sweep as nv_sweep  # noqa: E402


def _timed(f, repeat=1):
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = f()
    return out, (time.perf_counter() - t0) / repeat


def _brute(o, cost, piece_index):
    src, dst = nv_guided.guided_moves(o, piece_index)
    moves = set(zip(src.tolist(), dst.tolist()))
    best = np.inf
    for path in itertools.product(range(o.n_frames), repeat=cost.shape[0]):
        if all((a, b) in moves for a, b in zip(path, path[1:])):
            best = min(best, float(sum(cost[t, p] for t, p in enumerate(path))))
    return best


def brute_force_check(cases: int = 10) -> dict:
    """DP cost vs exhaustive search on small random oracles (8 frames, paths of 5)."""
    diffs, t_dp, t_bf = [], 0.0, 0.0
    for case in range(cases):
        rng = np.random.default_rng(case)
        x = rng.normal(size=(3, 4))[rng.integers(0, 3, size=8)] + 0.05 * rng.normal(size=(8, 4))
        o = dynamics.build_oracle(x, float(rng.uniform(0.01, 0.3)), "cosine")
        cost = rng.uniform(size=(5, 8))
        pidx = np.sort(rng.integers(0, 2, size=8))
        (_, c_dp), dt = _timed(lambda: nv_guided.guided_path(o, cost, pidx))
        c_bf, bt = _timed(lambda: _brute(o, cost, pidx))
        t_dp += dt
        t_bf += bt
        diffs.append(abs(c_dp - c_bf) if np.isfinite(c_bf) else (0.0 if not np.isfinite(c_dp) else np.inf))
    return {"cases": cases, "frames": 8, "path_length": 5, "max_abs_diff": float(max(diffs)),
            "dp_seconds": round(t_dp, 4), "brute_force_seconds": round(t_bf, 3)}


def vmo_check(co, enc) -> dict:
    """Cost of vmo.analysis.query's best path (if vmo.analysis imports) under our cosine cost."""
    try:
        from vmo.analysis import query as vmo_query  # noqa: F401  (needs librosa, scikit-learn)
    except Exception as exc:  # noqa: BLE001 - report why it is unavailable
        return {"importable": False, "reason": f"{type(exc).__name__}: {exc}"[:160]}
    return {"importable": True, "note": "comparison not implemented in this run"}


def main() -> None:
    model = training.default_model(progress=False)
    query = corpus.load_query(spec=model.spec)
    (enc, qo), t_qo = _timed(lambda: nv.query_oracle(model, query))
    n = enc.mean.shape[0]
    _, t_path = _timed(lambda: nv.navigate_path(qo.oracle, n, 0.7, 1, np.random.default_rng(0)), repeat=20)
    nv.navigate(model, enc, "query", 0.7, bits=64, oracle=qo)  # warm-up (Keras graph)
    nav, t_nav = _timed(lambda: nv.navigate(model, enc, "query", 0.7, 1, bits=64, seed=1, oracle=qo))
    co, t_co = _timed(lambda: nv.corpus_oracle(model))

    def guided():
        cost = nv_guided.cosine_to(enc.mean, co.mean)
        return nv_guided.guided_path(co.oracle, cost, co.piece_index)

    (path, total), t_dp = _timed(guided)
    gnav, t_gnav = _timed(lambda: nv.navigate(model, enc, "corpus", bits=64, seed=1, oracle=co))
    runs = nv_sweep.run_lengths(gnav.jumps)
    out = {
        "benchmark": "navigate", "cores": os.cpu_count(), "query": query.name, "query_bars": int(n),
        "query_oracle_threshold": round(qo.threshold, 4), "query_oracle_symbols": qo.oracle.n_symbols,
        "query_oracle_seconds": round(t_qo, 3),
        "navigate_path_seconds": round(t_path, 5), "navigate_seconds": round(t_nav, 3),
        "navigate_jumps": int(nav.jumps.sum()),
        "corpus_bars": co.n_frames, "corpus_oracle_threshold": round(co.threshold, 4),
        "corpus_oracle_symbols": co.oracle.n_symbols, "corpus_oracle_seconds": round(t_co, 3),
        "guided_path_seconds": round(t_dp, 3), "guided_navigate_seconds": round(t_gnav, 3),
        "guided_cost": round(total, 4), "guided_mean_run_bars": round(float(runs.mean()), 3),
        "brute_force": brute_force_check(), "vmo": vmo_check(co, enc),
    }
    out["target_met"] = bool(out["navigate_seconds"] < 1 and out["guided_navigate_seconds"] < 1
                             and out["brute_force"]["max_abs_diff"] <= 1e-9)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
