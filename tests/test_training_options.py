"""The training options for small corpora (issue 23): early stopping, KL warm-up, dropout,
transposition augmentation; each checked against an independent computation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qbdi_utils.errors import OptionError
from qbdi_utils.model import PRESETS, VAEConfig, synthetic_frames
from qbdi_utils.model.config import TRAINING_OPTIONS
from qbdi_utils.pianoroll import RollSpec, from_frames, to_frames, transpose_roll

_PAPER_KEYS = {"input_dim", "hidden_dim", "latent_dim", "beta", "epochs", "batch_size", "learning_rate",
               "validation_fraction", "test_fraction", "seed", "max_piece_frames", "gamma"}

_TINY = dict(hidden_dim=32, latent_dim=8, seed=0, progress=False, learning_rate=1e-2)


@pytest.fixture(scope="module")
def corpus():
    """300 synthetic chord frames in 30 'pieces' of 10 bars (so the split is by piece)."""
    return synthetic_frames(300, seed=0), np.repeat(np.arange(30), 10)


@pytest.fixture(scope="module")
def plain(corpus):
    """(model, history): 2 epochs of the tiny network without any training option."""
    from qbdi_utils import training

    frames, groups = corpus
    return training.train(frames, groups=groups, epochs=2, **_TINY)


# ------------------------------------------------------------------------------------ config

def test_options_off_leave_the_config_dict_and_cache_key_as_before():
    p = PRESETS["paper"]
    assert set(p.to_dict()) == _PAPER_KEYS  # the key the default model's cache entry was written with
    for name, off in TRAINING_OPTIONS.items():
        assert getattr(p, name) == off
    # a model.json written before the options existed reads as the options off
    assert VAEConfig.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    on = p.replace(patience=5, kl_warmup_epochs=10, dropout_rate=0.2, transpose_range=3)
    d = on.to_dict()
    assert (d["patience"], d["kl_warmup_epochs"], d["dropout_rate"], d["transpose_range"]) == (5, 10, 0.2, 3)
    assert VAEConfig.from_dict(json.loads(json.dumps(d))) == on


@pytest.mark.parametrize("field, value", [
    ("patience", 0), ("patience", 1.5), ("kl_warmup_epochs", -1), ("dropout_rate", 1.0),
    ("dropout_rate", -0.1), ("transpose_range", 12), ("transpose_range", -1),
])
def test_options_are_validated(field, value):
    with pytest.raises(OptionError, match=field):
        PRESETS["paper"].replace(**{field: value})


# ------------------------------------------------------------------------------ early stopping

class _Weights:
    """A stand-in network: one weight array, set to the epoch it was trained to."""

    def __init__(self):
        self.w = [np.zeros(3)]

    def get_weights(self):
        return self.w

    def set_weights(self, w):
        self.w = [np.array(a) for a in w]


@pytest.mark.parametrize("losses, patience, first, stop_at, best", [
    ([5, 4, 3, 3.5, 3.2, 3.1, 2.9], 3, 0, 5, 2),     # three epochs above 3: stop after epoch 5
    ([5, 4, 3, 3.5, 3.2, 2.9, 2.8], 3, 0, None, 6),  # improves again in time: never stops
    ([5, 4, 4, 4, 4], 2, 0, 3, 1),                   # ties are not improvements: the earlier epoch
    ([1, 2, 3, 2.5, 2.6, 2.7], 2, 2, 5, 3),          # warm-up epochs 0, 1 are never chosen
])
def test_best_epoch_against_a_hand_count(losses, patience, first, stop_at, best):
    from qbdi_utils.training.epochs import BestEpoch

    net = _Weights()
    stopper = BestEpoch(patience, [net, None], first_epoch=first)
    stopped = None
    for e, v in enumerate(losses):
        net.w = [np.full(3, float(e))]  # the weights "after epoch e"
        if stopper.update(e, v):
            stopped = e
            break
    assert stopped == stop_at
    assert stopper.restore() == best
    assert np.array_equal(net.w[0], np.full(3, float(best)))  # the best epoch's weights, not the last


def _val_loss_now(model, x_val, cfg):
    """Validation loss of the model's current weights, computed afresh (same fixed noise)."""
    from qbdi_utils.training.fit import mean_terms
    from qbdi_utils.training.split import VALIDATION_STREAM, eval_noise

    eps = eval_noise(cfg.seed, VALIDATION_STREAM, len(x_val), cfg.latent_dim)
    d, r = mean_terms(model.networks.encoder, model.networks.decoder, x_val, eps)
    return d + cfg.beta * r


@pytest.mark.parametrize("loop", ["auto", "keras"])
def test_early_stopping_keeps_the_best_epoch_and_is_deterministic(corpus, loop):
    from qbdi_utils import training

    frames, groups = corpus
    kw = dict(groups=groups, epochs=30, patience=2, dropout_rate=0.3, fit_options={"loop": loop}, **_TINY)
    model, hist = training.train(frames, **kw)
    vl = np.asarray(hist["val_loss"])
    best = int(np.argmin(vl))  # first minimum, as the stopper's strict '<' keeps the earlier epoch
    assert model.info["best_epoch"] == hist["best_epoch"] == best + 1
    assert model.info["epochs_run"] == len(vl) == len(hist["epoch"])
    # this set-up overfits fast (dropout 0.3, 8 latents): it must have stopped before 30 epochs,
    # exactly `patience` epochs after the best
    assert len(vl) < 30 and len(vl) == best + 1 + 2
    # the returned weights are the best epoch's: their validation loss is that epoch's, not the last's
    x_val = (frames[hist["validation_idx"]] != 0).astype(np.float32)
    now = _val_loss_now(model, x_val, model.config)
    assert now == pytest.approx(vl[best], rel=1e-5)
    assert abs(now - vl[-1]) > 1e-3 * abs(vl[-1])
    if loop == "keras":
        return
    again, hist2 = training.train(frames, **kw)
    assert hist2["best_epoch"] == hist["best_epoch"]
    for a, b in zip(model.get_weights(), again.get_weights()):
        assert np.array_equal(a, b)


