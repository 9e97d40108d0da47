"""The checks of a command's input paths and outputs, made before any work (so a refusal costs nothing).

``--model`` and ``--query`` exist and are what they should be (:func:`check_inputs`); an output file
option names a file (:func:`output_file_option`); outputs are distinct and nothing is in the way
unless ``--force`` (:func:`check_outputs`, :func:`check_out_dir`).

Imports: errors, files, limits, model. Used in: cli/outputs.py and the sub-commands.
"""

from __future__ import annotations

import os
from pathlib import Path

from qbdi_utils import files, limits
from qbdi_utils.errors import FileSystemError, MidiFileError, ModelError, OptionError, OutputExistsError
from qbdi_utils.model import WEIGHTS_FILE

__all__ = ["check_inputs", "check_out_dir", "check_outputs", "output_file_option"]


def output_file_option(name: str, value: str) -> Path:
    """An output file option as a Path, refusing what would not be a file name.

    ``''`` (which would become the current folder) and names ending in a path separator (a folder,
    which would otherwise become a file of that name) are refused.

    Args:
        name: the option as typed ("--out").
        value: its text.

    Returns:
        The path.

    Raises:
        OptionError: empty, or ends in a separator.
    """
    text = str(value)
    if not text.strip():
        raise OptionError(f"{name} is empty; give a file name")
    if text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise OptionError(f"{name} {text} names a folder; give a file name")
    return Path(text)





def check_inputs(model_dir: str | None, query: str) -> tuple[Path | None, Path]:
    """``--model`` (None: the default model) and ``--query`` as Paths, checked before any work.

    Raises:
        ModelError: --model is missing or a file.
        MidiFileError: --query is missing or a folder.
    """
    m, q = (None if model_dir is None else Path(model_dir)), Path(query)
    if m is None:
        pass  # the default model; training.default_model() loads or trains it
    elif not m.exists():
        raise ModelError("no such model directory; train one with `qbdi train` or pass --model DIR", m)
    elif not m.is_dir():
        raise ModelError("is a file, not a model directory; pass the directory a model was saved to", m)
    if not q.exists():
        raise MidiFileError("no such query file; pass an existing .mid file to --query", q)
    if q.is_dir():
        raise MidiFileError("is a directory; pass a .mid file to --query", q)
    limits.check_regular(q, MidiFileError, "a .mid file to --query", "QBDI_MAX_MIDI_BYTES")
    if m is not None and os.path.lexists(m / WEIGHTS_FILE):
        limits.check_regular(m / WEIGHTS_FILE, ModelError, "the weights written by `qbdi train`",
                             "QBDI_MAX_MODEL_BYTES")
    return m, q


def check_outputs(paths, *, force: bool, names: str = "--out, --musicxml and --wav") -> list:
    """The "exists / --force" check of a set of output files: distinct names, nothing in the way
    unless ``force`` (:func:`qbdi_utils.files.check_outputs`; the commit is exclusive again).

    Args:
        paths: output Paths (None entries are skipped).
        force: --force was given.
        names: the options named when two paths coincide.

    Returns:
        The given paths (None entries dropped).

    Raises:
        OptionError: two outputs name the same file.
        OutputExistsError / FileSystemError: as ``files.check_outputs``.
    """
    given = [p for p in paths if p is not None]
    absolute = [os.path.abspath(p) for p in given]
    if len(set(absolute)) != len(absolute):
        raise OptionError(f"{names} (and files written beside --out) must name different files")
    files.check_outputs(given, force=force)
    return given


def check_out_dir(value: str, *, force: bool, fill: bool = False) -> Path:
    """The "exists / --force" check of an output folder.

    Args:
        value: --out as typed.
        force: --force was given.
        fill: the command writes files INTO the folder, which may exist (``qbdi sweep``); otherwise
            the folder is replaced whole (``qbdi train``: :func:`qbdi_utils.files.check_dir_output`).

    Returns:
        The folder as a Path.

    Raises:
        OptionError: --out is empty.
        FileSystemError: --out is a file.
        OutputExistsError: --out is a non-empty folder and ``force`` is false.
    """
    if not fill:
        return files.check_dir_output(value, force=force)
    if not str(value).strip():
        raise OptionError("--out is empty; give a folder name")
    out = Path(value)
    if os.path.lexists(out) and not out.is_dir():
        raise FileSystemError("cannot write: is a file, not a folder; give a folder for --out", out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputExistsError("exists and is not empty; pass --force to write into it", out)
    return out
