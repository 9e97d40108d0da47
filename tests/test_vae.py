"""Tests of qbdi_utils.vae (the style VAE) and `qbdi train`.

Small networks on synthetic chord frames; numerics are checked against an independent numpy
forward pass, persistence against exact equality, refusals against their ModelError messages.
"""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest

from qbdi_utils import vae
from qbdi_utils.errors import ModelError, OptionError, OutputExistsError, QbdiError
from qbdi_utils.pianoroll import RollSpec


@pytest.fixture(scope="module")
def frames():
    return vae.synthetic_frames(300, seed=1)


# ---------------------------------------------------------------------------- numpy reference

def _np_forward(weights, x, eps):
    """Independent numpy forward pass: per-frame D and R (float64)."""
    w = [np.asarray(a, np.float64) for a in weights]
    (We1, be1, Wm, bm, Wv, bv, Wd1, bd1, Wo, bo) = w
    h = np.maximum(x @ We1 + be1, 0.0)
    mean, logvar = h @ Wm + bm, h @ Wv + bv
    z = mean + np.exp(0.5 * logvar) * eps
    g = np.maximum(z @ Wd1 + bd1, 0.0)
    logits = g @ Wo + bo
    # Bernoulli NLL via the probabilities themselves (not the softplus identity used in the model)
    p = 1.0 / (1.0 + np.exp(-logits))
    d = -np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=1)
    r = np.sum(-0.5 * (1 + logvar - mean ** 2 - np.exp(logvar)), axis=1)
    return mean, logvar, logits, d, r


def test_shapes_and_ranges(tiny_model, frames):
    L = tiny_model.latent_dim
    mean, logvar = tiny_model.encode(frames[:7])
    assert mean.shape == logvar.shape == (7, L) and mean.dtype == logvar.dtype == np.float32
    probs = tiny_model.decode(mean)
    assert probs.shape == (7, 2496) and probs.dtype == np.float32
    assert np.all((probs >= 0) & (probs <= 1))
    assert tiny_model.reconstruct(frames[:3]).shape == (3, 2496)
    s1, s2, s3 = tiny_model.sample(25, seed=4), tiny_model.sample(25, seed=4), tiny_model.sample(25, seed=5)
    assert s1.shape == (25, 2496) and np.array_equal(s1, s2) and not np.array_equal(s1, s3)
    assert tiny_model.spec == RollSpec() and 0 < tiny_model.threshold < 1
    assert tiny_model.corpus_stats["mean"].shape == tiny_model.corpus_stats["var"].shape == (L,)
    assert len(tiny_model.fingerprint) == 16
    # a batch larger than the internal chunk gives the same as row-by-row
    big = np.tile(frames[:3], (1500, 1))
    m_big, _ = tiny_model.encode(big)
    assert m_big.shape == (4500, L)
    np.testing.assert_allclose(m_big[4497:], mean[:3], rtol=1e-5, atol=1e-5)
    with pytest.raises(OptionError):
        tiny_model.encode(np.zeros((2, 100)))


def test_loss_terms_match_numpy(tiny_model, frames):
    keras = pytest.importorskip("keras")
    x = frames[:20].astype(np.float32)
    eps = np.random.default_rng(0).standard_normal((20, tiny_model.latent_dim)).astype(np.float32)
    d, r = vae.loss_terms(tiny_model._encoder, tiny_model._decoder, x, eps)
    mean, logvar, logits, d_np, r_np = _np_forward(tiny_model.get_weights(), x.astype(np.float64), eps)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(d), d_np, rtol=2e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(r), r_np, rtol=2e-4, atol=1e-3)
    m, lv = tiny_model.encode(x)
    np.testing.assert_allclose(m, mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lv, logvar, rtol=1e-4, atol=1e-4)
    # rate_distortion(seed=None) decodes the posterior mean
    rd = tiny_model.rate_distortion(x, seed=None)
    _, _, _, d0, r0 = _np_forward(tiny_model.get_weights(), x.astype(np.float64), np.zeros_like(eps))
    assert rd["d_nats"] == pytest.approx(d0.mean(), rel=2e-4)
    assert rd["r_nats"] == pytest.approx(r0.mean(), rel=2e-4, abs=1e-3)
    assert rd["elbo_nats"] == pytest.approx(-(rd["d_nats"] + rd["r_nats"]))


