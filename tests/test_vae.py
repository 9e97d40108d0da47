"""Tests of qbdi_utils.model (the style VAE), qbdi_utils.training and `qbdi train`.

Small networks on synthetic chord frames; numerics are checked against an independent numpy
forward pass, persistence against exact equality, refusals against their ModelError messages.
"""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest

from qbdi_utils import pianoroll, training
from qbdi_utils.model import (
    DEFAULT_EPOCHS, MODEL_FILE, PRESETS, StyleVAE, VAEConfig, WEIGHTS_FILE, frames_fingerprint,
    loss_terms, note_scores, synthetic_frames,
)
from qbdi_utils.training.fit import fit_function, make_trainer, seed_everything
from qbdi_utils.errors import ModelError, OptionError, OutputExistsError, QbdiError
from qbdi_utils.pianoroll import RollSpec


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames(300, seed=1)


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
    d, r = loss_terms(tiny_model.networks.encoder, tiny_model.networks.decoder, x, eps)
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
    return training.train(frames, hidden_dim=48, latent_dim=8, epochs=8, beta=0.5, seed=2,
                           progress=False, fit_options={"loop": request.param})


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
    parts = [set(h[k]) for k in ("train_idx", "validation_idx", "test_idx")]
    assert all(parts) and sum(map(len, parts)) == len(set.union(*parts)) == 300


def _written_f1(truth, probs, t, pieces):
    """Brute force: binarize each piece on its own with pianoroll.binarize, then note F1."""
    out = np.zeros_like(truth)
    for p in np.unique(pieces):
        rows = np.flatnonzero(pieces == p)
        out[rows] = pianoroll.binarize(probs[rows], t)
    return note_scores(truth, out)["f1"]


def test_threshold_maximises_f1(trained_half_beta, frames):
    # no groups: each validation frame is written on its own
    model, h = trained_half_beta
    held = frames[h["validation_idx"]]
    probs = model.reconstruct(held)
    f1s = [_written_f1(held, probs, t, np.arange(len(held))) for t in h["threshold_grid"]]
    np.testing.assert_allclose(h["threshold_f1"], f1s, atol=1e-12)
    assert model.threshold == h["threshold_grid"][int(np.argmax(f1s))]


def test_threshold_is_chosen_on_written_outputs_by_piece():
    """F3: brute force over the grid on binarized (made-valid) outputs, pieces written whole."""
    rng = np.random.default_rng(0)
    truth = synthetic_frames(24, seed=9)
    pieces = np.repeat([3, 8, 5], 8)  # three pieces of 8 consecutive bars
    P = RollSpec().n_pitches
    t3 = truth.reshape(24, 16, 2 * P).astype(float)
    # noisy play plane; articulations of true onsets at exactly 0.5, which make_valid can restore
    probs = np.where(t3 > 0, rng.uniform(0.3, 1.0, t3.shape), rng.uniform(0, 1, t3.shape) ** 2)
    probs[..., P:] = np.where(t3[..., P:] > 0, 0.5, 0.0)
    probs = probs.reshape(24, -1).astype(np.float32)
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    brute = np.array([_written_f1(truth, probs, t, pieces) for t in grid])
    th, f1 = training.choose_threshold(truth, probs, grid, groups=pieces)
    np.testing.assert_allclose(f1, brute, atol=1e-12)
    assert th == grid[int(np.argmax(brute))]
    # and this case tells the written outputs from raw probabilities: thresholding the raw
    # probabilities would pick another threshold
    raw = [note_scores(truth, probs >= t)["f1"] for t in grid]
    assert grid[int(np.argmax(raw))] != th


