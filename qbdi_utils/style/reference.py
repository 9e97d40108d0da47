"""The corpus side, once per model, and the fidelity line: the descriptors of the model's test pieces
(cached on disk), the masks of its training / validation / test pieces, and :func:`fidelity`, the
query side and the style side of one generation.

Imports: files, harmony, paths, pianoroll, errors, style.descriptors.
Used in: style.classifier; through :mod:`qbdi_utils.style`: explore, blend, cli (improvise, navigate,
sweep), notebooks/08_blend.ipynb, tests/test_style.py.
"""

from __future__ import annotations

import hashlib
import json
from typing import Mapping

import numpy as np

from qbdi_utils import files, harmony, paths, pianoroll
from qbdi_utils.errors import ModelError
from qbdi_utils.pianoroll import Piece
from qbdi_utils.style.descriptors import BarDescriptors, bar_descriptors, frames_descriptors, style_fit_corpus, style_fit_query

__all__ = [
    "FIDELITY_KEYS",
    "corpus_reference",
    "split_masks",
    "fidelity",
    "format_fidelity",
]

#: Keys of :func:`fidelity`, in print order.
FIDELITY_KEYS = ("chroma_cosine", "triad_agreement", "style_fit_corpus", "style_fit_query",
                 "onsets_per_bar", "corpus_onsets_per_bar", "empty_bar_rate",
                 "sounding_per_bar", "query_sounding_per_bar", "corpus_sounding_per_bar",
                 "note_length", "query_note_length", "corpus_note_length")

#: Pieces of other styles in music21's corpus for the style classifier (none is a shipped query;

_REF_CACHE_VERSION = 2  # 2: BarDescriptors.sounding


def _test_groups(model) -> list[int]:
    info = getattr(model, "info", None) or {}
    groups = info.get("test_groups") or info.get("validation_groups")
    if not groups:
        raise ModelError("the model records no held-out pieces (test_groups); models trained by "
                         "`qbdi train` on a corpus do, retrain it")
    return [int(g) for g in groups]


def corpus_reference(model, corpus) -> BarDescriptors:
    """Descriptors of the bars of the model's test pieces, cached on disk per model.

    The cache file (``cache_dir()/style/reference-<fingerprint>-<hash>.npz``) is keyed by the
    model's training-frame fingerprint and its test pieces, so a model's reference is computed once;
    later calls read a few kilobytes and never load the corpus.

    Args:
        model: a StyleVAE with ``info["test_groups"]`` (falls back to ``validation_groups``).
        corpus: the model's training :class:`~qbdi_utils.corpus.Corpus` (``frames``, ``piece_index``),
            or a callable returning it, called only when the cache misses
            (e.g. ``lambda: navigate.model_corpus(model)``).

    Returns:
        :class:`BarDescriptors` of the test pieces' bars.

    Raises:
        ModelError: the model records no held-out pieces.

    Used in: notebooks/08_blend.ipynb, the fidelity line of the CLI.
    """
    groups = _test_groups(model)
    key = hashlib.sha256(json.dumps([_REF_CACHE_VERSION, model.fingerprint, groups,
                                     model.spec.to_dict()]).encode()).hexdigest()[:12]
    path = paths.cache_dir() / "style" / f"reference-{model.fingerprint or 'nofp'}-{key}.npz"
    if path.is_file():
        try:
            return BarDescriptors.from_npz_bytes(path.read_bytes())
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file: compute again
    c = corpus() if callable(corpus) else corpus
    mask = np.isin(np.asarray(c.piece_index), groups)
    ref = frames_descriptors(np.asarray(c.frames)[mask], model.spec, groups=np.asarray(c.piece_index)[mask])
    try:
        files.write_bytes(path, ref.to_npz_bytes(), force=True)
    except Exception:  # a read-only cache only costs the recomputation
        pass
    return ref


def split_masks(model, corpus) -> dict:
    """Boolean masks over a corpus's frames: the model's training, validation and test pieces.

    Args:
        model: a StyleVAE with ``info["validation_groups"]`` and ``info["test_groups"]``.
        corpus: its training Corpus (``piece_index``).

    Returns:
        {"train": (N,) bool, "validation": (N,) bool, "test": (N,) bool}.

    Raises:
        ModelError: the model records no held-out pieces.

    Used in: :func:`classifier_sets`, notebooks/08_blend.ipynb.
    """
    info = getattr(model, "info", None) or {}
    val, test = info.get("validation_groups"), info.get("test_groups")
    if not val or not test:
        raise ModelError("the model records no validation / test pieces; retrain it with `qbdi train`")
    pidx = np.asarray(corpus.piece_index)
    v, t = np.isin(pidx, val), np.isin(pidx, test)
    return {"train": ~(v | t), "validation": v, "test": t}


