"""A query heard in the key its model's corpus was normalised to, and the answer moved back to the query's.

``corpus.load_corpus`` moves every training piece so that its tonic is C (``transpose="tonic"``, the
default; or C major / A minor, ``"relative"``) and the model records those options
(``training.record_corpus``). A query in another key is then out of distribution: in C# minor the
3/4 chorale bwv145.5 keeps 42.4 sounding cells per bar of its 60.0 at full rate, moved to C first
58.1. :func:`to_corpus_key` moves a query the way the model's corpus was moved (the same estimator,
:func:`qbdi_utils.harmony.estimate_key`, and the same shift, :func:`qbdi_utils.corpus.normalising_shift`);
:func:`to_query_key` moves an output back by the opposite shift. Both shift the roll, the
velocities and the notes' programs together (:func:`shift_piece`). A pitch that would leave the
roll's range is folded by an octave back into it (same pitch class, so the key is kept; a folded
note that lands on a sounding note of the same pitch merges with it) and counted, never dropped.

Imports: corpus, harmony, pianoroll, training.
Used in: ``qbdi improvise``, ``qbdi navigate``, ``qbdi sweep`` (``--key``, :mod:`qbdi_utils.cli.options`).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from qbdi_utils import training
from qbdi_utils.corpus import TRANSPOSE_MODES, key_name, normalising_shift
from qbdi_utils.errors import ModelError
from qbdi_utils.harmony import estimate_key
from qbdi_utils.pianoroll import Piece, RollSpec

__all__ = ["KEY_MODES", "ONSET_TABLES", "KeyShift", "corpus_transpose", "fold_pitches", "shift_piece", "to_corpus_key",
           "to_query_key", "shift_message"]

KEY_MODES = ("corpus", "query")
"""``--key``: "corpus" hears the query in the corpus's key (the default), "query" as it is."""

ONSET_TABLES = ("velocities", "programs")
"""The Piece fields that are (n, 3) tables of (step, pitch, value) per note onset: moved with the roll."""


class KeyShift(NamedTuple):
    """How a query was moved to its model's corpus's key.

    Attributes:
        semitones: the shift applied to the query (-6..5; 0: none); an output goes back by ``-semitones``.
        transpose: the corpus's normalisation ("tonic", "relative") or None (none recorded).
        query_key: name of the query's estimated key as given, e.g. "C# minor".
        corpus_key: name of that key after the shift, e.g. "C minor".
        folded: the query's notes folded by an octave to stay in the roll's range.
    """

    semitones: int
    transpose: str | None
    query_key: str
    corpus_key: str
    folded: int


def corpus_transpose(model) -> str | None:
    """The key normalisation of the corpus the model records (``training.recorded_corpus``).

    Args:
        model: a StyleVAE (anything with ``info``).

    Returns:
        "tonic", "relative" or None (no corpus recorded, or recorded without a transposition).

    Raises:
        ModelError: the recorded transposition is not one of :data:`qbdi_utils.corpus.TRANSPOSE_MODES`.
    """
    rec = training.recorded_corpus(model)
    if rec is None:
        return None
    mode = rec[1].get("transpose")
    if mode not in TRANSPOSE_MODES:
        raise ModelError(f"the model records its corpus's transpose as {mode!r}, not one of {TRANSPOSE_MODES}; "
                         "retrain it with qbdi train, or pass --key query to use the query as it is",
                         (getattr(model, "info", None) or {}).get("model_dir"))
    return mode


