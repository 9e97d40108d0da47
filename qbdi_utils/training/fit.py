"""The trainer of the style VAE and its entry point: Adam on D + beta R (+ gamma P).

Adam minimises the one loss of :func:`qbdi_utils.model.objective` per frame (nats). ``beta``
weighs the RATE (the beta-VAE convention); the paper's Appendix-B beta weighs the distortion,
beta = 1 / beta_paper up to scale. With ``gamma > 0`` the loss gains gamma * P from the predictor
head (:mod:`qbdi_utils.model.networks`).

:func:`make_trainer` builds the compiled trainer; :func:`fit_function` returns its training loop:
on the TensorFlow backend :func:`qbdi_utils.training.tf_loop.tf_fit` (in memory, streamed,
data-parallel), on other backends ``Model.fit`` (:func:`_keras_fit`). Every loop checks the loss
after each epoch (:func:`qbdi_utils.training.epochs.check_finite`).

Imports: errors, model, pianoroll, training.epochs, training.split, training.tf_loop.
Used in: :func:`qbdi_utils.training.train`, benchmarks/bench_train.py, tests.
"""

from __future__ import annotations

import numpy as np

from qbdi_utils.errors import OptionError, TrainingDivergedError
from qbdi_utils.model import (
    VAEConfig, build_networks, build_predictor, import_keras, loss_terms, objective, predictive_terms,
)
from qbdi_utils.pianoroll import RollSpec
from qbdi_utils.training.epochs import (
    EVAL_CHUNK, ValidationFrames, check_finite, early_stopper, pair_arrays, validation_inputs,
)
from qbdi_utils.training.split import successor_index
from qbdi_utils.training.tf_loop import tf_fit

__all__ = ["FIT_DEFAULTS", "as_config", "fit_function", "make_trainer", "mean_terms", "seed_everything"]

#: Settings that change speed, not the model; kept out of the configuration.
FIT_DEFAULTS = {"jit_compile": "auto", "steps_per_execution": 32, "loop": "auto"}


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
                d, r = loss_terms(self.encoder, self.decoder, x, eps, training=bool(training))
                return ops.stack([d, r], axis=-1)
            x, y, m = (ops.cast(t, "float32") for t in x)
            eps = keras.random.normal((ops.shape(x)[0], latent_dim), seed=self.noise)
            d, r, p = predictive_terms(self.encoder, self.decoder, self.predictor, x, y=y, mask=m, eps=eps,
                                       training=bool(training))
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


def fit_function(trainer, x_tr: np.ndarray, cfg: VAEConfig, x_val: np.ndarray | None = None, *,
                 callbacks=(), fit_options: dict | None = None, next_tr: np.ndarray | None = None,
                 next_val: np.ndarray | None = None, n_pitches: int = RollSpec().n_pitches):
    """The project's training loop: returns ``fit(epochs) -> history dict`` over in-memory frames.

    On the TensorFlow backend (unless ``fit_options["loop"] == "keras"``) this is :func:`tf_fit`:
    each epoch one ``tf.function`` looping over shuffled in-memory batches, the Adam step compiled
    by XLA; about twice as fast as ``Model.fit`` on two CPU cores (benchmarks/bench_train.py).
    Other backends use ``Model.fit`` with ``steps_per_execution`` (:func:`_keras_fit`). Both give
    per-epoch ``loss``, ``d_nats``, ``r_nats`` (and ``p_nats`` with a predictor head) and, with
    validation frames, ``val_*`` of the same, in nats per frame; the validation frames are scored
    after every epoch with fixed noise of their own stream (:func:`validation_inputs`).
    The training options of the configuration act here: ``patience`` (early stopping on the
    validation loss, the best epoch's weights restored: :class:`BestEpoch`; the history then
    holds ``best_epoch``, 0-based, and only the epochs run), ``kl_warmup_epochs``
    (:func:`kl_weight`), ``dropout_rate`` (the networks' dropout layers act in the training step)
    and ``transpose_range`` (:func:`transpose_batch` on each training batch, shifts drawn from the
    training generator). Warm-up and transposition need the TensorFlow loop. Both loops raise
    :class:`~qbdi_utils.errors.TrainingDivergedError` as soon as an epoch's loss is NaN or
    infinite (the callbacks' ``on_train_end`` is still called, so a progress bar is closed).

    Args:
        trainer: the compiled trainer of :func:`make_trainer`.
        x_tr: (N, D) training frames.
        cfg: the configuration (a :class:`VAEConfig` or its dict).
        x_val: (V, D) validation frames, or None / empty for none.
        callbacks: Keras callbacks; only ``on_train_begin``, ``on_epoch_end(epoch, logs)`` and
            ``on_train_end`` are called on the TensorFlow loop.
        fit_options: speed settings (:data:`FIT_DEFAULTS`); they do not change the model.
        next_tr: (N,) successor position of each training frame, -1 for none (default
            :func:`successor_index` of one piece); used only with a predictor head.
        next_val: (V,) the same for the validation frames.
        n_pitches: pitches per plane of the frames' roll layout (transposition).

    Returns:
        ``fit(epochs) -> history`` (a dict of per-epoch lists).
    """
    cfg = as_config(cfg)
    opts = {**FIT_DEFAULTS, **(fit_options or {})}
    keras = import_keras()
    x_tr = np.asarray(x_tr, dtype=np.float32)
    if next_tr is None:
        next_tr = successor_index(None, len(x_tr))
    validation = validation_inputs(x_val, cfg, next_val)
    if keras.backend.backend() == "tensorflow" and opts.get("loop", "auto") != "keras":
        return tf_fit(trainer, cfg, {"x": x_tr, "next": next_tr, "n_pitches": n_pitches}, validation,
                      callbacks=callbacks, opts=opts)
    if cfg.kl_warmup_epochs or cfg.transpose_range:
        raise OptionError("KL warm-up and transposition augmentation need the TensorFlow training "
                          f"loop (KERAS_BACKEND is {keras.backend.backend()!r}, loop is "
                          f"{opts.get('loop', 'auto')!r})")
    return _keras_fit(trainer, cfg, x_tr, next_tr, validation, callbacks)


