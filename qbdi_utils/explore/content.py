"""What the explorer shows, as plain values: the slider's stops, the metrics line, labels, excerpts,
the HTML of a metrics line or a download link, an error's message for a web page.

Nothing here holds widgets or state (:mod:`qbdi_utils.explore.explorer` puts these into its
ipywidgets; :mod:`qbdi_utils.explore.web` and :mod:`qbdi_utils.explore.server` use the labels and
messages).

Imports: harmony, performance (bar_grid), pianoroll, training (same_config), model (DEFAULT_CONFIG),
improvise (BITS_SCALE), errors, paths.
Used in: notebooks/explorer.ipynb and notebooks/04_query_generation.ipynb (through
:class:`qbdi_utils.explore.Explorer`), benchmarks/bench_explore.py (:func:`bar_excerpt`).
"""

from __future__ import annotations

import base64
import html
import io
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from qbdi_utils import harmony, performance, pianoroll, training
from qbdi_utils.errors import OptionError
from qbdi_utils.improvise import BITS_SCALE
from qbdi_utils.model import DEFAULT_CONFIG
from qbdi_utils.paths import REPO_ROOT

__all__ = [
    "INSTRUMENTS",
    "UPLOAD_CSS",
    "bits_options",
    "explorer_metrics",
    "corpus_label",
    "public_message",
    "metrics_html",
    "display_data",
    "bar_excerpt",
    "bar_starts",
    "excerpt_steps",
    "excerpt_velocities",
    "score_velocities",
    "query_frames",
    "clip_range",
    "wav_bytes",
    "download_html",
]

#: General MIDI programs offered for the audio (name, program number).
INSTRUMENTS: tuple = (("acoustic grand piano", 0), ("church organ", 19), ("string ensemble", 48),
                      ("choir aahs", 52), ("flute", 73))


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

    Both pieces are cut into frames on the query's bar lines, in its meter (:func:`query_frames`).

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
    q_chroma = harmony.chroma(query_frames(query, query.roll), query.spec)
    if tonic is None:
        tonic = harmony.tonic_triad(q_chroma)
    o_frames = query_frames(query, output.roll)
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


def metrics_html(name: str, mode: str, seed: int, m: dict) -> str:
    """The metrics line of :func:`explorer_metrics` plus the style side, as HTML."""
    return (
        f"<b>{html.escape(name)}</b>, statistics <i>{html.escape(mode)}</i>, seed {seed}: "
        f"chroma cosine {m['chroma_cosine']:.3f}, Tonnetz distance {m['tonnetz_distance']:.3f}, "
        f"triad agreement {m['triad_agreement']:.3f}, distinct triads {m['distinct_triads']:.1f}, "
        f"tonic share {m['tonic_share']:.3f}, empty bars {m['empty_frame_rate']:.2f}"
        f" | style: fit corpus {m['style_fit_corpus']:.3f}, fit query {m['style_fit_query']:.3f}, "
        f"onsets/bar {m['onsets_per_bar']:.1f} (corpus {m['corpus_onsets_per_bar']:.1f})"
    )


def display_data(mime: dict) -> dict:
    """One ``display_data`` output of an Output widget's ``outputs`` state."""
    return {"output_type": "display_data", "data": mime, "metadata": {}}


def query_frames(query, roll) -> np.ndarray:
    """A roll on the query's timeline cut into frames at the query's bar lines, in its meter.

    Args:
        query: the query Piece (its time signatures and pickup; none is 4/4).
        roll: (T, spec.n_columns) roll (the query's or an output's).

    Returns:
        (N, spec.frame_size) uint8 frames (:func:`qbdi_utils.pianoroll.cut_bars`); on a 4/4 query
        the 16-step frames from its first full bar, as before meters were known.
    """
    return pianoroll.to_frames(roll, query.spec, int(query.bar_offset_steps),
                               time_signatures=list(query.time_signatures))


def bar_starts(piece) -> np.ndarray:
    """Where each bar of a piece starts, as the explorer counts bars: bar k (from 1) at ``[k - 1]``.

    The bars are :func:`qbdi_utils.performance.bar_grid`'s (the piece's own meter and meter
    changes; a pickup is bar 1, starting at step 0, as the MusicXML numbers it).

    Returns:
        (B,) int64 steps, increasing, the first 0.
    """
    return performance.bar_grid(piece.n_steps, piece.time_signatures, piece.bar_offset_steps, piece.spec)[0]


