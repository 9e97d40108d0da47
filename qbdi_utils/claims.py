"""The paper's claims, measured: verdicts and the numbers behind them (notebook 04, README).

:func:`claims_sweep` produces the claims table (agreement with the query, chord vocabulary, tonic
share per bit budget, with chance levels: :func:`qbdi_utils.harmony.chance_levels`);
:func:`write_claims_csv` / :func:`claims_csv_text` write it. This module also turns such tables
and the improvisations behind them into what the README reports, so that no verdict is computed
in a notebook cell:

- :func:`claim_verdicts`: does each claim hold (yes / partly / NO), with the numbers;
- :func:`spearman` (average ranks for ties, as ``scipy.stats.spearmanr``);
- :func:`per_bar_triads`, :func:`break_away`: where a low rate loses or gains the query's chords;
- :func:`fine_sweep`, :func:`fine_sweep_verdict`: the sweep below 32 bits and its bookkeeping;
- :func:`nearest_distances` (and :mod:`qbdi_utils.zero_bit`: why 0 bits decodes to one particular bar);
- :func:`full_bar_triads`: the triads of an output's full bars;

Imports :mod:`qbdi_utils.improvise`, :mod:`qbdi_utils.harmony`, :mod:`qbdi_utils.channel` and
:mod:`qbdi_utils.pianoroll` (never the other way round).

Used in: notebooks/04_query_generation.ipynb.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from qbdi_utils import channel, files, harmony, pianoroll, report, tables
from qbdi_utils.improvise import CLAIM_RATES, encode_query, improvise, improvise_batch, parse_bits, rate_label
from qbdi_utils.pianoroll import Piece

__all__ = [
    "CLAIM_COLUMNS",
    "claims_csv_text",
    "claims_sweep",
    "write_claims_csv",
    "FINE_COLUMNS",
    "bar_chroma",
    "break_away",
    "claim_verdicts",
    "fine_sweep",
    "fine_sweep_table",
    "fine_sweep_verdict",
    "full_bar_triads",
    "mean_sd_table",
    "nearest_distances",
    "output_metrics",
    "per_bar_triads",
    "query_overview",
    "spearman",
    "verdict_label",
    "with_excess",
    "write_fine_sweep_csv",
    "zero_bit_triads",
]


CLAIM_COLUMNS = (
    "rate", "bits", "mode", "n_seeds",
    "chroma_cosine_mean", "chroma_cosine_sd",
    "tonnetz_distance_mean", "tonnetz_distance_sd",
    "triad_agreement_mean", "triad_agreement_sd",
    "chance_chroma_cosine", "chance_tonnetz_distance", "chance_triad_agreement",
    "distinct_triads_mean", "distinct_triads_sd",
    "tonic_share_mean", "tonic_share_sd",
    "pc_entropy_bits_mean", "empty_frame_rate_mean", "note_density_mean",
)


_AGREEMENT = ("chroma_cosine", "tonnetz_distance", "triad_agreement")
_STATS = ("distinct_triads", "tonic_share", "pc_entropy_bits", "empty_frame_rate", "note_density")


def _mean_sd(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std())


def claims_sweep(
    model,
    query: Piece,
    rates: Sequence = CLAIM_RATES,
    seeds: int | Iterable[int] = 5,
    *,
    mode: str = "query",
    sample_latents: bool = False,
    threshold: float | None = None,
    n_shuffles: int = 20,
    shuffle_seed: int = 0,
    return_pieces: bool = False,
):
    """Measure the paper's claims on ``query``: agreement, chord vocabulary and tonic share per rate.

    For every bit budget, improvise with every seed (one encode, one batched decode) and compare each
    output with the query bar by bar (frames aligned on the query's bar lines): chroma cosine, Tonnetz
    distance and triad agreement (:func:`qbdi_utils.harmony.frame_agreement`); and describe each output
    on its own (:func:`qbdi_utils.harmony.output_stats`): distinct triads, share of bars on the query's
    tonic triad (Krumhansl-Kessler key of the query), pitch-class entropy, empty-bar rate, onsets per
    bar. Each number is the mean and standard deviation over the seeds.

    Chance levels: each row's ``chance_*`` columns compare its outputs with the query's bars in
    shuffled order (:func:`qbdi_utils.harmony.chance_agreement`, ``n_shuffles`` permutations): what an
    output with the right vocabulary but no relation to the query's bar-to-bar sequence would score.
    Two reference rows come first: ``"query"`` (the query against itself; its own triads and tonic
    share) and ``"chance"`` (the query against its own bars shuffled).

    Args:
        model: a StyleVAE.
        query: the query piece.
        rates: bit budgets per frame, ``None`` = full rate.
        seeds: number of channel seeds K (seeds 0..K-1) or an explicit list.
        mode: channel statistics mode.
        sample_latents, threshold: as in :func:`improvise`.
        n_shuffles: permutations for the chance levels.
        shuffle_seed: seed of those permutations.
        return_pieces: also return the dict of improvisations.

    Returns:
        list of dict rows with keys :data:`CLAIM_COLUMNS` (``rate`` is "query", "chance", "full rate"
        or "<N> bits"; ``bits`` is "" for the reference rows and for full rate); and, when
        ``return_pieces``, the dict ``(bits, seed) -> Improvisation`` as a second value.

    Used in: notebooks/04_query_generation.ipynb, ``qbdi sweep``.
    """
    spec = model.spec
    rates = [parse_bits(b) for b in rates]
    seeds = list(range(int(seeds))) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    pieces = improvise_batch(model, query, rates, seeds, mode, sample_latents=sample_latents, threshold=threshold)
    offset, sigs = int(query.bar_offset_steps), list(query.time_signatures)

    def bar_chroma(roll):
        return harmony.chroma(pianoroll.to_frames(roll, spec, offset, sigs), spec, "frame")

    q_chroma = bar_chroma(query.roll)
    tonic = harmony.tonic_triad(q_chroma)

    def stats(roll):
        return harmony.output_stats(pianoroll.to_frames(roll, spec, offset, sigs), tonic=tonic, spec=spec)

    keys = [(bits, s) for bits in rates for s in seeds]
    o_chromas = {key: bar_chroma(pieces[key].roll) for key in keys}
    chances = harmony.chance_levels(q_chroma, [q_chroma] + [o_chromas[key] for key in keys], n_shuffles, shuffle_seed)
    q_chance, chance_of = chances[0], dict(zip(keys, chances[1:]))
    rows = _reference_rows(q_chroma, stats(query.roll), q_chance, mode)
    for bits in rates:
        agreements, chance, descriptions = [], [], []
        for s in seeds:
            agreements.append(harmony.frame_agreement(q_chroma, o_chromas[(bits, s)]))
            chance.append(chance_of[(bits, s)])
            descriptions.append(stats(pieces[(bits, s)].roll))
        rows.append(_claim_row(rate_label(bits), bits, mode, agreements, chance, descriptions))
    return (rows, pieces) if return_pieces else rows


def _claim_row(label: str, bits, mode: str, agreements: list, chances: list, descriptions: list) -> dict:
    """One row of :func:`claims_sweep`: mean and sd over the seeds of the agreements with the query
    and of the output's own statistics, the mean chance level of each agreement."""
    r = {"rate": label, "bits": "" if bits is None else int(bits), "mode": mode,
         "n_seeds": len(agreements)}
    for key in _AGREEMENT:
        r[f"{key}_mean"], r[f"{key}_sd"] = _mean_sd([a[key] for a in agreements])
        r[f"chance_{key}"] = _mean_sd([c[key] for c in chances])[0]
    for key in _STATS:
        r[f"{key}_mean"], r[f"{key}_sd"] = _mean_sd([d[key] for d in descriptions])
    return r


def _reference_rows(q_chroma: np.ndarray, q_stats: dict, q_chance: dict, mode: str) -> list[dict]:
    """The two reference rows of :func:`claims_sweep`: "query" (the query against itself) and
    "chance" (the query against its own bars shuffled; its statistics' sds are nan)."""
    q_self = harmony.frame_agreement(q_chroma, q_chroma)
    chance_row = _claim_row("chance", None, mode, [q_chance], [q_chance], [q_stats])
    chance_row.update({f"{k}_sd": float("nan") for k in _STATS})
    return [_claim_row("query", None, mode, [q_self], [q_chance], [q_stats]), chance_row]


def write_claims_csv(rows: list[dict], path, force: bool = False) -> Path:
    """Write the rows of :func:`claims_sweep` as CSV (columns :data:`CLAIM_COLUMNS`, 4 decimals).

    Args:
        rows: rows from :func:`claims_sweep`.
        path: output file.
        force: overwrite an existing file.

    Returns:
        the path written.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.
        FileSystemError: the file cannot be written.

    Used in: notebooks/04_query_generation.ipynb.
    """
    return files.write_text(path, claims_csv_text(rows), force=force)


def claims_csv_text(rows: list[dict]) -> str:
    """The CSV text :func:`write_claims_csv` writes (columns :data:`CLAIM_COLUMNS`, 4 decimals).

    Args:
        rows: rows from :func:`claims_sweep`.

    Returns:
        The CSV text (a header line, one line per row).

    Used in: ``qbdi sweep`` (staged in one output set with the MIDI files).
    """
    return tables.csv_text(rows, list(CLAIM_COLUMNS), float_format=".4f", extra="ignore")

#: Columns of the fine-sweep CSV: the claims columns plus the allocation's bookkeeping.
FINE_COLUMNS = tuple(CLAIM_COLUMNS) + ("excess_triad_agreement", "components_with_bits", "max_bits_per_component")


# ----------------------------------------------------------------------------------------------
# small numeric helpers


def query_overview(model, query, corpus_data) -> dict:
    """What the query and the training corpus are, in numbers (3 significant digits where real).

    Args:
        model: a StyleVAE (its ``spec``).
        query: the query Piece.
        corpus_data: the training corpus (``corpus.load_corpus``: ``.frames``, ``.pieces``).

    Returns:
        dict: ``query``, ``bars`` (bar frames, a pickup completed to a bar), ``tempo_bpm``,
        ``time_signatures``, ``pickup_steps``, ``key``, ``corpus_pieces``, ``corpus_bars``,
        ``longest_piece_bars``, ``bars_over_longest``, ``corpus_tonic_share`` (share of corpus bars on
        the query's tonic triad).

    Used in: notebooks/04_query_generation.ipynb.
    """
    spec = model.spec
    key = harmony.estimate_key(harmony.chroma(query.roll, query.spec))
    n_bars = len(pianoroll.piece_to_frames(query))
    longest = max(p["n_frames"] for p in corpus_data.pieces)
    share = harmony.output_stats(corpus_data.frames, tonic=harmony.tonic_triad(harmony.chroma(query.roll, query.spec)),
                                 spec=spec)["tonic_share"]
    return report.rounded({
        "query": query.name, "bars": n_bars, "tempo_bpm": float(query.tempo_bpm),
        "time_signatures": list(query.time_signatures), "pickup_steps": int(query.bar_offset_steps),
        "key": key.name, "corpus_pieces": len(corpus_data.pieces),
        "corpus_bars": len(corpus_data.frames), "longest_piece_bars": int(longest),
        "bars_over_longest": n_bars / longest, "corpus_tonic_share": float(share),
    })


def spearman(a, b) -> float:
    """Spearman rank correlation of two sequences, ties given their average rank.

    Args:
        a: (n,) numbers (``inf`` allowed, e.g. full rate as infinitely many bits).
        b: (n,) numbers.

    Returns:
        float in [-1, 1]; nan when either side is constant or n < 2.

    Used in: notebooks/04_query_generation.ipynb (through :func:`claim_verdicts` and
    :func:`fine_sweep_verdict`).
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"spearman needs two 1-D sequences of one length, got {x.shape} and {y.shape}")

    def ranks(v):
        order = np.argsort(v, kind="stable")
        r = np.empty(v.size)
        r[order] = np.arange(v.size, dtype=np.float64)
        for val in np.unique(v):  # average rank over ties
            tied = v == val
            r[tied] = r[tied].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if x.size < 2 or np.all(rx == rx[0]) or np.all(ry == ry[0]):
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def nearest_distances(a, b, different: bool = False) -> np.ndarray:
    """Euclidean distance from each row of ``a`` to its nearest row of ``b``.

    Args:
        a: (n, d) float.
        b: (m, d) float.
        different: skip rows of ``b`` at (squared) distance below 1e-6 (the row itself, and exact
            repeats), i.e. the distance to the nearest *different* row.

    Returns:
        (n,) float64 (``inf`` if no row qualifies).

    Used in: notebooks/04_query_generation.ipynb.
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"rows of a {a.shape} and b {b.shape} must have the same length")
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
    if different:
        d2[d2 < 1e-6] = np.inf
    return np.sqrt(np.maximum(d2, 0)).min(axis=1)


