"""Tables as CSV text: the one CSV formatter of the package.

Writing a table to disk goes through :func:`qbdi_utils.files.write_csv` (atomic, never overwriting
without force), which formats it here; the claims and blend notebooks keep the text itself as a
regression-checked output.
"""

from __future__ import annotations

import csv
import io
from typing import Iterable

__all__ = ["csv_text"]


def csv_text(rows: Iterable, columns: list[str] | None = None, *,
             float_format: str | None = None, extra: str = "error") -> str:
    """A table as CSV text: a header line, then one line per row, ``\\n`` line ends.

    Args:
        rows: dicts (keys a subset of ``columns``; missing keys are empty cells) or sequences in
            column order.
        columns: header; default the keys of the first row (dict rows) -- required for sequence
            rows and for an empty table.
        float_format: format spec for floats, e.g. ".4f"; default ``repr`` (round-trips exactly).
        extra: what a dict row's keys outside ``columns`` do: "error" (ValueError, the default:
            a misspelt column is caught) or "ignore" (left out: rows that carry more than the
            table shows).

    Returns:
        The CSV text.

    Raises:
        ValueError: no columns can be determined, ``extra`` is unknown, or (with
            ``extra="error"``) a dict row has a key not in ``columns``.
    """
    if extra not in ("error", "ignore"):
        raise ValueError(f"extra must be 'error' or 'ignore', got {extra!r}")
    rows = list(rows)
    if columns is None:
        if not rows or not isinstance(rows[0], dict):
            raise ValueError("columns are needed for an empty table or for rows that are not dicts")
        columns = list(rows[0])

    def cell(v):
        if isinstance(v, float) or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") == "f"):
            return format(float(v), float_format) if float_format else repr(float(v))
        return v

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        if isinstance(r, dict):
            unknown = [k for k in r if k not in columns]
            if unknown and extra == "error":
                raise ValueError(f"row has keys not in the columns: {unknown}")
            r = [r.get(c, "") for c in columns]
        w.writerow([cell(v) for v in r])
    return buf.getvalue()


