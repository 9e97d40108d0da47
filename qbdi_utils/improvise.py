"""Query-based improvisation at any bit budget (PAPER.md sections 1, 4, 5; experiments (b), (c)).

A query :class:`~qbdi_utils.pianoroll.Piece` is cut into bar frames, encoded by the style VAE, sent
through the rate-limited Berger channel (:func:`qbdi_utils.channel.transmit`) and decoded; the decoded
Bernoulli probabilities are thresholded back into a roll as long as the query, with the query's tempo.

This module is thin glue over ``model`` (encode/decode), ``channel`` (transmit), ``pianoroll`` (frames)
and ``harmony`` (metrics). Logic of its own: the alignment (the query is cut at its own bar lines in
any meter by :func:`qbdi_utils.pianoroll.piece_bars`, a pickup padded in front, each bar's frame padded
at its end; the decoded frames are trimmed to their bars' lengths and joined, so the output has
exactly the query's steps, time signatures and bar lines), and the report of what about a query the model cannot take as it is
(:func:`qbdi_utils.query_checks.query_warnings`).
The claims table across bit budgets is :func:`qbdi_utils.claims.claims_sweep`.

Batched use (:func:`improvise_batch`) encodes the query once, transmits it once per (rate, seed) and
decodes every latent sequence in a single ``decode`` call.

Used in: notebooks/04_query_generation.ipynb, ``qbdi improvise`` and ``qbdi sweep``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from qbdi_utils import channel, pianoroll
from qbdi_utils.errors import ModelError, NoNotesError, OptionError, OutputExistsError
from qbdi_utils.pianoroll import Piece, RollSpec
from qbdi_utils.query_checks import query_warnings
from qbdi_utils.training.threshold import continue_notes

__all__ = [
    "BITS_SCALE",
    "CLAIM_RATES",
    "DECODE_MODES",
    "ONSET_FLOOR_SHARE",
    "STATS_MODES",
    "EncodedQuery",
    "Improvisation",
    "as_improvisation",
    "check_stats_mode",
    "corpus_onset_floor",
    "floor_decode",
    "decode_latents",
    "decode_options",
    "encode_query",
    "excerpt",
    "improvise",
    "improvise_batch",
    "parse_bits",
    "rate_label",
    "typical_bars",
    "typical_library",
]


#: The bit budgets (bits per frame) of the paper's claims; ``None`` is full rate (no channel).
CLAIM_RATES: tuple = (None, 1024, 512, 256, 128, 64, 32, 0)

#: Share of the corpus's mean onsets per bar that the floored decoding (:func:`floor_decode`) keeps in
#: every bar at least. Chosen on validation queries (corpus validation pieces and two pieces of each
#: group of :data:`qbdi_utils.style.OTHER_STYLE_SOURCES`, never a shipped query) with the Essen model:
#: 0.75 (k = 3 onsets there) gave 4.5-4.8 onsets per bar against the corpus's 4.0 at every budget from
#: full rate to 0 bits and the highest style_fit_corpus (0.81 at full rate, 0.74 at 16 bits; the paper's
#: threshold: 3.6 falling to 1.5, 0.79 falling to 0.38); 0.5 gave 3.6-4.2 and a lower style fit, 1.0
#: gave 5.6-5.7 (the threshold keeps the confident cells above the floor). With the chorale model
#: 0.75 (k = 13) gave 18.2-19.4 onsets against 17.4 down to 16 bits (the paper's threshold: 12.0-12.3)
#: and style_fit_corpus 0.76 (the paper's: 0.66-0.68).
ONSET_FLOOR_SHARE = 0.75

#: The decodings of the decoder's probabilities (``qbdi improvise --decode``; :func:`decode_options`):
#: "paper" thresholds every cell at ``model.threshold`` (the paper's decoding, the default);
#: "floor" is :func:`floor_decode` with k = :func:`corpus_onset_floor` of the training bars;
#: "typical" is "floor" at every budget but 0 bits, where the channel's output is its mean and every
#: bar becomes the training bar of typical density (:func:`typical_library`) most like the decoder's
#: output there (:func:`typical_bars`) instead of a cut through the decoder's blur. Chosen on
#: validation queries (issue 23; the corpus's validation pieces and two pieces of each group of
#: style.OTHER_STYLE_SOURCES), at 0 bits, style fit to the validation pieces / onsets per bar:
#: Essen model 0.602 / 4.1 (validation pieces 3.9; any training bar: 0.574 / 4.5; the floor 0.548 /
#: 4.1; the paper's threshold 0.353 / 1.3 with 29% empty bars); chorale model 0.544 / 17.3
#: (validation pieces 16.3; any training bar 0.506 / 16.5, whose densest picks reach 51 onsets on a
#: shipped query; the floor 0.497 / 19.8; the paper 0.477 / 17.2).
#: "sustain" is the paper's threshold for onsets with sustain continuation at the model's recorded
#: continuation threshold (:func:`qbdi_utils.training.threshold.continue_notes`; only for a model
#: file that records one; :func:`qbdi_utils.blend.decoding` reads it).
DECODE_MODES: tuple = ("paper", "floor", "typical", "sustain")

#: Statistics modes of the channel (see :func:`qbdi_utils.channel.source_stats`).
STATS_MODES: tuple = channel.MODES


@dataclass
class Improvisation(Piece):
    """A :class:`Piece` produced by :func:`improvise`, with how it was made.

    Attributes (beyond :class:`Piece`'s):
        bits: bit budget per frame, ``None`` for full rate (no channel).
        mode: channel statistics mode ("query", "corpus", "posterior", "prior").
        seed: seed of the channel noise (and of latent sampling).
        threshold: probability threshold used to binarize the decoder output.
        query_name: name of the query piece.
        warnings: what about the query the model could not take as it is (meter, range, length),
            one sentence each; empty when nothing was odd.
        latents: (N, L) float32, the decoder inputs z_d, one row per frame.
        pad_steps: rows of silence put in front of the query so that frames start on its bar lines.
        frame_starts: (N,) int64 roll step where each frame starts (the query's bar lines; a bar
            longer than a frame spans several), or None.
    """

    bits: int | None = None
    mode: str = "query"
    seed: int = 0
    threshold: float = 0.5
    query_name: str = ""
    warnings: list = field(default_factory=list)
    latents: np.ndarray | None = None
    pad_steps: int = 0
    frame_starts: np.ndarray | None = None


@dataclass
class EncodedQuery:
    """A query cut into frames and encoded once; the input of every transmission.

    Attributes:
        query: the query piece.
        frames: (N, spec.frame_size) uint8 frames, one bar (or, for a bar longer than a frame, one
            part of a bar cut at its beats) each, the first starting ``pad_steps`` before step 0.
        mean: (N, L) float32 encoder means.
        logvar: (N, L) float32 encoder log-variances.
        pad_steps: silent rows put before step 0 of the query (pickup completion).
        warnings: sentences describing what about the query is unusual for the model.
        lengths: (N,) int64 valid steps of each frame (:func:`qbdi_utils.pianoroll.bar_layout`), or
            None: every frame is ``spec.steps_per_frame`` steps.
        starts: (N,) int64 roll step of each frame's first row, or None (``i * steps_per_frame -
            pad_steps``).
    """

    query: Piece
    frames: np.ndarray
    mean: np.ndarray
    logvar: np.ndarray
    pad_steps: int
    warnings: list
    lengths: np.ndarray | None = None
    starts: np.ndarray | None = None

    def frame_layout(self, spec: RollSpec) -> tuple[np.ndarray, np.ndarray]:
        """(starts (N,), lengths (N,)) int64 of the frames (uniform frames when not recorded)."""
        n = len(self.mean)
        if self.lengths is not None and self.starts is not None:
            return np.asarray(self.starts, np.int64), np.asarray(self.lengths, np.int64)
        spf = spec.steps_per_frame
        return (np.arange(n, dtype=np.int64) * spf - int(self.pad_steps),
                np.full(n, spf, dtype=np.int64))


#: The bit scale a hand turns: budgets per frame left to right, ``None`` (full rate, no channel) last.
#: Dense below 64 bits, where notebook 04's fine sweep shows the chord vocabulary collapsing. The
#: explorer's slider and ``qbdi live --cc-bits`` (a controller's 0..127 spread over it) use it.
BITS_SCALE: tuple = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, None)


def rate_label(bits: int | None) -> str:
    """Human-readable bit budget: ``"full rate"`` or ``"256 bits"``."""
    return "full rate" if bits is None else f"{int(bits)} bits"


def excerpt(roll, bars: tuple[int, int], spec: RollSpec = RollSpec()) -> np.ndarray:
    """Rows of bars ``(first, last)`` of a roll, 1-based inclusive, as a valid roll.

    Args:
        roll: (T, spec.n_columns) roll.
        bars: (first, last) bar numbers, 1-based, inclusive; bars of ``spec.steps_per_frame`` steps
            from the roll's first row.
        spec: roll layout.

    Returns:
        (<= (last - first + 1) * steps_per_frame, n_columns) uint8 valid roll.

    Raises:
        OptionError: ``first < 1`` or ``last < first``.

    Used in: notebooks/04_query_generation.ipynb.
    """
    first, last = int(bars[0]), int(bars[1])
    if first < 1 or last < first:
        raise OptionError(f"bars must be (first, last) with 1 <= first <= last, got {bars!r}")
    a, b = (first - 1) * spec.steps_per_frame, last * spec.steps_per_frame
    return pianoroll.make_valid(np.asarray(roll)[a:b], spec)


def parse_bits(value) -> int | None:
    """Parse a bit budget: ``None``/"full"/"inf" -> ``None`` (full rate), else an int >= 0.

    Args:
        value: None, an int, or a string such as "full", "256".

    Returns:
        ``None`` for full rate, else the number of bits per frame.

    Raises:
        OptionError: for anything else (negative, fractional, non-numeric).
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("full", "inf", "none", "full-rate", "full_rate"):
            return None
        try:
            value = int(text)
        except ValueError:
            raise OptionError(
                f"bit budget {value!r} is neither 'full' nor a whole number of bits per frame "
                "(e.g. --bits full or --bits 256)"
            ) from None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise OptionError(f"bit budget {value!r} must be a whole number of bits per frame or 'full'")
    if value < 0:
        raise OptionError(f"bit budget {value} is negative; use 0 or more bits per frame, or 'full'")
    return int(value)


