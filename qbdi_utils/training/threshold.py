"""The decoding threshold: probabilities -> frames as written, and the threshold that maximises note F1.

:func:`choose_threshold` picks the threshold that maximises note F1 of the outputs *as they are
written* (after ``pianoroll.binarize``, which makes the roll valid), piece by piece.

Imports: pianoroll, model, training.split. Used in: :func:`qbdi_utils.training.train`,
notebooks/02_vae_training.ipynb.
"""

from __future__ import annotations

import numpy as np

from qbdi_utils.model import note_scores
from qbdi_utils.pianoroll import RollSpec, binarize
from qbdi_utils.training.split import piece_runs

__all__ = ["THRESHOLD_GRID", "binarize_by_piece", "choose_threshold"]

#: The candidate thresholds of :func:`choose_threshold`: 0.05, 0.06, ..., 0.95.
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)


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
    for s in piece_runs(groups, len(p)):
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
    grid = THRESHOLD_GRID if grid is None else np.asarray(grid, dtype=float)
    t = np.asarray(frames) != 0
    f1 = np.array([note_scores(t, binarize_by_piece(probabilities, th, spec, groups))["f1"]
                   for th in grid], dtype=float)
    return float(grid[int(np.argmax(f1))]), f1
