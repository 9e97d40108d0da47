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
"""

from __future__ import annotations

import numpy as np

from qbdi_utils.pianoroll import RollSpec

__all__ = [
    "PITCH_CLASS_NAMES",
    "TRIAD_NAMES",
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

_RESOLUTIONS = ("frame", "beat", "step")

# Krumhansl & Kessler (1982) probe-tone key profiles, tonic first.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


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
    """(T, n_pitches) play plane of a roll (T, n_columns) or of frames (N, frame_size)."""
    roll = np.asarray(roll)
    if roll.ndim != 2:
        raise ValueError(f"expected a 2-D roll (T, {spec.n_columns}) or frames (N, {spec.frame_size}), "
                         f"got shape {roll.shape}")
    if roll.shape[1] == spec.frame_size:
        roll = roll.reshape(-1, spec.n_columns)
    if roll.shape[1] == spec.n_columns:
        return roll[:, : spec.n_pitches]
    if roll.shape[1] == spec.n_pitches:
        return roll
    raise ValueError(f"roll has {roll.shape[1]} columns; expected {spec.n_columns} (roll), "
                     f"{spec.n_pitches} (play plane) or {spec.frame_size} (frames)")


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


def triad_labels(chroma_vectors) -> np.ndarray:
    """Major/minor triad label per row by template matching.

    The label maximises the cosine similarity between the chroma and the 24 binary triad templates
    (equivalently, the template's inner product, as all templates have the same norm); ties go to the
    lower index (major before minor, C first). Silent rows get ``-1``.

    Args:
        chroma_vectors: (n, 12) or (12,) chroma.

    Returns:
        (n,) int64 labels in -1..23 indexing :data:`TRIAD_NAMES` (an int for a single vector).

    Used in: notebooks/04_query_generation.ipynb.
    """
    c = np.asarray(chroma_vectors, dtype=np.float64)
    single = c.ndim == 1
    c = np.atleast_2d(c)
    scores = c @ _TEMPLATES.T
    labels = np.argmax(scores, axis=1).astype(np.int64)
    labels[c.sum(axis=1) <= 0] = -1
    return int(labels[0]) if single else labels


def estimate_key(chroma_vectors) -> tuple[int, str]:
    """Key of a passage by the Krumhansl-Kessler key-profile method.

    The summed chroma is correlated (Pearson) with the 12 rotations of the major and minor profiles.

    Args:
        chroma_vectors: (n, 12) or (12,) chroma of the whole passage.

    Returns:
        (tonic pitch class 0-11, "major" or "minor").

    Used in: notebooks/04_query_generation.ipynb.
    """
    total = np.atleast_2d(np.asarray(chroma_vectors, dtype=np.float64)).sum(axis=0)
    if total.sum() <= 0:
        raise ValueError("cannot estimate the key of a silent passage")
    best = (-np.inf, 0, "major")
    for mode, profile in (("major", _KK_MAJOR), ("minor", _KK_MINOR)):
        for tonic in range(12):
            r = np.corrcoef(total, np.roll(profile, tonic))[0, 1]
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]


def tonic_triad(chroma_vectors) -> int:
    """Index in :data:`TRIAD_NAMES` of the tonic triad of the passage's estimated key."""
    tonic, mode = estimate_key(chroma_vectors)
    return tonic if mode == "major" else 12 + tonic


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
        ``tonnetz_distance`` (silence at the Tonnetz origin), ``triad_agreement`` (bool; two silent
        windows agree).

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
        "triad_agreement": triad_labels(q) == triad_labels(o),
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
        dict with ``distinct_triads`` (int, distinct labels over non-silent windows), ``tonic_share``
        (share of non-silent windows labelled with the tonic triad; nan if all silent),
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
    labels = triad_labels(c)
    voiced = labels >= 0
    per_frame = chroma(r, spec, "frame")
    n_frames = max(len(per_frame), 1)
    if r.shape[1] == spec.n_columns:
        onsets = float(np.asarray(r[:, spec.n_pitches:], dtype=np.float64).sum())
    else:
        onsets = float("nan")
    return {
        "distinct_triads": int(len(np.unique(labels[voiced]))),
        "tonic_share": float(np.mean(labels[voiced] == tonic)) if voiced.any() else float("nan"),
        "pc_entropy_bits": pitch_class_entropy_bits(c),
        "note_density": onsets / n_frames,
        "empty_frame_rate": float(np.mean(per_frame.sum(axis=1) == 0)) if len(per_frame) else float("nan"),
        "tonic": int(tonic),
    }
