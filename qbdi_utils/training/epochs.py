"""What every fit loop does around an epoch: validation frames, loss checks, early stopping, warm-up.

The loops of :mod:`qbdi_utils.training.fit` (``Model.fit``) and :mod:`qbdi_utils.training.tf_loop`
(TensorFlow) share these steps: the validation frames scored after each epoch with fixed noise of
their own stream (:class:`ValidationFrames`), the check that the loss stayed finite
(:func:`check_finite`), early stopping on the validation loss (:class:`BestEpoch`), the KL
warm-up's weight (:func:`kl_weight`), the successor pairs of the predictor head
(:func:`pair_arrays`) and the progress bar over epochs (:class:`EpochProgress`).

Imports: errors, progress, model, training.split.
Used in: :mod:`qbdi_utils.training.fit`, :mod:`qbdi_utils.training.tf_loop`,
:func:`qbdi_utils.training.train`, tests/test_training_options.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qbdi_utils import progress
from qbdi_utils.errors import OptionError, TrainingDivergedError
from qbdi_utils.model import VAEConfig, import_keras
from qbdi_utils.training.split import VALIDATION_STREAM, eval_noise, successor_index

__all__ = ["BestEpoch", "EVAL_CHUNK", "EpochProgress", "ValidationFrames", "check_finite", "early_stopper",
           "kl_weight", "pair_arrays", "validation_inputs"]

#: Frames per compiled evaluation call when scoring held-out frames.
EVAL_CHUNK = 1000


def pair_arrays(x: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The successor bars of the predictor head's pairs, and which frames have one.

    Args:
        x: (N, D) frames of one set.
        nxt: (N,) successor position of each frame within the set, -1 for none.

    Returns:
        (y (N, D) float32 next bars, zero where none; mask (N,) float32, 1 where a next bar exists).
    """
    mask = (nxt >= 0).astype(np.float32)
    y = np.asarray(x, np.float32)[np.maximum(nxt, 0)] * mask[:, None]
    return y, mask


def kl_weight(cfg: VAEConfig, epoch: int) -> float:
    """The rate's weight in the training loss at a 0-based epoch: beta, or its KL warm-up ramp.

    With ``cfg.kl_warmup_epochs = W > 0`` it is ``beta * min(1, epoch / W)``: 0 in the first epoch,
    beta from epoch W (0-based) on. The logged and validation losses always use the full beta.

    Args:
        cfg: the configuration (beta, kl_warmup_epochs).
        epoch: 0-based epoch.

    Returns:
        The weight (a float).
    """
    w = int(cfg.kl_warmup_epochs)
    return float(cfg.beta) if w == 0 else float(cfg.beta) * min(1.0, int(epoch) / w)


class BestEpoch:
    """Early stopping on the validation loss: remembers the best epoch's weights, says when to stop.

    An epoch is a candidate once the KL warm-up is over (0-based epoch >= ``kl_warmup_epochs``);
    a candidate is better when its validation loss is strictly lower than the best so far (ties
    keep the earlier epoch), so the choice is a deterministic function of the losses. Training
    stops after ``patience`` candidates in a row without a better one; :meth:`restore` then puts
    the best epoch's weights back (a copy taken in numpy at that epoch).

    Args:
        patience: epochs without improvement before stopping (>= 1).
        models: the Keras networks whose weights are kept (encoder, decoder, predictor or None).
        first_epoch: first 0-based epoch that may be chosen (the end of the warm-up).

    Used in: :func:`qbdi_utils.training.fit.fit_function` and
    :func:`qbdi_utils.training.tf_loop.tf_fit` (``VAEConfig.patience``), tests/test_training_options.py.
    """

    def __init__(self, patience: int, models, first_epoch: int = 0):
        self.patience = int(patience)
        self.models = [m for m in models if m is not None]
        self.first_epoch = int(first_epoch)
        self.best_epoch: int | None = None
        self.best_loss = float("inf")
        self.since_best = 0
        self._weights = None

    def update(self, epoch: int, val_loss: float) -> bool:
        """Record an epoch's validation loss; True when training should stop after it."""
        if epoch < self.first_epoch:
            return False
        if float(val_loss) < self.best_loss:
            self.best_loss, self.best_epoch, self.since_best = float(val_loss), int(epoch), 0
            self._weights = [[np.array(w, copy=True) for w in m.get_weights()] for m in self.models]
            return False
        self.since_best += 1
        return self.since_best >= self.patience

    def restore(self) -> int | None:
        """Put the best epoch's weights back; returns that 0-based epoch (None if none was chosen)."""
        if self._weights is not None:
            for m, w in zip(self.models, self._weights):
                m.set_weights(w)
        return self.best_epoch


def early_stopper(cfg: VAEConfig, models, has_validation: bool) -> BestEpoch | None:
    """The early stopper of ``cfg.patience``, or None when early stopping is off.

    Args:
        cfg: the configuration (``patience``, ``kl_warmup_epochs``).
        models: the networks whose best weights are kept (None entries skipped).
        has_validation: whether the run scores validation frames.

    Returns:
        A :class:`BestEpoch`, or None.

    Raises:
        OptionError: patience is set but there are no validation frames.
    """
    if cfg.patience is None:
        return None
    if not has_validation:
        raise OptionError(f"early stopping (patience = {cfg.patience}) needs validation frames; "
                          "give a validation_fraction > 0 on a corpus of several pieces, or no patience")
    return BestEpoch(cfg.patience, models, first_epoch=int(cfg.kl_warmup_epochs))


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


@dataclass(frozen=True)
class ValidationFrames:
    """The validation frames as every fit loop scores them after each epoch.

    Attributes:
        x: (V, D) float32 validation frames, V >= 1.
        eps: (V, latent_dim) float32 fixed noise from the validation stream (seeded by ``cfg.seed``,
            so scoring never moves the training generator).
        next: (V,) int successor position of each frame within the set, -1 for none (used only with
            a predictor head).

    Used in: :func:`fit_function`, :func:`tf_fit`, :func:`qbdi_utils.training.train`.
    """

    x: np.ndarray
    eps: np.ndarray
    next: np.ndarray


def validation_inputs(x_val: np.ndarray | None, cfg: VAEConfig,
                      next_val: np.ndarray | None = None) -> ValidationFrames | None:
    """The validation frames of a fit loop, or None when there are none.

    Args:
        x_val: (V, D) validation frames, or None / empty for none.
        cfg: the configuration (``seed``, ``latent_dim`` of the noise).
        next_val: (V,) successor positions; default :func:`successor_index` of one piece.

    Returns:
        :class:`ValidationFrames` (frames as float32, their noise, successors), or None.
    """
    if x_val is None or len(x_val) == 0:
        return None
    x = np.asarray(x_val, np.float32)
    return ValidationFrames(x, eval_noise(cfg.seed, VALIDATION_STREAM, len(x), cfg.latent_dim),
                            successor_index(None, len(x)) if next_val is None else next_val)


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
