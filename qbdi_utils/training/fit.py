"""The fit loops of the style VAE: Adam on D + beta R (+ gamma P), in memory, streamed, on N devices.

Adam minimises the one loss of :func:`qbdi_utils.model.objective` per frame (nats). ``beta``
weighs the RATE (the beta-VAE convention); the paper's Appendix-B beta weighs the distortion,
beta = 1 / beta_paper up to scale. With ``gamma > 0`` the loss gains gamma * P from the predictor
head (:mod:`qbdi_utils.model.networks`).

On the TensorFlow backend one loop, :func:`tf_fit`, trains in memory (each epoch one compiled
graph), streamed (a corpus larger than memory: a frame source of :mod:`qbdi_utils.training.stream`,
read shard by shard through tf.data) and data-parallel (a distribution strategy of
:mod:`qbdi_utils.training.devices`); other backends use ``Model.fit`` (:func:`fit_function`).
Every loop checks the loss after each epoch (:func:`check_finite`).

Imports: errors, progress, model, training.split, training.stream.
Used in: :func:`qbdi_utils.training.train`, benchmarks/bench_train.py, tests.
"""

from __future__ import annotations

import time

import numpy as np

from qbdi_utils import progress
from qbdi_utils.errors import TrainingDivergedError
from qbdi_utils.model import (
    VAEConfig, build_networks, build_predictor, import_keras, loss_terms, objective, predictive_terms,
)
from qbdi_utils.training import stream as stream_mod
from qbdi_utils.training.split import VALIDATION_STREAM, eval_noise, successor_index

__all__ = ["EpochProgress", "FIT_DEFAULTS", "as_config", "check_finite", "fit_function", "make_trainer",
           "mean_terms", "pair_arrays", "seed_everything", "tf_fit", "validation_inputs"]

#: Settings that change speed, not the model; kept out of the configuration.
FIT_DEFAULTS = {"jit_compile": "auto", "steps_per_execution": 32, "loop": "auto"}

_EVAL_CHUNK = 1000


