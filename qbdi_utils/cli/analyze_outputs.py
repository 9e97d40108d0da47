"""The outputs of ``qbdi analyze``: the check of ``--out`` before the work, and the two tables and two
figures written as one output set.

Imports: files, errors, render.plots, cli.bar_numbers. Used in: cli/analyze.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from qbdi_utils import files
from qbdi_utils.cli.bar_numbers import motif_rows
from qbdi_utils.errors import FileSystemError, OptionError, OutputExistsError
from qbdi_utils.render import plots

__all__ = ["OUTPUT_FILES", "check_out", "write_outputs"]

OUTPUT_FILES = ("ir_curve.csv", "ir_curve.png", "motifs.csv", "motifs.png")


def check_out(args, midi: Path) -> Path:
    """``--out`` (a folder; default ``<stem>_analysis`` of the first ``midi``) with none of
    :data:`OUTPUT_FILES` in the way unless ``--force``, checked before the work.

    Raises:
        OptionError: an empty --out.
        FileSystemError: --out is a file, or an output cannot be written there.
        OutputExistsError: an output exists and --force was not given.
    """
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


def write_outputs(analyses: dict, out: Path, force: bool, title: str) -> None:
    """The two tables and the two figures of :data:`OUTPUT_FILES` as one output set (all or none).

    Args:
        analyses: label -> :class:`qbdi_utils.dynamics.Analysis`, in the order of the files.
        out: the folder.
        force: overwrite existing outputs.
        title: the figures' title.
    """
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
