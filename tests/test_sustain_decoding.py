"""Sustain continuation (qbdi_utils.training.threshold.continue_notes), an option beside the paper's
decoding: hand-made probabilities whose decoded note lengths are worked out by hand, an independent
scalar implementation for random probabilities, brute force for the chosen continuation threshold,
and the model-file field (absent in old files: decoding exactly as before).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from qbdi_utils import pianoroll
from qbdi_utils.model import StyleVAE, note_scores, synthetic_frames
from qbdi_utils.pianoroll import RollSpec
from qbdi_utils.training import threshold as th_mod

SPEC = RollSpec()
P = SPEC.n_pitches


def _probs(play: dict, art: dict, n_steps: int) -> np.ndarray:
    """A (T, 156) probability roll: ``play`` / ``art`` map a pitch column to its per-step values."""
    r = np.zeros((n_steps, SPEC.n_columns), np.float64)
    for k, v in play.items():
        r[:, k] = v
    for k, v in art.items():
        r[:, P + k] = v
    return r


def _lengths(roll) -> list[tuple[int, int, int]]:
    return [(n.pitch - SPEC.min_pitch, n.start, n.end - n.start) for n in pianoroll.roll_to_notes(roll, SPEC)]


def test_a_note_goes_on_below_the_threshold_and_stops_where_the_sound_or_a_new_onset_does():
    th, ts = 0.54, 0.40
    p = _probs(
        play={
            0: [0.9, 0.45, 0.45, 0.20, 0.45, 0.0],   # held 3 steps, then a drop: the 0.45 after it starts nothing
            1: [0.9, 0.45, 0.90, 0.45, 0.0, 0.0],    # decoded articulation at step 2 -> a new note there
            2: [0.45, 0.45, 0.45, 0.0, 0.0, 0.0],    # never reaches the threshold: no note at all
            3: [0.0, 0.0, 0.60, 0.41, 0.39, 0.0],    # starts at 2 with no articulation decoded; 2 steps
        },
        art={0: [0.9, 0, 0, 0, 0, 0], 1: [0.9, 0, 0.8, 0, 0, 0], 2: [0.9, 0, 0, 0, 0, 0]},
        n_steps=6)
    out = th_mod.continue_notes(p, th, ts, SPEC)
    assert pianoroll.is_valid_roll(out, SPEC)
    assert _lengths(out) == [(0, 0, 3), (1, 0, 2), (1, 2, 2), (3, 2, 2)]
    # the paper's decoding of the same probabilities: every carried step lost
    assert _lengths(pianoroll.binarize(p, th, SPEC)) == [(0, 0, 1), (1, 0, 1), (1, 2, 1), (3, 2, 1)]
    # an articulation above the threshold on a step only the continuation reaches is no new note:
    # the held note ends there, as binarize drops an articulation without play
    q = _probs(play={0: [0.9, 0.45]}, art={0: [0.9, 0.7]}, n_steps=2)
    assert _lengths(th_mod.continue_notes(q, th, ts, SPEC)) == [(0, 0, 1)]


def test_frames_are_one_stretch_of_time_and_a_note_carries_over_the_frame_line():
    th, ts = 0.5, 0.3
    frames = np.zeros((2, SPEC.steps_per_frame, SPEC.n_columns))
    frames[0, 15, 5], frames[0, 15, P + 5] = 0.8, 0.8   # onset on the last step of frame 0
    frames[1, :3, 5] = 0.35                                # carried 3 steps into frame 1
    out = th_mod.continue_notes(frames.reshape(2, -1), th, ts, SPEC)
    assert out.shape == (2, SPEC.frame_size)
    assert _lengths(pianoroll.as_roll(out, SPEC)) == [(5, 15, 4)]


def _scalar_reference(p: np.ndarray, th: float, ts: float) -> np.ndarray:
    """Independent step-by-step decoding of one (T, 156) roll, one pitch at a time."""
    T = p.shape[0]
    out = np.zeros(p.shape, np.uint8)
    for k in range(P):
        on = False
        for t in range(T):
            pl, ar = p[t, k], p[t, P + k]
            on = pl >= th or (on and pl >= ts and ar < th)
            out[t, k] = on
            prev = t > 0 and out[t - 1, k]
            out[t, P + k] = on and (ar >= th or not prev)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_a_scalar_reference_on_random_probabilities(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, (40, SPEC.n_columns)) ** 1.5
    for ts in (0.2, 0.45):
        np.testing.assert_array_equal(th_mod.continue_notes(p, 0.5, ts, SPEC), _scalar_reference(p, 0.5, ts))
    # the continuation threshold at or above the threshold is exactly the paper's decoding
    for ts in (0.5, 0.7):
        np.testing.assert_array_equal(th_mod.continue_notes(p, 0.5, ts, SPEC), pianoroll.binarize(p, 0.5, SPEC))
    with pytest.raises(ValueError):
        th_mod.continue_notes(p, 0.5, 0.0, SPEC)


def test_binarize_by_piece_without_a_continuation_threshold_is_unchanged():
    rng = np.random.default_rng(3)
    probs = rng.uniform(0, 1, (12, SPEC.frame_size)).astype(np.float32)
    groups = np.repeat([4, 1, 7], 4)
    want = np.vstack([pianoroll.binarize(probs[g == groups], 0.55, SPEC) for g in (4, 1, 7)])
    np.testing.assert_array_equal(th_mod.binarize_by_piece(probs, 0.55, SPEC, groups), want)
    np.testing.assert_array_equal(th_mod.binarize_by_piece(probs, 0.55, SPEC, groups, sustain_threshold=None), want)


def test_continuation_threshold_is_chosen_by_brute_force_on_written_outputs():
    rng = np.random.default_rng(0)
    truth = synthetic_frames(16, seed=4)
    pieces = np.repeat([2, 9], 8)
    t3 = truth.reshape(16, 16, 2 * P).astype(float)
    # onsets confident; held steps of true notes drift down, so a lower continuation threshold keeps them
    probs = np.where(t3 > 0, rng.uniform(0.25, 1.0, t3.shape), rng.uniform(0, 0.5, t3.shape) ** 3)
    probs[..., P:] = np.where(t3[..., P:] > 0, 0.9, 0.0)
    probs = probs.reshape(16, -1)
    grid = np.array([0.2, 0.3, 0.4, 0.5, 0.6])
    brute = []
    for g in grid:
        out = np.zeros_like(truth)
        for piece in (2, 9):
            rows = np.flatnonzero(pieces == piece)
            out[rows] = pianoroll.as_frames(
                _scalar_reference(pianoroll.as_roll(probs[rows], SPEC), 0.6, g).reshape(len(rows), -1), SPEC)
        brute.append(note_scores(truth, out)["f1"])
    ts, f1 = th_mod.choose_sustain_threshold(truth, probs, 0.6, grid, spec=SPEC, groups=pieces)
    np.testing.assert_allclose(f1, brute, atol=1e-12)
    best = np.flatnonzero(np.isclose(brute, max(brute)))[-1]  # ties: the highest (closest to the paper's)
    assert ts == grid[best] and ts < 0.6  # here continuation helps
    assert f1[-1] == pytest.approx(note_scores(truth, th_mod.binarize_by_piece(probs, 0.6, SPEC, pieces))["f1"])


def test_the_model_field_is_absent_in_old_files_and_survives_save_load(tiny_model, tmp_path):
    assert th_mod.SUSTAIN_INFO_KEY not in tiny_model.info
    assert th_mod.sustain_threshold_of(tiny_model) is None
    loaded = StyleVAE.load(tiny_model.info["model_dir"])
    assert th_mod.sustain_threshold_of(loaded) is None
    frames = synthetic_frames(24, seed=5)
    groups = np.repeat([0, 1, 2], 8)
    m = StyleVAE.load(tiny_model.info["model_dir"])
    m.info = copy.deepcopy(m.info)
    ts = th_mod.record_sustain_threshold(m, frames, groups)
    assert 0.0 < ts <= m.threshold
    assert th_mod.sustain_threshold_of(m) == ts
    # the recorded F1s are those of choose_sustain_threshold on the model's reconstruction
    want_ts, want_f1 = th_mod.choose_sustain_threshold(frames, m.reconstruct(frames), m.threshold, spec=SPEC,
                                                       groups=groups)
    assert want_ts == ts
    assert list(m.info["sustain_threshold_f1"].values()) == pytest.approx(list(want_f1))
    m.save(tmp_path / "m")
    back = StyleVAE.load(tmp_path / "m")
    assert th_mod.sustain_threshold_of(back) == ts and back.threshold == m.threshold


# ----------------------------------------------------------------------------------------------
# the option wired into improvise and `qbdi improvise --decode sustain` (never the default)


def test_improvise_with_a_continuation_threshold_is_continue_notes_of_the_decoder_output(tiny_model):
    from qbdi_utils import improvise

    roll = pianoroll.as_roll(synthetic_frames(4, seed=7), SPEC)
    q = pianoroll.Piece(roll=roll, spec=SPEC, name="q")
    enc = improvise.encode_query(tiny_model, q)
    probs = np.asarray(tiny_model.decode(enc.mean))
    ts = 0.5 * tiny_model.threshold  # a continuation threshold well below the model's threshold
    got = improvise.improvise(tiny_model, q, None, sustain_threshold=ts)
    want = pianoroll.make_valid(th_mod.continue_notes(probs, tiny_model.threshold, ts, SPEC).reshape(-1, SPEC.n_columns), SPEC)
    np.testing.assert_array_equal(got.roll, want[:q.n_steps])
    # without it: the paper's decoding, unchanged
    paper = improvise.improvise(tiny_model, q, None)
    np.testing.assert_array_equal(paper.roll, pianoroll.binarize(probs, tiny_model.threshold, SPEC).reshape(-1, SPEC.n_columns)[:q.n_steps])
    # held cells only ever added: every sounding cell of the paper's output still sounds
    assert not ((paper.roll[:, :P] != 0) & (got.roll[:, :P] == 0)).any()
    assert (got.roll[:, :P] != 0).sum() > (paper.roll[:, :P] != 0).sum()  # and here some are added


def test_blend_decoding_reads_the_model_field_and_refuses_a_model_without_it(tiny_model):
    from qbdi_utils import blend
    from qbdi_utils.errors import ModelError

    with pytest.raises(ModelError, match="records no continuation threshold"):
        blend.decoding(tiny_model, "sustain")
    m = copy.copy(tiny_model)
    m.info = dict(tiny_model.info, sustain_threshold=0.31)
    assert blend.decoding(m, "sustain") == {"sustain_threshold": 0.31}
    m.info = dict(tiny_model.info, sustain_threshold="high")
    with pytest.raises(ModelError, match="strictly between 0 and 1"):
        blend.decoding(m, "sustain")


def test_cli_decode_sustain_is_one_line_for_an_old_model_and_decodes_for_a_recorded_one(capsys, tmp_path, tiny_model,
                                                                                        chord_query_mid):
    from qbdi_utils.cli import main

    q = chord_query_mid(4)
    base = ["improvise", "--query", str(q), "--bits", "full"]
    code = main(base + ["--model", tiny_model.info["model_dir"], "--decode", "sustain", "--out", str(tmp_path / "a.mid")])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1 and "continuation threshold" in err
    assert not (tmp_path / "a.mid").exists()
    m = StyleVAE.load(tiny_model.info["model_dir"])
    m.info = dict(m.info, sustain_threshold=0.5 * m.threshold)
    m.save(tmp_path / "m")
    code = main(base + ["--model", str(tmp_path / "m"), "--decode", "sustain", "--out", str(tmp_path / "s.mid")])
    _, err = capsys.readouterr()
    assert code == 0, err
    code = main(base + ["--model", str(tmp_path / "m"), "--out", str(tmp_path / "p.mid")])
    assert code == 0
    # the default stays the paper's decoding: the recorded field changes nothing unless asked for
    code = main(base + ["--model", tiny_model.info["model_dir"], "--out", str(tmp_path / "old.mid")])
    assert code == 0
    assert (tmp_path / "p.mid").read_bytes() == (tmp_path / "old.mid").read_bytes()
    s, p = pianoroll.read_midi(tmp_path / "s.mid"), pianoroll.read_midi(tmp_path / "p.mid")
    assert (s.roll[:, :P] != 0).sum() >= (p.roll[:, :P] != 0).sum()
