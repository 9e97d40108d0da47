"""The style model: a Keras 3 variational autoencoder over piano-roll frames (PAPER.md section 3).

This module owns the *model*: its configuration (:class:`VAEConfig`, the named :data:`PRESETS`),
its networks, its loss terms and the trained object :class:`StyleVAE` (encode, decode, sample,
reconstruct, save, load). The training loop lives in :mod:`qbdi_utils.train`, which imports this
module; notebook 02 trains the model and reads it on the rate-distortion plane, notebooks 03-05
and the CLI query it.

Model (sizes configurable, ``PRESETS["paper"]`` = the paper)::

    encoder  x (2496, binary) -> Dense 500 ReLU -> mean (500), log-variance (500)
    decoder  z (500)          -> Dense 500 ReLU -> 2496 logits -> sigmoid = Bernoulli probabilities

Loss per frame (nats) = D + beta * R with
    D = -log p(x | z), z = mean + exp(logvar / 2) * eps, eps ~ N(0, I)   (distortion: the summed
        Bernoulli negative log-likelihood over the 2496 cells)
    R = KL(q(z | x) || N(0, I)) = 1/2 sum(exp(logvar) + mean^2 - 1 - logvar)   (rate)
so with beta = 1 the loss is the negative ELBO, R + D (Alemi et al. 2018).

**Predictive head (gamma > 0, PAPER.md section 8, the paper's Appendix B).** With ``gamma > 0`` the
model also has a predictor head q(y | z_t) for Y = the next bar x_{t+1} of the same piece::

    predictor z (500) -> Dense hidden_dim ReLU -> 2496 logits   (Bernoulli over the next bar's cells)

trained jointly on D + beta R + gamma P, P = m_t CE(x_{t+1} | z_t) (the summed Bernoulli negative
log-likelihood of the next bar given the same sampled z_t the decoder sees; m_t = 0 for a piece's
last bar, which has no successor but still counts in D and R). The head's cross-entropy bounds
I(Z;Y) from below (Barber-Agakov): I(Z;Y) >= H(Y) - CE. Encoding and decoding ignore the head.

**Which beta.** ``beta`` here weighs the *rate* (the beta-VAE convention of Higgins et al. 2017 and
Alemi et al. 2018). The paper's Appendix B writes L = I(X;Z) + beta_paper <d(X,Z)>, a weight on
the *distortion*; dividing that by beta_paper gives D + (1/beta_paper) R, so
beta = 1 / beta_paper (both are 1 for the paper's model).

The network is written with ``keras.ops`` only, so any Keras backend runs it; TensorFlow is the
default (``KERAS_BACKEND`` selects another before Keras is first imported). Keras is imported on
first use, not when this module is imported.

A saved model is a directory holding ``model.json`` (format, roll layout, :class:`VAEConfig`,
fingerprint of the training frames, decoding threshold, corpus statistics of the latent means,
training facts) and ``weights.npz`` (encoder, decoder, then the predictor head if gamma > 0).
Format version 2 (this one) stores the three-way split's fractions and gamma; version-1
directories (one held-out set, no head) still load.

Training names (``train``, ``default_model``, ``default_model_dir``, ``split_held_out``,
``choose_threshold``, ...) moved to :mod:`qbdi_utils.train`; ``qbdi_utils.vae.train`` etc. keep
working through this module's ``__getattr__`` (the package's one late import of its own module,
since train imports vae).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qbdi_utils import files, limits
from qbdi_utils.errors import ModelError, OptionError
from qbdi_utils.pianoroll import RollSpec, frames_digest

__all__ = [
    "DEFAULT_CONFIG", "DEFAULT_EPOCHS", "FORMAT", "FORMAT_VERSION", "MODEL_FILE", "PRESETS",
    "StyleVAE", "VAEConfig", "WEIGHTS_FILE", "frames_fingerprint", "loss_terms", "note_scores",
    "predictive_terms", "synthetic_frames",
]

FORMAT = "qbdi-style-vae"
FORMAT_VERSION = 2
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"

#: Epochs of the paper preset. Chosen on the validation pieces (never on the test pieces) from a
#: 200-epoch run on the default corpus (5,963 bars, seed 0, Adam 1e-3, batch 100): validation loss
#: falls to 116.0 nats/frame by epoch 91, is lowest (115.4) at epoch 102, stays within 1 % of that to
#: epoch 130 and then rises (129 at epoch 200) as the network memorises the training bars. A learning
#: rate of 3e-3 bottoms out earlier (epoch 48) but much higher (139), so the paper's Adam default
#: stays. (That run used the earlier two-way split, whose one held-out set played the validation
#: role.) See notebooks/02_vae_training.ipynb.
DEFAULT_EPOCHS = 100

_ENCODE_BATCH = 4096


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

_INT, _FLOAT = "int", "float"


@dataclass(frozen=True)
class VAEConfig(Mapping):
    """The configuration of a style VAE and of its training run: sizes, loss weights, optimiser, split.

    Frozen and validated on construction. It also reads as a read-only mapping
    (``config["latent_dim"]``, ``dict(config)``), as the plain dict it replaced did.

    Attributes:
        input_dim: cells per frame (2496 for the paper's RollSpec).
        hidden_dim: units of the encoder's and decoder's hidden layers (paper: 500).
        latent_dim: latent components L (paper: 500).
        beta: weight of the rate R in the loss D + beta R, in [0, inf) (1 = the negative ELBO).
            The beta-VAE convention: beta weighs the RATE. The paper's Appendix-B beta weighs the
            distortion (L = R + beta_paper D), so beta = 1 / beta_paper up to the overall scale.
        epochs: passes over the training frames (>= 1).
        batch_size: frames per Adam step (>= 1; paper: 100).
        learning_rate: Adam step size (> 0).
        validation_fraction: share of pieces (or frames) held out to choose the epoch count and the
            decoding threshold, in (0, 1).
        test_fraction: share of pieces (or frames) held out for every number reported as held-out
            (R, D, F1, loss), in [0, 1); 0 = no test set (models of format version 1).
        seed: seeds weights, noise, shuffling and the split (>= 0).
        max_piece_frames: frames of the longest training piece (set by training when the pieces
            are known; improvise warns about longer queries), or None.
        gamma: weight of the predictive term gamma * CE(x_{t+1} | z_t) in the loss, in [0, inf);
            0 = no predictor head (the paper's VAE), > 0 adds the head latent -> hidden_dim -> input_dim.

    Raises:
        OptionError: a field has the wrong type or is out of range (the message names the field).

    Used in: notebooks/02_vae_training.ipynb (``model.config``), ``qbdi train``.
    """

    input_dim: int = 2496
    hidden_dim: int = 500
    latent_dim: int = 500
    beta: float = 1.0
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 100
    learning_rate: float = 1e-3
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    max_piece_frames: int | None = None
    gamma: float = 0.0

    # field -> (kind, lower bound, lower bound inclusive, upper bound (exclusive) or None, may be None)
    _RULES = {
        "input_dim": (_INT, 1, True, None, False),
        "hidden_dim": (_INT, 1, True, None, False),
        "latent_dim": (_INT, 1, True, None, False),
        "beta": (_FLOAT, 0.0, True, None, False),
        "epochs": (_INT, 1, True, None, False),
        "batch_size": (_INT, 1, True, None, False),
        "learning_rate": (_FLOAT, 0.0, False, None, False),
        "validation_fraction": (_FLOAT, 0.0, False, 1.0, False),
        "test_fraction": (_FLOAT, 0.0, True, 1.0, False),
        "seed": (_INT, 0, True, None, False),
        "max_piece_frames": (_INT, 1, True, None, True),
        "gamma": (_FLOAT, 0.0, True, None, False),
    }

    def __post_init__(self):
        for f in dataclasses.fields(self):
            kind, lo, lo_incl, hi, nullable = self._RULES[f.name]
            v = getattr(self, f.name)
            if v is None and nullable:
                continue
            if isinstance(v, bool) or not isinstance(v, numbers.Real if kind == _FLOAT else numbers.Integral):
                raise OptionError(f"VAEConfig.{f.name} must be {'a number' if kind == _FLOAT else 'a whole number'}"
                                  f"{' or None' if nullable else ''}, got {v!r}")
            v = float(v) if kind == _FLOAT else int(v)
            if not math.isfinite(v):
                raise OptionError(f"VAEConfig.{f.name} must be finite, got {v}")
            if (v < lo) or (v == lo and not lo_incl) or (hi is not None and v >= hi):
                rng = (f"{'>=' if lo_incl else '>'} {lo}" if hi is None
                       else f"in {'[' if lo_incl else '('}{lo}, {hi})")
                raise OptionError(f"VAEConfig.{f.name} must be {rng}, got {v}")
            object.__setattr__(self, f.name, v)
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise OptionError("VAEConfig.validation_fraction + test_fraction must be < 1, got "
                              f"{self.validation_fraction} + {self.test_fraction}")

    # -- read-only mapping view -----------------------------------------------------------------

    def __getitem__(self, key: str):
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes) -> "VAEConfig":
        """A copy with some fields changed (validated like a new config).

        Raises:
            OptionError: an unknown field, or a value out of range.
        """
        unknown = sorted(set(changes) - set(self._names()))
        if unknown:
            raise OptionError(f"VAEConfig has no field {unknown[0]!r}; fields: {', '.join(self._names())}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Every field as a JSON-ready dict (the ``config`` of ``model.json``)."""
        return {name: getattr(self, name) for name in self._names()}

    @classmethod
    def from_dict(cls, data: Mapping) -> "VAEConfig":
        """The config a :meth:`to_dict` dict describes; strict about names and types.

        Args:
            data: mapping with exactly the fields of VAEConfig.

        Returns:
            The VAEConfig.

        Raises:
            ModelError: a field is unknown, missing, of the wrong type or out of range (the message
                names it).
        """
        if not isinstance(data, Mapping):
            raise ModelError(f"config must be a mapping of VAEConfig fields, got {type(data).__name__}")
        names = cls._names()
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ModelError(f"config has unknown field {unknown[0]!r} (VAEConfig fields: {', '.join(names)})")
        missing = [n for n in names if n not in data]
        if missing:
            raise ModelError(f"config lacks field {missing[0]!r}")
        for name in names:
            kind, *_, nullable = cls._RULES[name]
            v = data[name]
            ok = (v is None and nullable) or (not isinstance(v, bool) and (
                isinstance(v, numbers.Real) if kind == _FLOAT else isinstance(v, numbers.Integral)))
            if not ok:
                raise ModelError(f"config field {name!r} must be "
                                 f"{'a number' if kind == _FLOAT else 'a whole number'}, got {v!r}")
        try:
            return cls(**{n: data[n] for n in names})
        except OptionError as exc:
            raise ModelError(f"config: {exc}") from None


def _config_from_v1(config: Mapping) -> dict:
    """A format-version-1 config dict (one held-out set) as a version-2 dict: the held-out set
    was the validation set, and there was no separate test set."""
    c = dict(config)
    if "held_out_fraction" in c:
        c["validation_fraction"] = c.pop("held_out_fraction")
    c.setdefault("test_fraction", 0.0)
    c.setdefault("max_piece_frames", None)
    c.setdefault("gamma", 0.0)
    return c


#: Named configurations (as Magenta MusicVAE's CONFIG_MAP). "paper": the 2496-500-500 network of
#: the paper, beta = 1, Adam 1e-3, batch 100, DEFAULT_EPOCHS epochs, 80/10/10 split by piece.
PRESETS: dict[str, VAEConfig] = {
    "paper": VAEConfig(input_dim=2496, hidden_dim=500, latent_dim=500, beta=1.0,
                       epochs=DEFAULT_EPOCHS, batch_size=100, learning_rate=1e-3,
                       validation_fraction=0.1, test_fraction=0.1, seed=0),
}

#: The paper preset, under its old name (a read-only mapping, like the dict it replaced).
DEFAULT_CONFIG = PRESETS["paper"]


# --------------------------------------------------------------------------------------------
# Helpers on numpy arrays
# --------------------------------------------------------------------------------------------


def frames_fingerprint(frames: np.ndarray) -> str:
    """A short hash identifying a set of training frames.

    Args:
        frames: (N, frame_size) binary array (any integer or float dtype holding 0/1).

    Returns:
        16 hex digits of the SHA-256 of the shape and the frames as uint8 bytes.

    Used in: notebooks/02_vae_training.ipynb (cache check of the default model).
    """
    a = np.asarray(frames)
    return frames_digest(a.shape, [a])


def note_scores(frames: np.ndarray, predicted: np.ndarray) -> dict:
    """Precision, recall and F1 of predicted note cells against the true ones.

    Every 1-cell of a frame (a pitch sounding, or starting, at one step) counts as one note event.

    Args:
        frames: (N, D) binary truth.
        predicted: (N, D) binary prediction.

    Returns:
        dict with ``precision``, ``recall``, ``f1`` (floats in [0, 1]; 0 when undefined) and the
        counts ``true_positives``, ``predicted``, ``actual``.

    Used in: notebooks/02_vae_training.ipynb.
    """
    t = np.asarray(frames) != 0
    p = np.asarray(predicted) != 0
    tp = int(np.count_nonzero(t & p))
    n_pred, n_act = int(np.count_nonzero(p)), int(np.count_nonzero(t))
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_act if n_act else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "true_positives": tp, "predicted": n_pred, "actual": n_act}


def synthetic_frames(n: int, seed: int = 0, spec: RollSpec | None = None) -> np.ndarray:
    """Chord-like test frames: each bar holds one triad (plus octave) in a random rhythm.

    For tests, benchmarks and development only; the real corpus comes from ``corpus.load_corpus``.

    Args:
        n: number of frames.
        seed: seed of the draws.
        spec: roll layout (default RollSpec()).

    Returns:
        (n, spec.frame_size) uint8 valid frames (articulate <= play).
    """
    spec = RollSpec() if spec is None else spec
    rng = np.random.default_rng(seed)
    P, S = spec.n_pitches, spec.steps_per_frame
    f = np.zeros((n, S, 2 * P), np.uint8)
    for i in range(n):
        root = int(rng.integers(12, max(13, P - 24)))
        third = 3 if rng.random() < 0.4 else 4
        dur = int(rng.choice([2, 4, 8, 16]))
        for p in (root, root + third, root + 7, root + 12):
            if p >= P:
                continue
            for start in range(0, S, dur):
                f[i, start:start + dur, p] = 1
                f[i, start, P + p] = 1
    return f.reshape(n, -1)


# --------------------------------------------------------------------------------------------
# The Keras network
# --------------------------------------------------------------------------------------------


def _keras():
    """Import Keras (and its backend) once, without the backend's start-up chatter on stderr.

    TensorFlow >= 2.19 writes INFO lines ("oneDNN custom operations are on", "Could not find cuda
    drivers") from C++ before absl logging is initialised, so TF_CPP_MIN_LOG_LEVEL cannot silence them
    (tensorflow/tensorflow#100442), and its device discovery logs an error on CPU-only machines.
    They would land in every notebook and after every CLI command, so file descriptor 2 points at
    /dev/null for the first import and device discovery only; a Python exception raised by the
    import is still reported normally.
    """
    import sys

    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras
        if keras.backend.backend() == "tensorflow":
            import tensorflow

            # device discovery prints "failed call to cuInit" on machines without a GPU driver;
            # do it now, while muted (a GPU that works is still found and used)
            tensorflow.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return keras


def _build_networks(cfg: VAEConfig):
    """Encoder (x -> mean, logvar) and decoder (z -> logits) as Keras functional models."""
    keras = _keras()
    layers = keras.layers
    x_in = keras.Input(shape=(cfg.input_dim,), name="frames")
    h = layers.Dense(cfg.hidden_dim, activation="relu", name="enc_hidden")(x_in)
    mean = layers.Dense(cfg.latent_dim, name="enc_mean")(h)
    logvar = layers.Dense(cfg.latent_dim, name="enc_logvar")(h)
    encoder = keras.Model(x_in, [mean, logvar], name="encoder")
    z_in = keras.Input(shape=(cfg.latent_dim,), name="z")
    g = layers.Dense(cfg.hidden_dim, activation="relu", name="dec_hidden")(z_in)
    logits = layers.Dense(cfg.input_dim, name="dec_logits")(g)
    decoder = keras.Model(z_in, logits, name="decoder")
    return encoder, decoder


def _build_predictor(cfg: VAEConfig):
    """The predictor head (z -> logits of the next bar), or None when ``cfg.gamma == 0``.

    Built after the encoder and decoder, so a gamma = 0 model draws exactly the same initial
    weights as before the head existed.
    """
    if cfg.gamma == 0:
        return None
    keras = _keras()
    layers = keras.layers
    z_in = keras.Input(shape=(cfg.latent_dim,), name="z_t")
    g = layers.Dense(cfg.hidden_dim, activation="relu", name="pred_hidden")(z_in)
    logits = layers.Dense(cfg.input_dim, name="pred_logits")(g)
    return keras.Model(z_in, logits, name="predictor")


def loss_terms(encoder, decoder, x, eps):
    """Per-frame distortion and rate (nats), written with ``keras.ops``.

    Args:
        encoder, decoder: the Keras networks.
        x: (B, D) float tensor of 0/1.
        eps: (B, L) standard normal noise of the reparameterisation z = mean + exp(logvar/2) eps.

    Returns:
        (d, r): two (B,) tensors, D = sum of Bernoulli NLL over cells, R = KL(q(z|x) || N(0, I)).

    Used in: qbdi_utils.train (the training loop), tests/test_vae.py.
    """
    from keras import ops

    mean, logvar = encoder(x)
    z = mean + ops.exp(0.5 * logvar) * eps
    logits = decoder(z)
    # -log Bernoulli(x; sigmoid(l)) = softplus(l) - x l, summed over the frame's cells
    d = ops.sum(ops.softplus(logits) - x * logits, axis=-1)
    r = 0.5 * ops.sum(ops.exp(logvar) + ops.square(mean) - 1.0 - logvar, axis=-1)
    return d, r


def predictive_terms(encoder, decoder, predictor, x, y, mask, eps):
    """Per-frame distortion, rate and predictive term (nats), written with ``keras.ops``.

    Args:
        encoder, decoder, predictor: the Keras networks (predictor: z -> next-bar logits).
        x: (B, D) float tensor of 0/1, the bars x_t.
        y: (B, D) float tensor of 0/1, the next bars x_{t+1} (anything where mask is 0).
        mask: (B,) float tensor, 1 where x_t has a successor in its piece, else 0.
        eps: (B, L) standard normal noise; z_t = mean + exp(logvar/2) eps feeds both the decoder
            and the predictor.

    Returns:
        (d, r, p): three (B,) tensors; d and r as :func:`loss_terms`,
        p = mask * sum over cells of the Bernoulli NLL of y under the predictor's logits.

    Used in: qbdi_utils.train (gamma > 0), tests/test_vae_predictive.py.
    """
    from keras import ops

    mean, logvar = encoder(x)
    z = mean + ops.exp(0.5 * logvar) * eps
    logits = decoder(z)
    d = ops.sum(ops.softplus(logits) - x * logits, axis=-1)
    r = 0.5 * ops.sum(ops.exp(logvar) + ops.square(mean) - 1.0 - logvar, axis=-1)
    q = predictor(z)
    p = mask * ops.sum(ops.softplus(q) - y * q, axis=-1)
    return d, r, p


# --------------------------------------------------------------------------------------------
# The model object
# --------------------------------------------------------------------------------------------


class StyleVAE:
    """A trained style VAE: encode bars to latent states, decode latent states to bars.

    Attributes:
        spec: the roll layout of the frames the model reads and writes.
        config: the :class:`VAEConfig` (sizes, beta, epochs, batch size, learning rate, split,
            seed); also readable as a mapping, ``model.config["latent_dim"]``.
        latent_dim: L, the number of latent components.
        threshold: decoding threshold chosen on the validation pieces (maximum note F1 of the
            outputs as written, i.e. after ``pianoroll.binarize``).
        corpus_stats: {"mean": (L,), "var": (L,)} float64, mean and variance over the training
            corpus of the latent means (the channel's "corpus" source statistics).
        fingerprint: :func:`frames_fingerprint` of the training corpus.
        info: facts about the training run: ``validation_*`` and ``test_*`` R, D, loss (nats per
            frame), precision, recall, F1; ``held_out_*`` = the test numbers (older name); sizes
            ``n_train``, ``n_validation``, ``n_test``; wall time, backend, per-epoch history.
        from_cache: True when ``train.default_model`` loaded it instead of training it.

    Used in: notebooks/02_vae_training.ipynb and every later notebook.
    """

    def __init__(self, encoder, decoder, *, spec: RollSpec, config: VAEConfig | Mapping,
                 threshold: float = 0.5, corpus_stats: dict | None = None, fingerprint: str = "",
                 info: dict | None = None, predictor=None):
        self._encoder = encoder
        self._decoder = decoder
        self._predictor = predictor
        self.spec = spec
        self.config = config if isinstance(config, VAEConfig) else VAEConfig.from_dict(config)
        self.threshold = float(threshold)
        L = self.config.latent_dim
        self.corpus_stats = corpus_stats or {"mean": np.zeros(L), "var": np.ones(L)}
        self.fingerprint = fingerprint
        self.info = dict(info or {})
        self.from_cache = False  # set by default_model(): loaded rather than trained
        if (self._predictor is None) != (self.config.gamma == 0):
            raise ValueError(f"a predictor head goes with gamma > 0 (gamma={self.config.gamma}, "
                             f"head {'absent' if predictor is None else 'present'})")

    @property
    def latent_dim(self) -> int:
        """Number of latent components L."""
        return self.config.latent_dim

    def __repr__(self) -> str:
        c = self.config
        return (f"StyleVAE({c.input_dim}->{c.hidden_dim}->{c.latent_dim}, beta={c.beta}, "
                + (f"gamma={c.gamma}, predictor {c.latent_dim}->{c.hidden_dim}->{c.input_dim}, "
                   if self.has_predictor else "")
                + f"threshold={self.threshold:.2f}, fingerprint={self.fingerprint!r})")

    @property
    def has_predictor(self) -> bool:
        """True for a model trained with gamma > 0 (it carries a next-bar predictor head)."""
        return self._predictor is not None

    # -- numpy in, numpy out --------------------------------------------------------------------

    def _run(self, net, x: np.ndarray, batch: int):
        keras = _keras()
        outs = []
        for i in range(0, max(len(x), 1), batch):
            chunk = x[i:i + batch]
            y = net(chunk, training=False)
            y = y if isinstance(y, (list, tuple)) else [y]
            outs.append([keras.ops.convert_to_numpy(t).astype(np.float32) for t in y])
        return [np.concatenate(parts, axis=0) for parts in zip(*outs)]

    def _check(self, a: np.ndarray, width: int, what: str) -> np.ndarray:
        a = np.asarray(a, dtype=np.float32)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != width:
            raise OptionError(f"{what} must have shape (N, {width}), got {np.shape(a)}")
        return a

    def encode(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior parameters of each frame.

        Args:
            frames: (N, frame_size) binary frames (uint8 or float).

        Returns:
            (mean (N, L) float32, logvar (N, L) float32) of q(z | x).
        """
        x = self._check(frames, self.config.input_dim, "frames")
        if len(x) == 0:
            L = self.latent_dim
            return np.zeros((0, L), np.float32), np.zeros((0, L), np.float32)
        mean, logvar = self._run(self._encoder, x, _ENCODE_BATCH)
        return mean, logvar

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Bernoulli probabilities of every cell given latent states.

        Args:
            z: (N, L) latent states.

        Returns:
            (N, frame_size) float32 probabilities in [0, 1].
        """
        z = self._check(z, self.latent_dim, "z")
        if len(z) == 0:
            return np.zeros((0, self.config.input_dim), np.float32)
        (logits,) = self._run(self._decoder, z, _ENCODE_BATCH)
        return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)

    def decode_logits(self, z: np.ndarray) -> np.ndarray:
        """Decoder logits (N, frame_size) float32 for latent states z (N, L)."""
        z = self._check(z, self.latent_dim, "z")
        (logits,) = self._run(self._decoder, z, _ENCODE_BATCH)
        return logits

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Free improvisation (paper experiment (a)): decode n latent states drawn from N(0, I).

        Args:
            n: number of frames.
            seed: seed of the latent draws.

        Returns:
            (n, frame_size) float32 probabilities.
        """
        z = np.random.default_rng(seed).standard_normal((int(n), self.latent_dim)).astype(np.float32)
        return self.decode(z)

    def reconstruct(self, frames: np.ndarray) -> np.ndarray:
        """Decode the posterior means of frames: (N, frame_size) -> (N, frame_size) probabilities."""
        return self.decode(self.encode(frames)[0])

    def binarize(self, probabilities: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """Threshold probabilities (default: the model's threshold) into uint8 frames."""
        th = self.threshold if threshold is None else float(threshold)
        return (np.asarray(probabilities) >= th).astype(np.uint8)

    def rate_distortion(self, frames: np.ndarray, *, seed: int | None = 0) -> dict:
        """Average distortion and rate over frames, in nats per frame.

        Args:
            frames: (N, frame_size) binary frames.
            seed: seed of the reparameterisation noise (z = mean + std eps); None decodes the
                posterior mean (z = mean) instead of a sample.

        Returns:
            dict with ``d_nats``, ``r_nats``, ``loss_nats`` (= d + beta r) and ``elbo_nats`` (= -(d + r)).
        """
        x = self._check(frames, self.config.input_dim, "frames")
        mean, logvar = self.encode(x)
        if seed is None:
            z = mean
        else:
            eps = np.random.default_rng(seed).standard_normal(mean.shape).astype(np.float32)
            z = mean + np.exp(0.5 * logvar) * eps
        logits = self.decode_logits(z).astype(np.float64)
        d = np.sum(np.logaddexp(0.0, logits) - x * logits, axis=1)
        r = 0.5 * np.sum(np.exp(logvar) + mean.astype(np.float64) ** 2 - 1.0 - logvar, axis=1)
        d_m, r_m = float(d.mean()), float(r.mean())
        return {"d_nats": d_m, "r_nats": r_m, "loss_nats": d_m + float(self.config.beta) * r_m,
                "elbo_nats": -(d_m + r_m)}

    def predict_next(self, z: np.ndarray) -> np.ndarray:
        """The predictor head's Bernoulli probabilities of the next bar given latent states.

        Args:
            z: (N, L) latent states z_t.

        Returns:
            (N, frame_size) float32 probabilities q(x_{t+1} | z_t).

        Raises:
            ModelError: the model has no predictor head (it was trained with gamma = 0).

        Used in: qbdi_utils.predictive, tests/test_vae_predictive.py.
        """
        if self._predictor is None:
            raise ModelError("this model has no predictor head (trained with gamma = 0); train one "
                             "with `qbdi train --gamma G` (G > 0)")
        z = self._check(z, self.latent_dim, "z")
        if len(z) == 0:
            return np.zeros((0, self.config.input_dim), np.float32)
        (logits,) = self._run(self._predictor, z, _ENCODE_BATCH)
        return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)

    def get_weights(self) -> list[np.ndarray]:
        """Encoder, decoder, then predictor-head weights as numpy arrays (kernel (in, out), bias (out,))."""
        nets = [self._encoder, self._decoder] + ([self._predictor] if self._predictor is not None else [])
        return [np.asarray(w) for net in nets for w in net.get_weights()]

    # -- persistence ----------------------------------------------------------------------------

    def save(self, directory: str | Path, *, force: bool = False,
             extra: Callable[[Path], object] | None = None) -> Path:
        """Write the model directory (``model.json``, ``weights.npz``) atomically as a whole.

        The complete directory is staged beside ``directory`` and swapped in
        (:func:`qbdi_utils.files.replacing_dir`), so at every instant ``directory`` holds the whole
        old model or the whole new one; a failed save leaves the old one untouched.

        Args:
            directory: the model directory to create (an existing empty folder is fine).
            force: replace an existing non-empty directory (its old files all go).
            extra: optional ``extra(stage)`` that writes further files into the staging folder
                ``stage`` (a Path), so they appear together with the model (``qbdi train`` writes
                skipped.csv this way).

        Returns:
            The directory as a Path.

        Raises:
            OutputExistsError: ``directory`` exists, is not empty, and ``force`` is false.
            FileSystemError: a file-system fault (disk full, file-size limit, permission, a file
                where the folder should be); the old directory is then unchanged.
            ModelError: a weight is not finite (NaN or infinity), so the model would be useless.

        Used in: ``qbdi train``, :func:`qbdi_utils.train.cached_model`, tests/conftest.py.
        """
        d = Path(directory)
        weights = self.get_weights()
        for i, w in enumerate(weights):
            if not np.all(np.isfinite(w)):
                raise ModelError(f"refusing to save: weight array w{i:02d} holds NaN or infinite "
                                 "values (training diverged)", d)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "spec": self.spec.to_dict(),
            "config": self.config.to_dict(),
            "threshold": self.threshold,
            "fingerprint": self.fingerprint,
            "corpus_stats": {k: np.asarray(v, dtype=float).tolist() for k, v in self.corpus_stats.items()},
            "info": self.info,
        }
        text = json.dumps(meta, indent=1)
        with files.replacing_dir(d, force=force) as stage:
            name = WEIGHTS_FILE
            try:
                np.savez(stage / WEIGHTS_FILE, **{f"w{i:02d}": w for i, w in enumerate(weights)})
                name = MODEL_FILE
                (stage / MODEL_FILE).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise files.fs_error(exc, d / name) from None
            if extra is not None:
                extra(stage)
        return d

    @classmethod
    def load(cls, directory: str | Path, spec: RollSpec | None = None) -> "StyleVAE":
        """Read a model written by :meth:`save`, checking ``model.json`` against its schema.

        Args:
            directory: the model directory.
            spec: the roll layout the caller works in (default: the paper's RollSpec()); a model
                saved with another layout is refused.

        Returns:
            The model.

        Raises:
            ModelError: the directory is missing, is not a model directory, or is corrupt: invalid
                JSON, a model.json that is not an object, a field of the wrong type or out of range
                (``config`` fields, ``threshold`` outside (0, 1), corpus statistics of the wrong
                length or not finite), weights missing, unreadable, of shapes that do not match the
                configuration, or not finite; or a model for another roll layout. The message
                names the directory and the field.
            FileSystemError: model.json or weights.npz cannot be read (permission, I/O error).
        """
        d = Path(directory)
        spec = RollSpec() if spec is None else spec
        if not d.is_dir():
            raise ModelError("no such model directory; train one with `qbdi train --out DIR`", d)
        meta_path = d / MODEL_FILE
        if not meta_path.is_file():
            raise ModelError(f"not a model directory (no {MODEL_FILE}); give the directory "
                             "written by `qbdi train --out`", d)
        retrain = "retrain it with `qbdi train --force`"

        def corrupt(what: str) -> ModelError:
            return ModelError(f"corrupt model directory: {MODEL_FILE} {what}; {retrain}", d)

        try:
            raw = meta_path.read_bytes()
        except OSError as exc:
            raise files.fs_error(exc, meta_path, "read") from None
        try:
            meta = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
            raise corrupt(f"is not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise corrupt(f"must hold a JSON object, not a JSON {_json_kind(meta)}")
        if meta.get("format") != FORMAT:
            raise corrupt(f"is unreadable (format is {meta.get('format')!r}, not {FORMAT!r})")
        version = meta.get("format_version", 0)
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise corrupt(f"field 'format_version' must be a whole number >= 0, got {version!r}")
        if version > FORMAT_VERSION:
            raise ModelError(f"model format version {version} is newer than this "
                             f"qbdi understands ({FORMAT_VERSION}); update qbdi", d)
        for key in ("spec", "config", "threshold", "corpus_stats", "fingerprint"):
            if key not in meta:
                raise corrupt(f"lacks field {key!r}")
        try:
            if not isinstance(meta["spec"], dict):
                raise TypeError(f"must be an object, got {meta['spec']!r}")
            saved_spec = RollSpec.from_dict(meta["spec"])
        except (ValueError, KeyError, TypeError, OptionError) as exc:
            raise corrupt(f"field 'spec' is invalid ({exc})") from None
        config = meta["config"]
        if not isinstance(config, dict):
            raise corrupt(f"field 'config' must be an object, got {_json_kind(config)}")
        if version <= 1:
            config = _config_from_v1(config)
        try:
            config = VAEConfig.from_dict(config)
        except ModelError as exc:
            raise corrupt(f"is invalid: {exc}") from None
        threshold = meta["threshold"]
        if (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                or not 0.0 < threshold < 1.0):
            raise corrupt(f"field 'threshold' must be a number strictly between 0 and 1 "
                          f"(the decoding threshold chosen in training), got {threshold!r}")
        threshold = float(threshold)
        fingerprint = meta["fingerprint"]
        if not isinstance(fingerprint, str):
            raise corrupt(f"field 'fingerprint' must be a string, got {fingerprint!r}")
        info = meta.get("info", {})
        if not isinstance(info, dict):
            raise corrupt(f"field 'info' must be an object, got {_json_kind(info)}")
        L = config.latent_dim
        raw_stats = meta["corpus_stats"]
        if not isinstance(raw_stats, dict):
            raise corrupt(f"field 'corpus_stats' must be an object, got {_json_kind(raw_stats)}")
        stats = {}
        for k in ("mean", "var"):
            v = raw_stats.get(k)
            ok = isinstance(v, list) and len(v) == L and all(
                isinstance(e, (int, float)) and not isinstance(e, bool) for e in v)
            if not ok:
                raise corrupt(f"field 'corpus_stats.{k}' must be a list of {L} numbers "
                              f"(latent_dim); corpus statistics do not have {L} components")
            a = np.asarray(v, dtype=float)
            if not np.all(np.isfinite(a)) or (k == "var" and np.any(a < 0)):
                raise corrupt(f"field 'corpus_stats.{k}' holds "
                              + ("negative variances" if np.all(np.isfinite(a)) else "NaN or infinite values"))
            stats[k] = a
        if saved_spec != spec:
            raise ModelError(f"model was trained for another roll layout ({saved_spec.to_dict()}), "
                             f"not {spec.to_dict()}; train a model for this layout", d)
        if config.input_dim != spec.frame_size:
            raise ModelError(f"corrupt model directory: input size {config.input_dim} does not "
                             f"match the roll layout's frame size {spec.frame_size}", d)
        # expected shapes from the configuration, checked before any network is built (a huge
        # latent_dim in a damaged file must not allocate gigabytes)
        expected = _weight_shapes(config)
        # each member's header is checked against these shapes before its data are expanded
        weights = list(limits.read_npz(d / WEIGHTS_FILE, {f"w{i:02d}": s for i, s in enumerate(expected)},
                                       fix="retrain with `qbdi train --force`", where=d).values())
        for i, w in enumerate(weights):
            if not np.issubdtype(w.dtype, np.floating):
                raise ModelError(f"corrupt model directory: {WEIGHTS_FILE} array w{i:02d} has dtype "
                                 f"{w.dtype}, not floating point; {retrain}", d)
            if not np.all(np.isfinite(w)):
                raise ModelError(f"corrupt model directory: {WEIGHTS_FILE} array w{i:02d} holds NaN "
                                 f"or infinite values; {retrain}", d)
        encoder, decoder = _build_networks(config)
        predictor = _build_predictor(config)
        nets = [encoder, decoder] + ([predictor] if predictor is not None else [])
        built = [tuple(w.shape) for net in nets for w in net.weights]
        if built != expected:  # pragma: no cover - _weight_shapes mirrors _build_networks
            raise AssertionError(f"_weight_shapes {expected} != built {built}")
        start = 0
        for net in nets:
            net.set_weights(weights[start:start + len(net.weights)])
            start += len(net.weights)
        return cls(encoder, decoder, spec=spec, config=config, threshold=threshold,
                   corpus_stats=stats, fingerprint=fingerprint, info=info,
                   predictor=predictor)


def _json_kind(v) -> str:
    """The JSON type name of a parsed value ("list", "string", ...)."""
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null", dict: "object"}.get(type(v), type(v).__name__)


def _weight_shapes(cfg: VAEConfig) -> list[tuple[int, ...]]:
    """Shapes of :meth:`StyleVAE.get_weights` for a config, in order (mirrors :func:`_build_networks`)."""
    n, h, L = cfg.input_dim, cfg.hidden_dim, cfg.latent_dim
    shapes = [(n, h), (h,), (h, L), (L,), (h, L), (L,),   # encoder: hidden, mean, logvar
              (L, h), (h,), (h, n), (n,)]                 # decoder: hidden, logits
    if cfg.gamma > 0:
        shapes += [(L, h), (h,), (h, n), (n,)]            # predictor head
    return shapes


# --------------------------------------------------------------------------------------------
# Names that moved to qbdi_utils.train
# --------------------------------------------------------------------------------------------

_MOVED_TO_TRAIN = frozenset({
    "train", "default_model", "default_model_dir", "cached_model", "split_held_out", "split_pieces",
    "choose_threshold", "_make_trainer", "_fit_function", "_seed_everything", "_FIT_DEFAULTS",
    "_THRESHOLD_GRID", "_TqdmEpochs", "binarize_by_piece",
})


def __getattr__(name: str):
    """``qbdi_utils.vae.train`` (and the other training names) for notebooks and users written
    before the training loop moved to :mod:`qbdi_utils.train`.

    The package's one function-internal import of its own module: train imports this module at
    its top, so this module can only reach train lazily.
    """
    if name in _MOVED_TO_TRAIN:
        from qbdi_utils import train as _train

        return getattr(_train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
