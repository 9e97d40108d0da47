"""Which corpus a command that uses a model reads: the one the model records, or ``--corpus``.

``qbdi train`` records its corpus (source and options) in the model (``training.record_corpus``).
``qbdi evaluate`` measures on it, ``qbdi improvise`` / ``sweep`` / ``navigate`` compare their outputs'
style with it, ``navigate --source corpus`` walks it. :func:`corpus_source` decides which source that
is and refuses a corpus that is gone in one line naming it and ``--corpus`` *before* anything is
parsed; :func:`load` reads it with the options the model was trained with.

Imports: corpus, navigate, training, errors. Used in: cli/evaluate.py, cli/outputs.py, cli/navigate.py.
"""

from __future__ import annotations

from pathlib import Path

from qbdi_utils import corpus as corpus_mod
from qbdi_utils import navigate, training
from qbdi_utils.errors import CorpusError

__all__ = ["corpus_source", "load", "training_corpus"]

_GIVE = "give it (or where it is now) with --corpus {chorales|essen|PATH}"


def corpus_source(model, given: str | None) -> tuple[str, dict]:
    """The corpus to read: ``given`` (``--corpus``) or the model's own, checked to exist (no parsing).

    Args:
        model: a StyleVAE.
        given: ``--corpus`` as typed, or None.

    Returns:
        (source, options to load it with: the model's training options when it records them).

    Raises:
        CorpusError: no ``--corpus`` and the model records none, or the recorded / given folder is gone.
    """
    rec = training.recorded_corpus(model)
    kw = rec[1] if rec else {}
    if given is not None:
        source = str(given)
    elif rec is None:
        raise CorpusError(f"the model does not record the corpus it was trained on; {_GIVE}")
    else:
        source = rec[0]
    if source not in corpus_mod.NAMED_SOURCES and not Path(source).exists():
        what = "no such corpus" if given is not None else "the corpus this model was trained on is gone"
        raise CorpusError(f"{what}; {_GIVE}", source)
    return source, kw


def load(model, given: str | None, progress: bool = False):
    """:func:`corpus_source` loaded (``corpus.load_corpus`` with the model's roll layout and options).

    Returns:
        The :class:`~qbdi_utils.corpus.Corpus`.

    Raises:
        CorpusError: as :func:`corpus_source`, or the corpus cannot be read.
    """
    source, kw = corpus_source(model, given)
    return corpus_mod.load_corpus(source, spec=model.spec, progress=progress, **kw)


def training_corpus(model, given: str | None, progress: bool = False):
    """The model's training corpus (its frames checked against the model's fingerprint), for the
    style reference and ``navigate --source corpus``.

    Raises:
        CorpusError: as :func:`corpus_source`, or the frames are not the model's training frames.
    """
    return navigate.model_corpus(model, load(model, given, progress), progress=progress)
