"""The decoding threshold: probabilities -> frames as written, and the threshold that maximises note F1.

:func:`choose_threshold` picks the threshold that maximises note F1 of the outputs *as they are
written* (after ``pianoroll.binarize``, which makes the roll valid), piece by piece.

An option beside it (not the paper's decoding, and not the default): *sustain continuation*
(:func:`continue_notes`). A note still starts only where its play probability reaches the threshold,
but once sounding it goes on while the play probability stays at or above a lower continuation
threshold and no new articulation is decoded there (hysteresis). :func:`choose_sustain_threshold`
picks that continuation threshold for the same criterion (note F1 of the written outputs, validation
pieces); :func:`record_sustain_threshold` stores it in ``model.info["sustain_threshold"]``, a field
older model files lack (:func:`sustain_threshold_of` then gives None: decoding exactly as before).
Why: on queries unlike the corpus the decoder's play probabilities inside held notes sink below the
threshold and notes come out shorter than both the query's and the corpus's (the fidelity line's
``sounding/bar`` and ``note length`` say so).

Imports: errors, pianoroll, model, training.split. Used in: :func:`qbdi_utils.training.train`,
notebooks/02_vae_training.ipynb.
"""

from __future__ import annotations

import numpy as np

from qbdi_utils.errors import ModelError
from qbdi_utils.model import note_scores
from qbdi_utils.pianoroll import RollSpec, binarize, make_valid
from qbdi_utils.training.split import piece_runs

__all__ = ["THRESHOLD_GRID", "SUSTAIN_INFO_KEY", "binarize_by_piece", "choose_threshold", "continue_notes",
           "choose_sustain_threshold", "record_sustain_threshold", "sustain_threshold_of"]

#: The candidate thresholds of :func:`choose_threshold`: 0.05, 0.06, ..., 0.95.
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)

#: Key of ``model.info`` holding the continuation threshold of :func:`continue_notes` (absent in
#: model files written before it; absent means the paper's decoding).
SUSTAIN_INFO_KEY = "sustain_threshold"


def binarize_by_piece(probabilities: np.ndarray, threshold: float, spec: RollSpec | None = None,
                      groups: np.ndarray | None = None, sustain_threshold: float | None = None) -> np.ndarray:
    """Decoder probabilities -> frames as they are written: ``pianoroll.binarize`` piece by piece.

    Consecutive frames with the same group label are one piece, binarized as one stretch of time
    (a note held over a bar line stays one note); a piece's first step follows silence. Without
    groups each frame stands alone.

    Args:
        probabilities: (N, spec.frame_size) decoder probabilities, frames of a piece consecutive
            and in time order.
        threshold: probabilities >= threshold sound.
        spec: roll layout (default RollSpec()).
        groups: (N,) piece label per frame, or None.
        sustain_threshold: None (the paper's decoding) or the continuation threshold of
            :func:`continue_notes`.

    Returns:
        (N, spec.frame_size) uint8 valid frames.

    Used in: :func:`train`, :func:`choose_threshold`, :func:`choose_sustain_threshold`;
    notebooks/02_vae_training.ipynb.
    """
    spec = RollSpec() if spec is None else spec
    p = np.asarray(probabilities)
    if p.ndim != 2 or p.shape[1] != spec.frame_size:
        raise ValueError(f"probabilities must have shape (N, {spec.frame_size}), got {p.shape}")
    decode = ((lambda a: binarize(a, threshold, spec)) if sustain_threshold is None
              else (lambda a: continue_notes(a, threshold, sustain_threshold, spec)))
    if groups is None:
        return decode(p[:, None, :])[:, 0, :]
    out = np.empty(p.shape, np.uint8)
    for s in piece_runs(groups, len(p)):
        out[s] = decode(p[s])
    return out


def continue_notes(probabilities: np.ndarray, threshold: float, sustain_threshold: float,
                   spec: RollSpec | None = None) -> np.ndarray:
    """Threshold decoding with sustain continuation (hysteresis): a valid roll whose notes may go on
    below the threshold.

    A pitch starts sounding only where its play probability is >= ``threshold`` (as in
    :func:`qbdi_utils.pianoroll.binarize`); a pitch sounding on the step before keeps sounding while
    its play probability is >= ``sustain_threshold`` and its articulate probability is below
    ``threshold`` (a decoded articulation is a new note, which needs the full threshold). Articulations
    are decoded at ``threshold``. With ``sustain_threshold >= threshold`` this is exactly ``binarize``.

    Args:
        probabilities: (..., N, spec.frame_size) frames consecutive in time, or (T, spec.n_columns)
            roll, values in [0, 1].
        threshold: the model's threshold (``model.threshold``).
        sustain_threshold: the continuation threshold, in (0, 1).
        spec: roll layout (default RollSpec()).

    Returns:
        uint8 array of the shape of ``probabilities``, a valid roll.

    Raises:
        ValueError: a shape that is neither frames nor a roll, or a continuation threshold outside (0, 1).

    Used in: :func:`binarize_by_piece`, :func:`choose_sustain_threshold`.
    """
    spec = RollSpec() if spec is None else spec
    if not 0.0 < float(sustain_threshold) < 1.0:
        raise ValueError(f"sustain_threshold must lie strictly between 0 and 1, got {sustain_threshold!r}")
    p = np.asarray(probabilities)
    if float(sustain_threshold) >= float(threshold):
        return binarize(p, threshold, spec)
    if p.shape[-1] == spec.frame_size:
        lead = p.shape[:-2] if p.ndim >= 2 else ()
        n = p.shape[-2] if p.ndim >= 2 else 1
        rows = p.reshape(*lead, n * spec.steps_per_frame, spec.n_columns)
    elif p.shape[-1] == spec.n_columns:
        rows = p
    else:
        raise ValueError(f"last axis must be {spec.frame_size} (frames) or {spec.n_columns} (roll), "
                         f"got shape {p.shape}")
    k = spec.n_pitches
    play, art = rows[..., :k], rows[..., k:]
    strong = play >= threshold
    carry = (play >= sustain_threshold) & (art < threshold) & ~strong
    sounding = strong.copy()
    for t in range(1, rows.shape[-2]):  # a carried cell continues the pitch sounding on the step before
        sounding[..., t, :] |= carry[..., t, :] & sounding[..., t - 1, :]
    on = np.concatenate([sounding, art >= threshold], axis=-1)
    return make_valid(on, spec).reshape(p.shape)


