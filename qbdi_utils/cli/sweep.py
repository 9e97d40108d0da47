"""``qbdi sweep``: improvise at every bit budget of the paper's claims, tabulate them and say which claims hold.

    qbdi sweep [--model MODEL_DIR] --query FILE.mid [--key {corpus|query}] --out DIR [--seeds K] [--stats MODE] [--corpus C]
               [--velocity {query|corpus|N}] [--tracks T] [--programs P[,P]] [--force] [--quiet]

Writes into DIR each distinct improvisation once: ``<stem>_<rate>.mid`` when every seed gave the same
notes (full rate always: it has no channel noise), else ``<stem>_<rate>_seed<S>.mid`` per seed; and
``claims.csv`` (:data:`CSV_COLUMNS`, one row for the query and one per rate; every ``chance_*`` column
is that row's output against the query's bars in shuffled order). Prints the table, the verdict of
each of the paper's claims (:func:`qbdi_utils.cli.sweep_report.verdict_lines`) and a warning for a rate whose
outputs are silent or nearly so. All outputs are one :class:`qbdi_utils.files.OutputSet`; every name
this run could write is checked before any work. The MIDI files carry velocities, tracks and
programs as ``qbdi improvise`` writes them (:func:`qbdi_utils.cli.performing.add_performance`). ``--key``
as in ``qbdi improvise`` (default corpus): the table and the verdicts are measured in the corpus's key,
the MIDI files are written back in the query's.
"""

from __future__ import annotations

import numpy as np

from qbdi_utils import blend, claims, files, report
from qbdi_utils.cli import checks, corpus_options, options, performing
from qbdi_utils.cli.messages import silence_warning, warn
from qbdi_utils.cli.key import answer, hear, say_key
from qbdi_utils.cli.outputs import corpus_reference, load, midi_bytes
from qbdi_utils.cli.sweep_report import verdict_lines
from qbdi_utils.cli.values import whole_number
from qbdi_utils.improvise import CLAIM_RATES, rate_label

__all__ = ["CSV_COLUMNS", "MAX_SEEDS", "add_parser", "run_sweep"]

MAX_SEEDS = 1_000
"""Largest --seeds (each seed is 8 more improvisations)."""

CSV_COLUMNS = {
    # column of claims.csv: key of the claims / fidelity row it holds (means over the seeds unless _sd)
    "rate": "rate", "bits": "bits", "stats": "mode", "seeds": "n_seeds",
    "chroma_cosine_with_query": "chroma_cosine_mean", "chroma_cosine_with_query_sd": "chroma_cosine_sd",
    "tonnetz_distance_to_query": "tonnetz_distance_mean", "tonnetz_distance_to_query_sd": "tonnetz_distance_sd",
    "triad_agreement_with_query": "triad_agreement_mean", "triad_agreement_with_query_sd": "triad_agreement_sd",
    "chance_chroma_cosine_vs_shuffled_query": "chance_chroma_cosine",
    "chance_tonnetz_distance_vs_shuffled_query": "chance_tonnetz_distance",
    "chance_triad_agreement_vs_shuffled_query": "chance_triad_agreement",
    "distinct_triads": "distinct_triads_mean", "distinct_triads_sd": "distinct_triads_sd",
    "tonic_triad_share": "tonic_share_mean", "tonic_triad_share_sd": "tonic_share_sd",
    "pitch_class_entropy_bits": "pc_entropy_bits_mean", "onsets_per_bar": "onsets_per_bar",
    "empty_bar_rate": "empty_bar_rate", "style_fit_corpus": "style_fit_corpus", "style_fit_query": "style_fit_query",
    "sounding_cells_per_bar": "sounding_per_bar", "mean_note_length_steps": "note_length",
}
"""The columns of ``claims.csv``, named for what they hold."""

_SHOWN = {"rate": "rate", "chroma cosine": "chroma_cosine_with_query", "triad agr.": "triad_agreement_with_query",
          "(chance)": "chance_triad_agreement_vs_shuffled_query", "triads": "distinct_triads",
          "fit corpus": "style_fit_corpus", "onsets/bar": "onsets_per_bar", "empty bars": "empty_bar_rate",
          "sounding/bar": "sounding_cells_per_bar", "note len": "mean_note_length_steps"}


