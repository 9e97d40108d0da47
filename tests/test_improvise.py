"""Tests of qbdi_utils.improvise (query -> channel -> improvisation) and of the claims sweep (qbdi_utils.claims)."""

from __future__ import annotations

import numpy as np
import pytest

from qbdi_utils import pianoroll
from qbdi_utils.claims import CLAIM_COLUMNS, claims_sweep, write_claims_csv
from qbdi_utils.errors import ModelError, NoNotesError, OptionError, OutputExistsError
from qbdi_utils.improvise import encode_query, improvise, improvise_batch, parse_bits
from qbdi_utils.pianoroll import Piece, RollSpec


def _query(n_frames=6, extra_steps=0, seed=1, **kw) -> Piece:
    """A synthetic chord query: ``n_frames`` bars (+ a partial bar of ``extra_steps``)."""
    from qbdi_utils.model import synthetic_frames

    spec = RollSpec()
    frames = synthetic_frames(n_frames + 1, seed=seed)
    roll = pianoroll.from_frames(frames, spec)[: n_frames * 16 + extra_steps]
    roll = pianoroll.make_valid(roll, spec)
    kw.setdefault("tempo_map", [(0, 90.0), (32, 100.0)])
    kw.setdefault("time_signatures", [(0, 4, 4)])
    return Piece(roll=roll, spec=spec, name="q", **kw)


class CountingModel:
    """Wraps a model and counts its forward passes."""

    def __init__(self, model):
        self._m = model
        self.calls = {"encode": 0, "decode": 0}

    def __getattr__(self, name):
        return getattr(self._m, name)

    def encode(self, frames):
        self.calls["encode"] += 1
        return self._m.encode(frames)

    def decode(self, z):
        self.calls["decode"] += 1
        return self._m.decode(z)


def test_full_rate_is_thresholded_reconstruction(tiny_model):
    q = _query(n_frames=5)
    out = improvise(tiny_model, q, bits=None)
    frames = pianoroll.to_frames(q.roll, q.spec)
    probs = tiny_model.decode(tiny_model.encode(frames)[0])
    expected = pianoroll.from_frames(pianoroll.binarize(probs, tiny_model.threshold, q.spec), q.spec)
    np.testing.assert_array_equal(out.roll, expected)
    # independent of binarize: the play plane is the raw thresholded play probabilities
    raw = probs.reshape(-1, q.spec.n_columns)[:, : q.spec.n_pitches] >= tiny_model.threshold
    np.testing.assert_array_equal(out.roll[:, : q.spec.n_pitches], raw.astype(np.uint8))
    assert out.roll.any(), "tiny model should play something at full rate"
    assert pianoroll.is_valid_roll(out.roll, q.spec)
    assert out.bits is None and out.name == "q @ full rate"
    np.testing.assert_allclose(out.latents, tiny_model.encode(frames)[0])


def test_threshold_argument_overrides_model_threshold(tiny_model):
    q = _query(n_frames=3)
    lo = improvise(tiny_model, q, threshold=0.05)
    hi = improvise(tiny_model, q, threshold=0.95)
    assert lo.roll.sum() > hi.roll.sum()
    assert lo.threshold == 0.05


def test_zero_bits_same_output_for_every_seed(tiny_model):
    q = _query(n_frames=6)
    outs = [improvise(tiny_model, q, bits=0, seed=s) for s in range(4)]
    for o in outs[1:]:
        np.testing.assert_array_equal(o.roll, outs[0].roll)
        np.testing.assert_allclose(o.latents, outs[0].latents)
    # theory: at 0 bits the channel sends the source mean; in "query" mode that is the mean of the
    # query's latent means over its frames, the same for every frame
    mean, _ = tiny_model.encode(pianoroll.to_frames(q.roll, q.spec))
    np.testing.assert_allclose(outs[0].latents, np.broadcast_to(mean.mean(axis=0), mean.shape),
                               rtol=1e-5, atol=1e-5)


def test_zero_bits_corpus_mode_sends_corpus_mean(tiny_model):
    q = _query(n_frames=3)
    out = improvise(tiny_model, q, bits=0, mode="corpus", seed=3)
    np.testing.assert_allclose(out.latents[1], tiny_model.corpus_stats["mean"], rtol=1e-5, atol=1e-5)