def test_note_scores_known_counts():
    t = np.array([[1, 1, 0, 0, 1]])
    p = np.array([[1, 0, 1, 0, 1]])
    s = note_scores(t, p)
    assert (s["precision"], s["recall"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert s["f1"] == pytest.approx(2 / 3)
    assert note_scores(t, 0 * p)["f1"] == 0.0


def test_split_keeps_groups_apart():
    groups = np.repeat(np.arange(20), 7)
    tr, va, te = training.split_pieces(len(groups), 0.2, 0.1, seed=0, groups=groups)
    g = [set(groups[i]) for i in (tr, va, te)]
    assert g[0].isdisjoint(g[1]) and g[0].isdisjoint(g[2]) and g[1].isdisjoint(g[2])
    assert (len(g[1]), len(g[2]), len(g[0])) == (4, 2, 14)
    assert np.array_equal(np.sort(np.concatenate([tr, va, te])), np.arange(len(groups)))
    # the two-way split of format-1 models is the three-way one without a test set
    tr2, ho2 = training.split_held_out(len(groups), 0.2, seed=0, groups=groups)
    assert np.array_equal(ho2, va) and np.array_equal(tr2, np.sort(np.concatenate([tr, te])))
    # too few pieces: frames are split instead; too few frames: refused
    tr, va, te = training.split_pieces(5, 0.2, 0.2, seed=1, groups=[0, 0, 0, 1, 1])
    assert len(tr) == 3 and len(va) == len(te) == 1
    with pytest.raises(OptionError):
        training.split_pieces(2, 0.2, 0.2, seed=1)


def test_same_seed_same_weights(frames):
    kw = dict(hidden_dim=32, latent_dim=4, epochs=1, progress=False)
    a, _ = training.train(frames[:200], seed=7, **kw)
    b, _ = training.train(frames[:200], seed=7, **kw)
    c, _ = training.train(frames[:200], seed=8, **kw)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
    assert not all(np.array_equal(wa, wc) for wa, wc in zip(a.get_weights(), c.get_weights()))


def test_save_load_identical(tiny_model, frames, tmp_path):
    tiny_model.save(tmp_path / "m")
    m2 = StyleVAE.load(tmp_path / "m")
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
    meta = json.loads((d / MODEL_FILE).read_text())
    fn(meta)
    (d / MODEL_FILE).write_text(json.dumps(meta))


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
        (d / MODEL_FILE).write_text("{not json")
    elif damage == "wrong_format":
        _edit_json(d, lambda m: m.update(format="something-else"))
    elif damage == "no_weights":
        (d / WEIGHTS_FILE).unlink()
    elif damage == "truncated_weights":
        data = (d / WEIGHTS_FILE).read_bytes()
        (d / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    elif damage == "shape_mismatch":
        _edit_json(d, lambda m: m["config"].update(hidden_dim=m["config"]["hidden_dim"] + 1))
    elif damage == "other_layout":
        _edit_json(d, lambda m: m["spec"].update(max_pitch=100))
    with pytest.raises(ModelError) as err:
        StyleVAE.load(d)
    assert words in str(err.value) and str(d) in str(err.value)


def test_other_layout_loads_when_asked_for(tiny_model, tmp_path):
    d = _copy_model(tiny_model, tmp_path)
    # a model is refused for a layout other than its own, even if the caller asks for that layout
    with pytest.raises(ModelError, match="another roll layout"):
        StyleVAE.load(d, spec=RollSpec(max_pitch=100))


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
        roll = pianoroll.from_frames(synthetic_frames(6, seed=10 + i), spec)
        pianoroll.write_midi(roll, midi_dir / f"p{i}.mid", spec=spec)
    out = tmp_path / "model"
    argv = ["train", "--corpus", str(midi_dir), "--out", str(out), "--epochs", "2",
            "--hidden-dim", "32", "--latent-dim", "4", "--seed", "3"]
    assert _run_cli(argv) == 0
    printed = capsys.readouterr().out
    assert "held-out test: R =" in printed and "validation: R =" in printed and "note F1" in printed
    m = StyleVAE.load(out)
    assert m.latent_dim == 4 and m.config["epochs"] == 2 and m.info["n_frames"] == 24
    with pytest.raises(QbdiError):
        _run_cli(argv)
    assert _run_cli(argv + ["--force"]) == 0


def test_default_model_caches(monkeypatch, tmp_path):
    """default_model trains once, then loads while fingerprint and config match, else retrains."""
    from qbdi_utils import corpus as corpus_mod

    class FakeCorpus:
        frames = synthetic_frames(120, seed=3)
        piece_index = np.repeat(np.arange(12), 10)

    monkeypatch.setenv("QBDI_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(corpus_mod, "load_corpus", lambda *a, **k: FakeCorpus)
    small = PRESETS["paper"].replace(hidden_dim=16, latent_dim=4, epochs=1)
    monkeypatch.setattr(training.cache, "DEFAULT_CONFIG", small)
    calls = []
    real_train = training.train
    monkeypatch.setattr(training.cache, "train", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    m1 = training.default_model(progress=False)  # as notebooks call it
    m2 = training.default_model(progress=False)
    assert len(calls) == 1 and (tmp_path / "default" / MODEL_FILE).is_file()
    assert m1.fingerprint == m2.fingerprint == frames_fingerprint(FakeCorpus.frames)
    assert m2.from_cache and m2.config.max_piece_frames == 10
    monkeypatch.setattr(training.cache, "DEFAULT_CONFIG", small.replace(epochs=2))
    m3 = training.default_model(progress=False)
    assert len(calls) == 2 and m3.config["epochs"] == 2
    FakeCorpus.frames = synthetic_frames(120, seed=4)
    training.default_model(progress=False)
    assert len(calls) == 3


def _midi_folder(folder, n: int, seed: int):
    """``n`` MIDI files of 6 synthetic chord bars each in ``folder`` (p0.mid, p1.mid, ...)."""
    folder.mkdir(exist_ok=True)
    spec = RollSpec()
    for i in range(n):
        roll = pianoroll.make_valid(pianoroll.from_frames(synthetic_frames(6, seed=seed + i), spec), spec)
        pianoroll.write_midi(roll, folder / f"p{i}.mid", spec=spec, force=True)


def test_cached_model_checks_its_corpus_by_stat_and_retrains_when_it_changed(monkeypatch, tmp_path):
    """A cached model is reused without loading its corpus while the manifest's stats are unchanged;
    a file rewritten with other notes, a file added or removed loads the corpus and retrains; a file
    touched but unchanged loads the corpus once (same frames: no retraining) and refreshes the manifest."""
    import functools
    import os

    from qbdi_utils import corpus as corpus_mod
    from qbdi_utils.training import cache

    folder = tmp_path / "midi"
    _midi_folder(folder, 4, seed=20)
    monkeypatch.setenv("QBDI_MODELS_DIR", str(tmp_path / "models"))
    loads, trains = [], []
    real_load, real_train = corpus_mod.load_corpus, training.train
    monkeypatch.setattr(corpus_mod, "load_corpus",  # (wraps: the manifest reads load_corpus's defaults)
                        functools.wraps(real_load)(lambda *a, **k: loads.append(1) or real_load(*a, **k)))
    monkeypatch.setattr(cache, "train", lambda *a, **k: trains.append(1) or real_train(*a, **k))
    small = PRESETS["paper"].replace(hidden_dim=8, latent_dim=4, epochs=1)

    def get():
        return training.cached_model(small, source=str(folder), name="m", progress=False)

    def counts():
        return len(loads), len(trains)

    m1 = get()
    assert counts() == (1, 1) and not m1.from_cache
    manifest = m1.info["corpus"]["manifest"]
    recorded = {e[0] for e in manifest["entries"]}
    assert recorded == {str(folder.resolve())} | {str((folder / f"p{i}.mid").resolve()) for i in range(4)}
    st = os.stat(folder / "p1.mid")
    assert [str((folder / "p1.mid").resolve()), st.st_size, st.st_mtime_ns] in manifest["entries"]
    m2 = get()
    assert counts() == (1, 1) and m2.from_cache  # the fast path: the corpus was not loaded

    os.utime(folder / "p1.mid", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same notes
    m3 = get()
    assert counts() == (2, 1) and m3.from_cache and m3.fingerprint == m1.fingerprint
    assert get().from_cache and counts() == (2, 1)  # the manifest was refreshed: fast again

    _midi_folder(folder, 2, seed=40)  # p0, p1 rewritten with other chords
    m4 = get()
    assert counts() == (3, 2) and not m4.from_cache and m4.fingerprint != m1.fingerprint
    assert get().from_cache and counts() == (3, 2)

    before = os.stat(folder).st_mtime_ns
    _midi_folder(folder / "sub", 1, seed=50)  # a new sub-folder with one more piece
    assert os.stat(folder).st_mtime_ns != before
    m5 = get()
    assert counts() == (4, 3) and m5.info["n_frames"] == m4.info["n_frames"] + 6
    (folder / "sub" / "p0.mid").unlink()  # and that piece removed again
    m6 = get()
    assert counts() == (5, 4) and m6.info["n_frames"] == m4.info["n_frames"]


def test_manifest_is_stale_when_what_the_load_depends_on_changed(monkeypatch, tmp_path):
    """The recorded manifest is current only with the same reader version, roll layout, load options
    and stats; a missing entry or a foreign value is stale, never an error."""
    import inspect

    from qbdi_utils import corpus as corpus_mod
    from qbdi_utils.training import cache

    folder = tmp_path / "midi"
    _midi_folder(folder, 1, seed=1)
    spec = RollSpec()
    m = cache.corpus_manifest(str(folder), spec, "any")
    assert cache.manifest_is_current(m, spec, "any")
    assert m["options"] == {"transpose": "tonic", "augment": [], "meter": "any", "limit": None}
    assert not cache.manifest_is_current(m, spec, "4/4")  # a model of the 4/4 pieces only is another model
    assert not cache.manifest_is_current(m, RollSpec(steps_per_quarter=2), "any")
    for bad in (None, {}, {**m, "entries": []}, {**m, "entries": [["x"]]}, {**m, "version": 0},
                {**m, "entries": m["entries"] + [[str(tmp_path / "gone.mid"), 1, 1]]}):
        assert not cache.manifest_is_current(bad, spec, "any")
    monkeypatch.setattr(corpus_mod, "CACHE_VERSION", corpus_mod.CACHE_VERSION + 1)
    assert not cache.manifest_is_current(m, spec, "any")
    monkeypatch.undo()
    real = corpus_mod.load_corpus
    sig = inspect.signature(real)
    other = sig.replace(parameters=[p.replace(default="relative") if p.name == "transpose" else p
                                    for p in sig.parameters.values()])

    def relative(*a, **k):
        return real(*a, **k)

    relative.__signature__ = other
    monkeypatch.setattr(corpus_mod, "load_corpus", relative)
    assert not cache.manifest_is_current(m, spec, "any")
    chorales = cache.corpus_manifest("chorales", spec, "any")
    from qbdi_utils import music21_files

    n_chorales = len(music21_files.chorale_paths())
    assert sum(e[0].endswith((".mxl", ".xml")) for e in chorales["entries"]) == n_chorales > 400


# ---------------------------------------------------------------------------- F5: own streams

@pytest.mark.parametrize("loop", ["auto", "keras"])
def test_validation_does_not_move_the_training_noise(frames, loop):
    """Weights are the same without validation and with validation sets of two sizes."""
    cfg = PRESETS["paper"].replace(hidden_dim=24, latent_dim=4, epochs=3, seed=5)
    x_tr = frames[:200]
    weights, val_curves = [], []
    for x_val in (None, frames[200:210], frames[200:300]):
        seed_everything(cfg.seed)
        trainer = make_trainer(cfg, cfg.seed, {"loop": loop})
        hist = fit_function(trainer, x_tr, cfg, x_val, fit_options={"loop": loop})(cfg.epochs)
        weights.append(trainer.encoder.get_weights() + trainer.decoder.get_weights())
        if x_val is not None:
            assert len(hist["val_loss"]) == 3
            val_curves.append(hist["val_d_nats"])
    for w in weights[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(weights[0], w))
    # and validation is evaluated (different sets give different numbers)
    assert val_curves[0] != val_curves[1]


def test_loss_convention_beta_weighs_rate(frames):
    """D + beta R: the history of a beta = 0 run is pure distortion, of beta = 2 twice the rate."""
    for beta in (0.0, 2.0):
        _, h = training.train(frames[:120], hidden_dim=16, latent_dim=4, epochs=2, beta=beta,
                               seed=1, progress=False)
        np.testing.assert_allclose(h["val_loss"], np.array(h["val_d_nats"]) + beta * np.array(h["val_r_nats"]),
                                   rtol=1e-6)


# ---------------------------------------------------------------------------- F3: three-way split

def test_info_reports_test_pieces(frames):
    groups = np.repeat(np.arange(30), 10)
    model, h = training.train(frames, groups=groups, hidden_dim=24, latent_dim=4, epochs=2, seed=3,
                               progress=False)
    i = model.info
    te, va = h["test_idx"], h["validation_idx"]
    assert i["n_test"] == len(te) == 30 and i["n_validation"] == len(va) == 30 and i["n_train"] == 240
    assert set(groups[te]).isdisjoint(groups[va])
    assert i["test_groups"] == sorted(set(groups[te].tolist()))
    # the test F1 is that of the written outputs of the test pieces at the validation threshold
    probs = model.reconstruct(frames[te])
    assert i["test_f1"] == pytest.approx(_written_f1(frames[te], probs, model.threshold, groups[te]), abs=1e-12)
    assert i["held_out_f1"] == i["test_f1"] and i["held_out_d_nats"] == i["test_d_nats"]
    # R on the test set is the KL of the encoder's posteriors (noise-free), D a sampled Bernoulli NLL
    mean, logvar = model.encode(frames[te])
    r = 0.5 * np.sum(np.exp(logvar) + mean.astype(np.float64) ** 2 - 1 - logvar, axis=1).mean()
    assert i["test_r_nats"] == pytest.approx(r, rel=1e-4)
    assert i["test_loss_nats"] == pytest.approx(i["test_d_nats"] + i["test_r_nats"])
    assert i["validation_f1"] == pytest.approx(max(h["threshold_f1"]), abs=1e-12)


# ---------------------------------------------------------------------------- VAEConfig

def test_config_presets_and_mapping():
    p = PRESETS["paper"]
    assert (p.input_dim, p.hidden_dim, p.latent_dim, p.beta, p.batch_size) == (2496, 500, 500, 1.0, 100)
    assert p.epochs == DEFAULT_EPOCHS and p["latent_dim"] == 500 and dict(p)["seed"] == 0
    assert VAEConfig.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(Exception):
        p.beta = 2.0  # frozen


@pytest.mark.parametrize("field, value", [
    ("hidden_dim", 0), ("latent_dim", 2.5), ("beta", -0.1), ("beta", float("nan")),
    ("beta", float("inf")), ("epochs", 0), ("learning_rate", 0.0), ("validation_fraction", 1.0),
    ("test_fraction", -0.1), ("seed", -1), ("batch_size", True), ("max_piece_frames", 0),
])
def test_config_validates_fields(field, value):
    with pytest.raises(OptionError, match=field):
        PRESETS["paper"].replace(**{field: value})


@pytest.mark.parametrize("edit, field", [
    (lambda d: d.update(dropout=0.1), "dropout"),
    (lambda d: d.pop("latent_dim"), "latent_dim"),
    (lambda d: d.update(hidden_dim="500"), "hidden_dim"),
    (lambda d: d.update(beta=None), "beta"),
    (lambda d: d.update(epochs=-3), "epochs"),
])
def test_config_from_dict_rejects(edit, field):
    d = PRESETS["paper"].to_dict()
    edit(d)
    with pytest.raises(ModelError, match=field):
        VAEConfig.from_dict(d)


def test_format_1_model_still_loads(tiny_model, tmp_path, frames):
    """A directory written before VAEConfig (format 1, one held-out set) loads unchanged."""
    d = _copy_model(tiny_model, tmp_path)

    def to_v1(m):
        c = m["config"]
        c["held_out_fraction"] = c.pop("validation_fraction")
        del c["test_fraction"], c["max_piece_frames"]
        m["format_version"] = 1

    _edit_json(d, to_v1)
    m = StyleVAE.load(d)
    assert m.config.validation_fraction == tiny_model.config.validation_fraction
    assert m.config.test_fraction == 0.0 and m.config.max_piece_frames is None
    assert np.array_equal(m.encode(frames[:5])[0], tiny_model.encode(frames[:5])[0])


# ---------------------------------------------------------------------------------------------
# issue 11: whole-folder saves, schema checks on load, non-finite training

def test_save_refuses_existing_model_without_force_and_replaces_it_whole(tiny_model, tmp_path):
    from qbdi_utils import files

    d = tmp_path / "m"
    d.mkdir()
    (d / "old.txt").write_text("old")
    with pytest.raises(OutputExistsError):
        tiny_model.save(d)
    assert sorted(p.name for p in d.iterdir()) == ["old.txt"]
    tiny_model.save(d, force=True, extra=lambda stage: (stage / "extra.txt").write_text("x"))
    # the old folder is gone as a whole (old.txt does not survive), the extra file came with the model
    assert sorted(p.name for p in d.iterdir()) == ["extra.txt", MODEL_FILE, WEIGHTS_FILE]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert not any(files.is_leftover(p) for p in tmp_path.iterdir())


def test_failed_save_leaves_old_model(tiny_model, tmp_path, monkeypatch):
    """An error while the new folder is staged (here: the extra writer fails) leaves the old one."""
    d = tmp_path / "m"
    tiny_model.save(d)
    before = {p.name: p.read_bytes() for p in d.iterdir()}

    def boom(stage):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        tiny_model.save(d, force=True, extra=boom)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_save_refuses_non_finite_weights(tiny_model, tmp_path):
    w_bad = tiny_model.get_weights()
    w_bad[0][0, 0] = np.inf
    bad = StyleVAE(spec=tiny_model.spec, config=tiny_model.config, threshold=tiny_model.threshold,
                   corpus_stats=tiny_model.corpus_stats, weights=w_bad)
    with pytest.raises(ModelError, match="w00 holds NaN or infinite"):
        bad.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert np.isfinite(tiny_model.get_weights()[0]).all()  # get_weights hands out copies


def test_weights_are_copied_when_the_model_is_made(tiny_model):
    """Inference runs on the model's own numpy copy of the weights: the Keras view (built on demand for a
    loaded model) and the arrays passed in can change without changing the model."""
    x = synthetic_frames(5, seed=2)
    before = tiny_model.decode(tiny_model.encode(x)[0])
    w = tiny_model.get_weights()
    other = StyleVAE(spec=tiny_model.spec, config=tiny_model.config, weights=w)
    w[0][:] = 0.0
    enc = tiny_model.networks.encoder
    saved = enc.get_weights()
    enc.set_weights([np.zeros_like(a) for a in saved])
    try:
        assert np.array_equal(tiny_model.decode(tiny_model.encode(x)[0]), before)
    finally:
        enc.set_weights(saved)
    assert np.array_equal(other.decode(other.encode(x)[0]), before)


def test_load_unreadable_model_json_is_file_system_error(tiny_model, tmp_path, monkeypatch):
    import errno
    import pathlib

    from qbdi_utils.errors import FileSystemError

    d = _copy_model(tiny_model, tmp_path)
    real = pathlib.Path.read_bytes

    def deny(self):
        if self.name == MODEL_FILE:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", deny)
    with pytest.raises(FileSystemError) as err:
        StyleVAE.load(d)
    assert "permission denied" in str(err.value) and str(d / MODEL_FILE) in str(err.value)


@pytest.mark.parametrize("edit, words", [
    (lambda m: m["config"].update(hidden_dim=True), "'hidden_dim' must be a whole number"),
    (lambda m: m["config"].update(beta="1"), "'beta' must be a number"),
    (lambda m: m.update(threshold=0.0), "'threshold' must be a number strictly between 0 and 1"),
    (lambda m: m.update(threshold="0.5"), "'threshold' must be a number"),
    (lambda m: m.update(fingerprint=5), "'fingerprint' must be a string"),
    (lambda m: m.update(corpus_stats=[1]), "'corpus_stats' must be an object"),
    (lambda m: m["corpus_stats"].update(var=[-1.0] * len(m["corpus_stats"]["var"])), "negative variances"),
    (lambda m: m.update(info=[]), "'info' must be an object"),
    (lambda m: m.pop("threshold"), "lacks field 'threshold'"),
    (lambda m: m.update(format_version="2"), "'format_version' must be a whole number"),
    # a huge latent_dim is refused (the statistics' length is checked) before any network is built
    (lambda m: m["config"].update(latent_dim=10**9), "must be a list of 1000000000 numbers"),
])
def test_load_checks_model_json_schema(tiny_model, tmp_path, edit, words):
    d = _copy_model(tiny_model, tmp_path)
    _edit_json(d, edit)
    with pytest.raises(ModelError) as err:
        StyleVAE.load(d)
    assert words in str(err.value) and str(d) in str(err.value), str(err.value)


@pytest.mark.parametrize("loop", ["auto", "keras"])
def test_training_stops_when_the_loss_is_not_finite(frames, loop):
    from qbdi_utils.errors import TrainingDivergedError

    with pytest.raises(TrainingDivergedError, match="epoch 1: .* not a finite number"):
        training.train(frames[:60], hidden_dim=8, latent_dim=2, epochs=3, beta=1e300, progress=False,
                        fit_options={"loop": loop})
    assert issubclass(TrainingDivergedError, OptionError)


def test_training_progress_bar_is_few_lines_in_a_log(frames, capfd):
    """stderr is not a terminal here: the epoch bar writes its start and end state, not one per epoch."""
    training.train(frames[:60], hidden_dim=8, latent_dim=2, epochs=12, progress=True)
    err = capfd.readouterr().err
    states = err.count("training VAE")
    assert 1 <= states <= 3, err
