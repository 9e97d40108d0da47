"""The explorer's widgets: :class:`Explorer`, one model queried with one query through its controls.

Every refresh transmits the query's encoding through the channel and decodes it; the query is encoded
once, when it is chosen; moving a bar range only redraws the plot or re-renders the audio. The results
go into ``ipywidgets.Output`` widgets by assigning their ``outputs`` state, so a reloaded page (and a
Voila page) gets them from the kernel. Given a ``state_dir``, an explorer keeps its uploads and
settings there (:mod:`qbdi_utils.explore.state`).

Imports: corpus, harmony, limits, navigate (model_corpus), performance, pianoroll, render, style, training,
errors, improvise, explore.content, explore.state.
Used in: notebooks/04_query_generation.ipynb, notebooks/explorer.ipynb (through
:func:`qbdi_utils.explore.page`), benchmarks/bench_explore.py.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import tempfile
import time
from pathlib import Path

import numpy as np

from qbdi_utils import corpus, harmony, limits, navigate, performance, pianoroll, render, style, training
from qbdi_utils.errors import CorpusError, MidiFileError, ModelError, OptionError, QbdiError
from qbdi_utils.explore.content import (INSTRUMENTS, UPLOAD_CSS, bar_excerpt, bar_starts, bits_options,
                                        clip_range, corpus_label, display_data, download_html, excerpt_steps,
                                        excerpt_velocities, explorer_metrics, metrics_html, public_message,
                                        query_frames, score_velocities, wav_bytes)
from qbdi_utils.explore.state import (GIVEN_PREFIX, UPLOAD_PREFIX, Settings, initial_settings, keep_upload,
                                      kept_uploads, read_state, restore_settings, write_state)
from qbdi_utils.improvise import STATS_MODES, encode_query, improvise_batch, parse_bits, rate_label
from qbdi_utils.pianoroll import Piece

__all__ = ["Explorer"]

_AUDIO_CACHE_SIZE = 32


def _close_tree(w) -> None:
    """Close a widget and every widget inside it (their views disappear)."""
    for child in getattr(w, "children", ()):
        _close_tree(child)
    w.close()


class Explorer:
    """Controls and outputs of one interactive exploration of a model with a query.

    Attributes (ipywidgets): ``heading`` (HTML naming the model and its corpus), ``bits``
    (SelectionSlider over :data:`BITS_SCALE`, value an int or "full"), ``mode`` (Dropdown of statistics
    modes), ``seed`` (BoundedIntText), ``query`` (Dropdown of shipped and uploaded queries), ``upload``
    (FileUpload of .mid files; its label shows the last file uploaded), ``program`` (Dropdown of
    :data:`INSTRUMENTS`), ``plot_range`` and ``audio_range`` (IntRangeSliders of the bars plotted and
    heard, bars of the query's own meter counted from 1, a pickup being bar 1), ``metrics``, ``plot``, ``audio``, ``downloads`` (Output widgets),
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
        velocity: the dynamics of the outputs (audio, MIDI, MusicXML's notes, WAV), as ``qbdi
            improvise --velocity``: "query" (the query's level and accents bar by bar; a query
            without dynamics keeps its one level plus the corpus's accents), "corpus", or a fixed
            velocity 1..127 (80 was the explorer's old one); :func:`qbdi_utils.performance.perform`.
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
                 program: int = 0, velocity="query", dpi: int = 80, state_dir=None, refresh: bool = True):
        self.velocity = performance.parse_velocity(velocity)
        self.model = training.default_model(progress=True) if model is None else model
        self.sample_rate = int(sample_rate)
        self.dpi = int(dpi)
        start = initial_settings(bits=bits, mode=mode, seed=seed, program=program, overlay_bars=overlay_bars,
                                 audio_bars=audio_bars)
        query = corpus.DEFAULT_QUERY if query is None else query
        given = self._given_query(query)

        self._tmp = tempfile.TemporaryDirectory(prefix="qbdi-explore-")
        self._state_dir = None if state_dir is None else Path(state_dir)
        self._pieces: dict = {}       # query key -> Piece
        self._upload_files: dict = {}  # upload query key -> (file in state_dir/uploads, shown name)
        options_q = [(n, n) for n in corpus.QUERY_NAMES]
        if given is not None:
            query = f"{GIVEN_PREFIX}{given.name or 'query'}"
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
        self._velocity_ref = False    # the corpus's VelocityProfile: False = not read yet
        self.performance_notes: list = []  # what performance.perform said of the last view

        saved = read_state(self._state_dir)
        if self._state_dir is not None:
            self._upload_files.update(kept_uploads(self._state_dir, saved))
        options_q += [(f"{name} (uploaded)", key) for key, (_, name) in self._upload_files.items()]
        keys = [k for _, k in options_q]
        if saved.get("query") in keys:
            query = saved["query"]
        settings = restore_settings(saved, start)
        try:
            n_bars = self._n_bars(query)
        except QbdiError:  # a kept upload that can no longer be read: start from the default query
            query = corpus.DEFAULT_QUERY if given is None else keys[0]
            n_bars = self._n_bars(query)

        self._build_controls(options_q, query, settings, n_bars)
        self._build_layout()
        self._connect()
        if refresh:
            self.refresh()

    def _given_query(self, query):
        """The Piece of a query given as a Piece or a MIDI file (read with the model's spec); None for a
        shipped query's name."""
        if isinstance(query, Piece):
            return query
        if str(query) not in corpus.QUERY_NAMES:
            if not Path(str(query)).is_file():
                raise OptionError(f"query {query!r} is neither one of {', '.join(corpus.QUERY_NAMES)} nor a "
                                  "MIDI file; upload other MIDI files with the upload button")
            return corpus.load_query(str(query), spec=self.model.spec)
        return None

    def _build_controls(self, options_q: list, query: str, s: Settings, n_bars: int) -> None:
        """Make the controls and outputs (the widget attributes of the class) at the settings ``s``."""
        import ipywidgets as W

        self.heading = W.HTML(self._heading_html())
        self.bits = W.SelectionSlider(options=bits_options(), value=s.bits, description="", readout=False,
                                      continuous_update=False, layout=W.Layout(width="640px"))
        self.bits_readout = W.HTML()
        self.mode = W.Dropdown(options=list(STATS_MODES), value=s.mode, description="statistics")
        self.seed = W.BoundedIntText(value=int(s.seed), min=0, max=1_000_000, description="seed",
                                     layout=W.Layout(width="180px"))
        self.query = W.Dropdown(options=options_q, value=query, description="query",
                                layout=W.Layout(width="360px"))
        self.upload = W.FileUpload(accept=".mid,.midi", multiple=False, description="upload MIDI",
                                   tooltip="upload MIDI")
        self.upload.add_class("qbdi-upload")
        if query in self._upload_files:  # a kept upload selected again: its name on the button
            self.upload.tooltip = self._upload_files[query][1]
        self.program = W.Dropdown(options=list(INSTRUMENTS), value=s.program, description="instrument")
        range_kw = dict(min=1, max=max(n_bars, 1), step=1, continuous_update=False,
                        layout=W.Layout(width="420px"), style={"description_width": "80px"})
        self.plot_range = W.IntRangeSlider(value=clip_range(s.overlay_bars, n_bars), description="plot bars",
                                           **range_kw)
        self.audio_range = W.IntRangeSlider(value=clip_range(s.audio_bars, n_bars), description="hear bars",
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

    def _build_layout(self) -> None:
        """Arrange the controls and outputs in ``widget`` (the bit slider with its stops' labels below)."""
        import ipywidgets as W

        options = bits_options()
        ticks = "".join(
            f'<span style="position:absolute;left:{100 * i / (len(options) - 1):.3f}%;'
            f'transform:translateX(-50%);font-size:11px">{lbl}</span>'
            for i, (lbl, _) in enumerate(options)
        )
        tick_strip = W.HTML(f'<div style="position:relative;height:16px;margin:0 8px">{ticks}</div>',
                            layout=W.Layout(width="640px"))
        self.widget = W.VBox([
            W.HTML(UPLOAD_CSS),
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

    def _connect(self) -> None:
        """Make each control call its handler."""
        for w in (self.bits, self.mode, self.seed):
            w.observe(self._on_change, names="value")
        self.program.observe(self._on_program, names="value")  # the audio only
        self.query.observe(self._on_query, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.plot_range.observe(self._on_plot_range, names="value")
        self.audio_range.observe(self._on_audio_range, names="value")
        for kind, button in self.download_buttons.items():
            button.on_click(lambda _b, kind=kind: self._guarded(self.make_download, kind))

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

    def settings(self) -> Settings:
        """The current values of the kept controls."""
        return Settings(bits=self.bits.value, mode=self.mode.value, seed=int(self.seed.value),
                        program=int(self.program.value), overlay_bars=self.overlay_bars,
                        audio_bars=self.audio_bars)

    def _save_state(self) -> None:
        """Write the uploads and settings to ``state_dir/state.json`` (atomically); no-op without one."""
        write_state(self._state_dir, self._upload_files, self.query.value, self.settings())

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
        return max(1, len(bar_starts(self._piece(key))))

    def _fit_ranges(self) -> None:
        """Set the bar ranges' maximum to the current query's length (keeping their values inside)."""
        n = self._n_bars(self.query.value)
        self._quiet = True
        try:
            for w in (self.plot_range, self.audio_range):
                value = clip_range(w.value, n)
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
            q_chroma = harmony.chroma(query_frames(piece, piece.roll), piece.spec)
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

    def _velocity_profile(self):
        """The velocity profile of the model's corpus (read once; None when it records none)."""
        if self._velocity_ref is False:
            rec = training.recorded_corpus(self.model)
            source = rec[0] if rec else ("chorales" if corpus_label(self.model) == "the Bach chorales" else None)
            self._velocity_ref = performance.corpus_profile(source, self.model.spec)
        return self._velocity_ref

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
        key = f"{UPLOAD_PREFIX}{digest}:{safe}"
        self._pieces[key] = piece
        if self._state_dir is not None:
            keep_upload(self._state_dir, self._upload_files, key, f"{digest}_{safe}", safe, data)
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

    def refresh_on_page(self) -> dict | None:
        """:meth:`refresh`, reporting a failure on the status line instead of raising.

        Returns:
            The metrics dict, or None when the refresh failed.

        Used in: :func:`qbdi_utils.explore.page` (the first view of the web page).
        """
        return self._guarded(self.refresh)

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
        query = enc.query
        self.performance_notes = performance.perform(out, query, self.velocity, corpus=self._velocity_profile,
                                                     corpus_name=corpus_label(self.model))
        t1 = time.perf_counter()
        m = explorer_metrics(query, out, tonic=tonic)
        m.update(self._style_side(query, out))
        t2 = time.perf_counter()
        # plot and metrics go out first (a browser shows them at once), the audio follows
        self.improvisation, self.last_metrics = out, m
        self._view = (query, out, mode, seed)
        self.bits_readout.value = f"<b>{rate_label(bits)}</b> per frame"
        self.metrics.outputs = (display_data({
            "text/html": metrics_html(out.name, mode, seed, m),
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
                             f"plot {self.timings['plot']:.2f}, audio {self.timings['audio']:.2f})"
                             + "".join(f"; {html.escape(n)}" for n in self.performance_notes) + "</span>")
        return m

    def _publish_plot(self) -> None:
        query, out, mode, seed = self._view
        png = self._overlay_png(query, out, mode, seed)
        self.plot.outputs = (display_data({"image/png": base64.b64encode(png).decode("ascii"),
                                            "text/plain": f"<overlay of {out.name}, bars "
                                                          f"{self.overlay_bars[0]}-{self.overlay_bars[1]}>"}),)

    def _publish_audio(self) -> None:
        """Render the audio excerpt of the current improvisation (cached by content) into ``audio``."""
        from IPython.display import Audio

        out = self.improvisation
        program = int(self.program.value)
        a, b = self.audio_bars
        starts = bar_starts(self._view[0])
        clip = bar_excerpt(out.roll, (a, b), out.spec, starts)
        vel = excerpt_velocities(out.velocities, *excerpt_steps((a, b), starts, out.n_steps))
        key = (hashlib.sha1(np.ascontiguousarray(clip).tobytes() + (b"" if vel is None else vel.tobytes()))
               .hexdigest(), clip.shape, program, out.tempo_bpm, self.sample_rate)
        engine = render.synthesis_engine()
        if key not in self._audio_cache:
            wave = render.synthesize(clip, out.spec, tempo_bpm=out.tempo_bpm, sample_rate=self.sample_rate,
                                     program=program, velocity=vel)
            html_player = Audio(wave, rate=self.sample_rate, normalize=False)._repr_html_()
            if len(self._audio_cache) >= _AUDIO_CACHE_SIZE:
                self._audio_cache.pop(next(iter(self._audio_cache)))
            self._audio_cache[key] = html_player
        self.audio.outputs = (display_data({
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
        starts = bar_starts(query)
        first, last = excerpt_steps((a, b), starts, query.n_steps)
        render.plot_overlay(bar_excerpt(query.roll, (a, b), query.spec, starts),
                            bar_excerpt(out.roll, (a, b), out.spec, starts),
                            ax=ax, title=f"{out.name} (statistics {mode}, seed {seed}), bars {a}-{b}",
                            bar_starts=[int(x) - first for x in starts if first <= x < last], first_bar=a)
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
            # the query's meter (its time signatures, a pickup marked) and the view's velocities
            pianoroll.write_midi(out.roll, path, tempo_bpm=list(out.tempo_map), spec=out.spec,
                                 program=int(self.program.value), force=True,  # the explorer's own scratch file
                                 velocity=pianoroll.DEFAULT_VELOCITY if out.velocities is None else out.velocities,
                                 time_signatures=list(out.time_signatures) or None)
            return f"{stem}.mid", "audio/midi", path.read_bytes()
        if kind == "musicxml":
            score = render.roll_to_stream(out)
            score_velocities(score, out.velocities, out.spec)  # the notes' dynamics, as the MIDI has them
            return f"{stem}.musicxml", "application/vnd.recordare.musicxml+xml", render.to_musicxml(score)
        if kind == "wav":
            wave = render.synthesize(out, sample_rate=self.sample_rate, program=int(self.program.value))
            return f"{stem}.wav", "audio/wav", wav_bytes(wave, self.sample_rate)
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
        ) + (display_data({"text/html": download_html(name, mime, data), "text/plain": name}),)
        return name