def test_early_stopping_needs_validation_frames(corpus):
    from qbdi_utils.training.fit import fit_function, make_trainer

    frames, _ = corpus
    cfg = PRESETS["paper"].replace(hidden_dim=8, latent_dim=4, epochs=2, patience=2)
    with pytest.raises(OptionError, match="validation frames"):
        fit_function(make_trainer(cfg, 0), frames[:50], cfg, None)


# ------------------------------------------------------------------------------- KL warm-up

def test_kl_weight_ramp():
    from qbdi_utils.training.epochs import kl_weight

    cfg = PRESETS["paper"].replace(beta=2.0, kl_warmup_epochs=4)
    assert [kl_weight(cfg, e) for e in range(6)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    assert kl_weight(PRESETS["paper"], 0) == 1.0


def test_warm_up_lowers_the_early_rate_weight(corpus, plain):
    """With the rate unweighted in epoch 1 the encoder spends more rate than with beta = 1;
    the logged loss is still D + beta R at the full beta, and the best epoch lies after the ramp."""
    from qbdi_utils import training

    frames, groups = corpus
    _, hp = plain
    _, warm = training.train(frames, groups=groups, epochs=6, kl_warmup_epochs=3, patience=10, **_TINY)
    assert warm["r_nats"][0] > hp["r_nats"][0]
    for h in (hp, warm):
        np.testing.assert_allclose(h["val_loss"], np.add(h["val_d_nats"], h["val_r_nats"]), rtol=1e-6)
    assert warm["best_epoch"] >= 4


# -------------------------------------------------------------------------------- dropout

def test_dropout_acts_in_training_only(corpus, plain, tmp_path):
    from qbdi_utils import training
    from qbdi_utils.model import StyleVAE, weight_shapes

    frames, groups = corpus
    _, hp = plain
    drop, hd = training.train(frames, groups=groups, epochs=2, dropout_rate=0.5, **_TINY)
    # same initial weights and batches: only the dropout masks differ, so the training losses do
    assert hd["loss"][0] != pytest.approx(hp["loss"][0], rel=1e-4)
    # no weights of its own; inference is deterministic and survives save/load
    assert [w.shape for w in drop.get_weights()] == weight_shapes(drop.config)
    x = frames[:20]
    assert np.array_equal(drop.encode(x)[0], drop.encode(x)[0])
    drop.save(tmp_path / "m")
    back = StyleVAE.load(tmp_path / "m")
    assert back.config.dropout_rate == 0.5
    np.testing.assert_array_equal(back.encode(x)[0], drop.encode(x)[0])


# --------------------------------------------------------------------- transposition augmentation

def test_transpose_batch_matches_transpose_roll():
    """The in-graph per-frame shift against pianoroll.transpose_roll, frame by frame."""
    import tensorflow as tf

    from qbdi_utils.training.tf_loop import transpose_batch

    spec = RollSpec()
    rng = np.random.default_rng(3)
    frames = (rng.random((9, spec.frame_size)) < 0.05).astype(np.float32)
    shifts = np.array([0, 1, -1, 5, -7, 11, -11, 77, -78], np.int32)
    out = transpose_batch(tf.constant(frames), tf.constant(shifts), spec.n_pitches).numpy()
    for f, s, o in zip(frames, shifts, out):
        expect, _ = transpose_roll(from_frames(f[None].astype(np.uint8), spec), int(s), spec)
        np.testing.assert_array_equal(o, to_frames(expect, spec)[0].astype(np.float32))


def test_transposition_training_keeps_held_out_sets_in_key(corpus, plain):
    from qbdi_utils import training

    frames, groups = corpus
    _, hp = plain
    aug, ha = training.train(frames, groups=groups, epochs=2, transpose_range=3, **_TINY)
    assert ha["loss"][0] != pytest.approx(hp["loss"][0], rel=1e-4)  # the batches did move
    # validation and corpus statistics are computed on the corpus's own (untransposed) frames; the
    # statistics over its training pieces, as for every model
    np.testing.assert_array_equal(ha["validation_idx"], hp["validation_idx"])
    np.testing.assert_array_equal(ha["train_idx"], hp["train_idx"])
    mean, _ = aug.encode(frames[ha["train_idx"]])
    np.testing.assert_allclose(aug.corpus_stats["mean"], mean.astype(np.float64).mean(axis=0), rtol=1e-5,
                               atol=1e-6)


def test_small_corpus_preset_is_the_paper_with_early_stopping():
    paper, small = PRESETS["paper"].to_dict(), PRESETS["small_corpus"].to_dict()
    assert {k: v for k, v in paper.items() if k != "epochs"} == {k: v for k, v in small.items()
                                                               if k not in ("patience", "epochs")}
    assert (small["patience"], small["epochs"]) == (10, 200)
