"""Dynamics of an output: note velocities that follow the query bar by bar (issue 25).

The model sees no velocities (a roll is 0/1), so an output's dynamics are put back at writing time,
from the query whose timeline the output shares (an improvisation or a navigation has the query's
steps, tempo map and bar lines). The one home of that mapping is :func:`output_velocities`:

* **query** (the default): every output onset in bar *b* at metrical position *m* gets the query's
  mean velocity of bar *b* plus the query's accent there (velocity minus its bar's mean) -- the
  accent of the query's onsets at (*b*, *m*) when the query plays there, else the mean accent of
  position *m* over all the query's bars, else the mean accent of *m*'s metrical level (downbeat,
  other beats, off-beat subdivisions), else none. A query bar without onsets takes its mean from
  the nearest bars that have some (linear interpolation). Crescendi, a loud chorus and accented
  downbeats carry over; voicing within a chord does not (one velocity per onset step).
* When the query has **no dynamics** (all its velocities equal, or none known), its one level is
  kept and the accents of the model's corpus (:func:`corpus_profile`) are added. The chorales and
  the Essen songs come through music21, which writes every note at velocity :data:`MUSIC21_VELOCITY`
  (measured: 1,457 of 1,457 notes of five chorales, 189 of 189 of five Essen songs), so for the
  default model that fallback is honestly **a fixed velocity: the query's own level, with no
  accents**. A folder corpus of performed MIDI files gives real accents.
* **corpus**: the corpus's mean level and accents, ignoring the query's velocities.
* a number 1..127: every note at that velocity (the old fixed 80).

Instruments are the query's too when asked (``--programs query``, :func:`query_programs`): one track
takes the program of the query's most-sounding instrument, a melody track the program that plays most
of the query's top voice and an accompaniment track the one that plays most of the rest.

The dynamics belong to the timeline, not to the notes: a navigation's bar *k* gets the query's bar
*k*'s level and accents whichever bar its notes came from, so the shape of the performance (a
crescendo to the end, a quiet middle section) stays where the query has it.

Imports: errors, midifile, pianoroll, corpus (its file suffixes). Used in: cli/options.py (``--velocity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qbdi_utils.corpus import MIDI_SUFFIXES, NAMED_SOURCES
from qbdi_utils.errors import OptionError, QbdiError
from qbdi_utils.pianoroll import (DEFAULT_VELOCITY, TRACK_LAYOUTS, Piece, RollSpec, bar_layout, bar_meters,
                                  beat_steps, read_midi, roll_to_notes, top_voice)

__all__ = [
    "VELOCITY_MODES", "MUSIC21_VELOCITY", "CORPUS_PROFILE_FILES", "LEVELS", "VelocityProfile", "parse_velocity",
    "bar_grid", "metrical_positions", "profile", "corpus_profile", "output_velocities", "perform", "query_programs",
]

#: ``--velocity`` words; a whole number 1..127 is the third choice (a fixed velocity).
VELOCITY_MODES = ("query", "corpus")

#: The velocity music21 writes for every note of a score without dynamics (the chorales, Essen).
MUSIC21_VELOCITY = 90

#: Files of a folder corpus read for its profile (the first ones in path order), to bound the cost.
CORPUS_PROFILE_FILES = 200

#: Names of the metrical levels, in the order of :attr:`VelocityProfile.accents`.
LEVELS = ("downbeat", "beat", "offbeat")


@dataclass(frozen=True)
class VelocityProfile:
    """Dynamics without a timeline: a mean level and an accent per metrical level.

    Attributes:
        mean: mean note velocity.
        accents: (3,) mean velocity minus the bar's mean of the onsets on the downbeat, on the other
            beats and off the beat (0 for a level with no onsets).
        n_notes: the notes measured.
        flat: every note had the same velocity (no dynamics to follow).
    """

    mean: float
    accents: tuple
    n_notes: int
    flat: bool


def parse_velocity(text) -> str | int:
    """``--velocity``: "query", "corpus", or a fixed velocity 1..127.

    Raises:
        OptionError: anything else (the message names the option and the choices).
    """
    word = str(text).strip().lower()
    if word in VELOCITY_MODES:
        return word
    if not (word.isdigit() and 1 <= int(word) <= 127):
        raise OptionError(f"--velocity {text!r} is not one of {', '.join(VELOCITY_MODES)} or a "
                          "velocity 1..127")
    return int(word)


def bar_grid(n_steps: int, time_signatures, bar_offset_steps: int = 0,
             spec: RollSpec = RollSpec()) -> tuple[np.ndarray, np.ndarray]:
    """The bar lines and beat lengths of a timeline, as the frames cut it.

    The bars are :func:`qbdi_utils.pianoroll.bar_layout`'s (a pickup's bar clipped to start at step
    0), each bar's beat :func:`qbdi_utils.pianoroll.beat_steps` of its meter; no time signature
    means 4/4.

    Args:
        n_steps: length of the timeline.
        time_signatures: [(step, numerator, denominator), ...] (``Piece.time_signatures``).
        bar_offset_steps: the pickup's length, 0 if none.
        spec: roll layout (its steps per quarter).

    Returns:
        (starts (B,) int64 bar starts, beats (B,) int64 steps per beat of each bar), B >= 1.
    """
    T = max(int(n_steps), 1)
    sigs = list(time_signatures)
    _, _, bar_starts, _ = bar_layout(T, sigs, int(bar_offset_steps), spec)
    meters = bar_meters(T, sigs, int(bar_offset_steps), spec)
    beats = [beat_steps(*(int(x) for x in m.split("/")), spec) for m in meters]
    return np.maximum(bar_starts, 0).astype(np.int64), np.asarray(beats, dtype=np.int64)


def metrical_positions(steps, starts: np.ndarray, beats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bar, position in the bar and metrical level of steps, on a :func:`bar_grid`.

    Args:
        steps: (n,) int steps.
        starts: (B,) bar starts.
        beats: (B,) steps per beat.

    Returns:
        (bar (n,), position (n,) steps after the bar line, level (n,): 0 downbeat, 1 other beat, 2 off the beat).
    """
    steps = np.asarray(steps, dtype=np.int64)
    bar = np.clip(np.searchsorted(starts, steps, side="right") - 1, 0, len(starts) - 1)
    pos = steps - starts[bar]
    level = np.where(pos == 0, 0, np.where(pos % beats[bar] == 0, 1, 2))
    return bar, pos, level


