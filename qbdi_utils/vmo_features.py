"""The features the VMO analysis compares: Tonnetz chroma per beat, frame or step of any meter, and their distances.

PAPER.md section 6. Split out of :mod:`qbdi_utils.dynamics` (which builds the oracle, IR curves and
motifs on these features). Used in: :mod:`qbdi_utils.dynamics`, :mod:`qbdi_utils.navigate`,
:mod:`qbdi_utils.navigate_measures`, :mod:`qbdi_utils.navigate_sweep`, ``qbdi analyze``,
notebooks/05_vmo_analysis.ipynb and notebooks/06_predictive_training.ipynb.

Imports: harmony, pianoroll.

* **Features.** Harmony is compared in Harte's 6-D Tonnetz space (:func:`qbdi_utils.harmony.tonnetz`,
  chroma normalised by its L1 norm). The projection is computed once per frame, so the Tonnetz
  distance is the plain Euclidean distance between embeddings: no Python callback per comparison.
  The default time resolution is the **beat** (quarter note, 4 per 4/4 bar): the harmonic rhythm of
  chorales and pop songs is at most one chord per beat, so a beat-level chroma keeps chord changes
  that a bar-level chroma would average away, while 16th-note steps only repeat held chords (which
  inflates repeated-suffix lengths without adding harmonic information). Latent states exist once per
  frame (bar) and are compared with the cosine distance.
* **Any meter** (issue 25). Given a piece's time signatures (:func:`qbdi_utils.dynamics.analyze_piece`,
  or ``time_signatures=`` of :func:`chroma_features` / :func:`qbdi_utils.dynamics.analyze_roll`), beats
  and frames are those of its own bars (:func:`feature_windows` on
  :func:`qbdi_utils.pianoroll.bar_layout`): a 3/4 bar has three quarter beats, a 6/8 bar two
  dotted-quarter beats (:func:`qbdi_utils.pianoroll.beat_steps`), a mixed-meter piece changes with its
  signatures, and motifs are placed in those bars (:attr:`qbdi_utils.dynamics.Motif.bar_spans` from
  :attr:`FeatureWindows.positions`). Without signatures the grid is a 4/4 one from step 0 (quarters,
  16-step frames, at the RollSpec's steps per quarter), as notebooks 05-07 call it; on a 4/4 piece both
  give the same features bit for bit.
* **Silence rule.** vmo's cosine distance of an all-zero vector is NaN, every comparison with NaN is
  false, so every silent frame becomes a new symbol. Here (1) a silent chroma projects to the origin
  of the Tonnetz (see :mod:`qbdi_utils.harmony`): two silent beats are at distance 0 (the same
  symbol) and a silent beat is at distance |zeta| from a sounding one (1.03 for any major or minor
  triad, 1.5 for a single pitch class; only a perfectly flat 12-tone cluster would coincide with
  silence, as Harte's projection has no direction for it); (2) with the
  cosine distance, an all-zero row is at distance 0 from other all-zero rows and 1 (orthogonal) from
  every non-zero row. No distance is ever NaN (:func:`pairwise_distances`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qbdi_utils import harmony
from qbdi_utils.pianoroll import Piece, RollSpec, bar_layout, bar_meters, bar_steps, beat_steps

__all__ = [
    "FeatureWindows",
    "feature_windows",
    "piece_meter",
    "chroma_features",
    "window_chroma",
    "tonnetz_features",
    "pairwise_distances",
]


def tonnetz_features(chroma_vectors) -> np.ndarray:
    """Embed chroma into Harte's 6-D Tonnetz space (silence at the origin).

    Euclidean distance between two rows of the result is the Tonnetz distance of the two chroma.

    Args:
        chroma_vectors: (n, 12) chroma.

    Returns:
        (n, 6) float64 embedding.

    Used in: notebooks/05_vmo_analysis.ipynb.
    """
    return np.atleast_2d(harmony.tonnetz(chroma_vectors))


@dataclass(frozen=True)
class FeatureWindows:
    """The steps each feature row sums up, and where each row lies in the piece's bars.

    Windows tile the roll: ``starts[0] == 0``, ``ends[i] == starts[i + 1]``, ``ends[-1] == T``.

    Attributes:
        starts: (n,) int64 first step of each window.
        ends: (n,) int64 one past its last step (cut at the roll's start and end).
        bar: (n,) int64 bar of each window, 0-based in :func:`qbdi_utils.pianoroll.bar_layout`'s order
            (bar 0 is a pickup's bar when the roll starts with one).
        within: (n,) int64 index of the window in its bar (0 = the bar's first beat or frame).
        per_bar: (n,) int64 windows of a whole bar of that window's meter (4 beats of 4/4, 3 of 3/4,
            2 dotted beats of 6/8; the frames of a bar cut by its own meter, 1 below 17 steps).
        positions: (n + 1,) float64 where each window starts, in bars (bar + the fraction of it
            before the window), and, last, where the last window's beat or frame ends.
        n_bars: the bars the windows lie in.
    """

    starts: np.ndarray
    ends: np.ndarray
    bar: np.ndarray
    within: np.ndarray
    per_bar: np.ndarray
    positions: np.ndarray
    n_bars: int

    def __len__(self) -> int:
        return len(self.starts)


def piece_meter(piece: Piece, from_first_bar: bool = True) -> tuple[list, int]:
    """A piece's bars as :func:`feature_windows` takes them: (time signatures, bar offset).

    Args:
        piece: the Piece.
        from_first_bar: the roll will be cut at the first full bar (``roll[bar_offset_steps:]``, as
            the notebooks and ``qbdi analyze`` do): the signatures are shifted by the pickup's length
            and the offset is 0.

    Returns:
        ([(step, numerator, denominator), ...], bar_offset_steps).

    Used in: :func:`qbdi_utils.dynamics.analyze_piece`, notebooks/05_vmo_analysis.ipynb (for a query in another meter).
    """
    sigs = [(int(st), int(n), int(d)) for st, n, d in piece.time_signatures]
    off = int(piece.bar_offset_steps)
    if not from_first_bar or off <= 0:
        return sigs, off
    before = [t for t in sigs if t[0] <= off]
    shifted = ([(0, before[-1][1], before[-1][2])] if before else []) + [(st - off, n, d) for st, n, d in sigs
                                                                         if st > off]
    return shifted, 0


def feature_windows(n_steps: int, spec: RollSpec = RollSpec(), resolution: str = "beat", time_signatures=None,
                    bar_offset_steps: int = 0) -> FeatureWindows:
    """The windows of :func:`chroma_features`: beats, frames or steps of the piece's own bars.

    With ``time_signatures`` None the bars are ``spec.steps_per_frame`` steps from step 0 and a beat
    is a quarter (``spec.steps_per_quarter`` steps): the grid of a 4/4 piece, and what the features
    always used before meters were known. Otherwise the bars are
    :func:`qbdi_utils.pianoroll.bar_layout`'s (a pickup, meter changes) and a beat is the bar's
    :func:`qbdi_utils.pianoroll.beat_steps` (a quarter in 4/4 and 3/4, a dotted quarter in 6/8, a
    half in 2/2); a bar's last beat may be short (5/8, a bar cut by a meter change). A "frame" is a
    frame of the bar layout (one per bar up to ``spec.steps_per_frame`` steps, as the model sees it).
    Windows never straddle a bar line; the last one is cut at the roll's end.

    Args:
        n_steps: T, the roll's length.
        spec: roll layout (steps per quarter, per frame).
        resolution: "beat", "frame" or "step".
        time_signatures: [(step, numerator, denominator), ...] ([] is 4/4), or None (see above).
        bar_offset_steps: step of the first full bar (a pickup's length).

    Returns:
        :class:`FeatureWindows`.

    Raises:
        ValueError: an unknown resolution.

    Used in: :func:`chroma_features`, :func:`qbdi_utils.dynamics.analyze_roll`, ``qbdi analyze``.
    """
    if resolution not in ("beat", "frame", "step"):
        raise ValueError(f"resolution must be one of beat, frame, step, got {resolution!r}")
    T = int(n_steps)
    f_starts, f_lengths, b_starts, b_frames = bar_layout(T, time_signatures, bar_offset_steps, spec)
    if time_signatures is None:
        meters = [None] * len(b_starts)
        nominal = [int(spec.steps_per_frame)] * len(b_starts)
        beats = [int(spec.steps_per_quarter)] * len(b_starts)
    else:
        meters = [tuple(int(x) for x in m.split("/")) for m in bar_meters(T, time_signatures, bar_offset_steps,
                                                                            spec)]
        nominal = [max(1, int(round(bar_steps(n, d, spec)))) for n, d in meters]
        beats = [beat_steps(n, d, spec) for n, d in meters]
    b_starts = b_starts.tolist()
    lengths = [(b_starts[k + 1] - b_starts[k]) if k + 1 < len(b_starts) else nominal[k] for k in range(len(b_starts))]
    starts, ends, bar, within, per_bar, pos = [], [], [], [], [], []
    for k, (s, length) in enumerate(zip(b_starts, lengths)):
        if resolution == "frame":
            first = int(b_frames[k])
            last = int(b_frames[k + 1]) if k + 1 < len(b_frames) else len(f_starts)
            cuts = [(int(f_starts[i]), int(f_starts[i] + f_lengths[i])) for i in range(first, last)]
            whole = len(cuts)
        else:
            w = 1 if resolution == "step" else beats[k]
            cuts = [(a, min(a + w, s + length)) for a in range(s, s + length, w)]
            whole = len(cuts)
        for j, (a, b) in enumerate(cuts):
            if b <= 0 or a >= T:
                continue
            a0 = max(a, 0)
            starts.append(a0)
            ends.append(min(b, T))
            bar.append(k)
            within.append(j)
            per_bar.append(whole)
            pos.append(k + (a0 - s) / length)
            end_pos = k + (b - s) / length
    if starts:
        pos.append(end_pos)
    as_int = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return FeatureWindows(as_int(starts), as_int(ends), as_int(bar), as_int(within), as_int(per_bar),
                          np.asarray(pos if starts else [0.0], dtype=np.float64),
                          int(bar[-1] + 1) if bar else 0)


def chroma_features(roll, spec: RollSpec = RollSpec(), resolution: str = "beat", time_signatures=None,
                    bar_offset_steps: int = 0) -> np.ndarray:
    """Tonnetz features of a roll at the given time resolution (default: one per beat).

    Without ``time_signatures`` a beat is a quarter and a frame ``spec.steps_per_frame`` steps from
    step 0 (a 4/4 piece's grid; the features of notebooks 05-07). With them (a piece's
    ``time_signatures``, [] for 4/4) the rows are the beats or frames of the piece's own bars
    (:func:`feature_windows`): on a 4/4 piece without a pickup the same rows, bit for bit.

    Args:
        roll: (T, 156) roll, or (N, 2496) frames (only without ``time_signatures``).
        spec: roll layout.
        resolution: "beat" (default, see the module docstring for why), "frame" or "step".
        time_signatures: [(step, numerator, denominator), ...] or None (see above).
        bar_offset_steps: step of the first full bar (with ``time_signatures``).

    Returns:
        (n, 6) float64, n = number of beats (frames, steps).

    Raises:
        ValueError: frames given with ``time_signatures`` (their padding rows are not the piece's
            steps), or an unknown resolution.

    Used in: notebooks/05_vmo_analysis.ipynb, ``qbdi analyze``.
    """
    if time_signatures is None:
        return tonnetz_features(harmony.chroma(roll, spec, resolution))
    a = roll.roll if isinstance(roll, Piece) else np.asarray(roll)
    if a.ndim != 2 or a.shape[1] != spec.n_columns:
        raise ValueError(f"features in a piece's bars need a (T, {spec.n_columns}) roll, got {a.shape}")
    win = feature_windows(a.shape[0], spec, resolution, time_signatures, bar_offset_steps)
    return tonnetz_features(window_chroma(a, spec, win))


def window_chroma(roll, spec: RollSpec, windows: FeatureWindows) -> np.ndarray:
    """Duration-weighted chroma of a roll summed over :class:`FeatureWindows` (as ``harmony.chroma``
    sums fixed windows).

    Args:
        roll: (T, 156) roll (0/1 or probabilities).
        spec: roll layout.
        windows: windows tiling steps 0 .. T - 1.

    Returns:
        (len(windows), 12) float64 chroma.
    """
    per_step = harmony.chroma(roll, spec, "step")
    if not len(windows):
        return np.zeros((0, 12))
    return np.add.reduceat(per_step, windows.starts, axis=0)


def pairwise_distances(features, metric: str = "euclidean") -> np.ndarray:
    """All pairwise distances between rows, with the silence rule (never NaN).

    Values are computed by ``scipy.spatial.distance.cdist`` with the same metric string vmo passes to
    it, so they are bit-identical to the distances vmo computes one row at a time. With ``"cosine"``,
    all-zero rows are at distance 0 from each other and 1 from every non-zero row.

    Args:
        features: (N, d) array.
        metric: a scipy metric name ("euclidean" for Tonnetz features, "cosine" for latents) or a
            callable ``f(u, v) -> float`` (slow; for references only).

    Returns:
        (N, N) float64 distances.
    """
    from scipy.spatial.distance import cdist

    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    d = cdist(x, x, metric=metric)
    if isinstance(metric, str) and metric in ("cosine", "correlation"):
        zero = ~np.any(x != 0, axis=1)
        if metric == "correlation":
            zero = ~np.any(x != x.mean(axis=1, keepdims=True), axis=1)
        if zero.any():
            d[zero, :] = 1.0
            d[:, zero] = 1.0
            d[np.ix_(zero, zero)] = 0.0
    if np.isnan(d).any():
        raise ValueError("distance matrix contains NaN; features must be finite")
    return d