def check_stats_mode(mode: str) -> str:
    """A channel statistics mode, checked.

    Args:
        mode: one of :data:`STATS_MODES`.

    Returns:
        mode, unchanged.

    Raises:
        OptionError: mode is not one of :data:`STATS_MODES`.
    """
    if mode not in STATS_MODES:
        raise OptionError(f"statistics mode {mode!r} is not one of {', '.join(STATS_MODES)}")
    return mode


def encode_query(model, query: Piece) -> EncodedQuery:
    """Cut ``query`` into frames at its bar lines and encode them once.

    The frames are :func:`qbdi_utils.pianoroll.piece_bars`: one bar of the query's own meter per
    frame (padded at its end; a bar longer than a frame split at its beats), a pickup completed to
    a whole bar by silent rows in front, mixed meters keeping their bar lines.

    Args:
        model: a StyleVAE (``.spec``, ``.encode``).
        query: the query piece; its spec must equal the model's.

    Returns:
        :class:`EncodedQuery` with frames (N, 2496), mean and logvar (N, L).

    Raises:
        ModelError: the query's roll layout differs from the model's.
        NoNotesError: the query has no notes.

    Used in: notebooks/04_query_generation.ipynb.
    """
    spec = model.spec
    name = query.name or "query"
    if query.spec != spec:
        raise ModelError(
            f"{name} was read with roll layout {query.spec.to_dict()} but the model expects "
            f"{spec.to_dict()}; read the query with spec=model.spec"
        )
    roll = np.asarray(query.roll)
    if roll.ndim != 2 or roll.shape[1] != spec.n_columns:
        raise OptionError(f"{name}: roll has shape {roll.shape}, expected (T, {spec.n_columns})")
    if roll.shape[0] == 0 or not roll.any():
        raise NoNotesError(f"{name} has no notes to improvise on; give a query with notes")
    bars = pianoroll.piece_bars(query)
    mean, logvar = model.encode(bars.frames)
    return EncodedQuery(
        query=query,
        frames=bars.frames,
        mean=np.asarray(mean, np.float32),
        logvar=np.asarray(logvar, np.float32),
        pad_steps=bars.pad_steps,
        warnings=query_warnings(model, query),
        lengths=bars.lengths,
        starts=bars.starts,
    )


