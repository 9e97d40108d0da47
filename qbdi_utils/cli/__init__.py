"""The ``qbdi`` command: one sub-command per module in this package.

Every sub-command module defines ``add_parser(subparsers)``, which registers its parser and sets
``func`` to a handler ``func(args) -> int``; options are parsed and range-checked once, by the typed
converters of :mod:`qbdi_utils.cli.values`, and the shared options are defined once in :mod:`qbdi_utils.cli.options`; every sub-command
takes ``--quiet`` (no warnings). Warnings and errors are worded for the command line
(:mod:`qbdi_utils.cli.messages`). Handlers import heavy libraries (Keras, music21) inside
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
import warnings

from qbdi_utils import __version__
from qbdi_utils.cli import options
from qbdi_utils.cli.messages import cli_terms, start_run
from qbdi_utils.errors import QbdiError
from qbdi_utils.files import fs_error, ignore_sigxfsz

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

# Sub-command modules, in the order `qbdi --help` lists them.
COMMAND_MODULES = ["frames", "improvise", "sweep", "navigate", "live", "train", "evaluate", "analyze", "info"]


def build_parser(commands: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered (``commands``: only those, in that order).

    Args:
        commands: names from :data:`COMMAND_MODULES` to register (None: all). :func:`main` registers only
            the command when the command line starts with it, so that running one command imports only its module
            (and what that imports); the parse of a valid command line, its help and its errors are the
            same as with every command registered (the top-level usage names no command: ``COMMAND``).

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        prog="qbdi",
        description="Query-based deep improvisation: train a style VAE, query it through a "
        "rate-limited channel, analyse what survives.",
    )
    parser.add_argument("--version", action="version", version=f"qbdi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES if commands is None else commands:
        importlib.import_module(f"qbdi_utils.cli.{name}").add_parser(sub)
    for command in sub.choices.values():
        options.add_quiet(command)
    return parser


def _command(argv: list[str] | None) -> str:
    """The sub-command named on the command line (the first word that is not an option)."""
    words = sys.argv[1:] if argv is None else [str(a) for a in argv]
    return next((w for w in words if not w.startswith("-")), "")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qbdi`` console script; returns the exit status."""
    words = sys.argv[1:] if argv is None else [str(a) for a in argv]
    # the command first (not `qbdi -h improvise`, whose help lists every command): only its parser
    parser = build_parser(words[:1] if words[:1] and words[0] in COMMAND_MODULES else None)
    try:  # the options' type= converters (qbdi_utils.cli.values) raise QbdiError, not ValueError
        args = parser.parse_args(argv)
    except QbdiError as exc:
        print(f"qbdi {_command(argv)}: error: {cli_terms(str(exc))}", file=sys.stderr)
        return 2
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    ignore_sigxfsz()  # past `ulimit -f` a write fails with EFBIG (one line below), not a kill
    with warnings.catch_warnings():  # the run's warning hook (start_run) ends with the run
        start_run(args.command, args.quiet)
        return _run(args)


def _run(args) -> int:
    """Run the parsed command; its faults become one line on stderr and an exit status."""
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
        print(f"qbdi {args.command}: error: {cli_terms(str(exc))}", file=sys.stderr)
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
