"""The style VAE's networks and its one loss, D + beta R + gamma P (PAPER.md section 3, Appendix B).

Model (sizes configurable, ``PRESETS["paper"]`` = the paper)::

    encoder    x (2496, binary) -> Dense 500 ReLU -> mean (500), log-variance (500)
    decoder    z (500)          -> Dense 500 ReLU -> 2496 logits -> sigmoid = Bernoulli probabilities
    predictor  z (500)          -> Dense hidden_dim ReLU -> 2496 logits  (only with gamma > 0)

Loss per frame (nats) = D + beta * R (+ gamma * P), :func:`objective`, with
    D = -log p(x | z), z = mean + exp(logvar / 2) * eps, eps ~ N(0, I)   (distortion: the summed
        Bernoulli negative log-likelihood over the 2496 cells)
    R = KL(q(z | x) || N(0, I)) = 1/2 sum(exp(logvar) + mean^2 - 1 - logvar)   (rate)
    P = m_t CE(x_{t+1} | z_t)   (the predictor head's summed Bernoulli negative log-likelihood of the
        next bar of the same piece given the same sampled z_t the decoder sees; m_t = 0 for a piece's
        last bar, which has no successor but still counts in D and R)
so with beta = 1 and gamma = 0 the loss is the negative ELBO, R + D (Alemi et al. 2018). The head's
cross-entropy bounds I(Z;Y) from below (Barber-Agakov): I(Z;Y) >= H(Y) - CE.

The networks are described once, as graphs (:func:`network_graphs`), which Keras builds for training
and :mod:`qbdi_utils.model.forward` runs in numpy for inference. The losses are written with
``keras.ops`` only, so any Keras backend runs them; TensorFlow is the default (``KERAS_BACKEND``
selects another before Keras is first imported). Keras is imported on first use only.

Imports: model.config, model.backend, model.forward. Used in: :mod:`qbdi_utils.model.vae` (building a loaded
model), :mod:`qbdi_utils.training.tf_loop` and :mod:`qbdi_utils.training.fit` (the training
loops), tests/test_vae.py.
"""

from __future__ import annotations

from qbdi_utils.model.backend import import_keras
from qbdi_utils.model.config import VAEConfig
from qbdi_utils.model.forward import Graph, Layer, graph_weight_shapes

__all__ = ["build_networks", "build_predictor", "keras_network", "loss_terms", "network_graphs", "objective",
           "predictive_terms", "weight_shapes"]


def objective(d, r, p=None, *, beta: float, gamma: float = 0.0):
    """The loss per frame, D + beta R (+ gamma P): the one place it is written.

    Works on numbers, numpy arrays and backend tensors alike (the same operations in the same
    order, so every caller rounds the same way).

    Args:
        d: distortion D (nats), a number or a (B,) array / tensor.
        r: rate R (nats), same shape as d.
        p: predictive term P (nats), same shape, or None for a model without a predictor head.
        beta: weight of the rate.
        gamma: weight of the predictive term (ignored when p is None).

    Returns:
        d + beta * r, plus gamma * p when p is given.

    Used in: :mod:`qbdi_utils.training` (loss, validation and test loss, the logged loss),
    :meth:`qbdi_utils.model.StyleVAE.rate_distortion`.
    """
    if p is None:
        return d + beta * r
    return d + beta * r + gamma * p