def _grid(piece: Piece, n_steps: int | None = None):
    return bar_grid(piece.n_steps if n_steps is None else n_steps, piece.time_signatures,
                    piece.bar_offset_steps, piece.spec)


def _has_velocities(piece) -> bool:
    return piece is not None and piece.velocities is not None and len(piece.velocities) > 0


def _deviations(piece: Piece, starts, beats):
    """Per onset of ``piece``: bar, position, level, velocity, velocity minus its bar's mean; and the
    per-bar means (NaN for a bar without onsets)."""
    v = np.asarray(piece.velocities, dtype=np.int64).reshape(-1, 3)
    bar, pos, level = metrical_positions(v[:, 0], starts, beats)
    vel = v[:, 2].astype(np.float64)
    counts = np.bincount(bar, minlength=len(starts))
    sums = np.bincount(bar, weights=vel, minlength=len(starts))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return bar, pos, level, vel, vel - means[bar], means


def _mean_at(keys: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Mean of ``values`` per integer key, looked up at the keys ``at`` (NaN for a key never seen)."""
    out = np.full(len(at), np.nan)
    if not len(keys):
        return out
    uniq, inv = np.unique(keys, return_inverse=True)
    means = np.bincount(inv, weights=values) / np.bincount(inv)
    idx = np.clip(np.searchsorted(uniq, at), 0, len(uniq) - 1)
    found = uniq[idx] == at
    out[found] = means[idx[found]]
    return out


def profile(pieces) -> VelocityProfile | None:
    """The velocity profile of pieces read from MIDI (their ``velocities``).

    Args:
        pieces: a Piece or an iterable of Pieces; those without velocities are ignored.

    Returns:
        :class:`VelocityProfile`, or None when no piece has velocities.
    """
    pieces = [pieces] if isinstance(pieces, Piece) else list(pieces)
    vels, devs, levels = [], [], []
    for p in pieces:
        if not _has_velocities(p):
            continue
        starts, beats = _grid(p, max(p.n_steps, int(np.max(p.velocities[:, 0])) + 1))
        _, _, level, vel, dev, _ = _deviations(p, starts, beats)
        vels.append(vel)
        devs.append(dev)
        levels.append(level)
    if not vels:
        return None
    vel, dev, level = np.concatenate(vels), np.concatenate(devs), np.concatenate(levels)
    accents = tuple(float(dev[level == k].mean()) if (level == k).any() else 0.0 for k in range(len(LEVELS)))
    return VelocityProfile(float(vel.mean()), accents, int(vel.size), bool(vel.min() == vel.max()))


def corpus_profile(source, spec: RollSpec = RollSpec()) -> VelocityProfile | None:
    """The velocity profile of a corpus: a named one, a folder of MIDI files or one MIDI file.

    The named corpora ("chorales", "essen") reach MIDI through music21, which writes every note at
    :data:`MUSIC21_VELOCITY`: their profile is flat at that level (nothing is parsed). A folder's
    profile is measured on its first :data:`CORPUS_PROFILE_FILES` MIDI files (path order); files that
    cannot be read are skipped.

    Args:
        source: "chorales", "essen", a folder or a .mid file; None gives None.
        spec: roll layout to read the files with.

    Returns:
        :class:`VelocityProfile`, or None (no source, or no readable note).
    """
    if source is None:
        return None
    if str(source) in NAMED_SOURCES:
        return VelocityProfile(float(MUSIC21_VELOCITY), (0.0, 0.0, 0.0), 0, True)
    path = Path(source)
    if path.is_dir():
        paths = sorted(p for p in path.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    else:
        paths = [path] if path.is_file() else []
    pieces = []
    for p in paths[:CORPUS_PROFILE_FILES]:
        try:
            pieces.append(read_midi(p, spec))
        except QbdiError:
            continue
    return profile(pieces)


def output_velocities(out, query: Piece | None, mode="query", corpus=None) -> np.ndarray:
    """Velocities of an output's onsets, following the query's dynamics (see the module docstring).

    Args:
        out: the output Piece (its roll; the query's timeline is used when a query is given).
        query: the query Piece (its ``velocities``, time signatures and pickup), or None.
        mode: "query", "corpus" or a whole number 1..127 (every note at that velocity).
        corpus: the corpus's :class:`VelocityProfile`, a callable returning one (called only when
            needed), or None.

    Returns:
        (n, 3) int64 of (step, pitch, velocity 1..127), one row per onset step and pitch of
        ``out.roll`` (the rows of :func:`qbdi_utils.pianoroll.roll_to_notes`).

    Raises:
        OptionError: an unknown mode.
    """
    notes = np.asarray(roll_to_notes(out.roll, out.spec), dtype=np.int64).reshape(-1, 3)
    onsets = notes[:, [1, 0]]
    if not isinstance(mode, str):
        return np.column_stack([onsets, np.full(len(notes), int(parse_velocity(mode)))])
    if mode not in VELOCITY_MODES:
        raise OptionError(f"velocity mode must be one of {', '.join(VELOCITY_MODES)} or 1..127, got {mode!r}")
    timeline = query if query is not None else out
    n_steps = max(out.n_steps, timeline.n_steps, 1)
    starts, beats = _grid(timeline, n_steps)
    bar, pos, level = metrical_positions(notes[:, 1], starts, beats)
    dynamic = mode == "query" and _has_velocities(query) and np.ptp(query.velocities[:, 2]) > 0
    if dynamic:
        vel = _follow(query, starts, beats, bar, pos, level)
    else:
        prof = corpus() if callable(corpus) else corpus
        if mode == "query" and _has_velocities(query):
            base = float(query.velocities[0, 2])
        else:
            base = prof.mean if prof is not None else float(DEFAULT_VELOCITY)
        accents = np.asarray(prof.accents if prof is not None else (0.0, 0.0, 0.0))
        vel = base + accents[level]
    vel = np.clip(np.round(vel), 1, 127).astype(np.int64)
    return np.column_stack([onsets, vel])


def _follow(query: Piece, starts, beats, bar, pos, level) -> np.ndarray:
    """Velocities at (bar, pos, level) of output onsets from the query's bar means and accents."""
    qbar, qpos, qlevel, _, qdev, means = _deviations(query, starts, beats)
    have = np.flatnonzero(~np.isnan(means))
    bar_mean = np.interp(np.arange(len(means)), have, means[have])
    width = int(max(qpos.max(initial=0), pos.max(initial=0))) + 1
    acc = _mean_at(qbar * width + qpos, qdev, bar * width + pos)  # this bar, this position
    for keys, at in ((qpos, pos), (qlevel, level)):  # else this position in any bar, else this level
        gap = np.isnan(acc)
        acc[gap] = _mean_at(keys, qdev, at[gap])
    return bar_mean[bar] + np.nan_to_num(acc, nan=0.0)


def perform(piece: Piece, query: Piece | None, mode="query", corpus=None, corpus_name: str = "") -> list:
    """Give ``piece`` its velocities (``piece.velocities``, :func:`output_velocities`).

    Args:
        piece: the output (an Improvisation, a Navigation, any Piece on the query's timeline).
        query: the query Piece.
        mode: "query", "corpus" or a velocity 1..127.
        corpus: the corpus's profile, or a callable returning it (called only when needed).
        corpus_name: the corpus's name, for the warning.

    Returns:
        [] or, when ``mode`` is "corpus" and the corpus has no dynamics to lend (none known, or
        every note at one velocity), the one-sentence warning saying what the notes got instead. A
        query without dynamics under "query" gets no warning: keeping its one level is what it asked.

    Used in: ``qbdi improvise`` and ``qbdi navigate`` (``--velocity``).
    """
    dynamic = mode == "query" and _has_velocities(query) and np.ptp(query.velocities[:, 2]) > 0
    if not isinstance(mode, str) or dynamic:
        piece.velocities = output_velocities(piece, query, mode)
        return []
    prof = corpus() if callable(corpus) else corpus
    piece.velocities = output_velocities(piece, query, mode, prof)
    if mode != "corpus" or (prof is not None and not prof.flat):
        return []
    where = f"the corpus {corpus_name}" if corpus_name else "the corpus"
    level = int(piece.velocities[0, 2]) if len(piece.velocities) else DEFAULT_VELOCITY
    why = (f"the dynamics of {where} are unknown" if prof is None
           else f"{where} has no dynamics (every note at {prof.mean:g})")
    return [f"--velocity corpus: {why}, so every note is at velocity {level}"]


def query_programs(query: Piece, tracks: str = "one") -> tuple[int, ...]:
    """The General MIDI programs of an output's tracks taken from the query's instruments.

    Each query note sounds for its length in steps under the program of its channel
    (``query.programs``; 0, piano, where the file sets none). ``"one"``: the program that sounds
    longest in the whole query. ``"melody+accompaniment"``: for the melody the program that sounds
    longest among the query's top-voice notes (:func:`qbdi_utils.pianoroll.top_voice`, the rule the
    writer splits an output by), for the accompaniment the one that sounds longest among the rest (the
    melody's when the query has nothing under its top voice). Ties go to the lower program number.

    Args:
        query: the query Piece (read by :func:`qbdi_utils.pianoroll.read_midi`).
        tracks: one of :data:`qbdi_utils.pianoroll.TRACK_LAYOUTS`.

    Returns:
        One program per track: (program,) or (melody, accompaniment); all 0 when the query's programs
        are unknown (``query.programs`` None) or it has no notes.

    Raises:
        OptionError: ``tracks`` is not a track layout.

    Used in: ``--programs query`` (cli/performing.py).
    """
    if tracks not in TRACK_LAYOUTS:
        raise OptionError(f"tracks must be one of {', '.join(TRACK_LAYOUTS)}, got {tracks!r}")
    n_tracks = 1 if tracks == "one" else 2
    notes = np.asarray(roll_to_notes(query.roll, query.spec), dtype=np.int64).reshape(-1, 3)
    if query.programs is None or not len(notes):
        return (0,) * n_tracks
    at_onset: dict[tuple[int, int], int] = {}
    for step, pitch, program in np.asarray(query.programs, dtype=np.int64).reshape(-1, 3):
        at_onset.setdefault((int(step), int(pitch)), int(program))  # unisons merged in the roll: the first
    programs = np.array([at_onset.get((int(s), int(p)), 0) for p, s, _ in notes], dtype=np.int64)
    lengths = (notes[:, 2] - notes[:, 1]).astype(np.float64)

    def longest(mask) -> int | None:
        if not mask.any():
            return None
        return int(np.argmax(np.bincount(programs[mask], weights=lengths[mask], minlength=128)))

    if n_tracks == 1:
        return (longest(np.ones(len(notes), dtype=bool)),)
    top = top_voice(notes)
    melody = longest(top)
    rest = longest(~top)
    return (melody, melody if rest is None else rest)
