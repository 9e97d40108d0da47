"""The interactive explorer: one object that notebooks and the ``make explore`` web page both show.

:class:`Explorer` holds a model, a query and a set of ipywidgets controls: the bit budget per frame on
a scale that is fine where the music changes (:data:`qbdi_utils.improvise.BITS_SCALE`, 0 ... 1024 bits then full rate,
increasing to the right), the channel statistics mode, the channel seed, the query (a shipped one or
an uploaded MIDI file), the bars to plot and the bars to hear (range sliders, bars counted from 1) and
the General MIDI instrument of the audio. Every refresh transmits the query's encoding through the
channel and decodes it; the query is encoded once, when it is chosen; moving a bar range only redraws
the plot or re-renders the audio.

Given a ``state_dir`` (the web page uses ``cache_dir()/explorer``), an explorer keeps its uploads and
settings there (written atomically, :mod:`qbdi_utils.files`) and a new explorer (a reloaded page, whose
kernel is new) starts from them.

The results go into ``ipywidgets.Output`` widgets by assigning their ``outputs`` state (never through
``display(..., display_id=...)`` handles), so they live in the widget models in the kernel: a browser
that reloads the page, and a Voila page, get the current plot, metrics and audio from there.

Shown for the current settings: a metrics line (chroma cosine, Tonnetz distance and triad agreement
with the query over the whole piece; distinct triads, tonic share and empty bars of the output, as in
notebook 04), the piano-roll overlay of the query and the improvisation (:func:`render.plot_overlay`,
bars :attr:`Explorer.overlay_bars`), an audio player (bars :attr:`Explorer.audio_bars`, through
:func:`render.synthesize`) and buttons that each download the whole improvisation in one click, as
MIDI, MusicXML or WAV. A heading names the model and the corpus it was trained on.

:func:`serve` starts the web page (Voila on notebooks/explorer.ipynb) at once, with any model
(``--model DIR``) or the default one, which it prepares (trains on first use) in a separate process
while the page shows its progress (:func:`page`); ``python -m qbdi_utils.explore [--model DIR]
[--port N]`` is what ``make explore [MODEL=DIR]`` runs.

The package: :mod:`~qbdi_utils.explore.content` (the values shown: slider stops, metrics, labels,
HTML snippets, public error messages), :mod:`~qbdi_utils.explore.state` (the settings, checked once,
and what a ``state_dir`` keeps), :mod:`~qbdi_utils.explore.explorer` (:class:`Explorer`, the widgets),
:mod:`~qbdi_utils.explore.web` (:func:`page` and the model's preparation status),
:mod:`~qbdi_utils.explore.server` (:func:`serve`, :func:`main`); this ``__init__`` is the documented
home of the names below.

Imports: its submodules.
Used in: notebooks/04_query_generation.ipynb, notebooks/explorer.ipynb, ``make explore``.
"""

from qbdi_utils.explore.content import INSTRUMENTS, bits_options, corpus_label, explorer_metrics, public_message
from qbdi_utils.explore.explorer import Explorer
from qbdi_utils.explore.server import (DEFAULT_PORT, EXPLORER_NOTEBOOK, KERNEL_CULL_SECONDS, explorer_state_dir,
                                       main, serve)
from qbdi_utils.explore.state import MAX_KEPT_UPLOADS, STATE_FILE
from qbdi_utils.explore.web import MODEL_ENV, STATE_ENV, STATUS_ENV, page, read_status, write_status

__all__ = [
    "INSTRUMENTS",
    "EXPLORER_NOTEBOOK",
    "DEFAULT_PORT",
    "KERNEL_CULL_SECONDS",
    "MODEL_ENV",
    "STATUS_ENV",
    "STATE_ENV",
    "STATE_FILE",
    "MAX_KEPT_UPLOADS",
    "bits_options",
    "explorer_metrics",
    "corpus_label",
    "explorer_state_dir",
    "public_message",
    "read_status",
    "write_status",
    "Explorer",
    "page",
    "serve",
    "main",
]
