"""Notebook 07's measures of oracle improvisations and the sweep over continuities, jump costs and rates.

:func:`novelty`, :func:`run_lengths`, :func:`jump_steps`, :func:`jump_measures` describe one
:class:`~qbdi_utils.navigate.Navigation`; :func:`navigation_sweep` tabulates many (columns
:data:`SWEEP_COLUMNS`). Imports: dynamics, harmony, improvise, pianoroll, navigate, vmo_features.
Used in: notebooks/07_oracle_improvisation.ipynb, tests/test_navigate.py, benchmarks/bench_navigate.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qbdi_utils import dynamics, harmony, improvise, pianoroll, vmo_features
from qbdi_utils.navigate import LatentOracle, Navigation, navigate_batch, query_oracle
from qbdi_utils.pianoroll import RollSpec

__all__ = ["SWEEP_COLUMNS", "jump_measures", "jump_steps", "navigation_sweep", "novelty", "run_lengths"]


def novelty(frames, reference_frames) -> float:
    """Share of bars that differ from the reference bar at the same position.

    Args:
        frames: (N, F) binary frames of an output.
        reference_frames: (N, F) frames of the reference (e.g. the full-rate improvisation).

    Returns:
        share in [0, 1].

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    a, b = np.asarray(frames), np.asarray(reference_frames)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.mean(np.any(a != b, axis=1))) if len(a) else 0.0


