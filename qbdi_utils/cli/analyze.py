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

from qbdi_utils import files
from qbdi_utils.cli import int_option
from qbdi_utils.cli.frames import off_meter
from qbdi_utils.errors import FileSystemError, MidiFileError, OptionError, OutputExistsError
from qbdi_utils import dynamics, pianoroll
from qbdi_utils.render import plots

__all__ = ["OUTPUT_FILES", "PRINT_MOTIFS", "MAX_THRESHOLDS", "add_parser", "run"]

OUTPUT_FILES = ("ir_curve.csv", "ir_curve.png", "motifs.csv", "motifs.png")
PRINT_MOTIFS = 12  # longest first; motifs.csv lists all
# Each threshold builds one oracle; the IR curve only changes at the distinct pairwise distances, and
# 50x the default resolution already shows every step a plot can show, so more only burns time.
MAX_THRESHOLDS = 10_000


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
    p.add_argument("--resolution", default="beat", metavar="{beat|frame}",
                   help="chroma time resolution (default: beat)")
    p.add_argument("--min-length", default="4", metavar="N",
                   help="shortest motif in chroma frames (default 4 = one 4/4 bar of beats)")
    p.add_argument("--min-count", default="2", metavar="K", help="fewest occurrences of a motif (default 2)")
    p.add_argument("--thresholds", default="200", metavar="N",
                   help=f"thresholds swept, 2..{MAX_THRESHOLDS} (default 200)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=run)


def run(args) -> int:
    """Handler of ``qbdi analyze``; returns the exit status."""
    midi = Path(args.midi)
    if midi.is_dir():
        raise MidiFileError("is a folder, not a MIDI file; pass a .mid file with --midi", midi)
    if not midi.is_file():
        raise MidiFileError("no such file; pass an existing .mid file with --midi", midi)
    if args.resolution not in ("beat", "frame"):
        raise OptionError(f"--resolution {args.resolution!r} is not one of beat, frame")
    min_length = int_option("--min-length", args.min_length, 1)
    min_count = int_option("--min-count", args.min_count, 2)
    n_thr = int_option("--thresholds", args.thresholds, 2)
    if n_thr > MAX_THRESHOLDS:
        raise OptionError(f"--thresholds {n_thr} is more than {MAX_THRESHOLDS}; the curve gains nothing "
                          "from more, it only takes longer")
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


    piece = pianoroll.read_midi(midi)
    spec = piece.spec
    off = off_meter(piece, 4, 4)
    if off:
        st, n, d = off[0]
        print(f"qbdi analyze: warning: {midi}: meter {n}/{d} at step {st}, but bars here are 4/4 bars of "
              f"{spec.steps_per_frame} sixteenths, so bar numbers do not follow the score's bar lines",
              file=sys.stderr)
    roll = piece.roll[piece.bar_offset_steps:]  # frames start on the first full bar
    per_bar = spec.steps_per_frame / (spec.steps_per_quarter if args.resolution == "beat" else spec.steps_per_frame)
    feats = dynamics.chroma_features(roll, spec, args.resolution)
    dist = dynamics.pairwise_distances(feats)
    thresholds = dynamics.default_thresholds(dist, n_thr)
    curve = dynamics.ir_curve(None, thresholds, distances=dist)
    oracle = dynamics.build_oracle(threshold=curve.best_threshold, distances=dist)
    found = dynamics.motifs(oracle, min_length=min_length, min_count=min_count, frames_per_bar=per_bar)

    unit = "beats" if args.resolution == "beat" else "frames"
    print(f"{midi.name}: {len(feats)} {unit} ({len(feats) / per_bar:g} bars), Tonnetz chroma, "
          f"{len(thresholds)} thresholds")
    print(f"best threshold: {curve.best_threshold:.6g}")
    print(f"total IR: {curve.best_ir:.6g} bits ({curve.best_ir / max(len(feats), 1):.4g} bits per {unit[:-1]}), "
          f"{oracle.n_symbols} symbols")
    print(f"motifs: {len(found)} (length >= {min_length} {unit}, >= {min_count} occurrences)")
    for k, m in enumerate(found[:PRINT_MOTIFS], 1):
        spans = ", ".join(f"[{s:g}, {e:g})" for s, e in m.bar_spans)
        print(f"  motif {k}: {m.length} {unit}, {m.count}x at bars {spans}")
    if len(found) > PRINT_MOTIFS:
        print(f"  ... and {len(found) - PRINT_MOTIFS} shorter ones (all in {out / 'motifs.csv'})")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig):
        def write(tmp):
            fig.savefig(tmp, dpi=120)
        return write

    # titles carry the file name; a name in a script the plot font lacks (CJK, ...) would print a
    # "Glyph ... missing" warning per glyph and draw (the figure shows boxes there, nothing worse)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        with files.OutputSet(force=args.force) as outs:
            outs.add_csv(out / "ir_curve.csv", zip(map(float, curve.thresholds), map(float, curve.ir),
                                                   map(int, curve.n_symbols)),
                         columns=["threshold", "total_ir_bits", "n_symbols"])
            outs.add_csv(out / "motifs.csv",
                         ([k, m.length, s, e, f"{bs:g}", f"{be:g}"]
                          for k, m in enumerate(found, 1) for (s, e), (bs, be) in zip(m.spans, m.bar_spans)),
                         columns=["motif", f"length_{unit}", f"start_{unit[:-1]}", f"end_{unit[:-1]}",
                                  "start_bar", "end_bar"])
            fig, ax = plt.subplots(figsize=(7, 4))
            try:
                plots.plot_ir_curves(ax, {midi.stem: curve})
                ax.set_title(f"IR vs threshold: {midi.name}")
                fig.tight_layout()
                outs.add_with(out / "ir_curve.png", save(fig))
            finally:
                plt.close(fig)
            fig, ax = plt.subplots(figsize=(10, 1.5 + 0.4 * min(len(found), 8)))
            try:
                plots.plot_motifs(ax, {midi.stem: found}, {midi.stem: len(feats)}, frames_per_bar=per_bar,
                                     max_per_signal=8)
                ax.set_title(f"Motifs at threshold {curve.best_threshold:.3g}: {midi.name}")
                fig.tight_layout()
                outs.add_with(out / "motifs.png", save(fig))
            finally:
                plt.close(fig)
    print(f"wrote {', '.join(str(out / f) for f in OUTPUT_FILES)}")
    return 0