def fold_pitches(pitches, spec: RollSpec = RollSpec()) -> np.ndarray:
    """MIDI pitches moved by whole octaves into ``spec``'s range (those inside are unchanged).

    Args:
        pitches: (n,) ints, any range.
        spec: roll layout (its range spans at least an octave).

    Returns:
        (n,) int64 within ``spec.min_pitch..spec.max_pitch``, each the same pitch class as given.
    """
    p = np.asarray(pitches, dtype=np.int64)
    lo, hi = spec.min_pitch, spec.max_pitch
    up = np.where(p < lo, -((p - lo) // 12), 0)  # octaves up: ceil((lo - p) / 12)
    down = np.where(p > hi, (p - hi + 11) // 12, 0)  # octaves down: ceil((p - hi) / 12)
    return p + 12 * (up - down)


def shift_piece(piece: Piece, semitones: int) -> tuple[Piece, int]:
    """A copy of ``piece`` moved by ``semitones``: its roll and its velocities, pitches that would
    leave the range folded by an octave (:func:`fold_pitches`).

    Args:
        piece: a Piece (or Improvisation / Navigation: the copy keeps its class and other fields);
            ``piece.roll`` (T, spec.n_columns); ``piece.velocities`` and ``piece.programs`` (n, 3)
            (step, pitch, velocity / program) or None (:data:`ONSET_TABLES`).
        semitones: the shift, positive is up.

    Returns:
        (the moved Piece, number of notes -- articulations -- folded). ``semitones == 0`` gives a copy
        with the same roll. Velocities and programs follow their notes; where a folded note merges
        with one of the same pitch and step, the first listed value is kept.
    """
    spec = piece.spec
    n = spec.n_pitches
    s = int(semitones)
    roll = np.asarray(piece.roll, dtype=np.uint8)
    target = fold_pitches(np.arange(spec.min_pitch, spec.max_pitch + 1) + s, spec) - spec.min_pitch
    out = np.zeros_like(roll)
    for plane in (0, n):
        for k in range(n):  # OR, so that a folded note merging with a sounding one stays a valid roll
            out[:, plane + target[k]] |= roll[:, plane + k]
    moved = np.arange(n) + s
    outside = (moved < 0) | (moved >= n)
    folded = int(roll[:, n:][:, outside].sum())
    # lists and dicts (dropped, warnings, labels) copied, so that the two pieces never share them
    own = {f.name: type(v)(v) for f in dataclasses.fields(piece)
           if f.init and isinstance(v := getattr(piece, f.name), (list, dict))}
    for name in ONSET_TABLES:  # per-onset tables follow their notes
        table = getattr(piece, name, None)
        if table is not None:
            t = np.asarray(table, dtype=np.int64).reshape(-1, 3).copy()
            t[:, 1] = fold_pitches(t[:, 1] + s, spec)
            _, first = np.unique(t[:, :2], axis=0, return_index=True)
            own[name] = t[np.sort(first)]
    return dataclasses.replace(piece, roll=out, **own), folded


def to_corpus_key(model, query: Piece) -> tuple[Piece, KeyShift]:
    """The query moved the way the model's corpus was normalised (:func:`corpus_transpose`), and how.

    The key is estimated as ``corpus.load_corpus`` estimates a training piece's
    (:func:`qbdi_utils.harmony.estimate_key` on the whole roll) and moved by the same shift
    (:func:`qbdi_utils.corpus.normalising_shift`: at most a tritone).

    Args:
        model: a StyleVAE whose ``info`` records its corpus (or not: no shift).
        query: the query Piece, (T, spec.n_columns) roll.

    Returns:
        (the query in the corpus's key -- ``query`` itself when the shift is 0 -- , :class:`KeyShift`).

    Raises:
        ModelError: as :func:`corpus_transpose`.
    """
    mode = corpus_transpose(model)
    key = estimate_key(query.roll, query.spec)
    shift = normalising_shift(key.tonic, key.mode, mode)
    moved_name = key_name((key.tonic + shift) % 12, key.mode)
    if not shift:
        return query, KeyShift(0, mode, key.name, moved_name, 0)
    moved, folded = shift_piece(query, shift)
    return moved, KeyShift(int(shift), mode, key.name, moved_name, folded)


def to_query_key(piece: Piece, shift: KeyShift | int) -> tuple[Piece, int]:
    """An output made in the corpus's key moved back to the query's (the inverse of :func:`to_corpus_key`).

    Args:
        piece: the output (an Improvisation, Navigation or any Piece), (T, spec.n_columns) roll.
        shift: the :class:`KeyShift` (or its semitones) :func:`to_corpus_key` gave the query.

    Returns:
        (the output in the query's key -- ``piece`` itself when the shift is 0 --, notes folded by an
        octave to stay in range).
    """
    s = int(shift.semitones if isinstance(shift, KeyShift) else shift)
    if not s:
        return piece, 0
    return shift_piece(piece, -s)


def shift_message(shift: KeyShift, folded_back: int = 0) -> str | None:
    """The one line saying a shift was applied, or None when the query was not moved.

    Args:
        shift: :func:`to_corpus_key`'s KeyShift.
        folded_back: notes of the output folded by :func:`to_query_key` (0 if several outputs: sum them).

    Returns:
        e.g. "query moved -1 semitones (C# minor) to the corpus's key (C minor); outputs written back in
        C# minor", with the folded notes counted when there are any.
    """
    if not shift.semitones:
        return None
    text = (f"query moved {shift.semitones:+d} semitones ({shift.query_key}) to the corpus's key "
            f"({shift.corpus_key}); outputs written back in {shift.query_key}")
    folds = [f"{shift.folded} of the query's notes" if shift.folded else "",
             f"{folded_back} of the outputs' notes" if folded_back else ""]
    folds = [f for f in folds if f]
    if folds:
        text += f" ({' and '.join(folds)} folded by an octave to stay within the roll's range)"
    return text
