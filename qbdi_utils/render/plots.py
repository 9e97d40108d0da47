"""Figures drawn with matplotlib: piano rolls and query/output overlays, the information-dynamics
plots (Figs. 4-6) and the system diagram (Fig. 1).

Roll plots take a roll ``(T, spec.n_columns)``, frames ``(N, spec.frame_size)`` or a
:class:`~qbdi_utils.pianoroll.Piece` (:func:`qbdi_utils.pianoroll.as_roll`). matplotlib is imported
inside the functions.

Used in: notebooks/01_data_prep.ipynb, 02_vae_training.ipynb, 03_bit_allocation_channel.ipynb (Fig. 1),
04_query_generation.ipynb, 05_vmo_analysis.ipynb (Figs. 4-6), ``qbdi analyze``.
"""

from __future__ import annotations


import numpy as np

from qbdi_utils import channel, files
from qbdi_utils.pianoroll import RollSpec
from qbdi_utils.render._common import unpack_roll

__all__ = [
    "analysis_figures",
    "plot_roll",
    "plot_overlay",
    "OVERLAY_COLORS",
    "plot_motifs",
    "plot_ir_curves",
    "plot_ir_over_time",
    "plot_system_diagram",
    "DIAGRAM_VARIANCES",
    "DIAGRAM_BITS",
    "save_figure",
]


# --------------------------------------------------------------------------------------------------
# Saving


def save_figure(fig, path, **savefig_kwargs):
    """Write a matplotlib figure to ``path`` atomically (temporary name, then rename), replacing it.

    A figure under ``figures/`` is something a reader keeps and compares: a run killed halfway, or a
    full disk, must leave the previous figure whole rather than a truncated PNG. The format follows
    the suffix, as with ``fig.savefig``.

    Args:
        fig: a matplotlib Figure.
        path: destination file (.png, .svg, .pdf, ...); missing folders are created.
        **savefig_kwargs: passed to ``fig.savefig`` (dpi, metadata, bbox_inches, ...).

    Returns:
        ``path`` as a Path.

    Raises:
        FileSystemError: a file-system fault (one line naming the path and the cause).

    Used in: notebooks 01-07 (every saved figure).
    """
    return files.write_with(path, lambda tmp: fig.savefig(tmp, **savefig_kwargs), force=True)


# --------------------------------------------------------------------------------------------------
# Piano-roll plots


def _bar_lines(ax, n_steps, spf, color="0.6"):
    for x in range(0, n_steps + 1, spf):
        ax.axvline(x - 0.5, color=color, lw=0.6, zorder=3)


