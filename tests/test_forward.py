"""The numpy forward pass (qbdi_utils.model.forward) against Keras, and the commands that run without TensorFlow.

Keras is the independent reference: each network is built by Keras with weights drawn large enough
that ReLUs cut and sigmoids saturate, run by Keras (``training=False``) and by numpy, and compared
at float32 rounding (atol 1e-5 on probabilities, rtol 1e-5 + atol 1e-5 on logits and latent
parameters, whose magnitudes here are a few units). The subprocess tests put a ``tensorflow`` and a
``keras`` on the path that raise when imported, so a command that imported either would fail.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from qbdi_utils.model import StyleVAE, VAEConfig, synthetic_frames
from qbdi_utils.model.forward import ACTIVATIONS, Graph, Layer, graph_from_keras, run
from qbdi_utils.model.networks import keras_network, network_graphs, weight_shapes
from qbdi_utils.pianoroll import RollSpec

PROB_ATOL = 1e-5
RTOL, ATOL = 1e-5, 1e-5


@pytest.fixture(scope="module")
def keras():
    from qbdi_utils.model import import_keras

    return import_keras()


def _randomise(net, rng, scale=1.0):
    """Weights of a Keras network drawn N(0, scale^2 / fan_in) (biases N(0, 0.25)), so units are O(1)."""
    new = []
    for w in net.get_weights():
        fan_in = w.shape[0] if w.ndim == 2 else 4.0
        new.append((rng.standard_normal(w.shape) * scale / np.sqrt(fan_in)).astype(np.float32))
    net.set_weights(new)


def _keras_out(net, x):
    y = net(x, training=False)
    return [np.asarray(t) for t in (y if isinstance(y, (list, tuple)) else [y])]


@pytest.mark.parametrize("gamma", [0.0, 0.5], ids=["no_head", "predictor_head"])
def test_style_vae_equals_keras(keras, gamma):
    """encode, decode, decode_logits and predict_next of a freshly built model equal the Keras networks,
    whether the StyleVAE is made from the Keras networks (as training does) or from their weights (as load)."""
    spec = RollSpec()
    cfg = VAEConfig(input_dim=spec.frame_size, hidden_dim=32, latent_dim=8, gamma=gamma)
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    nets = [keras_network(g) for g in network_graphs(cfg).values() if g is not None]
    for net in nets:
        _randomise(net, rng, scale=3.0)
    enc, dec = nets[:2]
    pred = nets[2] if gamma else None
    from_keras = StyleVAE(enc, dec, spec=spec, config=cfg, predictor=pred)
    from_weights = StyleVAE(spec=spec, config=cfg, weights=[w for n in nets for w in n.get_weights()])
    x = synthetic_frames(300, seed=3).astype(np.float32)
    mean_k, logvar_k = _keras_out(enc, x)
    z = rng.standard_normal((300, cfg.latent_dim)).astype(np.float32) * 2
    (logits_k,) = _keras_out(dec, z)
    probs_k = np.asarray(keras.ops.sigmoid(logits_k))
    assert np.abs(logits_k).max() > 5  # saturating sigmoids and cut ReLUs are exercised
    assert (mean_k > 0).any() and (mean_k < 0).any()
    for model in (from_keras, from_weights):
        mean, logvar = model.encode(x)
        assert mean.dtype == np.float32 and mean.shape == (300, cfg.latent_dim)
        np.testing.assert_allclose(mean, mean_k, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(logvar, logvar_k, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(model.decode_logits(z), logits_k, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(model.decode(z), probs_k, rtol=0, atol=PROB_ATOL)
        np.testing.assert_allclose(model.reconstruct(x), np.asarray(keras.ops.sigmoid(_keras_out(dec, mean_k)[0])),
                                   rtol=0, atol=PROB_ATOL)
        assert model.has_predictor == bool(gamma)
        if gamma:
            (next_k,) = _keras_out(pred, z)
            np.testing.assert_allclose(model.predict_next(z), np.asarray(keras.ops.sigmoid(next_k)),
                                       rtol=0, atol=PROB_ATOL)
    # the Keras view a loaded model builds on demand holds the same weights
    for a, b in zip(from_weights.networks.encoder.get_weights(), enc.get_weights()):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("gamma", [0.0, 0.5], ids=["no_head", "predictor_head"])
def test_mean_terms_equal_the_keras_loss_terms(keras, gamma):
    """StyleVAE.mean_terms (numpy) equals training.fit.mean_terms (the Keras loss terms) to float32 rounding,
    over two evaluation chunks whose shares of next-bar pairs differ (P is averaged per chunk, as Keras does);
    and the held-out scores `qbdi evaluate` prints come from it."""
    from qbdi_utils.model.vae import EVAL_CHUNK
    from qbdi_utils.training import fit, held_out_scores, split

    spec = RollSpec()
    cfg = VAEConfig(input_dim=spec.frame_size, hidden_dim=32, latent_dim=8, gamma=gamma)
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(5)
    nets = [keras_network(g) for g in network_graphs(cfg).values() if g is not None]
    for net in nets:
        _randomise(net, rng, scale=2.0)
    model = StyleVAE(spec=spec, config=cfg, weights=[w for n in nets for w in n.get_weights()])
    n = EVAL_CHUNK + 300
    x = synthetic_frames(n, seed=8)
    eps = rng.standard_normal((n, cfg.latent_dim)).astype(np.float32)
    # pieces of 2 bars in the first chunk, of 50 in the second: pair shares 1/2 and 49/50
    groups = np.concatenate([np.repeat(np.arange(EVAL_CHUNK // 2), 2), 10**6 + np.arange(300) // 50])
    nxt = split.successor_index(groups, n)
    want = fit.mean_terms(nets[0], nets[1], x, eps, nets[2] if gamma else None, nxt)
    got = model.mean_terms(x, eps, nxt)
    assert len(got) == len(want) == (3 if gamma else 2)
    np.testing.assert_allclose(got, want, rtol=2e-6)
    assert min(want) > 1.0  # nats per frame of an untrained network: far from zero
    if gamma:  # the per-chunk share matters: the pairs' plain mean is another number
        mean, logvar = model.encode(x)
        (q,) = _keras_out(nets[2], mean + np.exp(0.5 * logvar) * eps)
        has = nxt >= 0
        y = x[np.maximum(nxt, 0)].astype(np.float32)
        ce = np.sum(np.logaddexp(0, q) - y * q, axis=1)
        assert abs(ce[has].mean() * has.mean() - got[2]) > 1e-3 * got[2]
    scores = held_out_scores(model, x, groups)
    eps_test = split.eval_noise(cfg.seed, split.TEST_STREAM, n, cfg.latent_dim)
    keras_terms = fit.mean_terms(nets[0], nets[1], x, eps_test, nets[2] if gamma else None, nxt)
    assert scores["test_d_nats"] == pytest.approx(keras_terms[0], rel=2e-6)
    assert scores["test_r_nats"] == pytest.approx(keras_terms[1], rel=2e-6)


def test_every_layer_type_and_activation_equals_keras(keras):
    """A functional model with every layer kind (Dense with and without bias, Dropout, Activation) and
    every activation, two branches and two outputs: read by graph_from_keras and run in numpy."""
    layers = keras.layers
    rng = np.random.default_rng(5)
    x_in = keras.Input(shape=(20,), name="x")
    h = x_in
    names = list(ACTIVATIONS)
    for i, act in enumerate(names):
        h = layers.Dense(16, activation=act, use_bias=i % 2 == 0, name=f"dense_{act}")(h)
        h = layers.Dropout(0.5, name=f"drop_{act}")(h)
    a = layers.Activation("tanh", name="act_tanh")(h)
    b = layers.Dense(3, activation="sigmoid", name="head_b")(layers.Activation("relu", name="act_relu")(h))
    model = keras.Model(x_in, [a, b], name="all_layers")
    _randomise(model, rng, scale=2.5)
    graph = graph_from_keras(model)
    assert {layer.kind for layer in graph.layers} == {"dense", "dropout", "activation"}
    assert {layer.activation for layer in graph.layers if layer.kind == "dense"} == set(names)
    x = rng.standard_normal((200, 20)).astype(np.float32) * 2
    want = _keras_out(model, x)
    got = run(graph, model.get_weights(), x)
    assert len(got) == 2
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)
    # dropout acts in training, so the identity at inference is a real difference the test could see
    assert not np.allclose(np.asarray(model(x, training=True)[0]), want[0])


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_each_activation_equals_keras(keras, act):
    """One Activation layer per activation on inputs from -30 to 30 (saturation and overflow ranges)."""
    x_in = keras.Input(shape=(7,), name="x")
    model = keras.Model(x_in, keras.layers.Activation(act, name="a")(x_in), name="one")
    x = np.linspace(-30, 30, 7 * 101, dtype=np.float32).reshape(-1, 7)
    (want,) = _keras_out(model, x)
    with np.errstate(all="raise"):  # no overflow warnings from the numpy side
        (got,) = run(graph_from_keras(model), [], x)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_dropout_in_trained_networks_is_handled(keras):
    """A StyleVAE made from Keras networks with Dropout layers (as a trainer with dropout would make)
    encodes and decodes as Keras does at inference."""
    spec = RollSpec()
    cfg = VAEConfig(input_dim=spec.frame_size, hidden_dim=24, latent_dim=6)
    g = network_graphs(cfg)

    def with_dropout(graph):
        out = []
        for layer in graph.layers:
            if layer.kind == "dense" and layer.activation == "relu":
                out.append(layer)
                out.append(Layer(layer.name + "_drop", "dropout", layer.name, rate=0.4))
            else:
                src = layer.source + "_drop" if layer.source.endswith("hidden") else layer.source
                out.append(layer._replace(source=src))
        return graph._replace(layers=tuple(out))

    keras.utils.set_random_seed(2)
    enc, dec = keras_network(with_dropout(g["encoder"])), keras_network(with_dropout(g["decoder"]))
    assert sum(type(l).__name__ == "Dropout" for l in enc.layers + dec.layers) == 2
    model = StyleVAE(enc, dec, spec=spec, config=cfg)
    x = synthetic_frames(50, seed=1)
    mean_k, _ = _keras_out(enc, x.astype(np.float32))
    np.testing.assert_allclose(model.encode(x)[0], mean_k, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(model.decode(mean_k), np.asarray(keras.ops.sigmoid(_keras_out(dec, mean_k)[0])),
                               rtol=0, atol=PROB_ATOL)
    # the weights are the same arrays a model without the dropout layers has: it saves and loads as one
    assert [w.shape for w in model.get_weights()] == weight_shapes(cfg)


def test_unsupported_layers_are_refused_by_name(keras):
    x_in = keras.Input(shape=(4,), name="x")
    model = keras.Model(x_in, keras.layers.LayerNormalization(name="norm")(x_in), name="m")
    with pytest.raises(ValueError, match="'norm' is a LayerNormalization"):
        graph_from_keras(model)
    model = keras.Model(x_in, keras.layers.Dense(2, activation="gelu", name="d")(x_in), name="m2")
    with pytest.raises(ValueError, match="'d' has activation 'gelu'"):
        graph_from_keras(model)


def test_run_against_float64_brute_force():
    """Without Keras: a two-layer graph against an explicit float64 loop over units."""
    rng = np.random.default_rng(7)
    graph = Graph("g", "x", 5, (Layer("h", "dense", "x", 4, "relu"), Layer("o", "dense", "h", 3, use_bias=False),
                                Layer("p", "activation", "o", activation="sigmoid")), ("h", "p"))
    w = [rng.standard_normal(s).astype(np.float32) for s in [(5, 4), (4,), (4, 3)]]
    x = rng.standard_normal((6, 5)).astype(np.float32)
    h_want = np.zeros((6, 4))
    p_want = np.zeros((6, 3))
    for n in range(6):
        for j in range(4):
            h_want[n, j] = max(0.0, sum(float(x[n, i]) * float(w[0][i, j]) for i in range(5)) + float(w[1][j]))
        for k in range(3):
            o = sum(h_want[n, j] * float(w[2][j, k]) for j in range(4))
            p_want[n, k] = 1 / (1 + np.exp(-o))
    h, p = run(graph, w, x, batch=4)  # two chunks
    np.testing.assert_allclose(h, h_want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p, p_want, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="do not fit"):
        run(graph, w[:2], x)
    with pytest.raises(ValueError, match="input must have shape"):
        run(graph, w, x[:, :4])


def test_sampling_uses_the_given_generator(tiny_model):
    """sample(n, rng=G) decodes G's standard normal draws; seed=s is the Generator default_rng(s)."""
    z = np.random.default_rng(11).standard_normal((4, tiny_model.latent_dim)).astype(np.float32)
    rng = np.random.default_rng(11)
    got = tiny_model.sample(4, rng=rng)
    assert np.array_equal(got, tiny_model.decode(z))
    assert np.array_equal(tiny_model.sample(4, seed=11), got)
    assert not np.array_equal(tiny_model.sample(4, rng=rng), got)  # the Generator advanced


