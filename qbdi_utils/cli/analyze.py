"""``qbdi analyze``: Variable Markov Oracle analysis of one MIDI file (PAPER.md section 6).

    qbdi analyze --midi FILE [--out DIR] [--force] [--resolution beat|frame] [--min-length N]
                 [--min-count K] [--thresholds N]

Prints the best threshold, the total information rate (IR) and the motifs (every occurrence, in
bars); writes into DIR (default ``<FILE stem>_analysis``): ``ir_curve.csv``, ``ir_curve.png``,
``motifs.csv`` and ``motifs.png``. Features are Harte's Tonnetz embedding of the chroma, compared by
Euclidean (= Tonnetz) distance; see :mod:`qbdi_utils.dynamics`. Existing outputs are never
overwritten without ``--force``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from qbdi_utils import dynamics, files, pianoroll
from qbdi_utils.cli import options
from qbdi_utils.cli.frames import off_meter
from qbdi_utils.errors import FileSystemError, MidiFileError, OptionError, OutputExistsError
from qbdi_utils.render import plots

__all__ = ["OUTPUT_FILES", "PRINT_MOTIFS", "MAX_THRESHOLDS", "add_parser", "run"]

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
        help="information rate, best threshold and motifs of a MIDI file (VMO)",
        description="Build Variable Markov Oracles on the Tonnetz chroma of a MIDI file over a sweep of "
        "thresholds; print the best threshold, the total IR and the motifs; write the IR curve "
        "and the motif plot.",
    )
    p.add_argument("--midi", required=True, metavar="FILE", help="MIDI file to analyse")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder, created if missing (default: <FILE stem>_analysis in the current "
                   "folder); the four outputs appear together or not at all")
    p.add_argument("--resolution", type=_resolution, default="beat", metavar="{beat|frame}",
                   help="chroma time resolution (default: beat)")
    p.add_argument("--min-length", type=options.whole_number("--min-length", 1), default=4, metavar="N",
                   help="shortest motif in chroma frames (default 4 = one 4/4 bar of beats)")
    p.add_argument("--min-count", type=options.whole_number("--min-count", 2), default=2, metavar="K",
                   help="fewest occurrences of a motif (default 2)")
    p.add_argument("--thresholds", type=options.whole_number(
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


def run(args) -> int:
    """Handler of ``qbdi analyze``; returns the exit status."""
    midi = Path(args.midi)
    if midi.is_dir():
        raise MidiFileError("is a folder, not a MIDI file; pass a .mid file with --midi", midi)
    if not midi.is_file():
        raise MidiFileError("no such file; pass an existing .mid file with --midi", midi)
    out = _check_out(args, midi)

    piece = pianoroll.read_midi(midi)
    spec = piece.spec
    off = off_meter(piece, 4, 4)
    if off:
        st, n, d = off[0]
        print(f"qbdi analyze: warning: {midi}: meter {n}/{d} at step {st}, but bars here are 4/4 bars of "
              f"{spec.steps_per_frame} sixteenths, so bar numbers do not follow the score's bar lines",
              file=sys.stderr)
    roll = piece.roll[piece.bar_offset_steps:]  # frames start on the first full bar
    a = dynamics.analyze_roll(roll, spec, args.resolution, args.thresholds, args.min_length, args.min_count)
    _report(a, midi, out, args)
    _write(a, midi, out, args.force)
    print(f"wrote {', '.join(str(out / f) for f in OUTPUT_FILES)}")
    return 0


def _report(a: dynamics.Analysis, midi: Path, out: Path, args) -> None:
    unit, curve, found, per_bar = a.unit, a.curve, a.motifs, a.frames_per_bar
    print(f"{midi.name}: {a.n_features} {unit} ({a.n_features / per_bar:g} bars), Tonnetz chroma, "
          f"{len(curve.thresholds)} thresholds")
    print(f"best threshold: {curve.best_threshold:.6g}")
    print(f"total IR: {curve.best_ir:.6g} bits ({curve.best_ir / max(a.n_features, 1):.4g} bits per {unit[:-1]}), "
          f"{a.oracle.n_symbols} symbols")
    print(f"motifs: {len(found)} (length >= {args.min_length} {unit}, >= {args.min_count} occurrences)")
    for k, m in enumerate(found[:PRINT_MOTIFS], 1):
        spans = ", ".join(f"[{s:g}, {e:g})" for s, e in m.bar_spans)
        print(f"  motif {k}: {m.length} {unit}, {m.count}x at bars {spans}")
    if len(found) > PRINT_MOTIFS:
        print(f"  ... and {len(found) - PRINT_MOTIFS} shorter ones (all in {out / 'motifs.csv'})")


def _write(a: dynamics.Analysis, midi: Path, out: Path, force: bool) -> None:
    """The two tables and two figures as one output set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # titles carry the file name; a name in a script the plot font lacks (CJK, ...) would print a
    # "Glyph ... missing" warning per glyph and draw (the figure shows boxes there, nothing worse)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        with files.OutputSet(force=force) as outs:
            rows, columns = a.ir_rows()
            outs.add_csv(out / "ir_curve.csv", rows, columns=columns)
            rows, columns = a.motif_rows()
            outs.add_csv(out / "motifs.csv", rows, columns=columns)
            figs = plots.analysis_figures(a, midi.name)
            try:
                for name, fig in figs.items():
                    outs.add_with(out / name, lambda tmp, fig=fig: fig.savefig(tmp, dpi=120))
            finally:
                for fig in figs.values():
                    plt.close(fig)
