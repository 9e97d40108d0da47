"""Measures of what oracle navigation does, against random-jump baselines (notebook 07, issue 24).

Bar-aligned agreement with the query falls by construction after any jump, and position-by-position
novelty saturates, so neither says whether the oracle's jumps are better than arbitrary ones. The
measures here compare an oracle path with baselines that jump at random:

* baselines: :func:`random_jump_path` (jumps to uniformly random bars at the same continuity) and
  :func:`random_targets_path` (the oracle path's own jump times, random targets: the same realised
  jump share);
* per output: :func:`decoded_agreement` (each output bar against the bar it decodes),
  :func:`bar_line_tonnetz` (harmonic distance across a bar line), :func:`follow_distances` (latent
  distance from a jump target to the bar that would naturally follow), :func:`self_repetition`,
  :func:`ngram_novelty`, :func:`ir_at_threshold` (VMO information rate at one fixed threshold);
* of an oracle: :func:`link_context` (how much context the jump links really share);
* the guided path's baselines: :func:`nearest_paths` (unconstrained latent and chroma nearest
  neighbours of the query's bars among the corpus bars) and :func:`jump_cost_frontier`.

The baselines draw from ``default_rng(SeedSequence([seed, RANDOM_STREAM]))``, a stream of their own
next to the oracle path's and the channel's. Imports: dynamics, harmony, vmo_features, navigate, navigate_guided.
Used in: notebooks/07_oracle_improvisation.ipynb, tests/test_navigate_measures.py.
"""

from __future__ import annotations

import numpy as np

from qbdi_utils import dynamics, harmony, vmo_features
from qbdi_utils.navigate import check_continuity, jump_candidates
from qbdi_utils.navigate_guided import cosine_to, guided_moves, guided_path

__all__ = [
    "RANDOM_STREAM",
    "random_rng",
    "random_jump_path",
    "random_targets_path",
    "decoded_agreement",
    "bar_line_tonnetz",
    "follow_distances",
    "self_repetition",
    "ngram_novelty",
    "ir_at_threshold",
    "link_context",
    "nearest_paths",
    "jump_cost_frontier",
]

#: Stream tag of the random-jump baselines: ``SeedSequence([seed, RANDOM_STREAM])``.
RANDOM_STREAM: int = 0x72616E64


def random_rng(seed: int) -> np.random.Generator:
    """The baselines' Generator for ``seed`` (independent of the oracle path's and the channel's).

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), RANDOM_STREAM]))


def _random_other(rng: np.random.Generator, n: int, avoid: int) -> int:
    """A uniformly random frame of 0..n-1 other than ``avoid`` (any frame when avoid is outside)."""
    if 0 <= avoid < n and n > 1:
        k = int(rng.integers(n - 1))
        return k + (k >= avoid)
    return int(rng.integers(n))


def random_jump_path(n_frames: int, length: int, continuity: float, rng: np.random.Generator,
                     start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A path that continues with probability ``continuity`` and otherwise jumps to a random bar.

    Per step one ``rng.random()`` draw u: u < continuity plays the next frame; otherwise (and at the
    last frame, which has no next) the path jumps to a frame drawn uniformly among all frames but the
    next one, so every jump leaves the bar order. The expected jump share is 1 - continuity (plus the
    forced jumps at the last frame).

    Args:
        n_frames: frames N to choose from (>= 2).
        length: frames to generate (>= 1).
        continuity: probability in [0, 1].
        rng: numpy Generator (e.g. :func:`random_rng`).
        start: first frame.

    Returns:
        (path (length,) int64, jumps (length,) bool; jumps[0] False).

    Raises:
        OptionError: continuity outside [0, 1].
        ValueError: fewer than 2 frames or a start outside them.

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    p = check_continuity(continuity)
    n = int(n_frames)
    if n < 2 or not 0 <= start < n:
        raise ValueError(f"need at least 2 frames and a start in 0..{n - 1}, got {n} and {start}")
    path = np.empty(int(length), np.int64)
    jumps = np.zeros(int(length), bool)
    if length:
        path[0] = start
    for t in range(1, int(length)):
        nxt = path[t - 1] + 1
        if rng.random() < p and nxt < n:
            path[t] = nxt
        else:
            path[t] = _random_other(rng, n, nxt)
            jumps[t] = True
    return path, jumps


def random_targets_path(jumps, n_frames: int, rng: np.random.Generator,
                        start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A path that jumps exactly when ``jumps`` says, each time to a random bar (not the next one).

    The oracle path's jump times are kept, only its targets are replaced, so the realised jump
    share is the oracle's (plus a forced jump wherever the path reaches the last frame between jumps).

    Args:
        jumps: (T,) bool jump times of an oracle path.
        n_frames: frames N (>= 2).
        rng: numpy Generator.
        start: first frame.

    Returns:
        (path (T,) int64, jumps (T,) bool).

    Raises:
        ValueError: fewer than 2 frames or a start outside them.

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    want = np.asarray(jumps, bool)
    n = int(n_frames)
    if n < 2 or not 0 <= start < n:
        raise ValueError(f"need at least 2 frames and a start in 0..{n - 1}, got {n} and {start}")
    path = np.empty(len(want), np.int64)
    out = np.zeros(len(want), bool)
    if len(want):
        path[0] = start
    for t in range(1, len(want)):
        nxt = path[t - 1] + 1
        if want[t] or nxt >= n:
            path[t] = _random_other(rng, n, nxt)
            out[t] = True
        else:
            path[t] = nxt
    return path, out


def decoded_agreement(source_chroma, output_chroma, path) -> np.ndarray:
    """Triad agreement of each output bar with the bar of the source it decodes.

    Unlike agreement with the query bar at the same position, this does not fall by construction
    after a jump: it measures what survives of the bar the path chose.

    Args:
        source_chroma: (M, 12) chroma of the bars ``path`` indexes (the query's, or the corpus's).
        output_chroma: (T, 12) chroma of the output's bars.
        path: (T,) int indices into the source bars.

    Returns:
        (T,) float tie credit (:func:`qbdi_utils.harmony.frame_comparison`).

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    src = np.asarray(source_chroma, np.float64)[np.asarray(path, np.int64)]
    return np.asarray(harmony.frame_comparison(src, output_chroma)["triad_agreement"], np.float64)


