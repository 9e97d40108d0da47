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

Used in: notebooks/04_query_generation.ipynb, notebooks/explorer.ipynb, ``make explore``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from qbdi_utils import corpus, files, harmony, limits, navigate, paths, pianoroll, render, style, training
from qbdi_utils.errors import CorpusError, MidiFileError, ModelError, OptionError, QbdiError
from qbdi_utils.improvise import BITS_SCALE, STATS_MODES, encode_query, improvise_batch, parse_bits, rate_label
from qbdi_utils.model import DEFAULT_CONFIG, StyleVAE
from qbdi_utils.model.persist import read_model
from qbdi_utils.paths import REPO_ROOT
from qbdi_utils.pianoroll import Piece

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

#: General MIDI programs offered for the audio (name, program number).
INSTRUMENTS: tuple = (("acoustic grand piano", 0), ("church organ", 19), ("string ensemble", 48),
                      ("choir aahs", 52), ("flute", 73))

#: The notebook that ``make explore`` serves with Voila.
EXPLORER_NOTEBOOK = REPO_ROOT / "notebooks" / "explorer.ipynb"

#: Port of the explorer web page.
DEFAULT_PORT = 8866

#: Seconds after which Voila shuts down the kernel of a page that was closed or reloaded.
KERNEL_CULL_SECONDS = 300

#: Environment of the page's kernels, set by :func:`serve`: the model folder, the status file of the
#: model's preparation (:func:`write_status`), the folder where explorers keep uploads and settings.
MODEL_ENV = "QBDI_EXPLORE_MODEL"
STATUS_ENV = "QBDI_EXPLORE_STATUS"
STATE_ENV = "QBDI_EXPLORE_STATE"

#: Settings file of an explorer's ``state_dir`` (uploaded files go to its ``uploads/``).
STATE_FILE = "state.json"
#: Uploads an explorer's ``state_dir`` keeps (the oldest are forgotten beyond).
MAX_KEPT_UPLOADS = 16

_UPLOAD_PREFIX = "upload:"
_GIVEN_PREFIX = "given:"
_AUDIO_CACHE_SIZE = 32


def bits_options(scale=BITS_SCALE) -> list[tuple[str, int | str]]:
    """(label, value) pairs of the bit slider: ("0", 0) ... ("1024", 1024), then ("full", "full").

    Full rate is the string "full" (ipywidgets selection widgets cannot hold ``None`` as a value);
    :func:`qbdi_utils.improvise.parse_bits` reads both.

    Args:
        scale: bit budgets, increasing, ``None`` (full rate) last if present.

    Returns:
        list of (label, value) for ``ipywidgets.SelectionSlider(options=...)``.

    Raises:
        OptionError: the scale is empty, not increasing, or has ``None`` before its end.

    Used in: notebooks/explorer.ipynb (through :class:`Explorer`).
    """
    scale = list(scale)
    if not scale:
        raise OptionError("the bit scale is empty")
    if None in scale[:-1]:
        raise OptionError("full rate (None) can only be the last stop of the bit scale")
    nums = [int(b) for b in scale if b is not None]
    if any(b < 0 for b in nums) or any(b >= c for b, c in zip(nums, nums[1:])):
        raise OptionError(f"bit budgets must be >= 0 and strictly increasing, got {nums}")
    return [("full", "full") if b is None else (str(int(b)), int(b)) for b in scale]


def explorer_metrics(query, output, tonic: int | None = None) -> dict:
    """The explorer's metrics line as numbers: agreement with the query and the output's harmony.

    Both pieces are cut into frames on the query's bar lines (``query.bar_offset_steps``).

    Args:
        query: the query Piece.
        output: the improvisation (a Piece with the query's steps and spec).
        tonic: index in ``harmony.TRIAD_NAMES`` of the query's tonic triad (estimated when None).

    Returns:
        dict with ``chroma_cosine``, ``tonnetz_distance``, ``triad_agreement`` (means over bars,
        :func:`harmony.frame_agreement`), ``distinct_triads``, ``tonic_share``, ``empty_frame_rate``
        (:func:`harmony.output_stats`) and ``tonic``.

    Used in: notebooks/explorer.ipynb (through :class:`Explorer`).
    """
    off = int(query.bar_offset_steps)
    q_chroma = harmony.chroma(pianoroll.to_frames(query.roll, query.spec, off), query.spec)
    if tonic is None:
        tonic = harmony.tonic_triad(q_chroma)
    o_frames = pianoroll.to_frames(output.roll, output.spec, off)
    agree = harmony.frame_agreement(q_chroma, harmony.chroma(o_frames, output.spec))
    stats = harmony.output_stats(o_frames, tonic=tonic, spec=output.spec)
    return {**agree, **{k: stats[k] for k in ("distinct_triads", "tonic_share", "empty_frame_rate", "tonic")}}


def corpus_label(model) -> str:
    """In words, the corpus a model was trained on, as recorded in ``model.info["corpus"]``.

    A model that records none but has the default configuration is the default model (the Bach
    chorales, as :func:`qbdi_utils.navigate.model_corpus` assumes too).

    Args:
        model: a StyleVAE (``info``, ``config``).

    Returns:
        e.g. "the Bach chorales", "the MIDI files of pop_clips/", "a corpus the model does not record".

    Used in: the explorer's heading (notebooks/explorer.ipynb, ``make explore``).
    """
    rec = (getattr(model, "info", None) or {}).get("corpus")
    source = rec.get("source") if isinstance(rec, dict) else None
    if not source and training.same_config(model.config, DEFAULT_CONFIG):
        source = "chorales"
    named = {"chorales": "the Bach chorales", "essen": "the Essen folk songs (Erk collection)"}
    if not source:
        return "a corpus the model does not record"
    if source in named:
        return named[source]
    name = Path(str(source)).name
    return f"the MIDI files of {name}/" if not name.lower().endswith((".mid", ".midi")) else f"the MIDI file {name}"


def explorer_state_dir() -> Path:
    """Where the web page's explorers keep uploads and settings: ``cache_dir()/explorer``.

    Used in: :func:`serve` (``make explore``).
    """
    return paths.cache_dir() / "explorer"


