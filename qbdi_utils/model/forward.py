"""The style VAE's forward pass in numpy: encoding, decoding, the predictor head, sampling, without Keras.

A saved model is a few dense layers whose weights are already numpy arrays (``weights.npz``), so a
model loaded from disk runs here and never imports TensorFlow; Keras is needed only to train
(:mod:`qbdi_utils.training`) and for the training-time losses of a loaded model
(:attr:`StyleVAE.networks <qbdi_utils.model.StyleVAE.networks>`, built on demand).

A network is a :class:`Graph`: layers, each reading one earlier layer (or the input), and the
layers whose values are its outputs. The same graph builds the Keras network
(:func:`qbdi_utils.model.networks.build_networks`) and runs here (:func:`run`), so the two cannot
describe different networks; :func:`graph_from_keras` reads the graph of any Keras functional model
made of the supported layers, so a network trained with extra layers (e.g. Dropout) runs here too.

Layer kinds and what they compute at inference (Keras semantics, float32 like Keras):

=============  =================================================================================
``dense``      ``activation(x @ kernel + bias)``; weights kernel (in, units), then bias (units,)
``dropout``    the identity (dropout only acts in training)
``activation`` ``activation(x)``
=============  =================================================================================

Activations: ``linear``, ``relu``, ``sigmoid``, ``tanh``, ``softplus``, ``elu``. Any other layer or
activation is refused with a ValueError naming it (a layer with weights cannot be skipped silently).

**One BLAS thread.** The matrix products run with BLAS limited to one thread (threadpoolctl, for
the duration of :func:`run`). OpenBLAS's float32 results change with its thread count, so this
makes the outputs the same whatever the machine's core count; and on a shared machine whose cores
are busy, multi-threaded OpenBLAS was 4-6 times slower (encoding 155 bars: 430-460 ms against
70-77 ms with one thread at load 13-18 on 2 cores), while on idle cores one thread costs at most
the second core's share.

Imports: nothing of ours. Used in: :mod:`qbdi_utils.model.vae` (every inference of a StyleVAE),
:mod:`qbdi_utils.model.networks` (the graphs of the model's networks), tests/test_forward.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["ACTIVATIONS", "BATCH", "Graph", "Layer", "LAYER_KINDS", "graph_from_keras", "graph_weight_shapes",
           "normal_latents", "run", "sigmoid", "softplus"]

#: Rows per matrix product: bounds the memory of one call (4096 x 2496 float32 = 41 MB).
BATCH = 4096

LAYER_KINDS = ("dense", "dropout", "activation")
"""Layer kinds :func:`run` computes."""


_BLAS = []  # the threadpoolctl controller, made on first use (it inspects the loaded libraries once)


def _one_blas_thread():
    """A context in which BLAS uses one thread (a no-op where threadpoolctl is not installed)."""
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a declared dependency
            _BLAS.append(None)
        else:
            _BLAS.append(ThreadpoolController())
    return contextlib.nullcontext() if _BLAS[0] is None else _BLAS[0].limit(limits=1, user_api="blas")


def _relu(y):
    return np.maximum(y, 0, out=y)


def _sigmoid32(y):
    # 1 / (1 + exp(-y)) without overflow warnings: exp of a non-positive number only
    e = np.exp(-np.abs(y))
    return np.where(y >= 0, 1 / (1 + e), e / (1 + e)).astype(y.dtype)


def softplus(y: np.ndarray) -> np.ndarray:
    """log(1 + exp(y)) elementwise, in y's float dtype, without overflow: (...) -> (...)."""
    return np.logaddexp(np.zeros((), y.dtype), y)


def _elu(y):
    return np.where(y > 0, y, np.expm1(np.minimum(y, 0))).astype(y.dtype)


#: name -> numpy function of a float array (same dtype out), as Keras defines them.
ACTIVATIONS = {
    "linear": lambda y: y,
    "relu": _relu,
    "sigmoid": _sigmoid32,
    "tanh": np.tanh,
    "softplus": softplus,
    "elu": _elu,
}