def choose_threshold(frames: np.ndarray, probabilities: np.ndarray, grid: np.ndarray | None = None,
                     *, spec: RollSpec | None = None,
                     groups: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The decoding threshold that maximises note F1 of the written outputs (ties: the lowest).

    Every candidate is scored on :func:`binarize_by_piece` of the probabilities, i.e. after the
    same make-valid step decoding applies, not on the raw probabilities.

    Args:
        frames: (N, D) binary truth (validation frames).
        probabilities: (N, D) decoder probabilities for the same frames.
        grid: candidate thresholds (default 0.05, 0.06, ..., 0.95).
        spec: roll layout (default RollSpec()).
        groups: (N,) piece label per frame (consecutive frames of a piece), or None.

    Returns:
        (threshold, f1 per grid point (len(grid),)).

    Used in: :func:`train`; notebooks/02_vae_training.ipynb.
    """
    grid = THRESHOLD_GRID if grid is None else np.asarray(grid, dtype=float)
    t = np.asarray(frames) != 0
    f1 = np.array([note_scores(t, binarize_by_piece(probabilities, th, spec, groups))["f1"]
                   for th in grid], dtype=float)
    return float(grid[int(np.argmax(f1))]), f1


def choose_sustain_threshold(frames: np.ndarray, probabilities: np.ndarray, threshold: float,
                             grid: np.ndarray | None = None, *, spec: RollSpec | None = None,
                             groups: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The continuation threshold of :func:`continue_notes` that maximises note F1 of the written
    outputs, the onset threshold held at ``threshold`` (ties: the highest, i.e. the closest to the
    paper's decoding).

    Args:
        frames: (N, D) binary truth (validation frames).
        probabilities: (N, D) decoder probabilities for the same frames.
        threshold: the model's threshold (chosen first by :func:`choose_threshold`).
        grid: candidate continuation thresholds (default the points of :data:`THRESHOLD_GRID` up to
            ``threshold``; the last one is the paper's decoding).
        spec: roll layout (default RollSpec()).
        groups: (N,) piece label per frame (consecutive frames of a piece), or None.

    Returns:
        (continuation threshold, f1 per grid point (len(grid),)).

    Used in: :func:`record_sustain_threshold`.
    """
    grid = THRESHOLD_GRID[THRESHOLD_GRID <= float(threshold)] if grid is None else np.asarray(grid, dtype=float)
    if not len(grid):
        raise ValueError("the grid of continuation thresholds is empty")
    t = np.asarray(frames) != 0
    f1 = np.array([note_scores(t, binarize_by_piece(probabilities, threshold, spec, groups,
                                                    sustain_threshold=float(g)))["f1"] for g in grid], dtype=float)
    best = len(f1) - 1 - int(np.argmax(f1[::-1]))
    return float(grid[best]), f1


def record_sustain_threshold(model, frames: np.ndarray, groups: np.ndarray | None = None,
                             grid: np.ndarray | None = None) -> float:
    """Choose the continuation threshold on a model's validation frames and store it in
    ``model.info[SUSTAIN_INFO_KEY]`` (written with the model by ``model.save``).

    Args:
        model: a StyleVAE (``reconstruct``, ``threshold``, ``spec``, ``info``).
        frames: (N, spec.frame_size) the model's validation frames, pieces consecutive.
        groups: (N,) piece label per frame, or None.
        grid: candidate continuation thresholds (default as :func:`choose_sustain_threshold`).

    Returns:
        The chosen continuation threshold (also in ``model.info``, with the F1 of every candidate
        under ``"sustain_threshold_f1"``).
    """
    x = (np.asarray(frames) != 0).astype(np.uint8)
    g = None if grid is None else np.asarray(grid, dtype=float)
    ts, f1 = choose_sustain_threshold(x, model.reconstruct(x), float(model.threshold), g,
                                      spec=model.spec, groups=groups)
    cands = THRESHOLD_GRID[THRESHOLD_GRID <= float(model.threshold)] if g is None else g
    model.info[SUSTAIN_INFO_KEY] = float(ts)
    model.info["sustain_threshold_f1"] = {f"{c:.2f}": float(v) for c, v in zip(cands, f1)}
    return float(ts)


def sustain_threshold_of(model) -> float | None:
    """The continuation threshold recorded in a model (:func:`record_sustain_threshold`), or None for a
    model file without one (decode as the paper: ``pianoroll.binarize`` at ``model.threshold``).

    Args:
        model: a StyleVAE (its ``info``).

    Returns:
        float in (0, 1), or None.

    Raises:
        ModelError: the recorded value is not a number strictly between 0 and 1 (a damaged model file).
    """
    v = (getattr(model, "info", None) or {}).get(SUSTAIN_INFO_KEY)
    if v is None:
        return None
    try:
        t = float(v)
    except (TypeError, ValueError):
        t = float("nan")
    if not 0.0 < t < 1.0:
        raise ModelError(f"the model's {SUSTAIN_INFO_KEY} is {v!r}, not a number strictly between 0 and 1; "
                         "record it again (training.threshold.record_sustain_threshold) or remove the field")
    return t