def test_loaded_model_needs_no_keras(tiny_model):
    """Loading and running a saved model in a fresh interpreter leaves tensorflow and keras unimported."""
    code = ("import sys; from qbdi_utils.model import StyleVAE, synthetic_frames; "
            f"m = StyleVAE.load({tiny_model.info['model_dir']!r}); "
            "p = m.reconstruct(synthetic_frames(3, seed=0)); m.sample(2, rng=__import__('numpy').random.default_rng(0)); "
            "print(p.shape, sorted(k for k in ('tensorflow', 'keras', 'music21') if k in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(3, 2496) []"


def _poisoned_env(tmp_path) -> dict:
    """The environment with a ``tensorflow`` and a ``keras`` first on the path that raise on import."""
    fake = tmp_path / "no_tf"
    for name in ("tensorflow", "keras"):
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text(f"raise ImportError('{name} was imported')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(fake)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def test_info_and_improvise_run_without_tensorflow(tiny_model, chord_query_mid, tmp_path):
    """`qbdi info` and `qbdi improvise` on a saved model succeed with tensorflow and keras unimportable,
    and the MIDI written equals the one written by the same command in-process (where Keras is loaded)."""
    from qbdi_utils.cli import main

    env = _poisoned_env(tmp_path)
    check = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "tensorflow was imported" in check.stderr  # the poison works
    qbdi = [sys.executable, "-m", "qbdi_utils.cli"]
    r = subprocess.run(qbdi + ["info", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert '"inference": "numpy"' in r.stdout
    query = chord_query_mid(6)
    out = tmp_path / "out.mid"
    r = subprocess.run(qbdi + ["improvise", "--model", tiny_model.info["model_dir"], "--query", str(query),
                               "--bits", "16", "--seed", "3", "--out", str(out)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and out.stat().st_size > 0
    here = tmp_path / "here.mid"
    assert main(["improvise", "--model", tiny_model.info["model_dir"], "--query", str(query), "--bits", "16",
                 "--seed", "3", "--out", str(here)]) == 0
    assert out.read_bytes() == here.read_bytes()


def test_cli_modules_import_no_heavy_libraries():
    """Importing every command module (and building the parser) loads no TensorFlow, Keras or music21."""
    code = ("import sys; from qbdi_utils.cli import build_parser; build_parser(); "
            "print(sorted(k for k in ('tensorflow', 'keras', 'music21', 'matplotlib') if k in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_chorale_files_are_listed_as_music21_lists_them_without_importing_it():
    """The default model's corpus check lists the chorales without music21's import (a second or more);
    the list is exactly the one music21's corpus.getComposer("bach") gives (MusicXML files)."""
    from pathlib import Path

    code = ("import sys; from qbdi_utils import corpus, music21_files; print(len(music21_files.chorale_paths()), "
            "music21_files.essen_path(), 'music21' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    n, essen, imported = r.stdout.split()
    assert imported == "False"
    from music21 import corpus as m21corpus

    from qbdi_utils import music21_files

    want = sorted((Path(p) for p in m21corpus.getComposer("bach") if Path(p).suffix in (".mxl", ".xml")),
                  key=lambda p: p.name)
    assert music21_files.chorale_paths() == want and int(n) == len(want) > 400
    import music21

    assert Path(essen) == Path(music21.__file__).parent / "corpus" / "essenFolksong" / music21_files.ESSEN_FILE