def write_status(path, state: str, message: str = "", model_dir=None) -> None:
    """Write the status of the page's model (atomically): "preparing", "ready" or "failed".

    Args:
        path: the status file (JSON).
        state: "preparing", "ready" or "failed".
        message: the last progress line, or the error.
        model_dir: the model's folder (once ready).

    Used in: :func:`serve`.
    """
    files.write_text(path, json.dumps({"state": state, "message": message, "time": time.time(),
                                       "model_dir": None if model_dir is None else str(model_dir)}),
                     force=True)


def read_status(path) -> dict:
    """The status written by :func:`write_status` ({"state": "preparing"} while the file is absent).

    Used in: :func:`page`.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"state": "preparing", "message": ""}


def _metrics_html(name: str, mode: str, seed: int, m: dict) -> str:
    return (
        f"<b>{html.escape(name)}</b>, statistics <i>{html.escape(mode)}</i>, seed {seed}: "
        f"chroma cosine {m['chroma_cosine']:.3f}, Tonnetz distance {m['tonnetz_distance']:.3f}, "
        f"triad agreement {m['triad_agreement']:.3f}, distinct triads {m['distinct_triads']:.1f}, "
        f"tonic share {m['tonic_share']:.3f}, empty bars {m['empty_frame_rate']:.2f}"
        f" | style: fit corpus {m['style_fit_corpus']:.3f}, fit query {m['style_fit_query']:.3f}, "
        f"onsets/bar {m['onsets_per_bar']:.1f} (corpus {m['corpus_onsets_per_bar']:.1f})"
    )


def _display_data(mime: dict) -> dict:
    """One ``display_data`` output of an Output widget's ``outputs`` state."""
    return {"output_type": "display_data", "data": mime, "metadata": {}}


def _excerpt(roll, bars, spec):
    """Rows of bars (first, last), 1-based inclusive, as a valid roll."""
    a, b = (int(bars[0]) - 1) * spec.steps_per_frame, int(bars[1]) * spec.steps_per_frame
    return pianoroll.make_valid(np.asarray(roll)[a:b], spec)


