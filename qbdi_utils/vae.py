"""The style model: a Keras 3 variational autoencoder over piano-roll frames (PAPER.md section 3).

Notebook 02 trains it and reads it on the rate-distortion plane; notebooks 03-05 and the CLI query
it through :func:`default_model`.

Model (sizes configurable, defaults = the paper)::

    encoder  x (2496, binary) -> Dense 500 ReLU -> mean (500), log-variance (500)
    decoder  z (500)          -> Dense 500 ReLU -> 2496 logits -> sigmoid = Bernoulli probabilities

Loss per frame (nats) = D + beta * R with
    D = -log p(x | z), z = mean + exp(logvar / 2) * eps, eps ~ N(0, I)   (distortion: the summed
        Bernoulli negative log-likelihood over the 2496 cells)
    R = KL(q(z | x) || N(0, I)) = 1/2 sum(exp(logvar) + mean^2 - 1 - logvar)   (rate)
so with beta = 1 the loss is the negative ELBO, R + D (Alemi et al. 2018).

The network is written with ``keras.ops`` only, so any Keras backend runs it; TensorFlow is the
default (``KERAS_BACKEND`` selects another before Keras is first imported). Keras is imported on
first use, not when this module is imported.

A trained model is a :class:`StyleVAE`: ``encode``, ``decode``, ``sample``, ``reconstruct`` on numpy
arrays, ``save``/``load`` of a directory holding ``model.json`` (format, roll layout, training
configuration, fingerprint of the training frames, decoding threshold, corpus statistics of the
latent means) and ``weights.npz``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from pathlib import Path

import numpy as np

from qbdi_utils.errors import ModelError, OptionError
from qbdi_utils.pianoroll import RollSpec

FORMAT = "qbdi-style-vae"
FORMAT_VERSION = 1
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"

#: Epochs of the default training. Chosen from a 200-epoch run on the default corpus (5,963 bars,
#: seed 0, Adam 1e-3, batch 100): held-out loss falls to 116.0 nats/frame by epoch 91, is lowest
#: (115.4) at epoch 102, stays within 1 % of that to epoch 130 and then rises (129 at epoch 200) as
#: the network memorises the training bars. A learning rate of 3e-3 bottoms out earlier (epoch 48)
#: but much higher (139), so the paper's Adam default stays. See notebooks/02_vae_training.ipynb.
DEFAULT_EPOCHS = 100

#: Training configuration of the paper's model (and of :func:`default_model`).
DEFAULT_CONFIG: dict = {
    "input_dim": 2496,
    "hidden_dim": 500,
    "latent_dim": 500,
    "beta": 1.0,
    "epochs": DEFAULT_EPOCHS,
    "batch_size": 100,
    "learning_rate": 1e-3,
    "held_out_fraction": 0.1,
    "seed": 0,
}

# Settings that change speed, not the model; kept out of the configuration used for matching.
_FIT_DEFAULTS = {"jit_compile": "auto", "steps_per_execution": 32, "loop": "auto"}

_THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
_ENCODE_BATCH = 4096


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
    a = np.ascontiguousarray(np.asarray(frames) != 0, dtype=np.uint8)
    h = hashlib.sha256(repr(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()[:16]


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


def choose_threshold(frames: np.ndarray, probabilities: np.ndarray,
                     grid: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The decoding threshold that maximises note F1 (ties: the lowest such threshold).

    Args:
        frames: (N, D) binary truth (held-out frames).
        probabilities: (N, D) decoder probabilities for the same frames.
        grid: candidate thresholds (default 0.05, 0.06, ..., 0.95).

    Returns:
        (threshold, f1 per grid point (len(grid),)).

    Used in: notebooks/02_vae_training.ipynb.
    """
    grid = _THRESHOLD_GRID if grid is None else np.asarray(grid, dtype=float)
    t = np.asarray(frames) != 0
    p = np.asarray(probabilities, dtype=np.float32)
    n_act = np.count_nonzero(t)
    # Histogram the probabilities of true and of all cells once; F1 at every threshold from counts.
    edges = np.concatenate([[-np.inf], grid, [np.inf]])
    all_counts = np.histogram(p, bins=edges)[0]
    true_counts = np.histogram(p[t], bins=edges)[0]
    # cells with p >= grid[k] fall in bins k+1 .. end
    n_pred = np.cumsum(all_counts[::-1])[::-1][1:]
    tp = np.cumsum(true_counts[::-1])[::-1][1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(n_pred > 0, tp / np.maximum(n_pred, 1), 0.0)
        rec = tp / n_act if n_act else np.zeros_like(prec)
        f1 = np.where(prec + rec > 0, 2 * prec * rec / np.maximum(prec + rec, 1e-300), 0.0)
    return float(grid[int(np.argmax(f1))]), f1.astype(float)


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


def split_held_out(n: int, fraction: float, seed: int,
                   groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and held-out frames.

    With ``groups`` (e.g. a corpus's ``piece_index``), whole groups are held out, so bars of one
    piece (and its transpositions) never sit on both sides.

    Args:
        n: number of frames.
        fraction: share of frames (or groups) held out, in (0, 1).
        seed: seed of the permutation.
        groups: (n,) int group label per frame, or None.

    Returns:
        (train_idx, held_idx), sorted int arrays partitioning range(n); neither is empty for n >= 2.
    """
    if not 0.0 < fraction < 1.0:
        raise OptionError(f"held_out_fraction must be in (0, 1), got {fraction}")
    if n < 2:
        raise OptionError(f"need at least 2 frames to hold some out, got {n}")
    rng = np.random.default_rng(seed)
    if groups is not None:
        groups = np.asarray(groups)
        labels = np.unique(groups)
        if len(labels) >= 2:
            perm = rng.permutation(labels)
            n_held = min(len(labels) - 1, max(1, int(round(fraction * len(labels)))))
            held = np.isin(groups, perm[:n_held])
            return np.flatnonzero(~held), np.flatnonzero(held)
    perm = rng.permutation(n)
    n_held = min(n - 1, max(1, int(round(fraction * n))))
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


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


def _build_networks(cfg: dict):
    """Encoder (x -> mean, logvar) and decoder (z -> logits) as Keras functional models."""
    keras = _keras()
    layers, ops = keras.layers, keras.ops
    x_in = keras.Input(shape=(cfg["input_dim"],), name="frames")
    h = layers.Dense(cfg["hidden_dim"], activation="relu", name="enc_hidden")(x_in)
    mean = layers.Dense(cfg["latent_dim"], name="enc_mean")(h)
    logvar = layers.Dense(cfg["latent_dim"], name="enc_logvar")(h)
    encoder = keras.Model(x_in, [mean, logvar], name="encoder")
    z_in = keras.Input(shape=(cfg["latent_dim"],), name="z")
    g = layers.Dense(cfg["hidden_dim"], activation="relu", name="dec_hidden")(z_in)
    logits = layers.Dense(cfg["input_dim"], name="dec_logits")(g)
    decoder = keras.Model(z_in, logits, name="decoder")
    del ops
    return encoder, decoder


def loss_terms(encoder, decoder, x, eps):
    """Per-frame distortion and rate (nats), written with ``keras.ops``.

    Args:
        encoder, decoder: the Keras networks.
        x: (B, D) float tensor of 0/1.
        eps: (B, L) standard normal noise of the reparameterisation z = mean + exp(logvar/2) eps.

    Returns:
        (d, r): two (B,) tensors, D = sum of Bernoulli NLL over cells, R = KL(q(z|x) || N(0, I)).
    """
    from keras import ops

    mean, logvar = encoder(x)
    z = mean + ops.exp(0.5 * logvar) * eps
    logits = decoder(z)
    # -log Bernoulli(x; sigmoid(l)) = softplus(l) - x l, summed over the frame's cells
    d = ops.sum(ops.softplus(logits) - x * logits, axis=-1)
    r = 0.5 * ops.sum(ops.exp(logvar) + ops.square(mean) - 1.0 - logvar, axis=-1)
    return d, r


def _make_trainer(cfg: dict, seed: int, fit_opts: dict | None = None):
    """A compiled Keras model whose output is (B, 2) = [D, R] per frame and whose loss is D + beta R."""
    keras = _keras()
    ops = keras.ops
    fit_opts = {**_FIT_DEFAULTS, **(fit_opts or {})}
    encoder, decoder = _build_networks(cfg)
    beta = float(cfg["beta"])
    latent_dim = int(cfg["latent_dim"])

    class _Trainer(keras.Model):
        def __init__(self):
            super().__init__(name="style_vae_trainer")
            self.encoder = encoder
            self.decoder = decoder
            self.noise = keras.random.SeedGenerator(seed)

        def call(self, x, training=False):
            x = ops.cast(x, "float32")
            eps = keras.random.normal((ops.shape(x)[0], latent_dim), seed=self.noise)
            d, r = loss_terms(self.encoder, self.decoder, x, eps)
            return ops.stack([d, r], axis=-1)

    def loss(y_true, y_pred):  # y_true is a dummy: the target is the input itself
        return y_pred[:, 0] + beta * y_pred[:, 1]

    def d_nats(y_true, y_pred):
        return y_pred[:, 0]

    def r_nats(y_true, y_pred):
        return y_pred[:, 1]

    trainer = _Trainer()
    trainer.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(cfg["learning_rate"])),
        loss=loss,
        metrics=[d_nats, r_nats],
        jit_compile=fit_opts["jit_compile"],
        steps_per_execution=int(fit_opts["steps_per_execution"]),
    )
    trainer(np.zeros((1, cfg["input_dim"]), np.float32))  # build the weights
    return trainer


def _fit_function(trainer, x_tr: np.ndarray, cfg: dict, x_ho: np.ndarray | None = None,
                  callbacks=(), fit_options: dict | None = None):
    """The project's training loop: returns ``fit(epochs) -> history dict`` over in-memory frames.

    On the TensorFlow backend (unless ``fit_options["loop"] == "keras"``) each epoch is one
    ``tf.function`` looping over shuffled in-memory batches, with the Adam step compiled by XLA; this
    runs about twice as fast as ``Model.fit`` on two CPU cores (benchmarks/bench_train.py). Other
    backends use ``Model.fit`` with ``steps_per_execution``. Both give per-epoch ``loss``,
    ``d_nats``, ``r_nats`` and, with held-out frames, ``val_*`` of the same, in nats per frame.
    ``callbacks`` are Keras callbacks; only ``on_train_begin``, ``on_epoch_end(epoch, logs)`` and
    ``on_train_end`` are called on the fast path.
    """
    opts = {**_FIT_DEFAULTS, **(fit_options or {})}
    keras = _keras()
    x_tr = np.asarray(x_tr, dtype=np.float32)
    if keras.backend.backend() == "tensorflow" and opts.get("loop", "auto") != "keras":
        return _tf_fit_function(trainer, x_tr, cfg, x_ho, callbacks, opts)
    y_tr = np.zeros((len(x_tr), 1), np.float32)
    val = None
    if x_ho is not None:
        val = (np.asarray(x_ho, dtype=np.float32), np.zeros((len(x_ho), 1), np.float32))

    def fit(epochs: int) -> dict:
        return trainer.fit(x_tr, y_tr, batch_size=int(cfg["batch_size"]), epochs=int(epochs),
                           validation_data=val, shuffle=True, verbose=0,
                           callbacks=list(callbacks)).history

    return fit


def _tf_fit_function(trainer, x_tr, cfg, x_ho, callbacks, opts):
    """TensorFlow fast path of :func:`_fit_function` (whole epoch in one graph, XLA step)."""
    _keras()
    import tensorflow as tf

    jit = opts["jit_compile"] in (True, "auto")
    enc, dec, opt = trainer.encoder, trainer.decoder, trainer.optimizer
    variables = enc.trainable_variables + dec.trainable_variables
    opt.build(variables)
    B, L, beta = int(cfg["batch_size"]), int(cfg["latent_dim"]), float(cfg["beta"])
    gen = tf.random.Generator.from_seed(int(cfg["seed"]))
    x_t = tf.constant(x_tr)
    x_v = None if x_ho is None or len(x_ho) == 0 else np.asarray(x_ho, dtype=np.float32)

    @tf.function(jit_compile=jit, reduce_retracing=True)
    def step(xb, eps):
        with tf.GradientTape() as tape:
            d, r = loss_terms(enc, dec, xb, eps)
            loss = tf.reduce_mean(d + beta * r)
        opt.apply(tape.gradient(loss, variables), variables)
        return tf.reduce_sum(d), tf.reduce_sum(r)

    @tf.function(jit_compile=jit, reduce_retracing=True)
    def sums(xb, eps):
        d, r = loss_terms(enc, dec, xb, eps)
        return tf.reduce_sum(d), tf.reduce_sum(r)

    @tf.function
    def epoch(x):
        n = tf.shape(x)[0]
        perm = tf.argsort(gen.uniform([n]))
        sd, sr = tf.constant(0.0), tf.constant(0.0)
        for i in tf.range((n + B - 1) // B):
            xb = tf.gather(x, perm[i * B:tf.minimum((i + 1) * B, n)])
            d, r = step(xb, gen.normal([tf.shape(xb)[0], L]))
            sd += d
            sr += r
        nf = tf.cast(n, tf.float32)
        return sd / nf, sr / nf

    def evaluate(x):
        sd = sr = 0.0
        for i in range(0, len(x), 1000):
            xb = tf.constant(x[i:i + 1000])
            d, r = sums(xb, gen.normal([xb.shape[0], L]))
            sd, sr = sd + float(d), sr + float(r)
        return sd / len(x), sr / len(x)

    history: dict = {}

    def fit(epochs: int) -> dict:
        for cb in callbacks:
            cb.on_train_begin()
        for e in range(int(epochs)):
            d, r = (float(v) for v in epoch(x_t))
            logs = {"loss": d + beta * r, "d_nats": d, "r_nats": r}
            if x_v is not None:
                vd, vr = evaluate(x_v)
                logs.update(val_loss=vd + beta * vr, val_d_nats=vd, val_r_nats=vr)
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            for cb in callbacks:
                cb.on_epoch_end(e, logs)
        for cb in callbacks:
            cb.on_train_end()
        return history

    return fit


def _seed_everything(seed: int) -> None:
    keras = _keras()
    keras.utils.set_random_seed(int(seed))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


# --------------------------------------------------------------------------------------------
# The model object
# --------------------------------------------------------------------------------------------


class StyleVAE:
    """A trained style VAE: encode bars to latent states, decode latent states to bars.

    Attributes:
        spec: the roll layout of the frames the model reads and writes.
        config: training configuration (sizes, beta, epochs, batch size, learning rate, seed, ...).
        latent_dim: L, the number of latent components.
        threshold: decoding threshold chosen on held-out frames (maximum note F1).
        corpus_stats: {"mean": (L,), "var": (L,)} float64, mean and variance over the training
            corpus of the latent means (the channel's "corpus" source statistics).
        fingerprint: :func:`frames_fingerprint` of the training corpus.
        info: free-form facts about the training run (held-out R, D, F1, wall time, backend,
            per-epoch history).
        from_cache: True when :func:`default_model` loaded it instead of training it.

    Used in: notebooks/02_vae_training.ipynb and every later notebook.
    """

    def __init__(self, encoder, decoder, *, spec: RollSpec, config: dict, threshold: float = 0.5,
                 corpus_stats: dict | None = None, fingerprint: str = "", info: dict | None = None):
        self._encoder = encoder
        self._decoder = decoder
        self.spec = spec
        self.config = dict(config)
        self.threshold = float(threshold)
        L = int(config["latent_dim"])
        self.corpus_stats = corpus_stats or {"mean": np.zeros(L), "var": np.ones(L)}
        self.fingerprint = fingerprint
        self.info = dict(info or {})
        self.from_cache = False  # set by default_model(): loaded rather than trained

    @property
    def latent_dim(self) -> int:
        """Number of latent components L."""
        return int(self.config["latent_dim"])

    def __repr__(self) -> str:
        c = self.config
        return (f"StyleVAE({c['input_dim']}->{c['hidden_dim']}->{c['latent_dim']}, beta={c['beta']}, "
                f"threshold={self.threshold:.2f}, fingerprint={self.fingerprint!r})")

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
        x = self._check(frames, self.config["input_dim"], "frames")
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
            return np.zeros((0, self.config["input_dim"]), np.float32)
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
        x = self._check(frames, self.config["input_dim"], "frames")
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
        return {"d_nats": d_m, "r_nats": r_m, "loss_nats": d_m + float(self.config["beta"]) * r_m,
                "elbo_nats": -(d_m + r_m)}

    def get_weights(self) -> list[np.ndarray]:
        """Encoder then decoder weights as numpy arrays (kernel (in, out), bias (out,) per layer)."""
        return [np.asarray(w) for w in self._encoder.get_weights() + self._decoder.get_weights()]

    # -- persistence ----------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write ``model.json`` and ``weights.npz`` into directory (created if needed).

        Args:
            directory: target directory; existing model files in it are replaced.

        Returns:
            The directory as a Path.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        weights = self.get_weights()
        np.savez(d / WEIGHTS_FILE, **{f"w{i:02d}": w for i, w in enumerate(weights)})
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "spec": self.spec.to_dict(),
            "config": self.config,
            "threshold": self.threshold,
            "fingerprint": self.fingerprint,
            "corpus_stats": {k: np.asarray(v, dtype=float).tolist() for k, v in self.corpus_stats.items()},
            "info": self.info,
        }
        (d / MODEL_FILE).write_text(json.dumps(meta, indent=1))
        return d

    @classmethod
    def load(cls, directory: str | Path, spec: RollSpec | None = None) -> "StyleVAE":
        """Read a model written by :meth:`save`.

        Args:
            directory: the model directory.
            spec: the roll layout the caller works in (default: the paper's RollSpec()); a model
                saved with another layout is refused.

        Returns:
            The model.

        Raises:
            ModelError: the directory is missing, is not a model directory, is corrupt (unreadable
                metadata or weights, wrong shapes), or holds a model for another roll layout.
        """
        d = Path(directory)
        spec = RollSpec() if spec is None else spec
        if not d.is_dir():
            raise ModelError("no such model directory; train one with `qbdi train --out DIR`", d)
        meta_path = d / MODEL_FILE
        if not meta_path.is_file():
            raise ModelError(f"not a model directory (no {MODEL_FILE}); give the directory "
                             "written by `qbdi train --out`", d)
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != FORMAT:
                raise ValueError(f"format is {meta.get('format')!r}, not {FORMAT!r}")
            saved_spec = RollSpec.from_dict(meta["spec"])
            config = dict(meta["config"])
            threshold = float(meta["threshold"])
            stats = {k: np.asarray(meta["corpus_stats"][k], dtype=float) for k in ("mean", "var")}
            fingerprint = str(meta["fingerprint"])
            for key in ("input_dim", "hidden_dim", "latent_dim", "beta"):
                config[key]  # noqa: B018 - presence check
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"corrupt model directory: {MODEL_FILE} is unreadable ({exc}); "
                             "retrain it with `qbdi train --force`", d) from None
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise ModelError(f"model format version {meta.get('format_version')} is newer than this "
                             f"qbdi understands ({FORMAT_VERSION}); update qbdi", d)
        if saved_spec != spec:
            raise ModelError(f"model was trained for another roll layout ({saved_spec.to_dict()}), "
                             f"not {spec.to_dict()}; train a model for this layout", d)
        if config["input_dim"] != spec.frame_size:
            raise ModelError(f"corrupt model directory: input size {config['input_dim']} does not "
                             f"match the roll layout's frame size {spec.frame_size}", d)
        encoder, decoder = _build_networks(config)
        expected = [tuple(w.shape) for w in encoder.weights + decoder.weights]
        try:
            with np.load(d / WEIGHTS_FILE) as npz:
                weights = [npz[f"w{i:02d}"] for i in range(len(expected))]
        except FileNotFoundError:
            raise ModelError(f"corrupt model directory: {WEIGHTS_FILE} is missing; retrain with "
                             "`qbdi train --force`", d) from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise ModelError(f"corrupt model directory: {WEIGHTS_FILE} is unreadable ({exc}); "
                             "retrain with `qbdi train --force`", d) from None
        got = [tuple(w.shape) for w in weights]
        if got != expected:
            raise ModelError(f"corrupt model directory: weight shapes {got} do not match the "
                             f"configuration ({expected}); retrain with `qbdi train --force`", d)
        n_enc = len(encoder.weights)
        encoder.set_weights(weights[:n_enc])
        decoder.set_weights(weights[n_enc:])
        L = int(config["latent_dim"])
        if stats["mean"].shape != (L,) or stats["var"].shape != (L,):
            raise ModelError("corrupt model directory: corpus statistics do not have "
                             f"{L} components; retrain with `qbdi train --force`", d)
        return cls(encoder, decoder, spec=spec, config=config, threshold=threshold,
                   corpus_stats=stats, fingerprint=fingerprint, info=meta.get("info", {}))


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


class _TqdmEpochs:
    """Keras callback showing a tqdm bar over epochs with the latest losses."""

    def __new__(cls, epochs: int, enabled: bool):
        keras = _keras()
        from tqdm.auto import tqdm

        class _CB(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.bar = tqdm(total=epochs, desc="training VAE", unit="epoch", disable=not enabled)

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                self.bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.1f}",
                                     val_loss=f"{logs.get('val_loss', float('nan')):.1f}")
                self.bar.update(1)

            def on_train_end(self, logs=None):
                self.bar.close()

        return _CB()


def train(frames: np.ndarray, *, spec: RollSpec | None = None, groups: np.ndarray | None = None,
          hidden_dim: int = DEFAULT_CONFIG["hidden_dim"], latent_dim: int = DEFAULT_CONFIG["latent_dim"],
          epochs: int = DEFAULT_EPOCHS, beta: float = 1.0, seed: int = 0,
          batch_size: int = DEFAULT_CONFIG["batch_size"],
          learning_rate: float = DEFAULT_CONFIG["learning_rate"],
          held_out_fraction: float = DEFAULT_CONFIG["held_out_fraction"],
          progress: bool = True, fit_options: dict | None = None) -> tuple[StyleVAE, dict]:
    """Train a style VAE on frames (Adam, loss D + beta R), choose its threshold, measure it.

    Args:
        frames: (N, spec.frame_size) binary frames, N >= 2.
        spec: roll layout of the frames (default RollSpec()).
        groups: optional (N,) group label per frame (e.g. ``corpus.piece_index``); whole groups are
            held out so held-out bars come from unseen pieces.
        hidden_dim, latent_dim: layer sizes (paper: 500, 500).
        epochs: passes over the training frames.
        beta: weight of the rate R in the loss (1 = the paper, the negative ELBO).
        seed: seeds weights, noise, shuffling and the held-out split; same seed, same weights.
        batch_size: frames per Adam step (paper: 100).
        learning_rate: Adam step size.
        held_out_fraction: share of frames (or groups) held out.
        progress: show a tqdm progress bar.
        fit_options: speed settings {"jit_compile": bool|"auto", "steps_per_execution": int,
            "loop": "auto"|"keras"} (see :func:`_fit_function`); they do not change the model.

    Returns:
        (model, history): history has per-epoch lists ``loss``, ``d_nats``, ``r_nats`` (running
        means over the epoch's training batches) and ``val_loss``, ``val_d_nats``, ``val_r_nats``
        (held-out frames after the epoch), all in nats per frame, plus ``epoch`` (1-based),
        ``train_idx`` and ``held_idx``.

    Used in: notebooks/02_vae_training.ipynb, ``qbdi train``.
    """
    spec = RollSpec() if spec is None else spec
    x = np.asarray(frames)
    if x.ndim != 2 or x.shape[1] != spec.frame_size:
        raise OptionError(f"frames must have shape (N, {spec.frame_size}), got {x.shape}")
    if epochs < 1:
        raise OptionError(f"epochs must be at least 1, got {epochs}")
    if beta < 0:
        raise OptionError(f"beta must be >= 0, got {beta}")
    x = (x != 0).astype(np.uint8)
    cfg = {**DEFAULT_CONFIG, "input_dim": spec.frame_size, "hidden_dim": int(hidden_dim),
           "latent_dim": int(latent_dim), "beta": float(beta), "epochs": int(epochs),
           "batch_size": int(batch_size), "learning_rate": float(learning_rate),
           "held_out_fraction": float(held_out_fraction), "seed": int(seed)}
    if groups is not None and len(groups):
        # the longest training piece, so that improvise can warn about queries longer than any
        _, piece_of_frame = np.unique(np.asarray(groups), return_inverse=True)
        cfg["max_piece_frames"] = int(np.bincount(piece_of_frame).max())
    train_idx, held_idx = split_held_out(len(x), held_out_fraction, seed, groups)
    x_tr, x_ho = x[train_idx], x[held_idx]

    keras = _keras()
    _seed_everything(seed)
    trainer = _make_trainer(cfg, seed, fit_options)
    fit = _fit_function(trainer, x_tr, cfg, x_ho, [_TqdmEpochs(cfg["epochs"], progress)], fit_options)
    t0 = time.perf_counter()
    hist = fit(cfg["epochs"])
    train_seconds = time.perf_counter() - t0

    model = StyleVAE(trainer.encoder, trainer.decoder, spec=spec, config=cfg,
                     fingerprint=frames_fingerprint(x))
    recon = model.reconstruct(x_ho)
    model.threshold, f1_grid = choose_threshold(x_ho, recon)
    scores = note_scores(x_ho, model.binarize(recon))
    mean, _ = model.encode(x)
    model.corpus_stats = {"mean": mean.astype(np.float64).mean(axis=0),
                          "var": mean.astype(np.float64).var(axis=0)}
    history = {
        "epoch": list(range(1, cfg["epochs"] + 1)),
        "loss": hist["loss"], "d_nats": hist["d_nats"], "r_nats": hist["r_nats"],
        "val_loss": hist["val_loss"], "val_d_nats": hist["val_d_nats"],
        "val_r_nats": hist["val_r_nats"],
        "train_idx": train_idx, "held_idx": held_idx,
        "threshold_grid": _THRESHOLD_GRID.tolist(), "threshold_f1": f1_grid.tolist(),
    }
    history = {k: ([float(v) for v in vals] if k.startswith(("loss", "d_", "r_", "val_")) else vals)
               for k, vals in history.items()}
    model.info = {
        "train_seconds": round(train_seconds, 2),
        "n_frames": int(len(x)), "n_train": int(len(x_tr)), "n_held_out": int(len(x_ho)),
        "held_out_d_nats": history["val_d_nats"][-1], "held_out_r_nats": history["val_r_nats"][-1],
        "held_out_loss_nats": history["val_loss"][-1],
        "held_out_precision": scores["precision"], "held_out_recall": scores["recall"],
        "held_out_f1": scores["f1"], "backend": keras.backend.backend(),
        "history": {k: history[k] for k in ("loss", "d_nats", "r_nats", "val_loss", "val_d_nats",
                                            "val_r_nats")},
    }
    return model, history


# --------------------------------------------------------------------------------------------
# The default model
# --------------------------------------------------------------------------------------------


def default_model_dir() -> Path:
    """Where the default model lives: ``models_dir() / "default"``."""
    from qbdi_utils import paths

    return paths.models_dir() / "default"


def _same_config(a: dict, b: dict) -> bool:
    keys = set(DEFAULT_CONFIG)
    return all(a.get(k) == b.get(k) for k in keys)


def default_model(progress: bool = True, *, retrain: bool = False) -> StyleVAE:
    """The paper's model trained on the default corpus (the 4/4 Bach chorales), cached on disk.

    Loads ``models_dir()/default`` when its training-frame fingerprint and configuration match the
    current default corpus and :data:`DEFAULT_CONFIG`; otherwise trains it (a few minutes on two
    CPU cores) and saves it there.

    Args:
        progress: show progress bars (corpus loading, training).
        retrain: train even if a matching cached model exists.

    Returns:
        The model; ``model.info`` holds the training facts (held-out R, D, F1, wall time, history).

    Used in: notebooks 02-05, ``qbdi improvise`` without ``--model``.
    """
    from qbdi_utils import corpus as corpus_mod

    spec = RollSpec()
    corpus = corpus_mod.load_corpus("chorales", spec=spec, progress=progress)
    fp = frames_fingerprint(corpus.frames)
    d = default_model_dir()
    if not retrain and (d / MODEL_FILE).is_file():
        try:
            model = StyleVAE.load(d, spec=spec)
            if model.fingerprint == fp and _same_config(model.config, DEFAULT_CONFIG):
                model.from_cache = True
                return model
        except ModelError:
            pass
    model, _ = train(corpus.frames, spec=spec, groups=corpus.piece_index, progress=progress,
                     **{k: DEFAULT_CONFIG[k] for k in ("hidden_dim", "latent_dim", "epochs", "beta",
                                                       "seed", "batch_size", "learning_rate",
                                                       "held_out_fraction")})
    model.save(d)
    model.from_cache = False
    return model
