"""Tests of qbdi_utils.harmony against hand-made chords and Harte's formula computed independently."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qbdi_utils import harmony
from qbdi_utils.pianoroll import RollSpec

SPEC = RollSpec()


def _chord_roll(pitch_lists, steps_each=16, spec=SPEC):
    """Roll with each chord (list of MIDI pitches) held for `steps_each` steps, articulated at its start."""
    roll = np.zeros((steps_each * len(pitch_lists), spec.n_columns), dtype=np.uint8)
    for i, pitches in enumerate(pitch_lists):
        for p in pitches:
            k = p - spec.min_pitch
            roll[i * steps_each:(i + 1) * steps_each, k] = 1
            roll[i * steps_each, spec.n_pitches + k] = 1
    return roll


def _pcs(*pcs):
    c = np.zeros(12)
    c[list(pcs)] = 1
    return c


def _harte_reference(c):
    """Harte, Sandler & Gasser (2006) eq. for zeta_n(d), written out with math, not numpy."""
    radii = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    phases = [7 * math.pi / 6, 7 * math.pi / 6, 3 * math.pi / 2, 3 * math.pi / 2, 2 * math.pi / 3, 2 * math.pi / 3]
    l1 = sum(abs(x) for x in c)
    out = []
    for d in range(6):
        f = math.sin if d % 2 == 0 else math.cos
        out.append(sum(radii[d] * f(l * phases[d]) * c[l] for l in range(12)) / l1)
    return np.array(out)


def test_tonnetz_matches_harte_formula():
    rng = np.random.default_rng(1)
    cs = np.vstack([rng.random((5, 12)), _pcs(0, 4, 7), _pcs(9, 0, 4) * 3.0])
    got = harmony.tonnetz(cs)
    want = np.array([_harte_reference(c) for c in cs])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # scale invariance: chroma normalised by its own L1 norm (Harte), not by the projection's
    np.testing.assert_allclose(harmony.tonnetz(cs[0] * 7.0), want[0], atol=1e-12)


def test_tonnetz_single_pitch_class_on_circles():
    # one pitch class: each circle's point has radius r (1, 1, 0.5)
    t = harmony.tonnetz(_pcs(5))
    radii = np.hypot(t[0::2], t[1::2])
    np.testing.assert_allclose(radii, [1.0, 1.0, 0.5], atol=1e-12)


def test_c_major_closer_to_a_minor_than_to_f_sharp_major():
    c_maj, a_min, fs_maj = _pcs(0, 4, 7), _pcs(9, 0, 4), _pcs(6, 10, 1)
    d_am = harmony.tonnetz_distance(c_maj, a_min)
    d_fs = harmony.tonnetz_distance(c_maj, fs_maj)
    assert d_am < d_fs
    assert harmony.tonnetz_distance(c_maj, c_maj) == 0.0


def test_silence_is_origin_and_finite():
    c = np.vstack([np.zeros(12), _pcs(0, 4, 7)])
    t = harmony.tonnetz(c)
    assert np.all(np.isfinite(t))
    np.testing.assert_array_equal(t[0], np.zeros(6))
    d = harmony.tonnetz_distance(c, np.zeros((2, 12)))
    assert d[0] == 0.0 and d[1] == pytest.approx(np.linalg.norm(t[1]))
    assert list(harmony.triad_labels(c)) == [-1, 0]


def test_triad_templates_label_every_triad():
    for r in range(12):
        assert harmony.triad_labels(_pcs(r, (r + 4) % 12, (r + 7) % 12)) == r
        assert harmony.triad_labels(_pcs(r, (r + 3) % 12, (r + 7) % 12)) == 12 + r
    assert harmony.TRIAD_NAMES[0] == "C" and harmony.TRIAD_NAMES[21] == "Am" and len(harmony.TRIAD_NAMES) == 24


def test_c_major_bar_labelled_c():
    # C major bar: C3-E3-G3 held, melody C5 D5 E5 G5 in quarters (passing D)
    roll = _chord_roll([[48, 52, 55]])
    for j, p in enumerate([72, 74, 76, 79]):
        roll[j * 4:(j + 1) * 4, p - SPEC.min_pitch] = 1
    c = harmony.chroma(roll, SPEC, "frame")
    assert c.shape == (1, 12)
    assert harmony.TRIAD_NAMES[harmony.triad_labels(c)[0]] == "C"


def test_chroma_weights_and_resolutions():
    # C4 for 16 steps and E4 for 4 steps in bar 1; silent bar 2 (partial: 8 steps)
    roll = np.zeros((24, SPEC.n_columns), dtype=np.uint8)
    roll[0:16, 60 - SPEC.min_pitch] = 1
    roll[0:4, 64 - SPEC.min_pitch] = 1
    roll[0:4, 76 - SPEC.min_pitch] = 1  # octave doubling of E adds
    c = harmony.chroma(roll, SPEC, "frame")
    assert c.shape == (2, 12)
    assert c[0, 0] == 16 and c[0, 4] == 8 and c[1].sum() == 0
    b = harmony.chroma(roll, SPEC, "beat")
    assert b.shape == (6, 12) and b[0, 4] == 8 and b[1, 4] == 0 and b[3, 0] == 4
    s = harmony.chroma(roll, SPEC, "step")
    assert s.shape == (24, 12)
    # frames input gives the same chroma as the roll
    frames = np.vstack([roll, np.zeros((8, SPEC.n_columns), np.uint8)]).reshape(2, -1)
    np.testing.assert_array_equal(harmony.chroma(frames, SPEC, "frame"), c)
    with pytest.raises(ValueError):
        harmony.chroma(roll, SPEC, "bar")


def test_key_estimation_and_tonic():
    # I - IV - V - I in C major and in A minor (i iv V i)
    cmaj = harmony.chroma(_chord_roll([[48, 52, 55], [53, 57, 60], [55, 59, 62], [48, 52, 55]]))
    amin = harmony.chroma(_chord_roll([[57, 60, 64], [50, 53, 57], [52, 56, 59], [57, 60, 64]]))
    assert harmony.estimate_key(cmaj)[:2] == (0, "major")
    assert harmony.estimate_key(amin)[:2] == (9, "minor")
    assert harmony.tonic_triad(amin) == 21


def test_frame_comparison_and_stats():
    q = harmony.chroma(_chord_roll([[48, 52, 55], [53, 57, 60], [], [55, 59, 62]]))
    o = harmony.chroma(_chord_roll([[48, 52, 55], [50, 53, 57], [], []]))
    comp = harmony.frame_comparison(q, o)
    np.testing.assert_array_equal(comp["triad_agreement"], [True, False, True, False])
    assert comp["chroma_cosine"][0] == pytest.approx(1.0) and comp["chroma_cosine"][2] == 1.0
    assert comp["chroma_cosine"][3] == 0.0
    assert comp["chroma_cosine"][1] == pytest.approx(2 / 3)  # F-A-C vs D-F-A share two notes
    assert np.all(np.isfinite(comp["tonnetz_distance"]))
    agg = harmony.frame_agreement(q, o)
    assert agg["triad_agreement"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        harmony.frame_agreement(q, o[:2])

    out_roll = _chord_roll([[48, 52, 55], [48, 52, 55], [], [53, 57, 60]])
    st = harmony.output_stats(out_roll, tonic=0)
    assert st["distinct_triads"] == 2
    assert st["tonic_share"] == pytest.approx(2 / 3)
    assert st["empty_frame_rate"] == pytest.approx(0.25)
    assert st["note_density"] == pytest.approx(9 / 4)
    # entropy: C counted 3 bars, E 2, G 2, F 1, A 1 (x16 steps)
    p = np.array([3, 2, 2, 1, 1]) / 9
    assert st["pc_entropy_bits"] == pytest.approx(float(-(p * np.log2(p)).sum()))
    assert harmony.output_stats(out_roll, query_roll=out_roll)["tonic"] == 0


def test_chance_agreement_seeded_and_below_identity():
    rolls = [[48, 52, 55], [53, 57, 60], [55, 59, 62], [57, 60, 64], [50, 53, 57], [52, 56, 59]] * 3
    q = harmony.chroma(_chord_roll(rolls))
    a = harmony.chance_agreement(q, q, n_shuffles=20, seed=3)
    b = harmony.chance_agreement(q, q, n_shuffles=20, seed=3)
    assert a == b
    assert harmony.frame_agreement(q, q)["triad_agreement"] == 1.0
    assert a["triad_agreement"] < 0.5  # 6 distinct chords: chance about 1/6


def test_tonnetz_rows_bit_identical_alone_or_in_batch():
    # needed so a per-comparison callback and a precomputed embedding agree exactly at threshold ties
    rng = np.random.default_rng(7)
    cs = rng.random((300, 12)) * (rng.random((300, 12)) < 0.5)
    batch = harmony.tonnetz(cs)
    alone = np.vstack([harmony.tonnetz(c) for c in cs])
    np.testing.assert_array_equal(batch, alone)
    d = harmony.tonnetz_distance(cs[:150], cs[150:])
    np.testing.assert_array_equal(d, [harmony.tonnetz_distance(a, b) for a, b in zip(cs[:150], cs[150:])])


# --- keys: one estimator, one value ---------------------------------------------------------

def test_key_value_from_chroma_roll_and_piece_agree():
    from qbdi_utils.pianoroll import Piece

    d_major = [[50, 54, 57], [55, 59, 62], [57, 61, 64], [50, 54, 57]]  # I IV V I in D
    roll = _chord_roll(d_major)
    k = harmony.estimate_key(roll, SPEC)
    assert (k.tonic, k.mode, k.sharps, k.name) == (2, "major", 2, "D major")
    for other in (harmony.chroma(roll, SPEC), Piece(roll=roll), roll.reshape(-1, SPEC.frame_size)):
        o = harmony.estimate_key(other, SPEC)
        assert o[:2] == k[:2] and o.sharps == k.sharps and o.correlation == pytest.approx(k.correlation, abs=1e-12)
    # Bb major: two flats; G minor is its relative, so its signature is also two flats
    bb = _chord_roll([[46, 50, 53], [51, 55, 58], [53, 57, 60], [46, 50, 53]])
    assert harmony.estimate_key(bb, SPEC)[:2] == (10, "major") and harmony.estimate_key(bb, SPEC).sharps == -2
    gm = _chord_roll([[43, 46, 50], [48, 51, 55], [50, 54, 57], [43, 46, 50]])
    assert harmony.estimate_key(gm, SPEC)[:2] == (7, "minor") and harmony.estimate_key(gm, SPEC).sharps == -2
    assert harmony.estimate_key(gm, SPEC).name == "G minor"


def test_key_correlation_is_pearson_with_the_rotated_profile():
    c = harmony.chroma(_chord_roll([[48, 52, 55], [53, 57, 60], [55, 59, 62]])).sum(axis=0)
    k = harmony.estimate_key(c)
    major = [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]
    prof = [major[(i - k.tonic) % 12] for i in range(12)]
    mx, my = sum(c) / 12, sum(prof) / 12
    num = sum((a - mx) * (b - my) for a, b in zip(c, prof))
    den = math.sqrt(sum((a - mx) ** 2 for a in c) * sum((b - my) ** 2 for b in prof))
    assert k.mode == "major" and k.correlation == pytest.approx(num / den, abs=1e-12)


def _exact_best_key(hist) -> tuple[int, str]:
    """The best Krumhansl-Kessler key of an integer histogram in rational arithmetic: Pearson r of
    profile k is d_k / (|x| |p_k|) with d_k the centred dot product, so r_a > r_b compares
    sign(d) d^2 / |p|^2 exactly; ties go to major first, then the lower tonic (the documented rule)."""
    from fractions import Fraction as F

    profiles = {"major": "6.35 2.23 3.48 2.33 4.38 4.09 2.52 5.19 2.39 3.66 2.29 2.88".split(),
                "minor": "6.33 2.68 3.52 5.38 2.60 3.53 2.54 4.75 3.98 2.69 3.34 3.17".split()}
    mean = F(sum(hist), 12)
    best, best_key = None, None
    for mode in ("major", "minor"):
        p = [F(v) for v in profiles[mode]]
        pm = sum(p) / 12
        norm2 = sum((v - pm) ** 2 for v in p)
        for tonic in range(12):
            d = sum((F(hist[i]) - mean) * (p[(i - tonic) % 12] - pm) for i in range(12))
            score = (1 if d > 0 else -1) * d * d / norm2  # orders like r
            if best is None or score > best:
                best, best_key = score, (tonic, mode)
    return best_key


def test_key_is_the_best_of_the_24_profiles_exactly_with_ties_to_major_then_lower_tonic():
    rng = np.random.default_rng(7)
    hists = [rng.integers(0, 60, 12) * rng.integers(0, 2, 12) for _ in range(150)]
    # an exact tie (Eb major and Bb major have the same correlation in rational arithmetic)
    hists.append(np.array([18, 18, 30, 39, 43, 29, 28, 22, 32, 0, 48, 2]))
    for h in hists:
        if h.sum() == 0 or np.all(h == h[0]):
            continue
        k = harmony.estimate_key(h.astype(float))
        assert (k.tonic, k.mode) == _exact_best_key([int(v) for v in h]), h
    assert harmony.estimate_key(hists[-1].astype(float))[:2] == (3, "major")


def test_silent_or_flat_passage_has_no_key():
    for x in (np.zeros((32, SPEC.n_columns), np.uint8), np.ones(12)):
        k = harmony.estimate_key(x, SPEC)
        assert k[:2] == (0, "major") and k.sharps == 0 and math.isnan(k.correlation)
    with pytest.raises(ValueError):
        harmony.tonic_triad(np.zeros((3, 12)))


def test_corpus_and_render_use_the_one_estimator():
    from qbdi_utils import corpus

    assert corpus.estimate_key is harmony.estimate_key
    assert corpus.key_name(3, "major") == "Eb major"


# --- ties: no pitch-class bias (issue 12, F2) ----------------------------------------------

def test_tie_sets_of_ambiguous_chroma():
    fifth = _pcs(0, 7)  # C-G: C major and C minor tie
    s = harmony.triad_tie_sets(fifth)
    assert set(np.flatnonzero(s)) == {0, 12}
    single = _pcs(4)  # E alone: in C, E, A (major) and Em, C#m, Am (minor)
    names = {harmony.TRIAD_NAMES[i] for i in np.flatnonzero(harmony.triad_tie_sets(single))}
    assert names == {"C", "E", "A", "Em", "C#m", "Am"}
    assert not harmony.triad_tie_sets(np.zeros(12)).any()


def _brute_force_over_orders(sets_list, stat):
    """Average of stat(labels) over every priority order of the triads that occur (exact)."""
    import itertools

    used = sorted({int(t) for S in sets_list for t in np.flatnonzero(S)})
    vals = []
    for order in itertools.permutations(used):
        rank = {t: i for i, t in enumerate(order)}
        labels = [min(np.flatnonzero(S), key=rank.get) if S.any() else -1 for S in sets_list]
        vals.append(stat(labels))
    return float(np.mean(vals))


def test_triad_credit_is_agreement_under_a_random_priority_order():
    rng = np.random.default_rng(3)
    for _ in range(30):
        a, b = rng.random((2, 24)) < 0.12
        a[rng.integers(24)] = True
        b[rng.integers(24)] = True
        if (a | b).sum() > 7:
            continue
        want = _brute_force_over_orders([a, b], lambda l: float(l[0] == l[1]))
        assert harmony.triad_credit(a, b)[0] == pytest.approx(want, abs=1e-12)
    z = np.zeros(24, bool)
    one = z.copy()
    one[3] = True
    assert list(harmony.triad_credit(np.array([z, z, one]), np.array([z, one, one]))) == [1.0, 0.0, 1.0]


def test_expected_distinct_against_every_priority_order():
    rng = np.random.default_rng(5)
    checked = 0
    while checked < 25:
        sets = rng.random((5, 24)) < 0.08
        sets[np.arange(5), rng.integers(0, 24, 5)] = True
        sets[3] = sets[1]  # identical windows must count once
        if len({int(t) for S in sets for t in np.flatnonzero(S)}) > 7:
            continue
        want = _brute_force_over_orders(list(sets), lambda l: len(set(l)))
        assert harmony.expected_distinct(sets) == pytest.approx(want, abs=1e-12)
        checked += 1
    one_label = np.zeros((5, 24), bool)
    one_label[np.arange(5), [0, 0, 7, 9, 7]] = True
    assert harmony.expected_distinct(one_label) == 3.0
    # a tied bar repeated 100 times is one chord, not six
    e = harmony.triad_tie_sets(_pcs(4))
    assert harmony.expected_distinct(np.tile(e, (100, 1))) == pytest.approx(1.0)


def _bars_with_ties(rng, n):
    """Random bars mixing triads, bare fifths and single notes (many tied best triads)."""
    bars = []
    for _ in range(n):
        r = int(rng.integers(0, 12))
        kind = rng.integers(0, 3)
        pcs = [(r, r + 4, r + 7), (r, r + 7), (r,)][kind]
        bars.append([48 + p for p in pcs])
    return _chord_roll(bars)


def test_agreement_and_tonic_share_do_not_change_under_transposition():
    rng = np.random.default_rng(0)
    q, o = _bars_with_ties(rng, 30), _bars_with_ties(rng, 30)
    base_agree = harmony.frame_agreement(harmony.chroma(q), harmony.chroma(o))["triad_agreement"]
    base = harmony.output_stats(o, tonic=0, query_roll=q)
    for shift in range(1, 12):
        qs, os_ = (np.roll(x.reshape(len(x), 2, SPEC.n_pitches), shift, axis=2).reshape(len(x), -1) for x in (q, o))
        agree = harmony.frame_agreement(harmony.chroma(qs), harmony.chroma(os_))["triad_agreement"]
        st = harmony.output_stats(os_, tonic=shift)
        assert agree == pytest.approx(base_agree, abs=1e-12)
        assert st["tonic_share"] == pytest.approx(base["tonic_share"], abs=1e-12)
        assert st["distinct_triads"] == pytest.approx(base["distinct_triads"], abs=1e-12)


def test_lowest_index_tie_break_would_be_biased():
    """Why F2 matters: a C-G fifth in both query and output used to 'agree' with certainty."""
    fifth = harmony.chroma(_chord_roll([[48, 55]]))          # C-G: C or Cm
    c_major = harmony.chroma(_chord_roll([[48, 52, 55]]))    # C-E-G: C
    c_minor = harmony.chroma(_chord_roll([[48, 51, 55]]))    # C-Eb-G: Cm
    assert harmony.frame_agreement(fifth, fifth)["triad_agreement"] == 1.0
    assert harmony.frame_agreement(fifth, c_major)["triad_agreement"] == 0.5
    assert harmony.frame_agreement(fifth, c_minor)["triad_agreement"] == 0.5  # lowest index said 0
    assert harmony.output_stats(_chord_roll([[48, 55]]), tonic=0)["tonic_share"] == 0.5


def test_triad_shares_split_ties_and_ignore_silence():
    c = np.vstack([_pcs(0, 4, 7), _pcs(0, 7), np.zeros(12), _pcs(9, 0, 4)])
    sh = harmony.triad_shares(c)
    want = np.zeros(24)
    want[0] += 1 / 3 + 1 / 6  # C triad; the C-G fifth is half C, half Cm
    want[12] += 1 / 6
    want[21] += 1 / 3  # Am
    np.testing.assert_allclose(sh, want, atol=1e-12)
    assert harmony.triad_shares(np.zeros((3, 12))).sum() == 0
