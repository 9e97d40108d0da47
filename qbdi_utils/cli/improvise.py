"""``qbdi improvise`` and ``qbdi sweep``: a query MIDI file in, improvisations in the corpus's style out.

    qbdi improvise [--model MODEL_DIR] --query FILE.mid --bits {full|N} [--stats MODE] [--seed S]
                   --out OUT.mid [--musicxml F.musicxml] [--wav F.wav] [--force]
    qbdi sweep     [--model MODEL_DIR] --query FILE.mid --out DIR [--seeds K] [--stats MODE] [--force]

Every option and output is checked before the model is loaded, so a refusal costs nothing. The
outputs of one command (improvise: the MIDI, MusicXML and WAV; sweep: every MIDI and claims.csv) are
one :class:`qbdi_utils.files.OutputSet`: they appear all together or not at all, and without
``--force`` their creation is exclusive (a concurrent run that got there first wins; this one says
"exists; pass --force"). A file-system fault is one line naming the path, exit 2. What about the
query the model cannot take as it is (another meter, notes out of range, longer than any training
piece) is printed as ``warning:`` lines on stderr. Options: :mod:`qbdi_utils.cli.options`; the
outputs' writing: :mod:`qbdi_utils.cli.outputs`.
"""

from __future__ import annotations

from qbdi_utils import blend, files
from qbdi_utils.cli import options
from qbdi_utils.cli.outputs import (add_piece_outputs, check_piece_outputs, corpus_reference, fidelity_line, load,
                                    midi_bytes, warn, write_piece)
from qbdi_utils.claims import claims_sweep
from qbdi_utils.improvise import CLAIM_RATES, improvise

__all__ = ["MAX_SEEDS", "add_parser", "run_improvise", "run_sweep"]

MAX_SEEDS = 1_000
"""Largest --seeds of ``qbdi sweep`` (each seed is 8 more improvisations and MIDI files)."""


def add_parser(subparsers) -> None:
    """Register the ``improvise`` and ``sweep`` sub-commands."""
    p = subparsers.add_parser(
        "improvise",
        help="improvise on a query MIDI file at a bit budget",
        description="Encode each bar of a query, send it through a channel of N bits per frame "
        "(or full rate) and decode it in the model's style; write MIDI (and optionally MusicXML, WAV).",
    )
    options.add_model(p)
    options.add_query(p)
    options.add_bits(p, required=True, help="bits per frame: 'full' (no channel) or a whole number >= 0")
    options.add_stats(p)
    options.add_seed(p)
    p.add_argument("--threshold", type=options.probability("--threshold"), default=None, metavar="P",
                   help="binarization threshold in (0, 1) (default: the model's)")
    add_piece_outputs(p, out_help="output MIDI file")
    p.set_defaults(func=run_improvise)

    s = subparsers.add_parser(
        "sweep",
        help="improvise at every bit budget of the paper's claims and tabulate them",
        description="Improvise on a query at full rate and 1024..0 bits per frame with K seeds each; "
        "write one MIDI per rate and seed and the claims table (claims.csv) into DIR.",
    )
    options.add_model(s)
    options.add_query(s)
    s.add_argument("--out", required=True, metavar="DIR", help="output directory")
    s.add_argument("--seeds", type=options.whole_number("--seeds", 1, MAX_SEEDS,
                                                        f"each seed is {len(CLAIM_RATES)} more improvisations"),
                   default=5, metavar="K", help="channel seeds per rate (default 5)")
    options.add_stats(s)
    options.add_force(s, help="write into an existing, non-empty DIR")
    s.set_defaults(func=run_sweep)


def run_improvise(args) -> int:
    """Handler of ``qbdi improvise``."""
    model_dir, query_path = options.check_inputs(args.model, args.query)
    outs = check_piece_outputs(args)
    model, query = load(model_dir, query_path, audio=args.wav is not None)
    piece = improvise(model, query, args.bits, mode=args.stats, seed=args.seed, threshold=args.threshold)
    warn("improvise", piece.warnings)
    given = write_piece(piece, outs, args.force)
    print(f"{piece.name}: {piece.n_steps} steps at {piece.tempo_bpm:g} bpm -> "
          + ", ".join(str(p) for p in given))
    print(fidelity_line("improvise", model, query, piece))
    return 0


def _sweep_name(stem: str, bits: int | None, seed: int) -> str:
    tag = "full" if bits is None else f"{bits}bits"
    return f"{stem}_{tag}_seed{seed}.mid"


def run_sweep(args) -> int:
    """Handler of ``qbdi sweep``."""
    k = args.seeds
    model_dir, query_path = options.check_inputs(args.model, args.query)
    out = options.check_out_dir(args.out, force=args.force, fill=True)
    stem = query_path.stem
    targets = [out / _sweep_name(stem, b, s) for b in CLAIM_RATES for s in range(k)] + [out / "claims.csv"]
    files.check_outputs(targets, force=args.force)

    model, query = load(model_dir, query_path)
    rows, pieces = claims_sweep(model, query, CLAIM_RATES, k, mode=args.stats, return_pieces=True)
    warn("sweep", next(iter(pieces.values())).warnings)
    ref, note = corpus_reference(model)
    rows = blend.sweep_with_fidelity(query, rows, pieces, ref)
    with files.OutputSet(force=args.force) as out_set:
        for (bits, seed), piece in pieces.items():
            out_set.add_bytes(out / _sweep_name(stem, bits, seed), midi_bytes(piece))
        out_set.add_text(out / "claims.csv", blend.sweep_csv_text(rows))
    print(f"{len(pieces)} improvisations of {stem} ({len(CLAIM_RATES)} rates x {k} seeds) and "
          f"{out / 'claims.csv'} written to {out}")
    print(blend.sweep_table(rows))
    if note:
        warn("sweep", [note])
    return 0