def fidelity(query: Piece, output: Piece, corpus_ref: BarDescriptors | None,
             query_ref: BarDescriptors | None = None) -> dict:
    """Both sides of a generation: query fidelity and style fidelity, bar by bar on the query's bar lines.

    Query side: :func:`qbdi_utils.harmony.frame_agreement` of the bar chroma (chroma cosine, triad
    agreement). Style side: :func:`style_fit_corpus`, :func:`style_fit_query`, the output's onsets
    per bar against the corpus's, its empty-bar rate, and how long its notes are held beside the
    query's and the corpus's: sounding cells per bar (pitches sounding, summed over the bar's steps)
    and mean note length in steps (over all notes). Onsets alone hide notes cut short.

    Args:
        query: the query Piece.
        output: a generation as long as the query (same spec), e.g. an Improvisation.
        corpus_ref: :func:`corpus_reference` of the model; None when the model's corpus is unknown
            (``style_fit_corpus`` and ``corpus_onsets_per_bar`` are then nan).
        query_ref: the query's :func:`bar_descriptors` (computed when None).

    Returns:
        dict with exactly the keys :data:`FIDELITY_KEYS` (floats; a mean over no bars or no notes
        is nan).

    Used in: ``qbdi improvise``, ``qbdi navigate``, ``qbdi sweep``, notebooks/08_blend.ipynb.
    """
    spec = query.spec
    offset = int(query.bar_offset_steps)
    q_frames = pianoroll.to_frames(np.asarray(query.roll != 0, np.uint8), spec, offset)
    o_frames = pianoroll.to_frames(np.asarray(output.roll != 0, np.uint8), spec, offset)
    n = min(len(q_frames), len(o_frames))
    agree = harmony.frame_agreement(harmony.chroma(q_frames[:n], spec), harmony.chroma(o_frames[:n], spec))
    od = bar_descriptors(output, spec, offset_steps=offset)
    qd = bar_descriptors(query, spec, offset_steps=offset) if query_ref is None else query_ref
    return {
        "chroma_cosine": float(agree["chroma_cosine"]),
        "triad_agreement": float(agree["triad_agreement"]),
        "style_fit_corpus": float("nan") if corpus_ref is None else style_fit_corpus(od, corpus_ref),
        "style_fit_query": style_fit_query(od, qd),
        "onsets_per_bar": float(np.mean(od.onsets)) if od.n_bars else float("nan"),
        "corpus_onsets_per_bar": (float(np.mean(corpus_ref.onsets)) if corpus_ref is not None and corpus_ref.n_bars
                                  else float("nan")),
        "empty_bar_rate": float(np.mean(od.empty)) if od.n_bars else float("nan"),
        "sounding_per_bar": _mean(od.sounding),
        "query_sounding_per_bar": _mean(qd.sounding),
        "corpus_sounding_per_bar": float("nan") if corpus_ref is None else _mean(corpus_ref.sounding),
        "note_length": _mean(od.lengths),
        "query_note_length": _mean(qd.lengths),
        "corpus_note_length": float("nan") if corpus_ref is None else _mean(corpus_ref.lengths),
    }


def _mean(values) -> float:
    """Mean of an array, nan when it is empty."""
    v = np.asarray(values, np.float64)
    return float(v.mean()) if v.size else float("nan")


def format_fidelity(d: Mapping) -> str:
    """The fidelity line in one line of text, e.g. ``query: chroma cosine 0.712, triad agreement 0.600 |
    style: fit corpus 0.810, fit query 0.550, onsets/bar 14.7 (corpus 16.9), empty bars 0.020 |
    held: sounding/bar 50.9 (query 60.3, corpus 59.6), note length 3.29 (query 3.51, corpus 3.52)``.

    Args:
        d: a :func:`fidelity` dict.

    Returns:
        One line, no newline.
    """
    return (f"query: chroma cosine {d['chroma_cosine']:.3f}, triad agreement {d['triad_agreement']:.3f} | "
            f"style: fit corpus {d['style_fit_corpus']:.3f}, fit query {d['style_fit_query']:.3f}, "
            f"onsets/bar {d['onsets_per_bar']:.1f} (corpus {d['corpus_onsets_per_bar']:.1f}), "
            f"empty bars {d['empty_bar_rate']:.3f} | "
            f"held: sounding/bar {d['sounding_per_bar']:.1f} (query {d['query_sounding_per_bar']:.1f}, "
            f"corpus {d['corpus_sounding_per_bar']:.1f}), note length {d['note_length']:.2f} "
            f"(query {d['query_note_length']:.2f}, corpus {d['corpus_note_length']:.2f})")
