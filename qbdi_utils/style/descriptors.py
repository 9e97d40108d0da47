"""Per-bar descriptors of a roll and their set-level comparison (fixed-bin histograms, overlap, KL).

The definitions and the choice of formulation are in :mod:`qbdi_utils.style`.

Imports: harmony, pianoroll.
Used in: style.reference, style.classifier; through :mod:`qbdi_utils.style`: explore, blend, cli,
notebooks/08_blend.ipynb, tests/test_style.py.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, fields
from typing import Sequence

import numpy as np

from qbdi_utils import harmony, pianoroll
from qbdi_utils.pianoroll import Piece, RollSpec

__all__ = [
    "SCALARS",
    "DESCRIPTORS",
    "SCALAR_BINS",
    "NOTE_LENGTH_EDGES",
    "KL_EPSILON",
    "BarDescriptors",
    "bar_descriptors",
    "frames_descriptors",
    "histogram",
    "overlap",
    "kl_bits",
    "compare_sets",
    "style_fit",
    "style_fit_corpus",
    "style_fit_query",
]

#: The scalar per-bar descriptors, in the order of :class:`BarDescriptors` and of the classifier's features.
SCALARS = ("onsets", "polyphony", "pitch_span", "pc_entropy", "note_length", "empty")

#: Descriptors averaged by :func:`style_fit` (``note_length`` is the histogram of every note's length).
DESCRIPTORS = ("onsets", "polyphony", "pitch_span", "pc_entropy", "note_length", "empty",
               "pitch_classes", "groove")

#: Fixed left bin edges of the scalar descriptors: bin i is [e_i, e_{i+1}), the last bin [e_last, inf).
SCALAR_BINS = {
    "onsets": np.arange(0.0, 66.0, 2.0),        # 2 onsets wide, 64 and more in the last bin
    "polyphony": np.arange(0.0, 10.5, 0.5),     # half a voice wide, 10 voices and more last
    "pitch_span": np.arange(0.0, 63.0, 3.0),    # 3 semitones wide, 5 octaves and more last
    "pc_entropy": np.arange(0.0, 3.75, 0.25),   # a quarter bit wide; log2(12) = 3.58 is the maximum
    "empty": np.array([0.0, 0.5]),              # not empty / empty
}
#: Left bin edges (steps) of note lengths, for the per-note histogram and the per-bar mean.
NOTE_LENGTH_EDGES = np.array([0.0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64])
#: Probability added to every bin before a KL divergence (then renormalised).
KL_EPSILON = 1e-3



@dataclass
class BarDescriptors:
    """Per-bar descriptors of one or more pieces (N bars, M notes).

    Attributes:
        onsets, polyphony, pitch_span, pc_entropy, note_length, empty: (N,) float64 (see the module
            docstring).
        pitch_classes: (N, 12) float64 duration-weighted chroma, column 0 = the piece's tonic.
        groove: (N, 16) float64 onsets per position of the bar.
        lengths: (M,) float64, the length in steps of every note starting in these bars.
        note_bar: (M,) int, the bar each of those notes starts in.
        piece: (N,) int, which piece (of those concatenated) each bar comes from.
        sounding: (N,) float64, sounding cells of the bar (pitches sounding, summed over its steps):
            how long the bar's notes are held, which onsets alone do not say.
    """

    onsets: np.ndarray
    polyphony: np.ndarray
    pitch_span: np.ndarray
    pc_entropy: np.ndarray
    note_length: np.ndarray
    empty: np.ndarray
    pitch_classes: np.ndarray
    groove: np.ndarray
    lengths: np.ndarray
    note_bar: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    piece: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sounding: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))

    @property
    def n_bars(self) -> int:
        """Number of bars N."""
        return int(len(self.onsets))

    def select(self, bars) -> "BarDescriptors":
        """The descriptors of a subset of bars (an index array or a boolean mask of length N)."""
        idx = np.arange(self.n_bars)[np.asarray(bars)]
        keep = np.isin(self.note_bar, idx)
        remap = np.full(self.n_bars, -1, np.int64)
        remap[idx] = np.arange(len(idx))
        kw = {f.name: getattr(self, f.name)[idx] for f in fields(self) if f.name not in ("lengths", "note_bar")}
        return BarDescriptors(lengths=self.lengths[keep], note_bar=remap[self.note_bar[keep]], **kw)

    @classmethod
    def concatenate(cls, parts: Sequence["BarDescriptors"]) -> "BarDescriptors":
        """One descriptor set from several (bars and notes appended, piece numbers made distinct)."""
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to concatenate")
        offsets = np.cumsum([0] + [p.n_bars for p in parts[:-1]])
        piece_base = np.cumsum([0] + [int(p.piece.max()) + 1 if len(p.piece) else 0 for p in parts[:-1]])
        kw = {}
        for f in fields(cls):
            if f.name == "note_bar":
                kw[f.name] = np.concatenate([p.note_bar + o for p, o in zip(parts, offsets)])
            elif f.name == "piece":
                kw[f.name] = np.concatenate([p.piece + b for p, b in zip(parts, piece_base)])
            else:
                kw[f.name] = np.concatenate([getattr(p, f.name) for p in parts])
        return cls(**kw)

    def to_npz_bytes(self) -> bytes:
        """The arrays as ``.npz`` bytes (for a cache file); inverse of :meth:`from_npz_bytes`."""
        buf = io.BytesIO()
        np.savez_compressed(buf, **{f.name: getattr(self, f.name) for f in fields(self)})
        return buf.getvalue()

    @classmethod
    def from_npz_bytes(cls, data: bytes) -> "BarDescriptors":
        """Descriptors from :meth:`to_npz_bytes` output."""
        with np.load(io.BytesIO(data)) as z:
            return cls(**{f.name: np.asarray(z[f.name]) for f in fields(cls)})


def bar_descriptors(x, spec: RollSpec = RollSpec(), offset_steps: int | None = None,
                    tonic: int | None = None) -> BarDescriptors:
    """Per-bar descriptors of one piece.

    Args:
        x: a Piece (its ``bar_offset_steps`` is used when ``offset_steps`` is None) or a
            (T, spec.n_columns) roll.
        spec: roll layout.
        offset_steps: step of the first bar line; default the Piece's, or 0 for a roll.
        tonic: pitch class the pitch-class histograms are rotated to (column 0); default the tonic
            of the roll's estimated key (C for a silent roll).

    Returns:
        :class:`BarDescriptors` with N = ceil((T + pickup padding) / spec.steps_per_frame) bars.

    Used in: notebooks/08_blend.ipynb, :func:`fidelity`.
    """
    if offset_steps is None:
        offset_steps = int(x.bar_offset_steps) if isinstance(x, Piece) else 0
    roll = pianoroll.as_roll(x, spec)
    if roll.ndim != 2 or roll.shape[1] != spec.n_columns:
        raise ValueError(f"expected a roll (T, {spec.n_columns}), got {roll.shape}")
    frames = pianoroll.to_frames(np.asarray(roll != 0, np.uint8), spec, int(offset_steps))
    return frames_descriptors(frames, spec, tonic=tonic)


def frames_descriptors(frames, spec: RollSpec = RollSpec(), tonic: int | None = None,
                       groups=None) -> BarDescriptors:
    """Per-bar descriptors of bar-aligned frames (one piece, or several pieces told apart by ``groups``).

    Consecutive frames of one group are read as one roll, so a note held over a bar line is one note
    (of the bar where it starts).

    Args:
        frames: (N, spec.frame_size) 0/1 frames, each one bar.
        spec: roll layout.
        tonic: pitch class for column 0 of the pitch-class histograms; default each group's own
            estimated key tonic.
        groups: (N,) piece label per frame (e.g. a corpus's ``piece_index``), consecutive frames
            of one piece contiguous; None = one piece.

    Returns:
        :class:`BarDescriptors` of N bars (``piece`` numbers the groups 0, 1, ... in order).

    Used in: :func:`corpus_reference`, :func:`classifier_sets`.
    """
    frames = pianoroll.as_frames(frames, spec)
    n = len(frames)
    if groups is None:
        bounds = [(0, n)]
    else:
        g = np.asarray(groups)
        if len(g) != n:
            raise ValueError(f"groups must have {n} entries, got {len(g)}")
        cut = np.flatnonzero(np.diff(g) != 0) + 1 if n else np.zeros(0, int)
        starts = np.concatenate([[0], cut]) if n else np.zeros(0, int)
        bounds = list(zip(starts, np.concatenate([cut, [n]]))) if n else []
    parts = [_one_piece(frames[a:b], spec, tonic, 0) for a, b in bounds]
    if not parts:
        return _one_piece(frames[:0], spec, tonic, 0)
    return parts[0] if len(parts) == 1 else BarDescriptors.concatenate(parts)


def _one_piece(frames: np.ndarray, spec: RollSpec, tonic: int | None, piece: int) -> BarDescriptors:
    """Descriptors of the frames of one piece (see :func:`frames_descriptors`)."""
    spf, n_p = spec.steps_per_frame, spec.n_pitches
    n = len(frames)
    roll = pianoroll.from_frames(frames, spec) if n else np.zeros((0, spec.n_columns), np.uint8)
    roll = pianoroll.make_valid(roll, spec)
    play = roll[:, :n_p].reshape(n, spf, n_p).astype(bool)
    notes = np.asarray(pianoroll.roll_to_notes(roll, spec), dtype=np.int64).reshape(-1, 3)
    bar = notes[:, 1] // spf
    pos = notes[:, 1] % spf
    length = (notes[:, 2] - notes[:, 1]).astype(np.float64)
    onsets = np.bincount(bar, minlength=n).astype(np.float64)
    sum_len = np.bincount(bar, weights=length, minlength=n)
    note_length = np.divide(sum_len, onsets, out=np.zeros(n), where=onsets > 0)
    groove = np.zeros((n, spf))
    np.add.at(groove, (bar, pos), 1.0)
    voices = play.sum(axis=2)                        # (n, spf) sounding pitches per step
    sounding = voices > 0
    polyphony = np.divide(voices.sum(axis=1), sounding.sum(axis=1), out=np.zeros(n),
                          where=sounding.sum(axis=1) > 0)
    any_pitch = play.any(axis=1)                     # (n, n_p)
    empty = ~any_pitch.any(axis=1)
    hi = np.where(empty, 0, n_p - 1 - np.argmax(any_pitch[:, ::-1], axis=1))
    lo = np.where(empty, 0, np.argmax(any_pitch, axis=1))
    chroma = harmony.chroma(roll, spec, "frame") if n else np.zeros((0, 12))
    if tonic is None:
        key = harmony.estimate_key(chroma) if n else None
        tonic = 0 if key is None else key.tonic
    pcs = np.roll(chroma, -int(tonic), axis=1)
    entropy = np.array([harmony.pitch_class_entropy_bits(c) + 0.0 for c in chroma]).reshape(n)
    return BarDescriptors(
        onsets=onsets, polyphony=polyphony, pitch_span=(hi - lo).astype(np.float64),
        pc_entropy=entropy, note_length=note_length, empty=empty.astype(np.float64),
        pitch_classes=pcs, groove=groove, lengths=length, note_bar=bar.astype(np.int64),
        piece=np.full(n, int(piece), np.int64), sounding=voices.sum(axis=1).astype(np.float64))


def histogram(d: BarDescriptors, descriptor: str) -> np.ndarray:
    """The set-level distribution of one descriptor over a set of bars, with the fixed bins.

    Args:
        d: the bars' descriptors.
        descriptor: one of :data:`DESCRIPTORS`.

    Returns:
        (K,) float64 summing to 1; all zeros when undefined (no bars; no notes for ``note_length``,
        ``groove``; nothing sounding for ``pitch_classes``).

    Used in: :func:`compare_sets`, notebooks/08_blend.ipynb.
    """
    if descriptor == "pitch_classes":
        h = d.pitch_classes.sum(axis=0) if d.n_bars else np.zeros(12)
    elif descriptor == "groove":
        h = d.groove.sum(axis=0) if d.n_bars else np.zeros(d.groove.shape[1] if d.groove.ndim == 2 else 16)
    else:
        if descriptor == "note_length":
            values, edges = d.lengths, NOTE_LENGTH_EDGES
        elif descriptor in SCALAR_BINS:
            values, edges = getattr(d, descriptor), SCALAR_BINS[descriptor]
        else:
            raise ValueError(f"unknown descriptor {descriptor!r}; one of {DESCRIPTORS}")
        idx = np.clip(np.searchsorted(edges, np.asarray(values, np.float64), side="right") - 1, 0, len(edges) - 1)
        h = np.bincount(idx, minlength=len(edges)).astype(np.float64)
    h = np.asarray(h, np.float64)
    tot = h.sum()
    return h / tot if tot > 0 else h


def overlap(p, q) -> float:
    """Overlapping area of two histograms on the same bins: sum_i min(p_i, q_i) (1 same, 0 disjoint).

    Args:
        p, q: (K,) non-negative, each summing to 1 (or all zero: undefined).

    Returns:
        float in [0, 1]; nan when either histogram is all zero.
    """
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    return float(np.minimum(p, q).sum())


def kl_bits(p, q, eps: float = KL_EPSILON) -> float:
    """KL(P || Q) in bits of two histograms on the same bins, each smoothed by ``eps`` per bin.

    Args:
        p, q: (K,) histograms summing to 1 (all zero: undefined).
        eps: probability added to every bin before renormalising.

    Returns:
        float >= 0 (0 for identical histograms); nan when either is all zero.
    """
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p = (p + eps) / (1.0 + eps * len(p))
    q = (q + eps) / (1.0 + eps * len(q))
    return float(max(0.0, (p * np.log2(p / q)).sum()))


def compare_sets(a: BarDescriptors, b: BarDescriptors) -> dict:
    """MGEval-style comparison of two sets of bars, descriptor by descriptor.

    Args:
        a: the set compared (e.g. an output's bars).
        b: the reference set (e.g. the corpus's test bars).

    Returns:
        {descriptor: {"overlap": float, "kl_bits": float}} for every name in :data:`DESCRIPTORS`
        (KL(a || b)).

    Used in: notebooks/08_blend.ipynb.
    """
    out = {}
    for name in DESCRIPTORS:
        p, q = histogram(a, name), histogram(b, name)
        out[name] = {"overlap": overlap(p, q), "kl_bits": kl_bits(p, q)}
    return out


def style_fit(a: BarDescriptors, b: BarDescriptors) -> float:
    """Mean over :data:`DESCRIPTORS` of the overlap of ``a``'s and ``b``'s histograms (undefined ones left out).

    Returns:
        float in [0, 1] (nan when no descriptor is defined on both sides).
    """
    vals = [v["overlap"] for v in compare_sets(a, b).values()]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def style_fit_corpus(output: BarDescriptors, corpus_ref: BarDescriptors) -> float:
    """:func:`style_fit` of an output's bars against the corpus's test bars (:func:`corpus_reference`).

    Used in: :func:`fidelity`, notebooks/08_blend.ipynb.
    """
    return style_fit(output, corpus_ref)


def style_fit_query(output: BarDescriptors, query: BarDescriptors) -> float:
    """:func:`style_fit` of an output's bars against the query's bars.

    Used in: :func:`fidelity`, notebooks/08_blend.ipynb.
    """
    return style_fit(output, query)
