"""``--key``: the query heard in its model's corpus's key, the outputs written back in the query's.

``--key corpus`` (the default, :func:`qbdi_utils.cli.options.add_key`): :func:`hear` moves the query to
the key its model's corpus was normalised to (:func:`qbdi_utils.corpus_key.to_corpus_key`), the command
improvises on that, :func:`answer` moves each output back to the query's key for writing, and
:func:`say_key` prints the one line saying so. The fidelity line compares the moved query with the
output before it is moved back (like with like, in the corpus's key).

Imports: corpus_key. Used in: cli/improvise.py, cli/navigate.py, cli/sweep.py.
"""

from __future__ import annotations

from qbdi_utils import corpus_key

__all__ = ["answer", "hear", "say_key"]


def hear(key: str, model, query):
    """The query as the command improvises on it: ``--key corpus`` moves it to the key the model's
    corpus was normalised to, ``--key query`` keeps it.

    Args:
        key: ``--key`` ("corpus" or "query").
        model: a StyleVAE.
        query: the query Piece as read.

    Returns:
        (the query to improvise on, the :class:`qbdi_utils.corpus_key.KeyShift` -- 0 semitones for
        ``--key query`` or a model recording no transposition).

    Raises:
        ModelError: the model records a transposition this version does not know.
    """
    if key == "query":
        return query, corpus_key.KeyShift(0, None, "", "", 0)
    return corpus_key.to_corpus_key(model, query)


def answer(pieces, shift) -> tuple[list, int]:
    """Outputs made on :func:`hear`'s query moved back to the query's key, for writing.

    Args:
        pieces: the outputs (Improvisation / Navigation), in the corpus's key.
        shift: :func:`hear`'s KeyShift.

    Returns:
        (the outputs in the query's key -- the same objects when there was no shift --, notes folded
        by an octave to stay within the roll's range, summed over the outputs).
    """
    moved = [corpus_key.to_query_key(p, shift) for p in pieces]
    return [m for m, _ in moved], sum(f for _, f in moved)


def say_key(args, shift, folded_back: int = 0) -> None:
    """Print the one line saying the query was moved (nothing when it was not, or under ``--quiet``)."""
    line = corpus_key.shift_message(shift, folded_back)
    if line and not getattr(args, "quiet", False):
        print(f"key: {line}")