def _wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    from scipy.io import wavfile

    pcm = np.clip(np.round(np.asarray(wave, np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    buf = io.BytesIO()
    wavfile.write(buf, int(sample_rate), pcm)
    return buf.getvalue()


_UPLOAD_CSS = (
    "<style>.qbdi-upload{font-size:0 !important;width:auto !important;max-width:320px;white-space:nowrap;"
    "overflow:hidden;text-overflow:ellipsis}.qbdi-upload i{font-size:13px;margin-right:5px}"
    ".qbdi-upload::after{content:attr(title);font-size:13px}</style>"
)


def _download_html(name: str, mime: str, data: bytes) -> str:
    """A link to ``data`` that the page follows once by itself (a one-click download).

    The browser turns the data URL into a blob (large WAV files exceed what a data URL may navigate
    to) and clicks it; ``sessionStorage`` remembers the link, so a redraw does not download it again.
    The link stays visible for browsers that block the automatic click.
    """
    nonce = f"qbdi-dl-{time.time_ns():x}"
    href = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return (f'<a id="{nonce}" download="{html.escape(name)}" href="{href}" style="font-weight:bold">'
            f'{html.escape(name)}</a> ({len(data) / 1024:.0f} KB; saved by your browser, click to save again)'
            f'<script>(function(){{var k="{nonce}";if(window.sessionStorage.getItem(k))return;'
            f'window.sessionStorage.setItem(k,"1");var a=document.getElementById(k);if(!a)return;'
            f'fetch(a.href).then(function(r){{return r.blob()}}).then(function(b){{var u=URL.createObjectURL(b);'
            f'var t=document.createElement("a");t.href=u;t.download=a.getAttribute("download");'
            f'document.body.appendChild(t);t.click();t.remove();setTimeout(function(){{URL.revokeObjectURL(u)}},'
            f'120000)}})}})();</script>')


class Explorer:
    """Controls and outputs of one interactive exploration of a model with a query.

    Attributes (ipywidgets): ``heading`` (HTML naming the model and its corpus), ``bits``
    (SelectionSlider over :data:`BITS_SCALE`, value an int or "full"), ``mode`` (Dropdown of statistics
    modes), ``seed`` (BoundedIntText), ``query`` (Dropdown of shipped and uploaded queries), ``upload``
    (FileUpload of .mid files; its label shows the last file uploaded), ``program`` (Dropdown of
    :data:`INSTRUMENTS`), ``plot_range`` and ``audio_range`` (IntRangeSliders of the bars plotted and
    heard, bars counted from 1), ``metrics``, ``plot``, ``audio``, ``downloads`` (Output widgets),
    ``download_buttons`` (dict kind -> Button), ``status`` (HTML), ``widget`` (the whole layout, a VBox).

    Other attributes: ``improvisation`` (the current Improvisation), ``last_metrics`` (dict of
    :func:`explorer_metrics`), ``timings`` (seconds of the last refresh by stage: "channel" = transmit and
    decode, "metrics", "plot", "visible" = until metrics and plot are published, "audio", "total"),
    ``encode_count`` (how many times a query was encoded), ``overlay_bars`` / ``audio_bars`` (the two
    ranges as (first, last) tuples).

    Args:
        model: a StyleVAE; None loads :func:`training.default_model` (trained on first use, with progress).
        query: a name from ``corpus.QUERY_NAMES`` (default ``corpus.DEFAULT_QUERY``), a MIDI file path,
            or a Piece (read with the model's spec), listed first among the queries.
        bits: initial bit budget (a stop of :data:`BITS_SCALE`; None or "full" = full rate). The
            ``bits`` slider's value is then an int, or "full" for full rate.
        mode: initial channel statistics mode.
        seed: initial channel seed.
        overlay_bars: bars (first, last) of the piano-roll overlay, from 1 (cut to the query's length).
        audio_bars: bars (first, last) of the audio player, from 1 (cut to the query's length).
        sample_rate: audio samples per second.
        program: General MIDI program of the audio (0 = acoustic grand piano).
        dpi: resolution of the plot.
        state_dir: a folder where the explorer keeps its uploads and settings (atomically) and from
            which it starts (they override the initial values above); None keeps nothing.
        refresh: compute the first view now (False: the caller calls :meth:`refresh`, e.g. after the
            controls are on the page).

    Raises:
        OptionError: an initial value that is not offered by its control, or a bar range that is
            not 1 <= first <= last.

    Used in: notebooks/04_query_generation.ipynb, notebooks/explorer.ipynb.
    """

    def __init__(self, model=None, query: str | None = None, *, bits: int | None = 32, mode: str = "query",
                 seed: int = 0, overlay_bars=(1, 16), audio_bars=(1, 8), sample_rate: int = 22050,
                 program: int = 0, dpi: int = 80, state_dir=None, refresh: bool = True):
        import ipywidgets as W

        self.model = training.default_model(progress=True) if model is None else model
        self.sample_rate = int(sample_rate)
        self.dpi = int(dpi)
        for label, rng in (("overlay_bars", overlay_bars), ("audio_bars", audio_bars)):
            if len(tuple(rng)) != 2 or not 1 <= int(rng[0]) <= int(rng[1]):
                raise OptionError(f"{label} {tuple(rng)!r} is not (first, last) with 1 <= first <= last "
                                  "(bars count from 1)")
        options = bits_options()
        bits = "full" if bits is None else bits
        if bits not in [v for _, v in options]:
            raise OptionError(f"bits {bits!r} is not a stop of the slider: {[lbl for lbl, _ in options]}")
        if mode not in STATS_MODES:
            raise OptionError(f"statistics mode {mode!r} is not one of {', '.join(STATS_MODES)}")
        if program not in [p for _, p in INSTRUMENTS]:
            raise OptionError(f"program {program} is not one of {INSTRUMENTS}")
        query = corpus.DEFAULT_QUERY if query is None else query
        options_q = [(n, n) for n in corpus.QUERY_NAMES]
        given = None
        if isinstance(query, Piece):
            given = query
        elif str(query) not in corpus.QUERY_NAMES:
            if not Path(str(query)).is_file():
                raise OptionError(f"query {query!r} is neither one of {', '.join(corpus.QUERY_NAMES)} nor a "
                                  "MIDI file; upload other MIDI files with the upload button")
            given = corpus.load_query(str(query), spec=self.model.spec)

        self._tmp = tempfile.TemporaryDirectory(prefix="qbdi-explore-")
        self._state_dir = None if state_dir is None else Path(state_dir)
        self._pieces: dict = {}       # query key -> Piece
        self._upload_files: dict = {}  # upload query key -> (file in state_dir/uploads, shown name)
        if given is not None:
            query = f"{_GIVEN_PREFIX}{given.name or 'query'}"
            self._pieces[query] = given
            options_q.insert(0, (given.name or "query", query))
        self._encoded = None          # (key, EncodedQuery, tonic triad)
        self._style_ref = False       # the corpus side of the metrics: False = not read yet, None = none
        self._query_ref = None        # (key, the query's per-bar style descriptors)
        self._view = None             # (query Piece, Improvisation, mode, seed) of the current view
        self._quiet = False           # True while the explorer itself moves its controls
        self.encode_count = 0
        self.improvisation = None
        self.last_metrics: dict = {}
        self.timings: dict = {}
        self._audio_cache: dict = {}  # (clip hash, shape, program, tempo, rate) -> audio player HTML

        saved = self._read_state()
        for entry in saved.get("uploads", []):
            options_q.append((f"{entry['name']} (uploaded)", entry["key"]))
            self._upload_files[entry["key"]] = (self._state_dir / "uploads" / entry["file"], entry["name"])
        keys = [k for _, k in options_q]
        if saved.get("query") in keys:
            query = saved["query"]
        bits = saved.get("bits", bits) if saved.get("bits", bits) in [v for _, v in options] else bits
        mode = saved.get("mode", mode) if saved.get("mode", mode) in STATS_MODES else mode
        program = saved.get("program", program) if saved.get("program", program) in [p for _, p in INSTRUMENTS] \
            else program
        if isinstance(saved.get("seed"), int) and 0 <= saved["seed"] <= 1_000_000:
            seed = saved["seed"]
        for name in ("overlay_bars", "audio_bars"):
            r = saved.get(name)
            if isinstance(r, list) and len(r) == 2 and all(isinstance(b, int) for b in r) and 1 <= r[0] <= r[1]:
                if name == "overlay_bars":
                    overlay_bars = tuple(r)
                else:
                    audio_bars = tuple(r)
        try:
            n_bars = self._n_bars(query)
        except QbdiError:  # a kept upload that can no longer be read: start from the default query
            query = corpus.DEFAULT_QUERY if given is None else keys[0]
            n_bars = self._n_bars(query)

        self.heading = W.HTML(self._heading_html())
        self.bits = W.SelectionSlider(options=options, value=bits, description="", readout=False,
                                      continuous_update=False, layout=W.Layout(width="640px"))
        self.bits_readout = W.HTML()
        self.mode = W.Dropdown(options=list(STATS_MODES), value=mode, description="statistics")
        self.seed = W.BoundedIntText(value=int(seed), min=0, max=1_000_000, description="seed",
                                     layout=W.Layout(width="180px"))
        self.query = W.Dropdown(options=options_q, value=query, description="query",
                                layout=W.Layout(width="360px"))
        self.upload = W.FileUpload(accept=".mid,.midi", multiple=False, description="upload MIDI",
                                   tooltip="upload MIDI")
        self.upload.add_class("qbdi-upload")
        if query in self._upload_files:  # a kept upload selected again: its name on the button
            self.upload.tooltip = self._upload_files[query][1]
        self.program = W.Dropdown(options=list(INSTRUMENTS), value=program, description="instrument")
        range_kw = dict(min=1, max=max(n_bars, 1), step=1, continuous_update=False,
                        layout=W.Layout(width="420px"), style={"description_width": "80px"})
        self.plot_range = W.IntRangeSlider(value=_clip_range(overlay_bars, n_bars), description="plot bars",
                                           **range_kw)
        self.audio_range = W.IntRangeSlider(value=_clip_range(audio_bars, n_bars), description="hear bars",
                                            **range_kw)
        self.status = W.HTML()
        self.metrics = W.Output()
        self.plot = W.Output()
        self.audio = W.Output()
        self.downloads = W.Output()
        self.download_buttons = {
            kind: W.Button(description=label, icon="download", tooltip=f"download the improvisation as {label}")
            for kind, label in (("midi", "MIDI"), ("musicxml", "MusicXML"), ("wav", "WAV"))
        }
        ticks = "".join(
            f'<span style="position:absolute;left:{100 * i / (len(options) - 1):.3f}%;'
            f'transform:translateX(-50%);font-size:11px">{lbl}</span>'
            for i, (lbl, _) in enumerate(options)
        )
        tick_strip = W.HTML(f'<div style="position:relative;height:16px;margin:0 8px">{ticks}</div>',
                            layout=W.Layout(width="640px"))
        self.widget = W.VBox([
            W.HTML(_UPLOAD_CSS),
            self.heading,
            W.HBox([self.query, self.upload, self.program]),
            W.HBox([W.HTML("<b>bits per frame</b>", layout=W.Layout(width="110px")),
                    W.VBox([self.bits, tick_strip]), self.bits_readout]),
            W.HBox([self.mode, self.seed]),
            W.HBox([self.plot_range, self.audio_range]),
            self.status,
            self.metrics,
            self.plot,
            self.audio,
            W.HBox([W.HTML("download the whole improvisation:")] + list(self.download_buttons.values())),
            self.downloads,
        ])

        for w in (self.bits, self.mode, self.seed):
            w.observe(self._on_change, names="value")
        self.program.observe(self._on_program, names="value")  # the audio only
        self.query.observe(self._on_query, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.plot_range.observe(self._on_plot_range, names="value")
        self.audio_range.observe(self._on_audio_range, names="value")
        for kind, button in self.download_buttons.items():
            button.on_click(lambda _b, kind=kind: self._guarded(self.make_download, kind))
        if refresh:
            self.refresh()

    # -- display ---------------------------------------------------------------------------------

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def close(self) -> None:
        """Close every widget of this explorer (their views disappear) and delete its temp files."""
        for w in list(self.widget.children) + [self.widget]:
            _close_tree(w)
        self._tmp.cleanup()

    @property
    def overlay_bars(self) -> tuple[int, int]:
        """Bars (first, last) of the piano-roll overlay, counted from 1."""
        return tuple(int(b) for b in self.plot_range.value)

    @property
    def audio_bars(self) -> tuple[int, int]:
        """Bars (first, last) of the audio player, counted from 1."""
        return tuple(int(b) for b in self.audio_range.value)

    def _heading_html(self) -> str:
        d = (getattr(self.model, "info", None) or {}).get("model_dir")
        name = Path(str(d)).name if d else "in memory"
        cfg = self.model.config
        return (f'<div style="font-size:15px;margin:2px 0 6px 0"><b>model</b> {html.escape(name)}: trained on '
                f"<b>{html.escape(corpus_label(self.model))}</b> ({cfg.hidden_dim} hidden units, "
                f"{cfg.latent_dim} latents)</div>")

    # -- kept state ------------------------------------------------------------------------------

    def _read_state(self) -> dict:
        if self._state_dir is None:
            return {}
        try:
            saved = json.loads((self._state_dir / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(saved, dict):
            return {}
        ups = [e for e in saved.get("uploads", []) if isinstance(e, dict)
               and {"key", "file", "name"} <= set(e) and (self._state_dir / "uploads" / Path(str(e["file"])).name).is_file()
               and Path(str(e["file"])).name == e["file"]]
        saved["uploads"] = ups
        return saved

    def _save_state(self) -> None:
        """Write the uploads and settings to ``state_dir/state.json`` (atomically); no-op without one."""
        if self._state_dir is None:
            return
        state = {
            "uploads": [{"key": k, "file": f.name, "name": n} for k, (f, n) in self._upload_files.items()],
            "query": self.query.value if not str(self.query.value).startswith(_GIVEN_PREFIX) else None,
            "bits": self.bits.value, "mode": self.mode.value, "seed": int(self.seed.value),
            "program": int(self.program.value), "overlay_bars": list(self.overlay_bars),
            "audio_bars": list(self.audio_bars),
        }
        files.write_text(self._state_dir / STATE_FILE, json.dumps(state, indent=1), force=True)

    # -- queries ---------------------------------------------------------------------------------

    def _piece(self, key: str):
        if key not in self._pieces:
            if key in self._upload_files:
                path, name = self._upload_files[key]
                try:
                    piece = corpus.load_query(str(path), spec=self.model.spec)
                except QbdiError as exc:
                    raise type(exc)(public_message(exc, str(self._state_dir)).split(": ", 1)[-1], name) from None
                piece.name = Path(name).stem
                self._pieces[key] = piece
            else:
                self._pieces[key] = corpus.load_query(key, spec=self.model.spec)
        return self._pieces[key]

    def _n_bars(self, key: str) -> int:
        piece = self._piece(key)
        return max(1, -(-int(piece.n_steps) // piece.spec.steps_per_frame))

    def _fit_ranges(self) -> None:
        """Set the bar ranges' maximum to the current query's length (keeping their values inside)."""
        n = self._n_bars(self.query.value)
        self._quiet = True
        try:
            for w in (self.plot_range, self.audio_range):
                value = _clip_range(w.value, n)
                if n >= w.max:
                    w.max = n
                    w.value = value
                else:
                    w.value = value
                    w.max = n
        finally:
            self._quiet = False

    def _encoding(self):
        key = self.query.value
        if self._encoded is None or self._encoded[0] != key:
            piece = self._piece(key)
            enc = encode_query(self.model, piece)
            self.encode_count += 1
            q_chroma = harmony.chroma(pianoroll.to_frames(piece.roll, piece.spec, piece.bar_offset_steps),
                                      piece.spec)
            self._encoded = (key, enc, harmony.tonic_triad(q_chroma))
        return self._encoded[1], self._encoded[2]

    def _style_side(self, query, out) -> dict:
        """The style side of the metrics line (:func:`qbdi_utils.style.fidelity`): fit to the model's
        corpus (its test pieces' bars, read once; nan when the model records no corpus) and to the query."""
        if self._style_ref is False:
            try:
                self._style_ref = style.corpus_reference(self.model, lambda: navigate.model_corpus(self.model))
            except (CorpusError, ModelError):
                self._style_ref = None
        key = self.query.value
        if self._query_ref is None or self._query_ref[0] != key:
            self._query_ref = (key, style.bar_descriptors(query, query.spec))
        f = style.fidelity(query, out, self._style_ref, query_ref=self._query_ref[1])
        return {k: f[k] for k in ("style_fit_corpus", "style_fit_query", "onsets_per_bar", "corpus_onsets_per_bar")}

    def add_midi(self, name: str, data: bytes) -> str:
        """Add a MIDI file (its bytes) as a query, select it and refresh; kept in ``state_dir`` if any.

        Args:
            name: file name shown in the query list and on the upload button.
            data: the file's bytes.

        Returns:
            The query key (``"upload:<hash>:<name>"``; the same file uploaded again is the same query).

        Raises:
            MidiFileError, NoNotesError: the bytes are not a usable MIDI file.

        Used in: notebooks/explorer.ipynb (the upload button).
        """
        safe = Path(str(name)).name or "upload.mid"
        cap = int(limits.limit("QBDI_MAX_MIDI_BYTES"))
        data = bytes(data)
        if len(data) > cap:
            raise MidiFileError(limits.exceeded(f"the upload's {limits.size_words(len(data))}",
                                                limits.size_words(cap), "QBDI_MAX_MIDI_BYTES", len(data)),
                                safe)
        digest = hashlib.sha256(data).hexdigest()[:12]
        path = Path(self._tmp.name) / f"{digest}_{safe}"
        path.write_bytes(data)
        try:
            piece = corpus.load_query(str(path), spec=self.model.spec)
        except QbdiError as exc:  # name the upload, not the server's temporary file
            raise type(exc)(public_message(exc, self._tmp.name).split(": ", 1)[-1], safe) from None
        finally:
            path.unlink(missing_ok=True)
        piece.name = Path(safe).stem
        key = f"{_UPLOAD_PREFIX}{digest}:{safe}"
        self._pieces[key] = piece
        if self._state_dir is not None:
            kept = files.write_bytes(self._state_dir / "uploads" / f"{digest}_{safe}", data, force=True)
            self._upload_files.pop(key, None)
            self._upload_files[key] = (kept, safe)
            while len(self._upload_files) > MAX_KEPT_UPLOADS:
                old = next(iter(self._upload_files))
                old_file, _ = self._upload_files.pop(old)
                if old_file not in [f for f, _ in self._upload_files.values()]:
                    old_file.unlink(missing_ok=True)
        if key not in [k for _, k in self.query.options]:
            self.query.options = list(self.query.options) + [(f"{safe} (uploaded)", key)]
        self.upload.tooltip = safe
        if self.query.value == key:
            self._on_query()
        else:
            self.query.value = key  # triggers a refresh through _on_query
        return key

    # -- refresh ---------------------------------------------------------------------------------

    def _guarded(self, fn, *args):
        try:
            return fn(*args)
        except QbdiError as exc:
            self.status.value = f'<span style="color:#b00">{html.escape(self._public(exc))}</span>'
        except Exception as exc:  # a widget callback has nowhere else to report
            self.status.value = (f'<span style="color:#b00">{type(exc).__name__}: '
                                 f'{html.escape(self._public(exc))}</span>')
        return None

    def _public(self, exc) -> str:
        return public_message(exc, self._tmp.name, *([str(self._state_dir)] if self._state_dir else []))

    def _on_change(self, _change=None):
        self._guarded(self.refresh)

    def _on_query(self, _change=None):
        def run():
            self._fit_ranges()
            self.refresh()
        self._guarded(run)

    def _on_upload(self, change):
        files_ = change["new"]
        if not files_:
            return
        f = files_[-1]
        name, data = f["name"], bytes(f["content"])
        self.upload.value = ()  # keep no copy in the widget; the same file can be uploaded again
        self._guarded(self.add_midi, name, data)

    def _republish(self, publish, part: str) -> None:
        """Redo one output (``publish``: the plot or the audio) of the current view and keep the settings."""
        def run():
            t0 = time.perf_counter()
            publish()
            self._save_state()
            self.timings = {part: time.perf_counter() - t0, "total": time.perf_counter() - t0}
        self._guarded(run)

    def _on_plot_range(self, _change=None):
        if self._quiet or self._view is None:
            return
        self._republish(self._publish_plot, "plot")

    def _on_audio_range(self, _change=None):
        if self._quiet or self._view is None:
            return
        self._on_program()

    def refresh(self) -> dict:
        """Transmit and decode at the current settings and replace the outputs.

        Returns:
            The metrics dict of :func:`explorer_metrics` (also in ``last_metrics``).

        Raises:
            QbdiError: the query cannot be used (shown in ``status`` when called by a control).

        Used in: notebooks/explorer.ipynb (every control calls it).
        """
        t0 = time.perf_counter()
        enc, tonic = self._encoding()
        t_enc = time.perf_counter()
        bits, mode, seed = parse_bits(self.bits.value), self.mode.value, int(self.seed.value)
        out = improvise_batch(self.model, enc, [bits], [seed], mode=mode)[(bits, seed)]
        t1 = time.perf_counter()
        query = enc.query
        m = explorer_metrics(query, out, tonic=tonic)
        m.update(self._style_side(query, out))
        t2 = time.perf_counter()
        # plot and metrics go out first (a browser shows them at once), the audio follows
        self.improvisation, self.last_metrics = out, m
        self._view = (query, out, mode, seed)
        self.bits_readout.value = f"<b>{rate_label(bits)}</b> per frame"
        self.metrics.outputs = (_display_data({
            "text/html": _metrics_html(out.name, mode, seed, m),
            "text/plain": repr({k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}),
        }),)
        self._publish_plot()
        t3 = time.perf_counter()
        self.downloads.outputs = ()
        t_visible = time.perf_counter()

        self._publish_audio()
        t4 = time.perf_counter()
        self._save_state()
        self.timings = {"encode": t_enc - t0, "channel": t1 - t_enc, "metrics": t2 - t1, "plot": t3 - t2,
                        "visible": t_visible - t0, "audio": t4 - t_visible, "total": t4 - t0}
        self.status.value = (f'<span style="color:#555">{html.escape(query.name)}: '
                             f"{len(enc.frames)} bars encoded once; this view in "
                             f"{self.timings['total']:.2f} s (channel+decode {self.timings['channel']:.2f}, "
                             f"plot {self.timings['plot']:.2f}, audio {self.timings['audio']:.2f})</span>")
        return m

    def _publish_plot(self) -> None:
        query, out, mode, seed = self._view
        png = self._overlay_png(query, out, mode, seed)
        self.plot.outputs = (_display_data({"image/png": base64.b64encode(png).decode("ascii"),
                                            "text/plain": f"<overlay of {out.name}, bars "
                                                          f"{self.overlay_bars[0]}-{self.overlay_bars[1]}>"}),)

    def _publish_audio(self) -> None:
        """Render the audio excerpt of the current improvisation (cached by content) into ``audio``."""
        from IPython.display import Audio

        out = self.improvisation
        program = int(self.program.value)
        a, b = self.audio_bars
        clip = _excerpt(out.roll, (a, b), out.spec)
        key = (hashlib.sha1(np.ascontiguousarray(clip).tobytes()).hexdigest(), clip.shape, program,
               out.tempo_bpm, self.sample_rate)
        engine = render.synthesis_engine()
        if key not in self._audio_cache:
            wave = render.synthesize(clip, out.spec, tempo_bpm=out.tempo_bpm, sample_rate=self.sample_rate,
                                     program=program)
            html_player = Audio(wave, rate=self.sample_rate, normalize=False)._repr_html_()
            if len(self._audio_cache) >= _AUDIO_CACHE_SIZE:
                self._audio_cache.pop(next(iter(self._audio_cache)))
            self._audio_cache[key] = html_player
        self.audio.outputs = (_display_data({
            "text/html": (f"<div>bars {a}-{b}, "
                          f"{html.escape(dict((p, n) for n, p in INSTRUMENTS)[program])} "
                          f"({html.escape(engine)} synthesizer)</div>" + self._audio_cache[key]),
            "text/plain": f"<audio of {out.name}, bars {a}-{b}>",
        }),)

    def _on_program(self, _change=None):
        if self._view is None:
            return
        self._republish(self._publish_audio, "audio")

    def _overlay_png(self, query, out, mode, seed) -> bytes:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(12, 3.2))
        ax = fig.add_subplot()
        fig.subplots_adjust(left=0.06, right=0.99, bottom=0.14, top=0.9)
        a, b = self.overlay_bars
        render.plot_overlay(_excerpt(query.roll, (a, b), query.spec), _excerpt(out.roll, (a, b), out.spec),
                            ax=ax, title=f"{out.name} (statistics {mode}, seed {seed}), bars {a}-{b}")
        spf = query.spec.steps_per_frame
        every = max(1, (b - a + 1) // 16)
        ticks = list(range(0, b - a + 1, every))
        ax.set_xticks([t * spf - 0.5 for t in ticks])
        ax.set_xticklabels([str(a + t) for t in ticks])  # the piece's own bar numbers, from 1
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=self.dpi)
        return buf.getvalue()

    # -- downloads -------------------------------------------------------------------------------

    def file_bytes(self, kind: str) -> tuple[str, str, bytes]:
        """The current improvisation as a file: MIDI, MusicXML or WAV (the whole piece).

        Args:
            kind: "midi", "musicxml" or "wav".

        Returns:
            (file name, MIME type, bytes).

        Raises:
            OptionError: unknown kind.

        Used in: notebooks/explorer.ipynb (the download buttons).
        """
        out = self.improvisation
        stem = f"{out.query_name or 'query'}_{'full' if out.bits is None else str(out.bits) + 'bits'}" \
               f"_{out.mode}_seed{out.seed}".replace(" ", "_")
        if kind == "midi":
            path = Path(self._tmp.name) / "download.mid"
            pianoroll.write_midi(out.roll, path, tempo_bpm=list(out.tempo_map), spec=out.spec,
                                 program=int(self.program.value), force=True)  # the explorer's own scratch file
            return f"{stem}.mid", "audio/midi", path.read_bytes()
        if kind == "musicxml":
            return f"{stem}.musicxml", "application/vnd.recordare.musicxml+xml", \
                render.to_musicxml(render.roll_to_stream(out))
        if kind == "wav":
            wave = render.synthesize(out, sample_rate=self.sample_rate, program=int(self.program.value))
            return f"{stem}.wav", "audio/wav", _wav_bytes(wave, self.sample_rate)
        raise OptionError(f"download kind {kind!r} is not one of midi, musicxml, wav")

    def make_download(self, kind: str) -> str:
        """Download the current improvisation (see :meth:`file_bytes`): the page saves it at once (one
        click on its button) and keeps a link to save it again under the buttons.

        Returns:
            The file name offered.

        Used in: notebooks/explorer.ipynb (the download buttons).
        """
        name, mime, data = self.file_bytes(kind)
        self.downloads.outputs = tuple(
            o for o in self.downloads.outputs if name not in o["data"].get("text/plain", "")
        ) + (_display_data({"text/html": _download_html(name, mime, data), "text/plain": name}),)
        return name


def _clip_range(rng, n: int) -> tuple[int, int]:
    """A bar range (first, last) cut to bars 1..n (keeping its length where it fits)."""
    a, b = int(rng[0]), int(rng[1])
    n = max(int(n), 1)
    if b > n:
        a, b = max(1, a - (b - n)), n
    return max(1, min(a, n)), max(1, min(b, n))


def public_message(exc: Exception, *private: str) -> str:
    """An error's message for a web page: file paths cut to their names, the folders ``private``
    (and the repository's) removed, so a page never shows where the server keeps its files.

    Args:
        exc: the error.
        private: folders whose paths must not appear.

    Returns:
        One line.

    Used in: the explorer's status line (``make explore``).
    """
    text = str(exc)
    path = getattr(exc, "path", None)
    if path is not None and text.startswith(f"{path}: "):
        text = f"{Path(path).name}: {text[len(str(path)) + 2:]}"
    for folder in (*private, str(REPO_ROOT), str(Path.home()), tempfile.gettempdir()):
        if folder:
            text = re.sub(re.escape(str(folder).rstrip("/")) + r"/(?:[^\s:'\"]*/)?", "", text)
    return " ".join(text.split())


def _close_tree(w) -> None:
    for child in getattr(w, "children", ()):
        _close_tree(child)
    w.close()


def _load_model_dir(d) -> StyleVAE:
    model = StyleVAE.load(d)
    model.info["model_dir"] = str(d)
    return model


def page(model_dir=None, *, status_file=None, state_dir=None, poll_s: float = 0.5, **explorer_kw):
    """What the explorer's web page shows: the explorer of a model, or, while the model is being
    prepared, its progress, replaced by the explorer when it is ready.

    The arguments default to the environment :func:`serve` gives the page's kernels
    (:data:`MODEL_ENV`, :data:`STATUS_ENV`, :data:`STATE_ENV`). With a status file, the function returns
    at once (the page is sent without waiting for the model) and the kernel's event loop waits for the
    status "ready", loads the model (on a worker thread, so the kernel keeps answering the page), puts
    the controls on the page, then computes the first view.
    Without one (the notebook run by nbval or ``make reproduce``), it builds the explorer before it
    returns: of ``model_dir``, or of the default model (:func:`training.default_model`).

    Args:
        model_dir: the model's folder (None: the status file's, or the default model).
        status_file: the preparation status (:func:`write_status`) to wait for.
        state_dir: where the explorer keeps uploads and settings (:class:`Explorer`).
        poll_s: seconds between looks at the status file.
        **explorer_kw: more arguments of :class:`Explorer`.

    Returns:
        An ipywidgets VBox (its child: the progress line, then the explorer's widget).

    Used in: notebooks/explorer.ipynb (``make explore``).
    """
    import asyncio

    import ipywidgets as W

    model_dir = model_dir or os.environ.get(MODEL_ENV) or None
    status_file = status_file or os.environ.get(STATUS_ENV) or None
    state_dir = state_dir or os.environ.get(STATE_ENV) or None
    note = W.HTML('<span style="color:#555">loading the model ...</span>')
    box = W.VBox([note])
    box.explorer = None

    def load(d):
        return training.default_model(progress=True) if d is None else _load_model_dir(d)

    def build(model):
        ex = Explorer(model, state_dir=state_dir, refresh=False, **explorer_kw)
        box.explorer = ex
        return ex

    if status_file is None:
        ex = build(load(model_dir))
        ex.refresh()
        box.children = (ex.widget,)
        return box

    async def wait_and_build():
        t0 = time.monotonic()
        try:
            while True:
                st = read_status(status_file)
                if st.get("state") == "ready":
                    break
                if st.get("state") == "failed":
                    note.value = (f'<span style="color:#b00">the model could not be prepared: '
                                  f'{html.escape(public_message(Exception(st.get("message", ""))))}</span>')
                    return
                note.value = (f'<b>preparing the model</b> ({time.monotonic() - t0:.0f} s so far; the page '
                              f'fills in by itself when it is ready):<br><code>{html.escape(st.get("message") or "...")}'
                              f'</code>')
                await asyncio.sleep(poll_s)
            note.value = '<span style="color:#555">loading the model ...</span>'
            # loaded on a worker thread: the kernel keeps answering the page, which connects meanwhile
            # (a kernel blocked for long while the page's widget manager connects leaves it empty)
            model = await asyncio.get_running_loop().run_in_executor(None, load, st.get("model_dir") or model_dir)
            ex = build(model)
            box.children = (ex.widget,)
            ex.status.value = '<span style="color:#555">computing the first view ...</span>'
            await asyncio.sleep(0.05)  # the controls go out before the first view is computed
            ex._guarded(ex.refresh)
        except Exception as exc:  # nowhere else to report on the page
            note.value = f'<span style="color:#b00">{html.escape(public_message(exc))}</span>'

    box._task = asyncio.ensure_future(wait_and_build())
    return box


def _prepare_default(status: Path, echo) -> "subprocess.Popen":
    """Start the default model's preparation (loaded, or trained on first use) in its own process on a
    pseudo-terminal (so its progress bars redraw often); a thread copies its output to ``echo`` and
    its last line into the status file, then writes "ready" or "failed"."""
    import pty
    import subprocess
    import sys
    import threading

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "qbdi_utils.explore", "--prepare-default"],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)

    def follow():
        last, shown, buf = "", 0.0, b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            echo.write(chunk.decode("utf-8", "replace"))
            echo.flush()
            buf = (buf + chunk)[-4096:]
            parts = [p.strip() for p in re.split(r"[\r\n]+", buf.decode("utf-8", "replace")) if p.strip()]
            if parts:
                last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", parts[-1])
            if time.monotonic() - shown > 0.5:
                write_status(status, "preparing", last)
                shown = time.monotonic()
        code = proc.wait()
        os.close(master)
        if code == 0:
            write_status(status, "ready", last, model_dir=training.default_model_dir())
        else:
            write_status(status, "failed", last or f"the preparation ended with status {code}")

    threading.Thread(target=follow, daemon=True).start()
    return proc


def serve(port: int = DEFAULT_PORT, notebook=EXPLORER_NOTEBOOK, model_dir=None, train_progress: bool = True,
          token: str | None = None, state_dir=None) -> int:
    """Serve the explorer notebook as a web page with Voila on 127.0.0.1 until Ctrl-C.

    The page is served at once. With ``model_dir`` the page's kernels load that model; without, the
    default model is prepared (loaded, or trained on first use) in a separate process while the page
    shows its progress (:func:`page`). The server is guarded: a fresh random token is required (the
    printed URL carries it; without it the server answers 403), at most ``QBDI_EXPLORE_MAX_KERNELS``
    pages have a kernel at once (HTTP 503 beyond), a kernel whose page never connects is shut down
    after a short idle time (:class:`qbdi_utils.explore_server.GuardedKernelManager`), and tracebacks,
    which name server paths, are not shown on the page.

    Args:
        port: TCP port on 127.0.0.1.
        notebook: the notebook to serve (default notebooks/explorer.ipynb).
        model_dir: the model's folder (``qbdi train --out DIR``); None: the default model.
        train_progress: echo the default model's preparation (progress bars) on the terminal.
        token: the access token (default: a fresh random one, printed in the URL).
        state_dir: where the pages keep uploads and settings (default :func:`explorer_state_dir`).

    Returns:
        Exit status: 0 after Ctrl-C, else Voila's status.

    Raises:
        OptionError: a port outside 1..65535 or a missing notebook.
        ModelError: ``model_dir`` is not a readable model folder.

    Used in: ``make explore``.
    """
    import secrets
    import shutil
    import signal
    import subprocess
    import sys

    if not 0 < int(port) < 65536:
        raise OptionError(f"port must be 1..65535, got {port}")
    notebook = Path(notebook)
    if not notebook.is_file():
        raise OptionError(f"explorer notebook {notebook} not found")
    run_dir = Path(tempfile.mkdtemp(prefix="qbdi-explore-"))
    status = run_dir / "status.json"
    if model_dir is not None:
        model_dir = Path(model_dir).resolve()
        saved = read_model(model_dir)  # a missing or broken model: one line now, not on the page
        print(f"model: {model_dir}, trained on {corpus_label(saved)}; audio: "
              f"{render.synthesis_engine()} synthesizer", flush=True)
        write_status(status, "ready", "", model_dir=model_dir)
    else:
        write_status(status, "preparing", "starting")
    token = secrets.token_urlsafe(18) if token is None else str(token)
    max_kernels = int(limits.limit("QBDI_EXPLORE_MAX_KERNELS"))
    # uploads arrive as one websocket message: let one a little over the MIDI limit through, so the
    # page can say it is too large instead of the connection being reset
    ws_max = int(limits.limit("QBDI_MAX_MIDI_BYTES")) * 2 + 2**20
    cmd = [sys.executable, "-m", "voila", str(notebook), f"--port={int(port)}", "--no-browser",
           "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", "--show_tracebacks=False",
           f"--Voila.token={token}",
           f"--Voila.tornado_settings={{'websocket_max_message_size': {ws_max}}}",
           # every page view has its own kernel (with a model in memory): at most max_kernels of
           # them; a kernel whose page never connects goes after UNCONNECTED_CULL_SECONDS idle, the
           # kernels of closed or reloaded pages after 5 idle minutes, never one a page is still
           # connected to
           "--VoilaConfiguration.multi_kernel_manager_class="
           "qbdi_utils.explore_server.GuardedKernelManager",
           f"--GuardedKernelManager.max_kernels={max_kernels}",
           f"--MappingKernelManager.cull_idle_timeout={KERNEL_CULL_SECONDS}",
           "--MappingKernelManager.cull_interval=60", "--MappingKernelManager.cull_connected=False"]
    # Voila runs in its own session so Ctrl-C reaches only us; we stop it with SIGTERM, on which it
    # shuts its kernels down. SIGTERM to us (e.g. from a process manager) does the same as Ctrl-C.
    # the dict form of --Voila.tornado_settings keeps its int (the key=value form makes strings)
    # but traitlets calls it deprecated; say nothing about that
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning:traitlets.traitlets")
    env[STATUS_ENV] = str(status)
    env[STATE_ENV] = str(explorer_state_dir() if state_dir is None else Path(state_dir))
    env.pop(MODEL_ENV, None)
    proc = subprocess.Popen(cmd, cwd=str(notebook.parent), start_new_session=True, env=env)
    print(f"qbdi explorer: http://127.0.0.1:{int(port)}/?token={token}  (Ctrl-C stops it; at most "
          f"{max_kernels} pages at once)", flush=True)
    prep = None
    if model_dir is None:
        print(f"model: {training.default_model_dir()} (the default model, trained on the Bach chorales): "
              "preparing it; the page shows the progress", flush=True)
        prep = _prepare_default(status, sys.stderr if train_progress else open(os.devnull, "w"))

    def _interrupt(_sig, _frame):
        raise KeyboardInterrupt

    def _stop(p, timeout=15):
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        _stop(prep)
        _stop(proc)
        print("qbdi explorer: stopped", flush=True)
        return 0
    finally:
        _stop(prep)
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(run_dir, ignore_errors=True)


def main(argv=None) -> int:
    """``python -m qbdi_utils.explore [--model DIR] [--port N]``: :func:`serve` with one-line errors."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m qbdi_utils.explore",
                                     description="Serve the qbdi explorer as a web page (Voila).")
    parser.add_argument("--model", default=None, metavar="DIR",
                        help="a model folder (qbdi train --out DIR); default: the default model, trained on "
                             "the Bach chorales on first use")
    parser.add_argument("--port", default=str(DEFAULT_PORT), help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument("--prepare-default", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.prepare_default:  # the default model's preparation, run by serve in its own process
            training.default_model(progress=True)
            return 0
        try:
            port = int(args.port)
        except ValueError:
            raise OptionError(f"--port {args.port!r} is not a whole number") from None
        if args.model is not None and not Path(args.model).is_dir():
            raise ModelError("no such model folder (--model); give a folder written by `qbdi train --out DIR`, "
                             "or leave --model out for the default model", args.model)
        return serve(port, model_dir=args.model)
    except QbdiError as exc:
        print(f"explore: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # during training
        print("explore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
