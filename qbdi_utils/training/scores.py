"""A trained model's held-out numbers: R, D (P), loss and note F1 of the outputs as written.

All in numpy (:meth:`StyleVAE.mean_terms <qbdi_utils.model.StyleVAE.mean_terms>`, the loss terms as Keras
computes them, equal to float32 rounding), so scoring a saved model (``qbdi evaluate``) needs no TensorFlow.

Imports: model, training.split, training.threshold.
Used in: :func:`qbdi_utils.training.train`, qbdi_utils.predictive, ``qbdi evaluate``.
"""

from __future__ import annotations

import numpy as np

from qbdi_utils.model import StyleVAE, note_scores, objective
from qbdi_utils.training.split import TEST_STREAM, VALIDATION_STREAM, eval_noise, successor_index
from qbdi_utils.training.threshold import binarize_by_piece

__all__ = ["held_out_scores", "set_scores"]


def set_scores(model: StyleVAE, x: np.ndarray, groups, eps: np.ndarray, prefix: str,
               nxt: np.ndarray) -> dict:
    """R, D (P), loss (nats per frame) and note scores of the written outputs on one held-out set.

    Args:
        model: the StyleVAE.
        x: (N, frame_size) uint8 frames of the set, each piece's frames consecutive.
        groups: (N,) piece label per frame, or None.
        eps: (N, L) float32 reparameterisation noise of the set's own stream.
        prefix: key prefix ("validation", "test").
        nxt: (N,) successor position of each frame within the set, -1 for none.

    Returns:
        dict ``{prefix}_d_nats``, ``_r_nats``, ``_loss_nats``, ``_precision``, ``_recall``, ``_f1``
        (and ``_p_nats`` with a predictor head).
    """
    terms = model.mean_terms(x, eps, nxt)
    d, r = terms[0], terms[1]
    written = binarize_by_piece(model.reconstruct(x), model.threshold, model.spec, groups)
    s = note_scores(x, written)
    out = {f"{prefix}_d_nats": d, f"{prefix}_r_nats": r,
           f"{prefix}_loss_nats": objective(*terms, beta=model.config.beta, gamma=model.config.gamma),
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
    stream = {"validation": VALIDATION_STREAM, "test": TEST_STREAM}.get(role)
    if stream is None:
        raise ValueError(f"role must be 'validation' or 'test', got {role!r}")
    x = (np.asarray(frames) != 0).astype(np.uint8)
    eps = eval_noise(model.config.seed, stream, len(x), model.latent_dim)
    return set_scores(model, x, groups, eps, role, successor_index(groups, len(x)))
