"""Music information dynamics with the Variable Markov Oracle: IR curves, motifs, latent IR (Figs. 4-6).

PAPER.md section 6. Used in notebooks/05_vmo_analysis.ipynb and by ``qbdi analyze``.

Imports: pianoroll, vmo_features.

What this module does differently from calling ``vmo`` directly, and why:

* **Features** (Tonnetz chroma per beat, any meter, the silence rule of the distances) are those of
  :mod:`qbdi_utils.vmo_features`.
* **Exact, faster oracle.** :func:`build_oracle` is a line-by-line re-implementation of
  ``vmo.VMO.oracle.MO.add_state`` (suffix method 'inc'), ``_encode`` and ``_ir_cum`` driven by a
  precomputed distance matrix; it gives the same suffix links, LRS, symbols and IR as vmo
  (tests compare with ``vmo.find_threshold`` to 1e-9). The matrix is computed once and reused for all
  thresholds of a sweep, where vmo recomputes every distance for every threshold. Chord distances
  often equal round thresholds exactly (0.25, 0.5, 1.25, ...), where a distance one ulp off flips
  vmo's ``d < threshold``; the Tonnetz projection is therefore computed row-independently (see
  :func:`qbdi_utils.harmony.tonnetz`), so a per-comparison Tonnetz callback and the embedding agree
  to the last bit.
* **vmo imports.** Only ``vmo.VMO.oracle`` (numpy/scipy only) is needed, and only by the tests and the
  benchmark for the reference values; this module itself does not import vmo. ``import vmo`` is safe
  (its ``__init__`` imports only the oracle), but ``vmo.analysis`` imports librosa and scikit-learn,
  which are not dependencies of this project: its pattern search is replaced by :func:`motifs`.
* **Motifs.** vmo's ``find_repeated_patterns`` can return incomplete occurrence lists and its
  ``get_pattern_mat`` marks ``[end - length, end - 1)``, one frame too few. :func:`motifs` takes the
  oracle's symbol sequence at the best threshold, enumerates all its maximal repeats (suffix array),
  and lists every (non-overlapping, leftmost) occurrence as a 0-based half-open ``[start, end)``
  span; a held chord or an ostinato is reported by its unit, not by its own repetitions.
* **Plots.** Figs. 4-6 are drawn by :mod:`qbdi_utils.render.plots` (``plot_motifs``,
  ``plot_ir_curves``, ``plot_ir_over_time``, also ``render.plot_motifs`` etc.); render sits above
  dynamics, so this module imports nothing of render.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qbdi_utils.pianoroll import Piece, RollSpec
from qbdi_utils.vmo_features import (FeatureWindows, chroma_features, feature_windows, pairwise_distances,
                                     piece_meter)

__all__ = [
    "Analysis",
    "RESOLUTIONS",
    "analyze_roll",
    "analyze_piece",
    "Oracle",
    "build_oracle",
    "oracle_from_rows",
    "ir_per_frame",
    "IRCurve",
    "ir_curve",
    "default_thresholds",
    "latent_ir",
    "Motif",
    "motifs",
    "ir_vs_bits",
]


# ----------------------------------------------------------------------------- the oracle

@dataclass
class Oracle:
    """A Variable Markov Oracle built on N frames at one threshold (same fields as vmo's ``MO``).

    Attributes:
        threshold: the distance threshold.
        sfx: (N+1) list, suffix link of each state (state 0 has None; state i is frame i-1).
        lrs: (N+1) list, length of the longest repeated suffix of each state.
        rsfx: (N+1) lists of reverse suffix links.
        trn: (N+1) lists of forward transitions.
        data: (N+1) list, symbol of each state (state 0: None).
        n_symbols: number of distinct symbols (vmo's ``len(latent)``).
    """

    threshold: float
    sfx: list
    lrs: list
    rsfx: list
    trn: list
    data: list
    n_symbols: int

    @property
    def n_frames(self) -> int:
        return len(self.sfx) - 1

    @property
    def symbols(self) -> np.ndarray:
        """(N,) int symbol of each frame (0-based frame index)."""
        return np.asarray(self.data[1:], dtype=np.int64)

    def encode(self) -> list:
        """Compror code [(length, position)] exactly as ``vmo`` ``FactorOracle._encode``."""
        lrs, sfx = self.lrs, self.sfx
        n = len(sfx) - 1
        code = []
        i = j = 0
        while j < n:
            while i < n and lrs[i + 1] >= i - j + 1:
                i += 1
            if i == j:
                i += 1
                code.append((0, i))
            else:
                code.append((i - j, sfx[i] - i + j + 1))
            j = i
        return code


def _len_common_suffix(sfx, lrs, p1, p2):
    if p2 == sfx[p1]:
        return lrs[p1]
    while sfx[p2] != sfx[p1] and p2 != 0:
        p2 = sfx[p2]
    return min(lrs[p1], lrs[p2])


def build_oracle(features=None, threshold: float = 0.0, metric: str = "euclidean",
                 distances: np.ndarray | None = None) -> Oracle:
    """Build a VMO exactly as ``vmo.build_oracle(..., flag='a', suffix_method='inc')`` does.

    Args:
        features: (N, d) features (ignored when ``distances`` is given).
        threshold: two frames match when their distance is strictly below it.
        metric: metric for :func:`qbdi_utils.vmo_features.pairwise_distances`.
        distances: optional precomputed (N, N) distances (reuse across thresholds).

    Returns:
        :class:`Oracle`.

    Used in: notebooks/05_vmo_analysis.ipynb.
    """
    d = pairwise_distances(features, metric) if distances is None else np.asarray(distances, np.float64)
    return oracle_from_rows(d, d.tolist(), float(threshold))


_BIG = 24  # transition lists longer than this are scanned with numpy


def oracle_from_rows(d: np.ndarray, rows: list, t: float) -> Oracle:
    """The oracle construction of vmo's ``MO.add_state`` (method 'inc') on precomputed distances.

    State i (1-based) is frame i - 1; vmo compares frame i - 1 with the frames of the states in
    ``trn[k]`` and takes the first closest one if it is strictly below ``t``.

    Args:
        d: (N, N) distance matrix.
        rows: the same distances row by row, ``rows[i][j] == d[i, j]`` (nested lists are fastest
            for the scalar scans; anything indexable by row works).
        t: threshold: two frames match when their distance is strictly below it.

    Returns:
        :class:`Oracle`.

    Used in: :func:`build_oracle`, :func:`ir_curve`, qbdi_utils.navigate (latent oracles).
    """
    n = d.shape[0]
    sfx = [None]
    lrs = [0]
    rsfx = [[]]
    trn = [[]]
    data = [None]
    n_symbols = 0
    bufs = {}  # k -> [int64 buffer of frame indices (state - 1), filled length]
    for i in range(1, n + 1):
        sfx.append(0)
        rsfx.append([])
        trn.append([])
        lrs.append(0)
        trn[i - 1].append(i)
        k = sfx[i - 1]
        pi_1 = i - 1
        cand = 0
        row = rows[i - 1]
        while k is not None:
            tk = trn[k]
            m = len(tk)
            arg = -1
            if m > _BIG:
                arg = _closest_by_buffer(bufs, k, tk, d[i - 1], t)
            else:
                best = t
                for pos, s in enumerate(tk):
                    v = row[s - 1]
                    if v < best:
                        best = v
                        arg = pos
            if arg < 0:
                tk.append(i)
                pi_1 = k
                k = sfx[k]
            else:
                cand = tk[arg]
                break
        if k is None:
            # a new symbol: sfx 0, lrs 0; vmo's _find_better cannot succeed here (it looks for an
            # earlier state j in rsfx[0] with data[j] equal to this new symbol), so it is skipped
            sfx[i] = 0
            lrs[i] = 0
            data.append(n_symbols)
            n_symbols += 1
            rsfx[0].append(i)
            continue
        sfx[i] = cand
        lrs[i] = _len_common_suffix(sfx, lrs, pi_1, cand - 1) + 1
        data.append(data[cand])
        # vmo's _find_better (rsfx lists are appended in increasing order, so already sorted)
        li = lrs[i]
        symbol = data[i - li]
        for j in rsfx[cand]:
            if lrs[j] == li and data[j - li] == symbol:
                lrs[i] = li + 1
                sfx[i] = j
                break
        rsfx[sfx[i]].append(i)
    return Oracle(threshold=t, sfx=sfx, lrs=lrs, rsfx=rsfx, trn=trn, data=data, n_symbols=n_symbols)


def _closest_by_buffer(bufs: dict, k: int, tk: list, d_row: np.ndarray, t: float) -> int:
    """Position in ``tk`` (the transitions of state ``k``) of the first closest frame to ``d_row``'s
    frame if strictly below ``t``, else -1; vectorised over an int64 buffer of ``tk``'s frame
    indices kept in ``bufs[k]`` and extended as ``tk`` grows (for states with many transitions)."""
    m = len(tk)
    b = bufs.get(k)
    if b is None:
        buf = np.empty(max(2 * m, 64), dtype=np.int64)
        buf[:m] = tk
        buf[:m] -= 1
        b = bufs[k] = [buf, m]
    elif b[1] < m:
        if len(b[0]) < m:
            nb = np.empty(2 * m, dtype=np.int64)
            nb[:b[1]] = b[0][:b[1]]
            b[0] = nb
        b[0][b[1]:m] = tk[b[1]:m]
        b[0][b[1]:m] -= 1
        b[1] = m
    vals = d_row[b[0][:m]]
    pos = int(vals.argmin())
    return pos if vals[pos] < t else -1


def ir_per_frame(oracle: Oracle, alpha: float = 1.0) -> np.ndarray:
    """Information rate (bits) of each frame, vmo's ``IR(ir_type='cum')`` (``_ir_cum``).

    IR_n = alpha * log2(#new symbols so far) - log2(#codewords so far) / block length, clipped at 0.

    Args:
        oracle: an :class:`Oracle`.
        alpha: weight of the symbol entropy term (vmo's ``alpha``).

    Returns:
        (N,) float64 IR per frame.

    Used in: notebooks/05_vmo_analysis.ipynb (Fig. 6).
    """
    n = oracle.n_frames
    cw0 = np.zeros(n)
    cw1 = np.zeros(n)
    bl = np.zeros(n)
    j = 0
    for length, _pos in oracle.encode():
        if length == 0:
            cw0[j] = 1
            cw1[j] = 1
            bl[j] = 1
            j += 1
        else:
            cw1[j] = 1
            bl[j:j + length] = length
            j += length
    h0 = np.log2(np.cumsum(cw0))
    h1 = np.log2(np.cumsum(cw1)) / bl
    ir = alpha * h0 - h1
    ir[ir < 0] = 0
    return ir


# ----------------------------------------------------------------------------- IR curves

@dataclass
class IRCurve:
    """Total IR against the threshold (Fig. 5).

    Attributes:
        thresholds: (K,) thresholds swept.
        ir: (K,) total IR in bits (sum over frames) at each threshold.
        best_threshold: the first threshold with maximal total IR (vmo's choice).
        best_ir: total IR at ``best_threshold``.
        n_symbols: (K,) number of symbols at each threshold.
        metric: the distance used.
    """

    thresholds: np.ndarray
    ir: np.ndarray
    best_threshold: float
    best_ir: float
    n_symbols: np.ndarray
    metric: str = "euclidean"

    @property
    def best_index(self) -> int:
        return int(np.argmax(self.ir))


def default_thresholds(distances: np.ndarray, n: int = 200) -> np.ndarray:
    """n evenly spaced thresholds from 0 to the largest pairwise distance (inclusive)."""
    dmax = float(np.max(distances)) if distances.size else 1.0
    return np.linspace(0.0, dmax if dmax > 0 else 1.0, n)


def ir_curve(features, thresholds=None, metric: str = "euclidean", alpha: float = 1.0,
             distances: np.ndarray | None = None) -> IRCurve:
    """Total IR at each threshold and the best threshold; equal to ``vmo.find_threshold``.

    ``vmo.find_threshold(x, r=(a, b, s), dfunc=metric, dim=d)`` returns
    ``((best_ir, best_t), [(ir, t) ...])``; ``ir_curve(x, np.arange(a, b, s), metric)`` returns the
    same numbers (to 1e-9; in practice bit-identical).

    Args:
        features: (N, d) features: Tonnetz embeddings (metric "euclidean") or latent means
            (metric "cosine").
        thresholds: (K,) thresholds; default 200 from 0 to the largest distance.
        metric: scipy metric name (see :func:`qbdi_utils.vmo_features.pairwise_distances` for the silence rule).
        alpha: vmo's alpha.
        distances: optional precomputed distance matrix.

    Returns:
        :class:`IRCurve`.

    Used in: notebooks/05_vmo_analysis.ipynb (Fig. 5), ``qbdi analyze``.
    """
    d = pairwise_distances(features, metric) if distances is None else distances
    if thresholds is None:
        thresholds = default_thresholds(d)
    thresholds = np.asarray(thresholds, dtype=np.float64).ravel()
    irs = np.zeros(len(thresholds))
    nsym = np.zeros(len(thresholds), dtype=np.int64)
    rows = d.tolist()
    for k, t in enumerate(thresholds):
        o = oracle_from_rows(d, rows, float(t))
        irs[k] = ir_per_frame(o, alpha).sum()
        nsym[k] = o.n_symbols
    best = int(np.argmax(irs)) if len(irs) else 0
    return IRCurve(thresholds=thresholds, ir=irs, best_threshold=float(thresholds[best]),
                   best_ir=float(irs[best]), n_symbols=nsym,
                   metric=metric if isinstance(metric, str) else getattr(metric, "__name__", "callable"))


def latent_ir(z_mean, thresholds=None, threshold: float | None = None, metric: str = "cosine"):
    """Per-frame IR of a latent sequence (Fig. 6), at its best threshold unless one is given.

    Args:
        z_mean: (N, L) latent means (or transmitted latents) per frame.
        thresholds: thresholds to search for the best one (default: 200 up to the largest distance).
        threshold: use this threshold instead of searching.
        metric: "cosine" (the paper's choice for latents).

    Returns:
        (ir (N,) float64 bits per frame, threshold float).

    Used in: notebooks/05_vmo_analysis.ipynb (Fig. 6).
    """
    d = pairwise_distances(z_mean, metric)
    if threshold is None:
        threshold = ir_curve(None, thresholds, metric, distances=d).best_threshold
    return ir_per_frame(build_oracle(threshold=threshold, distances=d)), float(threshold)


def ir_vs_bits(signals: dict, thresholds=None, metric: str = "euclidean") -> list[dict]:
    """Best threshold and total IR against bits per frame, over channel seeds.

    Args:
        signals: {bits label (e.g. "full", 1024, ..., 0): list of (N, d) feature arrays, one per seed}.
        thresholds: common thresholds (default: 200 from 0 to the largest distance of each input).
        metric: "euclidean" for Tonnetz features, "cosine" for latents.

    Returns:
        one dict per label, in the given order: {"bits", "n_seeds", "best_threshold_mean",
        "best_threshold_std", "total_ir_mean", "total_ir_std", "ir_per_frame_mean"}.

    Used in: notebooks/05_vmo_analysis.ipynb.
    """
    def sd(x):  # identical values (e.g. full rate, every seed alike) have sd exactly 0, not 1e-13
        return 0.0 if np.ptp(x) == 0 else float(x.std())

    rows = []
    for bits, seqs in signals.items():
        seqs = list(seqs)
        curves = [ir_curve(s, thresholds, metric) for s in seqs]
        bt = np.array([c.best_threshold for c in curves])
        ir = np.array([c.best_ir for c in curves])
        per = np.array([c.best_ir / max(len(s), 1) for c, s in zip(curves, seqs)])
        rows.append({
            "bits": bits, "n_seeds": len(seqs),
            "best_threshold_mean": float(bt.mean()), "best_threshold_std": sd(bt),
            "total_ir_mean": float(ir.mean()), "total_ir_std": sd(ir),
            "ir_per_frame_mean": float(per.mean()),
        })
    return rows


# ----------------------------------------------------------------------------- motifs

@dataclass
class Motif:
    """A repeated pattern with every occurrence.

    Attributes:
        symbols: the oracle symbols of the pattern.
        length: length in frames (feature rows).
        spans: every occurrence as a 0-based half-open [start, end) span in frames, sorted.
        bar_spans: the same spans in bars (start / frames_per_bar, end / frames_per_bar; or where the
            rows lie in the piece's bars, :attr:`qbdi_utils.vmo_features.FeatureWindows.positions`).
    """

    symbols: tuple
    length: int
    spans: list = field(default_factory=list)
    bar_spans: list = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.spans)


def _occurrences(seq: list, pat: tuple) -> list:
    """Leftmost non-overlapping occurrences of pat in seq, as [start, end) spans."""
    L = len(pat)
    out = []
    i = 0
    n = len(seq)
    first = pat[0]
    while i <= n - L:
        if seq[i] == first and tuple(seq[i:i + L]) == pat:
            out.append((i, i + L))
            i += L
        else:
            i += 1
    return out


def _suffix_array(seq: np.ndarray) -> np.ndarray:
    """Suffix array of an int sequence by prefix doubling (O(N log^2 N), numpy)."""
    n = len(seq)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _, rank = np.unique(seq, return_inverse=True)
    rank = rank.astype(np.int64).ravel()
    idx = np.arange(n)
    k = 1
    while True:
        second = np.full(n, -1, dtype=np.int64)
        second[: n - k] = rank[k:] if k < n else second[:0]
        sa = np.lexsort((second, rank))
        r, s2 = rank[sa], second[sa]
        new = np.zeros(n, dtype=np.int64)
        new[1:] = np.cumsum((r[1:] != r[:-1]) | (s2[1:] != s2[:-1]))
        rank = np.empty(n, dtype=np.int64)
        rank[sa] = new
        if new[-1] == n - 1 or k >= n:
            return sa
        k *= 2


def _maximal_repeats(seq: np.ndarray, min_length: int) -> set:
    """Every maximal repeat (right- and left-maximal over its whole occurrence set) of length >=
    min_length, as a tuple of symbols: the left-diverse lcp-intervals of the suffix array."""
    n = len(seq)
    if n < 2:
        return set()
    lst = seq.tolist()
    sa = _suffix_array(seq).tolist()
    rank = [0] * n
    for i, p in enumerate(sa):
        rank[p] = i
    lcp = [0] * n  # lcp[i] = common prefix of suffixes sa[i-1] and sa[i] (Kasai)
    h = 0
    for p in range(n):
        r = rank[p]
        if r > 0:
            q = sa[r - 1]
            while p + h < n and q + h < n and lst[p + h] == lst[q + h]:
                h += 1
            lcp[r] = h
            if h:
                h -= 1
        else:
            h = 0
    pats = set()
    stack = [(0, 0)]  # (lcp value, left bound)
    for i in range(1, n + 1):
        cur = lcp[i] if i < n else 0
        lb = i - 1
        while cur < stack[-1][0]:
            val, lb = stack.pop()
            if val >= min_length:  # interval [lb, i - 1] of suffixes sharing `val` symbols
                occ = sa[lb:i]
                left = {lst[p - 1] if p > 0 else None for p in occ}
                if len(left) > 1 or None in left:
                    pats.add(tuple(lst[occ[0]:occ[0] + val]))
        if cur > stack[-1][0]:
            stack.append((cur, lb))
    return pats


def _is_primitive(p: tuple) -> bool:
    """False when p is a whole repetition u^k (k >= 2) of a shorter unit u."""
    n = len(p)
    return not any(n % d == 0 and p == p[:d] * (n // d) for d in range(1, n // 2 + 1))


def motifs(symbols_or_oracle, min_length: int = 2, min_count: int = 2, frames_per_bar: float = 4.0,
           max_motifs: int | None = None, positions=None) -> list[Motif]:
    """Repeated patterns of the oracle's symbol sequence, with every occurrence (Fig. 4).

    Candidates are all maximal repeats of the symbol sequence (every left-diverse interval of its
    suffix array, so none is missed) that are at least ``min_length`` long and primitive: a pattern
    that is only a unit repeated (u u ..., e.g. one chord held for 8 beats) is represented by its
    unit. For each candidate every leftmost non-overlapping occurrence is listed. Candidates are taken
    longest first; one is kept if it occurs at least ``min_count`` times and is not explained by a
    single longer kept motif (i.e. not every one of its occurrences lies inside an occurrence of the
    same longer motif).

    Args:
        symbols_or_oracle: an :class:`Oracle` (usually at the best threshold) or an (N,) int sequence.
        min_length: minimum motif length in frames (inclusive).
        min_count: minimum number of non-overlapping occurrences (inclusive).
        frames_per_bar: feature rows per bar, to express spans in bars (4 for beat features).
        max_motifs: keep at most this many (longest first).
        positions: (N + 1,) where each row starts in bars and where the last ends
            (:attr:`qbdi_utils.vmo_features.FeatureWindows.positions`, bars of any meter); given, it
            replaces ``frames_per_bar``.

    Returns:
        list of :class:`Motif`, longest first (ties: more occurrences first, then earliest).

    Used in: notebooks/05_vmo_analysis.ipynb (Fig. 4), ``qbdi analyze``.
    """
    seq = symbols_or_oracle.symbols if isinstance(symbols_or_oracle, Oracle) else np.asarray(symbols_or_oracle)
    seq = np.asarray(seq, dtype=np.int64).ravel()
    if positions is None:
        at = lambda i: i / frames_per_bar  # noqa: E731
    else:
        pos = np.asarray(positions, dtype=np.float64)
        if len(pos) != len(seq) + 1:
            raise ValueError(f"positions must have one more entry than the {len(seq)} symbols, got {len(pos)}")
        at = lambda i: float(pos[i])  # noqa: E731
    min_length = max(int(min_length), 1)
    lst = seq.tolist()
    cands = []
    for pat in _maximal_repeats(seq, min_length):
        if not _is_primitive(pat):
            continue
        occ = _occurrences(lst, pat)
        if len(occ) >= min_count:
            cands.append((pat, occ))
    cands.sort(key=lambda c: (-len(c[0]), -len(c[1]), c[1][0][0]))
    kept: list[Motif] = []
    for pat, occ in cands:
        if any(_is_substring(pat, m.symbols) and
               all(any(s >= qs and e <= qe for qs, qe in m.spans) for s, e in occ) for m in kept):
            continue
        kept.append(Motif(symbols=pat, length=len(pat), spans=occ,
                          bar_spans=[(at(s), at(e)) for s, e in occ]))
        if max_motifs is not None and len(kept) >= max_motifs:
            break
    return kept


def _is_substring(p: tuple, q: tuple) -> bool:
    lp = len(p)
    return any(q[i:i + lp] == p for i in range(len(q) - lp + 1))


# ----------------------------------------------------------------------------- one roll, analysed

#: Chroma time resolutions of :func:`analyze_roll`.
RESOLUTIONS: tuple = ("beat", "frame")


@dataclass
class Analysis:
    """The VMO analysis of one roll: IR curve, best oracle, motifs (``qbdi analyze``).

    Attributes:
        n_features: chroma frames analysed (beats or roll frames).
        frames_per_bar: chroma frames per bar of the first bar's meter (4 beats of 4/4, 3 of 3/4).
        unit: "beats" or "frames".
        curve: :class:`IRCurve` over the thresholds swept.
        oracle: the oracle at the curve's best threshold.
        motifs: :func:`motifs` of that oracle (longest first).
        windows: the :class:`qbdi_utils.vmo_features.FeatureWindows` of the chroma frames (their bars, in any meter).
    """

    n_features: int
    frames_per_bar: float
    unit: str
    curve: IRCurve
    oracle: Oracle
    motifs: list
    windows: FeatureWindows | None = None

    @property
    def n_bars(self) -> float:
        """Bars analysed: the end of the last chroma frame, in bars (a fraction when the roll ends
        inside a bar)."""
        if self.windows is None:
            return self.n_features / self.frames_per_bar
        return float(self.windows.positions[-1]) if len(self.windows) else 0.0

    def ir_rows(self) -> tuple[list, list[str]]:
        """(rows, columns) of the IR curve table: threshold, total IR (bits), symbols."""
        c = self.curve
        return (list(zip(map(float, c.thresholds), map(float, c.ir), map(int, c.n_symbols))),
                ["threshold", "total_ir_bits", "n_symbols"])

    def motif_rows(self) -> tuple[list, list[str]]:
        """(rows, columns) of the motif table: one row per occurrence, in frames and in bars."""
        u = self.unit
        rows = [[k, m.length, s, e, f"{bs:g}", f"{be:g}"]
                for k, m in enumerate(self.motifs, 1) for (s, e), (bs, be) in zip(m.spans, m.bar_spans)]
        return rows, ["motif", f"length_{u}", f"start_{u[:-1]}", f"end_{u[:-1]}", "start_bar", "end_bar"]


def analyze_roll(roll, spec: RollSpec, *, resolution: str = "beat", n_thresholds: int = 200,
                 min_length: int = 4, min_count: int = 2, time_signatures=None,
                 bar_offset_steps: int = 0) -> Analysis:
    """The VMO pipeline of one roll: Tonnetz chroma, IR over a threshold sweep, motifs at the best one.

    Args:
        roll: (T, C) roll starting on a bar line (or with its pickup, given ``bar_offset_steps``).
        spec: its layout.
        resolution: "beat" or "frame" (chroma time resolution).
        n_thresholds: thresholds swept (:func:`default_thresholds`), >= 2.
        min_length: shortest motif, in chroma frames.
        min_count: fewest occurrences of a motif.
        time_signatures: the roll's [(step, numerator, denominator), ...] to analyse beats and bars
            of its own meter (:func:`qbdi_utils.vmo_features.feature_windows`); None: 4/4 bars of quarter beats.
        bar_offset_steps: step of the first full bar (with ``time_signatures``).

    Returns:
        :class:`Analysis`.

    Raises:
        ValueError: resolution not in :data:`RESOLUTIONS`.

    Used in: ``qbdi analyze`` (through :func:`analyze_piece`).
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
    n_steps = (roll.roll if isinstance(roll, Piece) else np.asarray(roll)).shape[0]
    windows = feature_windows(n_steps, spec, resolution, time_signatures, bar_offset_steps)
    if time_signatures is None:
        per_bar = spec.steps_per_frame / (spec.steps_per_quarter if resolution == "beat" else spec.steps_per_frame)
        positions = None
    else:
        full = int(np.argmax(windows.within == 0)) if len(windows) else 0
        per_bar = float(windows.per_bar[full]) if len(windows) else 1.0
        positions = windows.positions
    feats = chroma_features(roll, spec, resolution, time_signatures, bar_offset_steps)
    dist = pairwise_distances(feats)
    thresholds = default_thresholds(dist, n_thresholds)
    curve = ir_curve(None, thresholds, distances=dist)
    oracle = build_oracle(threshold=curve.best_threshold, distances=dist)
    found = motifs(oracle, min_length=min_length, min_count=min_count, frames_per_bar=per_bar, positions=positions)
    return Analysis(n_features=len(feats), frames_per_bar=per_bar,
                    unit="beats" if resolution == "beat" else "frames", curve=curve, oracle=oracle,
                    motifs=found, windows=windows)


def analyze_piece(piece: Piece, resolution: str = "beat", n_thresholds: int = 200, min_length: int = 4,
                  min_count: int = 2) -> Analysis:
    """:func:`analyze_roll` of a piece from its first full bar, in the beats and bars of its own meter.

    The pickup is left out (bar 0 of the analysis is the first full bar, as before meters were
    known); the time signatures follow the piece (:func:`qbdi_utils.vmo_features.piece_meter`). A 4/4 piece gives the
    same analysis as ``analyze_roll(piece.roll[piece.bar_offset_steps:], piece.spec, ...)``.

    Args:
        piece: the Piece (e.g. :func:`qbdi_utils.pianoroll.read_midi`).
        resolution, n_thresholds, min_length, min_count: as :func:`analyze_roll`.

    Returns:
        :class:`Analysis`.

    Used in: ``qbdi analyze``.
    """
    sigs, off = piece_meter(piece)
    return analyze_roll(piece.roll[int(piece.bar_offset_steps):], piece.spec, resolution=resolution,
                        n_thresholds=n_thresholds, min_length=min_length, min_count=min_count,
                        time_signatures=sigs, bar_offset_steps=off)