def bar_line_tonnetz(chroma, at=None) -> np.ndarray:
    """Tonnetz distance across bar lines: between bar t - 1 and bar t for every t >= 1 with ``at[t]``.

    Args:
        chroma: (T, 12) bar chroma.
        at: (T,) bool, which bar lines (the one before bar t); None = all.

    Returns:
        (J,) float64 distances (:func:`qbdi_utils.harmony.tonnetz_distance`), in bar order.

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    c = np.asarray(chroma, np.float64)
    t = np.arange(1, len(c)) if at is None else np.flatnonzero(np.asarray(at, bool)[1:]) + 1
    if not len(t):
        return np.zeros(0)
    return np.atleast_1d(harmony.tonnetz_distance(c[t - 1], c[t]))


def follow_distances(mean, path, jumps) -> np.ndarray:
    """Cosine distance from each jump's target to the bar that would naturally have followed.

    For a jump at step t: the distance between the latent means of frame ``path[t]`` (where the jump
    lands) and frame ``path[t - 1] + 1`` (the next bar of the source); jumps from the last frame,
    which has no next bar, are left out.

    Args:
        mean: (N, L) latent means of the frames ``path`` indexes.
        path: (T,) int frames.
        jumps: (T,) bool.

    Returns:
        (J,) float64 distances in [0, 2].

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    m = np.asarray(mean, np.float64)
    p = np.asarray(path, np.int64)
    t = np.flatnonzero(np.asarray(jumps, bool)[1:]) + 1
    t = t[p[t - 1] + 1 < len(m)]
    if not len(t):
        return np.zeros(0)
    a, b = m[p[t]], m[p[t - 1] + 1]
    return np.array([cosine_to(x[None], y[None])[0, 0] for x, y in zip(a, b)])


def self_repetition(frames) -> float:
    """Share of bars identical to some earlier bar of the same sequence.

    For T bars drawn independently and uniformly from m distinct bars the expectation is
    (1/T) * sum_{t=0}^{T-1} (1 - (1 - 1/m)^t).

    Args:
        frames: (T, F) frames (any dtype; compared exactly).

    Returns:
        share in [0, 1] (0 for an empty sequence).

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    f = np.ascontiguousarray(np.asarray(frames))
    if not len(f):
        return 0.0
    seen, rep = set(), 0
    for row in f:
        key = row.tobytes()
        rep += key in seen
        seen.add(key)
    return rep / len(f)


def ngram_novelty(frames, reference_frames, n: int = 2) -> float:
    """Share of the output's n-grams of consecutive bars that occur nowhere in the reference.

    Against the query's own bars decoded at full rate, a replayed query has novelty 0 for every n;
    an n-gram that spans a jump is new unless the material it joins also follows itself somewhere
    in the reference.

    Args:
        frames: (T, F) output frames.
        reference_frames: (M, F) reference frames.
        n: n-gram length (>= 1).

    Returns:
        share in [0, 1]; nan when the output is shorter than n.

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    if int(n) < 1:
        raise ValueError(f"n-gram length {n} must be at least 1")
    n = int(n)

    def grams(x):
        x = np.ascontiguousarray(np.asarray(x))
        rows = [r.tobytes() for r in x]
        return [tuple(rows[i:i + n]) for i in range(len(rows) - n + 1)]

    out = grams(frames)
    if not out:
        return float("nan")
    ref = set(grams(reference_frames))
    return float(np.mean([g not in ref for g in out]))


