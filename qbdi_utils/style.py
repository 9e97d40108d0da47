"""Style fidelity: per-bar descriptors of a roll, set-level comparison, a style classifier (corpus side).

PAPER.md section 9. :mod:`qbdi_utils.harmony` asks "how much of the query survived?"; this module asks
"does the output sound like the corpus?". Used in notebooks/08_blend.ipynb and in the fidelity line
of ``qbdi improvise`` / ``qbdi navigate`` / ``qbdi sweep``.

**Per-bar descriptors** (:func:`bar_descriptors`), one row per bar of ``spec.steps_per_frame`` = 16
steps, bars aligned on the piece's bar lines (``Piece.bar_offset_steps``, a pickup padded in front as
:func:`qbdi_utils.pianoroll.to_frames` does). Notes come from the package's one note reader,
:func:`qbdi_utils.pianoroll.roll_to_notes`; a note belongs to the bar in which it starts.

- ``onsets``: notes starting in the bar.
- ``polyphony``: mean number of sounding pitches over the bar's steps on which something sounds
  (muspy's "polyphony"); 0 for an empty bar.
- ``pitch_span``: highest minus lowest sounding MIDI pitch in the bar (semitones); 0 if empty.
- ``pc_entropy``: Shannon entropy (bits) of the bar's duration-weighted pitch-class histogram
  (:func:`qbdi_utils.harmony.chroma`, :func:`qbdi_utils.harmony.pitch_class_entropy_bits`); 0 if empty.
- ``note_length``: mean length in steps of the notes starting in the bar (whole length, also past
  the bar line); 0 without onsets. The set-level note-length histogram uses every note's length.
- ``empty``: 1 when nothing sounds in the bar.
- ``pitch_classes`` (N, 12): the bar's duration-weighted chroma rotated so that column 0 is the tonic
  of the piece's estimated key (Krumhansl-Kessler, :func:`qbdi_utils.harmony.estimate_key` on the
  whole roll): a style measure should not change when a piece is transposed (the chorale corpus is
  moved to C, a query in A-flat is not).
- ``groove`` (N, 16): onsets per position of the bar (MGEval's onset-position / groove pattern).

**Set-level comparison: direct per-bar distributions, histograms with fixed bins.** MGEval (Yang &
Lerch 2018) offers two formulations: (a) compare the distributions of intra-set and inter-set
pairwise distances, (b) compare the distributions of the per-bar feature values themselves. We use
(b): it answers the question asked ("are these bars like those bars?") directly, its overlap is 1
for two sets with the same distribution and 0 for sets with disjoint supports (the distance
formulation gives neither exactly: the overlap of intra-A with inter-AB distances depends on the
spreads), it is linear in the number of bars (the distance version is quadratic: 35 million pairs
for the chorales) and it is deterministic (no subsampling of pairs). The estimates are histograms
with the fixed bins of :data:`SCALAR_BINS` and :data:`NOTE_LENGTH_EDGES`, not kernel densities:
most descriptors are integers (onsets, spans, lengths in steps), on which a kernel's bandwidth
would be a second, arbitrary smoothing; fixed bins make every number comparable between sets and
runs. The two vector descriptors are compared as the set's aggregate categorical distribution
(tonic-relative pitch-class shares, duration-weighted; onset shares per bar position).

- overlap (:func:`overlap`) = sum_i min(p_i, q_i): 1 = same histogram, 0 = disjoint.
- KL divergence (:func:`kl_bits`) KL(P || Q) in bits, P the first set (e.g. an output), Q the
  reference, both smoothed by adding :data:`KL_EPSILON` to every bin's probability and
  renormalising (so disjoint sets give a large finite number, identical ones exactly 0).
- ``style_fit(a, b)`` = mean over :data:`DESCRIPTORS` of the overlap; :func:`style_fit_corpus`
  against the corpus's test pieces (:func:`corpus_reference`), :func:`style_fit_query` against the
  query's bars. A descriptor that is undefined on one side (no notes at all: no note lengths)
  is left out of the mean.

**The style classifier** (:class:`StyleClassifier`, :func:`fit_classifier`): L2-regularised
logistic regression on the standardised per-bar descriptors (the six scalars, the 12
tonic-relative pitch-class shares, the 16 groove counts), fitted by Newton's method (IRLS) in
numpy, classes weighted to equal total weight. It gives P(corpus style) per bar. Fitted on the
corpus's training pieces against half of :data:`OTHER_STYLE_SOURCES` (pieces of other styles from
music21's corpus: fiddle tunes, Renaissance masses and madrigals, Classical quartets; never the
shipped queries), checked on the corpus's validation pieces against the other half
(:func:`classifier_sets`); the pieces reported on (the corpus's test pieces, the queries, the
outputs) are in neither.

**Why numpy and no library.** muspy 0.5.0 (MIT, last release 2022-04) and smg-metrics 5.4.3 (MIT,
built on muspy) both resolve with Python 3.11 and numpy 2, but they compute per-*piece* metrics on
their own Music / MIDI objects (a conversion of every roll), pull in four to six packages
(miditoolkit, pypianoroll, bidict, mir_eval, ...) and do not offer per-bar descriptors with fixed
bins; MGEval itself is a research repository, not on PyPI. The descriptors are a few lines each on
the roll, and the logistic regression is 30 lines of Newton steps on ~10,000 x 35 values, so
scikit-learn would add a dependency for nothing the tests cannot check directly.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field, fields
from typing import Mapping, Sequence

import numpy as np

from qbdi_utils import files, harmony, paths, pianoroll
from qbdi_utils.corpus import normalising_shift, score_to_piece
from qbdi_utils.errors import CorpusError, ModelError
from qbdi_utils.pianoroll import Piece, RollSpec

__all__ = [
    "SCALARS", "DESCRIPTORS", "SCALAR_BINS", "NOTE_LENGTH_EDGES", "KL_EPSILON", "FIDELITY_KEYS",
    "OTHER_STYLE_SOURCES", "split_masks",
    "BarDescriptors", "bar_descriptors", "frames_descriptors",
    "histogram", "overlap", "kl_bits", "compare_sets", "style_fit", "style_fit_corpus", "style_fit_query",
    "corpus_reference", "StyleClassifier", "fit_classifier", "classifier_features", "auc",
    "other_style_pieces", "classifier_sets", "fidelity", "format_fidelity",
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

#: Keys of :func:`fidelity`, in print order.
FIDELITY_KEYS = ("chroma_cosine", "triad_agreement", "style_fit_corpus", "style_fit_query",
                 "onsets_per_bar", "corpus_onsets_per_bar", "empty_bar_rate")

#: Pieces of other styles in music21's corpus for the style classifier (none is a shipped query;
#: every one parses in a few seconds). Style group -> corpus paths.
OTHER_STYLE_SOURCES = {
    "fiddle tunes": tuple(f"ryansMammoth/{n}.abc" for n in (
        "42dHighlandRegimentStrathspey", "BattleTheCashJig", "BoatieRowsStrathspey", "ByrnesFavoriteHornpipe",
        "ColMcBainsReel", "DeerFootHornpipe", "EmonAcnuckJig", "FloggingReel", "GrandSpyReel",
        "HolmesHornpipe", "JamesLeesFavoriteJig", "KittyONeilsChampionJig", "LeesDoubleClog",
        "MaidInThePumpRoomHornpipe", "MissGunningsFancyReel", "NymrodHornpipe", "PaddyNowWontYouBeEasyJig",
        "PortsmouthHornpipe", "RepealOfTheUnionReel", "SheeLaNaQuiraJig", "SteamboatHornpipe",
        "TornadoReel", "WhimOfAMomentJigThe", "LanigansBallJig")),
    "renaissance mass": tuple(f"palestrina/{n}.krn" for n in (
        "Agnus_I_19", "Benedictus_40_b", "Credo_10_e", "Credo_44_b", "Gloria_16_a", "Gloria_73_f",
        "Kyrie_62_a", "Sanctus_27")),
    "madrigal": tuple(f"monteverdi/madrigal.3.{i}.mxl" for i in range(1, 9)),
    "classical quartet": ("haydn/opus1no1/movement1.mxl", "haydn/opus1no1/movement2.mxl",
                          "haydn/opus1no1/movement3.mxl", "haydn/opus1no1/movement4.mxl",
                          "haydn/opus1no1/movement5.mxl", "mozart/k458/movement2.mxl",
                          "mozart/k458/movement3.mxl", "mozart/k458/movement4.mxl"),
}

_OTHERS_CACHE_VERSION = 1
_REF_CACHE_VERSION = 1


# ----------------------------------------------------------------------------------------------
# per-bar descriptors


@dataclass
class BarDescriptors:
    """Per-bar descriptors of one or more pieces (N bars, M notes).

    Attributes:
        onsets, polyphony, pitch_span, pc_entropy, note_length, empty: (N,) float64 (see the module
            docstring).
        pitch_classes: (N, 12) float64 duration-weighted chroma, column 0 = the piece's tonic.
        groove: (N, 16) float64 onsets per position of the bar.
        lengths: (M,) float64, the length in steps of every note starting in these bars.
        piece: (N,) int, which piece (of those concatenated) each bar comes from.
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
        piece=np.full(n, int(piece), np.int64))


