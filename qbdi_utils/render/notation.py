"""Music notation of a piano roll: music21 score -> MusicXML -> SVG engraved by verovio.

Every function takes a roll ``(T, spec.n_columns)`` in the layout of
:class:`qbdi_utils.pianoroll.RollSpec`, frames ``(N, spec.frame_size)``, or a
:class:`~qbdi_utils.pianoroll.Piece` (whose roll, spec and first tempo are then used); see
:func:`qbdi_utils.pianoroll.as_roll`. Row 0 is the first step of bar 1; the meter is taken as 4/4, a
bar being one frame (``spec.steps_per_frame`` steps). On a grid with triplets (12 steps per quarter:
16ths and triplets) notes off the duple grid are written as 3:2 triplets (eighth-note triplets of 1/3
quarter, quarter-note triplets of 2/3, ...); a 16th-note grid is written as it always was. Notes are read by
:func:`qbdi_utils.render.roll_notes`; the key signature comes from
:func:`qbdi_utils.harmony.estimate_key` (``Key.sharps``).

Outputs are reproducible: MusicXML part ids are numbered (P1, P2, ...) instead of music21's random
ones and the encoding date is left out, and verovio's element ids are seeded, so the same roll gives
the same bytes on every run.

music21 and verovio are imported inside the functions that need them.

The cutting of a bar's steps into duple and triplet note values is :mod:`qbdi_utils.render.tuplets`.

Imports: files, errors, harmony, pianoroll, render._common, render.tuplets.
Used in: notebooks/04_query_generation.ipynb (Figs. 2-3), ``qbdi improvise --musicxml``.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np

from qbdi_utils import files
from qbdi_utils.errors import OptionError
from qbdi_utils.harmony import estimate_key
from qbdi_utils.pianoroll import Piece, RollSpec, bar_layout, bar_meters, bar_steps
from qbdi_utils.render._common import unpack_roll, check_suffix, roll_notes
from qbdi_utils.render.tuplets import split_regions, triplet_windows

__all__ = [
    "roll_to_stream",
    "to_musicxml",
    "write_musicxml",
    "musicxml_bytes",
    "MUSICXML_SUFFIXES",
    "stream_to_svg",
    "comparison_svg",
    "save_svg",
]

# Middle C: notes at or above go to the treble staff, below to the bass staff.
_SPLIT_PITCH = 60
# A single staff is used when every note fits it without many ledger lines.
_TREBLE_LOWEST = 55  # G3
_BASS_HIGHEST = 64  # E4


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


def _make_element(pitches, quarter_length, sharps=0, tuplet_normal=None):
    """A rest, note or chord of ``quarter_length`` quarters; with ``tuplet_normal`` (a note type,
    e.g. "eighth") a member of a 3:2 triplet group of that type, written as the value of 3/2 of its
    length under the tuplet (so the group's bracket closes where its members fill two such notes)."""
    from music21 import chord, duration, note

    if not pitches:
        el = note.Rest(quarterLength=quarter_length)
    elif len(pitches) == 1:
        el = note.Note(_pitch(pitches[0], sharps), quarterLength=quarter_length)
    else:
        el = chord.Chord([_pitch(p, sharps) for p in sorted(pitches)], quarterLength=quarter_length)
    if tuplet_normal is not None:
        written = duration.Duration(quarter_length * Fraction(3, 2))
        written.appendTuplet(duration.Tuplet(3, 2, tuplet_normal))
        el.duration = written
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


def _voice_elements_in_bar(voice, bar_start, spf, spb, sq, *, hide_rests=False, sharps=0):
    """Elements (offset_quarters, music21 element) of one voice in one bar, rests filling gaps.

    On a grid with triplets (:func:`qbdi_utils.render.tuplets.has_triplets`) the beats whose notes or
    rests start or end off the duple grid are written as triplet groups
    (:func:`qbdi_utils.render.tuplets.triplet_windows`). With ``hide_rests`` the gap-filling rests are
    invisible (print-object="no"), as engravers do for secondary voices.
    """
    from music21 import tie

    bar_end = bar_start + spf
    spans = []  # (start, end, pitches, starts in this bar, ends in this bar), steps of the bar
    cursor = 0
    for s, e, pitches in voice:
        if e <= bar_start or s >= bar_end:
            continue
        cs, ce = max(s, bar_start) - bar_start, min(e, bar_end) - bar_start
        if cs > cursor:
            spans.append((cursor, cs, (), True, True))
        spans.append((cs, ce, pitches, s >= bar_start, e <= bar_end))
        cursor = ce
    if cursor < spf:
        spans.append((cursor, spf, (), True, True))
    windows = triplet_windows([x for a, b, *_ in spans for x in (a, b) if 0 < x < spf], spf, spb)

    out = _VoiceList(hide_rests)
    for cs, ce, pitches, starts, ends in spans:
        pieces = split_regions(cs, ce, windows, spb, spf)
        for i, (a, b, normal) in enumerate(pieces):
            if normal is None:
                offset, length = a / sq, (b - a) / sq
            else:
                offset, length = Fraction(a, sq), Fraction(b - a, sq)
            if not pitches:
                out.append((offset, _make_element((), length, tuplet_normal=normal)))
                continue
            el = _make_element(pitches, length, sharps, tuplet_normal=normal)
            first = i == 0 and starts
            last = i == len(pieces) - 1 and ends
            if not (first and last):
                el.tie = tie.Tie("start" if first else ("stop" if last else "continue"))
            out.append((offset, el))
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


def _build_staff(notes, n_bars, first_bar, spec, *, clef_name, part_cls, tempo_bpm=None, sharps=None,
                 meter_bars=None):
    """One music21 Part/PartStaff with explicit measures, voices, ties and rests.

    ``meter_bars``: None for ``n_bars`` bars of ``spec.steps_per_frame`` steps in 4/4 (the paper's
    frames); else [(start step, steps, "N/D"), ...], one per bar, a time signature written where the
    meter changes and a first bar shorter than its meter written as a pickup.
    """
    from music21 import clef, key, meter, stream, tempo

    spf, sq = spec.steps_per_frame, spec.steps_per_quarter
    spb = sq  # a 4/4 beat is one quarter note
    groups: dict[tuple[int, int], list[int]] = {}
    for p, s, e in notes:
        groups.setdefault((int(s), int(e)), []).append(int(p))
    voices = _voices([(s, e, ps) for (s, e), ps in groups.items()])
    part = part_cls()
    if meter_bars is None:
        meter_bars = [(b * spf, spf, f"{int(round(spf / sq))}/4") for b in range(n_bars)]
    for b, (bar_start, spf, bar_meter) in enumerate(meter_bars):
        m = stream.Measure(number=first_bar + b)
        if b == 0:
            m.insert(0, clef.TrebleClef() if clef_name == "treble" else clef.BassClef())
            if sharps is not None:
                m.insert(0, key.KeySignature(int(sharps)))
            m.insert(0, meter.TimeSignature(bar_meter))
            if tempo_bpm is not None:
                mark = tempo.MetronomeMark(number=round(float(tempo_bpm), 2), referent=1.0)
                m.insert(0, mark)
        elif bar_meter != meter_bars[b - 1][2]:
            m.insert(0, meter.TimeSignature(bar_meter))
        full = bar_steps(*(int(x) for x in bar_meter.split("/")), spec)
        if b == 0 and spf < full:  # a pickup: the bar's end, its missing start as padding
            m.paddingLeft = (full - spf) / sq
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
    """Key signature in sharps (> 0) / flats (< 0) for ``key_sharps``: "auto" estimates it from
    ``roll`` (:func:`qbdi_utils.harmony.estimate_key`), None means no signature, an int is checked."""
    if key_sharps is None:
        return None
    if isinstance(key_sharps, str):
        if key_sharps != "auto":
            raise OptionError(f"key_sharps must be 'auto', None or an int in -7..7, got {key_sharps!r}")
        return estimate_key(roll, spec).sharps
    if not -7 <= int(key_sharps) <= 7:
        raise OptionError(f"key_sharps must be 'auto', None or an int in -7..7, got {key_sharps!r}")
    return int(key_sharps)


def _meter_bars(piece: Piece) -> list | None:
    """[(start step, steps, "N/D")] of a piece's bars when they are not the paper's 4/4 frames from
    step 0 (another meter, a meter change or a pickup), else None. A pickup bar starts at step 0."""
    spec = piece.spec
    sigs = list(piece.time_signatures)
    if all((n, d) == (4, 4) for _, n, d in sigs) and not piece.bar_offset_steps \
            and spec.steps_per_frame == bar_steps(4, 4, spec):
        return None
    T = piece.n_steps
    _, _, bar_starts, _ = bar_layout(T, sigs, piece.bar_offset_steps, spec)
    meters = bar_meters(T, sigs, piece.bar_offset_steps, spec)
    ends = list(bar_starts[1:]) + [None]
    out = []
    for start, end, m in zip(bar_starts, ends, meters):
        num, den = (int(x) for x in m.split("/"))
        end = int(start) + int(bar_steps(num, den, spec)) if end is None else int(end)
        start = max(int(start), 0)
        out.append((start, end - start, m))
    return out


def _add_roll_parts(score, roll, spec, tempo_bpm, bars, *, label, with_tempo=True, sharps=None,
                    meter_bars=None):
    """Append the staves of one roll to ``score`` (in the bars of ``meter_bars``, see
    :func:`_build_staff`, when given and ``bars`` is None); returns the list of parts added."""
    from music21 import layout, stream

    window, first_bar = _bar_window(roll, spec, bars)
    spf = spec.steps_per_frame
    n_bars = max(1, -(-window.shape[0] // spf))
    if bars is not None:
        n_bars = int(bars[1]) - int(bars[0]) + 1
        meter_bars = None
    notes = roll_notes(window, spec)
    staves = _staves_for(notes)
    part_cls = stream.PartStaff if len(staves) == 2 else stream.Part
    parts = []
    for i, (clef_name, staff_notes) in enumerate(staves):
        part = _build_staff(
            staff_notes, n_bars, first_bar, spec, clef_name=clef_name, part_cls=part_cls,
            tempo_bpm=tempo_bpm if (with_tempo and i == 0) else None, sharps=sharps, meter_bars=meter_bars,
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
    """Turn a roll into a music21 score on the roll's grid (16ths; 16ths and triplets at 12 steps per quarter).

    Notes come from :func:`roll_notes`; notes of one staff with the same onset and the same duration
    become a chord; notes that overlap otherwise go to separate voices. Notes crossing a bar line (or a
    beat, when they start off the beat) are split into tied pieces of notatable length; gaps become
    rests. On a grid with triplets (3 * 2**n steps per quarter, e.g. 12), the beats of a voice whose
    notes or rests start or end off the duple grid become 3:2 triplet groups
    (:func:`qbdi_utils.render.tuplets.triplet_windows`: quarter-note triplets over two beats,
    eighth-note triplets in a beat, 16th-note triplets in half a beat, ...), their notes of 1/3, 2/3,
    1/6 ... quarter written as tuplets with brackets. One staff (treble, or bass when everything is low)
    when all notes fit it, otherwise a braced treble/bass pair split at middle C (MIDI 60). The time
    signature is 4/4, except for a whole Piece (``bars`` None) in another meter, with meter changes or a
    pickup: then its own bars and time signatures (:func:`qbdi_utils.pianoroll.bar_layout`); key
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

    Raises:
        OptionError: ``bars`` outside the roll or malformed, a non-positive tempo, or a ``key_sharps``
            that is not "auto", None or -7..7.
        ValueError: ``roll`` is neither a roll, frames nor a Piece of this layout.

    Used in: notebooks/04_query_generation.ipynb.
    """
    from music21 import metadata, stream

    meter_bars = _meter_bars(roll) if isinstance(roll, Piece) and (spec is None or spec == roll.spec) else None
    roll, spec, tempo_bpm = unpack_roll(roll, spec, tempo_bpm)
    score = stream.Score()
    score.metadata = metadata.Metadata()
    score.metadata.title = name or ""
    score.metadata.composer = ""
    sharps = _resolve_key(key_sharps, roll, spec)
    _add_roll_parts(score, roll, spec, tempo_bpm, bars, label="", sharps=sharps, meter_bars=meter_bars)
    return score


# music21 names a part without an explicit instrument P<32 random hex digits> (I<...> for instruments)
_RANDOM_ID = re.compile(r"[PI][0-9a-f]{32}")


def to_musicxml(score) -> bytes:
    """Serialise a music21 score to MusicXML (UTF-8 bytes) with music21's writer, reproducibly.

    music21 gives every part a random id and stamps the encoding date; here the ids become P1, P2,
    ... (I1, I2, ... for instruments) in document order and the optional ``<encoding-date>`` is left
    out, so the same score gives the same bytes on every run. Nothing else differs from
    ``GeneralObjectExporter(score).parse()``.

    Args:
        score: music21 Score (e.g. from :func:`roll_to_stream`).

    Returns:
        MusicXML document as UTF-8 bytes.

    Used in: notebooks/04_query_generation.ipynb (through comparison_svg / write_musicxml).
    """
    from music21.musicxml.m21ToXml import GeneralObjectExporter, ScoreExporter

    gex = GeneralObjectExporter(score)
    exporter = ScoreExporter(gex.fromGeneralObject(score), makeNotation=gex.makeNotation)
    root = exporter.parse()
    renamed: dict[str, str] = {}
    counts = {"P": 0, "I": 0}
    for el in root.iter():
        for attr in ("id", "idref"):
            value = el.get(attr)
            if value is None or not _RANDOM_ID.fullmatch(value):
                continue
            if value not in renamed:
                counts[value[0]] += 1
                renamed[value] = f"{value[0]}{counts[value[0]]}"
            el.set(attr, renamed[value])
    for encoding in root.iter("encoding"):
        for date in encoding.findall("encoding-date"):
            encoding.remove(date)
    return exporter.asBytes()


MUSICXML_SUFFIXES = (".musicxml", ".xml")
"""Names :func:`write_musicxml` accepts (uncompressed MusicXML; ``.mxl`` would promise a zip archive)."""


def musicxml_bytes(roll, spec: RollSpec | None = None, tempo_bpm: float | None = None, bars=None,
                   name: str = "", key_sharps="auto") -> bytes:
    """A roll as the bytes of an uncompressed MusicXML file (:func:`roll_to_stream`, :func:`to_musicxml`).

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        spec: roll layout (default RollSpec()).
        tempo_bpm: quarter notes per minute (default: the Piece's, else 120).
        bars: None, or (first_bar, last_bar) 1-based inclusive.
        name: title written into the file.
        key_sharps: key signature, see :func:`roll_to_stream`.

    Returns:
        The file's bytes (the same for the same arguments on every run).

    Raises:
        OptionError: see :func:`roll_to_stream`.

    Used in: ``qbdi improvise --musicxml`` (staged in one output set with the MIDI).
    """
    score = roll_to_stream(roll, spec, tempo_bpm, bars=bars, name=name, key_sharps=key_sharps)
    return to_musicxml(score)


def write_musicxml(roll, path, spec: RollSpec | None = None, *, tempo_bpm: float | None = None,
                   force: bool = False, bars=None, name: str = "", key_sharps="auto") -> Path:
    """Write a roll as a MusicXML file that opens in MuseScore or any notation editor, atomically.

    The file appears whole or not at all (:func:`qbdi_utils.files.write_bytes`); without ``force``
    the creation is exclusive.

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        path: output ``.musicxml`` or ``.xml`` file (parent folders are created).
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
        FileSystemError: the file cannot be written (one line naming the path and the cause).
        OptionError: ``path`` does not end in .musicxml / .xml; or see :func:`roll_to_stream`.

    Used in: ``qbdi improvise --musicxml``.
    """
    path = check_suffix(path, MUSICXML_SUFFIXES, "uncompressed MusicXML")
    files.check_outputs([path], force=force)
    data = musicxml_bytes(roll, spec, tempo_bpm, bars=bars, name=name or path.stem, key_sharps=key_sharps)
    return files.write_bytes(path, data, force=force)


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


def comparison_svg(upper_roll, lower_roll, spec: RollSpec | None = None, *, bars=(4, 8),
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

    Raises:
        OptionError: ``bars``, tempo or ``key_sharps`` invalid (see :func:`roll_to_stream`), or the
            two rolls are Pieces of different layouts.
        ValueError: a roll is neither a roll, frames nor a Piece of this layout.

    Used in: notebooks/04_query_generation.ipynb (Figs. 2 and 3).
    """
    from music21 import metadata, stream

    up, spec_u, tempo_bpm = unpack_roll(upper_roll, spec, tempo_bpm)
    lo, spec_l, _ = unpack_roll(lower_roll, spec, tempo_bpm)
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

    The files appear together or not at all (:class:`qbdi_utils.files.OutputSet`); without
    ``force`` the creation is exclusive. PNG conversion is optional: ``cairosvg`` is not a
    dependency of qbdi (it needs the system cairo library); without it only the SVG is written and a
    warning says so. Notebooks show the SVG with ``IPython.display.SVG``.

    Args:
        svg: SVG document (from :func:`comparison_svg` or :func:`stream_to_svg`).
        path: output ``.svg`` file.
        force: overwrite existing files.
        png: also write ``path.with_suffix('.png')`` if cairosvg is importable.

    Returns:
        List of the paths written.

    Raises:
        OutputExistsError: an output exists and ``force`` is False.
        FileSystemError: a file cannot be written (one line naming the path and the cause).
        OptionError: ``path`` does not end in .svg.

    Used in: notebooks/04_query_generation.ipynb.
    """
    path = check_suffix(path, (".svg",), "SVG")
    cairosvg = None
    if png:
        try:
            import cairosvg  # optional
        except Exception:  # ImportError, or OSError when libcairo is missing
            import warnings

            warnings.warn("cairosvg is not installed; wrote the SVG only", stacklevel=2)
            cairosvg = None
    with files.OutputSet(force=force) as outs:
        outs.add_text(path, svg)
        if cairosvg is not None:
            data = cairosvg.svg2png(bytestring=svg.encode("utf-8"), background_color="white")
            outs.add_bytes(path.with_suffix(".png"), data)
    return outs.paths
