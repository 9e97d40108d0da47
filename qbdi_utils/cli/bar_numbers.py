"""Bars as a user counts them: from 1, with ``bar.beat`` inside a bar (``qbdi analyze``'s motifs).

The library counts frames and bars from 0 (``dynamics.Motif.spans`` / ``bar_spans``); what the command
line prints and writes counts from 1, as MusicXML, the explorer and ``nav.json`` do.

Imports: dynamics. Used in: cli/analyze.py.
"""

from __future__ import annotations

from qbdi_utils import dynamics

__all__ = ["bar_position", "motif_rows", "span_text"]


def bar_position(x: float, per_bar: float, end: bool = False) -> str:
    """A position in bars (0-based, as ``Motif.bar_spans``) as users count it: bar 1 is the first.

    Args:
        x: position in bars from the start, 0-based (e.g. 2.25 = a quarter into the third bar).
        per_bar: feature frames per bar (4 beats, or 1 frame).
        end: ``x`` is the end of a half-open span: name the last frame it includes.

    Returns:
        ``"3"`` (a whole bar) or ``"3.2"`` (bar 3, frame (beat) 2).
    """
    frame = round(x * per_bar) - (1 if end else 0)
    bar, within = divmod(frame, int(per_bar))
    return f"{bar + 1}" if within == (int(per_bar) - 1 if end else 0) else f"{bar + 1}.{within + 1}"


def span_text(s: float, e: float, per_bar: float) -> str:
    """A half-open span in bars (0-based) as ``bar 3``, ``bars 3-4`` or ``bars 10.2-12.1`` (bar.beat)."""
    a, b = bar_position(s, per_bar), bar_position(e, per_bar, end=True)
    return f"bar {a}" if a == b else f"bars {a}-{b}"


def motif_rows(label: str, a: dynamics.Analysis) -> list[dict]:
    """The rows of ``motifs.csv`` for one file: one per occurrence, where it starts and where its last
    frame (beat) lies, as bar and beat (or frame) within the bar, both counted from 1.

    Args:
        label: the file's label (the ``file`` column).
        a: its :class:`qbdi_utils.dynamics.Analysis`.

    Returns:
        dicts with file, motif, length_<unit>, start_bar, start_<unit>, end_bar, end_<unit>.
    """
    per, u = a.frames_per_bar, a.unit[:-1]
    rows = []
    for k, m in enumerate(a.motifs, 1):
        for s, e in m.spans:
            (sb, sf), (eb, ef) = divmod(s, int(per)), divmod(e - 1, int(per))
            rows.append({"file": label, "motif": k, f"length_{a.unit}": m.length, "start_bar": sb + 1,
                         f"start_{u}": sf + 1, "end_bar": eb + 1, f"end_{u}": ef + 1})
    return rows