def _allocation(model, enc: EncodedQuery, bits, mode):
    """Source statistics and bit allocation of one budget (shared by all seeds); None at full rate."""
    if bits is None:
        return None
    return channel.allocate(enc.mean, enc.logvar, int(bits), mode=mode,
                            corpus_stats=getattr(model, "corpus_stats", None))


def _latents(enc: EncodedQuery, alloc, seed: int, sample_latents: bool) -> np.ndarray:
    """Decoder input z_d (N, L) for one seed: encoder mean (or a posterior sample) -> channel.

    Equals ``channel.transmit(mean, logvar, bits, mode=..., rng=default_rng(seed))`` when latents
    are not sampled; the allocation is computed once per budget by :func:`_allocation`.
    """
    rng = np.random.default_rng(seed)
    z_e = enc.mean
    if sample_latents:
        z_e = (enc.mean + np.exp(0.5 * enc.logvar) * rng.standard_normal(enc.mean.shape)).astype(np.float32)
    if alloc is None:
        return np.array(z_e, dtype=np.float32)
    return np.asarray(channel.berger_channel(z_e, alloc.mu, alloc.var, alloc.bits, rng), np.float32)


def corpus_onset_floor(frames, spec: RollSpec = RollSpec(), share: float = ONSET_FLOOR_SHARE) -> int:
    """Onsets per bar that :func:`floor_decode` guarantees: ``share`` of a corpus's mean, rounded (>= 1).

    Args:
        frames: (N, spec.frame_size) 0/1 frames of the corpus (its training pieces).
        spec: roll layout.
        share: fraction of the mean number of onsets (articulated cells) per bar.

    Returns:
        k >= 1.
    """
    fr = np.asarray(frames)
    art = fr.reshape(len(fr), spec.steps_per_frame, spec.n_columns)[:, :, spec.n_pitches:]
    return max(1, int(round(float(share) * float(art.sum(axis=(1, 2)).mean()))))


