"""What ``qbdi train`` says about its corpus: the files it skipped and the transposition it applied.

Imports: nothing of the package. Used in: cli/train.py.
"""

from __future__ import annotations

__all__ = ["SKIPPED_FILE", "SKIPPED_SHOWN", "skipped_table", "transposition_line"]

SKIPPED_FILE = "skipped.csv"
"""Table of skipped corpus files (columns file, reason) saved inside the model directory."""
SKIPPED_SHOWN = 20
"""Rows of the skipped-files table printed; the rest are counted ("... N more")."""


def skipped_table(skipped, shown: int = SKIPPED_SHOWN) -> str:
    """A short text table of skipped corpus files: one ``file  reason`` line each, at most ``shown``.

    Args:
        skipped: (file, reason) pairs (``Corpus.skipped``).
        shown: rows printed; the rest are summed up as ``... N more (see skipped.csv)``.

    Returns:
        The table (header line included), or "" when nothing was skipped.

    Used in: ``qbdi train``.
    """
    skipped = [(str(f), str(r)) for f, r in skipped]
    if not skipped:
        return ""
    width = min(max(len(f) for f, _ in skipped[:shown]), 40)
    lines = [f"skipped {'file':<{width}}  reason"]
    for f, r in skipped[:shown]:
        lines.append(f"  {f:<{width}}  {r}")
    if len(skipped) > shown:
        lines.append(f"  ... {len(skipped) - shown} more (all in {SKIPPED_FILE} in the model folder)")
    return "\n".join(lines)


def transposition_line(pieces, transpose: str | None) -> str:
    """What the key normalisation did to the corpus, in one line (or "" when it was off).

    Args:
        pieces: ``Corpus.pieces`` (``shift``, ``augment_shift``, ``key`` of each kept piece).
        transpose: the corpus's ``transpose`` option ("tonic", "relative" or None).

    Returns:
        e.g. ``moved every piece to tonic C (major or minor), as the model expects (keys estimated from
        the notes): 12 pieces shifted by +2 (3), 0 (5), -3 (4) semitones`` (count of pieces in brackets).

    Used in: ``qbdi train``.
    """
    if transpose is None:
        return ""
    base = [int(p.get("shift", 0)) - int(p.get("augment_shift", 0)) for p in pieces
            if int(p.get("augment_shift", 0)) == 0]
    if not base:
        return ""
    counts = {s: base.count(s) for s in sorted(set(base), reverse=True)}
    target = "tonic C (major or minor)" if transpose == "tonic" else "C major or A minor"
    shifts = ", ".join(f"{s:+d} ({n})" if s else f"0 ({n})" for s, n in counts.items())
    return (f"moved every piece to {target}, as the model expects (keys estimated from the notes): "
            f"{len(base)} piece{'s' if len(base) != 1 else ''} shifted by {shifts} semitones")
