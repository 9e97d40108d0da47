"""Training of the style VAE: split by piece, the training loop, threshold choice, the default model.

The model itself (:class:`~qbdi_utils.vae.StyleVAE`, :class:`~qbdi_utils.vae.VAEConfig`, the
presets) lives in :mod:`qbdi_utils.vae`; this module turns frames into a trained ``StyleVAE``:

1. :func:`split_pieces` cuts the pieces three ways: *training* pieces (the optimiser sees them),
   *validation* pieces (the epoch count :data:`~qbdi_utils.vae.DEFAULT_EPOCHS` and the decoding
   threshold are chosen on them) and *test* pieces (every number reported as held-out: R, D, loss,
   note F1).
2. Adam minimises D + beta * R per frame (nats). ``beta`` weighs the RATE (the beta-VAE
   convention); the paper's Appendix-B beta weighs the distortion, beta = 1 / beta_paper up to scale.
   With ``gamma > 0`` the loss gains gamma * P, P = m_t CE(x_{t+1} | z_t) from the predictor head
   (see :mod:`qbdi_utils.vae`); pairs (x_t, x_{t+1}) come from :func:`successor_index` and never
   cross a piece boundary or a side of the split.
   On the TensorFlow backend one loop, :func:`_tf_fit_tf`, trains in memory (each epoch one
   compiled graph), streamed (a corpus larger than memory: a frame source of
   :mod:`qbdi_utils.stream`, read shard by shard through tf.data) and data-parallel (``devices=N``:
   a distribution strategy of :mod:`qbdi_utils.devices`); other backends use ``Model.fit``.
   See :func:`train`.
3. Validation and test frames are scored with noise from their OWN random streams (seeded from the
   config's seed and the set's role), never from the training generator, so the training run does
   not depend on whether or how often the held-out sets are evaluated.
4. :func:`choose_threshold` picks the threshold that maximises note F1 of the outputs *as they are
   written* (after ``pianoroll.binarize``, which makes the roll valid), piece by piece.

:func:`default_model` trains (once) and caches the paper's model on the Bach chorales.

Used in: notebooks/02_vae_training.ipynb, ``qbdi train``, notebooks 03-05 via :func:`default_model`.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from qbdi_utils import corpus as corpus_mod
from qbdi_utils import devices as devices_mod
from qbdi_utils import files, paths
from qbdi_utils import stream as stream_mod
from qbdi_utils.errors import CorpusError, ModelError, OptionError, TrainingDivergedError
from qbdi_utils.pianoroll import RollSpec, binarize
from qbdi_utils.vae import (
    DEFAULT_CONFIG, DEFAULT_EPOCHS, MODEL_FILE, PRESETS, StyleVAE, VAEConfig, _build_networks,
    _build_predictor, _keras, frames_fingerprint, loss_terms, note_scores, predictive_terms,
)

__all__ = [
    "DEFAULT_CONFIG", "DEFAULT_EPOCHS", "PRESETS", "STREAM_EVAL_FRAMES", "binarize_by_piece", "cached_model",
    "cap_held_out", "choose_threshold",
    "default_model", "default_model_dir", "held_out_scores", "split_held_out", "split_pieces",
    "record_corpus", "same_config", "successor_index", "train",
]

# Settings that change speed, not the model; kept out of the configuration.
_FIT_DEFAULTS = {"jit_compile": "auto", "steps_per_execution": 32, "loop": "auto"}

_THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)

# Random streams of the evaluation noise, one per role, independent of the training generator.
_VALIDATION_STREAM, _TEST_STREAM = 1, 2
_EVAL_CHUNK = 1000


# --------------------------------------------------------------------------------------------
# Split, threshold
# --------------------------------------------------------------------------------------------


def split_pieces(n: int, validation_fraction: float, test_fraction: float, seed: int,
                 groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of training, validation and test frames, whole pieces on one side.

    With ``groups`` (e.g. a corpus's ``piece_index``) and enough groups, whole groups go to each
    side; otherwise single frames do. One seeded permutation of the units: the first
    ``max(1, round(validation_fraction * U))`` are validation, the next
    ``max(1, round(test_fraction * U))`` (none if test_fraction is 0) test, the rest training (at
    least one unit). With ``test_fraction = 0`` this is the two-way split of format-1 models.

    Args:
        n: number of frames.
        validation_fraction: share of units for validation, in (0, 1).
        test_fraction: share of units for test, in [0, 1).
        seed: seed of the permutation.
        groups: (n,) group label per frame, or None.

    Returns:
        (train_idx, validation_idx, test_idx): sorted int arrays partitioning range(n); the first
        two are never empty, test_idx is empty only when test_fraction is 0.

    Raises:
        OptionError: a fraction out of range, or too few frames to split.

    Used in: :func:`train`; notebooks/02_vae_training.ipynb.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise OptionError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if not 0.0 <= test_fraction < 1.0:
        raise OptionError(f"test_fraction must be in [0, 1), got {test_fraction}")
    need = 3 if test_fraction > 0 else 2
    if n < need:
        raise OptionError(f"need at least {need} frames to split into training, validation"
                          f"{' and test' if need == 3 else ''} sets, got {n}")
    rng = np.random.default_rng(seed)
    units, labels = None, None
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != n:
            raise ValueError(f"groups must have {n} entries, got {len(groups)}")
        labels = np.unique(groups)
        if len(labels) >= need:
            units = rng.permutation(labels)
    if units is None:
        units = rng.permutation(n)
    U = len(units)
    n_val = min(U - need + 1, max(1, int(round(validation_fraction * U))))
    n_test = 0 if test_fraction == 0 else min(U - 1 - n_val, max(1, int(round(test_fraction * U))))
    val_units, test_units = units[:n_val], units[n_val:n_val + n_test]
    if labels is not None and len(labels) >= need:
        val = np.isin(groups, val_units)
        test = np.isin(groups, test_units)
        return np.flatnonzero(~(val | test)), np.flatnonzero(val), np.flatnonzero(test)
    return np.sort(units[n_val + n_test:]), np.sort(val_units), np.sort(test_units)


def split_held_out(n: int, fraction: float, seed: int,
                   groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out indices of the two-way split (format-1 models): ``split_pieces`` with no test set.

    Args:
        n: number of frames.
        fraction: share of frames (or groups) held out, in (0, 1).
        seed: seed of the permutation.
        groups: (n,) int group label per frame, or None.

    Returns:
        (train_idx, held_idx), sorted int arrays partitioning range(n).

    Raises:
        OptionError: fraction out of range or fewer than 2 frames.

    Used in: notebooks/02_vae_training.ipynb (models trained before the three-way split).
    """
    train_idx, held_idx, _ = split_pieces(n, fraction, 0.0, seed, groups)
    return train_idx, held_idx


def _runs(groups: np.ndarray | None, n: int) -> list[slice]:
    """Slices of consecutive frames with the same group label (each frame alone without groups)."""
    if groups is None:
        return [slice(i, i + 1) for i in range(n)]
    g = np.asarray(groups)
    if len(g) != n:
        raise ValueError(f"groups must have {n} entries, got {len(g)}")
    if n == 0:
        return []
    cuts = np.flatnonzero(g[1:] != g[:-1]) + 1
    bounds = np.concatenate([[0], cuts, [n]])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def successor_index(groups: np.ndarray | None, n: int) -> np.ndarray:
    """Index of each frame's next bar in the same piece, or -1 (a piece's last bar).

    Consecutive frames with the same group label are one piece in time order (as
    ``corpus.load_corpus`` lays them out); without groups all n frames are one piece.

    Args:
        groups: (n,) piece label per frame, or None.
        n: number of frames.

    Returns:
        (n,) int64: i + 1 where frame i + 1 continues frame i's piece, else -1.

    Used in: :func:`train` (gamma > 0), qbdi_utils.predictive, tests/test_vae_predictive.py.
    """
    nxt = np.arange(1, n + 1, dtype=np.int64)
    if n:
        nxt[-1] = -1
    if groups is not None:
        g = np.asarray(groups)
        if len(g) != n:
            raise ValueError(f"groups must have {n} entries, got {len(g)}")
        nxt[:-1][g[1:] != g[:-1]] = -1
    return nxt