def excerpt_steps(bars, starts, n_steps: int) -> tuple[int, int]:
    """Steps [a, b) of bars (first, last), 1-based inclusive, on the bar starts ``starts``."""
    first, last = int(bars[0]), int(bars[1])
    starts = np.asarray(starts, dtype=np.int64)
    a = int(starts[min(max(first, 1), len(starts)) - 1])
    b = int(starts[last]) if last < len(starts) else int(n_steps)
    return a, max(a, b)


def bar_excerpt(roll, bars, spec, starts=None):
    """Rows of bars (first, last), 1-based inclusive, as a valid roll.

    Args:
        roll: (steps, pitches) piano roll.
        bars: (first, last) bars, counted from 1.
        spec: the roll's RollSpec.
        starts: (B,) bar starts (:func:`bar_starts` of the query); None: bars of
            ``spec.steps_per_frame`` steps from step 0.

    Returns:
        (steps of those bars, pitches) valid roll (:func:`pianoroll.make_valid`).
    """
    roll = np.asarray(roll)
    if starts is None:
        a, b = (int(bars[0]) - 1) * spec.steps_per_frame, int(bars[1]) * spec.steps_per_frame
    else:
        a, b = excerpt_steps(bars, starts, len(roll))
    return pianoroll.make_valid(roll[a:b], spec)


def score_velocities(score, velocities, spec) -> int:
    """Give the notes of a music21 score (:func:`qbdi_utils.render.roll_to_stream` of a whole piece)
    their velocities, in place: the MusicXML then carries each note's dynamics.

    A note (or a chord's note) starting at quarter offset ``o`` of the score is the roll's onset at
    step ``round(o * spec.steps_per_quarter)``; its velocity is looked up by (step, pitch); a tied
    continuation keeps none (it is no new onset). A chord takes its notes' mean velocity (the
    MusicXML writer gives every note of a chord the chord's dynamics).

    Args:
        score: a music21 Score whose offset 0 is the roll's step 0.
        velocities: (n, 3) int (step, pitch, velocity) per onset (``Piece.velocities``), or None.
        spec: the roll's RollSpec.

    Returns:
        The number of notes given a velocity (0 when ``velocities`` is None).
    """
    if velocities is None:
        return 0
    table = {(int(st), int(p)): int(v) for st, p, v in np.asarray(velocities).reshape(-1, 3)}
    done = 0
    for el in score.recurse().notes:
        step = int(round(float(el.getOffsetInHierarchy(score)) * spec.steps_per_quarter))
        for n in (el.notes if el.isChord else [el]):
            tie = n.tie if n.tie is not None else getattr(el, "tie", None)
            if tie is not None and tie.type in ("stop", "continue"):
                continue
            v = table.get((step, int(n.pitch.midi)))
            if v is not None:
                n.volume.velocity = v
                done += 1
        if el.isChord:  # the MusicXML writer takes a chord's dynamics from the chord
            vs = [n.volume.velocity for n in el.notes if n.volume.velocity is not None]
            if vs:
                el.volume.velocity = int(round(float(np.mean(vs))))
    return done


def excerpt_velocities(velocities, a: int, b: int):
    """The per-onset velocities (n, 3) of steps [a, b), their steps counted from ``a``; None stays None."""
    if velocities is None:
        return None
    v = np.asarray(velocities, dtype=np.int64).reshape(-1, 3)
    v = v[(v[:, 0] >= a) & (v[:, 0] < b)].copy()
    v[:, 0] -= a
    return v


def wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    """A mono wave (floats in -1..1) as the bytes of a 16-bit PCM WAV file."""
    from scipy.io import wavfile

    pcm = np.clip(np.round(np.asarray(wave, np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    buf = io.BytesIO()
    wavfile.write(buf, int(sample_rate), pcm)
    return buf.getvalue()


#: CSS of the upload button: it shows the name of the last file uploaded (its title).
UPLOAD_CSS = (
    "<style>.qbdi-upload{font-size:0 !important;width:auto !important;max-width:320px;white-space:nowrap;"
    "overflow:hidden;text-overflow:ellipsis}.qbdi-upload i{font-size:13px;margin-right:5px}"
    ".qbdi-upload::after{content:attr(title);font-size:13px}</style>"
)


def download_html(name: str, mime: str, data: bytes) -> str:
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


def clip_range(rng, n: int) -> tuple[int, int]:
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

