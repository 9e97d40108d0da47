"""``qbdi analyze``: Variable Markov Oracle analysis of one or more MIDI files, overlaid (PAPER.md section 6).

    qbdi analyze --midi FILE [FILE ...] [--out DIR] [--force] [--resolution beat|frame] [--min-length N]
                 [--min-count K] [--thresholds N]

For each file, prints the best threshold, the total information rate (IR) and the motifs (every
occurrence, in bars counted from 1, as ``bar.beat`` where an occurrence starts or ends inside a bar);
writes into DIR (default ``<first FILE stem>_analysis``): ``ir_curve.csv`` and ``motifs.csv`` (a
``file`` column tells the files apart) and ``ir_curve.png`` / ``motifs.png`` with every file overlaid,
so a query and its improvisations compare in one figure (as the paper's Figs. 4 and 5). Features are
Harte's Tonnetz embedding of the chroma, compared by Euclidean (= Tonnetz) distance; see
:mod:`qbdi_utils.dynamics`. Existing outputs are never overwritten without ``--force``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from qbdi_utils import dynamics, files, pianoroll
from qbdi_utils.cli import options
from qbdi_utils.cli.bar_numbers import motif_rows, span_text
from qbdi_utils.cli.frames import off_meter
from qbdi_utils.cli.messages import warn
from qbdi_utils.cli.values import whole_number
from qbdi_utils.errors import FileSystemError, MidiFileError, OptionError, OutputExistsError
from qbdi_utils.render import plots

__all__ = ["MAX_THRESHOLDS", "OUTPUT_FILES", "PRINT_MOTIFS", "add_parser", "run"]

OUTPUT_FILES = ("ir_curve.csv", "ir_curve.png", "motifs.csv", "motifs.png")
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


def _check_out(args, midi: Path) -> Path:
    """--out (a folder; default ``<stem>_analysis``) with nothing of ours in the way unless --force."""
    if args.out is not None and not str(args.out).strip():
        raise OptionError(f"--out is empty; give a folder name, or omit --out to write into "
                          f"{midi.stem}_analysis")
    # --out is always a folder: "dir", "dir/" and "dir/." all name the folder dir
    out = Path(args.out) if args.out is not None else Path(f"{midi.stem}_analysis")
    if out.exists() and not out.is_dir():
        raise FileSystemError("is a file, not a folder; choose another --out", out)
    targets = [out / f for f in OUTPUT_FILES]
    existing = [t for t in targets if t.exists()]
    if existing and not args.force:
        raise OutputExistsError(f"{len(existing)} output(s) already exist there (e.g. {existing[0].name}); "
                                "pass --force to overwrite or choose another --out", out)
    files.check_outputs(targets, force=args.force)  # folders in the way, unwritable places: before the work
    return out


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
    out = _check_out(args, paths[0])
    analyses = {}
    for label, midi in zip(labels, paths):
        piece = pianoroll.read_midi(midi)
        off = off_meter(piece, 4, 4)
        if off:
            st, n, d = off[0]
            warn("analyze", [f"{midi}: meter {n}/{d} from bar {st // piece.spec.steps_per_frame + 1}, but bars "
                             f"here are 4/4 bars of {piece.spec.steps_per_frame} sixteenths, so bar numbers do "
                             "not follow the score's bar lines"])
        roll = piece.roll[piece.bar_offset_steps:]  # frames start on the first full bar
        analyses[label] = dynamics.analyze_roll(roll, piece.spec, args.resolution, args.thresholds,
                                                args.min_length, args.min_count)
        _report(analyses[label], midi, out, args)
    _write(analyses, out, args.force, paths[0].name if len(paths) == 1 else f"{len(paths)} files")
    print(f"wrote {', '.join(str(out / f) for f in OUTPUT_FILES)}")
    return 0


def _report(a: dynamics.Analysis, midi: Path, out: Path, args) -> None:
    unit, curve, found, per_bar = a.unit, a.curve, a.motifs, a.frames_per_bar
    print(f"{midi.name}: {a.n_features} {unit} ({a.n_features / per_bar:g} bars), Tonnetz chroma, "
          f"{len(curve.thresholds)} thresholds")
    print(f"  best threshold: {curve.best_threshold:.6g}")
    print(f"  total IR: {curve.best_ir:.6g} bits ({curve.best_ir / max(a.n_features, 1):.4g} bits per {unit[:-1]}), "
          f"{a.oracle.n_symbols} symbols")
    print(f"  motifs: {len(found)} (length >= {args.min_length} {unit}, >= {args.min_count} occurrences)")
    for k, m in enumerate(found[:PRINT_MOTIFS], 1):
        spans = ", ".join(span_text(s, e, per_bar) for s, e in m.bar_spans)
        print(f"    motif {k}: {m.length} {unit}, {m.count}x at {spans}")
    if len(found) > PRINT_MOTIFS:
        print(f"    ... and {len(found) - PRINT_MOTIFS} shorter ones (all in {out / 'motifs.csv'})")


def _write(analyses: dict, out: Path, force: bool, title: str) -> None:
    """The two tables and two figures as one output set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(analyses.values()))
    u = first.unit[:-1]
    ir_rows = [{"file": label, "threshold": float(t), "total_ir_bits": float(ir), "n_symbols": int(n)}
               for label, a in analyses.items()
               for t, ir, n in zip(a.curve.thresholds, a.curve.ir, a.curve.n_symbols)]
    motifs = [r for label, a in analyses.items() for r in motif_rows(label, a)]
    motif_cols = ["file", "motif", f"length_{first.unit}", "start_bar", f"start_{u}", "end_bar", f"end_{u}"]
    # titles carry the file name; a name in a script the plot font lacks (CJK, ...) would print a
    # "Glyph ... missing" warning per glyph and draw (the figure shows boxes there, nothing worse)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        with files.OutputSet(force=force) as outs:
            outs.add_csv(out / "ir_curve.csv", ir_rows, columns=["file", "threshold", "total_ir_bits", "n_symbols"])
            outs.add_csv(out / "motifs.csv", motifs, columns=motif_cols)
            figs = plots.analysis_figures(analyses, title)
            try:
                for name, fig in figs.items():
                    outs.add_with(out / name, lambda tmp, fig=fig: fig.savefig(tmp, dpi=120))
            finally:
                for fig in figs.values():
                    plt.close(fig)