# ----------------------------------------------------------------------------------------------
# bar by bar


def bar_chroma(roll, spec, offset_steps: int = 0, time_signatures=None) -> np.ndarray:
    """Chroma of each bar of a roll, frames aligned on the bar lines (a pickup padded in front).

    Args:
        roll: (T, spec.n_columns) roll.
        spec: its RollSpec.
        offset_steps: step of the first bar line (``Piece.bar_offset_steps``).
        time_signatures: ``Piece.time_signatures`` (bars of the piece's meters), or None (bars of
            ``spec.steps_per_frame`` steps).

    Returns:
        (N, 12) float64, one row per bar frame.

    Used in: notebooks/04_query_generation.ipynb.
    """
    return harmony.chroma(pianoroll.to_frames(roll, spec, offset_steps, time_signatures), spec)


def per_bar_triads(query_chroma, output_chroma) -> tuple[np.ndarray, np.ndarray]:
    """Bar by bar: the expected agreement of the output's triad with the query's, and the output's triads.

    Args:
        query_chroma: (N, 12) chroma of the query's bars.
        output_chroma: (N, 12) chroma of the output's bars.

    Returns:
        (agree, labels): (N,) float in [0, 1], the tie credit of :func:`qbdi_utils.harmony.triad_credit`
        (1 or 0 for a bar without ties), and (N,) int triad labels of the output (-1 for silent bars;
        for display only, ties go to the lowest index).

    Used in: notebooks/04_query_generation.ipynb.
    """
    q = np.atleast_2d(np.asarray(query_chroma, dtype=np.float64))
    o = np.atleast_2d(np.asarray(output_chroma, dtype=np.float64))
    if q.shape != o.shape:
        raise ValueError(f"query chroma {q.shape} and output chroma {o.shape} differ in shape")
    agree = np.asarray(harmony.frame_comparison(q, o)["triad_agreement"], dtype=np.float64)
    return agree, np.asarray(harmony.triad_labels(o))


