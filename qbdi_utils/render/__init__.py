"""Rendering a piano roll, one module per stack (each imports its heavy library only when called):

* :mod:`qbdi_utils.render.notation`: music21 score -> MusicXML -> SVG engraved by verovio
  (Figs. 2-3, ``qbdi improvise --musicxml``), writing a bar's steps as duple and triplet note values
  with :mod:`qbdi_utils.render.tuplets`;
* :mod:`qbdi_utils.render.plots`: matplotlib piano rolls and overlays, the information-dynamics plots
  (Figs. 4-6) and the system diagram (Fig. 1);
* :mod:`qbdi_utils.render.audio`: fluidsynth when installed, else a built-in synthesizer; WAV files
  and IPython players.

Every function takes a roll ``(T, spec.n_columns)`` in the layout of
:class:`qbdi_utils.pianoroll.RollSpec` (columns ``[0, n_pitches)`` = play, ``[n_pitches,
2*n_pitches)`` = articulate, one row per 16th-note step), binary frames ``(N, spec.frame_size)``
(read as ``N * steps_per_frame`` rows), or a :class:`~qbdi_utils.pianoroll.Piece` (whose roll, spec
and first tempo are then used); any other shape is a ValueError (:func:`qbdi_utils.pianoroll.as_roll`).
Notes are read by :func:`roll_notes` (the package's note reader
:func:`qbdi_utils.pianoroll.roll_to_notes`); keys come from :func:`qbdi_utils.harmony.estimate_key`.

Every public name is re-exported here, so ``from qbdi_utils import render; render.plot_roll(...)``
works as before the split. ``render.audio`` is the player *function* (as before); the module of the
same name is ``qbdi_utils.render.audio`` (``from qbdi_utils.render.audio import ...``).

Used in: notebooks/01_data_prep.ipynb, 02_vae_training.ipynb, 03_bit_allocation_channel.ipynb,
04_query_generation.ipynb, 05_vmo_analysis.ipynb (through dynamics), ``qbdi improvise``.
"""

from __future__ import annotations

from qbdi_utils.render import notation, plots
from qbdi_utils.render._common import check_suffix, roll_notes, unpack_roll
from qbdi_utils.render.audio import (
    BUILTIN_ATTACK_S,
    BUILTIN_DECAY_S,
    BUILTIN_GAP_S,
    BUILTIN_HARMONICS,
    BUILTIN_RELEASE_S,
    BUILTIN_SUSTAIN,
    DEFAULT_SAMPLE_RATE,
    SOUNDFONT_PATHS,
    TRACK_PANS,
    WAV_FORMATS,
    audio,
    find_soundfont,
    synthesis_engine,
    synthesize,
    synthesize_stereo,
    WAV_SUFFIXES,
    wav_bytes,
    write_wav,
)
from qbdi_utils.render.notation import (
    MUSICXML_SUFFIXES,
    comparison_svg,
    musicxml_bytes,
    roll_to_stream,
    save_svg,
    stream_to_svg,
    to_musicxml,
    write_musicxml,
)
from qbdi_utils.render.plots import (
    DIAGRAM_BITS,
    DIAGRAM_VARIANCES,
    OVERLAY_COLORS,
    analysis_figures,
    plot_ir_curves,
    plot_ir_over_time,
    plot_motifs,
    plot_overlay,
    plot_roll,
    plot_system_diagram,
    save_figure,
)

__all__ = [
    # modules
    "notation",
    "plots",
    # shared
    "roll_notes",
    "check_suffix",
    "unpack_roll",
    # notation
    "roll_to_stream",
    "to_musicxml",
    "write_musicxml",
    "musicxml_bytes",
    "MUSICXML_SUFFIXES",
    "stream_to_svg",
    "comparison_svg",
    "save_svg",
    # plots
    "plot_roll",
    "plot_overlay",
    "OVERLAY_COLORS",
    "analysis_figures",
    "plot_motifs",
    "plot_ir_curves",
    "plot_ir_over_time",
    "plot_system_diagram",
    "save_figure",
    "DIAGRAM_VARIANCES",
    "DIAGRAM_BITS",
    # audio
    "find_soundfont",
    "synthesize",
    "synthesize_stereo",
    "write_wav",
    "wav_bytes",
    "WAV_SUFFIXES",
    "audio",
    "synthesis_engine",
    "DEFAULT_SAMPLE_RATE",
    "WAV_FORMATS",
    "TRACK_PANS",
    "SOUNDFONT_PATHS",
    "BUILTIN_HARMONICS",
    "BUILTIN_ATTACK_S",
    "BUILTIN_DECAY_S",
    "BUILTIN_SUSTAIN",
    "BUILTIN_RELEASE_S",
    "BUILTIN_GAP_S",
]