def run_lengths(jumps) -> np.ndarray:
    """Lengths of the runs of bars copied in order (a jump starts a new run).

    Args:
        jumps: (N,) bool, jumps[t] true when bar t was reached by a jump.

    Returns:
        (R,) int64 run lengths summing to N.

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    j = np.asarray(jumps, bool).copy()
    if not len(j):
        return np.zeros(0, np.int64)
    j[0] = True
    starts = np.flatnonzero(j)
    return np.diff(np.r_[starts, len(j)]).astype(np.int64)


def jump_steps(nav: Navigation) -> np.ndarray:
    """Roll steps of ``nav`` at which a bar reached by a jump starts.

    Output frame t starts at roll step ``nav.frame_starts[t]`` (frames start on the query's bar
    lines in any meter; a pickup is padded in front; ``t * spec.steps_per_frame - nav.pad_steps``
    when the starts are not recorded).

    Args:
        nav: a Navigation.

    Returns:
        (J,) int64 roll steps, increasing.

    Used in: notebooks/07_oracle_improvisation.ipynb (jump marks on roll plots).
    """
    t = np.flatnonzero(np.asarray(nav.jumps, bool))
    if getattr(nav, "frame_starts", None) is not None:  # frames at the query's bar lines, any meter
        return np.asarray(nav.frame_starts, np.int64)[t]
    return (t * nav.spec.steps_per_frame - int(nav.pad_steps)).astype(np.int64)


def jump_measures(nav: Navigation, first: int = 1, last: int | None = None) -> list[int]:
    """1-based measure numbers (as :func:`qbdi_utils.render.comparison_svg` numbers bars) where a jump lands.

    Args:
        nav: a Navigation.
        first, last: keep measures in [first, last] (inclusive; ``last`` None: no upper bound).

    Returns:
        sorted list of measure numbers (a measure is listed once).

    Used in: notebooks/07_oracle_improvisation.ipynb (jump marks in the notation excerpts).
    """
    m = sorted({int(s) // nav.spec.steps_per_frame + 1 for s in jump_steps(nav)})
    return [b for b in m if b >= first and (last is None or b <= last)]


#: Columns of :func:`navigation_sweep` rows.
SWEEP_COLUMNS = (
    "source", "continuity", "jump_cost", "rate", "bits", "n_seeds",
    "triad_agreement_mean", "triad_agreement_sd", "chance_triad_agreement",
    "chroma_cosine_mean", "chance_chroma_cosine",
    "novelty_mean", "novelty_sd", "jump_share_mean", "mean_run_bars",
    "ir_bits_mean", "ir_bits_sd", "ir_threshold_mean",
    "distinct_triads_mean", "distinct_triads_sd",
)


def navigation_sweep(model, query, continuities=(1.0, 0.9, 0.7, 0.5, 0.3), seeds=5, rates=(None, 64), *,
                     min_context: int = 1, mode: str = "query", corpus: LatentOracle | None = None,
                     jump_costs=(0.0,), n_thresholds: int = 50, n_shuffles: int = 20,
                     shuffle_seed: int = 0, return_pieces: bool = False):
    """Agreement, novelty, information rate and chord vocabulary of oracle improvisations.

    For every continuity (navigation over the query's oracle) and, when ``corpus`` is given, the
    corpus-guided path for every jump cost, at every bit budget and seed: triad agreement and chroma cosine with the query
    bar by bar (:func:`qbdi_utils.harmony.frame_agreement`) and their chance levels (the query's bars
    shuffled, :func:`qbdi_utils.harmony.chance_levels`); novelty (:func:`novelty` against the
    full-rate improvisation of the query, ``improvise(bits=None)``); share of jumps and mean run length
    (:func:`run_lengths`); total VMO information rate of the output's Tonnetz chroma per beat at its
    best threshold (:func:`qbdi_utils.dynamics.ir_curve`, ``n_thresholds`` from 0 to the largest
    distance, from the query's first full bar, as notebook 05); distinct triads
    (:func:`qbdi_utils.harmony.output_stats`). Means and SDs over seeds.

    Args:
        model: a StyleVAE.
        query: the query Piece.
        continuities: navigation continuities.
        seeds: int K (0..K-1) or list of seeds.
        rates: bit budgets (None = full rate).
        min_context: shortest shared context of a jump.
        mode: channel statistics mode.
        corpus: a corpus :class:`LatentOracle` (adds rows for the corpus source), or None.
        jump_costs: jump costs of the corpus-guided path (:func:`guided_path`), one row group each.
        n_thresholds: thresholds per IR curve.
        n_shuffles, shuffle_seed: chance-level permutations.
        return_pieces: also return {(source, continuity or jump cost, bits, seed): Navigation}.

    Returns:
        list of row dicts with keys :data:`SWEEP_COLUMNS` (plus the pieces when asked). The first
        row is the query itself (source "query", rate "reference").

    Used in: notebooks/07_oracle_improvisation.ipynb.
    """
    seeds = list(range(int(seeds))) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    rates = [improvise.parse_bits(b) for b in rates]
    enc, qo = query_oracle(model, query)
    view = _BarView(model.spec, int(query.bar_offset_steps), tuple(map(tuple, query.time_signatures)),
                    n_thresholds)
    ref = improvise.improvise_batch(model, enc, [None], [0], mode)[(None, 0)]
    q_chroma = view.chroma(query.roll)
    tonic = harmony.tonic_triad(q_chroma)
    jobs = [("query", float(p)) for p in continuities]
    jobs += [("corpus", float(j)) for j in jump_costs] if corpus is not None else []
    pieces = {}
    for src, p in jobs:
        outs = navigate_batch(model, enc, src, p if src == "query" else 1.0, min_context, rates=rates, seeds=seeds,
                              mode=mode, oracle=qo if src == "query" else corpus,
                              jump_cost=p if src == "corpus" else 0.0)
        for (bits, s), nav in outs.items():
            pieces[(src, p, bits, s)] = nav
    keys = list(pieces)
    chromas = [view.chroma(pieces[k].roll) for k in keys]
    chances = dict(zip(keys, harmony.chance_levels(q_chroma, chromas, n_shuffles, shuffle_seed)))
    ref_frames = view.frames(ref.roll)
    per = {k: _measures(view, pieces[k], harmony.frame_agreement(q_chroma, ch), tonic, ref_frames, chances[k])
           for k, ch in zip(keys, chromas)}
    q_ch = harmony.chance_levels(q_chroma, [q_chroma], n_shuffles, shuffle_seed)[0]
    rows = [_query_row(view, query, q_chroma, tonic, q_ch)]
    for src, p in jobs:
        for bits in rates:
            rows.append(_group_row(src, p, bits, [per[(src, p, bits, s)] for s in seeds]))
    return (rows, pieces) if return_pieces else rows


@dataclass(frozen=True)
class _BarView:
    """How the sweep reads a roll: bar frames and bar chroma on the query's bar lines (``offset`` steps
    in, its time ``signatures`` [(step, num, den), ...]), and the VMO information rate of its Tonnetz chroma per beat (``n_thresholds`` thresholds)."""

    spec: RollSpec
    offset: int
    signatures: tuple
    n_thresholds: int

    def frames(self, roll) -> np.ndarray:
        return pianoroll.to_frames(roll, self.spec, self.offset, list(self.signatures))

    def chroma(self, roll) -> np.ndarray:
        return harmony.chroma(self.frames(roll), self.spec, "frame")

    def ir(self, roll) -> tuple[float, float]:
        f = vmo_features.chroma_features(roll[self.offset:], self.spec, "beat")
        d = vmo_features.pairwise_distances(f)
        c = dynamics.ir_curve(None, dynamics.default_thresholds(d, self.n_thresholds), distances=d)
        return c.best_ir, c.best_threshold


def _measures(view: _BarView, nav: Navigation, ag: dict, tonic: int, ref_frames: np.ndarray, chance: dict) -> dict:
    """The measures of one navigation (``ag``: its agreement with the query; ``chance``: its chance levels)."""
    ir, irt = view.ir(nav.roll)
    st = harmony.output_stats(view.frames(nav.roll), tonic=tonic, spec=view.spec)
    return {"triad": ag["triad_agreement"], "cos": ag["chroma_cosine"],
            "novelty": novelty(view.frames(nav.roll), ref_frames),
            "jumps": float(np.mean(nav.jumps[1:])) if len(nav.jumps) > 1 else 0.0,
            "runs": run_lengths(nav.jumps), "ir": ir, "irt": irt,
            "triads": st["distinct_triads"], "chance": chance}


def _query_row(view: _BarView, query, q_chroma: np.ndarray, tonic: int, q_ch: dict) -> dict:
    """The sweep's first row: the query against itself (source "query", rate "reference")."""
    q_ag = harmony.frame_agreement(q_chroma, q_chroma)
    q_ir, q_irt = view.ir(query.roll)
    q_st = harmony.output_stats(view.frames(query.roll), tonic=tonic, spec=view.spec)
    return {"source": "query", "continuity": "", "jump_cost": "", "rate": "reference", "bits": "", "n_seeds": 1,
            "triad_agreement_mean": q_ag["triad_agreement"], "triad_agreement_sd": 0.0,
            "chance_triad_agreement": q_ch["triad_agreement"], "chroma_cosine_mean": q_ag["chroma_cosine"],
            "chance_chroma_cosine": q_ch["chroma_cosine"], "novelty_mean": float("nan"),
            "novelty_sd": float("nan"), "jump_share_mean": 0.0, "mean_run_bars": float(len(q_chroma)),
            "ir_bits_mean": q_ir, "ir_bits_sd": 0.0, "ir_threshold_mean": q_irt,
            "distinct_triads_mean": float(q_st["distinct_triads"]), "distinct_triads_sd": 0.0}


def _mean_sd(v) -> tuple[float, float]:
    """Mean and (population) sd of the values."""
    v = np.asarray(v, np.float64)
    return float(v.mean()), float(v.std())


def _group_row(src: str, p: float, bits, vals: list[dict]) -> dict:
    """One row of the sweep: a source and its continuity or jump cost at one bit budget, means and sds
    over the seeds' :func:`_measures` ``vals``."""
    ms = _mean_sd
    r = {"source": src, "continuity": p if src == "query" else "",
         "jump_cost": p if src == "corpus" else "",
         "rate": improvise.rate_label(bits), "bits": "" if bits is None else int(bits),
         "n_seeds": len(vals)}
    r["triad_agreement_mean"], r["triad_agreement_sd"] = ms([v["triad"] for v in vals])
    r["chance_triad_agreement"] = ms([v["chance"]["triad_agreement"] for v in vals])[0]
    r["chroma_cosine_mean"] = ms([v["cos"] for v in vals])[0]
    r["chance_chroma_cosine"] = ms([v["chance"]["chroma_cosine"] for v in vals])[0]
    r["novelty_mean"], r["novelty_sd"] = ms([v["novelty"] for v in vals])
    r["jump_share_mean"] = ms([v["jumps"] for v in vals])[0]
    r["mean_run_bars"] = float(np.mean(np.concatenate([v["runs"] for v in vals])))
    r["ir_bits_mean"], r["ir_bits_sd"] = ms([v["ir"] for v in vals])
    r["ir_threshold_mean"] = ms([v["irt"] for v in vals])[0]
    r["distinct_triads_mean"], r["distinct_triads_sd"] = ms([v["triads"] for v in vals])
    return r