def _sets_with_silence(chroma) -> np.ndarray:
    """(N, 25) tie sets with silence as a 25th symbol (so two silent bars agree, as in triad_credit)."""
    s = np.atleast_2d(harmony.triad_tie_sets(np.atleast_2d(np.asarray(chroma, dtype=np.float64))))
    return np.concatenate([s, ~s.any(axis=1, keepdims=True)], axis=1)


def _top_shared(*sets) -> np.ndarray:
    """(N,) probability that one random priority order picks the same symbol from every set.

    All sets pick the same symbol exactly when the highest-priority symbol of their union lies in
    all of them: |intersection| / |union|.
    """
    inter = np.logical_and.reduce(sets).sum(axis=1)
    union = np.logical_or.reduce(sets).sum(axis=1)
    return inter / np.maximum(union, 1)


def break_away(query_chroma, full_chroma, low_chromas) -> dict:
    """Where a low rate departs from the full-rate output, bar by bar, averaged over seeds.

    Ties between triads are credited by their expectation under one random priority order of the
    triads shared by the query, the full-rate and the low-rate bar (as
    :func:`qbdi_utils.harmony.triad_credit` does for a pair): with tie sets Q, F, L of one bar,
    P(F agrees with Q) = |Q & F| / |Q | F| and P(all three agree) = |Q & F & L| / |Q | F | L|, so
    P(lost) = P(F agrees) - P(all agree), P(gained) = P(L agrees) - P(all agree) and
    P(changed) = 1 - |F & L| / |F | L| (a silent bar counts as its own symbol).

    Args:
        query_chroma: (N, 12) chroma of the query's bars.
        full_chroma: (N, 12) chroma of the full-rate output's bars.
        low_chromas: list of (N, 12) chroma, one per seed of the low-rate output.

    Returns:
        dict of expected shares of bars (means over bars and seeds): ``changed`` (the triad differs
        from the full-rate output's), ``lost`` (the full-rate output had the query's triad, the low
        rate has not), ``gained`` (the reverse), and ``n_seeds``.

    Raises:
        ValueError: no low-rate output, or chroma of different shapes.

    Used in: notebooks/04_query_generation.ipynb.
    """
    q = np.atleast_2d(np.asarray(query_chroma, dtype=np.float64))
    f = np.atleast_2d(np.asarray(full_chroma, dtype=np.float64))
    if q.shape != f.shape:
        raise ValueError(f"query chroma {q.shape} and full-rate chroma {f.shape} differ in shape")
    sq, sf = _sets_with_silence(q), _sets_with_silence(f)
    p_qf = _top_shared(sq, sf)
    lost, gained, changed = [], [], []
    for c in low_chromas:
        c = np.atleast_2d(np.asarray(c, dtype=np.float64))
        if c.shape != q.shape:
            raise ValueError(f"query chroma {q.shape} and low-rate chroma {c.shape} differ in shape")
        sl = _sets_with_silence(c)
        p_all = _top_shared(sq, sf, sl)
        lost.append(np.mean(p_qf - p_all))
        gained.append(np.mean(_top_shared(sq, sl) - p_all))
        changed.append(np.mean(1.0 - _top_shared(sf, sl)))
    if not changed:
        raise ValueError("break_away needs at least one low-rate output")
    return {"changed": float(np.mean(changed)), "lost": float(np.mean(lost)),
            "gained": float(np.mean(gained)), "n_seeds": len(changed)}


