"""MIDI <-> piano roll <-> frames: the paper's representation (PAPER.md section 2). Notebook 01.

A roll has one row per time step and a *play* and an *articulate* plane per pitch; the layout
(:class:`RollSpec`) and what makes a roll valid are described in :mod:`~qbdi_utils.pianoroll.roll`.

A frame is ``spec.steps_per_frame`` = 16 consecutive rows flattened row-major, so
``frame.reshape(16, 156)`` gives the rows back. A piece is cut into frames at its own bar lines, in
any meter (:func:`bar_layout`, :func:`cut_bars`, :func:`piece_bars`; issue 25): a bar of at most 16
steps is one frame padded with silence at its end (a 3/4 bar fills 12 rows), a longer bar is split at
its beats (dotted beats in compound meters: 12/8 as 12 + 12 steps, 5/4 as 12 + 8, 3/2 as 16 + 8), each
frame carrying its valid length; :func:`join_bars` is the inverse.

MIDI files at the byte level (the chunk parser, the merge of tracks into notes in ticks, the type-0
writer of one or more tracks) are :mod:`qbdi_utils.midifile`; :func:`read_midi` and :func:`midi_bytes` turn those notes
into rolls and back.

The package: :mod:`~qbdi_utils.pianoroll.roll` (the roll and its layout: RollSpec, Piece, Note, the
roll contract, valid rolls, notes <-> roll, transposition, pitch classes, the frames fingerprint),
:mod:`~qbdi_utils.pianoroll.reading` (MIDI -> Piece: tempo and signature maps, pickups, the meter
check), :mod:`~qbdi_utils.pianoroll.writing` (roll -> MIDI: velocities, track layouts, bytes, files),
:mod:`~qbdi_utils.pianoroll.bars` (bars as frames in any meter, frames <-> roll and Piece). The
submodules import in one direction: roll <- bars <- reading, roll <- writing. This ``__init__`` is the
documented home of the names below (``from qbdi_utils import pianoroll``; ``pianoroll.read_midi(...)``).

Imports: its submodules.
Used in: corpus, model, training, improvise, navigate, render, style, the CLI, notebooks 01-07.
"""

from qbdi_utils.pianoroll.bars import (BarFrames, bar_layout, bar_meters, bar_steps, beat_steps, cut_bars,
                                       from_frames, is_compound, join_bars, marked_signatures, piece_bars,
                                       piece_from_frames, piece_to_frames, to_frames)
from qbdi_utils.pianoroll.reading import read_midi
from qbdi_utils.pianoroll.roll import (MAX_STEPS, Note, Piece, RollSpec, as_frames, as_roll, binarize,
                                       frames_digest, is_valid_roll, make_valid, notes_to_roll,
                                       pitch_class_histogram, roll_to_notes, split_planes, transpose_roll)
from qbdi_utils.pianoroll.writing import (DEFAULT_VELOCITY, TRACK_LAYOUTS, midi_bytes, note_velocities, top_voice,
                                          write_midi)

__all__ = [
    "RollSpec", "Piece", "Note", "MAX_STEPS",
    "as_roll", "as_frames", "split_planes", "is_valid_roll", "make_valid", "binarize",
    "roll_to_notes", "notes_to_roll", "read_midi", "write_midi", "midi_bytes", "bar_steps",
    "DEFAULT_VELOCITY", "TRACK_LAYOUTS", "top_voice", "note_velocities",
    "to_frames", "from_frames", "piece_to_frames", "piece_from_frames", "transpose_roll",
    "BarFrames", "is_compound", "beat_steps", "bar_layout", "bar_meters", "cut_bars", "join_bars", "piece_bars",
    "marked_signatures",
    "pitch_class_histogram", "frames_digest",
]