# ----------------------------------------------------------------------------------------------
# set-level comparison


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


# ----------------------------------------------------------------------------------------------
# the corpus side, once per model


def _test_groups(model) -> list[int]:
    info = getattr(model, "info", None) or {}
    groups = info.get("test_groups") or info.get("validation_groups")
    if not groups:
        raise ModelError("the model records no held-out pieces (test_groups); models trained by "
                         "`qbdi train` on a corpus do, retrain it")
    return [int(g) for g in groups]


def corpus_reference(model, corpus) -> BarDescriptors:
    """Descriptors of the bars of the model's test pieces, cached on disk per model.

    The cache file (``cache_dir()/style/reference-<fingerprint>-<hash>.npz``) is keyed by the
    model's training-frame fingerprint and its test pieces, so a model's reference is computed once;
    later calls read a few kilobytes and never load the corpus.

    Args:
        model: a StyleVAE with ``info["test_groups"]`` (falls back to ``validation_groups``).
        corpus: the model's training :class:`~qbdi_utils.corpus.Corpus` (``frames``, ``piece_index``),
            or a callable returning it, called only when the cache misses
            (e.g. ``lambda: navigate.model_corpus(model)``).

    Returns:
        :class:`BarDescriptors` of the test pieces' bars.

    Raises:
        ModelError: the model records no held-out pieces.

    Used in: notebooks/08_blend.ipynb, the fidelity line of the CLI.
    """
    groups = _test_groups(model)
    key = hashlib.sha256(json.dumps([_REF_CACHE_VERSION, model.fingerprint, groups,
                                     model.spec.to_dict()]).encode()).hexdigest()[:12]
    path = paths.cache_dir() / "style" / f"reference-{model.fingerprint or 'nofp'}-{key}.npz"
    if path.is_file():
        try:
            return BarDescriptors.from_npz_bytes(path.read_bytes())
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file: compute again
    c = corpus() if callable(corpus) else corpus
    mask = np.isin(np.asarray(c.piece_index), groups)
    ref = frames_descriptors(np.asarray(c.frames)[mask], model.spec, groups=np.asarray(c.piece_index)[mask])
    try:
        files.write_bytes(path, ref.to_npz_bytes(), force=True)
    except Exception:  # a read-only cache only costs the recomputation
        pass
    return ref