def pair_arrays(x: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(next bars y (N, D) float32, zero where none; mask (N,) float32)."""
    mask = (nxt >= 0).astype(np.float32)
    y = np.asarray(x, np.float32)[np.maximum(nxt, 0)] * mask[:, None]
    return y, mask


def mean_terms(encoder, decoder, x: np.ndarray, eps: np.ndarray, predictor=None,
               nxt: np.ndarray | None = None) -> tuple[float, ...]:
    """Mean D and R (and P with a predictor) in nats per frame over frames x with the given noise."""
    keras = import_keras()
    ops = keras.ops
    x = np.asarray(x, np.float32)
    if predictor is not None:
        y, mask = pair_arrays(x, successor_index(None, len(x)) if nxt is None else nxt)
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


def as_config(cfg) -> VAEConfig:
    return cfg if isinstance(cfg, VAEConfig) else VAEConfig.from_dict(cfg)


def make_trainer(cfg: VAEConfig, seed: int, fit_opts: dict | None = None):
    """A compiled Keras model whose output is (B, 2) = [D, R] per frame and whose loss is D + beta R."""
    keras = import_keras()
    ops = keras.ops
    cfg = as_config(cfg)
    fit_opts = {**FIT_DEFAULTS, **(fit_opts or {})}
    encoder, decoder = build_networks(cfg)
    predictor = build_predictor(cfg)  # None when gamma == 0: then exactly the pre-head trainer
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
        return objective(y_pred[:, 0], y_pred[:, 1], None if predictor is None else y_pred[:, 2],
                         beta=beta, gamma=gamma)

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


def check_finite(epoch: int, logs: dict, cfg: VAEConfig) -> None:
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


def validation_inputs(x_val: np.ndarray, cfg: VAEConfig):
    """(validation frames float32 or None, their noise from the validation stream or None)."""
    if x_val is None or len(x_val) == 0:
        return None, None
    return (np.asarray(x_val, np.float32),
            eval_noise(cfg.seed, VALIDATION_STREAM, len(x_val), cfg.latent_dim))


def fit_function(trainer, x_tr: np.ndarray, cfg: VAEConfig, x_val: np.ndarray | None = None,
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
    cfg = as_config(cfg)
    opts = {**FIT_DEFAULTS, **(fit_options or {})}
    keras = import_keras()
    predictor = getattr(trainer, "predictor", None)
    x_tr = np.asarray(x_tr, dtype=np.float32)
    if next_tr is None:
        next_tr = successor_index(None, len(x_tr))
    if x_val is not None and len(x_val) == 0:
        x_val = None
    eps_val = None
    if x_val is not None:
        x_val = np.asarray(x_val, dtype=np.float32)
        eps_val = eval_noise(cfg.seed, VALIDATION_STREAM, len(x_val), cfg.latent_dim)
        if next_val is None:
            next_val = successor_index(None, len(x_val))
    if keras.backend.backend() == "tensorflow" and opts.get("loop", "auto") != "keras":
        return tf_fit(trainer, cfg, {"x": x_tr, "next": next_tr}, x_val, eps_val, callbacks, opts,
                          next_val, None)
    y_tr = np.zeros((len(x_tr), 1), np.float32)
    beta, gamma = float(cfg.beta), float(cfg.gamma)
    inputs = x_tr if predictor is None else [x_tr, *pair_arrays(x_tr, next_tr)]
    record: dict = {}

    class _Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            terms = mean_terms(trainer.encoder, trainer.decoder, x_val, eps_val, predictor, next_val)
            vals = {"val_loss": objective(*terms, beta=beta, gamma=gamma),
                    "val_d_nats": terms[0], "val_r_nats": terms[1]}
            if predictor is not None:
                vals["val_p_nats"] = terms[2]
            if logs is not None:
                logs.update(vals)
            for k, v in vals.items():
                record.setdefault(k, []).append(v)

    class _StopOnNonFinite(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            check_finite(epoch, logs, cfg)

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

    y_val, m_val = pair_arrays(x_val, next_val) if x_val is not None else (None, None)

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
    history: dict = {}

    def fit(epochs: int) -> dict:
        for cb in callbacks:
            cb.on_train_begin()
        start = len(history.get("epoch_seconds", []))  # a second call goes on where the first stopped
        for e in range(start, start + int(epochs)):
            t0 = time.perf_counter()
            terms = run_epoch(e)
            seconds = time.perf_counter() - t0
            logs = {"loss": float(objective(*terms, beta=beta, gamma=gamma)), **dict(zip(names, terms))}
            if x_val is not None:
                vterms = evaluate(x_val, eps_val)
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
        for cb in callbacks:
            cb.on_train_end()
        return history

    return fit


def tf_fit(trainer, cfg: VAEConfig, feed: dict, x_val, eps_val, callbacks, opts: dict,
           next_val, strategy):
    """The TensorFlow training loop: in memory or streamed, on one device or several (``strategy``).

    ``feed`` is ``{"x": x_tr, "next": next_tr}`` (in memory) or ``{"source": src, "mask": train
    mask, "n_train": int, "shuffle_frames": int}`` (streamed). In memory each epoch is one
    ``tf.function`` that draws the permutation and then each batch's noise from the training
    generator; streamed, tf.data hands over chunks of whole batches (:func:`qbdi_utils.training.stream.stream_dataset`) and
    each chunk's batches run in one ``tf.function``. On one device the step (gradient and Adam
    update) is one XLA graph on the batch mean; the streamed epoch runs about as fast as the
    in-memory one (benchmarks/bench_scale.py). Each global batch and its noise are drawn once (cross-replica), so the run
    sees the same frames and noise on 1 or N devices; with a strategy every replica takes its
    slice of the global batch (``strategy.run``), its loss is its sum over the slice divided by the
    GLOBAL batch size, and the optimiser sums the replicas' gradients: the gradient of the global
    batch mean, as on one device. Variables must have been created under ``strategy.scope()``.
    """
    import_keras()
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
    beta, gamma = float(cfg.beta), float(cfg.gamma)
    gen = tf.random.Generator.from_seed(int(cfg.seed))  # made outside the strategy: one stream

    def grads_and_sums(xb, yb, mb, eps, n_global=None):
        """Gradient of the batch's loss: its mean (one device), or its sum over this replica's
        slice divided by the global batch size ``n_global``."""
        with tf.GradientTape() as tape:
            if has_pred:
                d, r, p = predictive_terms(enc, dec, pred, xb, yb, mb, eps)
                per_frame = objective(d, r, p, beta=beta, gamma=gamma)
            else:
                d, r = loss_terms(enc, dec, xb, eps)
                p = tf.zeros_like(d)
                per_frame = objective(d, r, beta=beta)
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
        run_epoch = _streamed_epochs(feed, cfg, global_step, gen, has_pred)
    else:
        run_epoch = _memory_epochs(feed, cfg, global_step, gen, has_pred)

    evaluate = _tf_evaluator(enc, dec, pred, jit, x_val, next_val)
    return _epoch_runner(run_epoch, evaluate, x_val, eps_val, has_pred, cfg, callbacks)



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
            pipe["it"] = iter(stream_mod.stream_dataset(feed["source"], feed["mask"], cfg, e, max(int(cfg.epochs), e + 1),
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
    return run_epoch


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


def seed_everything(seed: int) -> None:
    keras = import_keras()
    keras.utils.set_random_seed(int(seed))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


class EpochProgress:
    """Keras callback showing a tqdm bar over epochs with the latest losses."""

    def __new__(cls, epochs: int, enabled: bool):
        keras = import_keras()

        class _CB(keras.callbacks.Callback):
            bar = None

            def on_train_begin(self, logs=None):
                # progress.progress: a few lines, not one per epoch, when stderr is a log file or pipe
                self.bar = progress.progress(total=epochs, desc="training VAE", unit="epoch",
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
