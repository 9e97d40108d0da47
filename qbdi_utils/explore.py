"""The interactive explorer: one object that notebooks and the ``make explore`` web page both show.

:class:`Explorer` holds a model, a query and a set of ipywidgets controls: the bit budget per frame on
a scale that is fine where the music changes (:data:`qbdi_utils.improvise.BITS_SCALE`, 0 ... 1024 bits then full rate,
increasing to the right), the channel statistics mode, the channel seed, the query (a shipped one or
an uploaded MIDI file) and the General MIDI instrument of the audio. Every refresh transmits the
query's encoding through the channel and decodes it; the query is encoded once, when it is chosen.

The results go into ``ipywidgets.Output`` widgets by assigning their ``outputs`` state (never through
``display(..., display_id=...)`` handles), so they live in the widget models in the kernel: a browser
that reloads the page, and a Voila page, get the current plot, metrics and audio from there.

Shown for the current settings: a metrics line (chroma cosine, Tonnetz distance and triad agreement
with the query over the whole piece; distinct triads, tonic share and empty bars of the output, as in
notebook 04), the piano-roll overlay of the query and the improvisation (:func:`render.plot_overlay`,
bars :attr:`Explorer.overlay_bars`), an audio player (bars :attr:`Explorer.audio_bars`, through
:func:`render.synthesize`) and buttons that make download links for the whole improvisation as MIDI,
MusicXML and WAV.

:func:`serve` starts the web page (Voila on notebooks/explorer.ipynb); ``python -m
qbdi_utils.explore --port 8866`` is what ``make explore`` runs.

Used in: notebooks/04_query_generation.ipynb, notebooks/explorer.ipynb, ``make explore``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from qbdi_utils import corpus, harmony, limits, navigate, pianoroll, render, style, training
from qbdi_utils.errors import CorpusError, MidiFileError, ModelError, OptionError, QbdiError
from qbdi_utils.improvise import BITS_SCALE, STATS_MODES, encode_query, improvise_batch, parse_bits, rate_label
from qbdi_utils.paths import REPO_ROOT
from qbdi_utils.pianoroll import Piece

__all__ = [
    "INSTRUMENTS",
    "EXPLORER_NOTEBOOK",
    "DEFAULT_PORT",
    "KERNEL_CULL_SECONDS",
    "bits_options",
    "explorer_metrics",
    "public_message",
    "Explorer",
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


class Explorer:
    """Controls and outputs of one interactive exploration of a model with a query.

    Attributes (ipywidgets): ``bits`` (SelectionSlider over :data:`BITS_SCALE`, value an int or None),
    ``mode`` (Dropdown of statistics modes), ``seed`` (BoundedIntText), ``query`` (Dropdown of shipped
    and uploaded queries), ``upload`` (FileUpload of .mid files), ``program`` (Dropdown of
    :data:`INSTRUMENTS`), ``metrics``, ``plot``, ``audio``, ``downloads`` (Output widgets), ``status``
    (HTML), ``widget`` (the whole layout, a VBox).

    Other attributes: ``improvisation`` (the current Improvisation), ``last_metrics`` (dict of
    :func:`explorer_metrics`), ``timings`` (seconds of the last refresh by stage: "channel" = transmit and
    decode, "metrics", "plot", "visible" = until metrics and plot are published, "audio", "total"),
    ``encode_count`` (how many times a query was encoded).

    Args:
        model: a StyleVAE; None loads :func:`training.default_model` (trained on first use, with progress).
        query: a name from ``corpus.QUERY_NAMES`` (default ``corpus.DEFAULT_QUERY``), a MIDI file path,
            or a Piece (read with the model's spec), listed first among the queries.
        bits: initial bit budget (a stop of :data:`BITS_SCALE`; None or "full" = full rate). The
            ``bits`` slider's value is then an int, or "full" for full rate.
        mode: initial channel statistics mode.
        seed: initial channel seed.
        overlay_bars: bars (first, last) of the piano-roll overlay.
        audio_bars: bars (first, last) of the audio player.
        sample_rate: audio samples per second.
        program: General MIDI program of the audio (0 = acoustic grand piano).
        dpi: resolution of the plot.

    Raises:
        OptionError: an initial value that is not offered by its control.

    Used in: notebooks/04_query_generation.ipynb, notebooks/explorer.ipynb.
    """

    def __init__(self, model=None, query: str | None = None, *, bits: int | None = 32, mode: str = "query",
                 seed: int = 0, overlay_bars=(1, 16), audio_bars=(1, 8), sample_rate: int = 22050,
                 program: int = 0, dpi: int = 80):
        import ipywidgets as W

        self.model = training.default_model(progress=True) if model is None else model
        self.overlay_bars = tuple(int(b) for b in overlay_bars)
        self.audio_bars = tuple(int(b) for b in audio_bars)
        self.sample_rate = int(sample_rate)
        self.dpi = int(dpi)
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
        self._pieces: dict = {}       # query key -> Piece
        if given is not None:
            query = f"{_GIVEN_PREFIX}{given.name or 'query'}"
            self._pieces[query] = given
            options_q.insert(0, (given.name or "query", query))
        self._encoded = None          # (key, EncodedQuery, tonic triad)
        self._style_ref = False       # the corpus side of the metrics: False = not read yet, None = none
        self._query_ref = None        # (key, the query's per-bar style descriptors)
        self.encode_count = 0
        self.improvisation = None
        self.last_metrics: dict = {}
        self.timings: dict = {}
        self._audio_cache: dict = {}  # (clip hash, shape, program, tempo, rate) -> audio player HTML

        self.bits = W.SelectionSlider(options=options, value=bits, description="", readout=False,
                                      continuous_update=False, layout=W.Layout(width="640px"))
        self.bits_readout = W.HTML()
        self.mode = W.Dropdown(options=list(STATS_MODES), value=mode, description="statistics")
        self.seed = W.BoundedIntText(value=int(seed), min=0, max=1_000_000, description="seed",
                                     layout=W.Layout(width="180px"))
        self.query = W.Dropdown(options=options_q, value=query, description="query",
                                layout=W.Layout(width="360px"))
        self.upload = W.FileUpload(accept=".mid,.midi", multiple=False, description="upload MIDI")
        self.program = W.Dropdown(options=list(INSTRUMENTS), value=program, description="instrument")
        self.status = W.HTML()
        self.metrics = W.Output()
        self.plot = W.Output()
        self.audio = W.Output()
        self.downloads = W.Output()
        self.download_buttons = {
            kind: W.Button(description=label, icon="download", tooltip=f"make a download link for the {label}")
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
            W.HBox([self.query, self.upload, self.program]),
            W.HBox([W.HTML("<b>bits per frame</b>", layout=W.Layout(width="110px")),
                    W.VBox([self.bits, tick_strip]), self.bits_readout]),
            W.HBox([self.mode, self.seed]),
            self.status,
            self.metrics,
            self.plot,
            self.audio,
            W.HBox([W.HTML("download the improvisation:")] + list(self.download_buttons.values())),
            self.downloads,
        ])

        for w in (self.bits, self.mode, self.seed):
            w.observe(self._on_change, names="value")
        self.program.observe(self._on_program, names="value")  # the audio only
        self.query.observe(self._on_query, names="value")
        self.upload.observe(self._on_upload, names="value")
        for kind, button in self.download_buttons.items():
            button.on_click(lambda _b, kind=kind: self._guarded(self.make_download, kind))
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

    # -- queries ---------------------------------------------------------------------------------

    def _piece(self, key: str):
        if key not in self._pieces:
            self._pieces[key] = corpus.load_query(key, spec=self.model.spec)
        return self._pieces[key]

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
        """Add a MIDI file (its bytes) as a query, select it and refresh.

        Args:
            name: file name shown in the query list.
            data: the file's bytes.

        Returns:
            The query key (``"upload:<name>"``).

        Raises:
            MidiFileError, NoNotesError: the bytes are not a usable MIDI file.

        Used in: notebooks/explorer.ipynb (the upload button).
        """
        safe = Path(str(name)).name or "upload.mid"
        cap = int(limits.limit("QBDI_MAX_MIDI_BYTES"))
        if len(data) > cap:
            raise MidiFileError(limits.exceeded(f"the upload's {limits.size_words(len(data))}",
                                                limits.size_words(cap), "QBDI_MAX_MIDI_BYTES", len(data)),
                                safe)
        path = Path(self._tmp.name) / f"{len(self._pieces)}_{safe}"
        path.write_bytes(bytes(data))
        try:
            piece = corpus.load_query(str(path), spec=self.model.spec)
        except QbdiError as exc:  # name the upload, not the server's temporary file
            raise type(exc)(public_message(exc, self._tmp.name).split(": ", 1)[-1], safe) from None
        finally:
            path.unlink(missing_ok=True)
        piece.name = Path(safe).stem
        key = f"{_UPLOAD_PREFIX}{len(self._pieces)}:{safe}"
        self._pieces[key] = piece
        self.query.options = list(self.query.options) + [(f"{safe} (uploaded)", key)]
        self.query.value = key  # triggers a refresh through _on_query
        return key

    # -- refresh ---------------------------------------------------------------------------------

    def _guarded(self, fn, *args):
        try:
            return fn(*args)
        except QbdiError as exc:
            self.status.value = f'<span style="color:#b00">{html.escape(public_message(exc, self._tmp.name))}</span>'
        except Exception as exc:  # a widget callback has nowhere else to report
            self.status.value = (f'<span style="color:#b00">{type(exc).__name__}: '
                                 f'{html.escape(public_message(exc, self._tmp.name))}</span>')
        return None

    def _on_change(self, _change=None):
        self._guarded(self.refresh)

    def _on_query(self, _change=None):
        self._guarded(self.refresh)

    def _on_upload(self, change):
        files = change["new"]
        if not files:
            return
        f = files[-1]
        name, data = f["name"], bytes(f["content"])
        self.upload.value = ()  # keep no copy in the widget; the same file can be uploaded again
        self._guarded(self.add_midi, name, data)

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
        png = self._overlay_png(query, out, mode, seed)
        t3 = time.perf_counter()
        # plot and metrics go out first (a browser shows them at once), the audio follows
        self.improvisation, self.last_metrics = out, m
        self.bits_readout.value = f"<b>{rate_label(bits)}</b> per frame"
        self.metrics.outputs = (_display_data({
            "text/html": _metrics_html(out.name, mode, seed, m),
            "text/plain": repr({k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}),
        }),)
        self.plot.outputs = (_display_data({"image/png": base64.b64encode(png).decode("ascii"),
                                            "text/plain": f"<overlay of {out.name}>"}),)
        self.downloads.outputs = ()
        t_visible = time.perf_counter()

        self._publish_audio()
        t4 = time.perf_counter()
        self.timings = {"encode": t_enc - t0, "channel": t1 - t_enc, "metrics": t2 - t1, "plot": t3 - t2,
                        "visible": t_visible - t0, "audio": t4 - t_visible, "total": t4 - t0}
        self.status.value = (f'<span style="color:#555">{html.escape(query.name)}: '
                             f"{len(enc.frames)} bars encoded once; this view in "
                             f"{self.timings['total']:.2f} s (channel+decode {self.timings['channel']:.2f}, "
                             f"plot {self.timings['plot']:.2f}, audio {self.timings['audio']:.2f})</span>")
        return m

    def _publish_audio(self) -> None:
        """Render the audio excerpt of the current improvisation (cached by content) into ``audio``."""
        from IPython.display import Audio

        out = self.improvisation
        program = int(self.program.value)
        clip = _excerpt(out.roll, self.audio_bars, out.spec)
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
            "text/html": (f"<div>bars {self.audio_bars[0]}-{self.audio_bars[1]}, "
                          f"{html.escape(dict((p, n) for n, p in INSTRUMENTS)[program])} "
                          f"({html.escape(engine)} synthesizer)</div>" + self._audio_cache[key]),
            "text/plain": f"<audio of {out.name}>",
        }),)

    def _on_program(self, _change=None):
        def run():
            t0 = time.perf_counter()
            self._publish_audio()
            self.timings = {"audio": time.perf_counter() - t0, "total": time.perf_counter() - t0}
        self._guarded(run)

    def _overlay_png(self, query, out, mode, seed) -> bytes:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(12, 3.2))
        ax = fig.add_subplot()
        fig.subplots_adjust(left=0.06, right=0.99, bottom=0.14, top=0.9)
        a, b = self.overlay_bars
        render.plot_overlay(_excerpt(query.roll, self.overlay_bars, query.spec),
                            _excerpt(out.roll, self.overlay_bars, out.spec), ax=ax,
                            title=f"{out.name} (statistics {mode}, seed {seed}), bars {a}-{b}")
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
                                 program=int(self.program.value))
            return f"{stem}.mid", "audio/midi", path.read_bytes()
        if kind == "musicxml":
            return f"{stem}.musicxml", "application/vnd.recordare.musicxml+xml", \
                render.to_musicxml(render.roll_to_stream(out))
        if kind == "wav":
            wave = render.synthesize(out, sample_rate=self.sample_rate, program=int(self.program.value))
            return f"{stem}.wav", "audio/wav", _wav_bytes(wave, self.sample_rate)
        raise OptionError(f"download kind {kind!r} is not one of midi, musicxml, wav")

    def make_download(self, kind: str) -> str:
        """Put a download link for the current improvisation (see :meth:`file_bytes`) under the buttons.

        Returns:
            The file name offered.

        Used in: notebooks/explorer.ipynb (the download buttons).
        """
        name, mime, data = self.file_bytes(kind)
        href = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        link = (f'<a download="{html.escape(name)}" href="{href}" '
                f'style="font-weight:bold">save {html.escape(name)}</a> ({len(data) / 1024:.0f} KB)')
        self.downloads.outputs = tuple(
            o for o in self.downloads.outputs if name not in o["data"].get("text/plain", "")
        ) + (_display_data({"text/html": link, "text/plain": name}),)
        return name


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


def serve(port: int = DEFAULT_PORT, notebook=EXPLORER_NOTEBOOK, train_progress: bool = True,
          token: str | None = None) -> int:
    """Serve the explorer notebook as a web page with Voila on 127.0.0.1 until Ctrl-C.

    The default model is loaded first (trained, with progress bars, when it does not exist yet), so
    the page itself starts quickly. The server is guarded: a fresh random token is required (the
    printed URL carries it; without it the server answers 403), at most
    ``QBDI_EXPLORE_MAX_KERNELS`` pages have a kernel at once (HTTP 503 beyond), a kernel whose page
    never connects is shut down after a short idle time
    (:class:`qbdi_utils.explore_server.GuardedKernelManager`), and tracebacks, which name server
    paths, are not shown on the page.

    Args:
        port: TCP port on 127.0.0.1.
        notebook: the notebook to serve (default notebooks/explorer.ipynb).
        train_progress: show progress while the default model trains.
        token: the access token (default: a fresh random one, printed in the URL).

    Returns:
        Exit status: 0 after Ctrl-C, else Voila's status.

    Raises:
        OptionError: a port outside 1..65535 or a missing notebook.

    Used in: ``make explore``.
    """
    import os
    import secrets
    import signal
    import subprocess
    import sys

    if not 0 < int(port) < 65536:
        raise OptionError(f"port must be 1..65535, got {port}")
    notebook = Path(notebook)
    if not notebook.is_file():
        raise OptionError(f"explorer notebook {notebook} not found")
    model = training.default_model(progress=train_progress)
    print(f"model: {training.default_model_dir()} ({'loaded' if getattr(model, 'from_cache', False) else 'trained'}); "
          f"audio: {render.synthesis_engine()} synthesizer", flush=True)
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
    proc = subprocess.Popen(cmd, cwd=str(notebook.parent), start_new_session=True, env=env)
    print(f"qbdi explorer: http://127.0.0.1:{int(port)}/?token={token}  (Ctrl-C stops it; at most "
          f"{max_kernels} pages at once)", flush=True)

    def _interrupt(_sig, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        print("qbdi explorer: stopped", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv=None) -> int:
    """``python -m qbdi_utils.explore [--port N]``: :func:`serve` with one-line errors."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m qbdi_utils.explore",
                                     description="Serve the qbdi explorer as a web page (Voila).")
    parser.add_argument("--port", default=str(DEFAULT_PORT), help=f"TCP port (default {DEFAULT_PORT})")
    args = parser.parse_args(argv)
    try:
        try:
            port = int(args.port)
        except ValueError:
            raise OptionError(f"--port {args.port!r} is not a whole number") from None
        return serve(port)
    except QbdiError as exc:
        print(f"explore: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # during training
        print("explore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
