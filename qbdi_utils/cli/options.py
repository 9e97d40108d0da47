"""One definition per option of the ``qbdi`` command: typed converters and the options the sub-commands share.

Every option is parsed and range-checked once, by an argparse ``type=`` converter that calls the
library's own validation (``improvise.parse_bits``, ``improvise.check_stats_mode``,
``navigate.check_continuity``, ...), so limits and defaults live in one place. A converter raises
:class:`~qbdi_utils.errors.OptionError`, not ``ValueError``: argparse lets it through, and
:func:`qbdi_utils.cli.main` prints it as one line on stderr with exit status 2 (never argparse's
usage dump, never a traceback).

The shared options (``--model``, ``--query``, ``--out``, ``--force``, ``--seed``, ``--bits``,
``--stats``, ``--continuity``) are added by the ``add_*`` functions below, and the
"exists / --force" check of every output is :func:`check_outputs` / :func:`check_out_dir`.

Imports: errors, files, improvise, navigate. Used in: every ``qbdi_utils/cli/*.py``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

from qbdi_utils import files, limits
from qbdi_utils.errors import FileSystemError, MidiFileError, ModelError, OptionError, OutputExistsError
from qbdi_utils.improvise import STATS_MODES, check_stats_mode, parse_bits
from qbdi_utils.model import WEIGHTS_FILE
from qbdi_utils.navigate import DEFAULT_CONTINUITY, check_continuity

__all__ = [
    "MAX_BITS", "MAX_SEED", "SEED_WHY", "add_bits", "add_continuity", "add_force", "add_model", "add_query",
    "add_seed", "add_stats", "bits_option", "check_inputs", "check_out_dir", "check_outputs", "int_option",
    "nonnegative_float", "output_file_option", "parse_size", "probability", "stats_option", "whole_number",
]

MAX_SEED = 2**32 - 1
"""Largest --seed of every sub-command (numpy seeds are 32-bit words here, so larger ones would only alias)."""
SEED_WHY = "a seed is a 32-bit number"
"""What the --seed bound protects (appended to the too-large message)."""
MAX_BITS = 1_000_000
"""Largest --bits: far above any model's full-rate information (a few thousand bits per frame)."""


# ---------------------------------------------------------------------------------- converters


def int_option(name: str, value: str, minimum: int, maximum: int | None = None, why: str = "") -> int:
    """Parse a whole-number option in ``[minimum, maximum]``, raising OptionError (one stderr line).

    Args:
        name: the option as typed ("--seed").
        value: its text.
        minimum: smallest allowed value.
        maximum: largest allowed value (None: no bound).
        why: appended to the too-large message (what the bound protects, what to do instead).

    Returns:
        The value.

    Raises:
        OptionError: not a whole number, or out of range (instead of argparse's usage dump or a
            traceback further down).
    """
    text = str(value).strip()
    try:
        v = int(text)
    except ValueError:
        raise OptionError(f"{name} {value!r} is not a whole number") from None
    if v < minimum:
        raise OptionError(f"{name} {v} must be at least {minimum}")
    if maximum is not None and v > maximum:
        shown = text if len(text) <= 30 else text[:12] + "..." + f" ({len(text)} digits)"
        raise OptionError(f"{name} {shown} is more than {maximum}" + (f"; {why}" if why else ""))
    return v


def whole_number(name: str, minimum: int, maximum: int | None = None, why: str = "") -> Callable[[str], int]:
    """An argparse ``type=`` converter: :func:`int_option` for the option ``name``.

    Args:
        name: the option as typed ("--epochs").
        minimum, maximum, why: as :func:`int_option`.

    Returns:
        ``convert(text) -> int``, raising OptionError.
    """
    def convert(text: str) -> int:
        return int_option(name, text, minimum, maximum, why)

    return convert


def nonnegative_float(name: str) -> Callable[[str], float]:
    """An argparse ``type=`` converter of a finite number >= 0 (``--beta``, ``--gamma``).

    Args:
        name: the option as typed.

    Returns:
        ``convert(text) -> float``, raising OptionError (not a number, negative, not finite).
    """
    def convert(text: str) -> float:
        try:
            v = float(str(text).strip())
        except ValueError:
            raise OptionError(f"{name} {text!r} is not a number") from None
        if not (math.isfinite(v) and v >= 0):
            raise OptionError(f"{name} {text} must be a finite number >= 0")
        return v

    return convert


