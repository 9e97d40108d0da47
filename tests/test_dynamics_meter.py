"""Tests of the information-dynamics features in any meter (issue 25): beats and bars of the piece's own
meter, the same numbers as before on 4/4, brute-force chroma on 3/4, 6/8 and mixed meters."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest

from qbdi_utils import dynamics, harmony, pianoroll, vmo_features
from qbdi_utils.cli import main
from qbdi_utils.pianoroll import Piece, RollSpec

SPEC = RollSpec()


def _chord_roll(beats: list[tuple[int, list[int]]], spec: RollSpec = SPEC) -> np.ndarray:
    """A roll of consecutive chords, each held for its number of steps: [(steps, [midi pitches]), ...]."""
    roll = np.zeros((sum(n for n, _ in beats), spec.n_columns), np.uint8)
    t = 0
    for n, chord in beats:
        for p in chord:
            roll[t:t + n, p - spec.min_pitch] = 1
            roll[t, spec.n_pitches + p - spec.min_pitch] = 1
        t += n
    return roll


def _brute_chroma(roll: np.ndarray, windows: list[tuple[int, int]], spec: RollSpec = SPEC) -> np.ndarray:
    """Chroma of each [a, b) window by counting every sounding (step, pitch) one at a time."""
    out = np.zeros((len(windows), 12))
    for i, (a, b) in enumerate(windows):
        for t in range(a, b):
            for k in range(spec.n_pitches):
                if roll[t, k]:
                    out[i, (spec.min_pitch + k) % 12] += 1
    return out


C, AM, F, G, DM, E = [48, 52, 55], [45, 48, 52], [41, 45, 48], [43, 47, 50], [50, 53, 57], [52, 56, 59]


# ------------------------------------------------------------------------------------------ windows by hand

def test_3_4_beats_are_quarters_three_to_a_bar():
    roll = _chord_roll([(4, C), (4, AM), (4, F)] * 2 + [(4, G), (4, C)])  # 2 bars + 2 beats of 3/4
    w = vmo_features.feature_windows(len(roll), SPEC, "beat", [(0, 3, 4)])
    assert w.starts.tolist() == [0, 4, 8, 12, 16, 20, 24, 28]
    assert w.bar.tolist() == [0, 0, 0, 1, 1, 1, 2, 2] and w.within.tolist() == [0, 1, 2] * 2 + [0, 1]
    assert w.per_bar.tolist() == [3] * 8 and w.n_bars == 3
    np.testing.assert_allclose(w.positions, [0, 1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2, 7 / 3, 8 / 3], rtol=0, atol=1e-12)
    got = harmony.tonnetz(_brute_chroma(roll, list(zip(w.starts.tolist(), w.ends.tolist()))))
    np.testing.assert_array_equal(vmo_features.chroma_features(roll, SPEC, "beat", [(0, 3, 4)]), got)
    # frames: one per 3/4 bar of 12 steps (the last cut at the roll's end)
    wf = vmo_features.feature_windows(len(roll), SPEC, "frame", [(0, 3, 4)])
    assert list(zip(wf.starts.tolist(), wf.ends.tolist())) == [(0, 12), (12, 24), (24, 32)]
    np.testing.assert_allclose(wf.positions, [0, 1, 2, 3], rtol=0)
    np.testing.assert_array_equal(vmo_features.chroma_features(roll, SPEC, "frame", [(0, 3, 4)]),
                                  harmony.tonnetz(_brute_chroma(roll, [(0, 12), (12, 24), (24, 32)])))


def test_6_8_beats_are_dotted_quarters_two_to_a_bar():
    roll = _chord_roll([(6, C), (6, G), (6, AM), (6, E), (3, F), (3, C)])
    w = vmo_features.feature_windows(len(roll), SPEC, "beat", [(0, 6, 8)])
    assert list(zip(w.starts.tolist(), w.ends.tolist())) == [(0, 6), (6, 12), (12, 18), (18, 24), (24, 30)]
    assert w.bar.tolist() == [0, 0, 1, 1, 2] and w.within.tolist() == [0, 1, 0, 1, 0]
    assert w.per_bar.tolist() == [2] * 5
    np.testing.assert_allclose(w.positions, [0, 0.5, 1, 1.5, 2, 2.5], rtol=0)
    x = vmo_features.chroma_features(roll, SPEC, "beat", [(0, 6, 8)])
    np.testing.assert_array_equal(x, harmony.tonnetz(_brute_chroma(roll, [(0, 6), (6, 12), (12, 18), (18, 24),
                                                                          (24, 30)])))
    # the last beat mixes F and C (3 steps each): its chroma is the sum of both triads
    assert _brute_chroma(roll, [(24, 30)])[0][[0, 5, 7, 9, 4]].tolist() == [6, 3, 3, 3, 3]


def test_mixed_meter_with_pickup_beats_by_hand():
    # a quarter pickup in 4/4, one 4/4 bar, then 3/4 (two bars), then 6/8 (one bar), then 5/8 (one bar)
    sigs = [(0, 1, 4), (4, 4, 4), (20, 3, 4), (44, 6, 8), (56, 5, 8)]
    T = 4 + 16 + 24 + 12 + 10
    rng = np.random.default_rng(3)
    roll = np.zeros((T, SPEC.n_columns), np.uint8)
    roll[:, :SPEC.n_pitches] = rng.random((T, SPEC.n_pitches)) < 0.05
    w = vmo_features.feature_windows(T, SPEC, "beat", sigs, 4)
    want = ([(0, 4)] + [(4 + 4 * i, 8 + 4 * i) for i in range(4)] + [(20 + 4 * i, 24 + 4 * i) for i in range(6)]
            + [(44, 50), (50, 56)] + [(56 + 2 * i, 58 + 2 * i) for i in range(5)])
    assert list(zip(w.starts.tolist(), w.ends.tolist())) == want
    assert w.bar.tolist() == [0] + [1] * 4 + [2] * 3 + [3] * 3 + [4] * 2 + [5] * 5
    assert w.within.tolist() == [3, 0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 0, 1, 0, 1, 2, 3, 4]
    assert w.per_bar.tolist() == [4] * 5 + [3] * 6 + [2] * 2 + [5] * 5
    np.testing.assert_allclose(w.positions[:3], [0.75, 1.0, 1.25], rtol=0)  # the pickup: the 4/4 bar's last beat
    np.testing.assert_allclose(w.positions[-1], 6.0, rtol=0)
    np.testing.assert_array_equal(vmo_features.chroma_features(roll, SPEC, "beat", sigs, 4),
                                  harmony.tonnetz(_brute_chroma(roll, want)))
    # frames of the same piece are bar_layout's frames (the model's frames)
    starts, lengths, _, _ = pianoroll.bar_layout(T, sigs, 4, SPEC)
    wf = vmo_features.feature_windows(T, SPEC, "frame", sigs, 4)
    assert wf.starts.tolist() == np.maximum(starts, 0).tolist()
    assert wf.ends.tolist() == np.minimum(starts + lengths, T).tolist()


def test_a_bar_cut_short_by_a_meter_change_keeps_its_beats_inside_it():
    # 3/4 from 0, 4/4 from step 8 (inside the first 3/4 bar): bar 0 is 8 steps, 2 beats
    w = vmo_features.feature_windows(24, SPEC, "beat", [(0, 3, 4), (8, 4, 4)])
    assert list(zip(w.starts.tolist(), w.ends.tolist()))[:3] == [(0, 4), (4, 8), (8, 12)]
    assert w.bar.tolist()[:3] == [0, 0, 1] and w.per_bar.tolist()[:3] == [2, 2, 4]


def test_twelve_steps_per_quarter_grid():
    spec = RollSpec(steps_per_quarter=12)
    w = vmo_features.feature_windows(72, spec, "beat", [(0, 3, 4)])  # two 3/4 bars of 36 steps
    assert w.starts.tolist() == list(range(0, 72, 12)) and w.bar.tolist() == [0, 0, 0, 1, 1, 1]
    w68 = vmo_features.feature_windows(72, spec, "beat", [(0, 6, 8)])  # dotted quarters of 18 steps
    assert w68.starts.tolist() == [0, 18, 36, 54] and w68.per_bar.tolist() == [2] * 4


# ------------------------------------------------------------------------------------------ 4/4: unchanged

def _old_features(roll, spec, resolution):
    """The features as they were computed before meters: fixed windows of a quarter (or 16 steps) from 0."""
    win = spec.steps_per_quarter if resolution == "beat" else spec.steps_per_frame
    play = np.asarray(roll)[:, :spec.n_pitches].astype(np.float64)
    n = -(-len(play) // win)
    play = np.vstack([play, np.zeros((n * win - len(play), play.shape[1]))])
    per = play.reshape(n, win, -1).sum(axis=1)
    pcs = np.arange(spec.min_pitch, spec.max_pitch + 1) % 12
    return harmony.tonnetz(np.stack([per[:, pcs == pc].sum(axis=1) for pc in range(12)], axis=1))


@pytest.fixture(scope="module")
def chorales():
    """The first 4/4 chorales of music21's corpus (pickups included) and the first one in 3/4."""
    from music21 import converter

    from qbdi_utils import corpus

    four, three = [], None
    for path in corpus.chorale_paths():
        piece = corpus.score_to_piece(converter.parse(str(path)), path.stem)
        meters = {(n, d) for _, n, d in piece.time_signatures}
        if meters == {(4, 4)} and len(four) < 6:
            four.append(piece)
        elif meters == {(3, 4)} and three is None:
            three = piece
        if len(four) >= 6 and three is not None:
            break
    return four, three