def zero_bit_triads(model, query, modes: Sequence[str], seed: int = 0) -> dict[str, list[str]]:
    """Triad names of the 0-bit improvisation per statistics mode (silent bars left out).

    Args:
        model: a StyleVAE.
        query: the query Piece.
        modes: statistics modes (see :func:`qbdi_utils.channel.source_stats`).
        seed: channel seed (0 bits draws no noise that matters).

    Returns:
        dict mode -> sorted list of triad names.

    Used in: notebooks/04_query_generation.ipynb.
    """
    out = {}
    for m in modes:
        z = improvise(model, query, bits=0, mode=m, seed=seed)
        labels = harmony.triad_labels(harmony.chroma(z.roll, z.spec))
        out[m] = sorted({harmony.TRIAD_NAMES[int(lab)] for lab in labels if lab >= 0})
    return out


def full_bar_triads(piece, bar_offset_steps: int, n_steps: int) -> list[str]:
    """Triad names of the full bars of an output (a pickup bar and a partial last bar left out).

    Args:
        piece: a Piece (an improvisation as long as its query).
        bar_offset_steps: the query's pickup length in steps.
        n_steps: the query's length in steps.

    Returns:
        sorted list of the distinct triad names of the full bars.

    Used in: notebooks/04_query_generation.ipynb.
    """
    bars = pianoroll.cut_bars(piece.roll, piece.spec, list(piece.time_signatures), bar_offset_steps)
    frames = bars.frames
    first = 1 if len(frames) and bars.starts[0] < 0 else 0
    last = len(frames) - (1 if len(frames) and bars.starts[-1] + bars.lengths[-1] > n_steps else 0)
    labels = harmony.triad_labels(harmony.chroma(frames[first:last], piece.spec)) if last > first else []
    return sorted({harmony.TRIAD_NAMES[int(lab)] for lab in labels if lab >= 0})


