"""What ``qbdi train`` says: about its corpus (its size, the files it skipped, the transposition it
applied) and about the model it saved (the validation and held-out test numbers).

Imports: cli.messages (cli_terms). Used in: cli/train.py.
"""

from __future__ import annotations

from qbdi_utils.cli.messages import cli_terms

__all__ = ["SKIPPED_FILE", "SKIPPED_SHOWN", "skipped_table", "transposition_line", "corpus_lines", "model_lines"]

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


def corpus_lines(corpus) -> list[str]:
    """What ``qbdi train`` prints (on stderr) about the corpus it loaded: its size and the cache's share,
    the skipped files' table, the transposition.

    Args:
        corpus: the loaded :class:`~qbdi_utils.corpus.Corpus`.

    Returns:
        The lines (each may span several text lines), empty parts left out.

    Used in: ``qbdi train``.
    """
    ing = corpus.ingest
    lines = [f"corpus: {corpus.n_frames} frames from {len(corpus.piece_names)} pieces "
             f"({len(corpus.skipped)} skipped; {ing.get('parsed', 0)} files parsed, "
             f"{ing.get('reused', 0)} from the cache)"]
    table = skipped_table(corpus.skipped)
    if table:
        lines.append(cli_terms(table))
    moved = transposition_line(corpus.pieces, corpus.options.get("transpose"))
    if moved:
        lines.append(moved)
    return lines


def model_lines(model, out, gamma: float) -> list[str]:
    """What ``qbdi train`` prints (on stdout) about the model it saved: the split, the validation
    numbers (where the threshold was chosen), the held-out test numbers, the predictor head's term.

    Args:
        model: the trained StyleVAE (``info``, ``threshold``, ``has_predictor``).
        out: the model folder it was saved to.
        gamma: the --gamma it was trained with.

    Returns:
        The lines.

    Used in: ``qbdi train``.
    """
    i = model.info
    lines = [
        f"saved {out} ({i['n_train']} training / {i['n_validation']} validation / "
        f"{i['n_test']} test frames, {i['train_seconds']:.1f} s)",
        f"validation: R = {i['validation_r_nats']:.2f}, D = {i['validation_d_nats']:.2f} nats/frame, "
        f"note F1 = {i['validation_f1']:.3f}; threshold {model.threshold:.2f} chosen here",
        f"held-out test: R = {i['test_r_nats']:.2f} nats/frame, D = {i['test_d_nats']:.2f} "
        f"nats/frame, note F1 = {i['test_f1']:.3f} (precision {i['test_precision']:.3f}, "
        f"recall {i['test_recall']:.3f}) at threshold {model.threshold:.2f}",
    ]
    if model.has_predictor:
        lines.append(f"predictor head: test CE(x_t+1 | z_t) term = {i['test_p_nats']:.2f} nats/frame "
                     f"(gamma = {gamma}); measure it with `qbdi evaluate --model {out}`")
    return lines