def ir_at_threshold(roll, spec, threshold: float, offset_steps: int = 0) -> float:
    """Total VMO information rate (bits) of a roll's Tonnetz chroma per beat at one fixed threshold.

    The features and distances are those of notebook 05 (:func:`qbdi_utils.vmo_features.chroma_features`,
    Euclidean); one threshold for every output compares like with like, where each output's own
    best threshold (the max-IR search) adapts to what it repeats.

    Args:
        roll: (T, C) piano roll.
        spec: its RollSpec.
        threshold: Euclidean threshold on the Tonnetz features.
        offset_steps: leading steps left out (the query's pickup).

    Returns:
        the summed information rate in bits.

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    f = vmo_features.chroma_features(np.asarray(roll)[int(offset_steps):], spec, "beat")
    o = dynamics.build_oracle(f, float(threshold))
    return float(dynamics.ir_per_frame(o).sum())


def link_context(oracle, mean, min_contexts=(1, 2, 3)) -> list[dict]:
    """How much the jump links of an oracle share, for several minimum contexts.

    For every state p of frames 1..N with at least one jump candidate
    (:func:`qbdi_utils.navigate.jump_candidates`): the linked pairs (current frame p - 1, linked
    frame s - 1), whose cosine distance says whether the "shared context" is shared in latent
    space, against the median distance of all pairs of distinct frames.

    Args:
        oracle: :class:`qbdi_utils.dynamics.Oracle` on N frames.
        mean: (N, L) latent means of its frames.
        min_contexts: values of K.

    Returns:
        one dict per K: ``min_context``, ``n_symbols``, ``states_with_link`` (share of states 1..N),
        ``n_links``, ``median_link_distance`` (nan without links), ``median_pair_distance``.

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    m = np.asarray(mean, np.float64)
    n = oracle.n_frames
    d = cosine_to(m, m)
    pair_median = float(np.median(d[np.triu_indices(n, 1)])) if n > 1 else float("nan")
    rows = []
    for k in min_contexts:
        dist, with_link = [], 0
        for p in range(1, n + 1):
            cands = jump_candidates(oracle, p, int(k))
            with_link += bool(cands)
            dist.extend(d[p - 1, s - 1] for s in cands)
        rows.append({"min_context": int(k), "n_symbols": int(oracle.n_symbols),
                     "states_with_link": with_link / n if n else 0.0, "n_links": len(dist),
                     "median_link_distance": float(np.median(dist)) if dist else float("nan"),
                     "median_pair_distance": pair_median})
    return rows


def nearest_paths(query_mean, corpus_mean, query_chroma, corpus_chroma) -> dict:
    """The guided path's unconstrained baselines: each query bar's nearest corpus bar, bar by bar.

    Args:
        query_mean: (T, L) latent means of the query's bars.
        corpus_mean: (N, L) latent means of the corpus's bars.
        query_chroma: (T, 12) chroma of the query's bars.
        corpus_chroma: (N, 12) chroma of the corpus's raw bars.

    Returns:
        {"latent": (T,) int64 nearest corpus bar by cosine distance of latent means,
        "chroma": (T,) int64 nearest corpus bar by cosine distance of chroma}; ties go to the
        smaller index.

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    return {"latent": np.argmin(cosine_to(query_mean, corpus_mean), axis=1).astype(np.int64),
            "chroma": np.argmin(cosine_to(query_chroma, corpus_chroma), axis=1).astype(np.int64)}


def jump_cost_frontier(oracle, cost, piece_index, jump_costs) -> list[dict]:
    """The guided path at every jump cost: its jumps against its summed cosine distance.

    Args:
        oracle: the corpus :class:`qbdi_utils.dynamics.Oracle` (N frames).
        cost: (T, N) cost of playing corpus frame j at query bar t.
        piece_index: (N,) piece of each frame.
        jump_costs: jump costs (>= 0).

    Returns:
        one dict per jump cost: ``jump_cost``, ``path`` (T,) int64, ``jumps`` (T,) bool,
        ``jump_share`` (over steps 1..T-1), ``mean_cost`` (mean cost of the bars played, jump costs
        left out).

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    pi = np.asarray(piece_index)
    moves = guided_moves(oracle, pi)
    c = np.asarray(cost, np.float64)
    rows = []
    for jc in jump_costs:
        path, _ = guided_path(oracle, c, pi, moves=moves, jump_cost=float(jc))
        jumps = np.zeros(len(path), bool)
        jumps[1:] = ~((path[1:] == path[:-1] + 1) & (pi[path[1:]] == pi[path[:-1]]))
        rows.append({"jump_cost": float(jc), "path": path, "jumps": jumps,
                     "jump_share": float(jumps[1:].mean()) if len(path) > 1 else 0.0,
                     "mean_cost": float(c[np.arange(len(path)), path].mean())})
    return rows