def floor_decode(probabilities, threshold: float, min_onsets: int, spec: RollSpec = RollSpec()) -> np.ndarray:
    """Threshold decoding with a floor on each bar's texture (an option beside the paper's threshold).

    A bar's own threshold is ``min(threshold, p_k)``, p_k its k-th largest articulate probability: a
    bar whose decoder output is confident is decoded as by the paper; a bar whose probabilities the
    channel (or an out-of-style query) has spread below ``threshold`` keeps its k most probable onsets
    and the play cells at least as probable (and each kept onset's own step), instead of falling
    silent (issue 23).

    Args:
        probabilities: (N, spec.frame_size) decoder probabilities, one bar each.
        threshold: the global threshold (``model.threshold``).
        min_onsets: k >= 1, e.g. :func:`corpus_onset_floor` of the training frames.
        spec: roll layout.

    Returns:
        (N, spec.frame_size) uint8, a valid roll (articulate implies play).
    """
    p = np.asarray(probabilities, np.float64)
    k = int(min_onsets)
    if k < 1:
        raise OptionError(f"min_onsets must be at least 1, got {min_onsets!r}")
    n = p.shape[0]
    art = p.reshape(n, spec.steps_per_frame, spec.n_columns)[:, :, spec.n_pitches:].reshape(n, -1)
    k = min(k, art.shape[1])
    kth = -np.partition(-art, k - 1, axis=1)[:, k - 1]
    bar_threshold = np.minimum(float(threshold), kth)[:, None]
    on = (p >= bar_threshold).reshape(n, spec.steps_per_frame, spec.n_columns)
    floored = kth < float(threshold)  # bars the floor reaches; the others stay exactly the paper's
    on[floored, :, :spec.n_pitches] |= on[floored, :, spec.n_pitches:]  # a kept onset sounds at its step
    return pianoroll.binarize(on.reshape(p.shape).astype(np.float32), 0.5, spec=spec)