def output_metrics(query, output) -> dict:
    """Agreement of one output with its query and the output's own statistics, over the whole query.

    Args:
        query: the query Piece.
        output: an improvisation of it (same length, same spec).

    Returns:
        dict: ``chroma_cosine``, ``tonnetz_distance``, ``triad_agreement`` (bar by bar means),
        ``distinct_triads``, ``tonic_share`` (the query's tonic triad), ``empty_frame_rate``.

    Used in: notebooks/04_query_generation.ipynb (the explorer).
    """
    offset, sigs = int(query.bar_offset_steps), list(query.time_signatures)
    q = bar_chroma(query.roll, query.spec, offset, sigs)
    frames = pianoroll.to_frames(output.roll, output.spec, offset, sigs)
    agree = harmony.frame_agreement(q, harmony.chroma(frames, output.spec))
    st = harmony.output_stats(frames, tonic=harmony.tonic_triad(q), spec=output.spec)
    return {**agree, **{k: st[k] for k in ("distinct_triads", "tonic_share", "empty_frame_rate")}}


def mean_sd_table(rows: Sequence[dict], columns: dict) -> list[dict]:
    """Claims rows as small display rows: "mean ± sd" strings, 3 significant digits.

    Args:
        rows: rows of :func:`claims_sweep` (or :func:`with_excess`).
        columns: display name -> metric key; a key ``k`` with ``k_mean`` and ``k_sd`` in the rows is
            shown as "mean ± sd" (just the mean when sd is not finite), any other key as its value.

    Returns:
        list of dicts, display name -> str or number.

    Used in: notebooks/04_query_generation.ipynb.
    """
    out = []
    for r in rows:
        d = {}
        for name, key in columns.items():
            if f"{key}_mean" in r:
                sd = r.get(f"{key}_sd", float("nan"))
                sd = 0.0 if isinstance(sd, float) and abs(sd) < 1e-9 else sd  # rounding noise of identical seeds
                m, sd = report.rounded(r[f"{key}_mean"]), report.rounded(sd)
                d[name] = f"{m} ± {sd}" if isinstance(sd, float) and math.isfinite(sd) else m
            else:
                d[name] = report.rounded(r[key])
        out.append(d)
    return out


