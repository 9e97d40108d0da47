"""Tests of qbdi_utils.dynamics: exact agreement with vmo, the silence rule, complete motifs, plots."""

from __future__ import annotations

import numpy as np
import pytest

from qbdi_utils import dynamics, harmony, vmo_features
from qbdi_utils.pianoroll import RollSpec

vmo_oracle = pytest.importorskip("vmo.VMO.oracle")


def _chord_chroma(n=160, seed=0, rests=True):
    """Chord sequence with repeated phrases, passing-note noise and a few rests."""
    rng = np.random.default_rng(seed)
    tpl = harmony.triad_templates()
    phrases = [rng.integers(0, 24, rng.integers(3, 8)) for _ in range(5)]
    seq = []
    while len(seq) < n:
        seq.extend(phrases[rng.integers(0, 5)].tolist() if rng.random() < 0.75 else rng.integers(0, 24, 2).tolist())
    c = tpl[np.array(seq[:n])] * 4.0
    c += (rng.random((n, 12)) < 0.1) * rng.integers(1, 3, (n, 12))
    if rests:
        c[[i for i in (7, 8, 50, 51, 52, 120) if i < n]] = 0.0
    return c


def _vmo_curve(x, r, **kw):
    best, pairs = vmo_oracle.find_threshold(x, r=r, dim=x.shape[1], **kw)
    return best, np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def test_ir_curve_equals_vmo_euclidean_on_tonnetz_features():
    x = vmo_features.tonnetz_features(_chord_chroma())
    r = (0.0, 2.0, 0.05)
    (best_ir, best_t), v_ir, v_t = _vmo_curve(x, r, dfunc="euclidean")
    c = dynamics.ir_curve(x, np.arange(*r), metric="euclidean")
    np.testing.assert_array_equal(c.thresholds, v_t)
    assert np.max(np.abs(c.ir - v_ir)) <= 1e-9
    assert c.best_threshold == best_t and abs(c.best_ir - best_ir) <= 1e-9
    assert c.ir.max() > 0 and len(np.unique(c.ir)) > 5  # a non-trivial curve


def test_ir_curve_equals_vmo_cosine_on_latents():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(30, 8))
    z = z[rng.integers(0, 30, 120)] + 0.05 * rng.normal(size=(120, 8))  # recurring latent states
    r = (0.0, 1.0, 0.04)
    (best_ir, best_t), v_ir, _ = _vmo_curve(z, r, dfunc="cosine")
    c = dynamics.ir_curve(z, np.arange(*r), metric="cosine")
    assert np.max(np.abs(c.ir - v_ir)) <= 1e-9
    assert c.best_threshold == best_t


def test_oracle_fields_equal_vmo():
    x = vmo_features.tonnetz_features(_chord_chroma(100, seed=4))
    for t in (0.0, 0.2, 0.6, 1.5):
        v = vmo_oracle.build_oracle(x, flag="a", threshold=t, dfunc="euclidean", dim=6)
        o = dynamics.build_oracle(x, t)
        assert o.sfx == v.sfx and o.lrs == v.lrs and o.trn == v.trn and o.rsfx == v.rsfx
        assert o.data[1:] == v.data[1:] and o.n_symbols == len(v.latent)
        v_ir, _, _ = v.IR(ir_type="cum")
        np.testing.assert_array_equal(dynamics.ir_per_frame(o), v_ir)