def _digest(a: dynamics.Analysis) -> str:
    h = hashlib.sha256()
    h.update(np.asarray(a.curve.ir).tobytes())
    h.update(np.asarray(a.oracle.symbols).tobytes())
    h.update(repr([(m.symbols, m.spans, m.bar_spans) for m in a.motifs]).encode())
    h.update(repr((a.n_features, a.frames_per_bar, a.unit)).encode())
    return h.hexdigest()


@pytest.mark.parametrize("resolution", ["beat", "frame"])
def test_4_4_chorales_give_the_same_features_and_analysis_as_before(chorales, resolution):
    four, _ = chorales
    assert len(four) == 6 and any(p.bar_offset_steps > 0 for p in four)  # pickups are among them
    for piece in four:
        roll = piece.roll[piece.bar_offset_steps:]
        sigs, off = vmo_features.piece_meter(piece)
        new = vmo_features.chroma_features(roll, piece.spec, resolution, sigs, off)
        np.testing.assert_array_equal(new, _old_features(roll, piece.spec, resolution))
        np.testing.assert_array_equal(new, vmo_features.chroma_features(roll, piece.spec, resolution))
        before = dynamics.analyze_roll(roll, piece.spec, resolution=resolution, n_thresholds=50, min_length=2,
                                       min_count=2)  # no meter: the old path
        after = dynamics.analyze_piece(piece, resolution, 50, 2, 2)
        assert _digest(after) == _digest(before)
        per = 4 if resolution == "beat" else 1
        assert all(bs == (s / per, e / per) for m in after.motifs for (s, e), bs in zip(m.spans, m.bar_spans))