def network_graphs(cfg: VAEConfig) -> dict:
    """The model's networks as :class:`~qbdi_utils.model.forward.Graph` objects: the one description
    both Keras (:func:`build_networks`, :func:`build_predictor`) and the numpy forward pass
    (:func:`qbdi_utils.model.forward.run`) use.

    Args:
        cfg: the configuration (input_dim, hidden_dim, latent_dim, gamma, dropout_rate, seed).

    Returns:
        {"encoder": x -> (mean, logvar), "decoder": z -> logits, "predictor": z_t -> next-bar logits
        or None when ``cfg.gamma == 0``}.
    """
    n, h, L = cfg.input_dim, cfg.hidden_dim, cfg.latent_dim
    rate = float(cfg.dropout_rate)
    # with dropout_rate > 0 a Dropout follows each hidden layer (a training option: no weights, the
    # identity at inference); its seed is the model's (encoder) and the model's + 1 (decoder)
    enc_drop = (Layer("enc_dropout", "dropout", "enc_hidden", rate=rate, seed=int(cfg.seed)),) if rate > 0 else ()
    dec_drop = (Layer("dec_dropout", "dropout", "dec_hidden", rate=rate, seed=int(cfg.seed) + 1),) if rate > 0 else ()
    enc_h = "enc_dropout" if rate > 0 else "enc_hidden"
    dec_h = "dec_dropout" if rate > 0 else "dec_hidden"
    encoder = Graph("encoder", "frames", n, (
        Layer("enc_hidden", "dense", "frames", h, "relu"), *enc_drop,
        Layer("enc_mean", "dense", enc_h, L),
        Layer("enc_logvar", "dense", enc_h, L)), ("enc_mean", "enc_logvar"))
    decoder = Graph("decoder", "z", L, (
        Layer("dec_hidden", "dense", "z", h, "relu"), *dec_drop,
        Layer("dec_logits", "dense", dec_h, n)), ("dec_logits",))
    predictor = None
    if cfg.gamma > 0:
        predictor = Graph("predictor", "z_t", L, (
            Layer("pred_hidden", "dense", "z_t", h, "relu"),
            Layer("pred_logits", "dense", "pred_hidden", n)), ("pred_logits",))
    return {"encoder": encoder, "decoder": decoder, "predictor": predictor}


def keras_network(graph: Graph):
    """A Keras functional model with fresh weights computing a :class:`~qbdi_utils.model.forward.Graph`.

    Layers are created in the graph's order, so the initial weights drawn from Keras's seeded
    generator follow that order. One output gives a model returning one tensor, several a list.

    Args:
        graph: the network (dense, dropout and activation layers).

    Returns:
        ``keras.Model`` named ``graph.name``.

    Raises:
        ValueError: a layer kind Keras is not given here (see :data:`forward.LAYER_KINDS`).
    """
    graph_weight_shapes(graph)  # checks the graph
    keras = import_keras()
    layers = keras.layers
    values = {graph.input_name: keras.Input(shape=(graph.input_dim,), name=graph.input_name)}
    for layer in graph.layers:
        if layer.kind == "dense":
            op = layers.Dense(layer.units, activation=layer.activation, use_bias=layer.use_bias, name=layer.name)
        elif layer.kind == "dropout":
            op = layers.Dropout(layer.rate, seed=layer.seed, name=layer.name)
        else:
            op = layers.Activation(layer.activation, name=layer.name)
        values[layer.name] = op(values[layer.source])
    outs = [values[o] for o in graph.outputs]
    return keras.Model(values[graph.input_name], outs if len(outs) > 1 else outs[0], name=graph.name)


def build_networks(cfg: VAEConfig):
    """Encoder (x -> mean, logvar) and decoder (z -> logits) as Keras functional models.

    With ``cfg.dropout_rate > 0`` a Dropout layer follows each hidden layer; it acts only when
    the networks are called with ``training=True`` (the training loops) and has no weights, so
    the saved weights and every inference are those of the same network without it.

    Args:
        cfg: the configuration (input_dim, hidden_dim, latent_dim, dropout_rate).

    Returns:
        (encoder, decoder): ``keras.Model`` objects with fresh weights (:func:`network_graphs`).
    """
    graphs = network_graphs(cfg)
    return keras_network(graphs["encoder"]), keras_network(graphs["decoder"])


def build_predictor(cfg: VAEConfig):
    """The predictor head (z -> logits of the next bar), or None when ``cfg.gamma == 0``.

    Built after the encoder and decoder, so a gamma = 0 model draws exactly the same initial
    weights as before the head existed.

    Args:
        cfg: the configuration.

    Returns:
        A ``keras.Model`` z_t (L,) -> next-bar logits (input_dim,), or None.
    """
    graph = network_graphs(cfg)["predictor"]
    return None if graph is None else keras_network(graph)


