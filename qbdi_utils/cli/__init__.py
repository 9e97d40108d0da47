"""The ``qbdi`` command: one sub-command per module in this package.

Every sub-command module defines ``add_parser(subparsers)``, which registers its parser and sets
``func`` to a handler ``func(args) -> int``. Handlers import heavy libraries (Keras, music21) inside
themselves so ``qbdi --version`` answers at once. A :class:`~qbdi_utils.errors.QbdiError` becomes one
line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from qbdi_utils import __version__
from qbdi_utils.errors import OptionError, QbdiError

# Sub-command modules, in the order `qbdi --help` lists them.
COMMAND_MODULES = ["frames", "improvise", "train", "analyze", "info"]


def int_option(name: str, value: str, minimum: int) -> int:
    """Parse a whole-number option, raising OptionError (one stderr line) instead of argparse's usage dump."""
    try:
        v = int(str(value).strip())
    except ValueError:
        raise OptionError(f"{name} {value!r} is not a whole number") from None
    if v < minimum:
        raise OptionError(f"{name} {v} must be at least {minimum}")
    return v


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
    try:
        return int(args.func(args) or 0)
    except QbdiError as exc:
        print(f"qbdi {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qbdi {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