def probability(name: str, *, open_interval: bool = True) -> Callable[[str], float]:
    """An argparse ``type=`` converter of a number strictly between 0 and 1 (``--threshold``).

    Args:
        name: the option as typed.
        open_interval: only (0, 1) is accepted (the one use so far).

    Returns:
        ``convert(text) -> float``, raising OptionError.
    """
    def convert(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise OptionError(f"{name} {text!r} is not a number") from None
        if not 0.0 < v < 1.0:
            raise OptionError(f"{name} {v} must lie strictly between 0 and 1")
        return v

    return convert


def bits_option(value: str) -> int | None:
    """``--bits`` as None (full rate) or a whole number of bits per frame, at most :data:`MAX_BITS`.

    Args:
        value: "full" or a whole number (``improvise.parse_bits`` reads it).

    Returns:
        None or the bits per frame.

    Raises:
        OptionError: not a budget, or more than MAX_BITS.
    """
    bits = parse_bits(value)
    if bits is not None and bits > MAX_BITS:
        shown = value.strip() if len(value.strip()) <= 30 else f"({len(value.strip())} digits)"
        raise OptionError(f"--bits {shown} is more than {MAX_BITS} bits per frame; "
                          "for an unconstrained channel pass --bits full")
    return bits


def stats_option(value: str) -> str:
    """``--stats``: one of :data:`qbdi_utils.improvise.STATS_MODES` (checked by the library).

    Raises:
        OptionError: another word (the message names the option).
    """
    try:
        return check_stats_mode(value)
    except OptionError:
        raise OptionError(f"--stats {value!r} is not one of {', '.join(STATS_MODES)}") from None


def parse_size(name: str, value: str) -> int:
    """Parse a byte size such as ``8G``, ``500M``, ``64k`` or ``1000000`` (powers of 1024), > 0.

    Args:
        name: the option as typed.
        value: its text.

    Returns:
        The size in bytes.

    Raises:
        OptionError: not a size, or not positive (one stderr line).
    """
    text = str(value).strip().upper().removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    mult = scale.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in scale else text
    try:
        v = float(number)
    except ValueError:
        raise OptionError(f"{name} {value!r} is not a size (e.g. 8G, 500M, 64K)") from None
    if not (math.isfinite(v) and v * mult >= 1):
        raise OptionError(f"{name} {value} must be a positive size")
    return int(v * mult)


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


# ------------------------------------------------------------------------------ shared options


def add_model(parser, *, required: bool = False, help: str | None = None) -> None:
    """``--model MODEL_DIR``: a saved StyleVAE (optional: the default model)."""
    parser.add_argument("--model", required=required, default=None, metavar="MODEL_DIR",
                        help=help or "directory of a saved StyleVAE (default: the notebooks' default model, "
                        "models/default, trained on the chorales on first use)")


def add_query(parser) -> None:
    """``--query FILE.mid`` (required)."""
    parser.add_argument("--query", required=True, metavar="FILE.mid", help="query MIDI file")


def add_force(parser, help: str = "overwrite existing outputs") -> None:
    """``--force``: replace (or write into) what exists."""
    parser.add_argument("--force", action="store_true", help=help)


def add_seed(parser, help: str = "seed of the channel noise (default 0)", default: int = 0) -> None:
    """``--seed S``: a whole number in 0..:data:`MAX_SEED`."""
    parser.add_argument("--seed", type=whole_number("--seed", 0, MAX_SEED, SEED_WHY), default=default,
                        metavar="S", help=help)


def add_bits(parser, *, required: bool, help: str) -> None:
    """``--bits {full|N}``: a bit budget per frame (:func:`bits_option`); not required: full rate."""
    parser.add_argument("--bits", type=bits_option, required=required, default=None, metavar="{full|N}",
                        help=help)


def add_stats(parser, *, default: str = "query", help: str = "channel source statistics (default: query)") -> None:
    """``--stats MODE``: the channel's source statistics (default query; ``qbdi live``: corpus)."""
    parser.add_argument("--stats", type=stats_option, default=default, metavar="{" + "|".join(STATS_MODES) + "}",
                        help=help)


def add_continuity(parser, help: str) -> None:
    """``--continuity P``: probability in [0, 1] of playing the next bar (``navigate.check_continuity``);
    None when not given (its default, :data:`qbdi_utils.navigate.DEFAULT_CONTINUITY`, is the library's)."""
    parser.add_argument("--continuity", type=check_continuity, default=None, metavar="P",
                        help=f"{help} (default {DEFAULT_CONTINUITY:g})")


# ------------------------------------------------------------------------------ input / output checks


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
