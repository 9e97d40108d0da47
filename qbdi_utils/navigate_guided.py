"""Query-guided resynthesis: the path through a corpus oracle closest to a query (Viterbi).

After Wang, Hsu & Dubnov 2016: among all paths through the corpus oracle's moves
(:func:`guided_moves`), the one whose latent means are closest (summed cosine distance,
:func:`cosine_to`) to the query's, found exactly by dynamic programming over oracle states
(:func:`guided_path`), with an optional cost per jump. The module docstring of
:mod:`qbdi_utils.navigate` says how this differs from ``vmo.analysis.query``.

Imports: dynamics, errors.
Used in: :mod:`qbdi_utils.navigate`, :mod:`qbdi_utils.navigate_measures`,
notebooks/07_oracle_improvisation.ipynb, benchmarks/bench_navigate.py, tests/test_navigate.py.
"""

from __future__ import annotations

import numpy as np

from qbdi_utils import dynamics
from qbdi_utils.errors import OptionError

__all__ = ["cosine_to", "guided_moves", "guided_path", "path_cost"]


def guided_moves(oracle: dynamics.Oracle, piece_index=None) -> tuple[np.ndarray, np.ndarray]:
    """Every move (frame i -> frame j) a guided path may take through ``oracle``.

    From state a (frame a - 1): the states in ``trn[a]`` and in ``trn[s]`` for every state s
    linked to a (``sfx[a]`` and ``rsfx[a]``, the root 0 excluded). When ``piece_index`` is given, the
    step from the last frame of a piece to the first frame of the next piece is removed (it is no move
    of the corpus, only of the concatenation).

    Args:
        oracle: :class:`qbdi_utils.dynamics.Oracle` on N frames.
        piece_index: optional (N,) piece of each frame.

    Returns:
        (src, dst): (E,) int64 0-based frames, sorted by dst then src, no duplicates.

    Used in: :func:`guided_path`.
    """
    o = oracle
    n = o.n_frames
    src, dst = [], []
    for a in range(1, n + 1):
        targets = set(o.trn[a])
        linked = ([o.sfx[a]] if o.sfx[a] else []) + list(o.rsfx[a])
        for s in linked:
            targets.update(o.trn[s])
        targets.discard(0)
        src.extend([a - 1] * len(targets))
        dst.extend(b - 1 for b in targets)
    src = np.asarray(src, np.int64)
    dst = np.asarray(dst, np.int64)
    if piece_index is not None and len(src):
        pi = np.asarray(piece_index)
        if pi.shape != (n,):
            raise ValueError(f"piece_index must have shape ({n},), got {pi.shape}")
        keep = ~((dst == src + 1) & (pi[np.minimum(dst, n - 1)] != pi[src]))
        src, dst = src[keep], dst[keep]
    order = np.lexsort((src, dst))
    return src[order], dst[order]


def cosine_to(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(T, N) cosine distances between rows of q (T, d) and rows of x (N, d), float64.

    0 between two zero rows, 1 from a zero row to any other. Used in: :func:`qbdi_utils.navigate.navigate_batch`,
    :mod:`qbdi_utils.navigate_measures`.
    """
    q = np.asarray(q, np.float64)
    x = np.asarray(x, np.float64)
    nq, nx = np.linalg.norm(q, axis=1), np.linalg.norm(x, axis=1)
    uq = np.divide(q, nq[:, None], out=np.zeros_like(q), where=nq[:, None] > 0)
    ux = np.divide(x, nx[:, None], out=np.zeros_like(x), where=nx[:, None] > 0)
    d = 1.0 - uq @ ux.T
    zq, zx = nq == 0, nx == 0
    d[zq, :] = 1.0
    d[:, zx] = 1.0
    d[np.ix_(zq, zx)] = 0.0
    return d


def guided_path(oracle: dynamics.Oracle, cost, piece_index=None, moves=None,
                jump_cost: float = 0.0) -> tuple[np.ndarray, float]:
    """The path through the oracle's moves of least total cost (Viterbi over oracle states).

    Minimises ``sum_t cost[t, path[t]] + jump_cost * (number of jumps)`` over all paths of T frames
    whose consecutive frames are a move of :func:`guided_moves`; a jump is any move other than to the
    next frame of the same piece; the first frame is free. Ties go to the smaller frame index (at the
    end) and to the smaller predecessor (backwards).

    Args:
        oracle: :class:`qbdi_utils.dynamics.Oracle` on N frames.
        cost: (T, N) cost of playing frame j at step t (e.g. cosine distance of the query's bar t to
            the corpus's bar j).
        piece_index: optional (N,) piece of each frame (see :func:`guided_moves`).
        moves: optional precomputed ``guided_moves(oracle, piece_index)``.
        jump_cost: added for every jump (>= 0; 0 = the plain closest path).

    Returns:
        (path (T,) int64 0-based frames, total cost float, jump costs included). The cost is inf (and the path
        arbitrary) only if no path of T frames exists.

    Raises:
        OptionError: a negative jump cost.
        ValueError: a cost matrix whose shape does not match the oracle.

    Used in: :func:`qbdi_utils.navigate.navigate_batch`, :mod:`qbdi_utils.navigate_measures`,
    benchmarks/bench_navigate.py.
    """
    c = np.asarray(cost, np.float64)
    n = oracle.n_frames
    if c.ndim != 2 or c.shape[1] != n:
        raise ValueError(f"cost must have shape (T, {n}), got {c.shape}")
    T = c.shape[0]
    if T == 0:
        return np.zeros(0, np.int64), 0.0
    src, dst = guided_moves(oracle, piece_index) if moves is None else moves
    if not float(jump_cost) >= 0:
        raise OptionError(f"jump cost {jump_cost} must be >= 0")
    pi = np.zeros(n, np.int64) if piece_index is None else np.asarray(piece_index)
    w = np.where((dst == src + 1) & (pi[np.minimum(dst, n - 1)] == pi[src]), 0.0, float(jump_cost))
    # group boundaries of dst (edges sorted by dst)
    has_in = np.zeros(n, bool)
    starts = np.zeros(0, np.int64)
    if len(dst):
        starts = np.r_[0, np.flatnonzero(np.diff(dst)) + 1]
        has_in[dst[starts]] = True
    groups = dst[starts] if len(dst) else starts
    acc = c[0].copy()
    back = np.zeros((T, n), np.int64)
    for t in range(1, T):
        new = np.full(n, np.inf)
        if len(dst):
            cand = acc[src] + w
            best = np.minimum.reduceat(cand, starts)
            new[groups] = best
            # first (smallest src) edge reaching the minimum of its group
            hit = np.flatnonzero(cand == np.repeat(best, np.diff(np.r_[starts, len(dst)])))
            _, first = np.unique(dst[hit], return_index=True)
            back[t, dst[hit[first]]] = src[hit[first]]
        acc = new + c[t]
    end = int(np.argmin(acc))
    total = float(acc[end])
    path = np.empty(T, np.int64)
    path[-1] = end
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path, total


def path_cost(cost, path) -> float:
    """Total cost ``sum_t cost[t, path[t]]`` of a path.

    Args:
        cost: (T, N) array.
        path: (T,) 0-based frames.

    Returns:
        the sum as a float.

    Used in: tests and benchmarks/bench_navigate.py.
    """
    c = np.asarray(cost, np.float64)
    p = np.asarray(path, np.int64)
    return float(c[np.arange(len(p)), p].sum())
