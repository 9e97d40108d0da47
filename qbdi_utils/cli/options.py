"""One definition per shared option of the ``qbdi`` command (the options layer).

``--model``, ``--query``, ``--corpus``, ``--meter``, ``--force``, ``--seed``, ``--bits``, ``--stats``,
``--continuity`` and ``--quiet`` are added by the ``add_*`` functions below, each with its typed
converter (the generic ones from :mod:`qbdi_utils.cli.values`, the musical ones -- :func:`bits_option`,
:func:`stats_option`, :func:`meter_option` -- here); a sub-command's own options are defined in its module.
The "exists / --force" checks of outputs are :mod:`qbdi_utils.cli.checks`.

How an output is performed -- ``--velocity``, ``--tracks``, ``--programs``, ``--wav-format`` -- is
:func:`add_performance`; :func:`layout` checks them together before any work and :func:`perform` gives
an output its velocities (:mod:`qbdi_utils.performance`).

Imports: corpus, errors, improvise, navigate, performance, pianoroll, training, render.audio, cli.values.
Used in: every ``qbdi_utils/cli/*.py``.
"""

from __future__ import annotations

from pathlib import Path

from qbdi_utils import performance, training
from qbdi_utils.corpus import NAMED_SOURCES
from qbdi_utils.cli.values import MAX_SEED, SEED_WHY, whole_number
from qbdi_utils.errors import OptionError
from qbdi_utils.improvise import DECODE_MODES, STATS_MODES, check_stats_mode, parse_bits
from qbdi_utils.navigate import DEFAULT_CONTINUITY, check_continuity
from qbdi_utils.pianoroll import TRACK_LAYOUTS, RollSpec
from qbdi_utils.render.audio import WAV_FORMATS

__all__ = [
    "ANY_METER", "MAX_BITS", "add_bits", "add_continuity", "add_corpus", "add_decode", "add_force", "add_meter", "add_model",
    "add_query", "add_quiet", "add_seed", "add_stats", "bits_option", "meter_option", "parse_meter", "stats_option",
    "add_grid", "grid_spec", "GRID_STEPS", "add_performance", "velocity_option", "tracks_option", "programs_option", "wav_format_option", "layout",
    "perform",
]

ANY_METER = "any"
"""``--meter any``: keep pieces in every meter (their bars are cut into 4-quarter frames)."""

CORPUS_METAVAR = "{" + "|".join(NAMED_SOURCES) + "|PATH}"
MAX_BITS = 1_000_000
"""Largest --bits: far above any model's full-rate information (a few thousand bits per frame)."""


def bits_option(value: str) -> int | None:
    """``--bits`` as None (full rate) or a whole number of bits per frame, at most :data:`MAX_BITS`.

    Args:
        value: "full" or a whole number (``improvise.parse_bits`` reads it).

    Returns:
        None or the bits per frame.

    Raises:
        OptionError: not a budget, or more than MAX_BITS.
    """
    bits = parse_bits(value)
    if bits is not None and bits > MAX_BITS:
        shown = value.strip() if len(value.strip()) <= 30 else f"({len(value.strip())} digits)"
        raise OptionError(f"--bits {shown} is more than {MAX_BITS} bits per frame; "
                          "for an unconstrained channel pass --bits full")
    return bits


def stats_option(value: str) -> str:
    """``--stats``: one of :data:`qbdi_utils.improvise.STATS_MODES` (checked by the library).

    Raises:
        OptionError: another word (the message names the option).
    """
    try:
        return check_stats_mode(value)
    except OptionError:
        raise OptionError(f"--stats {value!r} is not one of {', '.join(STATS_MODES)}") from None


def parse_meter(text: str, option: str = "--meter") -> tuple[int, int]:
    """``"4/4"`` -> ``(4, 4)``.

    Raises:
        OptionError: not two positive whole numbers separated by a slash.
    """
    try:
        num, den = (int(x) for x in str(text).strip().split("/"))
    except ValueError:
        raise OptionError(f"{option} {text!r} is not a meter like 4/4 or 3/4") from None
    if num < 1 or den < 1:
        raise OptionError(f"{option} {text!r} is not a meter like 4/4 or 3/4")
    return num, den

def add_model(parser, *, required: bool = False, help: str | None = None) -> None:
    """``--model MODEL_DIR``: a saved StyleVAE (optional: the default model)."""
    parser.add_argument("--model", required=required, default=None, metavar="MODEL_DIR",
                        help=help or "directory of a saved StyleVAE (default: the notebooks' default model, "
                        "models/default, trained on the chorales on first use)")


