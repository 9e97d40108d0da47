"""The typed values of ``qbdi`` options: argparse ``type=`` converters that parse and range-check once.

These are the generic ones (whole numbers, numbers, probabilities, sizes); the converters of the
shared musical options (``--bits``, ``--stats``, ``--meter``) sit beside them in
:mod:`qbdi_utils.cli.options`. A converter raises
:class:`~qbdi_utils.errors.OptionError`, not ``ValueError``: argparse lets it through, and
:func:`qbdi_utils.cli.main` prints it as one line on stderr with exit status 2 (never argparse's
usage dump, never a traceback). The options themselves are defined in :mod:`qbdi_utils.cli.options`;
the checks of paths and outputs are :mod:`qbdi_utils.cli.checks`.

Imports: errors. Used in: cli/options.py and the sub-commands' own options.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from qbdi_utils.errors import OptionError

__all__ = [
    "MAX_SEED", "SEED_WHY", "int_option", "nonnegative_float", "parse_size", "probability", "whole_number",
]

MAX_SEED = 2**32 - 1
"""Largest --seed of every sub-command (numpy seeds are 32-bit words here, so larger ones would only alias)."""
SEED_WHY = "a seed is a 32-bit number"
"""What the --seed bound protects (appended to the too-large message)."""


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