def test_output_has_query_length_and_tempo(tiny_model, tmp_path):
    q = _query(n_frames=4, extra_steps=7)
    for bits in (None, 256, 0):
        out = improvise(tiny_model, q, bits=bits, seed=2)
        assert out.n_steps == q.n_steps == 4 * 16 + 7
        assert out.roll.shape == (q.n_steps, q.spec.n_columns) and out.roll.dtype == np.uint8
        assert out.tempo_map == q.tempo_map and out.tempo_bpm == 90.0
        assert out.time_signatures == q.time_signatures
    assert out.name == "q @ 0 bits"
    assert improvise(tiny_model, q, bits=256).name == "q @ 256 bits"
    back = pianoroll.read_midi(pianoroll.write_midi(out.roll, tmp_path / "o.mid", tempo_bpm=out.tempo_map))
    assert [st for st, _ in back.tempo_map] == [0, 32]
    assert [bpm for _, bpm in back.tempo_map] == pytest.approx([90.0, 100.0], rel=1e-5)


def test_pickup_is_aligned_and_cut_back(tiny_model):
    q = _query(n_frames=4, extra_steps=4)
    q.bar_offset_steps = 4  # a one-beat pickup: frames start 12 steps before the query
    out = improvise(tiny_model, q)
    assert out.pad_steps == 12 and out.n_steps == q.n_steps
    frames = pianoroll.to_frames(q.roll, q.spec, offset_steps=4)
    probs = tiny_model.decode(tiny_model.encode(frames)[0])
    full = pianoroll.from_frames(pianoroll.binarize(probs, tiny_model.threshold, q.spec), q.spec)
    n = q.spec.n_pitches
    np.testing.assert_array_equal(out.roll[:, :n], full[12: 12 + q.n_steps, :n])
    assert pianoroll.is_valid_roll(out.roll, q.spec)


class IdentityModel:
    """A stand-in 'autoencoder' whose latent state is the frame itself: full rate must give the query."""

    spec = RollSpec()
    threshold = 0.5
    latent_dim = RollSpec().frame_size
    corpus_stats = {"mean": np.zeros(latent_dim), "var": np.ones(latent_dim)}

    def encode(self, frames):
        x = np.asarray(frames, np.float32)
        return x, np.zeros_like(x)

    def decode(self, z):
        return np.clip(np.asarray(z, np.float32), 0.0, 1.0)


@pytest.mark.parametrize("pickup", [0, 3, 4, 15])
def test_alignment_with_an_identity_model(pickup):
    """Whatever the pickup and length, frames are cut and glued back without shifting a step."""
    q = _query(n_frames=3, extra_steps=5, seed=pickup)
    q.bar_offset_steps = pickup
    out = improvise(IdentityModel(), q)
    np.testing.assert_array_equal(out.roll, q.roll)
    assert out.pad_steps == (-pickup) % 16


def test_same_seed_same_midi_bytes(tiny_model, tmp_path):
    q = _query(n_frames=5)
    a = improvise(tiny_model, q, bits=64, seed=7)
    b = improvise(tiny_model, q, bits=64, seed=7)
    c = improvise(tiny_model, q, bits=64, seed=8)
    pa = pianoroll.write_midi(a.roll, tmp_path / "a.mid", tempo_bpm=a.tempo_map)
    pb = pianoroll.write_midi(b.roll, tmp_path / "b.mid", tempo_bpm=b.tempo_map)
    assert pa.read_bytes() == pb.read_bytes()
    assert not np.allclose(a.latents, c.latents), "another seed must give other channel noise"


def test_batch_encodes_once_decodes_once_and_matches_single_calls(tiny_model):
    q = _query(n_frames=4)
    counting = CountingModel(tiny_model)
    outs = improvise_batch(counting, q, rates=(None, 64, 0), seeds=(0, 1), mode="query")
    assert counting.calls == {"encode": 1, "decode": 1}
    assert list(outs) == [(None, 0), (None, 1), (64, 0), (64, 1), (0, 0), (0, 1)]
    for (bits, seed), piece in outs.items():
        single = improvise(tiny_model, q, bits=bits, seed=seed)
        np.testing.assert_allclose(piece.latents, single.latents, rtol=1e-6, atol=1e-6)
        assert piece.bits == bits and piece.seed == seed
    # full rate uses no channel, so its seeds agree; 64 bits is noisy, so they differ
    np.testing.assert_array_equal(outs[(None, 0)].latents, outs[(None, 1)].latents)
    assert not np.allclose(outs[(64, 0)].latents, outs[(64, 1)].latents)


