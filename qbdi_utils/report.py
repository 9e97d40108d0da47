"""Results as text that stays the same from run to run: the notebooks' regression-checked cells.

The notebooks are regression tests (nbval): a cell whose first line is ``# NBVAL_CHECK_OUTPUT``
must print the same text on every execution, on any machine that retrains the default model. Such
a cell prints its numbers through this module, rounded to a number of *significant digits* that
survives BLAS and platform differences (3 by default), and prints nothing else that varies
(no timings, paths or progress bars; those go to unchecked cells).

Numbers that depend on a trained model do not keep three digits from one machine to another (the
same seed gives the same weights on one machine, but another CPU's float kernels train a slightly
different model). Those are checked against *bands*: :func:`check_bands` prints a line per quantity
that reads the same whenever the value lies in its band (``expected ± tolerance``), and shows the
value when it does not, so nbval reports the change. The bands are stated in the notebook next to
the evidence for their width.

Imports nothing of ours. Used in every notebook.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["DIGITS", "sig", "rounded", "table", "show", "within", "check_bands"]

#: Significant digits kept in checked notebook outputs.
DIGITS = 3


def sig(x, digits: int = DIGITS):
    """``x`` rounded to ``digits`` significant digits; ints, bools, strings and None pass unchanged.

    Floats come back as float; numbers that round to an integer keep a float type (``2.0``), so the
    printed text says the value was a measurement. nan and inf pass unchanged; ``-0.0`` becomes 0.0.

    Args:
        x: a number (Python or numpy scalar) or anything else.
        digits: significant digits, >= 1.

    Returns:
        The rounded value.

    Raises:
        ValueError: digits < 1.
    """
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    if isinstance(x, (bool, np.bool_)) or x is None or isinstance(x, str):
        return bool(x) if isinstance(x, np.bool_) else x
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        if not math.isfinite(v) or v == 0:
            return 0.0 if v == 0 else v
        exponent = math.floor(math.log10(abs(v)))
        r = round(v, digits - 1 - exponent)
        # a value like 0.9996 rounds up into the next decade; round again at the new exponent
        if r != 0 and math.floor(math.log10(abs(r))) != exponent:
            r = round(v, digits - 2 - exponent)
        return float(r) + 0.0
    return x


def rounded(obj, digits: int = DIGITS):
    """A copy of nested dicts / lists / tuples / numpy arrays with every float rounded by :func:`sig`.

    Arrays become (nested) lists; dict key order is kept.
    """
    if isinstance(obj, Mapping):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return rounded(obj.tolist(), digits)
    if isinstance(obj, (list, tuple)):
        return type(obj)(rounded(v, digits) for v in obj) if isinstance(obj, list) else \
            tuple(rounded(v, digits) for v in obj)
    return sig(obj, digits)


def _cell(v, digits: int) -> str:
    v = sig(v, digits)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        # plain notation, no exponent for ordinary magnitudes, and no spurious trailing digits
        text = f"{v:.{digits}g}"
        if "e" in text and 1e-4 <= abs(v) < 1e15:
            text = f"{v:f}".rstrip("0").rstrip(".")
        return text
    return str(v)


def table(rows: Sequence[Mapping] | Mapping, columns: Sequence[str] | None = None,
          digits: int = DIGITS) -> str:
    """A fixed-width plain-text table of rows (dicts), numbers to ``digits`` significant digits.

    Args:
        rows: a list of dicts (one per row), or one dict of {row label: dict}.
        columns: the columns in order (default: keys of the first row, then new keys as met).
        digits: significant digits.

    Returns:
        The table as one string (header, a rule, one line per row), columns right-aligned.
    """
    if isinstance(rows, Mapping):
        rows = [{"": k, **dict(v)} for k, v in rows.items()]
    rows = list(rows)
    if columns is None:
        columns = []
        for r in rows:
            columns += [k for k in r if k not in columns]
    cells = [[str(c) for c in columns]] + [[_cell(r.get(c, ""), digits) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(s.rjust(w) for s, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def show(label: str, value, digits: int = DIGITS) -> None:
    """Print ``label: value`` with every float in ``value`` rounded (:func:`rounded`)."""
    print(f"{label}: {rounded(value, digits)}")


def within(value, expected, tolerance) -> bool:
    """Whether ``|value - expected| <= tolerance`` (False for nan)."""
    v = float(value)
    return bool(math.isfinite(v) and abs(v - float(expected)) <= float(tolerance))


def check_bands(values: Mapping, bands: Mapping) -> str:
    """One line per band: ``name: expected ± tolerance`` when the value is in its band, else the value.

    Args:
        values: {name: measured number}.
        bands: {name: (expected, tolerance)}, the quantities to check, in print order.

    Returns:
        Text whose lines do not change while every value stays in its band; a value outside (or
        missing) prints as ``name: OUT OF BAND: value (expected ± tolerance)``.
    """
    lines = []
    for name, (expected, tol) in bands.items():
        v = values.get(name, float("nan"))
        band = f"{sig(expected)} ± {sig(tol)}"
        lines.append(f"{name}: {band}" if within(v, expected, tol)
                     else f"{name}: OUT OF BAND: {sig(v, 6)} (expected {band})")
    return "\n".join(lines)
