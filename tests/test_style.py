"""qbdi_utils.style: per-bar descriptors, set overlap / KL, the style classifier, the fidelity line.

Expected values are worked out by hand from hand-made rolls or computed independently
(total-variation identity for the overlap, the KL formula on smoothed histograms, brute-force AUC,
the logistic loss's first-order optimality condition).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from qbdi_utils import pianoroll, style
from qbdi_utils.errors import ModelError
from qbdi_utils.pianoroll import Piece, RollSpec

SPEC = RollSpec()


def _roll(notes, n_steps):
    return pianoroll.notes_to_roll(notes, n_steps, SPEC)


# ----------------------------------------------------------------------------------------------
# descriptors of hand-made rolls


def test_descriptors_of_a_hand_made_roll():
    # bar 0: C4 whole bar, E4 steps 0-3, G4 steps 4-5; bar 1 silent; bar 2: D4 steps 32-39 (8 steps)
    # bar 3: A3 from step 56 held over the bar line to step 72 (16 steps, belongs to bar 3)
    roll = _roll([(60, 0, 16), (64, 0, 4), (67, 4, 6), (62, 32, 40), (57, 56, 72)], 80)
    d = style.bar_descriptors(roll, SPEC, tonic=0)
    assert d.n_bars == 5
    np.testing.assert_array_equal(d.onsets, [3, 0, 1, 1, 0])
    # sounding pitches per step in bar 0: 2 on steps 0-5, 1 on steps 6-15 -> 22 / 16
    np.testing.assert_allclose(d.polyphony, [22 / 16, 0, 1, 1, 1])
    np.testing.assert_array_equal(d.pitch_span, [7, 0, 0, 0, 0])
    np.testing.assert_array_equal(d.empty, [0, 1, 0, 0, 0])
    np.testing.assert_allclose(d.note_length, [(16 + 4 + 2) / 3, 0, 8, 16, 0])
    np.testing.assert_array_equal(np.sort(d.lengths), [2, 4, 8, 16, 16])
    # bar 0's pitch classes: C 16 steps, E 4, G 2 -> entropy of (16, 4, 2) / 22
    p = np.array([16, 4, 2]) / 22
    np.testing.assert_allclose(d.pc_entropy, [-(p * np.log2(p)).sum(), 0, 0, 0, 0], atol=1e-12)
    assert d.pitch_classes[0, 0] == 16 and d.pitch_classes[0, 4] == 4 and d.pitch_classes[0, 7] == 2
    assert d.groove[0, 0] == 2 and d.groove[0, 4] == 1 and d.groove[0].sum() == 3
    assert d.groove[3, 8] == 1 and d.groove[4].sum() == 0


def test_pitch_classes_are_tonic_relative_and_transposition_invariant():
    notes = [(60, 0, 8), (64, 0, 8), (67, 0, 8), (65, 8, 16), (69, 8, 16), (72, 8, 16),
             (67, 16, 24), (71, 16, 24), (74, 16, 24), (60, 24, 32), (64, 24, 32), (67, 24, 32)]
    up = [(p + 3, s, e) for p, s, e in notes]
    a = style.bar_descriptors(_roll(notes, 32), SPEC)
    b = style.bar_descriptors(_roll(up, 32), SPEC)
    np.testing.assert_array_equal(a.pitch_classes, b.pitch_classes)
    assert style.style_fit(a, b) == pytest.approx(1.0)


def test_pickup_is_padded_in_front_so_bars_start_on_bar_lines():
    # a 4-step pickup (one note), then a full bar of 4 quarter notes
    roll = _roll([(60, 0, 4), (62, 4, 8), (64, 8, 12), (65, 12, 16), (67, 16, 20)], 20)
    piece = Piece(roll=roll, spec=SPEC, bar_offset_steps=4)
    d = style.bar_descriptors(piece, SPEC)
    np.testing.assert_array_equal(d.onsets, [1, 4])
    assert d.groove[0, 12] == 1  # the pickup sits at the end of the first (padded) bar
    np.testing.assert_array_equal(np.flatnonzero(d.groove[1]), [0, 4, 8, 12])


def test_frames_descriptors_by_piece_equal_each_piece_alone():
    r1 = _roll([(60, 0, 20), (64, 4, 8)], 32)   # the C4 note crosses into bar 2
    r2 = _roll([(67, 0, 16)], 16)
    frames = np.vstack([pianoroll.to_frames(r1, SPEC), pianoroll.to_frames(r2, SPEC)])
    both = style.frames_descriptors(frames, SPEC, groups=[5, 5, 9])
    one, two = style.bar_descriptors(r1, SPEC), style.bar_descriptors(r2, SPEC)
    np.testing.assert_array_equal(both.onsets, np.concatenate([one.onsets, two.onsets]))
    np.testing.assert_array_equal(both.note_length, np.concatenate([one.note_length, two.note_length]))
    np.testing.assert_array_equal(both.piece, [0, 0, 1])
    assert both.note_length[0] == 12  # (20 + 4) / 2: the held note keeps its whole length
    sub = both.select([2])
    np.testing.assert_array_equal(sub.lengths, [16])


# ----------------------------------------------------------------------------------------------
# histograms, overlap, KL


def test_histogram_uses_the_fixed_bins():
    d = style.bar_descriptors(_roll([(60 + k, 2 * k, 2 * k + 1) for k in range(5)], 16), SPEC)
    h = style.histogram(d, "onsets")  # 5 onsets -> bin [4, 6)
    assert h.shape == (len(style.SCALAR_BINS["onsets"]),) and h[2] == 1.0
    silent = style.bar_descriptors(np.zeros((16, SPEC.n_columns), np.uint8), SPEC)
    assert style.histogram(silent, "note_length").sum() == 0  # no notes: undefined
    assert style.histogram(silent, "empty")[1] == 1.0
    big = SimpleNamespace(onsets=np.array([200.0, 0.0, 1.9]))  # beyond the last edge: the last bin
    h = style.histogram(big, "onsets")
    assert h[-1] == pytest.approx(1 / 3) and h[0] == pytest.approx(2 / 3)


def test_overlap_equals_one_minus_total_variation():
    rng = np.random.default_rng(3)
    for _ in range(20):
        p, q = rng.random(9), rng.random(9)
        p, q = p / p.sum(), q / q.sum()
        assert style.overlap(p, q) == pytest.approx(1 - 0.5 * np.abs(p - q).sum())
    assert style.overlap(p, p) == pytest.approx(1.0)
    assert style.overlap([0.5, 0.5, 0, 0], [0, 0, 0.2, 0.8]) == 0.0
    assert math.isnan(style.overlap([0, 0], [1, 0]))


def test_kl_of_identical_histograms_is_zero_and_matches_the_formula():
    p = np.array([0.7, 0.2, 0.1, 0.0])
    assert style.kl_bits(p, p) == 0.0
    q = np.array([0.1, 0.1, 0.4, 0.4])
    e = style.KL_EPSILON
    ps, qs = (p + e) / (1 + 4 * e), (q + e) / (1 + 4 * e)
    assert style.kl_bits(p, q) == pytest.approx(sum(a * math.log2(a / b) for a, b in zip(ps, qs)))
    assert style.kl_bits([1, 0], [0, 1]) > 5  # disjoint: large but finite


def _chorale_like(n_bars, seed):
    """Four-voice block chords on every quarter note."""
    rng = np.random.default_rng(seed)
    notes = []
    for b in range(n_bars):
        for beat in range(4):
            root = 48 + int(rng.integers(0, 12))
            for iv in (0, 7, 16, 24):
                notes.append((root + iv, 16 * b + 4 * beat, 16 * b + 4 * beat + 4))
    return _roll(notes, 16 * n_bars)


def _fiddle_like(n_bars, seed):
    """One line of eighth notes, stepwise."""
    rng = np.random.default_rng(seed)
    notes, p = [], 72
    for b in range(n_bars):
        for k in range(8):
            p = int(np.clip(p + rng.integers(-2, 3), 64, 84))
            notes.append((p, 16 * b + 2 * k, 16 * b + 2 * k + 2))
    return _roll(notes, 16 * n_bars)


def test_overlap_of_a_set_with_itself_is_one_and_of_disjoint_sets_zero():
    a = style.bar_descriptors(_chorale_like(30, 0), SPEC)
    b = style.bar_descriptors(_fiddle_like(30, 1), SPEC)
    assert style.style_fit(a, a) == pytest.approx(1.0)
    cmp = style.compare_sets(a, b)
    for name in ("onsets", "polyphony", "note_length"):
        assert cmp[name]["overlap"] == pytest.approx(0.0), name  # 16 vs 8 onsets, 4 vs 1 voice, 4 vs 2 steps
        assert cmp[name]["kl_bits"] > 5
    # onsets on the quarters (1/4 each) against every eighth (1/8 each): they share 4 x 1/8
    assert cmp["groove"]["overlap"] == pytest.approx(0.5)
    assert style.style_fit(a, b) < 0.5
    assert set(cmp) == set(style.DESCRIPTORS)


# ----------------------------------------------------------------------------------------------
# the classifier


def test_auc_matches_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 30).astype(float)
    brute = np.mean([(x > y) + 0.5 * (x == y) for x in a for y in b])
    assert style.auc(a, b) == pytest.approx(brute)


def test_classifier_separates_two_synthetic_styles():
    fit_a = style.bar_descriptors(_chorale_like(60, 1), SPEC)
    fit_b = style.bar_descriptors(_fiddle_like(60, 2), SPEC)
    clf = style.fit_classifier(fit_a, fit_b)
    chk_a = style.bar_descriptors(_chorale_like(40, 3), SPEC)
    chk_b = style.bar_descriptors(_fiddle_like(40, 4), SPEC)
    pa, pb = clf.p_corpus(chk_a), clf.p_corpus(chk_b)
    assert style.auc(pa, pb) > 0.99
    assert pa.mean() > 0.9 and pb.mean() < 0.1


def test_classifier_is_at_chance_on_one_style_split_in_two():
    # one style, bars dealt at random into two labelled halves: nothing to learn
    d = style.bar_descriptors(_chorale_like(400, 7), SPEC)
    rng = np.random.default_rng(8)
    perm = rng.permutation(d.n_bars)
    fit_a, fit_b, chk_a, chk_b = (d.select(perm[i::4]) for i in range(4))
    clf = style.fit_classifier(fit_a, fit_b)
    score = style.auc(clf.p_corpus(chk_a), clf.p_corpus(chk_b))
    # AUC of two samples of 100 from one distribution: sd ~ 0.04; 0.5 +- 0.15 is > 3.5 sd
    assert abs(score - 0.5) < 0.15


def test_classifier_solution_satisfies_the_first_order_condition():
    a = style.bar_descriptors(_chorale_like(30, 11), SPEC)
    b = style.bar_descriptors(_fiddle_like(20, 12), SPEC)
    b = style.BarDescriptors.concatenate([b, style.bar_descriptors(_chorale_like(10, 13), SPEC)])
    clf = style.fit_classifier(a, b, l2=2.0)
    x = np.vstack([style.classifier_features(a), style.classifier_features(b)])
    z = (x - clf.mean) / clf.scale
    y = np.r_[np.ones(a.n_bars), np.zeros(b.n_bars)]
    w = np.r_[np.full(a.n_bars, 0.5 / a.n_bars), np.full(b.n_bars, 0.5 / b.n_bars)]
    p = 1 / (1 + np.exp(-(z @ clf.weights + clf.bias)))
    grad_w = z.T @ (w * (p - y)) + 2.0 / len(x) * clf.weights
    grad_b = (w * (p - y)).sum()
    assert np.abs(grad_w).max() < 1e-6 and abs(grad_b) < 1e-6


# ----------------------------------------------------------------------------------------------
# corpus reference and fidelity line


def test_corpus_reference_is_computed_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("QBDI_CACHE_DIR", str(tmp_path))
    r1, r2, r3 = _chorale_like(3, 0), _fiddle_like(2, 0), _chorale_like(2, 5)
    frames = np.vstack([pianoroll.to_frames(r, SPEC) for r in (r1, r2, r3)])
    corpus = SimpleNamespace(frames=frames, piece_index=np.array([0, 0, 0, 1, 1, 2, 2]))
    model = SimpleNamespace(fingerprint="abc123", spec=SPEC, info={"test_groups": [1, 2]})
    ref = style.corpus_reference(model, corpus)
    assert ref.n_bars == 4
    np.testing.assert_array_equal(ref.onsets, [8, 8, 16, 16])

    def no_corpus():
        raise AssertionError("the cache should have answered")

    again = style.corpus_reference(model, no_corpus)
    np.testing.assert_array_equal(again.onsets, ref.onsets)
    np.testing.assert_array_equal(again.pitch_classes, ref.pitch_classes)
    with pytest.raises(ModelError):
        style.corpus_reference(SimpleNamespace(fingerprint="x", spec=SPEC, info={}), corpus)


def test_fidelity_line_keys_and_self_comparison():
    q = Piece(roll=_chorale_like(8, 2), spec=SPEC, bar_offset_steps=0)
    ref = style.bar_descriptors(_chorale_like(20, 9), SPEC)
    d = style.fidelity(q, q, ref)
    assert tuple(d) == style.FIDELITY_KEYS
    assert d["chroma_cosine"] == pytest.approx(1.0) and d["triad_agreement"] == pytest.approx(1.0)
    assert d["style_fit_query"] == pytest.approx(1.0)
    assert d["onsets_per_bar"] == 16.0 and d["corpus_onsets_per_bar"] == 16.0
    assert d["empty_bar_rate"] == 0.0
    other = Piece(roll=_fiddle_like(8, 3), spec=SPEC)
    f = style.fidelity(q, other, ref)
    assert f["style_fit_corpus"] < d["style_fit_corpus"] and f["onsets_per_bar"] == 8.0
    line = style.format_fidelity(f)
    assert "\n" not in line and "onsets/bar 8.0 (corpus 16.0)" in line


def test_held_notes_sounding_cells_and_note_length_of_hand_made_rolls():
    """Sustain on the fidelity line: counted by hand from rolls whose note lengths are known."""
    # query: 2 bars, each a half-note C4 (8 steps) and two quarter notes E4, G4 (4 steps each) -> per
    # bar 16 sounding cells, 3 onsets, notes of 8, 4, 4 steps (mean 16 / 3)
    q_notes = [(60, 0, 8), (64, 8, 12), (67, 12, 16), (60, 16, 24), (64, 24, 28), (67, 28, 32)]
    # output: the same onsets, every note cut to one step -> 3 sounding cells per bar, length 1
    o_notes = [(p, a, a + 1) for p, a, _ in q_notes]
    q = Piece(roll=_roll(q_notes, 32), spec=SPEC)
    out = Piece(roll=_roll(o_notes, 32), spec=SPEC)
    # corpus: one bar of a whole-note triad (48 cells, 3 notes of 16) and one of a held C4 (16, 1 note)
    ref = style.bar_descriptors(_roll([(60, 0, 16), (64, 0, 16), (67, 0, 16), (60, 16, 32)], 32), SPEC)
    np.testing.assert_array_equal(ref.sounding, [48, 16])
    f = style.fidelity(q, out, ref)
    assert f["onsets_per_bar"] == 3.0 and f["corpus_onsets_per_bar"] == 2.0  # the onsets equal the query's
    assert f["sounding_per_bar"] == 3.0 and f["query_sounding_per_bar"] == 16.0
    assert f["corpus_sounding_per_bar"] == 32.0
    assert f["note_length"] == 1.0 and f["query_note_length"] == pytest.approx(16 / 3)
    assert f["corpus_note_length"] == 16.0
    line = style.format_fidelity(f)
    assert "sounding/bar 3.0 (query 16.0, corpus 32.0)" in line
    assert "note length 1.00 (query 5.33, corpus 16.00)" in line
    # a note held over the bar line belongs to the bar it starts in; its cells to the bars they sound in
    held = style.bar_descriptors(_roll([(60, 8, 24)], 32), SPEC)
    np.testing.assert_array_equal(held.sounding, [8, 8])
    np.testing.assert_array_equal(held.lengths, [16])
    # without a corpus the corpus side is nan, the rest is still measured
    g = style.fidelity(q, out, None)
    assert math.isnan(g["corpus_sounding_per_bar"]) and math.isnan(g["corpus_note_length"])
    assert g["sounding_per_bar"] == 3.0
    # a silent output: no notes -> nan note length, 0 sounding cells
    silent = style.fidelity(q, Piece(roll=np.zeros((32, SPEC.n_columns), np.uint8), spec=SPEC), ref)
    assert silent["sounding_per_bar"] == 0.0 and math.isnan(silent["note_length"])


def test_sounding_cells_survive_select_concatenate_and_the_cache():
    a = style.bar_descriptors(_roll([(60, 0, 16), (64, 0, 4)], 32), SPEC)
    b = style.bar_descriptors(_roll([(62, 0, 2)], 16), SPEC)
    both = style.BarDescriptors.concatenate([a, b])
    np.testing.assert_array_equal(both.sounding, [20, 0, 2])
    np.testing.assert_array_equal(both.select([0, 2]).sounding, [20, 2])
    back = style.BarDescriptors.from_npz_bytes(both.to_npz_bytes())
    np.testing.assert_array_equal(back.sounding, both.sounding)


def test_other_style_pieces_parse_transpose_to_c_skip_the_unreadable_and_cache(tmp_path, monkeypatch):
    from qbdi_utils import harmony

    monkeypatch.setenv("QBDI_CACHE_DIR", str(tmp_path))
    sources = {"fiddle tunes": ("ryansMammoth/LanigansBallJig.abc", "ryansMammoth/NoSuchTune.abc")}
    frames, index, names, groups = style.other_style_pieces(SPEC, sources)
    assert names == ["ryansMammoth/LanigansBallJig.abc"] and groups == ["fiddle tunes"]
    assert frames.shape[1] == SPEC.frame_size and len(frames) == len(index) > 10
    assert harmony.estimate_key(frames, SPEC).tonic == 0  # moved to tonic C like the chorales
    assert list((tmp_path / "style").glob("other-styles-*.npz"))
    import music21.corpus

    def no_parse(*a, **k):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(music21.corpus, "parse", no_parse)
    again = style.other_style_pieces(SPEC, sources)
    np.testing.assert_array_equal(again[0], frames)
    assert again[2] == names
