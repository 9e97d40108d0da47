"""Rendering a piano roll: music notation (music21 -> MusicXML -> SVG with verovio), piano-roll
plots and overlays (matplotlib), audio (fluidsynth when installed, else a built-in synthesizer).

Every function takes a roll ``(T, spec.n_columns)`` uint8 in the layout of
:class:`qbdi_utils.pianoroll.RollSpec` (columns ``[0, n_pitches)`` = play, ``[n_pitches,
2*n_pitches)`` = articulate, one row per 16th-note step), binary frames ``(N, spec.frame_size)``
(read as ``N * steps_per_frame`` rows), or a :class:`~qbdi_utils.pianoroll.Piece` (whose roll, spec
and first tempo are then used). Row 0 is the first step of bar 1; the meter is taken as 4/4, a bar
being one frame (``spec.steps_per_frame`` steps).

How notes are read from a roll (:func:`roll_notes`): a note of pitch ``p`` starts at a step where
``articulate[p]`` is on, or where ``play[p]`` switches on without an articulation (so thresholded
decoder output that forgets to articulate is still heard), and lasts while ``play[p]`` stays on with no
new articulation.

Heavy libraries (music21, verovio, matplotlib, IPython) are imported inside the functions that need
them, so importing this module is cheap.

Used in: notebooks/02_vae_training.ipynb, notebooks/04_query_generation.ipynb.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from qbdi_utils.errors import OptionError, OutputExistsError
from qbdi_utils.pianoroll import RollSpec

__all__ = [
    "roll_notes",
    "estimate_key",
    "roll_to_stream",
    "to_musicxml",
    "write_musicxml",
    "stream_to_svg",
    "comparison_svg",
    "save_svg",
    "plot_roll",
    "plot_overlay",
    "find_soundfont",
    "synthesize",
    "write_wav",
    "audio",
    "synthesis_engine",
    "OVERLAY_COLORS",
    "DEFAULT_SAMPLE_RATE",
    "SOUNDFONT_PATHS",
]

DEFAULT_SAMPLE_RATE = 22050

#: Places searched for a General MIDI soundfont (after the environment variable ``QBDI_SOUNDFONT``).
SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
)

# Middle C: notes at or above go to the treble staff, below to the bass staff.
_SPLIT_PITCH = 60
# A single staff is used when every note fits it without many ledger lines.
_TREBLE_LOWEST = 55  # G3
_BASS_HIGHEST = 64  # E4


# --------------------------------------------------------------------------------------------------
# Roll -> notes


def _unpack(roll, spec, tempo_bpm):
    """Accept a roll or a Piece; return (roll (T, C) uint8, spec, tempo_bpm float)."""
    if hasattr(roll, "roll") and hasattr(roll, "spec"):
        piece = roll
        roll = piece.roll
        spec = spec if spec is not None else piece.spec
        if tempo_bpm is None:
            tempo_bpm = piece.tempo_bpm
    spec = spec if spec is not None else RollSpec()
    tempo_bpm = 120.0 if tempo_bpm is None else float(tempo_bpm)
    if not tempo_bpm > 0:
        raise OptionError(f"tempo must be positive, got {tempo_bpm} bpm; pass e.g. tempo_bpm=120")
    roll = np.asarray(roll)
    if roll.ndim == 2 and roll.shape[1] == spec.frame_size:  # frames (N, 2496): rows back
        roll = roll.reshape(-1, spec.n_columns)
    if roll.ndim != 2 or roll.shape[1] != spec.n_columns:
        raise OptionError(
            f"a roll must have shape (T, {spec.n_columns}) for this RollSpec, got {roll.shape}; "
            "use pianoroll.from_frames to turn frames into a roll"
        )
    return roll, spec, tempo_bpm


def roll_notes(roll, spec: RollSpec | None = None) -> np.ndarray:
    """List the notes of a roll.

    Args:
        roll: (T, spec.n_columns) array, nonzero = on (or a Piece).
        spec: roll layout (default RollSpec(); a Piece's own spec when a Piece is given).

    Returns:
        (n, 3) int64 array of (midi_pitch, start_step, end_step) with end exclusive, sorted by start
        step, then pitch.

    Used in: notebooks/04_query_generation.ipynb (through the rendering functions).
    """
    from qbdi_utils.pianoroll import roll_to_notes

    roll, spec, _ = _unpack(roll, spec, None)
    notes = roll_to_notes(roll, spec)
    if not notes:
        return np.zeros((0, 3), dtype=np.int64)
    return np.asarray(notes, dtype=np.int64)


def _bar_window(roll, spec, bars):
    """Rows of the requested bars and the number of the first bar."""
    spf = spec.steps_per_frame
    if bars is None:
        return roll, 1
    try:
        first, last = (int(b) for b in bars)
    except (TypeError, ValueError):
        raise OptionError(f"bars must be None or (first_bar, last_bar), got {bars!r}") from None
    n_bars = -(-roll.shape[0] // spf)
    if not (1 <= first <= last):
        raise OptionError(f"bars {bars!r}: need 1 <= first_bar <= last_bar (1-based, inclusive)")
    if first > n_bars:
        raise OptionError(f"bars {bars!r}: the roll has only {n_bars} bars")
    return roll[(first - 1) * spf : last * spf], first


# --------------------------------------------------------------------------------------------------
# Notes -> music21


def _notatable_steps(spb: int) -> list[int]:
    """Durations in steps writable as one (possibly dotted) note value, longest first."""
    quarters = (4.0, 3.0, 2.0, 1.5, 1.0, 0.75, 0.5, 0.25)
    steps = {int(q * spb) for q in quarters if (q * spb) == int(q * spb) and q * spb >= 1}
    return sorted(steps | {1}, reverse=True)


def _split_in_bar(start: int, end: int, spb: int, spf: int) -> list[tuple[int, int]]:
    """Cut [start, end) (steps within one bar) into notatable, beat-respecting pieces.

    An off-beat start is first filled up to the next beat; from a beat the longest notatable value
    that fits is taken, except that values longer than a beat start only on beat 1 or 3 (no half
    note on beat 2). spb = steps per beat, spf = steps per bar.
    """
    notatable = _notatable_steps(spb)
    pieces = []
    s = start
    while s < end:
        if s % spb:
            limit = min(end, (s // spb + 1) * spb) - s
            d = next(x for x in notatable if x <= limit)
        else:
            rem = end - s
            d = next(x for x in notatable if x <= rem and (x <= spb or s % (2 * spb) == 0))
        pieces.append((s, s + d))
        s += d
    return pieces


# Krumhansl-Kessler key profiles (major, minor), tonic first.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# sharps (+) or flats (-) of the major key on each tonic pitch class (C, Db, D, Eb, E, F, F#, G, ...)
_MAJOR_SHARPS = (0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5)


def estimate_key(roll, spec: RollSpec | None = None) -> tuple[int, str, int]:
    """Estimate the key of a roll (Krumhansl-Schmuckler: duration-weighted pitch-class histogram
    correlated with the Krumhansl-Kessler profiles of the 24 major and minor keys).

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        spec: roll layout (default RollSpec()).

    Returns:
        (tonic pitch class 0-11 with C = 0, "major" or "minor", key signature in sharps (> 0) or
        flats (< 0)); (0, "major", 0) for a silent roll.

    Used in: notebooks/04_query_generation.ipynb (key signature of the score figures).
    """
    notes = roll_notes(roll, spec)
    hist = np.zeros(12)
    for p, s, e in notes:
        hist[p % 12] += e - s
    if not hist.any() or np.allclose(hist, hist[0]):
        return 0, "major", 0
    best = None
    for tonic in range(12):
        for mode, prof in (("major", _KK_MAJOR), ("minor", _KK_MINOR)):
            r = np.corrcoef(hist, np.roll(prof, tonic))[0, 1]
            if best is None or r > best[0]:
                best = (r, tonic, mode)
    _, tonic, mode = best
    relative_major = tonic if mode == "major" else (tonic + 3) % 12
    return tonic, mode, _MAJOR_SHARPS[relative_major]


def _pitch(midi: int, sharps: int = 0):
    """A music21 Pitch for a MIDI number, black keys spelled after the key signature (sharps in
    sharp keys, flats in flat keys, music21's default in C), with no explicit natural sign."""
    from music21 import pitch

    p = pitch.Pitch(midi=int(midi))
    acc = p.accidental.name if p.accidental is not None else None
    if (sharps > 0 and acc == "flat") or (sharps < 0 and acc == "sharp"):
        p = p.getEnharmonic()
    if p.accidental is not None and p.accidental.name == "natural":
        p.accidental = None
    return p


def _make_element(pitches, quarter_length, sharps=0):
    from music21 import chord, note

    if not pitches:
        el = note.Rest(quarterLength=quarter_length)
    elif len(pitches) == 1:
        el = note.Note(_pitch(pitches[0], sharps), quarterLength=quarter_length)
    else:
        el = chord.Chord([_pitch(p, sharps) for p in sorted(pitches)], quarterLength=quarter_length)
    return el


def _voices(groups):
    """Greedy interval colouring: groups [(start, end, pitches)] -> list of voices (lists of groups)."""
    voices: list[list] = []
    ends: list[int] = []
    for g in sorted(groups, key=lambda g: (g[0], -max(g[2]))):
        for i, e in enumerate(ends):
            if e <= g[0]:
                voices[i].append(g)
                ends[i] = g[1]
                break
        else:
            voices.append([g])
            ends.append(g[1])
    return voices


def _voice_elements_in_bar(voice, bar_start, spf, spb, sq, hide_rests=False, sharps=0):
    """Elements (offset_quarters, music21 element) of one voice in one bar, rests filling gaps.

    With ``hide_rests`` the gap-filling rests are invisible (print-object="no"), as engravers do for
    secondary voices.
    """
    from music21 import tie

    out = _VoiceList(hide_rests)
    cursor = 0
    bar_end = bar_start + spf
    for s, e, pitches in voice:
        if e <= bar_start or s >= bar_end:
            continue
        cs, ce = max(s, bar_start) - bar_start, min(e, bar_end) - bar_start
        if cs > cursor:
            for a, b in _split_in_bar(cursor, cs, spb, spf):
                out.append((a / sq, _make_element((), (b - a) / sq)))
        pieces = _split_in_bar(cs, ce, spb, spf)
        for i, (a, b) in enumerate(pieces):
            el = _make_element(pitches, (b - a) / sq, sharps)
            first = i == 0 and s >= bar_start
            last = i == len(pieces) - 1 and e <= bar_end
            if not (first and last):
                el.tie = tie.Tie("start" if first else ("stop" if last else "continue"))
            out.append((a / sq, el))
        cursor = ce
    if cursor < spf:
        for a, b in _split_in_bar(cursor, spf, spb, spf):
            out.append((a / sq, _make_element((), (b - a) / sq)))
    return out


class _VoiceList(list):
    """A list of (offset, element) that hides the rests appended to it when asked."""

    def __init__(self, hide_rests: bool):
        super().__init__()
        self.hide_rests = hide_rests

    def append(self, item):
        if self.hide_rests and item[1].isRest:
            item[1].style.hideObjectOnPrint = True
        super().append(item)


def _build_staff(notes, n_bars, first_bar, spec, *, clef_name, part_cls, tempo_bpm=None, sharps=None):
    """One music21 Part/PartStaff with explicit measures, voices, ties and rests."""
    from music21 import clef, key, meter, stream, tempo

    spf, sq = spec.steps_per_frame, spec.steps_per_quarter
    spb = sq  # a 4/4 beat is one quarter note
    groups: dict[tuple[int, int], list[int]] = {}
    for p, s, e in notes:
        groups.setdefault((int(s), int(e)), []).append(int(p))
    voices = _voices([(s, e, ps) for (s, e), ps in groups.items()])
    part = part_cls()
    for b in range(n_bars):
        m = stream.Measure(number=first_bar + b)
        if b == 0:
            m.insert(0, clef.TrebleClef() if clef_name == "treble" else clef.BassClef())
            if sharps is not None:
                m.insert(0, key.KeySignature(int(sharps)))
            m.insert(0, meter.TimeSignature(f"{int(round(spf / sq))}/4"))
            if tempo_bpm is not None:
                mark = tempo.MetronomeMark(number=round(float(tempo_bpm), 2), referent=1.0)
                m.insert(0, mark)
        bar_start = b * spf
        active = [v for v in voices if any(s < bar_start + spf and e > bar_start for s, e, _ in v)]
        if len(active) <= 1:
            for off, el in _voice_elements_in_bar(active[0] if active else [], bar_start, spf, spb, sq,
                                                  sharps=sharps or 0):
                m.insert(off, el)
        else:
            for i, v in enumerate(active):
                voice = stream.Voice(id=str(i + 1))
                for off, el in _voice_elements_in_bar(v, bar_start, spf, spb, sq, hide_rests=i > 0,
                                                      sharps=sharps or 0):
                    voice.insert(off, el)
                m.insert(0, voice)
        part.append(m)
    return part


def _staves_for(notes):
    """Which staves to use: [("treble"|"bass", notes)]."""
    if len(notes) == 0 or notes[:, 0].min() >= _TREBLE_LOWEST:
        return [("treble", notes)]
    if notes[:, 0].max() <= _BASS_HIGHEST:
        return [("bass", notes)]
    hi = notes[notes[:, 0] >= _SPLIT_PITCH]
    lo = notes[notes[:, 0] < _SPLIT_PITCH]
    return [("treble", hi), ("bass", lo)]


def _resolve_key(key_sharps, roll, spec):
    if key_sharps is None:
        return None
    if isinstance(key_sharps, str):
        if key_sharps != "auto":
            raise OptionError(f"key_sharps must be 'auto', None or an int in -7..7, got {key_sharps!r}")
        return estimate_key(roll, spec)[2]
    if not -7 <= int(key_sharps) <= 7:
        raise OptionError(f"key_sharps must be 'auto', None or an int in -7..7, got {key_sharps!r}")
    return int(key_sharps)


def _add_roll_parts(score, roll, spec, tempo_bpm, bars, label, with_tempo=True, sharps=None):
    """Append the staves of one roll to ``score``; returns the list of parts added."""
    from music21 import layout, stream

    window, first_bar = _bar_window(roll, spec, bars)
    spf = spec.steps_per_frame
    n_bars = max(1, -(-window.shape[0] // spf))
    if bars is not None:
        n_bars = int(bars[1]) - int(bars[0]) + 1
    notes = roll_notes(window, spec)
    staves = _staves_for(notes)
    part_cls = stream.PartStaff if len(staves) == 2 else stream.Part
    parts = []
    for i, (clef_name, staff_notes) in enumerate(staves):
        part = _build_staff(
            staff_notes, n_bars, first_bar, spec, clef_name=clef_name, part_cls=part_cls,
            tempo_bpm=tempo_bpm if (with_tempo and i == 0) else None, sharps=sharps,
        )
        if label:
            part.partName = label
            part.partAbbreviation = ""
        parts.append(part)
        score.insert(0, part)
    if len(parts) == 2:
        group = layout.StaffGroup(parts, symbol="brace", barTogether=True)
        if label:
            group.name = label
        score.insert(0, group)
    return parts


def roll_to_stream(roll, spec: RollSpec | None = None, tempo_bpm: float | None = None, bars=None,
                   name: str = "", key_sharps="auto"):
    """Turn a roll into a music21 score on the 16th-note grid.

    Notes come from :func:`roll_notes`; notes of one staff with the same onset and the same
    duration become a chord; notes that overlap otherwise go to separate voices. Notes crossing a
    bar line (or a beat, when they start off the beat) are split into tied pieces of notatable
    length; gaps become rests. One staff (treble, or bass when everything is low) when all notes fit
    it, otherwise a braced treble/bass pair split at middle C (MIDI 60). 4/4 time signature, key
    signature (estimated from the whole roll by :func:`estimate_key` unless given; black keys are
    spelled to match it) and a metronome mark on the first bar.

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece (its spec and first tempo are used).
        spec: roll layout (default RollSpec()).
        tempo_bpm: tempo in quarter notes per minute (default: the Piece's, else 120).
        bars: None for the whole roll, or (first_bar, last_bar), 1-based inclusive; measures are
            numbered from first_bar, and offsets start at 0 at the beginning of first_bar. Notes
            sounding across the window's edges are cut at the edges.
        name: title stored in the score's metadata.
        key_sharps: "auto" (estimate), None (no key signature, music21's default spelling), or the
            key signature as sharps (> 0) / flats (< 0), -7..7.

    Returns:
        music21.stream.Score; offsets and durations in quarter notes.

    Used in: notebooks/04_query_generation.ipynb.
    """
    from music21 import metadata, stream

    roll, spec, tempo_bpm = _unpack(roll, spec, tempo_bpm)
    score = stream.Score()
    score.metadata = metadata.Metadata()
    score.metadata.title = name or ""
    score.metadata.composer = ""
    sharps = _resolve_key(key_sharps, roll, spec)
    _add_roll_parts(score, roll, spec, tempo_bpm, bars, label="", sharps=sharps)
    return score


def to_musicxml(score) -> bytes:
    """Serialise a music21 score to MusicXML (UTF-8 bytes), as music21's writer would.

    Used in: notebooks/04_query_generation.ipynb (through comparison_svg / write_musicxml).
    """
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    return GeneralObjectExporter(score).parse()


def _check_output(path, force: bool) -> Path:
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError("exists; choose another name or pass force=True (--force)", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _replace_with(path: Path, data: bytes) -> Path:
    """Write ``data`` next to ``path`` and move it into place, so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def write_musicxml(roll, path, spec: RollSpec | None = None, tempo_bpm: float | None = None,
                   force: bool = False, bars=None, name: str = "", key_sharps="auto") -> Path:
    """Write a roll as a MusicXML file that opens in MuseScore or any notation editor.

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        path: output file (conventionally ``.musicxml`` or ``.xml``).
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        force: overwrite an existing file.
        bars: None, or (first_bar, last_bar) 1-based inclusive.
        name: title written into the file (default: the file stem).
        key_sharps: key signature, see :func:`roll_to_stream`.

    Returns:
        The path written.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is False.

    Used in: notebooks/04_query_generation.ipynb.
    """
    path = _check_output(path, force)
    score = roll_to_stream(roll, spec, tempo_bpm, bars=bars, name=name or path.stem, key_sharps=key_sharps)
    return _replace_with(path, to_musicxml(score))


# --------------------------------------------------------------------------------------------------
# Notation -> SVG (verovio)


def _verovio_svg(musicxml: bytes | str, page_width: int = 2100, scale: int = 40) -> str:
    """Render MusicXML with verovio into one SVG (pages stacked vertically if there are several)."""
    import verovio

    verovio.enableLog(verovio.LOG_ERROR)  # layout warnings (e.g. tight justification) are noise here
    tk = verovio.toolkit()
    tk.setOptions({
        "pageWidth": int(page_width),
        "pageHeight": 60000,
        "adjustPageHeight": True,
        "adjustPageWidth": True,  # crop to the music instead of leaving a blank page margin
        "scale": int(scale),
        "header": "none",
        "footer": "none",
        "breaks": "auto",
        "pageMarginLeft": 250,  # room for the staff labels
        "pageMarginRight": 50,
        "pageMarginTop": 50,
        "pageMarginBottom": 50,
        "systemDivider": "none",  # no slashes between systems of one score
        "xmlIdSeed": 1,  # fixed element ids: the same music gives the same SVG bytes
    })
    text = musicxml.decode("utf-8") if isinstance(musicxml, (bytes, bytearray)) else musicxml
    if not tk.loadData(text):
        raise RuntimeError("verovio could not load the MusicXML produced by music21")
    pages = [tk.renderToSVG(p) for p in range(1, tk.getPageCount() + 1)]
    if len(pages) == 1:
        return pages[0]
    return _stack_svgs(pages)


def _stack_svgs(pages: list[str]) -> str:
    """Stack several SVG documents vertically in one SVG document."""
    import re

    parts, y, width = [], 0.0, 0.0
    for svg in pages:
        body = re.sub(r"^<\?xml[^>]*>\s*", "", svg.strip())
        w = float(re.search(r'width="([\d.]+)', body).group(1))
        h = float(re.search(r'height="([\d.]+)', body).group(1))
        parts.append(f'<g transform="translate(0,{y})">{body}</g>')
        y += h
        width = max(width, w)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{width}px" height="{y}px" viewBox="0 0 {width} {y}">' + "".join(parts) + "</svg>")


def stream_to_svg(score, page_width: int = 2100, scale: int = 40) -> str:
    """Engrave a music21 score as SVG: score -> MusicXML -> verovio (no external programs).

    Args:
        score: music21 Score (e.g. from :func:`roll_to_stream`).
        page_width: verovio page width in its units (tenths of a staff space * 10).
        scale: verovio scale in percent.

    Returns:
        SVG document as a string.

    Used in: notebooks/04_query_generation.ipynb.
    """
    return _verovio_svg(to_musicxml(score), page_width=page_width, scale=scale)


def comparison_svg(upper_roll, lower_roll, spec: RollSpec | None = None, bars=(4, 8),
                   labels=("Improvisation (full rate)", "Query"), tempo_bpm: float | None = None,
                   page_width: int | None = None, scale: int = 40, key_sharps="auto") -> str:
    """The paper's Figs. 2 and 3: the same bars of two rolls as notation, one printed above the other.

    Each roll gets one or two staves (see :func:`roll_to_stream`), labelled with its name; both share
    bar lines, measure numbers (from ``bars[0]``) and a tempo mark.

    Args:
        upper_roll: (T1, spec.n_columns) uint8 roll (or Piece) printed on top (the improvisation).
        lower_roll: (T2, spec.n_columns) uint8 roll (or Piece) printed below (the query).
        spec: roll layout (default RollSpec()).
        bars: (first_bar, last_bar), 1-based inclusive; None for every bar of the longer roll.
        labels: staff labels (upper, lower).
        tempo_bpm: quarter notes per minute (default: the upper Piece's, else 120).
        page_width: verovio page width; a wider page fits more bars per system. None: wide enough
            for every requested bar on one system (as in the paper's figures), up to 8 bars.
        scale: verovio scale in percent.
        key_sharps: "auto" (the key of the whole lower roll, the query, used for both), None (no key
            signature), or sharps (> 0) / flats (< 0).

    Returns:
        SVG document as a string.

    Used in: notebooks/04_query_generation.ipynb (Figs. 2 and 3).
    """
    from music21 import metadata, stream

    up, spec_u, tempo_bpm = _unpack(upper_roll, spec, tempo_bpm)
    lo, spec_l, _ = _unpack(lower_roll, spec, tempo_bpm)
    if spec_u != spec_l:
        raise OptionError("the two rolls have different RollSpecs; render them separately")
    if bars is None:
        n = max(up.shape[0], lo.shape[0])
        bars = (1, max(1, -(-n // spec_u.steps_per_frame)))
    # pad the shorter roll so that both have every requested bar
    need = int(bars[1]) * spec_u.steps_per_frame

    def pad(r):
        if r.shape[0] >= need:
            return r
        return np.vstack([r, np.zeros((need - r.shape[0], r.shape[1]), dtype=r.dtype)])

    score = stream.Score()
    score.metadata = metadata.Metadata()
    score.metadata.title = ""
    score.metadata.composer = ""
    sharps = _resolve_key(key_sharps, lo, spec_u)
    _add_roll_parts(score, pad(up), spec_u, tempo_bpm, bars, label=labels[0], with_tempo=True, sharps=sharps)
    _add_roll_parts(score, pad(lo), spec_u, tempo_bpm, bars, label=labels[1], with_tempo=False, sharps=sharps)
    if page_width is None:
        n_bars = int(bars[1]) - int(bars[0]) + 1
        page_width = max(2100, 500 + 900 * min(n_bars, 8))
    return _verovio_svg(to_musicxml(score), page_width=page_width, scale=scale)


def save_svg(svg: str, path, force: bool = False, png: bool = False) -> list[Path]:
    """Write an SVG string to ``path`` (and a PNG next to it when asked and cairosvg is installed).

    PNG conversion is optional: ``cairosvg`` is not a dependency of qbdi (it needs the system cairo
    library); without it only the SVG is written and a warning says so. Notebooks show the SVG
    with ``IPython.display.SVG``.

    Args:
        svg: SVG document (from :func:`comparison_svg` or :func:`stream_to_svg`).
        path: output ``.svg`` file.
        force: overwrite existing files.
        png: also write ``path.with_suffix('.png')`` if cairosvg is importable.

    Returns:
        List of the paths written.

    Raises:
        OutputExistsError: an output exists and ``force`` is False.

    Used in: notebooks/04_query_generation.ipynb.
    """
    path = _check_output(path, force)
    path.write_text(svg, encoding="utf-8")
    written = [path]
    if png:
        try:
            import cairosvg  # optional
        except Exception:  # ImportError, or OSError when libcairo is missing
            import warnings

            warnings.warn("cairosvg is not installed; wrote the SVG only", stacklevel=2)
        else:
            png_path = _check_output(path.with_suffix(".png"), force)
            cairosvg.svg2png(bytestring=svg.encode("utf-8"), write_to=str(png_path), background_color="white")
            written.append(png_path)
    return written


# --------------------------------------------------------------------------------------------------
# Piano-roll plots (matplotlib)


def _bar_lines(ax, n_steps, spf, color="0.6"):
    for x in range(0, n_steps + 1, spf):
        ax.axvline(x - 0.5, color=color, lw=0.6, zorder=3)


def _pitch_axis(ax, lo, hi):
    names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    ticks = [p for p in range(lo, hi + 1) if p % 12 == 0]
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{names[p % 12]}{p // 12 - 1}" for p in ticks])
    ax.set_ylim(lo - 0.5, hi + 0.5)
    ax.set_ylabel("pitch")


def _pitch_range(spec, *rolls_play):
    used = np.flatnonzero(np.any(np.vstack([r.any(axis=0)[None] for r in rolls_play]), axis=0))
    if used.size == 0:
        return spec.min_pitch + 36, spec.min_pitch + 48  # C4..C5 when empty
    lo = max(spec.min_pitch, spec.min_pitch + int(used[0]) - 2)
    hi = min(spec.max_pitch, spec.min_pitch + int(used[-1]) + 2)
    return lo, hi


def _bar_ticks(ax, n_steps, spf, first_bar=1):
    n_bars = max(1, -(-n_steps // spf))
    every = max(1, n_bars // 16)
    ticks = list(range(0, n_bars, every))
    ax.set_xticks([t * spf - 0.5 for t in ticks])
    ax.set_xticklabels([str(first_bar + t) for t in ticks])
    ax.set_xlabel("bar")


def plot_roll(roll, spec: RollSpec | None = None, ax=None, title: str = "", bar_lines: bool = True,
              color: str = "tab:blue"):
    """Plot a piano roll: sounding steps as bars, note onsets darker; bar lines; pitch names.

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        spec: roll layout (default RollSpec()).
        ax: matplotlib Axes to draw into (a new figure when None).
        title: axes title.
        bar_lines: draw a vertical line at every bar (spec.steps_per_frame steps).
        color: colour of the notes.

    Returns:
        The matplotlib Axes.

    Used in: notebooks/02_vae_training.ipynb, notebooks/04_query_generation.ipynb.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    roll, spec, _ = _unpack(roll, spec, None)
    n = spec.n_pitches
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.5))
    T = roll.shape[0]
    img = np.ones((n, max(T, 1), 3))
    rgb = np.array(to_rgb(color))
    light = 1 - 0.55 * (1 - rgb)
    play = roll[:, :n].T != 0
    art = (roll[:, n:].T != 0) & play
    img[play] = light
    img[art] = rgb
    ax.imshow(img, origin="lower", aspect="auto", interpolation="nearest",
              extent=(-0.5, max(T, 1) - 0.5, spec.min_pitch - 0.5, spec.max_pitch + 0.5))
    lo, hi = _pitch_range(spec, roll[:, :n])
    _pitch_axis(ax, lo, hi)
    if bar_lines:
        _bar_lines(ax, T, spec.steps_per_frame)
    _bar_ticks(ax, T, spec.steps_per_frame)
    if title:
        ax.set_title(title)
    return ax


#: Colours of :func:`plot_overlay`: query only, output only, both.
OVERLAY_COLORS = {"query only": "#4c78a8", "output only": "#e45756", "both": "#2ca02c"}


def plot_overlay(query_roll, output_roll, spec: RollSpec | None = None, ax=None, title: str = "",
                 bar_lines: bool = True, labels=("query", "output")):
    """Overlay two piano rolls, colour-coded: sounding in the query only, in the output only, in both.

    Rolls of different lengths are compared over the longer one (the shorter counts as silent).

    Args:
        query_roll: (T1, spec.n_columns) uint8 roll or Piece.
        output_roll: (T2, spec.n_columns) uint8 roll or Piece.
        spec: roll layout (default RollSpec()).
        ax: matplotlib Axes (a new figure when None).
        title: axes title.
        bar_lines: draw bar lines.
        labels: names used in the legend for (query, output).

    Returns:
        The matplotlib Axes.

    Used in: notebooks/04_query_generation.ipynb.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    q, spec, _ = _unpack(query_roll, spec, None)
    o, _, _ = _unpack(output_roll, spec, None)
    n = spec.n_pitches
    T = max(q.shape[0], o.shape[0], 1)
    qp = np.zeros((T, n), bool)
    op = np.zeros((T, n), bool)
    qp[: q.shape[0]] = q[:, :n] != 0
    op[: o.shape[0]] = o[:, :n] != 0
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.5))
    img = np.ones((n, T, 3))
    img[(qp & ~op).T] = to_rgb(OVERLAY_COLORS["query only"])
    img[(op & ~qp).T] = to_rgb(OVERLAY_COLORS["output only"])
    img[(qp & op).T] = to_rgb(OVERLAY_COLORS["both"])
    ax.imshow(img, origin="lower", aspect="auto", interpolation="nearest",
              extent=(-0.5, T - 0.5, spec.min_pitch - 0.5, spec.max_pitch + 0.5))
    lo, hi = _pitch_range(spec, qp, op)
    _pitch_axis(ax, lo, hi)
    if bar_lines:
        _bar_lines(ax, T, spec.steps_per_frame)
    _bar_ticks(ax, T, spec.steps_per_frame)
    handles = [
        Patch(color=OVERLAY_COLORS["query only"], label=f"{labels[0]} only"),
        Patch(color=OVERLAY_COLORS["output only"], label=f"{labels[1]} only"),
        Patch(color=OVERLAY_COLORS["both"], label="both"),
    ]
    ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.9)
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------------------------------
# Audio


def find_soundfont() -> Path | None:
    """A General MIDI soundfont: ``$QBDI_SOUNDFONT`` if set and present, else the first of
    :data:`SOUNDFONT_PATHS` that exists, else None.

    Used in: notebooks/04_query_generation.ipynb (through synthesize).
    """
    env = os.environ.get("QBDI_SOUNDFONT")
    for cand in ([env] if env else []) + list(SOUNDFONT_PATHS):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


def _fluidsynth_available() -> bool:
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth, optional)
    except Exception:  # ImportError, or OSError when libfluidsynth is missing
        return False
    return hasattr(fluidsynth, "Synth") and find_soundfont() is not None


#: Built-in synthesizer: relative amplitudes of harmonics 1, 2, 3, 4 (fundamental strongest).
BUILTIN_HARMONICS = (1.0, 0.45, 0.22, 0.1)
#: Built-in synthesizer envelope, seconds: attack, decay, release; sustain level (of the peak).
BUILTIN_ATTACK_S, BUILTIN_DECAY_S, BUILTIN_SUSTAIN, BUILTIN_RELEASE_S = 0.006, 0.12, 0.55, 0.08
#: The key is released this long before a note's nominal end (at most a third of the note), so
#: repeated notes of the same pitch are heard as separate attacks; a re-struck key cuts the
#: previous note's release short so that it has faded out by the new attack.
BUILTIN_GAP_S = 0.02


def _builtin_synth(notes, n_samples, sr, sec_per_step):
    out = np.zeros(n_samples, dtype=np.float64)
    a_n = max(1, int(round(BUILTIN_ATTACK_S * sr)))
    d_n = max(1, int(round(BUILTIN_DECAY_S * sr)))
    r_n = max(1, int(round(BUILTIN_RELEASE_S * sr)))
    # the next onset of the same pitch (a re-struck key cuts the previous note's release short)
    next_same = {}
    following = np.full(len(notes), -1, dtype=np.int64)
    for i in range(len(notes) - 1, -1, -1):
        p = int(notes[i][0])
        following[i] = next_same.get(p, -1)
        next_same[p] = int(notes[i][1])
    for i, (p, s, e) in enumerate(notes):
        f0 = 440.0 * 2.0 ** ((p - 69) / 12.0)
        dur = (e - s) * sec_per_step
        gate = dur - min(BUILTIN_GAP_S, dur / 3.0)
        g_n = max(2, int(round(gate * sr)))
        start = int(round(s * sec_per_step * sr))
        r_i = r_n
        if following[i] >= 0:
            r_i = max(1, min(r_n, int(round(following[i] * sec_per_step * sr)) - start - g_n))
        length = g_n + r_i
        t = np.arange(length) / sr
        # ADSR: linear attack to 1, exponential-ish (linear here) decay to sustain, linear release to 0
        env = np.full(length, BUILTIN_SUSTAIN)
        k = np.arange(length)
        env[k < a_n] = k[k < a_n] / a_n
        dec = (k >= a_n) & (k < a_n + d_n)
        env[dec] = 1.0 - (1.0 - BUILTIN_SUSTAIN) * (k[dec] - a_n) / d_n
        level_at_release = env[min(g_n, length - 1)] if g_n < length else BUILTIN_SUSTAIN
        rel = k >= g_n
        env[rel] = level_at_release * (1.0 - (k[rel] - g_n + 1) / r_i)
        env = np.clip(env, 0.0, None)
        wave = np.zeros(length)
        for h, amp in enumerate(BUILTIN_HARMONICS, start=1):
            if h * f0 < sr / 2:
                wave += amp * np.sin(2 * np.pi * h * f0 * t)
        # quieter high notes, a little louder low ones (rough equal loudness)
        wave *= env * (440.0 / f0) ** 0.15
        stop = min(n_samples, start + length)
        if stop > start:
            out[start:stop] += wave[: stop - start]
    return out


def _fluidsynth_synth(notes, n_samples, sr, sec_per_step, soundfont, program=0, velocity=80):
    import fluidsynth

    synth = fluidsynth.Synth(samplerate=float(sr))
    try:
        sfid = synth.sfload(str(soundfont))
        if sfid == -1:
            raise RuntimeError(f"fluidsynth could not load the soundfont {soundfont}")
        synth.program_select(0, sfid, 0, int(program))
        events = []
        for p, s, e in notes:
            events.append((int(round(s * sec_per_step * sr)), 1, int(p)))
            events.append((int(round(e * sec_per_step * sr)), 0, int(p)))
        events.sort(key=lambda ev: (ev[0], ev[1]))  # note-offs before note-ons at the same sample
        chunks, pos = [], 0
        for when, on, p in events + [(n_samples, -1, 0)]:
            when = min(when, n_samples)
            if when > pos:
                chunks.append(np.asarray(synth.get_samples(when - pos), dtype=np.float64))
                pos = when
            if on == 1:
                synth.noteon(0, p, int(velocity))
            elif on == 0:
                synth.noteoff(0, p)
        stereo = np.concatenate(chunks) if chunks else np.zeros(0)
    finally:
        synth.delete()
    stereo = stereo.reshape(-1, 2)
    mono = stereo.mean(axis=1) / 32768.0
    out = np.zeros(n_samples)
    out[: min(n_samples, mono.size)] = mono[:n_samples]
    return out


def synthesize(roll, spec: RollSpec | None = None, tempo_bpm: float | None = None,
               sample_rate: int = DEFAULT_SAMPLE_RATE, engine: str = "auto", program: int = 0) -> np.ndarray:
    """Render a roll as a mono waveform.

    With ``engine="auto"``, fluidsynth is used when the ``pyfluidsynth`` module imports and a General
    MIDI soundfont is found (:func:`find_soundfont`); otherwise the built-in additive synthesizer:
    a few harmonics (:data:`BUILTIN_HARMONICS`) under an ADSR envelope, every articulation a new
    attack (the key is released :data:`BUILTIN_GAP_S` early, so repeated notes are audible), summed
    and peak-normalised to 0.9. No clicks: every note starts and ends at zero amplitude.

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        sample_rate: samples per second.
        engine: "auto", "builtin" or "fluidsynth" (the latter raises OptionError when unavailable).
        program: General MIDI program for fluidsynth (0 = acoustic grand piano).

    Returns:
        (n_samples,) float32 in [-1, 1], n_samples = round(T * seconds_per_step * sample_rate) +
        round(release_seconds * sample_rate), where seconds_per_step = 60 / tempo_bpm /
        spec.steps_per_quarter and the release tail is :data:`BUILTIN_RELEASE_S` (builtin) or 1 s
        (fluidsynth). All zeros for a silent roll.

    Used in: notebooks/04_query_generation.ipynb.
    """
    roll, spec, tempo_bpm = _unpack(roll, spec, tempo_bpm)
    sr = int(sample_rate)
    if sr <= 0:
        raise OptionError(f"sample_rate must be positive, got {sample_rate}")
    if engine not in ("auto", "builtin", "fluidsynth"):
        raise OptionError(f"engine must be 'auto', 'builtin' or 'fluidsynth', got {engine!r}")
    use_fs = engine == "fluidsynth" or (engine == "auto" and _fluidsynth_available())
    if engine == "fluidsynth" and not _fluidsynth_available():
        raise OptionError("fluidsynth needs `pip install pyfluidsynth`, libfluidsynth and a GM soundfont "
                          "(set QBDI_SOUNDFONT=/path/to/file.sf2); or use engine='builtin'")
    sec_per_step = 60.0 / tempo_bpm / spec.steps_per_quarter
    tail_s = 1.0 if use_fs else BUILTIN_RELEASE_S
    n_samples = int(round(roll.shape[0] * sec_per_step * sr)) + int(round(tail_s * sr))
    notes = roll_notes(roll, spec)
    if len(notes) == 0:
        return np.zeros(n_samples, dtype=np.float32)
    wave = None
    if use_fs:
        try:
            wave = _fluidsynth_synth(notes, n_samples, sr, sec_per_step, find_soundfont(), program=program)
        except Exception as exc:  # a broken libfluidsynth or soundfont must not take audio away
            if engine == "fluidsynth":
                raise
            import warnings

            warnings.warn(f"fluidsynth failed ({exc}); using the built-in synthesizer", stacklevel=2)
            n_samples = int(round(roll.shape[0] * sec_per_step * sr)) + int(round(BUILTIN_RELEASE_S * sr))
    if wave is None:
        wave = _builtin_synth(notes, n_samples, sr, sec_per_step)
    peak = float(np.max(np.abs(wave)))
    if peak > 0:
        wave = wave * (0.9 / peak)
    return wave.astype(np.float32)


def synthesis_engine() -> str:
    """Which engine ``synthesize(engine="auto")`` uses on this machine: "fluidsynth" or "builtin"."""
    return "fluidsynth" if _fluidsynth_available() else "builtin"


def write_wav(roll, path, spec: RollSpec | None = None, tempo_bpm: float | None = None,
              sample_rate: int = DEFAULT_SAMPLE_RATE, force: bool = False, engine: str = "auto") -> Path:
    """Synthesize a roll (:func:`synthesize`) and write it as a 16-bit mono WAV file.

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        path: output ``.wav`` file.
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        sample_rate: samples per second.
        force: overwrite an existing file.
        engine: see :func:`synthesize`.

    Returns:
        The path written.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is False.

    Used in: notebooks/04_query_generation.ipynb.
    """
    import io

    from scipy.io import wavfile

    path = _check_output(path, force)
    wave = synthesize(roll, spec, tempo_bpm, sample_rate=sample_rate, engine=engine)
    pcm = np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16)
    buf = io.BytesIO()
    wavfile.write(buf, int(sample_rate), pcm)
    return _replace_with(path, buf.getvalue())


def audio(roll, spec: RollSpec | None = None, tempo_bpm: float | None = None,
          sample_rate: int = DEFAULT_SAMPLE_RATE, engine: str = "auto"):
    """An IPython audio player for a roll (synthesized with :func:`synthesize`).

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        sample_rate: samples per second.
        engine: see :func:`synthesize`.

    Returns:
        IPython.display.Audio (the waveform is already normalised, so it is not rescaled).

    Used in: notebooks/04_query_generation.ipynb.
    """
    from IPython.display import Audio

    wave = synthesize(roll, spec, tempo_bpm, sample_rate=sample_rate, engine=engine)
    return Audio(wave, rate=int(sample_rate), normalize=False)