def add_parser(subparsers) -> None:
    """Register the ``sweep`` sub-command."""
    s = subparsers.add_parser(
        "sweep",
        help="improvise at every bit budget of the paper's claims, tabulate them and give the verdicts",
        description="Improvise on a query at full rate and 1024..0 bits per frame with K seeds each; "
        "print the table and the paper's claims' verdicts; write each distinct improvisation and the "
        "table (claims.csv) into DIR.",
    )
    options.add_model(s)
    options.add_query(s)
    options.add_key(s)
    s.add_argument("--out", required=True, metavar="DIR", help="output directory")
    s.add_argument("--seeds", type=whole_number("--seeds", 1, MAX_SEEDS,
                                                f"each seed is {len(CLAIM_RATES)} more improvisations"),
                   default=5, metavar="K", help="channel seeds per rate (default 5)")
    options.add_stats(s)
    corpus_options.add_corpus(s)
    performing.add_performance(s, wav=False)
    options.add_force(s, help="write into an existing, non-empty DIR")
    s.set_defaults(func=run_sweep)


def _name(stem: str, bits, seed: int | None) -> str:
    tag = "full" if bits is None else f"{bits}bits"
    return f"{stem}_{tag}.mid" if seed is None else f"{stem}_{tag}_seed{seed}.mid"


def _distinct(pieces: dict, stem: str, out, layout: dict) -> dict:
    """{path: MIDI bytes}: one file per rate whose seeds agree, else one per seed."""
    written = {}
    for bits in CLAIM_RATES:
        data = {s: midi_bytes(p, tracks=layout["tracks"], programs=layout["programs"])
                for (b, s), p in pieces.items() if b == bits}
        if len(set(data.values())) == 1:
            written[out / _name(stem, bits, None)] = next(iter(data.values()))
        else:
            written.update({out / _name(stem, bits, s): d for s, d in data.items()})
    return written


def run_sweep(args) -> int:
    """Handler of ``qbdi sweep``."""
    k = args.seeds
    model_dir, query_path = checks.check_inputs(args.model, args.query)
    out = checks.check_out_dir(args.out, force=args.force, fill=True)
    stem = query_path.stem
    possible = [out / _name(stem, b, s) for b in CLAIM_RATES for s in [None, *range(k)]]
    files.check_outputs(possible + [out / "claims.csv"], force=args.force)
    layout = performing.layout(args)

    model, query = load(model_dir, query_path)
    heard, shift = hear(args.key, model, query)  # --key corpus: measured in the corpus's key
    layout = performing.with_query_programs(layout, query)
    rows, pieces = claims.claims_sweep(model, heard, CLAIM_RATES, k, mode=args.stats, return_pieces=True)
    warn("sweep", next(iter(pieces.values())).warnings)
    ref, note = corpus_reference(model, args.corpus)
    rows = [r for r in blend.sweep_with_fidelity(heard, rows, pieces, ref) if r["rate"] != "chance"]
    table = [{col: r.get(key, "") for col, key in CSV_COLUMNS.items()} for r in rows]
    order = sorted(pieces, key=str)
    moved, folded = answer([pieces[key] for key in order], shift)  # the MIDI files: in the query's key
    written = dict(zip(order, moved))
    performed = performing.perform_all(args, model, query, [written[key] for key in order])
    midis = _distinct(written, stem, out, layout)
    with files.OutputSet(force=args.force) as out_set:
        for path, data in midis.items():
            out_set.add_bytes(path, data)
        out_set.add_csv(out / "claims.csv", table, columns=list(CSV_COLUMNS), float_format=".4f")
    say_key(args, shift, folded)
    print(f"{len(midis)} distinct improvisations of {stem} ({len(CLAIM_RATES)} rates x {k} seeds) and "
          f"claims.csv written to {out}")
    print(report.table([{h: r[c] for h, c in _SHOWN.items()} for r in table]))
    print(verdict_lines(model, heard, rows, pieces, args.stats, k))
    if note:
        warn("sweep", [note])
    warn("sweep", performed)
    corpus_rate = float(np.mean(ref.onsets)) if ref is not None and ref.n_bars else float("nan")
    for r in table[1:]:
        w = silence_warning({"onsets_per_bar": r["onsets_per_bar"], "corpus_onsets_per_bar": corpus_rate,
                             "empty_bar_rate": r["empty_bar_rate"]}, r["bits"] if r["bits"] != "" else None,
                            args.stats)
        if w:
            warn("sweep", [f"{r['rate']}: {w}"])
    return 0

