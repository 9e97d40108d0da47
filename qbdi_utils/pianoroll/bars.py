"""Bars as frames: a roll cut into frames at its own bar lines, in any meter, and joined back (issue 25).

A frame is ``spec.steps_per_frame`` = 16 consecutive rows flattened row-major, so
``frame.reshape(16, 156)`` gives the rows back. A piece is cut into frames at its own bar lines, in
any meter (:func:`bar_layout`, :func:`cut_bars`, :func:`piece_bars`): a bar of at most 16
steps is one frame padded with silence at its end (a 3/4 bar fills 12 rows), a longer bar is split at
its beats (dotted beats in compound meters: 12/8 as 12 + 12 steps, 5/4 as 12 + 8, 3/2 as 16 + 8), each
frame carrying its valid length; :func:`join_bars` is the inverse. See :mod:`qbdi_utils.pianoroll`.

Imports: :mod:`qbdi_utils.limits`, :mod:`~qbdi_utils.pianoroll.roll` (RollSpec, Piece, make_valid).
Used in: :mod:`~qbdi_utils.pianoroll.reading` (:func:`bar_steps`), :mod:`qbdi_utils.pianoroll`
(re-exported); through it corpus, improvise, claims, notebooks/01_data_prep.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qbdi_utils import limits
from qbdi_utils.pianoroll.roll import Piece, RollSpec, make_valid

__all__ = [
    "bar_steps", "is_compound", "beat_steps", "BarFrames", "bar_layout", "bar_meters", "cut_bars", "join_bars",
    "marked_signatures", "piece_bars", "to_frames", "from_frames", "piece_to_frames", "piece_from_frames",
]


def bar_steps(numerator: int, denominator: int, spec: RollSpec = RollSpec()) -> float:
    """Length of one bar of numerator/denominator in steps (16 for 4/4 at 4 steps per quarter)."""
    return numerator * 4 / denominator * spec.steps_per_quarter


def is_compound(numerator: int, denominator: int) -> bool:
    """Whether numerator/denominator is a compound meter (numerator a multiple of 3 above 3: 6/8, 12/8, 6/4)."""
    return int(numerator) > 3 and int(numerator) % 3 == 0


def beat_steps(numerator: int, denominator: int, spec: RollSpec = RollSpec()) -> int:
    """Steps of one beat of numerator/denominator: a dotted beat (three units) in compound meters.

    4/4 and 3/4: a quarter (4 steps at 4 steps per quarter); 3/2: a half (8); 6/8 and 12/8: a dotted
    quarter (6); 6/4: a dotted half (12). At least one step.
    """
    unit = 4 * spec.steps_per_quarter / int(denominator)
    return max(1, int(round(unit * (3 if is_compound(numerator, denominator) else 1))))


@dataclass(frozen=True)
class BarFrames:
    """A roll cut into frames at its bar lines (:func:`cut_bars`), with what the inverse needs.

    Frame ``i`` holds roll steps ``starts[i] .. starts[i] + lengths[i] - 1`` in its first
    ``lengths[i]`` rows; its other rows are zero padding. Frames are consecutive: ``starts[i + 1] ==
    starts[i] + lengths[i]``. A pickup's bar starts before step 0 (``starts[0] < 0``: silent rows in
    front, the pickup at the end of its bar, as a full bar of its meter).

    Attributes:
        frames: (N, spec.frame_size) uint8 frames, flattened row-major.
        lengths: (N,) int64 valid steps of each frame, 1 .. spec.steps_per_frame.
        starts: (N,) int64 roll step of each frame's first row.
        bar_starts: (B,) int64 roll step of each bar line (the first may be negative: a pickup).
        bar_frames: (B,) int64 index of each bar's first frame (a bar longer than a frame spans several).
        n_steps: T, the roll's length.
        spec: roll layout.
    """

    frames: np.ndarray
    lengths: np.ndarray
    starts: np.ndarray
    bar_starts: np.ndarray
    bar_frames: np.ndarray
    n_steps: int
    spec: RollSpec = field(default_factory=RollSpec)

    @property
    def pad_steps(self) -> int:
        """Silent rows in front of step 0 (completing a pickup's bar), 0 without a pickup."""
        return int(max(0, -int(self.starts[0]))) if len(self.starts) else 0


def _meter_segments(time_signatures, bar_offset_steps: int, spec: RollSpec):
    """[(first step, bar steps, beat steps, "n/d"), ...] of the meters from the first full bar on.

    ``None`` is the frame grid (bars of ``spec.steps_per_frame`` steps, quarter beats); an empty list
    is 4/4 throughout (MIDI's default). A signature before ``bar_offset_steps`` only names the
    pickup's meter; the bar lines start at ``bar_offset_steps`` in the meter then in effect. Every
    later signature starts a bar line of its own (cutting the bar before it short when it falls
    inside one).
    """
    if time_signatures is None:
        spf = int(spec.steps_per_frame)
        name = f"{spf}/{4 * spec.steps_per_quarter}"
        return [(int(bar_offset_steps), spf, int(spec.steps_per_quarter), name)]
    sigs = sorted(((int(st), int(n), int(d)) for st, n, d in time_signatures), key=lambda t: t[0])
    sigs = [t for t in sigs if limits.valid_time_signature(t[1], t[2])]
    off = int(bar_offset_steps)
    current = (4, 4)
    for st, n, d in sigs:
        if st <= off:
            current = (n, d)
    segs = [(off, current)]
    for st, n, d in sigs:
        if st > off:
            if segs[-1][0] == st:
                segs[-1] = (st, (n, d))
            elif segs[-1][1] != (n, d):
                segs.append((st, (n, d)))
    return [(st, max(1, int(round(bar_steps(n, d, spec)))), beat_steps(n, d, spec), f"{n}/{d}")
            for st, (n, d) in segs]


def _split_bar(length: int, beat: int, spf: int) -> list[int]:
    """A bar of ``length`` steps as frame lengths of at most ``spf`` steps, cut at beat boundaries.

    The fewest frames that hold whole beats, the beats shared out as evenly as possible, the earlier
    frames taking the extra beat (5/4: 3 + 2 beats, 12 + 8 steps; 12/8: 2 + 2 dotted beats; 3/2: 2 + 1
    halves). A beat longer than a frame is cut into quarters (into steps if a quarter is too).
    """
    if length <= spf:
        return [length]
    unit = beat if beat <= spf else 1
    per = spf // unit
    n_units = -(-length // unit)
    n = -(-n_units // per)
    parts = [n_units // n + (1 if i < n_units % n else 0) for i in range(n)]
    sizes = [p * unit for p in parts]
    sizes[-1] -= sum(sizes) - length
    return sizes


def bar_layout(n_steps: int, time_signatures, bar_offset_steps: int = 0,
               spec: RollSpec = RollSpec()) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where the frames of a roll of ``n_steps`` steps lie: the one definition of bars as frames.

    Bar lines: the first full bar starts at ``bar_offset_steps`` (a pickup before it is completed to
    a whole bar of the meter in effect there by silent steps in front), then bars follow each
    signature's bar length; a signature change starts a new bar. A bar of at most
    ``spec.steps_per_frame`` steps is one frame (padded at its end); a longer one (3/2, 5/4, 6/4,
    12/8) is split at beat boundaries (:func:`_split_bar`; dotted beats in compound meters). The last
    bar keeps its full length even when the roll ends inside it (but a split bar's frames that start
    after the roll's end are left out).

    Args:
        n_steps: T, the roll's length.
        time_signatures: [(step, numerator, denominator), ...] (``Piece.time_signatures``; [] is 4/4),
            or None for bars of ``spec.steps_per_frame`` steps whatever the meter.
        bar_offset_steps: step of the first full bar (``Piece.bar_offset_steps``).
        spec: roll layout.

    Returns:
        (starts (N,), lengths (N,), bar_starts (B,), bar_frames (B,)) int64 arrays, as in
        :class:`BarFrames`; N = 0 for an empty roll.
    """
    T, spf = int(n_steps), int(spec.steps_per_frame)
    segs = _meter_segments(time_signatures, bar_offset_steps, spec)
    bars = _bars(T, segs)
    starts, lengths, bar_starts, bar_frames = [], [], [], []
    for s, length, beat, _ in bars:
        bar_starts.append(s)
        bar_frames.append(len(starts))
        for size in _split_bar(length, beat, spf):
            if s < T:  # the part of a long bar after the roll's end is no frame
                starts.append(s)
                lengths.append(size)
            s += size
    as_int = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return as_int(starts), as_int(lengths), as_int(bar_starts), as_int(bar_frames)


def _bars(T: int, segs) -> list[tuple[int, int, int, str]]:
    """(start, length, beat, meter name) of every bar that overlaps steps 0 .. T - 1."""
    bars: list[tuple[int, int, int, str]] = []
    off, first_len, first_beat, first_name = segs[0]
    s = off
    while s > 0:  # the pickup (and anything before it) in whole bars of the first meter
        s -= first_len
        bars.insert(0, (s, first_len, first_beat, first_name))
    for k, (st, length, beat, name) in enumerate(segs):
        end = segs[k + 1][0] if k + 1 < len(segs) else max(T, st + 1)
        s = st
        while s < end:
            bars.append((s, min(length, end - s) if k + 1 < len(segs) else length, beat, name))
            s += length
    return [b for b in bars if b[0] < T and b[0] + b[1] > 0] if T > 0 else []


def bar_meters(n_steps: int, time_signatures, bar_offset_steps: int = 0,
               spec: RollSpec = RollSpec()) -> list[str]:
    """The meter ("3/4", ...) of every bar of :func:`bar_layout`, in order (a pickup counts in the
    meter of the bar it completes).

    Used in: corpus (bars by meter), improvise (the query's meters), notebooks/01_data_prep.ipynb.
    """
    return [b[3] for b in _bars(int(n_steps), _meter_segments(time_signatures, bar_offset_steps, spec))]


def cut_bars(roll: np.ndarray, spec: RollSpec = RollSpec(), time_signatures=None,
             bar_offset_steps: int = 0) -> BarFrames:
    """Cut a roll into frames at its bar lines (:func:`bar_layout`), each padded at its end.

    Args:
        roll: (T, spec.n_columns) roll.
        spec: roll layout.
        time_signatures: [(step, numerator, denominator), ...] ([] is 4/4), or None for bars of
            ``spec.steps_per_frame`` steps.
        bar_offset_steps: step of the first full bar (a pickup's length).

    Returns:
        :class:`BarFrames`; ``join_bars(b.frames, b.lengths, b.starts, b.n_steps)`` is ``roll``.

    Used in: :func:`piece_bars`, :func:`to_frames`, notebooks/01_data_prep.ipynb.
    """
    roll = np.asarray(roll, dtype=np.uint8)
    if roll.ndim != 2 or roll.shape[1] != spec.n_columns:
        raise ValueError(f"roll must be (T, {spec.n_columns}), got {roll.shape}")
    T, spf = roll.shape[0], spec.steps_per_frame
    starts, lengths, bar_starts, bar_frames = bar_layout(T, time_signatures, bar_offset_steps, spec)
    frames = np.zeros((len(starts), spf, spec.n_columns), dtype=np.uint8)
    for i, (s, n) in enumerate(zip(starts.tolist(), lengths.tolist())):
        a, b = max(s, 0), min(s + n, T)
        if b > a:
            frames[i, a - s:b - s] = roll[a:b]
    return BarFrames(frames.reshape(len(starts), spec.frame_size), lengths, starts, bar_starts,
                     bar_frames, int(T), spec)


def join_bars(frames: np.ndarray, lengths, starts, n_steps: int, spec: RollSpec = RollSpec()) -> np.ndarray:
    """The inverse of :func:`cut_bars`: each frame trimmed to its length, joined, cut to the roll.

    Args:
        frames: (N, spec.frame_size) array (0/1 frames or probabilities), N >= 0.
        lengths: (N,) valid steps of each frame.
        starts: (N,) roll step of each frame's first row (consecutive frames).
        n_steps: T, the rebuilt roll's length.
        spec: roll layout.

    Returns:
        (n_steps, spec.n_columns) array of the frames' dtype (zero-padded if the frames end early).
    """
    fr = np.asarray(frames)
    if fr.ndim == 1:
        fr = fr[None]
    if fr.shape[-1] != spec.frame_size:
        raise ValueError(f"frames must be (N, {spec.frame_size}), got {fr.shape}")
    lengths, starts = np.asarray(lengths, np.int64), np.asarray(starts, np.int64)
    if len(lengths) != len(fr) or len(starts) != len(fr):
        raise ValueError(f"{len(fr)} frames need as many lengths and starts, got {len(lengths)}, {len(starts)}")
    rows = fr.reshape(len(fr), spec.steps_per_frame, spec.n_columns)
    out = np.zeros((int(n_steps), spec.n_columns), dtype=fr.dtype)
    for i, (s, n) in enumerate(zip(starts.tolist(), lengths.tolist())):
        a, b = max(s, 0), min(s + n, int(n_steps))
        if b > a:
            out[a:b] = rows[i, a - s:b - s]
    return out


def marked_signatures(time_signatures, bar_offset_steps: int, spec: RollSpec = RollSpec()) -> list:
    """Time signatures that mark a pickup the way :func:`read_midi` reads one back.

    A pickup known only from ``bar_offset_steps`` (music21's bar lines, a Piece built by hand) is
    lost when the piece is written to MIDI with its own signatures. Here it is marked as a short
    first signature (a 1/4 before a 3/4 bar for a quarter pickup; an eighth pickup as 1/8), followed
    by the meter in effect at the first full bar, so that written and read back, the piece has the
    same ``bar_offset_steps`` and bar lines.

    Args:
        time_signatures: [(step, numerator, denominator), ...].
        bar_offset_steps: the pickup's length in steps.
        spec: roll layout.

    Returns:
        [(step, numerator, denominator), ...]: unchanged when there is no pickup, when it is marked
        already or when it cannot be (not a whole number of 64ths, or as long as a bar).
    """
    sigs = sorted(((int(st), int(n), int(d)) for st, n, d in time_signatures), key=lambda t: t[0])
    off = int(bar_offset_steps)
    if off <= 0 or (sigs and sigs[0][0] == 0 and any(st == off for st, _, _ in sigs)):
        return sigs
    num, den = 4, 4
    for st, n, d in sigs:
        if st <= off:
            num, den = n, d
    if off >= bar_steps(num, den, spec):
        return sigs
    for d2 in (den, 2 * den, 4 * den, 8 * den, 16 * den):
        units = off * d2 / (4 * spec.steps_per_quarter)
        if d2 <= limits.MAX_DENOMINATOR and units == int(units) and 1 <= units <= limits.MAX_NUMERATOR:
            return [(0, int(units), d2), (off, num, den)] + [t for t in sigs if t[0] > off]
    return sigs


def piece_bars(piece: Piece) -> BarFrames:
    """A piece cut into frames at its real bar lines: its time signatures and pickup (:func:`cut_bars`).

    Used in: corpus (training frames), improvise (queries), claims, notebooks/01_data_prep.ipynb.
    """
    return cut_bars(piece.roll, piece.spec, list(piece.time_signatures), piece.bar_offset_steps)


def to_frames(roll: np.ndarray, spec: RollSpec = RollSpec(), offset_steps: int = 0,
              time_signatures=None) -> np.ndarray:
    """Cut a roll into frames at its bar lines, flattened row-major (:func:`cut_bars`' frames).

    Without ``time_signatures`` the bars are ``spec.steps_per_frame`` steps long (one 4/4 bar): when
    the first full bar starts at ``offset_steps`` (a pickup), the roll is padded in front with
    silence so the pickup sits at the end of the first frame and every later frame starts on a bar
    line; the last partial frame is zero-padded.

    Args:
        roll: (T, spec.n_columns) uint8 roll.
        spec: roll layout.
        offset_steps: step of the first bar line (``Piece.bar_offset_steps``).
        time_signatures: ``Piece.time_signatures`` to cut at the piece's own bar lines, or None.

    Returns:
        (N, spec.frame_size) uint8; without signatures N = ceil((T + pad) / steps_per_frame).

    Used in: notebooks/01_data_prep.ipynb
    """
    return cut_bars(roll, spec, time_signatures, offset_steps).frames


def from_frames(frames: np.ndarray, spec: RollSpec = RollSpec()) -> np.ndarray:
    """Join frames back into a roll (inverse of :func:`to_frames` without offset).

    Args:
        frames: (N, spec.frame_size) array.
        spec: roll layout.

    Returns:
        (N * spec.steps_per_frame, spec.n_columns) array of the same dtype.
    """
    frames = np.asarray(frames)
    if frames.ndim == 1:
        frames = frames[None]
    if frames.shape[-1] != spec.frame_size:
        raise ValueError(f"frames must be (N, {spec.frame_size}), got {frames.shape}")
    return frames.reshape(-1, spec.n_columns)


def piece_to_frames(piece: Piece) -> np.ndarray:
    """Frames of a piece at its real bar lines (:func:`piece_bars`): (N, frame_size) uint8."""
    return piece_bars(piece).frames


def piece_from_frames(frames: np.ndarray, spec: RollSpec = RollSpec(), name: str = "",
                      tempo_bpm: float = 120.0) -> Piece:
    """A 4/4 :class:`Piece` from frames (for example a decoder's binarized output).

    Args:
        frames: (N, spec.frame_size) 0/1 array; made valid with :func:`make_valid`.
        spec: roll layout.
        name: piece name.
        tempo_bpm: tempo of the piece.

    Returns:
        Piece with roll (N * 16, spec.n_columns).
    """
    roll = make_valid(from_frames(frames, spec), spec)
    return Piece(roll=roll, spec=spec, name=name, tempo_map=[(0, float(tempo_bpm))],
                 time_signatures=[(0, 4, 4)], ticks_per_beat=480)