# ----------------------------------------------------------------------------------------------
# verdicts


def with_excess(rows: Sequence[dict]) -> list[dict]:
    """Copies of claims rows with ``excess_mean`` (triad agreement minus its chance level) and ``excess_sd``.

    Args:
        rows: rows of :func:`claims_sweep`.

    Returns:
        list of new dicts.

    Used in: notebooks/04_query_generation.ipynb.
    """
    out = []
    for r in rows:
        r = dict(r)
        r["excess_mean"] = r["triad_agreement_mean"] - r["chance_triad_agreement"]
        r["excess_sd"] = r["triad_agreement_sd"]
        out.append(r)
    return out


def verdict_label(ok) -> str:
    """"yes", "partly" or "NO" for a claim's outcome (True, "partly", False).

    Args:
        ok: bool or the string "partly".

    Returns:
        str.

    Used in: notebooks/04_query_generation.ipynb.
    """
    return "partly" if ok == "partly" else ("yes" if ok else "NO")


def claim_verdicts(rows: Sequence[dict], breaks: dict, zero_chords: dict, tonic_name: str,
                   low_bits: int = 256, mode: str = "query") -> list[dict]:
    """Does each of the paper's five claims hold on a claims table? Verdicts with their numbers.

    Rules (fixed before looking at results): full rate keeps the harmony if its triad agreement
    exceeds its chance level by more than 0.1; ``low_bits`` breaks away if its excess agreement is
    below full rate's by more than max(2 sd, 0.02) ("partly" if bars lose the query's triad more often
    than they gain it); agreement falls with the rate if the Spearman correlation of bits (full rate
    = inf) and excess agreement exceeds 0.7; fewer bits give fewer chords if that correlation for
    distinct triads exceeds 0.7 and 0 bits has fewer triads than full rate (fully if some budget above
    0 has fewer than 3/4 of full rate's triads, else "partly"); 0 bits converges on the tonic if its
    tonic share exceeds 0.9.

    Args:
        rows: rows of :func:`claims_sweep` with full rate, ``low_bits`` and 0 bits.
        breaks: :func:`break_away` of ``low_bits`` against full rate.
        zero_chords: :func:`zero_bit_triads`, mode -> triad names.
        tonic_name: name of the query's tonic triad.
        low_bits: the budget of the break-away claim (the paper's 256).
        mode: the statistics mode of ``rows`` (its 0-bit chord is named).

    Returns:
        list of 5 dicts: ``claim`` (str), ``ok`` (True / False / "partly"), ``verdict`` (yes / partly /
        NO), ``numbers`` (str), plus ``rho`` where a Spearman correlation decided.

    Used in: notebooks/04_query_generation.ipynb.
    """
    rows = with_excess(rows)
    by_rate = {r["rate"]: r for r in rows}
    fr, low, b0 = by_rate["full rate"], by_rate[rate_label(low_bits)], by_rate[rate_label(0)]
    rate_rows = [r for r in rows if r["rate"] not in ("query", "chance")]
    finite = [r for r in rate_rows if r["bits"] != ""]
    bits_axis = [np.inf if r["bits"] == "" else r["bits"] for r in rate_rows]
    rho_agree = spearman(bits_axis, [r["excess_mean"] for r in rate_rows])
    rho_chords = spearman(bits_axis, [r["distinct_triads_mean"] for r in rate_rows])
    best_above0 = min(r["distinct_triads_mean"] for r in finite if r["bits"] > 0)
    lost, gained = breaks["lost"], breaks["gained"]
    claims = [
        ("At full rate the query's harmony is kept (triad agreement well above its chance level)",
         bool(fr["excess_mean"] > 0.1),
         f"triad agreement {fr['triad_agreement_mean']:.3f} vs chance {fr['chance_triad_agreement']:.3f} "
         f"(excess {fr['excess_mean']:+.3f}); chroma cosine {fr['chroma_cosine_mean']:.3f} vs "
         f"{fr['chance_chroma_cosine']:.3f}; Tonnetz distance {fr['tonnetz_distance_mean']:.3f} vs "
         f"{fr['chance_tonnetz_distance']:.3f}", None),
        (f"At {low_bits} bits the output breaks away from the query's harmony in places (less agreement than "
         "at full rate)",
         True if low["excess_mean"] < fr["excess_mean"] - max(2 * low["excess_sd"], 0.02)
         else ("partly" if lost > gained else False),
         f"excess triad agreement {low['excess_mean']:+.3f} ± {low['excess_sd']:.3f} at {low_bits} bits vs "
         f"{fr['excess_mean']:+.3f} at full rate; {lost:.1%} of bars lose the query's triad, {gained:.1%} gain it",
         None),
        ("Agreement with the query (beyond chance) falls with the rate",
         bool(rho_agree > 0.7),
         f"Spearman correlation of bits and excess triad agreement {rho_agree:.2f}; "
         f"excess {fr['excess_mean']:+.3f} at full rate, {b0['excess_mean']:+.3f} at 0 bits", rho_agree),
        ("Fewer bits, fewer chords (on the way down, not only at 0 bits where every bar is the same)",
         (True if best_above0 < 0.75 * fr["distinct_triads_mean"] else "partly")
         if rho_chords > 0.7 and b0["distinct_triads_mean"] < fr["distinct_triads_mean"] else False,
         f"Spearman correlation of bits and distinct triads {rho_chords:.2f}; distinct triads "
         f"{fr['distinct_triads_mean']:.1f} at full rate, {best_above0:.1f} at best above 0 bits, "
         f"{b0['distinct_triads_mean']:.1f} at 0 bits", rho_chords),
        ("At 0 bits the improvisation converges on the tonic triad (share near 1)",
         bool(b0["tonic_share_mean"] > 0.9),
         f"tonic ({tonic_name}) share {b0['tonic_share_mean']:.3f} at 0 bits, {fr['tonic_share_mean']:.3f} at "
         f"full rate, {by_rate['query']['tonic_share_mean']:.3f} in the query; the 0-bit bar is "
         f"{', '.join(zero_chords.get(mode, [])) or 'silent'} (modes: {zero_chords})", None),
    ]
    return [{"claim": c, "ok": ok, "verdict": verdict_label(ok), "numbers": n, "rho": rho}
            for c, ok, n, rho in claims]


