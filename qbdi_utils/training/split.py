"""The split of a corpus by piece, the pairs of consecutive bars, and the held-out sets' noise streams.

:func:`split_pieces` cuts the pieces three ways: *training* pieces (the optimiser sees them),
*validation* pieces (the epoch count :data:`~qbdi_utils.model.DEFAULT_EPOCHS` and the decoding
threshold are chosen on them) and *test* pieces (every number reported as held-out: R, D, loss,
note F1). Pairs (x_t, x_{t+1}) for the predictor head come from :func:`successor_index` and never
cross a piece boundary or a side of the split. Validation and test frames are scored with noise
from their OWN random streams (:func:`eval_noise`), never from the training generator, so the
training run does not depend on whether or how often the held-out sets are evaluated.

Imports: errors. Used in: :mod:`qbdi_utils.training`, qbdi_utils.predictive, notebook 02.
"""

from __future__ import annotations

import numpy as np

from qbdi_utils.errors import OptionError

__all__ = ["TEST_STREAM", "VALIDATION_STREAM", "cap_held_out", "eval_noise", "piece_runs", "split_held_out",
           "split_pieces", "subset_successors", "successor_index"]

#: Random streams of the evaluation noise, one per role, independent of the training generator
#: (:mod:`qbdi_utils.training.stream` uses 3 for the streamed shuffle).
VALIDATION_STREAM, TEST_STREAM = 1, 2


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


def piece_runs(groups: np.ndarray | None, n: int) -> list[slice]:
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


def subset_successors(nxt: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Successor positions within the subset ``idx`` (-1 where the successor is not in it)."""
    pos = np.full(len(nxt) + 1, -1, dtype=np.int64)  # pos[-1] (the extra slot) stays -1
    pos[idx] = np.arange(len(idx))
    return pos[nxt[idx]]


def eval_noise(seed: int, stream: int, n: int, latent_dim: int) -> np.ndarray:
    """(n, latent_dim) float32 standard normal noise of one evaluation role, from its own stream."""
    return np.random.default_rng([int(seed), int(stream)]).standard_normal((n, latent_dim)).astype(np.float32)


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
    stream = {"validation": VALIDATION_STREAM, "test": TEST_STREAM}[role]
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
