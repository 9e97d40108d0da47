"""Bars as a user counts them: from 1, with ``bar.beat`` inside a bar (``qbdi analyze``'s motifs).

The library counts frames and bars from 0 (``dynamics.Motif.spans``, ``vmo_features.FeatureWindows``);
what the command line prints and writes counts from 1, as MusicXML, the explorer and ``nav.json`` do.
Bars are the piece's own (any meter): a chroma frame's bar and its beat within the bar come from the
analysis' :class:`qbdi_utils.vmo_features.FeatureWindows`.

Imports: dynamics, vmo_features. Used in: cli/analyze.py.
"""

from __future__ import annotations

from qbdi_utils import dynamics, vmo_features

__all__ = ["bar_position", "motif_rows", "span_text"]


def bar_position(i: int, windows: vmo_features.FeatureWindows, end: bool = False) -> str:
    """Where chroma frame ``i`` lies, as users count bars: bar 1 is the first.

    Args:
        i: a chroma frame (0-based), or, with ``end``, one past the last frame of a half-open span.
        windows: the analysis' :class:`qbdi_utils.vmo_features.FeatureWindows`.
        end: ``i`` is the end of a half-open span: name the last frame it includes.

    Returns:
        ``"3"`` (a span starting on bar 3's first beat, or ending on its last) or ``"3.2"`` (bar 3,
        frame (beat) 2).
    """
    k = int(i) - (1 if end else 0)
    bar, within, whole = int(windows.bar[k]), int(windows.within[k]), int(windows.per_bar[k])
    return f"{bar + 1}" if within == (whole - 1 if end else 0) else f"{bar + 1}.{within + 1}"


def span_text(s: int, e: int, windows: vmo_features.FeatureWindows) -> str:
    """A half-open span of chroma frames as ``bar 3``, ``bars 3-4`` or ``bars 10.2-12.1`` (bar.beat)."""
    a, b = bar_position(s, windows), bar_position(e, windows, end=True)
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
    w, u = a.windows, a.unit[:-1]
    rows = []
    for k, m in enumerate(a.motifs, 1):
        for s, e in m.spans:
            rows.append({"file": label, "motif": k, f"length_{a.unit}": m.length, "start_bar": int(w.bar[s]) + 1,
                         f"start_{u}": int(w.within[s]) + 1, "end_bar": int(w.bar[e - 1]) + 1,
                         f"end_{u}": int(w.within[e - 1]) + 1})
    return rows