def _keras_fit(trainer, cfg: VAEConfig, x_tr: np.ndarray, next_tr: np.ndarray,
               validation: ValidationFrames | None, callbacks):
    """``fit(epochs) -> history`` through ``Model.fit`` (backends other than TensorFlow, or
    ``loop="keras"``): validation, early stopping and the finite-loss check as Keras callbacks."""
    keras = import_keras()
    predictor = getattr(trainer, "predictor", None)
    stopper = early_stopper(cfg, (trainer.encoder, trainer.decoder, predictor), validation is not None)
    y_tr = np.zeros((len(x_tr), 1), np.float32)
    beta, gamma = float(cfg.beta), float(cfg.gamma)
    inputs = x_tr if predictor is None else [x_tr, *pair_arrays(x_tr, next_tr)]
    record: dict = {}

    class _Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            terms = mean_terms(trainer.encoder, trainer.decoder, validation.x, validation.eps, predictor,
                               validation.next)
            vals = {"val_loss": objective(*terms, beta=beta, gamma=gamma),
                    "val_d_nats": terms[0], "val_r_nats": terms[1]}
            if predictor is not None:
                vals["val_p_nats"] = terms[2]
            if logs is not None:
                logs.update(vals)
            for k, v in vals.items():
                record.setdefault(k, []).append(v)
            if stopper is not None and stopper.update(epoch, vals["val_loss"]):
                trainer.stop_training = True

    class _StopOnNonFinite(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            check_finite(epoch, logs, cfg)

    cbs = ([_Validation()] if validation is not None else []) + [_StopOnNonFinite()] + list(callbacks)

    def fit(epochs: int) -> dict:
        record.clear()
        try:
            hist = trainer.fit(inputs, y_tr, batch_size=int(cfg.batch_size), epochs=int(epochs),
                               shuffle=True, verbose=0, callbacks=cbs).history
        except TrainingDivergedError:
            for cb in callbacks:
                cb.on_train_end()
            raise
        out = {**{k: list(v) for k, v in hist.items() if not k.startswith("val_")}, **record}
        if stopper is not None:
            out["best_epoch"] = stopper.restore()
        return out

    return fit


def mean_terms(encoder, decoder, x: np.ndarray, eps: np.ndarray, predictor=None,
               nxt: np.ndarray | None = None) -> tuple[float, ...]:
    """Mean D and R (and P with a predictor) in nats per frame over frames x with the given noise."""
    keras = import_keras()
    ops = keras.ops
    x = np.asarray(x, np.float32)
    if predictor is not None:
        y, mask = pair_arrays(x, successor_index(None, len(x)) if nxt is None else nxt)
    sums = np.zeros(3 if predictor is not None else 2)
    for i in range(0, len(x), EVAL_CHUNK):
        sl = slice(i, i + EVAL_CHUNK)
        xb, eb = ops.convert_to_tensor(x[sl]), ops.convert_to_tensor(eps[sl])
        if predictor is None:
            terms = loss_terms(encoder, decoder, xb, eb)
        else:
            terms = predictive_terms(encoder, decoder, predictor, xb, y=ops.convert_to_tensor(y[sl]),
                                     mask=ops.convert_to_tensor(mask[sl]), eps=eb)
        sums += [float(ops.convert_to_numpy(ops.sum(t))) for t in terms]
    return tuple(float(v) for v in sums / len(x))


def as_config(cfg) -> VAEConfig:
    """``cfg`` as a :class:`VAEConfig` (a dict goes through :meth:`VAEConfig.from_dict`)."""
    return cfg if isinstance(cfg, VAEConfig) else VAEConfig.from_dict(cfg)


def seed_everything(seed: int) -> None:
    """Seed Keras's global generators (Python, numpy, backend) and, on TensorFlow, make ops deterministic.

    Args:
        seed: the run's seed (``cfg.seed``).
    """
    keras = import_keras()
    keras.utils.set_random_seed(int(seed))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
