"""``qbdi analyze``: Variable Markov Oracle analysis of one or more MIDI files, overlaid (PAPER.md section 6).

    qbdi analyze --midi FILE [FILE ...] [--out DIR] [--force] [--resolution beat|frame] [--min-length N]
                 [--min-count K] [--thresholds N]

For each file, prints the best threshold, the total information rate (IR) and the motifs (every
occurrence, in bars counted from 1, as ``bar.beat`` where an occurrence starts or ends inside a bar);
writes into DIR (default ``<first FILE stem>_analysis``): ``ir_curve.csv`` and ``motifs.csv`` (a
``file`` column tells the files apart) and ``ir_curve.png`` / ``motifs.png`` with every file overlaid,
so a query and its improvisations compare in one figure (as the paper's Figs. 4 and 5). Beats and bars
are the file's own, in any meter (a 3/4 bar has 3 beats, a 6/8 bar 2 dotted ones). Features are
Harte's Tonnetz embedding of the chroma, compared by Euclidean (= Tonnetz) distance; see
:mod:`qbdi_utils.dynamics`. Existing outputs are never overwritten without ``--force``.
"""

from __future__ import annotations

from pathlib import Path

from qbdi_utils import dynamics, pianoroll
from qbdi_utils.cli import options
from qbdi_utils.cli.analyze_outputs import OUTPUT_FILES, check_out, write_outputs
from qbdi_utils.cli.bar_numbers import span_text
from qbdi_utils.cli.values import whole_number
from qbdi_utils.errors import MidiFileError, OptionError

__all__ = ["MAX_THRESHOLDS", "PRINT_MOTIFS", "add_parser", "run"]

PRINT_MOTIFS = 12  # longest first; motifs.csv lists all
# Each threshold builds one oracle; the IR curve only changes at the distinct pairwise distances, and
# 50x the default resolution already shows every step a plot can show, so more only burns time.
MAX_THRESHOLDS = 10_000


def _resolution(value: str) -> str:
    if value not in dynamics.RESOLUTIONS:
        raise OptionError(f"--resolution {value!r} is not one of {', '.join(dynamics.RESOLUTIONS)}")
    return value


def add_parser(subparsers) -> None:
    """Register the ``analyze`` sub-command."""
    p = subparsers.add_parser(
        "analyze",
        help="information rate, best threshold and motifs of MIDI files (VMO), overlaid in one figure",
        description="Build Variable Markov Oracles on the Tonnetz chroma of each MIDI file over a sweep of "
        "thresholds; print the best threshold, the total IR and the motifs; write the IR curves and the "
        "motif timelines of all files in one figure each.",
    )
    p.add_argument("--midi", required=True, nargs="+", metavar="FILE",
                   help="MIDI file(s) to analyse, e.g. a query and its improvisations")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder, created if missing (default: <first FILE stem>_analysis in the current "
                   "folder); the four outputs appear together or not at all")
    p.add_argument("--resolution", type=_resolution, default="beat", metavar="{beat|frame}",
                   help="chroma time resolution (default: beat)")
    p.add_argument("--min-length", type=whole_number("--min-length", 1), default=4, metavar="N",
                   help="shortest motif in chroma frames (default 4 = one 4/4 bar of beats)")
    p.add_argument("--min-count", type=whole_number("--min-count", 2), default=2, metavar="K",
                   help="fewest occurrences of a motif (default 2)")
    p.add_argument("--thresholds", type=whole_number(
        "--thresholds", 2, MAX_THRESHOLDS, "the curve gains nothing from more, it only takes longer"),
        default=200, metavar="N", help=f"thresholds swept, 2..{MAX_THRESHOLDS} (default 200)")
    options.add_force(p)
    p.set_defaults(func=run)


def _labels(paths: list[Path]) -> list[str]:
    """A label per file: its stem, or its name, or its path where stems coincide."""
    for key in (lambda p: p.stem, lambda p: p.name, str):
        labels = [key(p) for p in paths]
        if len(set(labels)) == len(labels):
            return labels
    raise OptionError("--midi names the same file twice; give each file once")


def run(args) -> int:
    """Handler of ``qbdi analyze``; returns the exit status."""
    paths = [Path(m) for m in args.midi]
    for midi in paths:
        if midi.is_dir():
            raise MidiFileError("is a folder, not a MIDI file; pass a .mid file with --midi", midi)
        if not midi.is_file():
            raise MidiFileError("no such file; pass an existing .mid file with --midi", midi)
    labels = _labels(paths)
    out = check_out(args, paths[0])
    analyses = {}
    for label, midi in zip(labels, paths):
        piece = pianoroll.read_midi(midi)
        # beats and bars of the piece's own meter, from its first full bar
        analyses[label] = dynamics.analyze_piece(piece, args.resolution, args.thresholds, args.min_length,
                                                 args.min_count)
        _report(analyses[label], midi, out, args)
    write_outputs(analyses, out, args.force, paths[0].name if len(paths) == 1 else f"{len(paths)} files")
    print(f"wrote {', '.join(str(out / f) for f in OUTPUT_FILES)}")
    return 0


def _report(a: dynamics.Analysis, midi: Path, out: Path, args) -> None:
    unit, curve, found = a.unit, a.curve, a.motifs
    print(f"{midi.name}: {a.n_features} {unit} ({a.n_bars:g} bars), Tonnetz chroma, "
          f"{len(curve.thresholds)} thresholds")
    print(f"  best threshold: {curve.best_threshold:.6g}")
    print(f"  total IR: {curve.best_ir:.6g} bits ({curve.best_ir / max(a.n_features, 1):.4g} bits per {unit[:-1]}), "
          f"{a.oracle.n_symbols} symbols")
    print(f"  motifs: {len(found)} (length >= {args.min_length} {unit}, >= {args.min_count} occurrences)")
    for k, m in enumerate(found[:PRINT_MOTIFS], 1):
        spans = ", ".join(span_text(s, e, a.windows) for s, e in m.spans)
        print(f"    motif {k}: {m.length} {unit}, {m.count}x at {spans}")
    if len(found) > PRINT_MOTIFS:
        print(f"    ... and {len(found) - PRINT_MOTIFS} shorter ones (all in {out / 'motifs.csv'})")