def loss_terms(encoder, decoder, x, eps, training: bool = False):
    """Per-frame distortion and rate (nats), written with ``keras.ops``.

    Args:
        encoder, decoder: the Keras networks.
        x: (B, D) float tensor of 0/1.
        eps: (B, L) standard normal noise of the reparameterisation z = mean + exp(logvar/2) eps.
        training: whether dropout layers (``dropout_rate > 0``) act; False everywhere but the
            training step.

    Returns:
        (d, r): two (B,) tensors, D = sum of Bernoulli NLL over cells, R = KL(q(z|x) || N(0, I)).

    Used in: qbdi_utils.training.tf_loop and training.fit (the training loops), tests/test_vae.py.
    """
    from keras import ops

    mean, logvar = encoder(x, training=training)
    z = mean + ops.exp(0.5 * logvar) * eps
    logits = decoder(z, training=training)
    # -log Bernoulli(x; sigmoid(l)) = softplus(l) - x l, summed over the frame's cells
    d = ops.sum(ops.softplus(logits) - x * logits, axis=-1)
    r = 0.5 * ops.sum(ops.exp(logvar) + ops.square(mean) - 1.0 - logvar, axis=-1)
    return d, r


def predictive_terms(encoder, decoder, predictor, x, *, y, mask, eps, training: bool = False):
    """Per-frame distortion, rate and predictive term (nats), written with ``keras.ops``.

    Args:
        encoder, decoder, predictor: the Keras networks (predictor: z -> next-bar logits).
        x: (B, D) float tensor of 0/1, the bars x_t.
        y: (B, D) float tensor of 0/1, the next bars x_{t+1} (anything where mask is 0).
        mask: (B,) float tensor, 1 where x_t has a successor in its piece, else 0.
        eps: (B, L) standard normal noise; z_t = mean + exp(logvar/2) eps feeds both the decoder
            and the predictor.
        training: whether dropout layers act (as in :func:`loss_terms`).

    Returns:
        (d, r, p): three (B,) tensors; d and r as :func:`loss_terms`,
        p = mask * CE / mean(mask), CE the sum over cells of the Bernoulli NLL of y under the
        predictor's logits: the mean of p over the batch is the mean CE over the batch's PAIRS,
        so gamma weighs the pairs' mean (a piece's last bar, mask 0, neither adds to P nor dilutes
        it). A batch without a pair gives p = 0.

    Used in: qbdi_utils.training.tf_loop and training.fit (gamma > 0), tests/test_vae_predictive.py.
    """
    from keras import ops

    mean, logvar = encoder(x, training=training)
    z = mean + ops.exp(0.5 * logvar) * eps
    logits = decoder(z, training=training)
    d = ops.sum(ops.softplus(logits) - x * logits, axis=-1)
    r = 0.5 * ops.sum(ops.exp(logvar) + ops.square(mean) - 1.0 - logvar, axis=-1)
    q = predictor(z)
    share = ops.maximum(ops.mean(mask), 1e-12)  # pairs per frame in the batch
    p = mask * ops.sum(ops.softplus(q) - y * q, axis=-1) / share
    return d, r, p




def weight_shapes(cfg: VAEConfig) -> list[tuple[int, ...]]:
    """Shapes of the weight arrays of a model of this configuration, in order (encoder: hidden,
    mean, logvar; decoder: hidden, logits; then the predictor head when gamma > 0), as
    :func:`build_networks` and :func:`build_predictor` create them and ``weights.npz`` stores them.

    Args:
        cfg: the configuration.

    Returns:
        List of shapes: kernels (in, out), biases (out,).
    """
    return [s for g in network_graphs(cfg).values() if g is not None for s in graph_weight_shapes(g)]