def typical_bars(probabilities, library) -> np.ndarray:
    """Each bar decoded as the library bar most like the decoder's output: largest cosine between
    the bar's probabilities and the library bar's cells (the decoding of "typical" at 0 bits).

    A decoded mean latent is a blur (many cells of middling probability, none of them a bar of the
    corpus); the cosine picks the real bar whose notes lie where that blur's mass is, without the
    likelihood's preference for the sparsest bar. Empty library bars are never chosen; ties go to
    the first library bar.

    Args:
        probabilities: (N, D) decoder probabilities, one bar each.
        library: (M, D) 0/1 bars to choose from (the model's training bars), at least one not empty.

    Returns:
        (N, D) uint8 frames, each a library bar.

    Raises:
        OptionError: no library bar has a note.

    Used in: :func:`improvise_batch` (``zero_bit_library``), notebooks/08_blend.ipynb.
    """
    lib = np.asarray(library)
    lib = lib[lib.reshape(len(lib), -1).any(axis=1)]
    if not len(lib):
        raise OptionError("typical decoding needs a library of bars with notes; the one given has none")
    p = np.asarray(probabilities, np.float64)
    pn = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
    ln = lib.astype(np.float64)
    ln /= np.linalg.norm(ln, axis=1, keepdims=True)
    return (lib[np.argmax(pn @ ln.T, axis=1)] != 0).astype(np.uint8)


def typical_library(frames, spec: RollSpec = RollSpec()) -> np.ndarray:
    """The bars of typical density: those whose onset count lies in the interquartile range of all.

    Args:
        frames: (M, spec.frame_size) 0/1 bars (the model's training bars).
        spec: roll layout.

    Returns:
        (M', spec.frame_size) the bars with 25th percentile <= onsets <= 75th percentile (onsets =
        articulated cells), in their order.

    Used in: :func:`decode_options` ("typical").
    """
    fr = np.asarray(frames)
    ons = fr.reshape(len(fr), spec.steps_per_frame, spec.n_columns)[:, :, spec.n_pitches:].sum(axis=(1, 2))
    lo, hi = np.percentile(ons, [25, 75])
    return fr[(ons >= lo) & (ons <= hi)]


def decode_options(mode: str, train_frames=None, spec: RollSpec = RollSpec()) -> dict:
    """Keyword arguments of :func:`improvise` / :func:`improvise_batch` for a decoding of :data:`DECODE_MODES`.

    Args:
        mode: "paper", "floor" or "typical".
        train_frames: (M, spec.frame_size) 0/1 training bars of the model (not needed for "paper").
        spec: roll layout.

    Returns:
        {} for "paper"; {"min_onsets": k} for "floor"; {"min_onsets": k, "zero_bit_library":
        typical_library(train_frames)} for "typical" (k = :func:`corpus_onset_floor` of the
        training bars).

    Raises:
        OptionError: an unknown mode, or no training bars for "floor" / "typical".

    Used in: :func:`qbdi_utils.blend.decoding` (which finds the model's training bars), notebooks/08_blend.ipynb.
    """
    if mode not in DECODE_MODES:
        raise OptionError(f"decoding must be one of {', '.join(DECODE_MODES)}, got {mode!r}")
    if mode == "paper":
        return {}
    if mode == "sustain":
        raise OptionError("the 'sustain' decoding reads the model's recorded continuation threshold: "
                          "use blend.decoding(model, 'sustain')")
    if train_frames is None or not len(train_frames):
        raise OptionError(f"the {mode!r} decoding needs the model's training bars (its corpus); "
                          "use --decode paper for a model without a recorded corpus")
    fr = np.asarray(train_frames)
    out = {"min_onsets": corpus_onset_floor(fr, spec)}
    if mode == "typical":
        out["zero_bit_library"] = typical_library(fr, spec)
    return out