class Layer(NamedTuple):
    """One layer of a :class:`Graph`.

    Attributes:
        name: the layer's name (unique in its graph; the Keras layer name).
        kind: one of :data:`LAYER_KINDS`.
        source: the name of the layer it reads, or the graph's ``input_name``.
        units: output width of a ``dense`` layer (0 for the others).
        activation: a key of :data:`ACTIVATIONS` (``dense`` and ``activation`` layers).
        use_bias: a ``dense`` layer has a bias (its second weight array).
        rate: a ``dropout`` layer's training-time rate (unused at inference).
        seed: a ``dropout`` layer's seed for its training-time masks (None: Keras's global generator).
    """

    name: str
    kind: str
    source: str
    units: int = 0
    activation: str = "linear"
    use_bias: bool = True
    rate: float = 0.0
    seed: int | None = None


class Graph(NamedTuple):
    """A network as layers over one input: what :func:`run` computes and Keras builds.

    Attributes:
        name: the network's name ("encoder", "decoder", "predictor").
        input_name: the name of its input.
        input_dim: width of the input.
        layers: the layers in order; each reads the input or an earlier layer. Weight arrays come in
            this order (each ``dense`` layer's kernel, then its bias), as Keras orders them.
        outputs: names of the layers whose values are the outputs, in order.
    """

    name: str
    input_name: str
    input_dim: int
    layers: tuple[Layer, ...]
    outputs: tuple[str, ...]


def _check_graph(graph: Graph) -> None:
    seen = {graph.input_name}
    for layer in graph.layers:
        if layer.kind not in LAYER_KINDS:
            raise ValueError(f"{graph.name}: layer {layer.name!r} has kind {layer.kind!r}; the numpy forward "
                             f"pass computes {', '.join(LAYER_KINDS)}")
        if layer.kind in ("dense", "activation") and layer.activation not in ACTIVATIONS:
            raise ValueError(f"{graph.name}: layer {layer.name!r} has activation {layer.activation!r}; the "
                             f"numpy forward pass computes {', '.join(ACTIVATIONS)}")
        if layer.source not in seen:
            raise ValueError(f"{graph.name}: layer {layer.name!r} reads {layer.source!r}, which comes later "
                             "or does not exist")
        seen.add(layer.name)
    missing = [o for o in graph.outputs if o not in seen]
    if missing:
        raise ValueError(f"{graph.name}: output {missing[0]!r} is not a layer of the graph")


def graph_weight_shapes(graph: Graph) -> list[tuple[int, ...]]:
    """Shapes of a graph's weight arrays in order: each dense layer's kernel (in, units), bias (units,).

    Args:
        graph: the network.

    Returns:
        List of shapes.

    Raises:
        ValueError: the graph is malformed (unknown layer kind or activation, a layer reading a
            later one).
    """
    _check_graph(graph)
    width = {graph.input_name: int(graph.input_dim)}
    shapes = []
    for layer in graph.layers:
        w_in = width[layer.source]
        if layer.kind == "dense":
            shapes.append((w_in, int(layer.units)))
            if layer.use_bias:
                shapes.append((int(layer.units),))
            width[layer.name] = int(layer.units)
        else:
            width[layer.name] = w_in
    return shapes


def run(graph: Graph, weights: Sequence[np.ndarray], x: np.ndarray, batch: int = BATCH) -> list[np.ndarray]:
    """The outputs of a network for inputs x: the inference-time forward pass (Keras ``training=False``).

    Computed in the weights' floating type (float32 for every saved model, as Keras computes), in
    chunks of ``batch`` rows.

    Args:
        graph: the network.
        weights: its weight arrays in :func:`graph_weight_shapes` order.
        x: (N, graph.input_dim) inputs (any real dtype; cast to the weights' type).
        batch: rows per chunk.

    Returns:
        One (N, width) array per name in ``graph.outputs``.

    Raises:
        ValueError: the weights do not fit the graph (count or shapes), or x has the wrong width.
    """
    shapes = graph_weight_shapes(graph)
    if [tuple(np.shape(w)) for w in weights] != shapes:
        raise ValueError(f"{graph.name}: weights of shapes {[tuple(np.shape(w)) for w in weights]} do not fit "
                         f"the graph's {shapes}")
    dtype = np.result_type(*weights) if len(weights) else np.dtype(np.float32)
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != graph.input_dim:
        raise ValueError(f"{graph.name}: input must have shape (N, {graph.input_dim}), got {x.shape}")
    # weight arrays per dense layer, in order
    it = iter(np.asarray(w, dtype=dtype) for w in weights)
    params = {}
    for layer in graph.layers:
        if layer.kind == "dense":
            params[layer.name] = (next(it), next(it) if layer.use_bias else None)
    with _one_blas_thread():
        chunks = [_run_chunk(graph, params, x[i:i + batch].astype(dtype, copy=False))
                  for i in range(0, max(len(x), 1), batch)]
    return [np.concatenate(parts, axis=0) for parts in zip(*chunks)]


