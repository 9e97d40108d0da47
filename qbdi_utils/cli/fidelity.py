"""The fidelity line ``qbdi improvise`` and ``qbdi navigate`` print after a piece is written.

:func:`report_piece` prints the line (query and style side, against the corpus the model records or
``--corpus``: :func:`qbdi_utils.cli.outputs.corpus_reference`) and warns when the output is silent
or nearly so.

Imports: style, cli.messages, cli.outputs. Used in: cli/improvise.py, cli/navigate.py.
"""

from __future__ import annotations

from collections.abc import Callable

from qbdi_utils import style
from qbdi_utils.cli.messages import silence_warning, warn
from qbdi_utils.cli.outputs import corpus_reference

__all__ = ["measure", "report_piece"]


def measure(command: str, model, query, piece, *, corpus: str | None = None,
            training: Callable[[], object] | None = None) -> dict:
    """:func:`qbdi_utils.style.fidelity` of one generation against the model's corpus (warning when unknown).

    Args:
        command: the sub-command's name (for the warning).
        model: a StyleVAE.
        query: the query Piece.
        piece: the generated Piece.
        corpus: ``--corpus`` (None: the corpus the model records).
        training: :func:`qbdi_utils.cli.outputs.training_corpus_once` of the command, or None.

    Returns:
        The fidelity dict.
    """
    ref, note = corpus_reference(model, corpus, training)
    if note:
        warn(command, [note])
    return style.fidelity(query, piece, ref)


def report_piece(command: str, model, query, piece, *, corpus: str | None = None,
                 threshold: float | None = None, training: Callable[[], object] | None = None) -> None:
    """Print the fidelity line of ``piece`` and, when it is silent or nearly so, the warning saying why.

    Args:
        command, model, query, piece, corpus, training: as :func:`measure`.
        threshold: ``--threshold`` when given (named in the silence warning).
    """
    fid = measure(command, model, query, piece, corpus=corpus, training=training)
    print("fidelity: " + style.format_fidelity(fid))
    note = silence_warning(fid, piece.bits, piece.mode, threshold)
    if note:
        warn(command, [note])