def test_3_4_chorale_beats_follow_its_bars(chorales):
    _, three = chorales
    assert three is not None
    a = dynamics.analyze_piece(three, "beat", 50, 3, 2)
    w = a.windows
    assert a.frames_per_bar == 3.0 and set(w.per_bar.tolist()) == {3}
    body = three.n_steps - three.bar_offset_steps
    assert a.n_features == -(-body // 4) and a.n_bars == pytest.approx(a.n_features / 3)
    for m in a.motifs:  # every occurrence in bars of 3 beats
        for (s, e), (bs, be) in zip(m.spans, m.bar_spans):
            assert bs == pytest.approx(s / 3) and be == pytest.approx(e / 3)


# ------------------------------------------------------------------------------------------ motifs and the CLI

def test_motifs_in_bars_of_a_mixed_meter():
    # symbols: a 3-beat phrase in a 3/4 bar, two 6/8 bars of 2 beats, the phrase again in 3/4
    sigs = [(0, 3, 4), (12, 6, 8), (36, 3, 4)]
    w = vmo_features.feature_windows(48, SPEC, "beat", sigs)
    seq = [1, 2, 3, 7, 8, 9, 6, 1, 2, 3]
    assert len(seq) == len(w) == 3 + 2 + 2 + 3 and w.bar.tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    m = [x for x in dynamics.motifs(seq, min_length=3, positions=w.positions) if x.symbols == (1, 2, 3)][0]
    assert m.spans == [(0, 3), (7, 10)] and m.bar_spans == [(0.0, 1.0), (3.0, 4.0)]
    with pytest.raises(ValueError, match="one more"):
        dynamics.motifs(seq, positions=w.positions[:-1])


@pytest.fixture(autouse=False)
def only_analyze(monkeypatch):
    from qbdi_utils import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["analyze"])


def test_cli_analyze_counts_bars_and_beats_of_a_waltz(only_analyze, capsys, tmp_path):
    # a 3/4 phrase (C Am F) in bars 1, 2 and 4, other chords in bar 3 and 5
    phrase = [(4, C), (4, AM), (4, F)]
    roll = _chord_roll(phrase + phrase + [(4, G), (4, DM), (4, E)] + phrase + [(4, DM), (4, G), (4, E)])
    path = tmp_path / "waltz.mid"
    pianoroll.write_midi(roll, path, tempo_bpm=90.0, spec=SPEC, time_signature=(3, 4))
    code = main(["analyze", "--midi", str(path), "--out", str(tmp_path / "a"), "--min-length", "3"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""  # no 4/4 warning: the bars are the file's
    assert "15 beats (5 bars)" in out
    assert "3 beats, 3x at bar 1, bar 2, bar 4" in out
    with open(tmp_path / "a" / "motifs.csv") as f:
        spans = [tuple(int(r[k]) for k in ("start_bar", "start_beat", "end_bar", "end_beat"))
                 for r in csv.DictReader(f) if r["motif"] == "1"]
    assert spans == [(1, 1, 1, 3), (2, 1, 2, 3), (4, 1, 4, 3)]


def test_piece_meter_shifts_the_signatures_past_the_pickup():
    p = Piece(roll=np.zeros((40, SPEC.n_columns), np.uint8), spec=SPEC, time_signatures=[(0, 1, 4), (4, 3, 4),
                                                                                          (28, 6, 8)],
              bar_offset_steps=4)
    assert vmo_features.piece_meter(p) == ([(0, 3, 4), (24, 6, 8)], 0)
    assert vmo_features.piece_meter(p, from_first_bar=False) == ([(0, 1, 4), (4, 3, 4), (28, 6, 8)], 4)