def _pitch_axis(ax, lo, hi):
    names = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    ticks = [p for p in range(lo, hi + 1) if p % 12 == 0]
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{names[p % 12]}{p // 12 - 1}" for p in ticks])
    ax.set_ylim(lo - 0.5, hi + 0.5)
    ax.set_ylabel("pitch")


def _pitch_range(spec, *rolls_play):
    used = np.flatnonzero(np.any(np.vstack([r.any(axis=0)[None] for r in rolls_play]), axis=0))
    if used.size == 0:
        return spec.min_pitch + 36, spec.min_pitch + 48  # C4..C5 when empty
    lo = max(spec.min_pitch, spec.min_pitch + int(used[0]) - 2)
    hi = min(spec.max_pitch, spec.min_pitch + int(used[-1]) + 2)
    return lo, hi


def _bar_ticks(ax, n_steps, spf, first_bar=1):
    n_bars = max(1, -(-n_steps // spf))
    every = max(1, n_bars // 16)
    ticks = list(range(0, n_bars, every))
    ax.set_xticks([t * spf - 0.5 for t in ticks])
    ax.set_xticklabels([str(first_bar + t) for t in ticks])
    ax.set_xlabel("bar")


def plot_roll(roll, spec: RollSpec | None = None, ax=None, title: str = "", bar_lines: bool = True,
              color: str = "tab:blue"):
    """Plot a piano roll: sounding steps as bars, note onsets darker; bar lines; pitch names.

    Args:
        roll: (T, spec.n_columns) uint8 roll, or a Piece.
        spec: roll layout (default RollSpec()).
        ax: matplotlib Axes to draw into (a new figure when None).
        title: axes title.
        bar_lines: draw a vertical line at every bar (spec.steps_per_frame steps).
        color: colour of the notes.

    Returns:
        The matplotlib Axes.

    Raises:
        ValueError: ``roll`` is neither a roll, frames nor a Piece of this layout.

    Used in: notebooks/01_data_prep.ipynb, notebooks/02_vae_training.ipynb,
    notebooks/04_query_generation.ipynb.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    roll, spec, _ = unpack_roll(roll, spec, None)
    n = spec.n_pitches
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.5))
    T = roll.shape[0]
    img = np.ones((n, max(T, 1), 3))
    rgb = np.array(to_rgb(color))
    light = 1 - 0.55 * (1 - rgb)
    play = roll[:, :n].T != 0
    art = (roll[:, n:].T != 0) & play
    img[play] = light
    img[art] = rgb
    ax.imshow(img, origin="lower", aspect="auto", interpolation="nearest",
              extent=(-0.5, max(T, 1) - 0.5, spec.min_pitch - 0.5, spec.max_pitch + 0.5))
    lo, hi = _pitch_range(spec, roll[:, :n])
    _pitch_axis(ax, lo, hi)
    if bar_lines:
        _bar_lines(ax, T, spec.steps_per_frame)
    _bar_ticks(ax, T, spec.steps_per_frame)
    if title:
        ax.set_title(title)
    return ax


#: Colours of :func:`plot_overlay`: query only, output only, both.
OVERLAY_COLORS = {"query only": "#4c78a8", "output only": "#e45756", "both": "#2ca02c"}


def plot_overlay(query_roll, output_roll, spec: RollSpec | None = None, *, ax=None, title: str = "",
                 bar_lines: bool = True, labels=("query", "output"), bar_starts=None, first_bar: int = 1):
    """Overlay two piano rolls, colour-coded: sounding in the query only, in the output only, in both.

    Rolls of different lengths are compared over the longer one (the shorter counts as silent).

    Args:
        query_roll: (T1, spec.n_columns) uint8 roll or Piece.
        output_roll: (T2, spec.n_columns) uint8 roll or Piece.
        spec: roll layout (default RollSpec()).
        ax: matplotlib Axes (a new figure when None).
        title: axes title.
        bar_lines: draw bar lines.
        labels: names used in the legend for (query, output).
        bar_starts: the steps (from the rolls' first step) where bars start, in any meter (e.g. a
            3/4 query's bars, :func:`qbdi_utils.explore.content.bar_starts`); None: a bar every
            ``spec.steps_per_frame`` steps.
        first_bar: the number of the bar at step 0 (with ``bar_starts``).

    Returns:
        The matplotlib Axes.

    Used in: notebooks/04_query_generation.ipynb, the explorer.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    q, spec, _ = unpack_roll(query_roll, spec, None)
    o, _, _ = unpack_roll(output_roll, spec, None)
    n = spec.n_pitches
    T = max(q.shape[0], o.shape[0], 1)
    qp = np.zeros((T, n), bool)
    op = np.zeros((T, n), bool)
    qp[: q.shape[0]] = q[:, :n] != 0
    op[: o.shape[0]] = o[:, :n] != 0
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.5))
    img = np.ones((n, T, 3))
    img[(qp & ~op).T] = to_rgb(OVERLAY_COLORS["query only"])
    img[(op & ~qp).T] = to_rgb(OVERLAY_COLORS["output only"])
    img[(qp & op).T] = to_rgb(OVERLAY_COLORS["both"])
    ax.imshow(img, origin="lower", aspect="auto", interpolation="nearest",
              extent=(-0.5, T - 0.5, spec.min_pitch - 0.5, spec.max_pitch + 0.5))
    lo, hi = _pitch_range(spec, qp, op)
    _pitch_axis(ax, lo, hi)
    if bar_starts is None:
        if bar_lines:
            _bar_lines(ax, T, spec.steps_per_frame)
        _bar_ticks(ax, T, spec.steps_per_frame)
    else:
        starts = [int(x) for x in bar_starts if 0 <= int(x) <= T]
        if bar_lines:
            for x in starts + [T]:
                ax.axvline(x - 0.5, color="0.6", lw=0.6, zorder=3)
        every = max(1, len(starts) // 16)
        ax.set_xticks([x - 0.5 for x in starts[::every]])
        ax.set_xticklabels([str(int(first_bar) + k) for k in range(0, len(starts), every)])
        ax.set_xlabel("bar")
    handles = [
        Patch(color=OVERLAY_COLORS["query only"], label=f"{labels[0]} only"),
        Patch(color=OVERLAY_COLORS["output only"], label=f"{labels[1]} only"),
        Patch(color=OVERLAY_COLORS["both"], label="both"),
    ]
    ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.9)
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------------------------------
# Information dynamics (Figs. 4-6)


def plot_motifs(ax, motif_lists: dict, n_frames: dict, *, frames_per_bar: float = 4.0, max_per_signal: int = 6,
                first_bar: int = 0, n_bars: dict | None = None):
    """Fig. 4: motif occurrences as bars on one timeline per signal (in bars).

    Args:
        ax: a matplotlib Axes.
        motif_lists: {signal name: list of :class:`qbdi_utils.dynamics.Motif`}, drawn top to bottom.
        n_frames: {signal name: number of frames}, for the timeline length.
        frames_per_bar: feature rows per bar.
        max_per_signal: draw at most this many motifs per signal (longest first).
        first_bar: the number of the first bar on the axis (``qbdi analyze``: 1, as scores count).
        n_bars: {signal name: its length in bars}: the occurrences are then drawn where their
            ``bar_spans`` lie (bars of any meter, :func:`qbdi_utils.dynamics.analyze_piece`) and
            ``frames_per_bar`` is not used.

    Returns:
        the Axes.

    Used in: notebooks/05_vmo_analysis.ipynb (Fig. 4), ``qbdi analyze``.
    """
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    yticks, ylabels = [], []
    y = 0.0
    for name, mlist in motif_lists.items():
        shown = mlist[:max_per_signal]
        rows = max(len(shown), 1)
        for r, m in enumerate(shown):
            yy = y + r
            spans = m.bar_spans if n_bars is not None else [(s / frames_per_bar, e / frames_per_bar)
                                                            for s, e in m.spans]
            for s, e in spans:
                ax.broken_barh([(first_bar + s, e - s)], (yy + 0.1, 0.8),
                               facecolor=cmap(r % 10), edgecolor="black", linewidth=0.5)
        length = n_bars[name] if n_bars is not None else n_frames[name] / frames_per_bar
        ax.hlines(y - 0.25, first_bar, first_bar + length, color="gray", linewidth=0.8)
        yticks.append(y + rows / 2)
        ylabels.append(f"{name}\n({len(mlist)} motifs)")
        y += rows + 1
    ax.set_yticks(yticks)
    ax.set_yticklabels(ylabels)
    ax.invert_yaxis()
    ax.set_xlabel("bar")
    if n_bars is not None:
        ax.set_xlim(first_bar, first_bar + (max(n_bars.values()) if n_bars else 1))
    else:
        ax.set_xlim(first_bar, first_bar + (max(n_frames.values()) / frames_per_bar if n_frames else 1))
    return ax


def plot_ir_curves(ax, curves: dict):
    """Fig. 5: total IR against the threshold, one line per signal, best threshold marked.

    Args:
        ax: a matplotlib Axes.
        curves: {signal name: :class:`qbdi_utils.dynamics.IRCurve`}.

    Returns:
        the Axes.

    Used in: notebooks/05_vmo_analysis.ipynb (Fig. 5), ``qbdi analyze``.
    """
    for name, c in curves.items():
        line, = ax.plot(c.thresholds, c.ir, label=f"{name} (best t={c.best_threshold:.3f})")
        ax.plot([c.best_threshold], [c.best_ir], "o", color=line.get_color())
    ax.set_xlabel("threshold (distance)")
    ax.set_ylabel("total IR (bits)")
    ax.legend()
    return ax


def analysis_figures(analyses: dict, title: str) -> dict:
    """The two figures of ``qbdi analyze``: the IR curves and the motifs of one or more files, overlaid
    (as Fig. 4 and Fig. 5 compare a query with its improvisations).

    Args:
        analyses: {label (e.g. the file's stem): :class:`qbdi_utils.dynamics.Analysis`}, one resolution;
            drawn in this order (IR curves on one axes, motif timelines top to bottom).
        title: what the titles name (a file name, or "3 files").

    Returns:
        {"ir_curve.png": Figure, "motifs.png": Figure}; the caller saves and closes them. Bars on the
        motif axis count from 1.

    Used in: ``qbdi analyze``.
    """
    import matplotlib.pyplot as plt

    figs = {}
    fig, ax = plt.subplots(figsize=(7, 4))
    figs["ir_curve.png"] = fig
    plot_ir_curves(ax, {k: a.curve for k, a in analyses.items()})
    ax.set_title(f"IR vs threshold: {title}")
    fig.tight_layout()
    per_file = 8 if len(analyses) == 1 else 4
    rows = sum(max(min(len(a.motifs), per_file), 1) + 1 for a in analyses.values())
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.4 * rows))
    figs["motifs.png"] = fig
    first = next(iter(analyses.values()))
    plot_motifs(ax, {k: a.motifs for k, a in analyses.items()}, {k: a.n_features for k, a in analyses.items()},
                frames_per_bar=first.frames_per_bar, max_per_signal=per_file, first_bar=1,
                n_bars={k: a.n_bars for k, a in analyses.items()})
    shown = ", ".join(f"{a.curve.best_threshold:.3g}" for a in analyses.values())
    ax.set_title(f"Motifs at threshold{'s' if len(analyses) > 1 else ''} {shown}: {title}")
    fig.tight_layout()
    return figs


def plot_ir_over_time(ax, irs: dict, frames_per_bar: float = 1.0):
    """Fig. 6: per-frame IR over time, one line per signal.

    Args:
        ax: a matplotlib Axes.
        irs: {signal name: (N,) IR per frame}.
        frames_per_bar: frames per bar (1 for latent frames, which are bars).

    Returns:
        the Axes.

    Used in: notebooks/05_vmo_analysis.ipynb (Fig. 6).
    """
    for name, ir in irs.items():
        ir = np.asarray(ir)
        ax.plot(np.arange(len(ir)) / frames_per_bar, ir, label=f"{name} (total {ir.sum():.1f} bits)")
    ax.set_xlabel("bar")
    ax.set_ylabel("IR (bits)")
    ax.legend()
    return ax


# --------------------------------------------------------------------------------------------------
# Fig. 1: the system diagram

#: Illustrative component variances of the water-filling inset of Fig. 1 (not measured ones).
DIAGRAM_VARIANCES = (3.0, 2.2, 1.5, 1.1, 0.7, 0.45, 0.3, 0.18, 0.1, 0.05)
#: Bits per frame poured into :data:`DIAGRAM_VARIANCES` in the inset.
DIAGRAM_BITS = 4


def _diagram_box(ax, box, title, body, color):
    """A rounded box ``box`` = (x, y, width, height) with a bold title near its top and a body text
    in its middle."""
    from matplotlib.patches import FancyBboxPatch

    x, y, w, h = box
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                fc=color, ec="0.25", lw=1.2))
    ax.text(x + w / 2, y + h - 0.13, title, ha="center", va="top", fontsize=11, weight="bold")
    ax.text(x + w / 2, y + h / 2 - 0.14, body, ha="center", va="center", fontsize=8.6, linespacing=1.35)