def _subset_successors(nxt: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Successor positions within the subset ``idx`` (-1 where the successor is not in it)."""
    pos = np.full(len(nxt) + 1, -1, dtype=np.int64)  # pos[-1] (the extra slot) stays -1
    pos[idx] = np.arange(len(idx))
    return pos[nxt[idx]]


def binarize_by_piece(probabilities: np.ndarray, threshold: float, spec: RollSpec | None = None,
                      groups: np.ndarray | None = None) -> np.ndarray:
    """Decoder probabilities -> frames as they are written: ``pianoroll.binarize`` piece by piece.

    Consecutive frames with the same group label are one piece, binarized as one stretch of time
    (a note held over a bar line stays one note); a piece's first step follows silence. Without
    groups each frame stands alone.

    Args:
        probabilities: (N, spec.frame_size) decoder probabilities, frames of a piece consecutive
            and in time order.
        threshold: probabilities >= threshold sound.
        spec: roll layout (default RollSpec()).
        groups: (N,) piece label per frame, or None.

    Returns:
        (N, spec.frame_size) uint8 valid frames.

    Used in: :func:`train`, :func:`choose_threshold`; notebooks/02_vae_training.ipynb.
    """
    spec = RollSpec() if spec is None else spec
    p = np.asarray(probabilities)
    if p.ndim != 2 or p.shape[1] != spec.frame_size:
        raise ValueError(f"probabilities must have shape (N, {spec.frame_size}), got {p.shape}")
    if groups is None:
        return binarize(p[:, None, :], threshold, spec)[:, 0, :]
    out = np.empty(p.shape, np.uint8)
    for s in _runs(groups, len(p)):
        out[s] = binarize(p[s], threshold, spec)
    return out


def choose_threshold(frames: np.ndarray, probabilities: np.ndarray, grid: np.ndarray | None = None,
                     *, spec: RollSpec | None = None,
                     groups: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The decoding threshold that maximises note F1 of the written outputs (ties: the lowest).

    Every candidate is scored on :func:`binarize_by_piece` of the probabilities, i.e. after the
    same make-valid step decoding applies, not on the raw probabilities.

    Args:
        frames: (N, D) binary truth (validation frames).
        probabilities: (N, D) decoder probabilities for the same frames.
        grid: candidate thresholds (default 0.05, 0.06, ..., 0.95).
        spec: roll layout (default RollSpec()).
        groups: (N,) piece label per frame (consecutive frames of a piece), or None.

    Returns:
        (threshold, f1 per grid point (len(grid),)).

    Used in: :func:`train`; notebooks/02_vae_training.ipynb.
    """
    grid = _THRESHOLD_GRID if grid is None else np.asarray(grid, dtype=float)
    t = np.asarray(frames) != 0
    f1 = np.array([note_scores(t, binarize_by_piece(probabilities, th, spec, groups))["f1"]
                   for th in grid], dtype=float)
    return float(grid[int(np.argmax(f1))]), f1


# --------------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------------


def _eval_noise(seed: int, stream: int, n: int, latent_dim: int) -> np.ndarray:
    """(n, latent_dim) float32 standard normal noise of one evaluation role, from its own stream."""
    return np.random.default_rng([int(seed), int(stream)]).standard_normal((n, latent_dim)).astype(np.float32)


def _pair_arrays(x: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(next bars y (N, D) float32, zero where none; mask (N,) float32)."""
    mask = (nxt >= 0).astype(np.float32)
    y = np.asarray(x, np.float32)[np.maximum(nxt, 0)] * mask[:, None]
    return y, mask


def _evaluate(encoder, decoder, x: np.ndarray, eps: np.ndarray, predictor=None,
              nxt: np.ndarray | None = None) -> tuple[float, ...]:
    """Mean D and R (and P with a predictor) in nats per frame over frames x with the given noise."""
    keras = _keras()
    ops = keras.ops
    x = np.asarray(x, np.float32)
    if predictor is not None:
        y, mask = _pair_arrays(x, successor_index(None, len(x)) if nxt is None else nxt)
    sums = np.zeros(3 if predictor is not None else 2)
    for i in range(0, len(x), _EVAL_CHUNK):
        sl = slice(i, i + _EVAL_CHUNK)
        xb, eb = ops.convert_to_tensor(x[sl]), ops.convert_to_tensor(eps[sl])
        if predictor is None:
            terms = loss_terms(encoder, decoder, xb, eb)
        else:
            terms = predictive_terms(encoder, decoder, predictor, xb, ops.convert_to_tensor(y[sl]),
                                     ops.convert_to_tensor(mask[sl]), eb)
        sums += [float(ops.convert_to_numpy(ops.sum(t))) for t in terms]
    return tuple(float(v) for v in sums / len(x))


def _as_config(cfg) -> VAEConfig:
    return cfg if isinstance(cfg, VAEConfig) else VAEConfig.from_dict(cfg)


def _make_trainer(cfg: VAEConfig, seed: int, fit_opts: dict | None = None):
    """A compiled Keras model whose output is (B, 2) = [D, R] per frame and whose loss is D + beta R."""
    keras = _keras()
    ops = keras.ops
    cfg = _as_config(cfg)
    fit_opts = {**_FIT_DEFAULTS, **(fit_opts or {})}
    encoder, decoder = _build_networks(cfg)
    predictor = _build_predictor(cfg)  # None when gamma == 0: then exactly the pre-head trainer
    beta, gamma = float(cfg.beta), float(cfg.gamma)
    latent_dim = int(cfg.latent_dim)

    class _Trainer(keras.Model):
        def __init__(self):
            super().__init__(name="style_vae_trainer")
            self.encoder = encoder
            self.decoder = decoder
            self.predictor = predictor
            self.noise = keras.random.SeedGenerator(seed)

        def call(self, x, training=False):
            if self.predictor is None:
                x = ops.cast(x, "float32")
                eps = keras.random.normal((ops.shape(x)[0], latent_dim), seed=self.noise)
                d, r = loss_terms(self.encoder, self.decoder, x, eps)
                return ops.stack([d, r], axis=-1)
            x, y, m = (ops.cast(t, "float32") for t in x)
            eps = keras.random.normal((ops.shape(x)[0], latent_dim), seed=self.noise)
            d, r, p = predictive_terms(self.encoder, self.decoder, self.predictor, x, y, m, eps)
            return ops.stack([d, r, p], axis=-1)

    def loss(y_true, y_pred):  # y_true is a dummy: the target is the input itself
        if predictor is None:
            return y_pred[:, 0] + beta * y_pred[:, 1]
        return y_pred[:, 0] + beta * y_pred[:, 1] + gamma * y_pred[:, 2]

    def d_nats(y_true, y_pred):
        return y_pred[:, 0]

    def r_nats(y_true, y_pred):
        return y_pred[:, 1]

    def p_nats(y_true, y_pred):
        return y_pred[:, 2]

    trainer = _Trainer()
    trainer.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(cfg.learning_rate)),
        loss=loss,
        metrics=[d_nats, r_nats] + ([p_nats] if predictor is not None else []),
        jit_compile=fit_opts["jit_compile"],
        steps_per_execution=int(fit_opts["steps_per_execution"]),
    )
    zeros = np.zeros((1, cfg.input_dim), np.float32)
    trainer(zeros if predictor is None else [zeros, zeros, np.zeros((1,), np.float32)])  # build
    return trainer


def _check_finite(epoch: int, logs: dict, cfg: VAEConfig) -> None:
    """Stop training (TrainingDivergedError) when an epoch's loss is NaN or infinite.

    The training loss and its terms, and the validation loss (non-finite once the weights are),
    are checked: whichever is first not finite stops the run.

    Args:
        epoch: 0-based epoch just finished.
        logs: that epoch's logs (``loss``, ``d_nats``, ... , ``val_loss`` in nats per frame).
        cfg: the configuration (named in the message).

    Raises:
        TrainingDivergedError: one of those values is not finite.
    """
    for key in ("loss", "d_nats", "r_nats", "p_nats", "val_loss"):
        v = (logs or {}).get(key)
        if v is None or np.isfinite(float(v)):
            continue
        what = "training loss" if key == "loss" else ("validation loss" if key == "val_loss" else key)
        raise TrainingDivergedError(
            f"training stopped at epoch {epoch + 1}: the {what} is {float(v)} nats per frame, not a "
            f"finite number (beta = {cfg.beta}, gamma = {cfg.gamma}, learning rate = "
            f"{cfg.learning_rate}); nothing was saved. Use a smaller --beta / --gamma or learning rate")


def _fit_function(trainer, x_tr: np.ndarray, cfg: VAEConfig, x_val: np.ndarray | None = None,
                  callbacks=(), fit_options: dict | None = None, *,
                  next_tr: np.ndarray | None = None, next_val: np.ndarray | None = None):
    """The project's training loop: returns ``fit(epochs) -> history dict`` over in-memory frames.

    On the TensorFlow backend (unless ``fit_options["loop"] == "keras"``) each epoch is one
    ``tf.function`` looping over shuffled in-memory batches, with the Adam step compiled by XLA; this
    runs about twice as fast as ``Model.fit`` on two CPU cores (benchmarks/bench_train.py). Other
    backends use ``Model.fit`` with ``steps_per_execution``. Both give per-epoch ``loss``,
    ``d_nats``, ``r_nats`` (and ``p_nats`` with a predictor head) and, with validation frames,
    ``val_*`` of the same, in nats per frame.
    The validation frames are scored after every epoch with fixed noise from their own stream
    (seeded by ``cfg.seed``), so evaluating them never moves the training generator.
    ``next_tr`` / ``next_val``: successor position of each frame within its set, -1 for none
    (default: :func:`successor_index` of one piece); used only with a predictor head.
    ``callbacks`` are Keras callbacks; only ``on_train_begin``, ``on_epoch_end(epoch, logs)`` and
    ``on_train_end`` are called on the fast path.
    Both loops check the training loss after every epoch and raise
    :class:`~qbdi_utils.errors.TrainingDivergedError` as soon as it is NaN or infinite (the
    callbacks' ``on_train_end`` is still called, so a progress bar is closed).
    """
    cfg = _as_config(cfg)
    opts = {**_FIT_DEFAULTS, **(fit_options or {})}
    keras = _keras()
    predictor = getattr(trainer, "predictor", None)
    x_tr = np.asarray(x_tr, dtype=np.float32)
    if next_tr is None:
        next_tr = successor_index(None, len(x_tr))
    if x_val is not None and len(x_val) == 0:
        x_val = None
    eps_val = None
    if x_val is not None:
        x_val = np.asarray(x_val, dtype=np.float32)
        eps_val = _eval_noise(cfg.seed, _VALIDATION_STREAM, len(x_val), cfg.latent_dim)
        if next_val is None:
            next_val = successor_index(None, len(x_val))
    if keras.backend.backend() == "tensorflow" and opts.get("loop", "auto") != "keras":
        return _tf_fit_tf(trainer, cfg, {"x": x_tr, "next": next_tr}, x_val, eps_val, callbacks, opts,
                          next_val, None)
    y_tr = np.zeros((len(x_tr), 1), np.float32)
    beta, gamma = float(cfg.beta), float(cfg.gamma)
    inputs = x_tr if predictor is None else [x_tr, *_pair_arrays(x_tr, next_tr)]
    record: dict = {}

    class _Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            terms = _evaluate(trainer.encoder, trainer.decoder, x_val, eps_val, predictor, next_val)
            vals = {"val_loss": terms[0] + beta * terms[1] + (gamma * terms[2] if predictor else 0.0),
                    "val_d_nats": terms[0], "val_r_nats": terms[1]}
            if predictor is not None:
                vals["val_p_nats"] = terms[2]
            if logs is not None:
                logs.update(vals)
            for k, v in vals.items():
                record.setdefault(k, []).append(v)

    class _StopOnNonFinite(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            _check_finite(epoch, logs, cfg)

    cbs = ([_Validation()] if x_val is not None else []) + [_StopOnNonFinite()] + list(callbacks)

    def fit(epochs: int) -> dict:
        record.clear()
        try:
            hist = trainer.fit(inputs, y_tr, batch_size=int(cfg.batch_size), epochs=int(epochs),
                               shuffle=True, verbose=0, callbacks=cbs).history
        except TrainingDivergedError:
            for cb in callbacks:
                cb.on_train_end()
            raise
        return {**{k: list(v) for k, v in hist.items() if not k.startswith("val_")}, **record}

    return fit


def _tf_evaluator(enc, dec, pred, jit: bool, x_val, next_val):
    """``evaluate(x, eps) -> [D, R(, P)]`` mean nats per frame over held-out frames (compiled sums).

    With a predictor head the next bars come from ``x_val`` / ``next_val`` (only x_val is scored).
    """
    import tensorflow as tf

    if pred is None:
        @tf.function(jit_compile=jit, reduce_retracing=True)
        def sums(xb, eps):
            d, r = loss_terms(enc, dec, xb, eps)
            return tf.reduce_sum(d), tf.reduce_sum(r)

        def evaluate(x, eps):
            tot = np.zeros(2)
            for i in range(0, len(x), _EVAL_CHUNK):
                tot += [float(v) for v in sums(tf.constant(x[i:i + _EVAL_CHUNK]),
                                               tf.constant(eps[i:i + _EVAL_CHUNK]))]
            return list(tot / len(x))

        return evaluate

    @tf.function(jit_compile=jit, reduce_retracing=True)
    def psums(xb, yb, mb, eps):
        d, r, p = predictive_terms(enc, dec, pred, xb, yb, mb, eps)
        return tf.reduce_sum(d), tf.reduce_sum(r), tf.reduce_sum(p)

    y_val, m_val = _pair_arrays(x_val, next_val) if x_val is not None else (None, None)

    def evaluate(x, eps):
        tot = np.zeros(3)
        for i in range(0, len(x), _EVAL_CHUNK):
            sl = slice(i, i + _EVAL_CHUNK)
            tot += [float(v) for v in psums(tf.constant(x[sl]), tf.constant(y_val[sl]),
                                            tf.constant(m_val[sl]), tf.constant(eps[sl]))]
        return list(tot / len(x))

    return evaluate


def _epoch_runner(run_epoch, evaluate, x_val, eps_val, has_pred: bool, cfg: VAEConfig, callbacks):
    """``fit(epochs) -> history``: the per-epoch bookkeeping shared by the TensorFlow loops.

    ``run_epoch(e)`` trains one epoch and returns its mean [D, R(, P)] per frame; the history also
    gets the validation terms, the loss, and ``epoch_seconds`` (wall time of each epoch's
    training, validation excluded).
    """
    beta, gamma = float(cfg.beta), float(cfg.gamma)
    names = ["d_nats", "r_nats"] + (["p_nats"] if has_pred else [])
    weights = [1.0, beta] + ([gamma] if has_pred else [])
    history: dict = {}

    def fit(epochs: int) -> dict:
        for cb in callbacks:
            cb.on_train_begin()
        start = len(history.get("epoch_seconds", []))  # a second call goes on where the first stopped
        for e in range(start, start + int(epochs)):
            t0 = time.perf_counter()
            terms = run_epoch(e)
            seconds = time.perf_counter() - t0
            logs = {"loss": float(np.dot(weights, terms)), **dict(zip(names, terms))}
            if x_val is not None:
                vterms = evaluate(x_val, eps_val)
                logs["val_loss"] = float(np.dot(weights, vterms))
                logs.update({f"val_{k}": v for k, v in zip(names, vterms)})
            try:
                _check_finite(e, logs, cfg)
            except TrainingDivergedError:
                for cb in callbacks:
                    cb.on_train_end()
                raise
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            history.setdefault("epoch_seconds", []).append(seconds)
            for cb in callbacks:
                cb.on_epoch_end(e, logs)
        for cb in callbacks:
            cb.on_train_end()
        return history

    return fit


#: Batches per element of the streamed tf.data pipeline (see :func:`_stream_dataset`).
_STREAM_CHUNK_BATCHES = 32


def _stream_dataset(source, train_mask: np.ndarray, cfg: VAEConfig, first_epoch: int, last_epoch: int,
                    pairs: bool, shuffle_frames: int):
    """One tf.data pipeline of epochs ``first_epoch .. last_epoch - 1`` of
    :func:`stream.training_batches`, in chunks made ahead of the step.

    numpy makes the batches (shard reads, unpacking, shuffle buffer) in the generator, which runs
    in a background thread two chunks ahead of the step (:func:`stream.read_ahead`): tf.data's own
    ``prefetch`` does not run ahead once op determinism is on (seeded training turns it on), so
    before, every chunk was made while the step waited (0.04-0.15 s at each epoch's start for the
    shuffle buffer, about 0.01 s per other chunk, 10-15% of a 1.4 s epoch on an 8,000-frame
    corpus). Each element is a *chunk*: up to
    :data:`_STREAM_CHUNK_BATCHES` consecutive full batches stacked; a chunk ends early at a smaller
    batch and at the end of an epoch, so cutting a chunk into ``batch_size`` rows gives back exactly
    the generator's batches and no chunk spans two epochs. The training loop runs a chunk's batches
    in one graph, as the in-memory loop runs an epoch (iterating the dataset batch by batch inside
    the graph trained about a third slower on two cores: one IteratorGetNext between every two
    steps). One pipeline serves the whole run, so the next epoch's first shards are read and
    shuffled while the current epoch's last chunks train; a pipeline per epoch made every epoch wait
    for its shuffle buffer to fill first (0.1 s of a 1.4 s epoch on an 8,000-frame corpus).
    """
    import tensorflow as tf

    D, B = int(source.frame_size), int(cfg.batch_size)

    def chunks():
        for epoch in range(int(first_epoch), int(last_epoch)):
            parts: list = []

            def flush():
                out = tuple(np.concatenate([p[k] for p in parts]) for k in range(len(parts[0])))
                parts.clear()
                return out

            for b in stream_mod.training_batches(source, train_mask, B, seed=int(cfg.seed), epoch=epoch,
                                                 shuffle_frames=shuffle_frames, pairs=pairs):
                parts.append(b)
                if len(b[0]) < B or len(parts) == _STREAM_CHUNK_BATCHES:
                    yield flush()
            if parts:
                yield flush()

    sig = (tf.TensorSpec((None, D), tf.uint8),)
    if pairs:
        sig += (tf.TensorSpec((None, D), tf.uint8), tf.TensorSpec((None,), tf.float32))
    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    # prefetch(2) does not run ahead under op determinism (read_ahead does), but without it ending
    # the pipeline after the last epoch stalled for 6.6-8.9 s in 3 of 6 runs (0.002 s with it);
    # the cause inside tf.data is not known
    return (tf.data.Dataset.from_generator(lambda: stream_mod.read_ahead(chunks(), depth=2), output_signature=sig)
            .prefetch(2).with_options(options))


def _tf_fit_tf(trainer, cfg: VAEConfig, feed: dict, x_val, eps_val, callbacks, opts: dict,
                   next_val, strategy):
    """The TensorFlow training loop: in memory or streamed, on one device or several (``strategy``).

    ``feed`` is ``{"x": x_tr, "next": next_tr}`` (in memory) or ``{"source": src, "mask": train
    mask, "n_train": int, "shuffle_frames": int}`` (streamed). In memory each epoch is one
    ``tf.function`` that draws the permutation and then each batch's noise from the training
    generator; streamed, tf.data hands over chunks of whole batches (:func:`_stream_dataset`) and
    each chunk's batches run in one ``tf.function``. On one device the step (gradient and Adam
    update) is one XLA graph on the batch mean; the streamed epoch runs about as fast as the
    in-memory one (benchmarks/bench_scale.py). Each global batch and its noise are drawn once (cross-replica), so the run
    sees the same frames and noise on 1 or N devices; with a strategy every replica takes its
    slice of the global batch (``strategy.run``), its loss is its sum over the slice divided by the
    GLOBAL batch size, and the optimiser sums the replicas' gradients: the gradient of the global
    batch mean, as on one device. Variables must have been created under ``strategy.scope()``.
    """
    _keras()
    import contextlib

    import tensorflow as tf

    jit = opts["jit_compile"] in (True, "auto")
    enc, dec, opt = trainer.encoder, trainer.decoder, trainer.optimizer
    pred = getattr(trainer, "predictor", None)
    has_pred = pred is not None
    variables = enc.trainable_variables + dec.trainable_variables
    if has_pred:
        variables = variables + pred.trainable_variables
    with (strategy.scope() if strategy is not None else contextlib.nullcontext()):
        opt.build(variables)
    R = strategy.num_replicas_in_sync if strategy is not None else 1
    B, L = int(cfg.batch_size), int(cfg.latent_dim)
    beta, gamma = float(cfg.beta), float(cfg.gamma)
    gen = tf.random.Generator.from_seed(int(cfg.seed))  # made outside the strategy: one stream

    def grads_and_sums(xb, yb, mb, eps, n_global=None):
        """Gradient of the batch's loss: its mean (one device), or its sum over this replica's
        slice divided by the global batch size ``n_global``."""
        with tf.GradientTape() as tape:
            if has_pred:
                d, r, p = predictive_terms(enc, dec, pred, xb, yb, mb, eps)
                per_frame = d + beta * r + gamma * p
            else:
                d, r = loss_terms(enc, dec, xb, eps)
                p = tf.zeros_like(d)
                per_frame = d + beta * r
            loss = tf.reduce_mean(per_frame) if n_global is None else tf.reduce_sum(per_frame) / n_global
        return tape.gradient(loss, variables), (tf.reduce_sum(d), tf.reduce_sum(r), tf.reduce_sum(p))

    @tf.function(jit_compile=jit, reduce_retracing=True)
    def step(xb, yb, mb, eps):  # one device: gradient and Adam update in one XLA graph
        grads, sums = grads_and_sums(xb, yb, mb, eps)
        opt.apply(grads, variables)
        return sums

    # several replicas: the gradient is compiled, the update (which all-reduces the gradients
    # across replicas, a synchronisation point) must not sit inside a nested tf.function
    replica_grads = tf.function(grads_and_sums, jit_compile=jit, reduce_retracing=True)

    def replica_slice(xb, yb, mb, eps):
        ctx = tf.distribute.get_replica_context()
        rid = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
        n = tf.shape(xb)[0]
        lo, hi = rid * n // R, (rid + 1) * n // R
        grads, sums = replica_grads(xb[lo:hi], yb[lo:hi], mb[lo:hi], eps[lo:hi], tf.cast(n, tf.float32))
        opt.apply(grads, variables)
        return sums

    def global_step(xb, yb, mb, eps):
        if strategy is None:
            return step(xb, yb, mb, eps)
        out = strategy.run(replica_slice, args=(xb, yb, mb, eps))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, o, axis=None) for o in out]

    if "source" in feed:
        n_train = int(feed["n_train"])
        D = int(feed["source"].frame_size)
        chunk_sig = [tf.TensorSpec((None, D), tf.uint8), tf.TensorSpec((None, D), tf.uint8),
                     tf.TensorSpec((None,), tf.float32)]

        @tf.function(input_signature=chunk_sig)
        def run_chunk(xc, yc, mc):  # the chunk's batches in order, as the in-memory epoch runs them
            n = tf.shape(xc)[0]
            s = [tf.constant(0.0)] * 3
            for i in tf.range((n + B - 1) // B):
                lo, hi = i * B, tf.minimum((i + 1) * B, n)
                xb = tf.cast(xc[lo:hi], tf.float32)
                if has_pred:
                    yb, mb = tf.cast(yc[lo:hi], tf.float32), mc[lo:hi]
                else:
                    yb, mb = xb, tf.zeros([hi - lo], tf.float32)
                out = global_step(xb, yb, mb, gen.normal([hi - lo, L]))
                s = [a + b for a, b in zip(s, out)]
            return s

        empty_y = tf.zeros([0, D], tf.uint8)
        empty_m = tf.zeros([0], tf.float32)

        pipe: dict = {"it": None, "next": None}  # one pipeline for consecutive epochs

        def run_epoch(e):
            if pipe["it"] is None or pipe["next"] != e:
                pipe["it"] = iter(_stream_dataset(feed["source"], feed["mask"], cfg, e, max(int(cfg.epochs), e + 1),
                                                  has_pred, feed["shuffle_frames"]))
            pipe["next"] = e + 1
            tot, seen = np.zeros(3), 0
            while seen < n_train:  # every training frame once per epoch, no chunk spans two epochs
                chunk = next(pipe["it"])
                seen += int(chunk[0].shape[0])
                yc, mc = (chunk[1], chunk[2]) if has_pred else (empty_y, empty_m)
                tot += [float(v) for v in run_chunk(chunk[0], yc, mc)]
            if seen != n_train:
                raise RuntimeError(f"streamed epoch {e} gave {seen} frames, expected {n_train}")
            if e + 1 >= int(cfg.epochs):
                pipe["it"] = None  # the run is over: let the pipeline go
            return list(tot / n_train)[:3 if has_pred else 2]
    else:
        x_t = tf.constant(np.asarray(feed["x"], np.float32))
        nxt_t = tf.constant(np.asarray(feed["next"], np.int64))

        @tf.function
        def epoch(x, nxt):
            n = tf.shape(x)[0]
            perm = tf.argsort(gen.uniform([n]))
            s = [tf.constant(0.0)] * 3
            for i in tf.range((n + B - 1) // B):
                idx = perm[i * B:tf.minimum((i + 1) * B, n)]
                xb = tf.gather(x, idx)
                if has_pred:
                    ni = tf.gather(nxt, idx)
                    mb = tf.cast(ni >= 0, tf.float32)
                    yb = tf.gather(x, tf.maximum(ni, 0))
                else:
                    yb, mb = xb, tf.zeros([tf.shape(xb)[0]], tf.float32)
                out = global_step(xb, yb, mb, gen.normal([tf.shape(xb)[0], L]))
                s = [a + b for a, b in zip(s, out)]
            nf = tf.cast(n, tf.float32)
            return [a / nf for a in s]

        def run_epoch(e):
            return [float(v) for v in epoch(x_t, nxt_t)][:3 if has_pred else 2]

    evaluate = _tf_evaluator(enc, dec, pred, jit, x_val, next_val)
    return _epoch_runner(run_epoch, evaluate, x_val, eps_val, has_pred, cfg, callbacks)


def _seed_everything(seed: int) -> None:
    keras = _keras()
    keras.utils.set_random_seed(int(seed))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


class _TqdmEpochs:
    """Keras callback showing a tqdm bar over epochs with the latest losses."""

    def __new__(cls, epochs: int, enabled: bool):
        keras = _keras()

        class _CB(keras.callbacks.Callback):
            bar = None

            def on_train_begin(self, logs=None):
                # files.progress: a few lines, not one per epoch, when stderr is a log file or pipe
                self.bar = files.progress(total=epochs, desc="training VAE", unit="epoch",
                                          disable=not enabled)

            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                self.bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.1f}",
                                     val_loss=f"{logs.get('val_loss', float('nan')):.1f}",
                                     refresh=False)  # drawn by update(), which respects mininterval
                self.bar.update(1)

            def on_train_end(self, logs=None):
                if self.bar is not None:
                    self.bar.close()
                    self.bar = None

        return _CB()


def _scores(model: StyleVAE, x: np.ndarray, groups, eps: np.ndarray, prefix: str,
            nxt: np.ndarray) -> dict:
    """R, D (P), loss (nats per frame) and note scores of the written outputs on one held-out set."""
    terms = _evaluate(model._encoder, model._decoder, x, eps, model._predictor, nxt)
    d, r = terms[0], terms[1]
    written = binarize_by_piece(model.reconstruct(x), model.threshold, model.spec, groups)
    s = note_scores(x, written)
    out = {f"{prefix}_d_nats": d, f"{prefix}_r_nats": r,
           f"{prefix}_loss_nats": d + model.config.beta * r + (
               model.config.gamma * terms[2] if model.has_predictor else 0.0),
           f"{prefix}_precision": s["precision"], f"{prefix}_recall": s["recall"],
           f"{prefix}_f1": s["f1"]}
    if model.has_predictor:
        out[f"{prefix}_p_nats"] = terms[2]
    return out


def held_out_scores(model: StyleVAE, frames: np.ndarray, groups: np.ndarray | None = None,
                    role: str = "test") -> dict:
    """A model's R, D (and P), loss, precision, recall and note F1 on held-out frames, as ``train`` reports them.

    D, R and P use reparameterisation noise from the role's own random stream (seeded by the
    model's seed), F1 the outputs as written (:func:`binarize_by_piece` at the model's threshold).

    Args:
        model: a StyleVAE.
        frames: (N, frame_size) binary frames of held-out pieces, each piece's frames consecutive.
        groups: (N,) piece label per frame, or None (one piece for P; single frames for F1).
        role: "test" or "validation" (chooses the noise stream and the keys' prefix).

    Returns:
        dict ``{role}_d_nats``, ``{role}_r_nats``, ``{role}_loss_nats`` (nats per frame),
        ``{role}_precision``, ``{role}_recall``, ``{role}_f1``, and ``{role}_p_nats`` with a head.

    Used in: :func:`train`, qbdi_utils.predictive.evaluate, ``qbdi evaluate``.
    """
    stream = {"validation": _VALIDATION_STREAM, "test": _TEST_STREAM}.get(role)
    if stream is None:
        raise ValueError(f"role must be 'validation' or 'test', got {role!r}")
    x = (np.asarray(frames) != 0).astype(np.uint8)
    eps = _eval_noise(model.config.seed, stream, len(x), model.latent_dim)
    return _scores(model, x, groups, eps, role, successor_index(groups, len(x)))


def cap_held_out(indices: np.ndarray, groups: np.ndarray | None, max_frames: int | None, seed: int,
                 role: str = "validation") -> np.ndarray:
    """At most ``max_frames`` frames of a held-out set, as whole pieces chosen by the seed.

    The set's pieces are visited in a seeded random order (its own stream per role) and each is
    taken whole while it still fits under the cap. If no piece fits, the first ``max_frames``
    frames of the first piece in that order are taken. Without groups, ``max_frames`` single
    frames are drawn.

    Args:
        indices: sorted frame indices of the held-out set (e.g. ``split_pieces``' validation_idx).
        groups: (N,) piece label of every frame of the corpus, or None.
        max_frames: the cap (>= 1), or None for no cap.
        seed: the training seed.
        role: "validation" or "test" (chooses the random stream).

    Returns:
        Sorted int64 subset of ``indices`` (all of them when they fit under the cap).

    Raises:
        OptionError: max_frames < 1.

    Used in: :func:`train` (``max_eval_frames``; always when streaming).
    """
    idx = np.asarray(indices, dtype=np.int64)
    if max_frames is None:
        return idx
    if int(max_frames) < 1:
        raise OptionError(f"max_eval_frames must be >= 1, got {max_frames}")
    cap = int(max_frames)
    if len(idx) <= cap:
        return idx
    stream = {"validation": _VALIDATION_STREAM, "test": _TEST_STREAM}[role]
    rng = np.random.default_rng([int(seed), 10 + stream])
    if groups is None:
        return np.sort(rng.choice(idx, cap, replace=False))
    g = np.asarray(groups)[idx]
    labels, counts = np.unique(g, return_counts=True)
    order = rng.permutation(len(labels))
    chosen, total = [], 0
    for k in order:
        if total + counts[k] <= cap:
            chosen.append(k)
            total += int(counts[k])
            if total == cap:
                break
    if not chosen:
        return idx[g == labels[order[0]]][:cap]
    return idx[np.isin(g, labels[chosen])]


#: Frames per held-out set (validation, test) when streaming and ``max_eval_frames`` is not given.
STREAM_EVAL_FRAMES = 2000


def _latent_stats_streamed(model: StyleVAE, source) -> dict:
    """Mean and variance over ALL frames of a frame source of the latent means, shard by shard.

    Chan et al.'s pairwise update of (count, mean, sum of squared deviations) in float64: the same
    numbers as ``mean.var(axis=0)`` over the concatenated frames, up to rounding.
    """
    L = model.latent_dim
    n_tot, mean, m2 = 0, np.zeros(L), np.zeros(L)
    for frames in stream_mod.read_shards(source):
        if not len(frames):
            continue
        mu = model.encode(frames)[0].astype(np.float64)
        nb, mb = len(mu), mu.mean(axis=0)
        delta, tot = mb - mean, n_tot + len(mu)
        m2 = m2 + ((mu - mb) ** 2).sum(axis=0) + delta ** 2 * (n_tot * nb / tot)
        mean = mean + delta * (nb / tot)
        n_tot = tot
    return {"mean": mean, "var": m2 / max(n_tot, 1)}


def _validation_inputs(x_val: np.ndarray, cfg: VAEConfig):
    """(validation frames float32 or None, their noise from the validation stream or None)."""
    if x_val is None or len(x_val) == 0:
        return None, None
    return (np.asarray(x_val, np.float32),
            _eval_noise(cfg.seed, _VALIDATION_STREAM, len(x_val), cfg.latent_dim))


def train(frames, *, spec: RollSpec | None = None, groups: np.ndarray | None = None,
          config: VAEConfig | None = None, progress: bool = True, fit_options: dict | None = None,
          stream: bool | None = None, max_eval_frames: int | None = None, devices: int | None = None,
          shuffle_frames: int | None = None, **fields) -> tuple[StyleVAE, dict]:
    """Train a style VAE on frames (Adam, loss D + beta R [+ gamma P]), choose its threshold, measure it.

    The loss per frame is D + beta * R in nats: beta weighs the RATE (beta-VAE convention; the
    paper's Appendix-B beta weighs the distortion, so beta = 1 / beta_paper up to scale). With
    gamma > 0 it is D + beta R + gamma P, P = m_t CE(x_{t+1} | z_t) of the predictor head (nats per
    frame; m_t = 0 for a piece's last bar, which still counts in D and R); pairs never cross a
    piece (``groups``) or a side of the split. gamma = 0 trains exactly the model without a head.
    The frames are split by piece into training / validation / test (:func:`split_pieces`); the
    threshold is chosen on validation, every "held-out" number comes from test.

    **Streaming** (a frame source, or ``stream=True``): the training frames are read shard by shard
    through tf.data (:func:`qbdi_utils.stream.training_batches`: shards in a seeded order, a
    bounded shuffle buffer, whole batches made in numpy, two chunks ahead in a background thread:
    :func:`qbdi_utils.stream.read_ahead`) and each epoch iterates them
    inside one ``tf.function`` with the same XLA step as in memory. Memory stays flat as the corpus
    grows: only O(N) small integers (piece ids, split indices, successor indices) are held for the
    whole corpus. The split is the same as in memory (same seed, same pieces); held-out sets are
    capped at ``max_eval_frames`` frames each (default :data:`STREAM_EVAL_FRAMES`, whole pieces
    chosen by seed: :func:`cap_held_out`) and gathered shard by shard; ``corpus_stats`` are the
    exact mean and variance of the latent means over ALL frames, accumulated shard by shard; the
    fingerprint is the source's ``frames_fingerprint()``. What is guaranteed: same seed -> same
    weights (same machine, same source and shards); the same training frames, split, initial
    weights and per-epoch frame count as in memory, but another shuffle order and noise draws, so
    the loss curves agree only statistically (within a few percent on small corpora), not bit for
    bit. The predictor head pairs consecutive frames of one piece inside one shard.

    **Several devices** (``devices=N > 1``): data-parallel training under a
    ``tf.distribute.MirroredStrategy`` over the first N GPUs (or N logical CPU devices:
    :func:`qbdi_utils.devices.split_cpu`, which must run before TensorFlow starts; ``train`` tries it
    itself). The GLOBAL batch stays ``batch_size``: each step draws the global batch and its noise
    once, each replica trains on its slice (its loss = its sum / the global batch size) and the
    gradients are summed across replicas, so N devices follow the 1-device run up to floating-point
    rounding. Variables (encoder, decoder, predictor, Adam's slots) live under the strategy.
    Multi-worker: set ``TF_CONFIG`` on every machine (cluster: the list of workers, task: this
    worker's index), run the SAME command (same corpus, seed and ``devices``) on each; training
    then uses ``MultiWorkerMirroredStrategy``; every worker returns the same model and only the
    chief (:func:`qbdi_utils.devices.is_chief`, worker 0) should save it. Example, two machines::

        TF_CONFIG='{"cluster": {"worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 0}}' \\
            qbdi train --corpus DIR --devices 1 --out model   # on b: "index": 1

    Args:
        frames: (N, spec.frame_size) binary frames, N >= 3 (>= 2 with test_fraction 0); the frames
            of one piece consecutive and in time order. Or a *frame source*
            (:mod:`qbdi_utils.stream`: e.g. ``shards.ShardedCorpus``, ``stream.ArraySource``),
            which is always streamed and carries its own pieces.
        spec: roll layout of the frames (default RollSpec()).
        groups: optional (N,) group label per frame (e.g. ``corpus.piece_index``); whole groups go
            to one side of the split, so held-out bars come from unseen pieces. Not with a source.
        config: base configuration (default ``PRESETS["paper"]``); ``input_dim`` is set from spec.
        progress: show a tqdm progress bar.
        fit_options: speed settings {"jit_compile": bool|"auto", "steps_per_execution": int,
            "loop": "auto"|"keras"} (see :func:`_fit_function`); they do not change the model.
            Streaming and several devices always use the project's TensorFlow loop.
        stream: None (default: stream a frame source, keep an array in memory), True (stream an
            array too, through ``stream.ArraySource``), False (in memory; refused for a source).
            :func:`qbdi_utils.stream.should_stream` decides from a memory budget.
        max_eval_frames: cap on the frames of each held-out set (whole pieces chosen by seed);
            None = no cap in memory, :data:`STREAM_EVAL_FRAMES` when streaming.
        devices: None or 1 (one device), N > 1 (data-parallel over N local devices); with
            ``TF_CONFIG`` set, any N selects the multi-worker strategy.
        shuffle_frames: shuffle-buffer size when streaming (default
            ``stream.DEFAULT_SHUFFLE_FRAMES``); the buffer's memory is about 2.5 KB per frame
            (5 KB with gamma > 0).
        **fields: VAEConfig fields overriding the config: hidden_dim, latent_dim (paper 500, 500),
            beta (weight of R, >= 0), epochs, batch_size, learning_rate, validation_fraction,
            test_fraction, seed (seeds weights, noise, shuffling and the split: same seed, same
            weights), gamma (weight of the predictive term, >= 0; 0 = no predictor head).

    Returns:
        (model, history): history has per-epoch lists ``loss``, ``d_nats``, ``r_nats`` (running
        means over the epoch's training batches) and ``val_loss``, ``val_d_nats``, ``val_r_nats``
        (validation frames after the epoch), all in nats per frame, plus ``epoch`` (1-based),
        ``epoch_seconds`` (training wall time per epoch, TensorFlow loops), ``train_idx``,
        ``validation_idx``, ``test_idx`` (the held-out sets as scored, i.e. after any cap),
        ``threshold_grid``, ``threshold_f1`` (validation F1 per grid threshold); with gamma > 0
        also ``p_nats``, ``val_p_nats`` and ``n_pairs`` (training pairs (x_t, x_{t+1})).
        ``model.info`` holds ``validation_*`` and ``test_*`` (= ``held_out_*``) R, D, loss,
        precision, recall, F1; streamed or multi-device runs also ``streamed``, ``devices`` and
        ``max_eval_frames``.

    Raises:
        OptionError: frames of the wrong shape, a field unknown or out of range, too few frames,
            groups or stream=False with a frame source, streaming or devices on a non-TensorFlow
            backend, more devices than there are.
        TrainingDivergedError: (an OptionError) the training loss became NaN or infinite (checked
            after every epoch, e.g. ``beta=inf`` or a huge learning rate); no model is returned.
        CorpusError: a frame source whose shards disagree with its sizes or piece ids.

    Used in: notebooks/02_vae_training.ipynb, ``qbdi train``, benchmarks/bench_scale.py.
    """
    spec = RollSpec() if spec is None else spec
    source = None
    if stream_mod.is_frame_source(frames):
        if stream is False:
            raise OptionError("a frame source is always streamed; pass an array to train in memory")
        if groups is not None:
            raise OptionError("a frame source carries its own pieces (piece_index); do not pass groups")
        source = frames
        if int(source.frame_size) != spec.frame_size:
            raise OptionError(f"the frame source holds frames of {source.frame_size} cells, the roll "
                              f"layout has {spec.frame_size}")
    else:
        x = np.asarray(frames)
        if x.ndim != 2 or x.shape[1] != spec.frame_size:
            raise OptionError(f"frames must have shape (N, {spec.frame_size}), got {x.shape}")
    cfg = (PRESETS["paper"] if config is None else config).replace(input_dim=spec.frame_size, **fields)
    if max_eval_frames is not None and int(max_eval_frames) < 1:
        raise OptionError(f"max_eval_frames must be >= 1, got {max_eval_frames}")
    if shuffle_frames is not None and int(shuffle_frames) < 1:
        raise OptionError(f"shuffle_frames must be >= 1, got {shuffle_frames}")
    if source is None and stream:
        if groups is not None and len(groups) != len(x):
            raise ValueError(f"groups must have {len(x)} entries, got {len(groups)}")
        source = stream_mod.ArraySource(x, groups)
    keras = _keras()
    if (source is not None or devices not in (None, 1)) and keras.backend.backend() != "tensorflow":
        raise OptionError("streaming and multi-device training need the TensorFlow backend "
                          f"(KERAS_BACKEND is {keras.backend.backend()!r})")
    strategy = devices_mod.strategy_for(devices)
    if source is None:
        return _train_in_memory(x, spec, groups, cfg, progress, fit_options, max_eval_frames, strategy)
    return _train_streamed(source, spec, cfg, progress, fit_options,
                           STREAM_EVAL_FRAMES if max_eval_frames is None else int(max_eval_frames),
                           stream_mod.DEFAULT_SHUFFLE_FRAMES if shuffle_frames is None else int(shuffle_frames),
                           strategy)


def _train_in_memory(x, spec, groups, cfg, progress, fit_options, max_eval_frames, strategy):
    """:func:`train` on an in-memory array (the fast path; with a strategy, the data-parallel loop)."""
    x = (x != 0).astype(np.uint8)
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(x):
            raise ValueError(f"groups must have {len(x)} entries, got {len(groups)}")
        if len(groups):
            # the longest training piece, so that improvise can warn about queries longer than any
            _, piece_of_frame = np.unique(groups, return_inverse=True)
            cfg = cfg.replace(max_piece_frames=int(np.bincount(piece_of_frame).max()))
    train_idx, val_idx, test_idx = split_pieces(len(x), cfg.validation_fraction, cfg.test_fraction,
                                                cfg.seed, groups)
    val_idx = cap_held_out(val_idx, groups, max_eval_frames, cfg.seed, "validation")
    test_idx = cap_held_out(test_idx, groups, max_eval_frames, cfg.seed, "test")
    x_tr, x_val, x_test = x[train_idx], x[val_idx], x[test_idx]
    nxt = successor_index(groups, len(x))
    next_tr, next_val, next_test = (_subset_successors(nxt, idx) for idx in (train_idx, val_idx, test_idx))

    _seed_everything(cfg.seed)
    callbacks = [_TqdmEpochs(cfg.epochs, progress)]
    if strategy is None:
        trainer = _make_trainer(cfg, cfg.seed, fit_options)
        fit = _fit_function(trainer, x_tr, cfg, x_val, callbacks, fit_options,
                            next_tr=next_tr, next_val=next_val)
    else:
        with strategy.scope():
            trainer = _make_trainer(cfg, cfg.seed, fit_options)
        xv, eps_val = _validation_inputs(x_val, cfg)
        fit = _tf_fit_tf(trainer, cfg, {"x": x_tr, "next": next_tr}, xv, eps_val, callbacks,
                             {**_FIT_DEFAULTS, **(fit_options or {})}, next_val, strategy)
    t0 = time.perf_counter()
    hist = fit(cfg.epochs)
    train_seconds = time.perf_counter() - t0
    extra = {}
    if strategy is not None or max_eval_frames is not None:
        extra = {"streamed": False, "devices": strategy.num_replicas_in_sync if strategy is not None else 1,
                 "max_eval_frames": max_eval_frames}
    return _finish(trainer, hist, train_seconds, spec, cfg, frames_fingerprint(x),
                   lambda model: _latent_stats(model, x), len(x), groups, (train_idx, val_idx, test_idx),
                   (x_val, x_test), (next_tr, next_val, next_test), extra)


def _latent_stats(model: StyleVAE, x: np.ndarray) -> dict:
    """Mean and variance over the frames x of the latent means (float64)."""
    mean, _ = model.encode(x)
    return {"mean": mean.astype(np.float64).mean(axis=0), "var": mean.astype(np.float64).var(axis=0)}


def _train_streamed(source, spec, cfg, progress, fit_options, max_eval_frames, shuffle_frames, strategy):
    """:func:`train` on a frame source, streamed (see there)."""
    n = int(source.n_frames)
    pid = np.asarray(source.piece_index)
    if len(pid) != n:
        raise CorpusError(f"frame source is inconsistent: piece_index has {len(pid)} entries, "
                          f"n_frames is {n}")
    known = bool(getattr(source, "pieces_known", True))
    groups = pid if known else None
    if known and n:
        cfg = cfg.replace(max_piece_frames=int(np.unique(pid, return_counts=True)[1].max()))
    train_idx, val_idx, test_idx = split_pieces(n, cfg.validation_fraction, cfg.test_fraction,
                                                cfg.seed, groups)
    val_idx = cap_held_out(val_idx, groups, max_eval_frames, cfg.seed, "validation")
    test_idx = cap_held_out(test_idx, groups, max_eval_frames, cfg.seed, "test")
    nxt = stream_mod.source_successors(source)
    next_tr, next_val, next_test = (_subset_successors(nxt, idx) for idx in (train_idx, val_idx, test_idx))
    del nxt
    x_val = stream_mod.gather_frames(source, val_idx)
    x_test = stream_mod.gather_frames(source, test_idx)
    mask = np.zeros(n, dtype=bool)
    mask[train_idx] = True

    _seed_everything(cfg.seed)
    if strategy is None:
        trainer = _make_trainer(cfg, cfg.seed, fit_options)
    else:
        with strategy.scope():
            trainer = _make_trainer(cfg, cfg.seed, fit_options)
    xv, eps_val = _validation_inputs(x_val, cfg)
    feed = {"source": source, "mask": mask, "n_train": len(train_idx), "shuffle_frames": shuffle_frames}
    fit = _tf_fit_tf(trainer, cfg, feed, xv, eps_val, [_TqdmEpochs(cfg.epochs, progress)],
                         {**_FIT_DEFAULTS, **(fit_options or {})}, next_val, strategy)
    t0 = time.perf_counter()
    hist = fit(cfg.epochs)
    train_seconds = time.perf_counter() - t0
    extra = {"streamed": True, "devices": strategy.num_replicas_in_sync if strategy is not None else 1,
             "max_eval_frames": max_eval_frames, "shuffle_frames": shuffle_frames}
    return _finish(trainer, hist, train_seconds, spec, cfg, source.frames_fingerprint(),
                   lambda model: _latent_stats_streamed(model, source), n, groups,
                   (train_idx, val_idx, test_idx), (x_val, x_test), (next_tr, next_val, next_test), extra)


def _finish(trainer, hist, train_seconds, spec, cfg, fingerprint, stats, n_frames, groups, idx, held,
            nexts, extra):
    """The trained model with its threshold, held-out scores, corpus statistics, info and history."""
    keras = _keras()
    train_idx, val_idx, test_idx = idx
    x_val, x_test = held
    next_tr, next_val, next_test = nexts
    g_val = None if groups is None else groups[val_idx]
    g_test = None if groups is None else groups[test_idx]
    model = StyleVAE(trainer.encoder, trainer.decoder, spec=spec, config=cfg,
                     fingerprint=fingerprint, predictor=trainer.predictor)
    model.threshold, f1_grid = choose_threshold(x_val, model.reconstruct(x_val), spec=spec, groups=g_val)
    L = cfg.latent_dim
    info_scores = _scores(model, x_val, g_val, _eval_noise(cfg.seed, _VALIDATION_STREAM, len(x_val), L),
                          "validation", next_val)
    if len(x_test):
        info_scores.update(_scores(model, x_test, g_test,
                                   _eval_noise(cfg.seed, _TEST_STREAM, len(x_test), L), "test", next_test))
    reported = "test" if len(x_test) else "validation"
    for k in ("d_nats", "r_nats", "loss_nats", "precision", "recall", "f1") + (
            ("p_nats",) if model.has_predictor else ()):
        info_scores[f"held_out_{k}"] = info_scores[f"{reported}_{k}"]
    model.corpus_stats = stats(model)
    curves = ("loss", "d_nats", "r_nats", "val_loss", "val_d_nats", "val_r_nats") + (
        ("p_nats", "val_p_nats") if model.has_predictor else ())
    history = {k: [float(v) for v in hist[k]] for k in curves}
    history.update({
        "epoch": list(range(1, cfg.epochs + 1)),
        "train_idx": train_idx, "validation_idx": val_idx, "test_idx": test_idx,
        "threshold_grid": _THRESHOLD_GRID.tolist(), "threshold_f1": f1_grid.tolist(),
    })
    if "epoch_seconds" in hist:
        history["epoch_seconds"] = [float(v) for v in hist["epoch_seconds"]]
    if model.has_predictor:
        history["n_pairs"] = int(np.count_nonzero(next_tr >= 0))
        history["next_tr"] = next_tr
    model.info = {
        "train_seconds": round(train_seconds, 2),
        "n_frames": int(n_frames), "n_train": int(len(train_idx)), "n_validation": int(len(x_val)),
        "n_test": int(len(x_test)), "n_held_out": int(len(x_test) if len(x_test) else len(x_val)),
        "held_out_set": reported,
        **info_scores,
        "backend": keras.backend.backend(),
        **({"n_train_pairs": int(np.count_nonzero(next_tr >= 0))} if model.has_predictor else {}),
        **extra,
        "history": {k: history[k] for k in curves},
    }
    if groups is not None:
        model.info["validation_groups"] = sorted(int(g) for g in np.unique(g_val))
        model.info["test_groups"] = sorted(int(g) for g in np.unique(g_test))
    return model, history


# --------------------------------------------------------------------------------------------
# The default model
# --------------------------------------------------------------------------------------------


def default_model_dir() -> Path:
    """Where the default model lives: ``models_dir() / "default"``.

    Returns:
        The directory (it may not exist yet).

    Used in: notebooks 02-05 (through :func:`default_model`), benchmarks/bench_generate.py.
    """
    return paths.models_dir() / "default"


def record_corpus(model: StyleVAE, source, corpus) -> None:
    """Note in ``model.info["corpus"]`` where the training frames came from, so that
    ``qbdi navigate --source corpus`` (:func:`qbdi_utils.navigate.model_corpus`) can load them again.

    Args:
        model: the freshly trained model.
        source: what was given to ``corpus.load_corpus`` ("chorales", "essen" or a folder / file path).
        corpus: the loaded :class:`~qbdi_utils.corpus.Corpus`.
    """
    src = str(source) if str(source) in corpus_mod.NAMED_SOURCES else str(Path(source).resolve())
    model.info["corpus"] = {"source": src, "options": dict(getattr(corpus, "options", None) or {}),
                            "fingerprint": getattr(corpus, "fingerprint", "")}


def same_config(a: VAEConfig, b: VAEConfig) -> bool:
    """Same configuration, ignoring what training derives from the data (max_piece_frames)."""
    strip = lambda c: {k: v for k, v in c.to_dict().items() if k != "max_piece_frames"}  # noqa: E731
    return strip(a) == strip(b)


def cached_model(config: VAEConfig | None = None, *, source: str = "chorales", name: str | None = None,
                 progress: bool = True, retrain: bool = False) -> StyleVAE:
    """A model of this configuration trained on a corpus, cached on disk by configuration and data.

    Loads ``models_dir()/name`` when the model there was trained on the same frames (fingerprint)
    with the same configuration; otherwise trains it (with the corpus's pieces as groups) and
    saves it there. Notebook grids (e.g. over gamma and seeds) re-run cheaply this way.

    Args:
        config: the VAEConfig (default ``PRESETS["paper"]``), e.g. ``PRESETS["paper"].replace(gamma=1.0, seed=1)``.
        source: corpus for ``corpus.load_corpus`` ("chorales", "essen" or a MIDI folder).
        name: subdirectory of ``models_dir()``; default ``"{source name}-{12 hex digits of the config}"``.
        progress: show progress bars (corpus loading, training).
        retrain: train even if a matching cached model exists.

    Returns:
        The model (``model.from_cache`` says whether it was loaded).

    Raises:
        CorpusError: the corpus cannot be loaded.
        OptionError: the corpus is too small to split.

    Used in: :func:`default_model`; notebook 06 (deep music information dynamics).
    """
    config = PRESETS["paper"] if config is None else config
    spec = RollSpec()
    corpus = corpus_mod.load_corpus(source, spec=spec, progress=progress)
    config = config.replace(input_dim=spec.frame_size)
    if name is None:
        key = json.dumps({k: v for k, v in config.to_dict().items() if k != "max_piece_frames"},
                         sort_keys=True)
        name = f"{Path(str(source)).name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    fp = frames_fingerprint(corpus.frames)
    d = paths.models_dir() / name
    if not retrain and (d / MODEL_FILE).is_file():
        try:
            model = StyleVAE.load(d, spec=spec)
            if model.fingerprint == fp and same_config(model.config, config):
                model.from_cache = True
                return model
        except ModelError:
            pass
    model, _ = train(corpus.frames, spec=spec, groups=corpus.piece_index, progress=progress,
                     config=config)
    record_corpus(model, source, corpus)
    model.save(d, force=True)  # the cache entry is replaced (atomically) when stale
    model.from_cache = False
    return model


def default_model(progress: bool = True, *, retrain: bool = False) -> StyleVAE:
    """The paper's model trained on the default corpus (the 4/4 Bach chorales), cached on disk.

    Loads ``models_dir()/default`` when its training-frame fingerprint and configuration match the
    current default corpus and :data:`DEFAULT_CONFIG` (= ``PRESETS["paper"]``); otherwise trains it
    (a few minutes on two CPU cores) and saves it there.

    Args:
        progress: show progress bars (corpus loading, training).
        retrain: train even if a matching cached model exists.

    Returns:
        The model; ``model.info`` holds the training facts (validation and test R, D, F1, wall
        time, history).

    Raises:
        CorpusError: the chorales cannot be loaded.

    Used in: notebooks 02-05, ``qbdi improvise`` without ``--model``.
    """
    return cached_model(DEFAULT_CONFIG, source="chorales", name=default_model_dir().name,
                        progress=progress, retrain=retrain)
