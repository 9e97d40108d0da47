"""The TensorFlow training loop of the style VAE: in memory, streamed, on one device or several.

:func:`tf_fit` trains in memory (each epoch one compiled graph: :func:`_memory_epochs`), streamed
(a corpus larger than memory: a frame source of :mod:`qbdi_utils.training.stream`, read shard by
shard through tf.data: :func:`_streamed_epochs`) and data-parallel (a distribution strategy of
:mod:`qbdi_utils.training.devices`), all through one Adam step on the loss of
:func:`qbdi_utils.model.objective` (:func:`_global_step`); the per-epoch bookkeeping is
:func:`_epoch_runner` with the shared steps of :mod:`qbdi_utils.training.epochs`.

Imports: errors, model, pianoroll, training.epochs, training.stream.
Used in: :func:`qbdi_utils.training.fit.fit_function`, :func:`qbdi_utils.training.train`,
tests/test_training_options.py.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np

from qbdi_utils.errors import OptionError, TrainingDivergedError
from qbdi_utils.model import VAEConfig, import_keras, loss_terms, objective, predictive_terms
from qbdi_utils.pianoroll import RollSpec
from qbdi_utils.training import stream as stream_mod
from qbdi_utils.training.epochs import (
    EVAL_CHUNK, BestEpoch, ValidationFrames, check_finite, early_stopper, kl_weight, pair_arrays,
)

__all__ = ["tf_fit", "transpose_batch"]


def tf_fit(trainer, cfg: VAEConfig, feed: dict, validation: ValidationFrames | None, *, callbacks=(),
           opts: dict, strategy=None):
    """The TensorFlow training loop: in memory or streamed, on one device or several (``strategy``).

    In memory each epoch is one ``tf.function`` that draws the permutation and then each batch's
    noise from the training generator (:func:`_memory_epochs`); streamed, tf.data hands over
    chunks of whole batches (:func:`qbdi_utils.training.stream.stream_dataset`) and each chunk's
    batches run in one ``tf.function`` (:func:`_streamed_epochs`). The step is
    :func:`_global_step`; the streamed epoch runs about as fast as the in-memory one
    (benchmarks/bench_scale.py). Variables must have been created under ``strategy.scope()``.

    Args:
        trainer: the compiled trainer of :func:`make_trainer`.
        cfg: the configuration.
        feed: ``{"x": x_tr, "next": next_tr, "n_pitches": int}`` (in memory) or ``{"source": src,
            "mask": train mask, "n_train": int, "shuffle_frames": int, "n_pitches": int}`` (streamed).
        validation: the validation frames (:func:`validation_inputs`), or None.
        callbacks: Keras callbacks (``on_train_begin``, ``on_epoch_end``, ``on_train_end``).
        opts: the speed settings (:data:`FIT_DEFAULTS` filled in).
        strategy: a ``tf.distribute`` strategy, or None for one device.

    Returns:
        ``fit(epochs) -> history`` (:func:`_epoch_runner`).
    """
    import_keras()
    import tensorflow as tf

    jit = opts["jit_compile"] in (True, "auto")
    enc, dec, opt = trainer.encoder, trainer.decoder, trainer.optimizer
    pred = getattr(trainer, "predictor", None)
    variables = enc.trainable_variables + dec.trainable_variables
    if pred is not None:
        variables = variables + pred.trainable_variables
    scope = strategy.scope if strategy is not None else contextlib.nullcontext
    with scope():
        opt.build(variables)
    gen = tf.random.Generator.from_seed(int(cfg.seed))  # made outside the strategy: one stream
    warm = int(cfg.kl_warmup_epochs) > 0
    if warm:  # the rate's weight of the current epoch (without warm-up the constant beta, as before)
        with scope():
            beta_now = tf.Variable(kl_weight(cfg, 0), trainable=False, dtype=tf.float32, name="kl_weight")
    else:
        beta_now = float(cfg.beta)
    stopper = early_stopper(cfg, (enc, dec, pred), validation is not None)
    n_pitches = int(feed.get("n_pitches") or RollSpec().n_pitches)
    if int(cfg.transpose_range) and int(cfg.input_dim) % (2 * n_pitches):
        raise OptionError(f"transposition augmentation: frames of {cfg.input_dim} cells are not whole "
                          f"steps of 2 x {n_pitches} pitches")
    step = _TrainStep(enc, dec, pred, opt, variables, beta_now, float(cfg.gamma), gen, strategy, jit,
                     int(cfg.transpose_range), n_pitches)
    global_step = _global_step(step)
    epochs = _streamed_epochs if "source" in feed else _memory_epochs
    run_epoch = epochs(feed, cfg, global_step, gen, pred is not None)
    evaluate = _tf_evaluator(enc, dec, pred, jit, validation)
    return _epoch_runner(run_epoch, evaluate, validation, cfg, has_pred=pred is not None, callbacks=callbacks,
                         stopper=stopper, set_kl_weight=beta_now.assign if warm else None)


@dataclass(frozen=True)
class _TrainStep:
    """What one training step of :func:`tf_fit` acts on (the networks, optimiser, weights, noise).

    Attributes:
        enc, dec, pred: the encoder, decoder and predictor head (None without one).
        opt: the (built) Keras optimiser; variables: the trainable variables it updates.
        beta_now: the rate's weight (a float, or a ``tf.Variable`` under KL warm-up).
        gamma: the predictive term's weight.
        gen: the training ``tf.random.Generator`` (noise, transposition shifts).
        strategy: a ``tf.distribute`` strategy, or None for one device.
        jit: compile the gradient with XLA.
        transpose_range: K of the transposition augmentation (0 = off); n_pitches: pitches per plane.
    """

    enc: object
    dec: object
    pred: object
    opt: object
    variables: list
    beta_now: object
    gamma: float
    gen: object
    strategy: object
    jit: bool
    transpose_range: int
    n_pitches: int


def _global_step(s: _TrainStep):
    """``global_step(xb, yb, mb, eps) -> (sum D, sum R, sum P)``: one Adam step on a global batch.

    On one device the step (gradient and Adam update) is one XLA graph on the batch mean. Each
    global batch and its noise are drawn once (cross-replica), so the run sees the same frames and
    noise on 1 or N devices; with a strategy every replica takes its slice of the global batch
    (``strategy.run``), its loss is its sum over the slice divided by the GLOBAL batch size, and the
    optimiser sums the replicas' gradients: the gradient of the global batch mean, as on one device.
    With ``transpose_range`` K > 0 each frame (and its successor) is first moved by a shift drawn
    after the batch's noise (:func:`transpose_batch`).
    """
    import tensorflow as tf

    enc, dec, pred, opt, variables, strategy = s.enc, s.dec, s.pred, s.opt, s.variables, s.strategy
    has_pred, beta_now, gamma, K = pred is not None, s.beta_now, s.gamma, s.transpose_range
    R = strategy.num_replicas_in_sync if strategy is not None else 1

    def grads_and_sums(xb, yb, mb, eps, n_global=None):
        """Gradient of the batch's loss: its mean (one device), or its sum over this replica's
        slice divided by the global batch size ``n_global``."""
        with tf.GradientTape() as tape:
            if has_pred:
                d, r, p = predictive_terms(enc, dec, pred, xb, y=yb, mask=mb, eps=eps, training=True)
                per_frame = objective(d, r, p, beta=beta_now, gamma=gamma)
            else:
                d, r = loss_terms(enc, dec, xb, eps, training=True)
                p = tf.zeros_like(d)
                per_frame = objective(d, r, beta=beta_now)
            loss = tf.reduce_mean(per_frame) if n_global is None else tf.reduce_sum(per_frame) / n_global
        return tape.gradient(loss, variables), (tf.reduce_sum(d), tf.reduce_sum(r), tf.reduce_sum(p))

    @tf.function(jit_compile=s.jit, reduce_retracing=True)
    def step(xb, yb, mb, eps):  # one device: gradient and Adam update in one XLA graph
        grads, sums = grads_and_sums(xb, yb, mb, eps)
        opt.apply(grads, variables)
        return sums

    # several replicas: the gradient is compiled, the update (which all-reduces the gradients
    # across replicas, a synchronisation point) must not sit inside a nested tf.function
    replica_grads = tf.function(grads_and_sums, jit_compile=s.jit, reduce_retracing=True)

    def replica_slice(xb, yb, mb, eps):
        ctx = tf.distribute.get_replica_context()
        rid = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
        n = tf.shape(xb)[0]
        lo, hi = rid * n // R, (rid + 1) * n // R
        grads, sums = replica_grads(xb[lo:hi], yb[lo:hi], mb[lo:hi], eps[lo:hi], tf.cast(n, tf.float32))
        opt.apply(grads, variables)
        return sums

    def global_step(xb, yb, mb, eps):
        if K:  # one shift per frame (and its successor), drawn after the batch's noise
            shift = s.gen.uniform([tf.shape(xb)[0]], minval=-K, maxval=K + 1, dtype=tf.int32)
            xb = transpose_batch(xb, shift, s.n_pitches)
            if has_pred:
                yb = transpose_batch(yb, shift, s.n_pitches)
        if strategy is None:
            return step(xb, yb, mb, eps)
        out = strategy.run(replica_slice, args=(xb, yb, mb, eps))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, o, axis=None) for o in out]

    return global_step


def transpose_batch(xb, shift, n_pitches: int):
    """Frames moved by whole semitones, one shift per frame, in TensorFlow (training augmentation).

    Args:
        xb: (B, D) float tensor of flattened frames, D = steps * 2 * n_pitches (the play plane's
            n_pitches columns, then the articulate plane's, per step: :class:`RollSpec`).
        shift: (B,) int32 tensor of semitones (positive = up).
        n_pitches: pitches per plane.

    Returns:
        (B, D) float tensor: each frame's notes moved by its shift; notes moved past the lowest or
        highest pitch are dropped (as :func:`qbdi_utils.pianoroll.transpose_roll` does).
    """
    import tensorflow as tf

    P = int(n_pitches)
    b = tf.shape(xb)[0]
    x4 = tf.reshape(xb, [b, -1, 2, P])
    src = tf.range(P, dtype=tf.int32)[None, :] - tf.cast(shift, tf.int32)[:, None]  # (B, P)
    valid = tf.cast((src >= 0) & (src < P), xb.dtype)
    idx = tf.broadcast_to(tf.clip_by_value(src, 0, P - 1)[:, None, None, :], tf.shape(x4))
    out = tf.experimental.numpy.take_along_axis(x4, idx, axis=3) * valid[:, None, None, :]
    return tf.reshape(out, tf.shape(xb))


def _memory_epochs(feed: dict, cfg: VAEConfig, global_step, gen, has_pred: bool):
    """``run_epoch(e) -> [D, R(, P)]`` over in-memory frames: each epoch one ``tf.function`` that
    draws the permutation and then each batch's noise from the training generator."""
    import tensorflow as tf

    B, L = int(cfg.batch_size), int(cfg.latent_dim)
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
    return run_epoch


def _streamed_epochs(feed: dict, cfg: VAEConfig, global_step, gen, has_pred: bool):
    """``run_epoch(e) -> [D, R(, P)]`` over a frame source: tf.data chunks of whole batches, each
    chunk's batches in one ``tf.function`` (see :func:`tf_fit`)."""
    import tensorflow as tf

    B, L = int(cfg.batch_size), int(cfg.latent_dim)
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
            pipe["it"] = iter(stream_mod.stream_dataset(
                feed["source"], feed["mask"], cfg, first_epoch=e, last_epoch=max(int(cfg.epochs), e + 1),
                pairs=has_pred, shuffle_frames=feed["shuffle_frames"]))
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
    return run_epoch


def _tf_evaluator(enc, dec, pred, jit: bool, validation: ValidationFrames | None):
    """``evaluate(x, eps) -> [D, R(, P)]`` mean nats per frame over held-out frames (compiled sums).

    With a predictor head the next bars come from ``validation`` (only its frames are scored).
    """
    import tensorflow as tf

    if pred is None:
        @tf.function(jit_compile=jit, reduce_retracing=True)
        def sums(xb, eps):
            d, r = loss_terms(enc, dec, xb, eps)
            return tf.reduce_sum(d), tf.reduce_sum(r)

        def evaluate(x, eps):
            tot = np.zeros(2)
            for i in range(0, len(x), EVAL_CHUNK):
                tot += [float(v) for v in sums(tf.constant(x[i:i + EVAL_CHUNK]),
                                               tf.constant(eps[i:i + EVAL_CHUNK]))]
            return list(tot / len(x))

        return evaluate

    @tf.function(jit_compile=jit, reduce_retracing=True)
    def psums(xb, yb, mb, eps):
        d, r, p = predictive_terms(enc, dec, pred, xb, y=yb, mask=mb, eps=eps)
        return tf.reduce_sum(d), tf.reduce_sum(r), tf.reduce_sum(p)

    y_val, m_val = pair_arrays(validation.x, validation.next) if validation is not None else (None, None)

    def evaluate(x, eps):
        tot = np.zeros(3)
        for i in range(0, len(x), EVAL_CHUNK):
            sl = slice(i, i + EVAL_CHUNK)
            tot += [float(v) for v in psums(tf.constant(x[sl]), tf.constant(y_val[sl]),
                                            tf.constant(m_val[sl]), tf.constant(eps[sl]))]
        return list(tot / len(x))

    return evaluate


def _epoch_runner(run_epoch, evaluate, validation: ValidationFrames | None, cfg: VAEConfig, *,
                  has_pred: bool, callbacks, stopper: BestEpoch | None = None, set_kl_weight=None):
    """``fit(epochs) -> history``: the per-epoch bookkeeping shared by the TensorFlow loops.

    ``run_epoch(e)`` trains one epoch and returns its mean [D, R(, P)] per frame; the history also
    gets the validation terms, the loss, and ``epoch_seconds`` (wall time of each epoch's
    training, validation excluded). With a ``stopper`` the loop ends when it says so and the best
    epoch's weights are restored (``history["best_epoch"]``, 0-based); ``set_kl_weight(w)`` is
    called before each epoch with :func:`kl_weight` (KL warm-up).
    """
    beta, gamma = float(cfg.beta), float(cfg.gamma)
    names = ["d_nats", "r_nats"] + (["p_nats"] if has_pred else [])
    history: dict = {}

    def fit(epochs: int) -> dict:
        for cb in callbacks:
            cb.on_train_begin()
        start = len(history.get("epoch_seconds", []))  # a second call goes on where the first stopped
        for e in range(start, start + int(epochs)):
            if set_kl_weight is not None:
                set_kl_weight(kl_weight(cfg, e))
            t0 = time.perf_counter()
            terms = run_epoch(e)
            seconds = time.perf_counter() - t0
            logs = {"loss": float(objective(*terms, beta=beta, gamma=gamma)), **dict(zip(names, terms))}
            if validation is not None:
                vterms = evaluate(validation.x, validation.eps)
                logs["val_loss"] = float(objective(*vterms, beta=beta, gamma=gamma))
                logs.update({f"val_{k}": v for k, v in zip(names, vterms)})
            try:
                check_finite(e, logs, cfg)
            except TrainingDivergedError:
                for cb in callbacks:
                    cb.on_train_end()
                raise
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            history.setdefault("epoch_seconds", []).append(seconds)
            for cb in callbacks:
                cb.on_epoch_end(e, logs)
            if stopper is not None and stopper.update(e, logs["val_loss"]):
                break
        if stopper is not None:
            history["best_epoch"] = stopper.restore()
        for cb in callbacks:
            cb.on_train_end()
        return history

    return fit