def test_embedding_equals_python_tonnetz_callback():
    """Euclidean on the precomputed embedding == vmo with a per-comparison Tonnetz callback."""
    rng = np.random.default_rng(5)
    vocab = np.vstack([harmony.triad_templates(), np.eye(12), np.zeros((1, 12))])  # triads, notes, rest
    pick = rng.integers(0, len(vocab), (70, 2))
    chroma = vocab[pick[:, 0]] * rng.integers(1, 4, (70, 1)) + vocab[pick[:, 1]] * rng.integers(0, 2, (70, 1))

    def cb(u, v):
        return harmony.tonnetz_distance(u, v)

    # thresholds on the grid (e.g. 1.5 = note vs rest) lie within 1e-12 of exact distances, where a
    # distance one ulp off would flip vmo's `d < threshold` decision
    d = vmo_features.pairwise_distances(vmo_features.tonnetz_features(chroma))
    assert sum((np.abs(d - t) < 1e-12).sum() for t in np.arange(0.25, 2.0, 0.25)) > 0
    for r in ((0.0, 2.0, 0.2), (0.0, 2.0, 0.25)):
        (_, best_t), v_ir, _ = _vmo_curve(chroma, r, dfunc="other", dfunc_handle=cb)
        c = dynamics.ir_curve(vmo_features.tonnetz_features(chroma), np.arange(*r))
        assert np.max(np.abs(c.ir - v_ir)) <= 1e-9 and c.best_threshold == best_t


def test_silence_rule_no_nan_and_one_symbol():
    chroma = _chord_chroma(60, seed=6, rests=False)
    chroma[[10, 11, 30, 31, 45]] = 0.0
    # vmo with cosine on raw chroma: NaN distances make every silent frame a new symbol
    with np.errstate(invalid="ignore", divide="ignore"):
        v = vmo_oracle.build_oracle(chroma, flag="a", threshold=0.1, dfunc="cosine", dim=12)
    v_syms = [v.data[i + 1] for i in (10, 11, 30, 31, 45)]
    assert len(set(v_syms)) == 5
    # ours, Tonnetz features: silence at the origin, all silent frames share one symbol
    x = vmo_features.tonnetz_features(chroma)
    d = vmo_features.pairwise_distances(x)
    assert np.all(np.isfinite(d))
    o = dynamics.build_oracle(x, 0.1)
    assert len({int(o.symbols[i]) for i in (10, 11, 30, 31, 45)}) == 1
    # cosine rule: zero rows at distance 0 from each other, 1 from any non-zero row
    dc = vmo_features.pairwise_distances(chroma, "cosine")
    assert np.all(np.isfinite(dc))
    assert dc[10, 11] == 0.0 and dc[10, 0] == 1.0 and dc[0, 10] == 1.0
    oc = dynamics.build_oracle(chroma, 0.1, metric="cosine")
    assert len({int(oc.symbols[i]) for i in (10, 11, 30, 31, 45)}) == 1
    assert np.all(np.isfinite(dynamics.ir_curve(chroma, metric="cosine").ir))


def _planted(seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(4, 6)) * 10
    B = rng.normal(size=(6, 6)) * 10
    parts, spans_a, spans_b = [], [], []
    pos = 0

    def bg(k):
        nonlocal pos
        parts.append(rng.normal(size=(k, 6)) * 10)  # unique background frames
        pos += k

    def put(m, spans):
        nonlocal pos
        parts.append(m)
        spans.append((pos, pos + len(m)))
        pos += len(m)

    bg(3); put(A, spans_a); bg(5); put(B, spans_b); bg(2); put(A, spans_a); bg(4)
    put(A, spans_a); put(B, spans_b); bg(3); put(A, spans_a); bg(2); put(B, spans_b); bg(1)
    return np.vstack(parts), spans_a, spans_b


def test_motifs_find_every_planted_occurrence():
    x, spans_a, spans_b = _planted()
    o = dynamics.build_oracle(x, threshold=1e-6)
    ms = dynamics.motifs(o, min_length=3, min_count=2, frames_per_bar=4)
    found = {m.length: m for m in ms}
    assert set(found) == {4, 6}, [(m.length, m.spans) for m in ms]
    assert found[4].spans == spans_a and found[6].spans == spans_b
    assert found[4].count == 4 and found[6].count == 3
    assert all(e - s == m.length for m in ms for s, e in m.spans)
    assert found[6].bar_spans[0] == (spans_b[0][0] / 4, spans_b[0][1] / 4)