@pytest.fixture(scope="module", params=["auto", "keras"])
def trained_half_beta(frames, request):
    """Both training loops: the TensorFlow fast path and plain Model.fit (other backends)."""
    return vae.train(frames, hidden_dim=48, latent_dim=8, epochs=8, beta=0.5, seed=2, progress=False,
                     fit_options={"loop": request.param})


def test_loss_falls_and_is_d_plus_beta_r(trained_half_beta):
    model, h = trained_half_beta
    assert len(h["loss"]) == len(h["val_loss"]) == 8
    assert h["loss"][-1] < 0.75 * h["loss"][0]
    assert h["val_loss"][-1] < 0.75 * h["val_loss"][0]
    # the loss the optimiser saw is D + beta R with beta = 0.5, not D + R or beta D + R
    for key in ("", "val_"):
        lhs = np.array(h[key + "loss"])
        rhs = np.array(h[key + "d_nats"]) + 0.5 * np.array(h[key + "r_nats"])
        np.testing.assert_allclose(lhs, rhs, rtol=1e-4)
        assert np.all(np.array(h[key + "r_nats"]) >= 0)
    assert model.config["beta"] == 0.5
    assert set(h["train_idx"]).isdisjoint(h["held_idx"])
    assert len(h["train_idx"]) + len(h["held_idx"]) == 300


def test_threshold_maximises_f1(trained_half_beta, frames):
    model, h = trained_half_beta
    held = frames[h["held_idx"]]
    probs = model.reconstruct(held)
    f1s = [vae.note_scores(held, probs >= t)["f1"] for t in h["threshold_grid"]]
    np.testing.assert_allclose(h["threshold_f1"], f1s, atol=1e-9)
    assert model.threshold == h["threshold_grid"][int(np.argmax(f1s))]


