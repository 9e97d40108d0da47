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

The networks are written with ``keras.ops`` only, so any Keras backend runs them; TensorFlow is the
default (``KERAS_BACKEND`` selects another before Keras is first imported).

Imports: model.config, model.backend. Used in: :mod:`qbdi_utils.model.vae` (building a loaded
model), :mod:`qbdi_utils.training.fit` (the training loops), tests/test_vae.py.
"""

from __future__ import annotations

from qbdi_utils.model.backend import import_keras
from qbdi_utils.model.config import VAEConfig

__all__ = ["build_networks", "build_predictor", "loss_terms", "objective", "predictive_terms",
           "weight_shapes"]


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


def build_networks(cfg: VAEConfig):
    """Encoder (x -> mean, logvar) and decoder (z -> logits) as Keras functional models.

    With ``cfg.dropout_rate > 0`` a Dropout layer follows each hidden layer; it acts only when
    the networks are called with ``training=True`` (the training loops) and has no weights, so
    the saved weights and every inference are those of the same network without it.

    Args:
        cfg: the configuration (input_dim, hidden_dim, latent_dim, dropout_rate).

    Returns:
        (encoder, decoder): ``keras.Model`` objects with fresh weights.
    """
    keras = import_keras()
    layers = keras.layers
    x_in = keras.Input(shape=(cfg.input_dim,), name="frames")
    h = layers.Dense(cfg.hidden_dim, activation="relu", name="enc_hidden")(x_in)
    if cfg.dropout_rate > 0:  # a training option; the identity at inference (no weights)
        h = layers.Dropout(cfg.dropout_rate, seed=int(cfg.seed), name="enc_dropout")(h)
    mean = layers.Dense(cfg.latent_dim, name="enc_mean")(h)
    logvar = layers.Dense(cfg.latent_dim, name="enc_logvar")(h)
    encoder = keras.Model(x_in, [mean, logvar], name="encoder")
    z_in = keras.Input(shape=(cfg.latent_dim,), name="z")
    g = layers.Dense(cfg.hidden_dim, activation="relu", name="dec_hidden")(z_in)
    if cfg.dropout_rate > 0:
        g = layers.Dropout(cfg.dropout_rate, seed=int(cfg.seed) + 1, name="dec_dropout")(g)
    logits = layers.Dense(cfg.input_dim, name="dec_logits")(g)
    decoder = keras.Model(z_in, logits, name="decoder")
    return encoder, decoder



def build_predictor(cfg: VAEConfig):
    """The predictor head (z -> logits of the next bar), or None when ``cfg.gamma == 0``.

    Built after the encoder and decoder, so a gamma = 0 model draws exactly the same initial
    weights as before the head existed.

    Args:
        cfg: the configuration.

    Returns:
        A ``keras.Model`` z_t (L,) -> next-bar logits (input_dim,), or None.
    """
    if cfg.gamma == 0:
        return None
    keras = import_keras()
    layers = keras.layers
    z_in = keras.Input(shape=(cfg.latent_dim,), name="z_t")
    g = layers.Dense(cfg.hidden_dim, activation="relu", name="pred_hidden")(z_in)
    logits = layers.Dense(cfg.input_dim, name="pred_logits")(g)
    return keras.Model(z_in, logits, name="predictor")


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

    Used in: qbdi_utils.training.fit (the training loops), tests/test_vae.py.
    """
    from keras import ops

    mean, logvar = encoder(x, training=training)
    z = mean + ops.exp(0.5 * logvar) * eps
    logits = decoder(z, training=training)
    # -log Bernoulli(x; sigmoid(l)) = softplus(l) - x l, summed over the frame's cells
    d = ops.sum(ops.softplus(logits) - x * logits, axis=-1)
    r = 0.5 * ops.sum(ops.exp(logvar) + ops.square(mean) - 1.0 - logvar, axis=-1)
    return d, r


def predictive_terms(encoder, decoder, predictor, x, y, mask, eps, training: bool = False):
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

    Used in: qbdi_utils.training.fit (gamma > 0), tests/test_vae_predictive.py.
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
    n, h, L = cfg.input_dim, cfg.hidden_dim, cfg.latent_dim
    shapes = [(n, h), (h,), (h, L), (L,), (h, L), (L,),   # encoder: hidden, mean, logvar
              (L, h), (h,), (h, n), (n,)]                 # decoder: hidden, logits
    if cfg.gamma > 0:
        shapes += [(L, h), (h,), (h, n), (n,)]            # predictor head
    return shapes