def test_motifs_shorter_pattern_with_more_occurrences_is_kept():
    # (1,2,3) occurs twice, (1,2) four times; (1,2) is reported with all four spans
    seq = [9, 1, 2, 3, 8, 1, 2, 7, 1, 2, 3, 6, 5, 1, 2, 4]
    ms = dynamics.motifs(seq, min_length=2, min_count=2, frames_per_bar=1)
    got = {m.symbols: m.spans for m in ms}
    assert got[(1, 2, 3)] == [(1, 4), (8, 11)]
    assert got[(1, 2)] == [(1, 3), (5, 7), (8, 10), (13, 15)]
    assert len(ms) == 2
    assert dynamics.motifs(seq, min_length=2, min_count=3, frames_per_bar=1)[0].symbols == (1, 2)
    assert dynamics.motifs(seq, min_length=4, min_count=2) == []


def test_motifs_runs_and_periodic_sequences_give_their_unit():
    # a held chord is not a motif of its own repetitions; its unit is (with min_length 1)
    assert dynamics.motifs([5] * 12, min_length=2, min_count=2) == []
    ms = dynamics.motifs([5] * 12, min_length=1, min_count=2)
    assert len(ms) == 1 and ms[0].symbols == (5,) and ms[0].count == 12
    ms = dynamics.motifs([1, 2, 3] * 4 + [7], min_length=2)
    assert [(m.symbols, m.spans) for m in ms] == [((1, 2, 3), [(0, 3), (3, 6), (6, 9), (9, 12)])]


def test_maximal_repeats_match_brute_force():
    rng = np.random.default_rng(11)
    for _ in range(20):
        seq = rng.integers(0, 3, rng.integers(5, 40))
        lst = seq.tolist()
        n = len(lst)
        brute = set()
        for L in range(2, n):
            starts = {}
            for i in range(n - L + 1):
                starts.setdefault(tuple(lst[i:i + L]), []).append(i)
            for pat, st in starts.items():
                if len(st) < 2:
                    continue
                left = {lst[i - 1] if i > 0 else None for i in st}
                right = {lst[i + L] if i + L < n else None for i in st}
                if (len(left) > 1 or None in left) and (len(right) > 1 or None in right):
                    brute.add(pat)
        assert dynamics._maximal_repeats(seq, 2) == brute


def test_latent_ir_and_best_threshold():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(8, 16))
    z = np.vstack([base, base, base[:4], base]) + 0.01 * rng.normal(size=(28, 16))
    th = np.linspace(0, 1, 41)
    ir, t = dynamics.latent_ir(z, thresholds=th)
    curve = dynamics.ir_curve(z, th, metric="cosine")
    assert ir.shape == (28,) and t == curve.best_threshold
    assert ir.sum() == pytest.approx(curve.best_ir, abs=1e-12)
    # repeats are predictable: IR rises in the repeated part
    assert ir[8:].mean() > ir[:8].mean()
    ir2, t2 = dynamics.latent_ir(z, threshold=0.3)
    assert t2 == 0.3 and ir2.shape == (28,)


def test_chroma_features_resolution_and_ir_vs_bits():
    spec = RollSpec()
    roll = np.zeros((64, spec.n_columns), np.uint8)
    roll[:32, [48 - 24, 52 - 24, 55 - 24]] = 1
    f = vmo_features.chroma_features(roll, spec)
    assert f.shape == (16, 6) and np.all(f[8:] == 0)
    x = vmo_features.tonnetz_features(_chord_chroma(80))
    rows = dynamics.ir_vs_bits({"full": [x, x], 0: [np.zeros_like(x)]}, thresholds=np.linspace(0, 2, 21))
    assert [r["bits"] for r in rows] == ["full", 0]
    assert rows[0]["total_ir_std"] == 0.0 and rows[0]["n_seeds"] == 2
    assert rows[0]["total_ir_mean"] == pytest.approx(dynamics.ir_curve(x, np.linspace(0, 2, 21)).best_ir)
    assert rows[1]["total_ir_mean"] == 0.0  # constant signal: H(X) = 0, so IR = 0 at every threshold