def _diagram_arrow(ax, a, b, text="", offset=(0, 0.09), **kw):
    """An arrow from point ``a`` to point ``b`` with an optional label above its middle."""
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=14, lw=1.4, color="0.2", **kw))
    if text:
        ax.text((a[0] + b[0]) / 2 + offset[0], (a[1] + b[1]) / 2 + offset[1], text,
                ha="center", va="bottom", fontsize=9)


def plot_system_diagram(ax=None, variances=DIAGRAM_VARIANCES, total_bits: float = DIAGRAM_BITS):
    """Fig. 1: query bar -> encoder -> noisy channel (its rates set by bit allocation) -> decoder -> output bar.

    Six labelled boxes (query bar, Encoder, Noisy channel, Decoder, output bar, Bit allocation) on a
    12.5 x 4.6 data-unit canvas, six arrows (the chain left to right, the rates R_j from the bit
    allocation down into the channel, the source statistics from the encoder up into the bit
    allocation), and an inset showing reverse water-filling of ``total_bits`` over ``variances``
    (:func:`qbdi_utils.channel.water_level`): each bar is a variance, its light part the distortion
    min(theta, variance), the dashed line the level theta.

    Args:
        ax: matplotlib Axes to draw into (its limits are set and its frame hidden); a new 12.5 x 4.6
            inch figure when None.
        variances: (L,) illustrative component variances for the inset.
        total_bits: bits per frame poured into them.

    Returns:
        The matplotlib Figure holding ``ax``.

    Raises:
        OptionError: ``variances`` or ``total_bits`` is invalid (from :func:`channel.water_level`).

    Used in: notebooks/03_bit_allocation_channel.ipynb (Fig. 1).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(12.5, 4.6))
    else:
        fig = ax.figure
    ax.set_xlim(0, 12.5)
    ax.set_ylim(0, 4.6)
    ax.axis("off")
    h, y = 1.45, 0.55
    _diagram_box(ax, (0.1, y, 1.75, h), "query bar", "$x_n$: 16 steps × 156\n(play + articulate)\nanother style",
                 "#f2f2f2")
    _diagram_box(ax, (2.45, y, 2.0, h), "Encoder", "$q(z\\,|\\,x)$\n2496 → 500 ReLU\n→ $\\mu$, $\\log\\sigma^2$ (500)",
                 "#cfe2f3")
    _diagram_box(ax, (5.15, y, 2.55, h), "Noisy channel",
                 "Berger test channel $Q(z_d\\,|\\,z_e)$\n$\\mu_d = z_e + 2^{-2R_j}(\\mu_e - z_e)$\n"
                 "$\\sigma_d^2 = 2^{-4R_j}(2^{2R_j}-1)\\,\\sigma_e^2$", "#fde9c9")
    _diagram_box(ax, (8.4, y, 2.0, h), "Decoder", "$p(x\\,|\\,z)$\n500 → 500 ReLU\n→ 2496 sigmoid", "#d9ead3")
    _diagram_box(ax, (11.0, y, 1.4, h), "output bar", "corpus style,\nquery's form", "#f2f2f2")
    _diagram_box(ax, (5.15, 2.55, 2.55, 1.85), "Bit allocation", "\n\n\n\nreverse water-filling: $B$ bits/frame",
                 "#ead1dc")
    ym = y + h / 2
    _diagram_arrow(ax, (1.85, ym), (2.45, ym))
    _diagram_arrow(ax, (4.45, ym), (5.15, ym), "$z_e$")
    _diagram_arrow(ax, (7.7, ym), (8.4, ym), "$z_d$")
    _diagram_arrow(ax, (10.4, ym), (11.0, ym))
    _diagram_arrow(ax, (6.425, 2.55), (6.425, y + h), "$R_j$ bits", offset=(0.35, -0.1))
    _diagram_arrow(ax, (3.45, y + h), (5.15, 3.3), "$\\mu_e, \\sigma_e^2$\n(source statistics)", offset=(-0.55, 0.05),
                   connectionstyle="arc3,rad=-0.25")
    ax.text(6.425, 0.3, "0 bits: component removed, decoder gets $\\mu_e$;   $R\\to\\infty$: $z_d = z_e$",
            ha="center", fontsize=8.6, style="italic")
    # inset: reverse water-filling on the illustrative variances
    ins = ax.inset_axes([5.45, 3.05, 1.95, 0.95], transform=ax.transData)
    var = np.asarray(variances, dtype=np.float64)
    theta, _ = channel.water_level(var, total_bits)
    ins.bar(np.arange(var.size), var, color="#a64d79", width=0.75)
    ins.bar(np.arange(var.size), np.minimum(var, theta), color="#d5a6bd", width=0.75)
    ins.axhline(theta, color="#073763", lw=1.2, ls="--")
    ins.text(var.size - 0.4, theta * 1.08, "$\\theta$", ha="right", va="bottom", fontsize=9, color="#073763")
    ins.set_xticks([])
    ins.set_yticks([])
    ins.patch.set_alpha(0.0)
    for spine in ins.spines.values():
        spine.set_visible(False)
    ax.set_title("Fig. 1  Query-based deep improvisation: encoder → rate-limited noisy channel → decoder",
                 fontsize=12)
    return fig