def _to_piece(model, enc: EncodedQuery, probabilities: np.ndarray, threshold: float, *,
              min_onsets: int | None = None, library=None, sustain_threshold: float | None = None,
              **info) -> Improvisation:
    """Threshold decoder output (N, 2496) into an :class:`Improvisation` with the query's steps
    (with a per-bar floor of ``min_onsets`` onsets when given, :func:`floor_decode`; every bar the
    most similar ``library`` bar when a library is given, :func:`typical_bars`; notes continued down to
    ``sustain_threshold`` when given, :func:`qbdi_utils.training.threshold.continue_notes`)."""
    spec = model.spec
    q = enc.query
    starts, lengths = enc.frame_layout(spec)
    if library is None and min_onsets is None:
        # cell-wise decodings: the probabilities are first trimmed to each bar's valid steps and
        # joined, then thresholded as one roll, so a note held over a short bar's line (3/4 in a
        # 16-step frame) is judged on the next bar's own steps, never through the frame's padding
        p = pianoroll.join_bars(probabilities, lengths, starts, q.n_steps, spec)
        roll = (pianoroll.binarize(p, threshold, spec=spec) if sustain_threshold is None
                else continue_notes(p, threshold, float(sustain_threshold), spec))
    else:
        frames = (typical_bars(probabilities, library) if library is not None
                  else floor_decode(probabilities, threshold, min_onsets, spec))
        # each frame trimmed to its valid steps (what the decoder put in a bar's padding is dropped)
        # and joined; a note held over from the padding in front starts (is articulated) at step 0
        roll = pianoroll.join_bars(frames, lengths, starts, q.n_steps, spec)
    roll = pianoroll.make_valid(roll, spec)
    bits = info.get("bits")
    return Improvisation(
        roll=roll,
        spec=spec,
        name=f"{q.name or 'query'} @ {rate_label(bits)}",
        tempo_map=[tuple(t) for t in q.tempo_map],
        # a pickup known only from bar_offset_steps is marked, so the written MIDI keeps the bar lines
        time_signatures=pianoroll.marked_signatures(q.time_signatures, q.bar_offset_steps, spec),
        ticks_per_beat=q.ticks_per_beat,
        bar_offset_steps=q.bar_offset_steps,
        dropped={},
        threshold=float(threshold),
        query_name=q.name,
        warnings=list(enc.warnings),
        pad_steps=enc.pad_steps,
        frame_starts=starts.copy(),
        **info,
    )


def as_improvisation(model, enc: EncodedQuery, probabilities, threshold: float = 0.5, **info) -> Improvisation:
    """Frames of values in [0, 1] laid out on an encoded query's bars -> an :class:`Improvisation`.

    The same alignment as every improvisation (frames start on the query's bar lines; the padding
    in front and the tail are cut, so the roll has exactly the query's steps); for generations that
    do not come from the channel (notebook 08's baselines: latent interpolation, sampled decoding,
    retrieval of corpus bars).

    Args:
        model: a StyleVAE (``spec``).
        enc: the :class:`EncodedQuery` whose bars the frames stand for.
        probabilities: (N, spec.frame_size) decoder probabilities, or 0/1 frames, N = len(enc.frames).
        threshold: values >= threshold become notes.
        **info: Improvisation attributes (``bits``, ``mode``, ``seed``, ``latents``).

    Returns:
        :class:`Improvisation`, roll (query.n_steps, spec.n_columns).

    Used in: notebooks/08_blend.ipynb (through :mod:`qbdi_utils.blend`).
    """
    p = np.asarray(probabilities)
    if p.shape != enc.frames.shape:
        raise ValueError(f"expected frames of shape {enc.frames.shape}, got {p.shape}")
    return _to_piece(model, enc, p, float(threshold), **info)