def _run_chunk(graph: Graph, params: dict, x: np.ndarray) -> list[np.ndarray]:
    """The outputs of a graph for one chunk of rows (see :func:`run`)."""
    values = {graph.input_name: x}
    for layer in graph.layers:
        v = values[layer.source]
        if layer.kind == "dense":
            kernel, bias = params[layer.name]
            v = v @ kernel
            if bias is not None:
                v += bias
            v = ACTIVATIONS[layer.activation](v)
        elif layer.kind == "activation":
            v = ACTIVATIONS[layer.activation](v.copy())
        # dropout: the identity at inference
        values[layer.name] = v
    return [values[o] for o in graph.outputs]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Bernoulli probabilities of logits, computed in float64 and returned as float32 (N, D) -> (N, D).

    The one place a StyleVAE turns logits into probabilities (decoder and predictor head).
    """
    return (1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))).astype(np.float32)


def normal_latents(rng: np.random.Generator, n: int, latent_dim: int) -> np.ndarray:
    """n latent states drawn from N(0, I) by an explicit Generator: (n, latent_dim) float32.

    Used in: :meth:`StyleVAE.sample <qbdi_utils.model.StyleVAE.sample>`.
    """
    return rng.standard_normal((int(n), int(latent_dim))).astype(np.float32)


def _keras_activation(value, where: str) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"{where}: activation {value!r} is not one of {', '.join(ACTIVATIONS)}")


def graph_from_keras(model) -> Graph:
    """The :class:`Graph` of a Keras functional model, read from its (public) ``get_config()``.

    Args:
        model: a ``keras.Model`` with one input, made of InputLayer, Dense, Dropout and Activation
            layers, each with one input.

    Returns:
        The graph; ``run(graph, model.get_weights(), x)`` equals ``model(x, training=False)``.

    Raises:
        ValueError: a layer of another type (named), an activation the numpy pass does not compute,
            several inputs.

    Used in: :class:`StyleVAE <qbdi_utils.model.StyleVAE>` built from trained Keras networks,
        tests/test_forward.py.
    """
    cfg = model.get_config()
    inputs = [layer for layer in cfg["layers"] if layer["class_name"] == "InputLayer"]
    if len(inputs) != 1:
        raise ValueError(f"{model.name}: the numpy forward pass needs one input, the model has {len(inputs)}")
    input_name = inputs[0]["name"]
    input_dim = int(inputs[0]["config"]["batch_shape"][-1])
    layers = []
    for spec in cfg["layers"]:
        kind, c, name = spec["class_name"], spec["config"], spec["name"]
        if kind == "InputLayer":
            continue
        nodes = spec.get("inbound_nodes") or []
        args = nodes[0]["args"] if len(nodes) == 1 else []
        if len(nodes) != 1 or len(args) != 1 or not isinstance(args[0], dict):
            raise ValueError(f"{model.name}: layer {name!r} must read exactly one tensor")
        source = args[0]["config"]["keras_history"][0]
        where = f"{model.name}: layer {name!r}"
        if kind == "Dense":
            layers.append(Layer(name, "dense", source, units=int(c["units"]),
                                activation=_keras_activation(c["activation"], where), use_bias=bool(c["use_bias"])))
        elif kind == "Dropout":
            layers.append(Layer(name, "dropout", source, rate=float(c["rate"])))
        elif kind == "Activation":
            layers.append(Layer(name, "activation", source, activation=_keras_activation(c["activation"], where)))
        else:
            raise ValueError(f"{where} is a {kind}; the numpy forward pass computes Dense, Dropout and "
                             "Activation layers")
    outs = cfg["output_layers"]
    outs = [outs] if outs and isinstance(outs[0], str) else outs  # one output: [name, 0, 0]
    outputs = tuple(o[0] for o in outs)
    graph = Graph(model.name, input_name, input_dim, tuple(layers), outputs)
    _check_graph(graph)
    return graph
