"""Harmony of a piano roll: chroma, Harte's Tonnetz, triad labels, query-vs-output metrics.

PAPER.md sections 5 and 6. Used in notebooks/04_query_generation.ipynb (the paper's claims as a
table) and notebooks/05_vmo_analysis.ipynb (Tonnetz features for the Variable Markov Oracle).

Conventions of this module:

* **Chroma** is computed from the *play* plane only (a pitch counts on every step it sounds, not only
  where it starts). Each sounding pitch adds 1 per 16th-note step to its pitch class, so a window's
  chroma is *duration-weighted*: a whole note counts 16, a 16th note 1, and octave doublings add up.
  The articulate plane is ignored by chroma (it is used only for :func:`output_stats`' note density).
* **Silence**: a window in which nothing sounds has an all-zero chroma. Its Tonnetz projection is
  defined as the origin of the 6-D space (the same point a perfectly flat chromatic cluster projects
  to: no tonal direction), so distances involving silence are finite; its triad label is ``-1``.
* **Triad labels** index :data:`TRIAD_NAMES`: 0-11 major triads C..B, 12-23 minor triads Cm..Bm,
  ``-1`` for silent windows.
* **Ties.** A chroma can match several triads equally well (a bare fifth C-G matches C and Cm; a
  single pitch class matches six triads). Picking the lowest index would always favour C, and
  query and output would break ties the same way, inflating agreement. So every statistic over
  triads (agreement, tonic share, distinct triads) treats a window as its *tie set* and reports
  the expectation under a *random priority order* of the 24 triads, drawn uniformly: each window
  takes the highest-priority triad of its tie set. One order serves all windows, so identical
  windows get the same label (the same tie set always agrees with itself), no triad is favoured,
  and every value is unchanged when query and output are transposed together. In closed form: two
  windows agree with probability |A & B| / |A | B| (the Jaccard index of their tie sets), a
  window lands on triad t with probability [t in S] / |S|, and :func:`expected_distinct` counts
  the expected vocabulary exactly. :func:`triad_labels` still returns one label per window (the
  lowest tied index), for display only.
* **Keys** are one value, :class:`Key`, from one estimator, :func:`estimate_key`
  (Krumhansl-Kessler profiles on duration-weighted pitch classes), used by corpus and render too.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from qbdi_utils.pianoroll import Piece, RollSpec, as_roll, pitch_class_histogram

__all__ = [
    "PITCH_CLASS_NAMES",
    "KEY_TONIC_NAMES",
    "TRIAD_NAMES",
    "chance_levels",
    "Key",
    "triad_tie_sets",
    "triad_credit",
    "expected_distinct",
    "triad_shares",
    "TONNETZ_RADII",
    "TONNETZ_MATRIX",
    "tonnetz_matrix",
    "chroma",
    "tonnetz",
    "tonnetz_distance",
    "triad_templates",
    "triad_labels",
    "estimate_key",
    "tonic_triad",
    "frame_comparison",
    "frame_agreement",
    "chance_agreement",
    "pitch_class_entropy_bits",
    "output_stats",
]

PITCH_CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
#: 24 triad names: index r (0-11) is the major triad on root r, index 12 + r the minor triad.
TRIAD_NAMES = tuple(PITCH_CLASS_NAMES) + tuple(p + "m" for p in PITCH_CLASS_NAMES)
#: Harte, Sandler & Gasser (2006) radii: circle of fifths, of minor thirds, of major thirds.
TONNETZ_RADII = (1.0, 1.0, 0.5)

#: Tonic names for key names, spelled as keys usually are ("Eb major", not "D# major").
KEY_TONIC_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

_RESOLUTIONS = ("frame", "beat", "step")

# Krumhansl & Kessler (1982) probe-tone key profiles, tonic first.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# the 24 rotated profiles (C..B major, then C..B minor), centred, and their norms: estimate_key
# correlates a histogram with all of them in one product (24 np.corrcoef calls cost ~100x more,
# a quarter of a MIDI folder's ingest CPU)
_KK_CENTRED = np.stack([np.roll(p, t) for p in (_KK_MAJOR, _KK_MINOR) for t in range(12)])
_KK_CENTRED = _KK_CENTRED - _KK_CENTRED.mean(axis=1, keepdims=True)
_KK_NORMS = np.sqrt((_KK_CENTRED * _KK_CENTRED).sum(axis=1))
# Key signature of the major key on each tonic pitch class, sharps > 0, flats < 0 (C, Db, D, Eb, ...).
_MAJOR_SHARPS = (0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5)
# Scores within this relative distance of the best count as tied (chroma are sums of step counts,
# so true ties are exact; the tolerance only absorbs float rounding of probabilities).
_TIE_RTOL = 1e-9


def tonnetz_matrix(radii=TONNETZ_RADII) -> np.ndarray:
    """Harte's 6 x 12 Tonnetz transform Phi.

    Rows are (r1 sin(l 7pi/6), r1 cos(l 7pi/6), r2 sin(l 3pi/2), r2 cos(l 3pi/2),
    r3 sin(l 2pi/3), r3 cos(l 2pi/3)) for pitch classes l = 0..11: the circle of fifths, the circle of
    minor thirds and the circle of major thirds.

    Args:
        radii: (r1, r2, r3), default (1, 1, 0.5) as in Harte, Sandler & Gasser (2006).

    Returns:
        (6, 12) float64 matrix.

    Used in: notebooks/05_vmo_analysis.ipynb (through :func:`tonnetz`).
    """
    r1, r2, r3 = (float(r) for r in radii)
    l = np.arange(12)
    return np.vstack([
        r1 * np.sin(l * 7 * np.pi / 6), r1 * np.cos(l * 7 * np.pi / 6),
        r2 * np.sin(l * 3 * np.pi / 2), r2 * np.cos(l * 3 * np.pi / 2),
        r3 * np.sin(l * 2 * np.pi / 3), r3 * np.cos(l * 2 * np.pi / 3),
    ])


#: The default (6, 12) Tonnetz transform.
TONNETZ_MATRIX = tonnetz_matrix()
TONNETZ_MATRIX.setflags(write=False)


def _play_plane(roll, spec: RollSpec) -> np.ndarray:
    """(T, n_pitches) play plane of a roll, of frames or of a Piece (:func:`pianoroll.as_roll`),
    or a play plane (T, n_pitches) given as it is."""
    a = roll.roll if isinstance(roll, Piece) else np.asarray(roll)
    if a.ndim == 2 and a.shape[1] == spec.n_pitches:
        return a
    return as_roll(a, spec)[:, : spec.n_pitches]


def _window_steps(resolution: str, spec: RollSpec) -> int:
    if resolution == "frame":
        return spec.steps_per_frame
    if resolution == "beat":
        return spec.steps_per_quarter
    if resolution == "step":
        return 1
    raise ValueError(f"resolution must be one of {_RESOLUTIONS}, got {resolution!r}")


def chroma(roll, spec: RollSpec = RollSpec(), resolution: str = "frame") -> np.ndarray:
    """Duration-weighted 12-bin chroma of a roll per frame, per beat or per step.

    Each sounding pitch (play plane) adds 1 to its pitch class per step it sounds; windows are summed.
    The last window is zero-padded when the roll does not fill it. A beat is a quarter note
    (``spec.steps_per_quarter`` steps); a frame is ``spec.steps_per_frame`` steps (one 4/4 bar).

    Args:
        roll: (T, 156) roll (binary or probabilities), or (N, 2496) frames, or a (T, 78) play plane.
        spec: the roll layout.
        resolution: "frame" (one row per frame/bar), "beat" (per quarter note) or "step" (per 16th).

    Returns:
        (n, 12) float64 chroma, n = ceil(T / window); row sums are sounding steps of all notes.

    Used in: notebooks/04_query_generation.ipynb, notebooks/05_vmo_analysis.ipynb.
    """
    play = _play_plane(roll, spec).astype(np.float64)
    win = _window_steps(resolution, spec)
    t = play.shape[0]
    n = -(-t // win)
    if n * win != t:
        play = np.vstack([play, np.zeros((n * win - t, play.shape[1]))])
    per_window = play.reshape(n, win, -1).sum(axis=1)  # (n, n_pitches)
    pcs = (np.arange(spec.min_pitch, spec.max_pitch + 1)) % 12
    out = np.zeros((n, 12))
    for pc in range(12):
        out[:, pc] = per_window[:, pcs == pc].sum(axis=1)
    return out


def tonnetz(chroma_vectors, radii=TONNETZ_RADII) -> np.ndarray:
    """Harte's 6-D Tonnetz projection of chroma normalised by its L1 norm.

    zeta(d) = Phi(d, :) . c / ||c||_1 (Harte, Sandler & Gasser 2006). This is *not* vmo's variant,
    which divides by the L1 norm of the projection. Silent rows (all-zero chroma) map to the origin.

    Args:
        chroma_vectors: (n, 12) or (12,) non-negative chroma.
        radii: (r1, r2, r3) radii of the fifths, minor-thirds and major-thirds circles.

    Returns:
        (n, 6) float64 (or (6,) for a single vector).

    Used in: notebooks/05_vmo_analysis.ipynb.
    """
    c = np.asarray(chroma_vectors, dtype=np.float64)
    single = c.ndim == 1
    c = np.atleast_2d(c)
    if c.shape[-1] != 12:
        raise ValueError(f"chroma must have 12 columns, got shape {c.shape}")
    phi = TONNETZ_MATRIX if tuple(radii) == TONNETZ_RADII else tonnetz_matrix(radii)
    l1 = np.abs(c).sum(axis=1, keepdims=True)
    safe = np.where(l1 > 0, l1, 1.0)
    # Elementwise products summed over the 12 pitch classes in order (not a BLAS matmul, whose
    # summation order can depend on the number of rows): each row's projection is bit-identical
    # whether it is computed alone or in a batch, so a per-comparison callback and a precomputed
    # embedding give exactly the same distances (this matters at exact ties with a threshold).
    out = ((c / safe)[:, :, None] * np.ascontiguousarray(phi.T)[None, :, :]).sum(axis=1)
    out[l1[:, 0] == 0] = 0.0
    return out[0] if single else out


def tonnetz_distance(chroma_a, chroma_b, radii=TONNETZ_RADII) -> np.ndarray:
    """Euclidean distance between the Tonnetz projections of two chroma (row-wise).

    Args:
        chroma_a, chroma_b: (n, 12) or (12,) chroma, broadcastable against each other.
        radii: Tonnetz radii (default Harte's (1, 1, 0.5)).

    Returns:
        (n,) float64 distances (a float for two single vectors). Silence sits at the origin.

    Used in: notebooks/04_query_generation.ipynb, notebooks/05_vmo_analysis.ipynb.
    """
    ta, tb = tonnetz(chroma_a, radii), tonnetz(chroma_b, radii)
    d = np.sqrt(((ta - tb) ** 2).sum(axis=-1))
    return float(d) if np.ndim(d) == 0 else d


def triad_templates() -> np.ndarray:
    """(24, 12) binary templates of the major (rows 0-11) and minor (rows 12-23) triads."""
    t = np.zeros((24, 12))
    for r in range(12):
        t[r, [r, (r + 4) % 12, (r + 7) % 12]] = 1
        t[12 + r, [r, (r + 3) % 12, (r + 7) % 12]] = 1
    return t


_TEMPLATES = triad_templates()


def _triad_scores(chroma_vectors) -> tuple[np.ndarray, bool]:
    c = np.asarray(chroma_vectors, dtype=np.float64)
    single = c.ndim == 1
    c = np.atleast_2d(c)
    if c.ndim != 2 or c.shape[1] != 12:
        raise ValueError(f"chroma must be (n, 12) or (12,), got shape {np.shape(chroma_vectors)}")
    return c @ _TEMPLATES.T, single


def triad_tie_sets(chroma_vectors) -> np.ndarray:
    """Which triads match each window best, ties included.

    Args:
        chroma_vectors: (n, 12) or (12,) chroma.

    Returns:
        (n, 24) bool (or (24,) for one vector): True for every triad whose template score equals the
        window's best (within a relative 1e-9); all False for a silent window.

    Used in: notebooks/04_query_generation.ipynb (through the agreement and output statistics).
    """
    scores, single = _triad_scores(chroma_vectors)
    best = scores.max(axis=1, keepdims=True)
    sets = scores >= best - _TIE_RTOL * np.abs(best)
    sets[best[:, 0] <= 0] = False
    return sets[0] if single else sets


def triad_credit(sets_a, sets_b) -> np.ndarray:
    """Expected triad agreement of windows under a random priority order of the triads.

    Args:
        sets_a, sets_b: (..., n, 24) bool tie sets (:func:`triad_tie_sets`), broadcastable.

    Returns:
        (..., n) float in [0, 1]: |A & B| / |A | B| (the highest-priority triad of A | B must lie in
        both); 1 when both windows are silent, 0 when one is.

    Raises:
        ValueError: the tie sets do not end in 24 or do not broadcast.
    """
    a = np.atleast_2d(np.asarray(sets_a, dtype=bool))
    b = np.atleast_2d(np.asarray(sets_b, dtype=bool))
    if a.shape[-1] != 24 or b.shape[-1] != 24:
        raise ValueError(f"tie sets must end in 24 triads, got {a.shape} and {b.shape}")
    a, b = np.broadcast_arrays(a, b)
    union = (a | b).sum(axis=-1)
    inter = (a & b).sum(axis=-1)
    both = a.any(axis=-1) & b.any(axis=-1)
    out = np.where(both, inter / np.maximum(union, 1), 0.0)
    return np.where(~a.any(axis=-1) & ~b.any(axis=-1), 1.0, out)


#: Largest number of tie sets per triad handled by exact inclusion-exclusion in expected_distinct.
_MAX_EXACT_SETS = 16


def expected_distinct(sets, seed: int = 0) -> float:
    """Expected number of distinct triads over windows under a random priority order of the triads.

    Triad t is used unless every window whose tie set holds t has a higher-priority member, so with
    the antichain {S} of distinct minimal tie sets holding t (supersets add nothing),
    P(t used) = sum over non-empty families F of (-1)^(|F|+1) / |union of F| (t must outrank the
    other members of all sets of F). A set {t} alone makes t certain. Without ties this is the plain
    count of distinct labels. If some triad had more than 16 minimal tie sets (never seen in music)
    the probability is estimated from 4,096 seeded random orders instead.

    Args:
        sets: (n, 24) bool tie sets; silent windows (no triad) are ignored.
        seed: seed of the random orders of that fallback.

    Returns:
        float, 0 when every window is silent.
    """
    s = np.atleast_2d(np.asarray(sets, dtype=bool))
    s = np.unique(s[s.any(axis=1)], axis=0)
    total = 0.0
    for t in range(24):
        fam = s[s[:, t]]
        if not len(fam):
            continue
        sizes = fam.sum(axis=1)
        if (sizes == 1).any():
            total += 1.0
            continue
        keep = [i for i in range(len(fam))  # minimal sets only
                if not any(j != i and (fam[j] <= fam[i]).all() and (fam[j] != fam[i]).any()
                           for j in range(len(fam)))]
        fam = fam[keep]
        if len(fam) > _MAX_EXACT_SETS:
            rng = np.random.default_rng(seed)
            ranks = np.argsort(rng.random((4096, 24)), axis=1).argsort(axis=1)  # rank of each triad
            rank_t = ranks[:, t][:, None]
            beaten = [(ranks[:, f] < rank_t).any(axis=1) for f in fam]
            total += float(1.0 - np.mean(np.all(beaten, axis=0)))
            continue
        p = 0.0
        for mask in range(1, 1 << len(fam)):
            members = [fam[i] for i in range(len(fam)) if mask >> i & 1]
            p += (-1) ** (len(members) + 1) / np.logical_or.reduce(members).sum()
        total += p
    return float(total)


def triad_shares(chroma_vectors) -> np.ndarray:
    """Expected share of non-silent windows on each triad, ties split evenly within a window.

    Args:
        chroma_vectors: (n, 12) chroma.

    Returns:
        (24,) float summing to 1 (all zeros when every window is silent), indexed like
        :data:`TRIAD_NAMES`.

    Used in: notebooks/01_data_prep.ipynb (the corpus's commonest triads under each transposition).
    """
    sets = np.atleast_2d(triad_tie_sets(chroma_vectors))
    size = sets.sum(axis=1)
    voiced = size > 0
    if not voiced.any():
        return np.zeros(24)
    return (sets[voiced] / size[voiced, None]).sum(axis=0) / voiced.sum()


def triad_labels(chroma_vectors) -> np.ndarray:
    """One major/minor triad label per window by template matching (for display and names).

    The label maximises the inner product of the chroma with the 24 binary triad templates (the
    same as cosine similarity, all templates having one norm). Tied windows get the lowest tied
    index; statistics must not use these labels but the tie sets (:func:`triad_tie_sets`), see the
    module docstring. Silent rows get ``-1``.

    Args:
        chroma_vectors: (n, 12) or (12,) chroma.

    Returns:
        (n,) int64 labels in -1..23 indexing :data:`TRIAD_NAMES` (an int for a single vector).

    Used in: notebooks/01_data_prep.ipynb, notebooks/04_query_generation.ipynb.
    """
    scores, single = _triad_scores(chroma_vectors)
    labels = np.argmax(scores, axis=1).astype(np.int64)
    labels[scores.max(axis=1) <= 0] = -1
    return int(labels[0]) if single else labels


class Key(NamedTuple):
    """A key estimate: tonic pitch class (C = 0), mode, the best profile's correlation, signature.

    A tuple, so ``tonic, mode = key[:2]`` works. ``correlation`` is nan for a passage with no tonal
    evidence (silent, or all twelve pitch classes equally long), which gets C major.
    """

    tonic: int
    mode: str
    correlation: float
    sharps: int

    @property
    def name(self) -> str:
        """'C major', 'Eb minor', ..."""
        return f"{KEY_TONIC_NAMES[self.tonic % 12]} {self.mode}"

    @property
    def triad(self) -> int:
        """Index in :data:`TRIAD_NAMES` of the tonic triad."""
        return self.tonic if self.mode == "major" else 12 + self.tonic


def estimate_key(x, spec: RollSpec = RollSpec()) -> Key:
    """Key of a passage by the Krumhansl-Kessler key-profile method (the package's one key estimator).

    The duration-weighted pitch-class histogram is correlated (Pearson) with the 12 rotations of the
    major and minor profiles; the best of the 24 wins (major first on exact ties, then lower tonic).

    Args:
        x: chroma (n, 12) or (12,) (summed over rows), or a roll / frames / Piece
            (:func:`pianoroll.as_roll`), whose play plane gives the histogram.
        spec: roll layout when ``x`` is a roll.

    Returns:
        :class:`Key`; ``Key(0, "major", nan, 0)`` when there is no tonal evidence.

    Raises:
        ValueError: ``x`` is neither chroma nor a roll of this layout.

    Used in: notebooks/01_data_prep.ipynb (corpus transposition), notebooks/04_query_generation.ipynb,
    render (key signatures).
    """
    a = x if isinstance(x, Piece) else np.asarray(x)
    if not isinstance(a, Piece) and a.shape[-1:] == (12,) and a.ndim <= 2:
        total = np.atleast_2d(a.astype(np.float64)).sum(axis=0)
    else:
        total = pitch_class_histogram(a, spec)
    if total.sum() <= 0 or np.allclose(total, total[0]):
        return Key(0, "major", float("nan"), 0)
    x = total - total.mean()
    r = (_KK_CENTRED @ x) / (_KK_NORMS * np.sqrt(x @ x))  # Pearson r with all 24 profiles at once
    # the first tied with the best (_TIE_RTOL absorbs rounding): major before minor, then lower tonic
    k = int(np.flatnonzero(r >= r.max() - _TIE_RTOL * abs(r.max()))[0])
    tonic, mode = k % 12, ("major" if k < 12 else "minor")
    relative_major = tonic if mode == "major" else (tonic + 3) % 12
    return Key(int(tonic), mode, float(r[k]), _MAJOR_SHARPS[relative_major])


def tonic_triad(chroma_vectors) -> int:
    """Index in :data:`TRIAD_NAMES` of the tonic triad of the passage's estimated key.

    Raises:
        ValueError: a silent passage has no key.
    """
    key = estimate_key(chroma_vectors)
    if np.isnan(key.correlation):
        raise ValueError("cannot estimate the key of a silent passage")
    return key.triad


def _check_pair(query_chroma, output_chroma):
    q = np.atleast_2d(np.asarray(query_chroma, dtype=np.float64))
    o = np.atleast_2d(np.asarray(output_chroma, dtype=np.float64))
    if q.shape != o.shape:
        raise ValueError(f"query and output chroma must have the same shape, got {q.shape} and {o.shape}")
    return q, o


def frame_comparison(query_chroma, output_chroma) -> dict:
    """Per-window comparison of a query and an output of the same length.

    Args:
        query_chroma, output_chroma: (n, 12) chroma at the same resolution.

    Returns:
        dict of (n,) arrays: ``chroma_cosine`` (1 when both windows are silent, 0 when only one is),
        ``tonnetz_distance`` (silence at the Tonnetz origin), ``triad_agreement`` (float in [0, 1],
        the expected agreement with ties broken at random, :func:`triad_credit`; two silent windows
        agree).

    Used in: notebooks/04_query_generation.ipynb.
    """
    q, o = _check_pair(query_chroma, output_chroma)
    nq, no = np.linalg.norm(q, axis=1), np.linalg.norm(o, axis=1)
    both = (nq > 0) & (no > 0)
    cos = np.zeros(len(q))
    cos[both] = (q[both] * o[both]).sum(axis=1) / (nq[both] * no[both])
    cos[(nq == 0) & (no == 0)] = 1.0
    return {
        "chroma_cosine": cos,
        "tonnetz_distance": np.atleast_1d(tonnetz_distance(q, o)),
        "triad_agreement": triad_credit(triad_tie_sets(q), triad_tie_sets(o)),
    }


def frame_agreement(query_chroma, output_chroma) -> dict:
    """Means over windows of :func:`frame_comparison`.

    Returns:
        {"chroma_cosine": float, "tonnetz_distance": float, "triad_agreement": float (share 0-1)}.

    Used in: notebooks/04_query_generation.ipynb.
    """
    return {k: float(np.mean(v)) for k, v in frame_comparison(query_chroma, output_chroma).items()}


def chance_agreement(query_chroma, output_chroma, n_shuffles: int = 100, seed: int = 0) -> dict:
    """Chance level of :func:`frame_agreement`: the query's windows shuffled in time.

    Each shuffle permutes the query's rows (seeded), keeping the output fixed, so the result is what
    agreement one gets from the query's harmonic vocabulary without its timing.

    Args:
        query_chroma, output_chroma: (n, 12) chroma at the same resolution.
        n_shuffles: number of random permutations averaged.
        seed: seed of the numpy Generator.

    Returns:
        {"chroma_cosine", "tonnetz_distance", "triad_agreement"}: means over windows and shuffles.

    Used in: notebooks/04_query_generation.ipynb.
    """
    q, o = _check_pair(query_chroma, output_chroma)
    rng = np.random.default_rng(seed)
    acc = {"chroma_cosine": 0.0, "tonnetz_distance": 0.0, "triad_agreement": 0.0}
    for _ in range(n_shuffles):
        a = frame_agreement(q[rng.permutation(len(q))], o)
        for k in acc:
            acc[k] += a[k] / n_shuffles
    return acc


def pitch_class_entropy_bits(chroma_vectors) -> float:
    """Shannon entropy (bits) of the pitch-class distribution of the summed chroma (0 if silent)."""
    total = np.atleast_2d(np.asarray(chroma_vectors, dtype=np.float64)).sum(axis=0)
    s = total.sum()
    if s <= 0:
        return 0.0
    p = total[total > 0] / s
    return float(-(p * np.log2(p)).sum())


def output_stats(roll, tonic: int | None = None, spec: RollSpec = RollSpec(),
                 resolution: str = "frame", query_roll=None) -> dict:
    """Harmonic statistics of one output roll.

    Args:
        roll: (T, 156) binary roll (or (N, 2496) frames) of the output.
        tonic: index in :data:`TRIAD_NAMES` of the query's tonic triad; if None it is estimated from
            ``query_roll`` (Krumhansl-Kessler), which must then be given.
        spec: the roll layout.
        resolution: window for triad labels ("frame" = bar, "beat").
        query_roll: the query's roll, used only to estimate ``tonic``.

    Returns:
        dict with ``distinct_triads`` (float, expected number of distinct triads over non-silent
        windows, :func:`expected_distinct`), ``tonic_share`` (expected share of non-silent windows on
        the tonic triad, ties counted fractionally; nan if all silent),
        ``pc_entropy_bits`` (pitch-class entropy of the whole output), ``note_density`` (note onsets
        per frame, articulate plane), ``empty_frame_rate`` (share of frames with no sounding note),
        ``tonic`` (the tonic triad index used).

    Used in: notebooks/04_query_generation.ipynb.
    """
    if tonic is None:
        if query_roll is None:
            raise ValueError("give the query's tonic triad or query_roll to estimate it from")
        tonic = tonic_triad(chroma(query_roll, spec, "frame"))
    r = np.asarray(roll)
    if r.ndim == 2 and r.shape[1] == spec.frame_size:
        r = r.reshape(-1, spec.n_columns)
    c = chroma(r, spec, resolution)
    sets = triad_tie_sets(c)
    size = sets.sum(axis=1)
    voiced = size > 0
    per_frame = chroma(r, spec, "frame")
    n_frames = max(len(per_frame), 1)
    if r.shape[1] == spec.n_columns:
        onsets = float(np.asarray(r[:, spec.n_pitches:], dtype=np.float64).sum())
    else:
        onsets = float("nan")
    return {
        "distinct_triads": expected_distinct(sets),
        "tonic_share": float(np.mean(sets[voiced, tonic] / size[voiced])) if voiced.any() else float("nan"),
        "pc_entropy_bits": pitch_class_entropy_bits(c),
        "note_density": onsets / n_frames,
        "empty_frame_rate": float(np.mean(per_frame.sum(axis=1) == 0)) if len(per_frame) else float("nan"),
        "tonic": int(tonic),
    }


def chance_levels(query_chroma, output_chromas, n_shuffles: int = 20, seed: int = 0) -> list[dict]:
    """:func:`chance_agreement` of many outputs against one query, in one pass.

    Same permutations (``default_rng(seed)``, one ``permutation`` per shuffle) and the same numbers as
    calling ``chance_agreement(query_chroma, o, n_shuffles, seed)`` for every output ``o``
    (a test checks the equality), but each bar's Tonnetz point, triad label and unit chroma are
    computed once and only gathered per permutation, instead of being
    recomputed for every shuffle of every output.

    Args:
        query_chroma: (n, 12) chroma of the query's bars.
        output_chromas: list of (n, 12) chroma, one per output.
        n_shuffles: permutations of the query's bars.
        seed: seed of the permutations.

    Returns:
        one dict per output: {"chroma_cosine", "tonnetz_distance", "triad_agreement"} (means over
        bars and shuffles).

    Used in: notebooks/04_query_generation.ipynb (through :func:`qbdi_utils.claims.claims_sweep`), qbdi_utils.navigate.
    """
    q = np.atleast_2d(np.asarray(query_chroma, dtype=np.float64))
    outs = [np.atleast_2d(np.asarray(o, dtype=np.float64)) for o in output_chromas]
    if not outs:
        return []
    if any(o.shape != q.shape for o in outs):
        raise ValueError(f"every output chroma must have the query's shape {q.shape}")
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(len(q)) for _ in range(n_shuffles)])  # (S, n)

    def features(c):
        norm = np.linalg.norm(c, axis=1)
        unit = np.divide(c, norm[:, None], out=np.zeros_like(c), where=norm[:, None] > 0)
        return unit, norm > 0, tonnetz(c), triad_tie_sets(c)

    qu, qv, qt, ql = (a[perms] for a in features(q))  # (S, n, ...)
    result = []
    for o in outs:
        ou, ov, ot, ol = features(o)
        cos = np.where(qv & ov, (qu * ou).sum(axis=-1), np.where(~qv & ~ov, 1.0, 0.0))
        dist = np.sqrt(((qt - ot) ** 2).sum(axis=-1))
        result.append({"chroma_cosine": float(cos.mean()), "tonnetz_distance": float(dist.mean()),
                       "triad_agreement": float(triad_credit(ql, ol).mean())})
    return result