def add_query(parser) -> None:
    """``--query FILE.mid`` (required)."""
    parser.add_argument("--query", required=True, metavar="FILE.mid", help="query MIDI file")


def add_force(parser, help: str = "overwrite existing outputs") -> None:
    """``--force``: replace (or write into) what exists."""
    parser.add_argument("--force", action="store_true", help=help)


def add_seed(parser, help: str = "seed of the channel noise (default 0)", default: int = 0) -> None:
    """``--seed S``: a whole number in 0..:data:`MAX_SEED`."""
    parser.add_argument("--seed", type=whole_number("--seed", 0, MAX_SEED, SEED_WHY), default=default,
                        metavar="S", help=help)


def add_bits(parser, *, required: bool, help: str) -> None:
    """``--bits {full|N}``: a bit budget per frame (:func:`bits_option`); not required: full rate."""
    parser.add_argument("--bits", type=bits_option, required=required, default=None, metavar="{full|N}",
                        help=help)


def add_stats(parser, *, default: str = "query", help: str = "channel source statistics (default: query)") -> None:
    """``--stats MODE``: the channel's source statistics (default query; ``qbdi live``: corpus)."""
    parser.add_argument("--stats", type=stats_option, default=default, metavar="{" + "|".join(STATS_MODES) + "}",
                        help=help)


def add_continuity(parser, help: str) -> None:
    """``--continuity P``: probability in [0, 1] of playing the next bar (``navigate.check_continuity``);
    None when not given (its default, :data:`qbdi_utils.navigate.DEFAULT_CONTINUITY`, is the library's)."""
    parser.add_argument("--continuity", type=check_continuity, default=None, metavar="P",
                        help=f"{help} (default {DEFAULT_CONTINUITY:g})")


def add_corpus(parser, *, required: bool = False, help: str | None = None) -> None:
    """``--corpus {chorales|essen|PATH}``: a named corpus or a folder of .mid files / one .mid file;
    None when not given (the commands that use a model then take the corpus the model records)."""
    parser.add_argument("--corpus", required=required, default=None, metavar=CORPUS_METAVAR,
                        help=help or "the model's training corpus, if it moved (default: the corpus the "
                        "model records, as `qbdi train` saved it)")


def meter_option(value: str) -> str | None:
    """``--meter``: "any" (None: every meter) or a meter like 4/4 (checked by the corpus loader).

    Raises:
        OptionError: not "any" and not a meter (:func:`parse_meter`).
    """
    text = str(value).strip()
    if text.lower() == ANY_METER:
        return None
    num, den = parse_meter(text)
    return f"{num}/{den}"


def add_meter(parser, *, default: str | None, help: str) -> None:
    """``--meter {N/D|any}`` (:func:`meter_option`; the parsed default is ``meter_option(default)``)."""
    parser.add_argument("--meter", type=meter_option, default=default, metavar="{N/D|any}", help=help)


def add_decode(parser) -> None:
    """``--decode MODE``: how decoder probabilities become notes (:data:`qbdi_utils.improvise.DECODE_MODES`)."""
    parser.add_argument("--decode", choices=DECODE_MODES, default="paper",
                        help="'paper': one threshold (default; the paper's decoding); 'floor': every bar keeps "
                        "at least the corpus's typical onsets; 'typical': floor, and at 0 bits a typical bar "
                        "of the corpus instead of the decoder's blur (floor and typical need the model's corpus)")


def add_quiet(parser) -> None:
    """``--quiet``: print no warnings (errors and results are still printed)."""
    parser.add_argument("--quiet", action="store_true",
                        help="print no warnings (each warning is otherwise printed once per run)")


def velocity_option(value: str) -> str | int:
    """``--velocity``: "query", "corpus" or a fixed velocity 1..127 (:func:`qbdi_utils.performance.parse_velocity`)."""
    return performance.parse_velocity(value)


def tracks_option(value: str) -> str:
    """``--tracks``: one of :data:`qbdi_utils.pianoroll.TRACK_LAYOUTS`.

    Raises:
        OptionError: another word.
    """
    text = str(value).strip().lower()
    if text not in TRACK_LAYOUTS:
        raise OptionError(f"--tracks {value!r} is not one of {', '.join(TRACK_LAYOUTS)}")
    return text


def programs_option(value: str) -> tuple[int, ...]:
    """``--programs P[,P]``: General MIDI programs 0..127, one per track (one value: every track).

    Raises:
        OptionError: not one or two whole numbers 0..127 separated by a comma.
    """
    parts = [p.strip() for p in str(value).split(",")]
    if not 1 <= len(parts) <= 2 or not all(p.isdigit() and int(p) <= 127 for p in parts):
        raise OptionError(f"--programs {value!r}: give one or two General MIDI programs 0..127 separated "
                          "by a comma (e.g. 0,48)")
    return tuple(int(p) for p in parts)