def decode_latents(model, enc: EncodedQuery, z, threshold: float | None = None,
                   sample_seed: int | None = None, min_onsets: int | None = None, **info) -> Improvisation:
    """Decode latent states (one per bar of an encoded query) into an :class:`Improvisation`.

    Args:
        model: a StyleVAE.
        enc: the :class:`EncodedQuery` the states stand for (its bars, its length).
        z: (N, L) decoder inputs, N = len(enc.frames).
        threshold: binarization threshold; ``None`` uses ``model.threshold``.
        sample_seed: when given, every cell is drawn from its Bernoulli probability
            (``default_rng(sample_seed)``) instead of being thresholded.
        min_onsets: None for the paper's threshold decoding; k for :func:`floor_decode`.
        **info: Improvisation attributes (``bits``, ``mode``, ``seed``).

    Returns:
        :class:`Improvisation` with ``latents`` = z.

    Used in: notebooks/08_blend.ipynb (through :mod:`qbdi_utils.blend`).
    """
    z = np.asarray(z, np.float32)
    probs = np.asarray(model.decode(z))
    threshold = float(model.threshold if threshold is None else threshold)
    if sample_seed is not None:
        probs = (np.random.default_rng(sample_seed).random(probs.shape) < probs).astype(np.float32)
        threshold = 0.5
    if min_onsets is not None and sample_seed is None:
        return _to_piece(model, enc, probs, threshold, min_onsets=int(min_onsets), latents=z, **info)
    return as_improvisation(model, enc, probs, threshold, latents=z, **info)


def improvise_batch(
    model,
    query: Piece | EncodedQuery,
    rates: Iterable = CLAIM_RATES,
    seeds: Iterable[int] | int = (0,),
    mode: str = "query",
    *,
    sample_latents: bool = False,
    threshold: float | None = None,
    min_onsets: int | None = None,
    zero_bit_library=None,
    sustain_threshold: float | None = None,
) -> dict:
    """Improvise on ``query`` at many bit budgets and seeds with one encode and one decode call.

    Args:
        model: a StyleVAE (``encode``, ``decode``, ``spec``, ``threshold``, ``corpus_stats``).
        query: the query :class:`Piece` (or an :class:`EncodedQuery` to reuse an encoding).
        rates: bit budgets per frame; ``None`` (or "full") is full rate, i.e. no channel.
        seeds: channel seeds, or an int K meaning seeds 0..K-1.
        mode: channel statistics mode, one of :data:`STATS_MODES`.
        sample_latents: draw z_e from the posterior N(mean, exp(logvar)) instead of using the mean.
        threshold: binarization threshold; ``None`` uses ``model.threshold``.
        min_onsets: None (default) decodes as the paper (one global threshold); k >= 1 keeps at
            least k onsets in every bar (:func:`floor_decode`; k e.g. :func:`corpus_onset_floor`).
        zero_bit_library: None (default), or (M, frame_size) training bars: at 0 bits every bar is
            decoded as the most similar of them (:func:`typical_bars`). :func:`decode_options`
            gives these two arguments for each of :data:`DECODE_MODES`.
        sustain_threshold: None (default: the paper's decoding), or a continuation threshold below
            ``threshold``: notes go on while their play probability stays at or above it
            (:func:`qbdi_utils.training.threshold.continue_notes`; "sustain" of
            :func:`qbdi_utils.blend.decoding`). Not combined with ``min_onsets``.

    Returns:
        dict mapping ``(bits, seed)`` -> :class:`Improvisation` (bits ``None`` for full rate), in the
        order of ``rates`` then ``seeds``. Each entry equals ``improvise(model, query, bits, mode, seed,
        ...)``.

    Raises:
        OptionError: no bit budget or no seed, a bad bit budget, statistics mode or threshold.

    Used in: notebooks/04_query_generation.ipynb, ``qbdi sweep``.
    """
    check_stats_mode(mode)
    rates = [parse_bits(b) for b in rates]
    seeds = list(range(int(seeds))) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not rates or not seeds:
        raise OptionError("need at least one bit budget and one seed")
    threshold = float(model.threshold if threshold is None else threshold)
    if not 0.0 < threshold < 1.0:
        raise OptionError(f"threshold {threshold} must lie strictly between 0 and 1")
    enc = query if isinstance(query, EncodedQuery) else encode_query(model, query)
    keys, zs = [], []
    for bits in dict.fromkeys(rates):
        alloc = _allocation(model, enc, bits, mode)
        for seed in dict.fromkeys(seeds):
            keys.append((bits, seed))
            zs.append(_latents(enc, alloc, seed, sample_latents))
    n = enc.mean.shape[0]
    probs = np.asarray(model.decode(np.concatenate(zs, axis=0)))
    out = {}
    for i, (bits, seed) in enumerate(keys):
        out[(bits, seed)] = _to_piece(
            model, enc, probs[i * n:(i + 1) * n], threshold, min_onsets=min_onsets,
            library=zero_bit_library if bits == 0 else None, sustain_threshold=sustain_threshold,
            bits=bits, mode=mode, seed=seed, latents=zs[i],
        )
    return out


