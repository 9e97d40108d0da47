"""Numpy helpers on the frames a style model reads: their fingerprint, note scores, synthetic frames.

Imports: pianoroll. Used in: notebook 02, :mod:`qbdi_utils.training`, tests and benchmarks.
"""

from __future__ import annotations

import numpy as np

from qbdi_utils.pianoroll import RollSpec, frames_digest

__all__ = ["frames_fingerprint", "note_scores", "synthetic_frames"]


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