def test_note_scores_known_counts():
    t = np.array([[1, 1, 0, 0, 1]])
    p = np.array([[1, 0, 1, 0, 1]])
    s = vae.note_scores(t, p)
    assert (s["precision"], s["recall"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert s["f1"] == pytest.approx(2 / 3)
    assert vae.note_scores(t, 0 * p)["f1"] == 0.0


def test_split_keeps_groups_apart():
    groups = np.repeat(np.arange(20), 7)
    tr, ho = vae.split_held_out(len(groups), 0.2, seed=0, groups=groups)
    assert set(groups[tr]).isdisjoint(groups[ho]) and len(set(groups[ho])) == 4
    assert np.array_equal(np.sort(np.concatenate([tr, ho])), np.arange(len(groups)))


def test_same_seed_same_weights(frames):
    kw = dict(hidden_dim=32, latent_dim=4, epochs=1, progress=False)
    a, _ = vae.train(frames[:200], seed=7, **kw)
    b, _ = vae.train(frames[:200], seed=7, **kw)
    c, _ = vae.train(frames[:200], seed=8, **kw)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
    assert not all(np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))


def test_save_load_identical(tiny_model, frames, tmp_path):
    tiny_model.save(tmp_path / "m")
    m2 = vae.StyleVAE.load(tmp_path / "m")
    x = frames[:30]
    for a, b in zip(tiny_model.encode(x), m2.encode(x)):
        assert np.array_equal(a, b)
    z = np.random.default_rng(1).standard_normal((9, tiny_model.latent_dim))
    assert np.array_equal(tiny_model.decode(z), m2.decode(z))
    assert m2.threshold == tiny_model.threshold and m2.fingerprint == tiny_model.fingerprint
    assert m2.config == tiny_model.config and m2.spec == tiny_model.spec
    for k in ("mean", "var"):
        assert np.array_equal(m2.corpus_stats[k], tiny_model.corpus_stats[k])


def _copy_model(tiny_model, tmp_path):
    d = tmp_path / "model"
    shutil.copytree(tiny_model.info["model_dir"], d)
    return d


def _edit_json(d, fn):
    meta = json.loads((d / vae.MODEL_FILE).read_text())
    fn(meta)
    (d / vae.MODEL_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize("damage, words", [
    ("missing", "no such model directory"),
    ("empty", "not a model directory"),
    ("json_garbage", "corrupt"),
    ("wrong_format", "corrupt"),
    ("no_weights", "weights.npz is missing"),
    ("truncated_weights", "weights.npz is unreadable"),
    ("shape_mismatch", "weight shapes"),
    ("other_layout", "another roll layout"),
])
def test_bad_model_dirs(tiny_model, tmp_path, damage, words):
    d = _copy_model(tiny_model, tmp_path)
    if damage == "missing":
        d = tmp_path / "nowhere"
    elif damage == "empty":
        d = tmp_path / "empty"
        d.mkdir()
    elif damage == "json_garbage":
        (d / vae.MODEL_FILE).write_text("{not json")
    elif damage == "wrong_format":
        _edit_json(d, lambda m: m.update(format="something-else"))
    elif damage == "no_weights":
        (d / vae.WEIGHTS_FILE).unlink()
    elif damage == "truncated_weights":
        data = (d / vae.WEIGHTS_FILE).read_bytes()
        (d / vae.WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    elif damage == "shape_mismatch":
        _edit_json(d, lambda m: m["config"].update(hidden_dim=m["config"]["hidden_dim"] + 1))
    elif damage == "other_layout":
        _edit_json(d, lambda m: m["spec"].update(max_pitch=100))
    with pytest.raises(ModelError) as err:
        vae.StyleVAE.load(d)
    assert words in str(err.value) and str(d) in str(err.value)


def test_other_layout_loads_when_asked_for(tiny_model, tmp_path):
    d = _copy_model(tiny_model, tmp_path)
    # a model is refused for a layout other than its own, even if the caller asks for that layout
    with pytest.raises(ModelError, match="another roll layout"):
        vae.StyleVAE.load(d, spec=RollSpec(max_pitch=100))


def _run_cli(argv):
    """Run `qbdi train ...` through its own parser, as qbdi_utils.cli.main does."""
    from qbdi_utils.cli import train as cli_train

    parser = argparse.ArgumentParser(prog="qbdi")
    cli_train.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_train_refuses_existing_out(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--force"):
        _run_cli(["train", "--corpus", "chorales", "--out", str(out)])
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(OptionError):
        _run_cli(["train", "--corpus", "chorales", "--out", str(tmp_path / "new"), "--epochs", "0"])


def test_cli_train_on_midi_folder(tmp_path, capsys):
    from qbdi_utils import pianoroll

    midi_dir = tmp_path / "midi"
    midi_dir.mkdir()
    spec = RollSpec()
    for i in range(4):
        roll = pianoroll.from_frames(vae.synthetic_frames(6, seed=10 + i), spec)
        pianoroll.write_midi(roll, midi_dir / f"p{i}.mid", spec=spec)
    out = tmp_path / "model"
    argv = ["train", "--corpus", str(midi_dir), "--out", str(out), "--epochs", "2",
            "--hidden-dim", "32", "--latent-dim", "4", "--seed", "3"]
    assert _run_cli(argv) == 0
    printed = capsys.readouterr().out
    assert "held-out: R =" in printed and "note F1" in printed
    m = vae.StyleVAE.load(out)
    assert m.latent_dim == 4 and m.config["epochs"] == 2 and m.info["n_frames"] == 24
    with pytest.raises(QbdiError):
        _run_cli(argv)
    assert _run_cli(argv + ["--force"]) == 0


def test_default_model_caches(monkeypatch, tmp_path):
    """default_model trains once, then loads while fingerprint and config match, else retrains."""
    from qbdi_utils import corpus as corpus_mod

    class FakeCorpus:
        frames = vae.synthetic_frames(120, seed=3)
        piece_index = np.repeat(np.arange(12), 10)

    monkeypatch.setenv("QBDI_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(corpus_mod, "load_corpus", lambda *a, **k: FakeCorpus)
    small = {**vae.DEFAULT_CONFIG, "hidden_dim": 16, "latent_dim": 4, "epochs": 1}
    monkeypatch.setattr(vae, "DEFAULT_CONFIG", small)
    calls = []
    real_train = vae.train
    monkeypatch.setattr(vae, "train", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    m1 = vae.default_model(progress=False)
    m2 = vae.default_model(progress=False)
    assert len(calls) == 1 and (tmp_path / "default" / vae.MODEL_FILE).is_file()
    assert m1.fingerprint == m2.fingerprint == vae.frames_fingerprint(FakeCorpus.frames)
    monkeypatch.setattr(vae, "DEFAULT_CONFIG", {**small, "epochs": 2})
    m3 = vae.default_model(progress=False)
    assert len(calls) == 2 and m3.config["epochs"] == 2
    FakeCorpus.frames = vae.synthetic_frames(120, seed=4)
    vae.default_model(progress=False)
    assert len(calls) == 3
