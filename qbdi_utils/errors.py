"""Errors a user can cause. Every one of them is a :class:`QbdiError`.

The CLI turns a ``QbdiError`` into one line on stderr and exit status 2; notebooks show its message.
Messages name the file (or directory) involved and say what to do about it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["QbdiError", "MidiFileError", "NoNotesError", "MeterError", "CorpusError", "ModelError",
           "OutputExistsError", "OptionError", "FileSystemError",
           "TrainingDivergedError", "MidiPortError"]


class QbdiError(Exception):
    """Base class of every error caused by user input (files, options, models)."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)


class MidiFileError(QbdiError):
    """A MIDI file is missing, empty, not MIDI, or truncated."""


class NoNotesError(QbdiError):
    """A MIDI file parsed but holds no playable (non-drum) notes."""


class MeterError(QbdiError):
    """A piece's meter is not one the caller accepts (for example 3/4 when 4/4 is required)."""


class CorpusError(QbdiError):
    """A corpus could not be assembled (no usable pieces, unknown corpus name, ...)."""


class ModelError(QbdiError):
    """A model directory is missing, not a model, corrupt, or built for another roll layout."""


class OutputExistsError(QbdiError):
    """An output would overwrite an existing file or directory and ``--force`` was not given."""


class OptionError(QbdiError):
    """An option value is out of range or inconsistent with another."""


class FileSystemError(QbdiError):
    """A file or folder could not be read or written.

    The message is one line naming the path and the cause in words: permission denied, no such
    folder, a file where a folder should be, disk full (ENOSPC), the file-size limit (EFBIG),
    a read-only file system (EROFS), ... ``errno`` holds the operating system's error number
    (None when the fault was found by a check rather than by a failed call).
    """

    errno: int | None = None


class TrainingDivergedError(OptionError):
    """Training stopped because the loss is no longer finite (NaN or infinity); nothing was saved.

    The options made the optimisation diverge (an infinite or huge ``--beta`` / ``--gamma``, a huge
    learning rate); an :class:`OptionError`, since other values of those options are the cure.
    """


class MidiPortError(QbdiError):
    """A MIDI port cannot be opened: no MIDI system (no ALSA sequencer), no port backend, or no such port."""