# ----------------------------------------------------------------------------------------------
# the style classifier


def classifier_features(d: BarDescriptors) -> np.ndarray:
    """The classifier's per-bar features: the six scalars, 12 pitch-class shares, 16 groove counts.

    Args:
        d: descriptors of N bars.

    Returns:
        (N, 34) float64.
    """
    scal = np.stack([getattr(d, s) for s in SCALARS], axis=1)
    tot = d.pitch_classes.sum(axis=1, keepdims=True)
    shares = np.divide(d.pitch_classes, tot, out=np.zeros_like(d.pitch_classes), where=tot > 0)
    return np.hstack([scal, shares, d.groove]).astype(np.float64)


@dataclass
class StyleClassifier:
    """Logistic regression P(corpus style | bar descriptors).

    Attributes:
        mean, scale: (F,) standardisation of the features (from the training bars).
        weights: (F,) coefficients on standardised features; bias: intercept.
        l2: the ridge penalty used.
        n_iter: Newton steps taken.
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    l2: float = 1.0
    n_iter: int = 0

    def logit(self, d: BarDescriptors) -> np.ndarray:
        """(N,) log-odds of the corpus style per bar."""
        x = (classifier_features(d) - self.mean) / self.scale
        return x @ self.weights + self.bias

    def p_corpus(self, d: BarDescriptors) -> np.ndarray:
        """(N,) P(corpus style) per bar."""
        return 1.0 / (1.0 + np.exp(-self.logit(d)))


def fit_classifier(corpus_bars: BarDescriptors, other_bars: BarDescriptors, l2: float = 1.0,
                   max_iter: int = 100, tol: float = 1e-9) -> StyleClassifier:
    """Fit the style classifier: corpus bars (label 1) against other styles' bars (label 0).

    L2-penalised logistic regression (intercept not penalised) on standardised features, classes
    weighted so each has total weight 1/2 of the bars, fitted by Newton's method (IRLS) until the
    step is below ``tol``.

    Args:
        corpus_bars, other_bars: descriptors of the two classes' training bars.
        l2: ridge penalty on the (standardised) coefficients, in units of the total weight.
        max_iter: Newton steps at most.
        tol: stop when the largest coefficient change is below this.

    Returns:
        :class:`StyleClassifier`.

    Used in: notebooks/08_blend.ipynb.
    """
    xa, xb = classifier_features(corpus_bars), classifier_features(other_bars)
    if not len(xa) or not len(xb):
        raise ValueError("both classes need at least one bar")
    x = np.vstack([xa, xb])
    y = np.concatenate([np.ones(len(xa)), np.zeros(len(xb))])
    w_bar = np.concatenate([np.full(len(xa), 0.5 / len(xa)), np.full(len(xb), 0.5 / len(xb))])
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale <= 1e-12] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    beta = np.zeros(z.shape[1])
    pen = np.full(z.shape[1], float(l2) / len(x))
    pen[-1] = 0.0
    it = 0
    for it in range(1, max_iter + 1):
        p = 1.0 / (1.0 + np.exp(-(z @ beta)))
        grad = z.T @ (w_bar * (p - y)) + pen * beta
        hess = (z * (w_bar * p * (1 - p))[:, None]).T @ z + np.diag(pen + 1e-12)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.max(np.abs(step)) < tol:
            break
    return StyleClassifier(mean=mean, scale=scale, weights=beta[:-1], bias=float(beta[-1]), l2=float(l2),
                           n_iter=it)


def auc(scores_pos, scores_neg) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting 1/2.

    Args:
        scores_pos: (n,) scores of positives; scores_neg: (m,) of negatives.

    Returns:
        float in [0, 1] (0.5 = chance); nan when a side is empty.
    """
    a, b = np.asarray(scores_pos, np.float64), np.asarray(scores_neg, np.float64)
    if not len(a) or not len(b):
        return float("nan")
    allv = np.concatenate([a, b])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):  # average ranks of ties
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1
        i = j + 1
    return float((ranks[:len(a)].sum() - len(a) * (len(a) + 1) / 2) / (len(a) * len(b)))


