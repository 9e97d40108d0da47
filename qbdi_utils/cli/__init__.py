"""The ``qbdi`` command: one sub-command per module in this package.

Every sub-command module defines ``add_parser(subparsers)``, which registers its parser and sets
``func`` to a handler ``func(args) -> int``. Handlers import heavy libraries (Keras, music21) inside
themselves so ``qbdi --version`` answers at once. A :class:`~qbdi_utils.errors.QbdiError` becomes one
line on stderr and exit status 2, never a traceback; so does an ``OSError`` that escapes a command (a
safety net: writers translate their own, see :mod:`qbdi_utils.files`). Ctrl-C is one line, exit 130.
A reader that closes the pipe early (``qbdi frames F | head -1``) ends the command silently, exit 141.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from qbdi_utils import __version__
from qbdi_utils.errors import OptionError, QbdiError
from qbdi_utils.files import fs_error, ignore_sigxfsz

__all__ = ["COMMAND_MODULES", "int_option", "output_file_option", "build_parser", "main"]

# Sub-command modules, in the order `qbdi --help` lists them.
COMMAND_MODULES = ["frames", "improvise", "navigate", "train", "evaluate", "analyze", "info"]


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


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="qbdi",
        description="Query-based deep improvisation: train a style VAE, query it through a "
        "rate-limited channel, analyse what survives.",
    )
    parser.add_argument("--version", action="version", version=f"qbdi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"qbdi_utils.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qbdi`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    ignore_sigxfsz()  # past `ulimit -f` a write fails with EFBIG (one line below), not a kill
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, so that a closed pipe is seen below and not at exit
        return code
    except BrokenPipeError:
        # the reader went away (`qbdi frames ... | head -1`): not an error of ours, say nothing;
        # stdout goes to /dev/null so the interpreter's final flush does not complain either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as if killed by SIGPIPE, like other filters
    except QbdiError as exc:
        print(f"qbdi {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        action = "read" if isinstance(exc, (FileNotFoundError, IsADirectoryError)) else "access"
        msg = fs_error(exc, action=action) if exc.filename is not None else \
            f"{exc.strerror or exc} (a file-system error)"
        print(f"qbdi {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qbdi {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