# ----------------------------------------------------------------------------------------------
# the fine sweep


def fine_sweep(model, query, rates, seeds, mode: str = "query", n_shuffles: int = 20) -> list[dict]:
    """Claims rows for the budgets ``rates`` plus the channel's bookkeeping per budget.

    Each row of :func:`claims_sweep` (reference rows dropped) gains
    ``components_with_bits`` and ``max_bits_per_component`` (the static allocation of ``mode`` on the
    query's latents, :func:`qbdi_utils.channel.allocate`) and ``excess_triad_agreement`` (triad
    agreement minus its chance level).

    Args:
        model: a StyleVAE.
        query: the query Piece.
        rates: int budgets >= 0 (no full rate).
        seeds: channel seeds (count or list).
        mode: statistics mode.
        n_shuffles: permutations for the chance levels.

    Returns:
        list of dict rows with keys :data:`FINE_COLUMNS`.

    Raises:
        OptionError: a wrong budget or mode.

    Used in: notebooks/04_query_generation.ipynb.
    """
    enc = encode_query(model, query)
    rows = claims_sweep(model, query, rates, seeds, mode=mode, n_shuffles=n_shuffles)[2:]
    for r in rows:
        alloc = channel.allocate(enc.mean, enc.logvar, r["bits"], mode=mode, corpus_stats=model.corpus_stats)
        r["components_with_bits"] = int(np.sum(alloc.bits > 0))
        r["max_bits_per_component"] = int(alloc.bits.max()) if alloc.bits.size else 0
        r["excess_triad_agreement"] = r["triad_agreement_mean"] - r["chance_triad_agreement"]
    return rows


def fine_sweep_table(rows: Sequence[dict]) -> list[dict]:
    """The fine sweep as small display rows (3 significant digits).

    Args:
        rows: rows of :func:`fine_sweep`.

    Returns:
        list of dicts: ``bits``, ``triads`` (distinct, mean over seeds), ``excess_agreement``,
        ``tonic_share``, ``components`` (with bits), ``max_bits`` (per component).

    Used in: notebooks/04_query_generation.ipynb.
    """
    return [report.rounded({"bits": r["bits"], "triads": r["distinct_triads_mean"],
                       "excess_agreement": r["excess_triad_agreement"], "tonic_share": r["tonic_share_mean"],
                       "components": r["components_with_bits"], "max_bits": r["max_bits_per_component"]})
            for r in rows]