def _strip_repeats(score):
    for m in score.recurse().getElementsByClass("Measure"):
        if "Repeat" in type(m.leftBarline).__name__:
            m.leftBarline = None
        if "Repeat" in type(m.rightBarline).__name__:
            m.rightBarline = None
    return score


def other_style_pieces(spec: RollSpec = RollSpec(), sources: Mapping | None = None,
                       progress: bool = False) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Bar frames of the other-style pieces (:data:`OTHER_STYLE_SOURCES`), each moved to tonic C.

    Each score is parsed by music21 and read through MIDI (:func:`qbdi_utils.corpus.score_to_piece`;
    repeat signs that music21 cannot expand are dropped), transposed so that its estimated tonic is
    C (as the chorale corpus is, ``transpose="tonic"``), and cut into bar frames. The result is
    cached in ``cache_dir()/style/`` (first call: about a minute on one core).

    Args:
        spec: roll layout.
        sources: style group -> music21 corpus paths (default :data:`OTHER_STYLE_SOURCES`).
        progress: print one line per piece parsed.

    Returns:
        (frames (N, spec.frame_size) uint8, piece_index (N,) int, piece names, style group of each piece).

    Raises:
        CorpusError: no piece could be read.

    Used in: :func:`classifier_sets`.
    """
    sources = OTHER_STYLE_SOURCES if sources is None else sources
    items = [(g, p) for g, ps in sources.items() for p in ps]
    key = hashlib.sha256(json.dumps([_OTHERS_CACHE_VERSION, items, spec.to_dict()]).encode()).hexdigest()[:12]
    path = paths.cache_dir() / "style" / f"other-styles-{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return (np.asarray(z["frames"]), np.asarray(z["piece_index"]), [str(s) for s in z["names"]],
                        [str(s) for s in z["groups"]])
        except (OSError, ValueError, KeyError):
            pass
    from music21 import corpus as m21corpus

    frames, index, names, groups = [], [], [], []
    for group, src in items:
        try:
            score = m21corpus.parse(src)
            try:
                piece = score_to_piece(score, src, spec)
            except Exception:
                piece = score_to_piece(_strip_repeats(score), src, spec)
        except Exception as exc:  # an odd score is skipped, not fatal
            if progress:
                print(f"skipped {src}: {type(exc).__name__}")
            continue
        key_ = harmony.estimate_key(piece.roll, spec)
        shift = normalising_shift(key_.tonic, key_.mode, "tonic")
        roll = pianoroll.transpose_roll(piece.roll, shift, spec)[0] if shift else piece.roll
        fr = pianoroll.to_frames(roll, spec, piece.bar_offset_steps)
        frames.append(fr)
        index.append(np.full(len(fr), len(names), np.int64))
        names.append(src)
        groups.append(group)
        if progress:
            print(f"{src}: {len(fr)} bars")
    if not frames:
        raise CorpusError("none of the other-style pieces could be read from music21's corpus")
    out = (np.concatenate(frames), np.concatenate(index), names, groups)
    buf = io.BytesIO()
    np.savez_compressed(buf, frames=out[0], piece_index=out[1], names=np.array(names), groups=np.array(groups))
    try:
        files.write_bytes(path, buf.getvalue(), force=True)
    except Exception:
        pass
    return out


def split_masks(model, corpus) -> dict:
    """Boolean masks over a corpus's frames: the model's training, validation and test pieces.

    Args:
        model: a StyleVAE with ``info["validation_groups"]`` and ``info["test_groups"]``.
        corpus: its training Corpus (``piece_index``).

    Returns:
        {"train": (N,) bool, "validation": (N,) bool, "test": (N,) bool}.

    Raises:
        ModelError: the model records no held-out pieces.

    Used in: :func:`classifier_sets`, notebooks/08_blend.ipynb.
    """
    info = getattr(model, "info", None) or {}
    val, test = info.get("validation_groups"), info.get("test_groups")
    if not val or not test:
        raise ModelError("the model records no validation / test pieces; retrain it with `qbdi train`")
    pidx = np.asarray(corpus.piece_index)
    v, t = np.isin(pidx, val), np.isin(pidx, test)
    return {"train": ~(v | t), "validation": v, "test": t}


def classifier_sets(model, corpus, seed: int = 0, progress: bool = False) -> dict:
    """The classifier's fitting and checking sets: corpus pieces against other styles, split by piece.

    Fit: the model's *training* pieces against half of the other-style pieces (half of each style
    group, a seeded permutation). Check: the model's *validation* pieces against the other half.
    The model's test pieces (the corpus reference) are in neither.

    Args:
        model: a StyleVAE with ``info["validation_groups"]`` and ``info["test_groups"]``.
        corpus: the model's training Corpus (``frames``, ``piece_index``).
        seed: seed of the split of the other-style pieces.
        progress: passed to :func:`other_style_pieces`.

    Returns:
        dict with BarDescriptors ``fit_corpus``, ``fit_other``, ``check_corpus``, ``check_other``
        and the piece names ``fit_other_names``, ``check_other_names``.

    Used in: notebooks/08_blend.ipynb.
    """
    pidx = np.asarray(corpus.piece_index)
    masks = split_masks(model, corpus)
    is_val, is_test, is_train = masks["validation"], masks["test"], masks["train"]
    fr = np.asarray(corpus.frames)
    o_frames, o_index, o_names, o_groups = other_style_pieces(model.spec, progress=progress)
    rng = np.random.default_rng(seed)
    fit_pieces, check_pieces = [], []
    for g in dict.fromkeys(o_groups):
        members = rng.permutation([i for i, gg in enumerate(o_groups) if gg == g])
        half = (len(members) + 1) // 2
        fit_pieces += sorted(int(m) for m in members[:half])
        check_pieces += sorted(int(m) for m in members[half:])

    def others(pieces):
        m = np.isin(o_index, pieces)
        return frames_descriptors(o_frames[m], model.spec, groups=o_index[m])

    return {
        "fit_corpus": frames_descriptors(fr[is_train], model.spec, groups=pidx[is_train]),
        "check_corpus": frames_descriptors(fr[is_val], model.spec, groups=pidx[is_val]),
        "fit_other": others(fit_pieces), "check_other": others(check_pieces),
        "fit_other_names": [o_names[i] for i in fit_pieces],
        "check_other_names": [o_names[i] for i in check_pieces],
    }


# ----------------------------------------------------------------------------------------------
# the fidelity line


def fidelity(query: Piece, output: Piece, corpus_ref: BarDescriptors | None,
             query_ref: BarDescriptors | None = None) -> dict:
    """Both sides of a generation: query fidelity and style fidelity, bar by bar on the query's bar lines.

    Query side: :func:`qbdi_utils.harmony.frame_agreement` of the bar chroma (chroma cosine, triad
    agreement). Style side: :func:`style_fit_corpus`, :func:`style_fit_query`, the output's onsets
    per bar against the corpus's, its empty-bar rate.

    Args:
        query: the query Piece.
        output: a generation as long as the query (same spec), e.g. an Improvisation.
        corpus_ref: :func:`corpus_reference` of the model; None when the model's corpus is unknown
            (``style_fit_corpus`` and ``corpus_onsets_per_bar`` are then nan).
        query_ref: the query's :func:`bar_descriptors` (computed when None).

    Returns:
        dict with exactly the keys :data:`FIDELITY_KEYS` (floats).

    Used in: ``qbdi improvise``, ``qbdi navigate``, ``qbdi sweep``, notebooks/08_blend.ipynb.
    """
    spec = query.spec
    offset = int(query.bar_offset_steps)
    q_frames = pianoroll.to_frames(np.asarray(query.roll != 0, np.uint8), spec, offset)
    o_frames = pianoroll.to_frames(np.asarray(output.roll != 0, np.uint8), spec, offset)
    n = min(len(q_frames), len(o_frames))
    agree = harmony.frame_agreement(harmony.chroma(q_frames[:n], spec), harmony.chroma(o_frames[:n], spec))
    od = bar_descriptors(output, spec, offset_steps=offset)
    qd = bar_descriptors(query, spec, offset_steps=offset) if query_ref is None else query_ref
    return {
        "chroma_cosine": float(agree["chroma_cosine"]),
        "triad_agreement": float(agree["triad_agreement"]),
        "style_fit_corpus": float("nan") if corpus_ref is None else style_fit_corpus(od, corpus_ref),
        "style_fit_query": style_fit_query(od, qd),
        "onsets_per_bar": float(np.mean(od.onsets)) if od.n_bars else float("nan"),
        "corpus_onsets_per_bar": (float(np.mean(corpus_ref.onsets)) if corpus_ref is not None and corpus_ref.n_bars
                                  else float("nan")),
        "empty_bar_rate": float(np.mean(od.empty)) if od.n_bars else float("nan"),
    }


def format_fidelity(d: Mapping) -> str:
    """The fidelity line in one line of text, e.g. ``query: chroma cosine 0.712, triad agreement 0.600 |
    style: fit corpus 0.810, fit query 0.550, onsets/bar 14.7 (corpus 16.9), empty bars 0.020``.

    Args:
        d: a :func:`fidelity` dict.

    Returns:
        One line, no newline.
    """
    return (f"query: chroma cosine {d['chroma_cosine']:.3f}, triad agreement {d['triad_agreement']:.3f} | "
            f"style: fit corpus {d['style_fit_corpus']:.3f}, fit query {d['style_fit_query']:.3f}, "
            f"onsets/bar {d['onsets_per_bar']:.1f} (corpus {d['corpus_onsets_per_bar']:.1f}), "
            f"empty bars {d['empty_bar_rate']:.3f}")
