"""What about a query a model cannot take as it is, one sentence each: meters it never saw, notes
the roll cannot hold, a query longer than any training piece, time signatures that are no meter.

None of these stops an improvisation (the model works bar frame by bar frame); they are reported so
that nothing is mangled silently.

Imports: limits, pianoroll. Used in: :func:`qbdi_utils.improvise.encode_query` (every improvisation
and navigation), ``qbdi live``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from qbdi_utils import limits, pianoroll
from qbdi_utils.pianoroll import Piece, RollSpec

__all__ = ["query_warnings", "trained_meters"]


def trained_meters(model) -> list[str] | None:
    """The meters of the bars a model was trained on, as its corpus record says ("4/4", "3/4", ...).

    Read from ``model.info["corpus"]["meters"]`` (bars per meter, written by
    :func:`qbdi_utils.training.record_corpus`); a model that records only its corpus options with
    ``meter="4/4"`` was trained on 4/4 bars; None when the model records neither.

    Args:
        model: a StyleVAE (``.info``).

    Returns:
        Sorted meter names, or None (unknown).
    """
    rec = (getattr(model, "info", None) or {}).get("corpus")
    if not isinstance(rec, Mapping):
        return None
    meters = rec.get("meters")
    if isinstance(meters, Mapping) and meters:
        return sorted(str(m) for m in meters)
    opt = (rec.get("options") or {}).get("meter") if isinstance(rec.get("options"), Mapping) else None
    return [str(opt)] if opt else None


def _meter_warning(name: str, query_meters: list[str], trained: list[str] | None, spec: RollSpec,
                   lengths_by_meter: dict) -> str | None:
    """The one sentence on the query's meters the model never saw in training (None if it saw all)."""
    known = trained if trained is not None else ["4/4"]
    new = [m for m in query_meters if m not in known]
    if not new:
        return None
    spf, spq = spec.steps_per_frame, spec.steps_per_quarter
    how = []
    for m in new:
        sizes = lengths_by_meter[m]
        if len(sizes) == 1 and sizes[0] < spf:
            how.append(f"each {m} bar is decoded as the first {sizes[0] / spq:g} quarters of a "
                       f"{spf}-step frame (its last {spf - sizes[0]} steps cut)")
        elif len(sizes) == 1:
            how.append(f"each {m} bar is decoded as one {spf}-step frame")
        else:
            how.append(f"each {m} bar is split at its beats into frames of "
                       f"{' + '.join(str(x) for x in sizes)} steps, each decoded as the start of a frame")
    seen = known[0] if len(known) == 1 else ", ".join(known[:-1]) + " and " + known[-1]
    seen += " (taken as the paper's; the model records no meters)" if trained is None else ""
    return f"{name}: model trained on {seen} bars only; " + "; ".join(how)


def query_warnings(model, query: Piece) -> list[str]:
    """What about ``query`` the model cannot take as it is, one sentence each (no exception).

    Checks: time signatures that are no meter (a zero numerator, a denominator that is not a power
    of two; ignored), bars in a meter the model was not trained on (:func:`trained_meters`; one
    sentence naming how such bars are decoded), notes the roll
    could not represent (``query.dropped``, e.g. out of the pitch range), and a query longer (in
    frames) than the longest training piece when the model records it. The model works frame by
    frame, so none of these stops an improvisation; they are reported so that nothing is mangled
    silently.

    Args:
        model: a StyleVAE (uses ``.spec`` and, when present, ``.config``).
        query: the query piece.

    Returns:
        list of sentences, empty when the query fits the model.

    Used in: :func:`qbdi_utils.improvise.encode_query`, ``qbdi live``.
    """
    spec = model.spec
    out = []
    name = query.name or "query"
    sigs = list(query.time_signatures or [])
    # read_midi refuses signatures that are no meter; a Piece built by hand may still hold one
    bogus = sorted({(int(n), int(d)) for _, n, d in sigs if not limits.valid_time_signature(n, d)})
    if bogus:
        out.append(f"{name} has time signatures that are no meter ({', '.join(f'{n}/{d}' for n, d in bogus)}); "
                   "they are ignored")
    starts, lengths, bar_starts, bar_frames = pianoroll.bar_layout(query.n_steps, sigs, query.bar_offset_steps, spec)
    meters = pianoroll.bar_meters(query.n_steps, sigs, query.bar_offset_steps, spec)
    # the frame lengths of each meter's bars, its most common split (a bar the roll's end or a
    # signature change cuts short is not its meter's typical bar)
    ends = np.r_[bar_frames[1:], len(starts)].astype(np.int64)
    splits: dict = {}
    for m, a, b in zip(meters, bar_frames.tolist(), ends.tolist()):
        splits.setdefault(m, []).append(tuple(int(x) for x in lengths[a:b]))
    by_meter = {m: list(max(sorted(set(v)), key=v.count)) for m, v in splits.items()}
    sentence = _meter_warning(name, sorted(set(meters), key=meters.index), trained_meters(model), spec, by_meter)
    if sentence:
        out.append(sentence)
    dropped = {k: int(v) for k, v in (query.dropped or {}).items() if v}
    if dropped:
        what = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(dropped.items()))
        out.append(
            f"{name}: not everything in the file fits a piano roll ({what}); notes out of the pitch "
            f"range MIDI {spec.min_pitch}..{spec.max_pitch} and drum notes are left out, unisons of two "
            "voices merge into one note"
        )
    config = getattr(model, "config", None) or {}
    # set by training.train when it knows the pieces (qbdi train, default_model); absent otherwise
    longest = config.get("max_piece_frames") if isinstance(config, Mapping) else None
    n_frames = len(starts)
    if longest is not None and n_frames > longest:
        out.append(
            f"{name} has {n_frames} frames, more than the longest training piece ({longest}); the model "
            "encodes and decodes each frame on its own, so the whole query is used, but long-range "
            "form was never seen in training"
        )
    return out