def wav_format_option(value: str) -> str:
    """``--wav-format``: one of :data:`qbdi_utils.render.audio.WAV_FORMATS`.

    Raises:
        OptionError: another word.
    """
    text = str(value).strip().lower()
    if text not in WAV_FORMATS:
        raise OptionError(f"--wav-format {value!r} is not one of {', '.join(WAV_FORMATS)}")
    return text


def add_performance(parser) -> None:
    """``--velocity``, ``--tracks``, ``--programs`` and ``--wav-format``: how an output is performed."""
    parser.add_argument("--velocity", type=velocity_option, default="query",
                        metavar="{" + "|".join(performance.VELOCITY_MODES) + "|N}",
                        help="note velocities: 'query' follows the query's dynamics bar by bar (its mean and "
                        "accents; a query without dynamics keeps its one level plus the corpus's accents), "
                        "'corpus' the corpus's level and accents, N every note at N (1..127; 80 was the old "
                        "fixed velocity); default query")
    parser.add_argument("--tracks", type=tracks_option, default="one", metavar="{" + "|".join(TRACK_LAYOUTS) + "}",
                        help="'one' MIDI track (default) or the top voice and the rest in two tracks "
                        "(a type-1 file; panned apart in a stereo WAV)")
    parser.add_argument("--programs", type=programs_option, default=None, metavar="P[,P]",
                        help="General MIDI program of each track, 0..127 (default 0, piano; e.g. 0,48 for "
                        "piano over strings)")
    parser.add_argument("--wav-format", type=wav_format_option, default="mono22",
                        metavar="{" + "|".join(WAV_FORMATS) + "}",
                        help="--wav as 22.05 kHz mono (default) or 44.1 kHz stereo")


def layout(args) -> dict:
    """The writing options of :func:`add_performance` checked together (before any work).

    Returns:
        {"tracks", "programs" (one per track), "wav_format"}: the keyword arguments of the writers.

    Raises:
        OptionError: two programs for one track.
    """
    n = 1 if args.tracks == "one" else 2
    programs = args.programs or (0,)
    if len(programs) > n:
        raise OptionError(f"--programs {','.join(map(str, programs))} names {len(programs)} programs but "
                          f"--tracks {args.tracks} writes {n} track; add --tracks melody+accompaniment")
    return {"tracks": args.tracks, "programs": tuple(programs) * (n // len(programs)),
            "wav_format": args.wav_format}


def perform(args, model, query, piece) -> list:
    """Give an output its velocities as ``--velocity`` says (:func:`qbdi_utils.performance.perform`).

    The corpus profile (read only when the query has no dynamics or ``--velocity corpus``) is that of
    ``--corpus``, else of the corpus the model records.

    Returns:
        The warnings to print (a sentence when a fallback gave the velocities).
    """
    source = args.corpus if args.corpus is not None else (training.recorded_corpus(model) or (None,))[0]
    name = "" if source is None else (source if source in NAMED_SOURCES else Path(source).name)
    return performance.perform(piece, query, args.velocity, corpus_name=name,
                               corpus=lambda: performance.corpus_profile(source, model.spec))


GRID_STEPS = (4, 12)
"""``qbdi train --steps-per-quarter``: 4 (16th notes, the paper's grid) or 12 (16ths and 8th/16th triplets)."""


def add_grid(parser) -> None:
    """``--steps-per-quarter {4|12}``: the time grid of a model to train (its frames span 4 quarters)."""
    def grid(value: str) -> int:
        text = str(value).strip()
        if text not in {str(g) for g in GRID_STEPS}:
            raise OptionError(f"--steps-per-quarter {value!r} is not one of {', '.join(map(str, GRID_STEPS))}")
        return int(text)

    parser.add_argument("--steps-per-quarter", type=grid, default=GRID_STEPS[0], metavar="{4|12}",
                        help="time steps per quarter note: 4 (16th notes, the paper's; default) or 12 (16ths and "
                        "triplets; frames of 48 steps). The model saves its grid; a MIDI file whose ticks per "
                        "quarter the grid does not divide is skipped (a query: refused)")


def grid_spec(args) -> RollSpec:
    """The roll layout of ``--steps-per-quarter``: the paper's pitches, frames of 4 quarter notes."""
    spq = int(getattr(args, "steps_per_quarter", GRID_STEPS[0]))
    return RollSpec(steps_per_quarter=spq, steps_per_frame=4 * spq)