def improvise(model, query: Piece, bits: int | str | None = None, mode: str = "query", seed: int = 0, *,
              sample_latents: bool = False, threshold: float | None = None, min_onsets: int | None = None,
              zero_bit_library=None, sustain_threshold: float | None = None) -> Improvisation:
    """Improvise on ``query`` in the model's style through a channel of ``bits`` bits per frame.

    Full rate (``bits=None``) sends the encoder means straight to the decoder:
    ``binarize(decode(encode(frames).mean), threshold)``. With a budget, the means go through
    :func:`qbdi_utils.channel.transmit` (reverse water-filling + Berger test channel) first.

    Args:
        model: a StyleVAE.
        query: the query piece (same roll layout as the model).
        bits: bits per frame (int >= 0) or ``None``/"full" for full rate.
        mode: channel statistics mode: "query" (mean/variance of the query's latent means over its
            frames), "corpus" (the model's corpus statistics), "posterior", "prior".
        seed: seed of the channel noise (and of the latent sample when ``sample_latents``).
        sample_latents: use a posterior sample instead of the encoder mean.
        threshold: binarization threshold; ``None`` uses ``model.threshold``.
        min_onsets: None decodes as the paper; k keeps at least k onsets a bar (:func:`floor_decode`).
        zero_bit_library: training bars for the typical decoding at 0 bits (:func:`typical_bars`),
            or None. ``**decode_options(mode, train_frames, spec)`` fills both.
        sustain_threshold: None decodes as the paper; a continuation threshold continues notes below
            the threshold (:func:`improvise_batch`).

    Returns:
        :class:`Improvisation` (a :class:`Piece`): roll (query.n_steps, 156) uint8, the query's
        tempo map and time signatures, name "<query> @ <rate>", and ``warnings`` about the query.

    Used in: notebooks/04_query_generation.ipynb, ``qbdi improvise``.
    """
    bits = parse_bits(bits)
    return improvise_batch(model, query, [bits], [seed], mode, sample_latents=sample_latents, threshold=threshold,
                           min_onsets=min_onsets, zero_bit_library=zero_bit_library,
                           sustain_threshold=sustain_threshold)[(bits, int(seed))]
