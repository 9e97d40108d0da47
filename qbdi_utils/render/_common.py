"""What the render stacks share: reading their roll argument, the note list, and writing outputs.

* :func:`unpack_roll` turns the ``roll`` argument every render function takes (a roll, frames, one frame
  or a :class:`~qbdi_utils.pianoroll.Piece`) into ``(roll, spec, tempo_bpm)``; the shape check is
  :func:`qbdi_utils.pianoroll.as_roll` (ValueError), the tempo check is an OptionError (a user types it).
* :func:`roll_notes` is the notes of such a roll as an (n, 3) array, read by the package's one note
  reader :func:`qbdi_utils.pianoroll.roll_to_notes`.
* :func:`check_suffix`: an output's name must say what the writer produces (``x.mp3`` gets no WAV
  data). The writing itself is :mod:`qbdi_utils.files` (atomic, exclusive unless ``force``).

Used in: qbdi_utils.render.notation, qbdi_utils.render.audio, qbdi_utils.render.plots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qbdi_utils.errors import OptionError
from qbdi_utils.pianoroll import Piece, RollSpec, as_roll, roll_to_notes

__all__ = ["check_suffix", "roll_notes", "unpack_roll"]


def unpack_roll(roll, spec, tempo_bpm):
    """The roll argument of a render function: a roll, frames or a Piece -> (roll (T, C) array, spec, tempo_bpm float).

    A Piece supplies the spec and tempo when they are not given.

    Args:
        roll: (T, C) roll, (N, frame_size) frames, one frame, or a Piece.
        spec: roll layout, or None (the Piece's, else RollSpec()).
        tempo_bpm: tempo, or None (the Piece's, else 120).

    Returns:
        (roll (T, C) uint8, spec, tempo_bpm float).

    Raises:
        OptionError: the tempo is not positive.
        ValueError: ``roll`` has no roll / frames shape for the spec (:func:`pianoroll.as_roll`).
    """
    if isinstance(roll, Piece):
        spec = roll.spec if spec is None else spec
        if tempo_bpm is None:
            tempo_bpm = roll.tempo_bpm
    spec = RollSpec() if spec is None else spec
    tempo_bpm = 120.0 if tempo_bpm is None else float(tempo_bpm)
    if not tempo_bpm > 0:
        raise OptionError(f"tempo must be positive, got {tempo_bpm} bpm; pass e.g. tempo_bpm=120")
    return as_roll(roll, spec), spec, tempo_bpm


def roll_notes(roll, spec: RollSpec | None = None) -> np.ndarray:
    """The notes of a roll as an array (:func:`qbdi_utils.pianoroll.roll_to_notes`, lenient).

    A note of pitch ``p`` starts where ``articulate[p]`` is on or where ``play[p]`` switches on
    without an articulation, and lasts while ``play[p]`` stays on with no new articulation.

    Args:
        roll: (T, spec.n_columns) array, nonzero = on; or frames (N, spec.frame_size), or a Piece.
        spec: roll layout (default RollSpec(); a Piece's own spec when a Piece is given).

    Returns:
        (n, 3) int64 array of (midi_pitch, start_step, end_step) with end exclusive, sorted by start
        step, then pitch.

    Raises:
        ValueError: ``roll`` is neither a roll, frames nor a Piece of this layout.

    Used in: notebooks/04_query_generation.ipynb (through the rendering functions).
    """
    roll, spec, _ = unpack_roll(roll, spec, None)
    return np.asarray(roll_to_notes(roll, spec), dtype=np.int64).reshape(-1, 3)


def check_suffix(path, suffixes: tuple[str, ...], what: str, option: str | None = None) -> Path:
    """Refuse an output name whose suffix is not one of ``suffixes`` (compared case-insensitively).

    Args:
        path: the output file.
        suffixes: allowed suffixes with their dot, the first one is suggested, e.g. (".wav",).
        what: what the writer produces, for the message ("WAV audio").
        option: the CLI option that named the file (e.g. "--wav"), for the message; None in the API.

    Returns:
        ``path`` as a Path.

    Raises:
        OptionError: the suffix is not allowed (one line naming the path and what to name it).

    Used in: :func:`qbdi_utils.render.write_wav`, :func:`qbdi_utils.render.write_musicxml`,
    :func:`qbdi_utils.render.save_svg`, ``qbdi improvise``.
    """
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        names = " or ".join(suffixes)
        who = f"{option} {path}" if option else str(path)
        raise OptionError(f"{who}: writes {what} only; give the file a {names} name")
    return path
