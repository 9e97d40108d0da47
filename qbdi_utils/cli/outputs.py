"""What ``qbdi improvise`` and ``qbdi navigate`` share: loading the model and query, and writing a piece.

A piece's outputs (``--out`` MIDI, ``--musicxml``, ``--wav``, and any file written beside --out) are
checked before any work (suffixes, distinct names, nothing in the way unless --force) and written as
one :class:`qbdi_utils.files.OutputSet`: all of them appear, or none.

:func:`corpus_reference` is the corpus side of the fidelity line that
:func:`qbdi_utils.cli.fidelity.report_piece` prints after a piece is written.

Imports: files, limits, pianoroll, style, training, model, render, cli.checks, cli.corpus_options,
cli.model_corpus, cli.options. Used in: cli/improvise.py, cli/navigate.py, cli/sweep.py, cli/fidelity.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from qbdi_utils import files, limits, pianoroll, style, training
from qbdi_utils.cli import checks, corpus_options, model_corpus, options
from qbdi_utils.errors import CorpusError, ModelError
from qbdi_utils.model import StyleVAE
from qbdi_utils.model.persist import saved_spec
from qbdi_utils.render._common import check_suffix
from qbdi_utils.render.audio import WAV_SUFFIXES, wav_bytes
from qbdi_utils.render.notation import MUSICXML_SUFFIXES, musicxml_bytes

__all__ = ["MIDI_SUFFIXES", "add_piece_outputs", "check_piece_outputs", "corpus_reference", "load",
           "midi_bytes", "training_corpus_once", "write_piece"]

MIDI_SUFFIXES = (".mid", ".midi")
"""Names accepted for MIDI outputs."""


def add_piece_outputs(parser, out_help: str) -> None:
    """``--out OUT.mid``, ``--musicxml F``, ``--wav F`` and ``--force``."""
    parser.add_argument("--out", required=True, metavar="OUT.mid", help=out_help)
    parser.add_argument("--musicxml", default=None, metavar="F", help="also write MusicXML here")
    parser.add_argument("--wav", default=None, metavar="F", help="also write a WAV rendering here")
    options.add_force(parser)
    corpus_options.add_corpus(parser, help="the model's training corpus, if it moved, for the fidelity line's style "
                       "side (default: the corpus the model records)")


def _output(option: str, value: str | None, suffixes: tuple[str, ...], what: str) -> Path | None:
    """An output file option as a Path: a file name with the suffix of what is written there."""
    if value is None:
        return None
    return check_suffix(checks.output_file_option(option, value), suffixes, what, option)


def check_piece_outputs(args, extra: tuple = ()) -> list:
    """--out, --musicxml and --wav (and ``extra`` paths) checked before any work.

    Returns:
        [out, musicxml or None, wav or None] as Paths.

    Raises:
        OptionError, OutputExistsError, FileSystemError: see :func:`checks.check_outputs`.
    """
    outs = [_output("--out", args.out, MIDI_SUFFIXES, "MIDI"),
            _output("--musicxml", args.musicxml, MUSICXML_SUFFIXES, "uncompressed MusicXML"),
            _output("--wav", args.wav, WAV_SUFFIXES, "WAV audio")]
    checks.check_outputs(outs + list(extra), force=args.force)
    return outs


def load(model_dir: Path | None, query_path: Path, audio: bool = False):
    """(model, query Piece): ``--model`` (None: :func:`qbdi_utils.training.default_model`) and the query;
    with ``audio``, the WAV's length (the output has the query's steps and tempo) is checked against
    :mod:`qbdi_utils.limits` before any work."""
    if model_dir is None:
        model = training.default_model(progress=True)
    else:
        model = StyleVAE.load(model_dir, spec=saved_spec(model_dir))  # the model's own grid
    query = pianoroll.read_midi(query_path, spec=model.spec)
    if audio:
        limits.check_audio_seconds(query.n_steps * 60.0 / query.tempo_bpm / query.spec.steps_per_quarter,
                                   f"{query_path}: the --wav of this query")
    return model, query


def midi_bytes(piece, tracks: str = "one", programs=None) -> bytes:
    """The MIDI file of a piece (its tempo map, time signatures and velocities; ``tracks`` and
    ``programs`` as :func:`qbdi_utils.pianoroll.midi_bytes`)."""
    sigs = piece.time_signatures or [(0, 4, 4)]
    velocity = pianoroll.DEFAULT_VELOCITY if piece.velocities is None else piece.velocities
    return pianoroll.midi_bytes(piece.roll, tempo_bpm=[tuple(t) for t in piece.tempo_map], velocity=velocity,
                                spec=piece.spec, time_signatures=[tuple(t) for t in sigs],
                                tracks=tracks, programs=programs)


def write_piece(piece, outs: list, force: bool, extra_texts: dict | None = None, layout: dict | None = None) -> list:
    """MIDI, MusicXML and WAV of ``piece`` (and ``extra_texts``: {path: text}) as one output set:
    all of them appear, or none; ``layout``: the writers' tracks, programs and WAV format
    (:func:`qbdi_utils.cli.performing.layout`). Returns the paths written."""
    layout = layout or {}
    tracks = {k: layout[k] for k in ("tracks", "programs") if k in layout}
    with files.OutputSet(force=force) as out_set:
        out_set.add_bytes(outs[0], midi_bytes(piece, **tracks))
        for path, text in (extra_texts or {}).items():
            out_set.add_text(path, text)
        if outs[1] is not None:
            out_set.add_bytes(outs[1], musicxml_bytes(piece, name=piece.name))
        if outs[2] is not None:
            out_set.add_bytes(outs[2], wav_bytes(piece, wav_format=layout.get("wav_format"), **tracks))
    return list(out_set.paths)


def training_corpus_once(model, corpus: str | None = None) -> Callable[[], object]:
    """A function returning the model's training corpus (:func:`model_corpus.training_corpus`: ``--corpus``
    or the recorded one, its frames checked against the model), loaded on the first call only, so that
    a command's decoding (``--decode floor``) and its fidelity line share one load.

    Args:
        model: a StyleVAE.
        corpus: ``--corpus`` (None: the corpus the model records).
    """
    return functools.cache(lambda: model_corpus.training_corpus(model, corpus))


def corpus_reference(model, corpus: str | None = None, training: Callable[[], object] | None = None):
    """The model's corpus side of the fidelity line (:func:`qbdi_utils.style.corpus_reference`, cached per
    model, so the corpus is read only the first time) and ``None``; or ``None`` and the warning to print
    when that corpus cannot be read (the caller prints it after its outputs are written).

    Args:
        model: a StyleVAE.
        corpus: ``--corpus`` (None: the corpus the model records).
        training: :func:`training_corpus_once` of the command (default: a load of its own).
    """
    load = training_corpus_once(model, corpus) if training is None else training
    try:
        return style.corpus_reference(model, load), None
    except (CorpusError, ModelError) as exc:
        return None, f"no corpus to compare the style with ({exc}); style_fit_corpus is nan"