def test_sample_latents_is_seeded(tiny_model):
    q = _query(n_frames=3)
    a = improvise(tiny_model, q, sample_latents=True, seed=1)
    b = improvise(tiny_model, q, sample_latents=True, seed=1)
    c = improvise(tiny_model, q, sample_latents=True, seed=2)
    mean = improvise(tiny_model, q)
    np.testing.assert_array_equal(a.latents, b.latents)
    assert not np.allclose(a.latents, c.latents)
    assert not np.allclose(a.latents, mean.latents)


def test_queries_the_model_cannot_take_as_is_are_reported(tiny_model):
    plain = improvise(tiny_model, _query(n_frames=3))
    assert plain.warnings == []
    odd = _query(n_frames=3, time_signatures=[(0, 3, 4)], dropped={"out_of_range": 5})
    out = improvise(tiny_model, odd)
    text = " ".join(out.warnings)
    assert len(out.warnings) == 2
    assert "3/4" in text and "5 out of range" in text
    assert out.n_steps == odd.n_steps  # reported, still improvised in full
    pickup = _query(n_frames=3, time_signatures=[(0, 1, 4), (4, 4, 4)], bar_offset_steps=4)
    assert improvise(tiny_model, pickup).warnings == []  # a pickup's signature is no other meter
    two_four = _query(n_frames=3, time_signatures=[(0, 1, 4), (4, 2, 4)], bar_offset_steps=4)
    assert "2/4" in " ".join(improvise(tiny_model, two_four).warnings)


def test_user_errors():
    for bad in ("abc", "-1", -3, 2.5, "1e3x", True):
        with pytest.raises(OptionError):
            parse_bits(bad)
    assert parse_bits("full") is None and parse_bits("FULL") is None and parse_bits(None) is None
    assert parse_bits("256") == 256 and parse_bits(0) == 0 and parse_bits(64.0) == 64


def test_model_related_errors(tiny_model):
    q = _query(n_frames=2)
    with pytest.raises(OptionError):
        improvise(tiny_model, q, mode="median")
    with pytest.raises(OptionError):
        improvise(tiny_model, q, threshold=1.5)
    silent = Piece(roll=np.zeros((32, 156), np.uint8), name="silent")
    with pytest.raises(NoNotesError, match="silent"):
        improvise(tiny_model, silent)
    other = RollSpec(min_pitch=36, max_pitch=95)
    with pytest.raises(ModelError, match="spec=model.spec"):
        encode_query(tiny_model, Piece(roll=np.ones((16, other.n_columns), np.uint8), spec=other))


def test_claims_sweep_rows_and_csv(tiny_model, tmp_path):
    q = _query(n_frames=8, seed=3)
    rows = claims_sweep(tiny_model, q, rates=(None, 128, 0), seeds=2, n_shuffles=5)
    assert [r["rate"] for r in rows] == ["query", "chance", "full rate", "128 bits", "0 bits"]
    query, chance = rows[0], rows[1]
    # the query agrees perfectly with itself
    assert query["chroma_cosine_mean"] == pytest.approx(1.0)
    assert query["tonnetz_distance_mean"] == pytest.approx(0.0, abs=1e-12)
    assert query["triad_agreement_mean"] == pytest.approx(1.0)
    # its bars shuffled do not (random chords in every bar)
    assert chance["triad_agreement_mean"] < 0.9
    assert chance["tonnetz_distance_mean"] > 0.0
    for r in rows[2:]:
        assert r["n_seeds"] == 2
        assert 0.0 <= r["tonic_share_mean"] <= 1.0 or np.isnan(r["tonic_share_mean"])
    zero = rows[-1]
    assert zero["tonnetz_distance_sd"] == pytest.approx(0.0)  # 0 bits: no seed dependence
    assert zero["distinct_triads_mean"] <= 1.0  # every bar the same bar
    path = write_claims_csv(rows, tmp_path / "claims.csv")
    lines = path.read_text().splitlines()
    assert lines[0].split(",") == list(CLAIM_COLUMNS) and len(lines) == 6
    with pytest.raises(OutputExistsError):
        write_claims_csv(rows, path)
    write_claims_csv(rows, path, force=True)


