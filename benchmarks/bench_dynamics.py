"""Benchmark: IR-vs-threshold sweep, qbdi_utils.dynamics vs vmo.find_threshold with a Python Tonnetz callback.

Same 1,000-beat chroma sequence for both: Bach chorales from music21's bundled corpus (beat-level
duration-weighted chroma; qbdi_utils.corpus if it provides chorales, else music21 directly), or a
deterministic synthetic chord sequence with repeats when ``--synthetic`` is given or music21's corpus
is unavailable. 200 thresholds. Prints one JSON line:
{"speedup", "max_abs_ir_diff", "qbdi_seconds", "vmo_seconds", ...}.

Target: speedup >= 10 with max_abs_ir_diff <= 1e-9.

    .venv/bin/python benchmarks/bench_dynamics.py [--frames 1000] [--thresholds 200] [--synthetic]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from qbdi_utils import dynamics, harmony, vmo_features


def chorale_chroma(n_beats: int, max_pieces: int = 80) -> tuple[np.ndarray, str]:
    """Beat-level chroma of consecutive Bach chorales (music21 corpus), first n_beats beats."""
    from music21 import corpus

    rows = []
    used = 0
    for path in corpus.getComposer("bach")[: max_pieces * 2]:
        if len(rows) >= n_beats or used >= max_pieces:
            break
        if not str(path).endswith((".mxl", ".xml", ".musicxml", ".krn")):
            continue
        try:
            score = corpus.parse(path)
        except Exception:  # noqa: BLE001 - skip unparsable files in a benchmark
            continue
        total = int(np.ceil(float(score.highestTime)))
        if total <= 0:
            continue
        c = np.zeros((total, 12))
        for n in score.flatten().notes:
            start = float(n.offset)
            end = start + float(n.quarterLength)
            for b in range(int(np.floor(start)), int(np.ceil(end))):
                overlap = min(end, b + 1) - max(start, b)
                if overlap > 0 and b < total:
                    for p in n.pitches:
                        c[b, p.pitchClass] += overlap
        rows.extend(c)
        used += 1
    if len(rows) < n_beats:
        raise RuntimeError("not enough chorale beats")
    return np.asarray(rows[:n_beats]), f"music21 bach corpus ({used} pieces, beat chroma)"


def synthetic_chroma(n_beats: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """Deterministic chord sequence with repeated phrases and some passing-note noise and rests."""
    rng = np.random.default_rng(seed)
    tpl = harmony.triad_templates()
    phrases = [rng.integers(0, 24, rng.integers(4, 12)) for _ in range(12)]
    seq = []
    while len(seq) < n_beats:
        seq.extend(phrases[rng.integers(0, len(phrases))].tolist() if rng.random() < 0.7
                   else rng.integers(0, 24, 3).tolist())
    seq = np.array(seq[:n_beats])
    c = tpl[seq] * 4.0
    noise = rng.random((n_beats, 12)) < 0.08
    c = c + noise * rng.integers(1, 3, (n_beats, 12))
    c[rng.random(n_beats) < 0.03] = 0.0  # rests
    return c, f"synthetic chord sequence (seed {seed})"


_PHI_T = np.ascontiguousarray(harmony.TONNETZ_MATRIX.T)  # (12, 6)


def python_tonnetz_distance(u, v):
    """Tonnetz distance of two chroma computed per call (what a vmo user passes as dfunc_handle).

    Same arithmetic as harmony.tonnetz (products summed over pitch classes in order, silence at the
    origin), so its values are bit-identical to the Euclidean distance of the precomputed embedding.
    """
    su, sv = np.abs(u).sum(), np.abs(v).sum()
    tu = ((u / su)[:, None] * _PHI_T).sum(axis=0) if su > 0 else np.zeros(6)
    tv = ((v / sv)[:, None] * _PHI_T).sum(axis=0) if sv > 0 else np.zeros(6)
    return float(np.sqrt(((tu - tv) ** 2).sum()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--thresholds", type=int, default=200)
    ap.add_argument("--synthetic", action="store_true")
    args = ap.parse_args(argv)

    source = None
    if not args.synthetic:
        try:
            chroma, source = chorale_chroma(args.frames)
        except Exception as exc:  # noqa: BLE001
            print(f"chorales unavailable ({exc}); using the synthetic sequence", file=sys.stderr)
    if source is None:
        chroma, source = synthetic_chroma(args.frames)

    # thresholds in vmo's form r = (start, stop, step): 0 .. 2 (Tonnetz distances are <= ~2.2)
    step = 2.0 / args.thresholds
    r = (0.0, 2.0, step)
    thresholds = np.arange(*r)

    from vmo.VMO.oracle import find_threshold  # numpy/scipy only; vmo.analysis would need librosa

    t0 = time.perf_counter()
    feats = vmo_features.tonnetz_features(chroma)
    curve = dynamics.ir_curve(feats, thresholds, metric="euclidean")
    t_qbdi = time.perf_counter() - t0

    t0 = time.perf_counter()
    (best_ir, best_t), pairs = find_threshold(chroma, r=r, dfunc="other",
                                              dfunc_handle=python_tonnetz_distance, dim=12)
    t_vmo = time.perf_counter() - t0
    vmo_ir = np.array([p[0] for p in pairs])

    print(json.dumps({
        "benchmark": "ir_vs_threshold",
        "source": source,
        "n_frames": int(len(chroma)),
        "n_thresholds": int(len(thresholds)),
        "qbdi_seconds": round(t_qbdi, 3),
        "vmo_seconds": round(t_vmo, 3),
        "speedup": round(t_vmo / t_qbdi, 2),
        "max_abs_ir_diff": float(np.max(np.abs(vmo_ir - curve.ir))),
        "best_threshold": curve.best_threshold,
        "vmo_best_threshold": float(best_t),
        "best_total_ir_bits": curve.best_ir,
        "target": "speedup >= 10 and max_abs_ir_diff <= 1e-9",
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