def write_fine_sweep_csv(rows: Sequence[dict], path, force: bool = False) -> Path:
    """Write :func:`fine_sweep` rows as CSV (columns :data:`FINE_COLUMNS`, 4 decimals).

    Args:
        rows: rows of :func:`fine_sweep`.
        path: output file.
        force: overwrite an existing file.

    Returns:
        the path written.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is false.

    Used in: notebooks/04_query_generation.ipynb.
    """
    return files.write_csv(rows, path, columns=list(FINE_COLUMNS), force=force, float_format=".4f",
                           extra="ignore")


def fine_sweep_verdict(rows: Sequence[dict]) -> dict:
    """Does 'fewer bits, fewer chords' hold below the top budget of a fine sweep? Numbers and sentence.

    Holds if the Spearman correlation of bits and distinct triads over the budgets above 0 exceeds
    0.7 and the lowest positive budget has fewer than 3/4 of the top budget's triads. ``half_bits`` is
    the largest budget whose triads are at most half the top budget's.

    Args:
        rows: rows of :func:`fine_sweep` (any order; must include budgets above 0).

    Returns:
        dict: ``holds`` (bool), ``rho``, ``half_bits`` (int or None), ``one_bit_each`` (every budget
        B gives B components one bit each), ``top_bits``, ``low_bits``, ``top_triads``, ``low_triads``,
        ``zero_triads``, ``top_tonic``, ``low_tonic``, ``tonic_rises`` (by more than 0.05), ``text``.

    Used in: notebooks/04_query_generation.ipynb.
    """
    pos = sorted((r for r in rows if r["bits"] > 0), key=lambda r: r["bits"])
    if not pos:
        raise ValueError("the fine sweep needs at least one budget above 0 bits")
    lo, hi, zero = pos[0], pos[-1], min(rows, key=lambda r: r["bits"])
    rho = spearman([r["bits"] for r in pos], [r["distinct_triads_mean"] for r in pos])
    half = max((r["bits"] for r in pos if r["distinct_triads_mean"] <= 0.5 * hi["distinct_triads_mean"]), default=None)
    holds = bool(rho > 0.7 and lo["distinct_triads_mean"] < 0.75 * hi["distinct_triads_mean"])
    one_each = all(r["components_with_bits"] == r["bits"] and r["max_bits_per_component"] <= 1 for r in pos)
    rises = bool(lo["tonic_share_mean"] > hi["tonic_share_mean"] + 0.05)

    def lab(b):
        return rate_label(b).replace("1 bits", "1 bit") if b == 1 else rate_label(b)

    text = (
        f"Below {hi['bits']} bits 'fewer bits, fewer chords' {'holds' if holds else 'does not hold'}: distinct "
        f"triads go from {hi['distinct_triads_mean']:.1f} at {hi['bits']} bits to {lo['distinct_triads_mean']:.1f} "
        f"at {lab(lo['bits'])} (Spearman {rho:.2f} over the {len(pos)} budgets above 0; "
        + (f"half the {hi['bits']}-bit vocabulary is gone at {half} bits" if half else "never down to half")
        + f") and {zero['distinct_triads_mean']:.1f} at 0 bits; "
        + ("every budget B gives B latent components one bit each" if one_each else
           "components with bits: " + ", ".join(f"{r['bits']}->{r['components_with_bits']}" for r in pos))
        + f"; the tonic share {'rises' if rises else 'does not rise'} ({hi['tonic_share_mean']:.3f} at "
        f"{hi['bits']} bits, {lo['tonic_share_mean']:.3f} at {lab(lo['bits'])})."
    )
    return {"holds": holds, "rho": rho, "half_bits": half, "one_bit_each": one_each,
            "top_bits": hi["bits"], "low_bits": lo["bits"], "top_triads": hi["distinct_triads_mean"],
            "low_triads": lo["distinct_triads_mean"], "zero_triads": zero["distinct_triads_mean"],
            "top_tonic": hi["tonic_share_mean"], "low_tonic": lo["tonic_share_mean"], "tonic_rises": rises,
            "text": text}