def test_batched_chance_levels_equal_harmony_chance_agreement():
    from qbdi_utils import harmony
    from qbdi_utils.harmony import chance_levels

    rng = np.random.default_rng(5)
    q = rng.integers(0, 4, (11, 12)).astype(float)
    q[3] = 0  # a silent bar
    outs = [rng.integers(0, 4, (11, 12)).astype(float) for _ in range(3)] + [q]
    got = chance_levels(q, outs, n_shuffles=7, seed=3)
    for o, g in zip(outs, got):
        want = harmony.chance_agreement(q, o, n_shuffles=7, seed=3)
        assert g == pytest.approx(want, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("mode", ["query", "corpus", "posterior", "prior"])
def test_every_statistics_mode_runs_and_zero_bits_sends_its_mean(tiny_model, mode):
    from qbdi_utils import channel

    q = _query(n_frames=3)
    out = improvise(tiny_model, q, bits=0, mode=mode, seed=1)
    assert out.mode == mode and out.n_steps == q.n_steps
    mean, logvar = tiny_model.encode(pianoroll.to_frames(q.roll, q.spec))
    mu, _ = channel.source_stats(mean, logvar, mode, tiny_model.corpus_stats)
    np.testing.assert_allclose(out.latents, np.broadcast_to(mu, mean.shape), rtol=1e-5, atol=1e-5)


def test_query_longer_than_every_training_piece_is_reported(tmp_path):
    from qbdi_utils import training
    from qbdi_utils.model import StyleVAE, synthetic_frames
    from qbdi_utils.query_checks import query_warnings

    frames = synthetic_frames(60, seed=3)
    groups = np.repeat(np.arange(10), 6)  # ten "pieces" of 6 bars each
    groups[:9] = 99  # one piece of 9 bars is the longest
    model, _ = training.train(frames, groups=groups, hidden_dim=8, latent_dim=4, epochs=1, seed=0,
                         progress=False)
    model.save(tmp_path / "m")
    loaded = StyleVAE.load(tmp_path / "m")
    assert loaded.config["max_piece_frames"] == 9
    assert not any("longest training piece" in w for w in query_warnings(loaded, _query(n_frames=9)))
    assert any("longest training piece (9)" in w for w in query_warnings(loaded, _query(n_frames=10)))


@pytest.mark.parametrize("pickup", [0, 1, 4, 8, 12, 15])
@pytest.mark.parametrize("extra", [0, 1, 5, 11, 12, 13])
def test_query_warnings_counts_frames_as_to_frames_does(pickup, extra):
    """A pickup is completed to a whole frame in front: the warning's frame count is len(to_frames)."""
    from types import SimpleNamespace

    from qbdi_utils.query_checks import query_warnings

    spec = RollSpec()
    n_steps = pickup + 8 * 16 + extra
    roll = np.zeros((n_steps, spec.n_columns), dtype=np.uint8)
    q = Piece(roll=roll, spec=spec, name="q", time_signatures=[(0, 4, 4)], bar_offset_steps=pickup)
    n_frames = len(pianoroll.to_frames(roll, spec, offset_steps=pickup))
    for longest, warned in ((n_frames - 1, True), (n_frames, False)):
        model = SimpleNamespace(spec=spec, config={"max_piece_frames": longest})
        msgs = [w for w in query_warnings(model, q) if "longest training piece" in w]
        assert bool(msgs) == warned
        if warned:
            assert f"has {n_frames} frames" in msgs[0]


def test_floor_decode_keeps_confident_bars_and_floors_thin_ones():
    """Per bar: the paper's threshold when the bar is confident, its k most probable onsets when not."""
    from qbdi_utils.improvise import corpus_onset_floor, floor_decode
    from qbdi_utils.pianoroll import binarize

    spec = RollSpec()
    S, P = spec.steps_per_frame, spec.n_pitches
    p = np.full((2, S, 2 * P), 0.01)
    # bar 0: four confident quarter notes on pitch column 36 (all above 0.7): the floor of 2 changes nothing
    for q in range(4):
        p[0, 4 * q: 4 * q + 4, 36] = 0.9
        p[0, 4 * q, P + 36] = 0.9
    # bar 1: everything below 0.7; three candidate notes of decreasing probability
    for col, prob, start in ((40, 0.6, 0), (43, 0.5, 8), (47, 0.4, 12)):
        p[1, start: start + 4, col] = prob
        p[1, start, P + col] = prob
    probs = p.reshape(2, -1)
    out = floor_decode(probs, 0.7, 2, spec).reshape(2, S, 2 * P)
    paper = binarize(probs, 0.7, spec).reshape(2, S, 2 * P)
    assert np.array_equal(out[0], paper[0]) and out[0, :, P:].sum() == 4
    assert paper[1].sum() == 0  # the paper's decoding leaves the thin bar silent
    # the two most probable onsets (pitch columns 40 and 43) with their four play steps each; 47 stays off
    assert out[1, :, P:].sum() == 2 and out[1, 0, P + 40] == 1 and out[1, 8, P + 43] == 1
    assert out[1, :, :P].sum() == 8 and out[1, :, 47].sum() == 0
    with pytest.raises(OptionError):
        floor_decode(probs, 0.7, 0, spec)
    # corpus_onset_floor: bars with 2 and 6 onsets -> mean 4 -> 0.75 * 4 = 3
    fr = np.zeros((2, S, 2 * P), np.uint8)
    fr[0, [0, 8], P + 30] = 1
    fr[1, [0, 2, 4, 6, 8, 10], P + 31] = 1
    fr[:, :, :P] = fr[:, :, P:]
    assert corpus_onset_floor(fr.reshape(2, -1), spec) == 3 and corpus_onset_floor(fr.reshape(2, -1), spec, 0.1) == 1


def test_typical_bars_picks_the_most_similar_non_empty_library_bar():
    """Against a brute-force loop over the library: largest cosine of probabilities and cells."""
    from qbdi_utils.improvise import typical_bars

    rng = np.random.default_rng(7)
    lib = (rng.random((12, 40)) < 0.2).astype(np.uint8)
    lib[3] = 0  # an empty bar is never chosen, even for a silent-looking blur
    probs = rng.random((5, 40)) * 0.3
    probs[0] = 0.01  # a flat blur
    got = typical_bars(probs, lib)
    for p, g in zip(probs, got):
        best, best_cos = None, -1.0
        for bar in lib:
            if bar.sum() == 0:
                continue
            c = float(p @ bar) / (np.linalg.norm(p) * np.linalg.norm(bar))
            if c > best_cos + 1e-12:
                best, best_cos = bar, c
        np.testing.assert_array_equal(g, best)
    assert got.dtype == np.uint8 and got.sum(axis=1).min() > 0
    with pytest.raises(OptionError, match="library"):
        typical_bars(probs, np.zeros((3, 40), np.uint8))


def test_decode_options_and_the_typical_decoding_at_zero_bits(tiny_model):
    """'paper' is the paper; 'floor' floors every budget; 'typical' is 'floor' except at 0 bits,
    where every bar is a training bar (the most similar one to the decoded channel mean)."""
    from qbdi_utils.improvise import DECODE_MODES, corpus_onset_floor, decode_options, typical_bars, typical_library
    from qbdi_utils.model import synthetic_frames

    assert DECODE_MODES == ("paper", "floor", "typical", "sustain")
    train = synthetic_frames(60, seed=3)
    assert decode_options("paper") == {}
    k = corpus_onset_floor(train, tiny_model.spec)
    assert decode_options("floor", train, tiny_model.spec) == {"min_onsets": k}
    typ = decode_options("typical", train, tiny_model.spec)
    assert typ["min_onsets"] == k and np.array_equal(typ["zero_bit_library"], typical_library(train, tiny_model.spec))
    with pytest.raises(OptionError, match="decoding must be one of"):
        decode_options("blur")
    with pytest.raises(OptionError, match="training bars"):
        decode_options("floor", None)
    q = _query(5)
    out = improvise_batch(tiny_model, q, [None, 16, 0], [0], **typ)
    floor = improvise_batch(tiny_model, q, [None, 16, 0], [0], min_onsets=k)
    for bits in (None, 16):
        np.testing.assert_array_equal(out[(bits, 0)].roll, floor[(bits, 0)].roll)
    zero = out[(0, 0)]
    enc = encode_query(tiny_model, q)
    expect = typical_bars(np.asarray(tiny_model.decode(zero.latents)), typ["zero_bit_library"])
    got = pianoroll.to_frames(zero.roll, zero.spec, q.bar_offset_steps)
    # every bar of the 0-bit output is that training bar (the query's last bar may be cut short)
    np.testing.assert_array_equal(got[:-1], expect[:len(got) - 1])
    assert any(np.array_equal(expect[0], t) for t in train)
    assert len(enc.frames) == len(expect)


def test_typical_library_keeps_the_interquartile_onset_counts():
    from qbdi_utils.improvise import typical_library

    spec = RollSpec()
    S, P = spec.steps_per_frame, spec.n_pitches
    counts = [0, 1, 2, 3, 4, 5, 6, 7, 8]  # quartiles 2 and 6
    fr = np.zeros((len(counts), S, 2 * P), np.uint8)
    for i, c in enumerate(counts):
        fr[i, np.arange(c), P + 40] = 1
        fr[i, np.arange(c), 40] = 1
    got = typical_library(fr.reshape(len(counts), -1), spec)
    onsets = got.reshape(len(got), S, 2 * P)[:, :, P:].sum(axis=(1, 2))
    assert onsets.tolist() == [2, 3, 4, 5, 6]