def test_plots_draw_every_span():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qbdi_utils.render import plots

    x, spans_a, spans_b = _planted()
    ms = dynamics.motifs(dynamics.build_oracle(x, 1e-6), min_length=3)
    fig, axes = plt.subplots(3, 1)
    plots.plot_motifs(axes[0], {"query": ms}, {"query": len(x)}, frames_per_bar=1)
    n_bars = sum(len(c.get_paths()) for c in axes[0].collections if type(c).__name__ == "PolyCollection")
    assert n_bars == len(spans_a) + len(spans_b)
    c = dynamics.ir_curve(x, np.linspace(0, 5, 11))
    plots.plot_ir_curves(axes[1], {"q": c})
    assert len(axes[1].lines) == 2
    plots.plot_ir_over_time(axes[2], {"q": np.ones(5)})
    assert len(axes[2].lines) == 1
    plt.close(fig)


def _vmo_find_repeated_patterns():
    """vmo's pattern search, loaded from its file: vmo.analysis's __init__ would import librosa."""
    import importlib.util
    from pathlib import Path

    import vmo

    path = Path(vmo.__path__[0]) / "analysis" / "analysis.py"
    spec = importlib.util.spec_from_file_location("_vmo_analysis_only", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.find_repeated_patterns


def _random_planted(seed):
    rng = np.random.default_rng(seed)
    motif = list(rng.integers(0, 50, 5) + 100)
    seq, starts = list(rng.integers(0, 6, 8)), []
    for _ in range(rng.integers(3, 6)):
        starts.append(len(seq))
        seq += motif + list(rng.integers(0, 6, rng.integers(1, 8)))
    return np.array(seq), starts


def test_motifs_complete_where_vmo_pattern_search_is_not():
    points = np.random.default_rng(1).normal(size=(200, 3)) * 10
    # seed 0: vmo reports the planted 5-frame motif at 2 of its 4 places
    seq, starts = _random_planted(0)
    o = vmo_oracle.build_oracle(points[seq], flag="a", threshold=1e-6, dfunc="euclidean", dim=3)
    vmo_pats = _vmo_find_repeated_patterns()(o, lower=3)
    vmo_ends = [sorted(set(e)) for e, L in vmo_pats if L == 5]
    assert vmo_ends and len(vmo_ends[0]) < len(starts)
    for seed in range(25):
        seq, starts = _random_planted(seed)
        ours = dynamics.motifs(dynamics.build_oracle(points[seq], 1e-6), min_length=5, min_count=2)
        planted = [m for m in ours if m.length >= 5 and (starts[0], starts[0] + 5) in
                   [(s, s + 5) for s, _ in m.spans]]
        assert planted, seed
        for m in ours:  # every reported list is the complete leftmost non-overlapping one
            sym = list(dynamics.build_oracle(points[seq], 1e-6).symbols)
            brute, i = [], 0
            while i <= len(sym) - m.length:
                if tuple(sym[i:i + m.length]) == m.symbols:
                    brute.append((i, i + m.length))
                    i += m.length
                else:
                    i += 1
            assert m.spans == brute
        covered = {s for m in planted for s, _ in m.spans}
        assert all(s in covered for s in starts), (seed, starts, [m.spans for m in planted])


def test_ir_vs_bits_sd_of_identical_seeds_is_exactly_zero(monkeypatch):
    """Seeds that give the same curve (full rate) must report sd 0, not float noise such as 1e-17,
    which a regression-checked notebook cell would print as a number."""
    x = vmo_features.tonnetz_features(_chord_chroma(40))

    class Curve:  # an IR curve whose best values have non-representable means (0.1 * 3 / 3 != 0.1)
        best_threshold, best_ir = 0.1, 0.1

    monkeypatch.setattr(dynamics, "ir_curve", lambda *a, **k: Curve())
    row = dynamics.ir_vs_bits({"full": [x, x, x]})[0]
    assert row["best_threshold_std"] == 0.0 and row["total_ir_std"] == 0.0
