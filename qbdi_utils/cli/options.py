"""One definition per shared option of the ``qbdi`` command (the options layer).

``--model``, ``--query``, ``--key``, ``--force``, ``--seed``, ``--bits``, ``--stats``, ``--continuity``,
``--decode`` and ``--quiet`` are added by the ``add_*`` functions below, each with its typed converter
(the generic ones from :mod:`qbdi_utils.cli.values`, the musical ones -- :func:`bits_option`,
:func:`stats_option` -- here); a sub-command's own options are defined in its module. The corpus and
the model's layout (``--corpus``, ``--meter``, ``--steps-per-quarter``) are
:mod:`qbdi_utils.cli.corpus_options`; how an output is performed (``--velocity``, ``--tracks``,
``--programs``, ``--wav-format``) is :mod:`qbdi_utils.cli.performing` (converters:
:mod:`qbdi_utils.cli.performance_values`). The "exists / --force" checks
of outputs are :mod:`qbdi_utils.cli.checks`.

Imports: corpus_key, errors, improvise, navigate, cli.values.
Used in: every ``qbdi_utils/cli/*.py``.
"""

from __future__ import annotations

from qbdi_utils.cli.values import MAX_SEED, SEED_WHY, whole_number
from qbdi_utils.corpus_key import KEY_MODES
from qbdi_utils.errors import OptionError
from qbdi_utils.improvise import DECODE_MODES, STATS_MODES, check_stats_mode, parse_bits
from qbdi_utils.navigate import DEFAULT_CONTINUITY, check_continuity

__all__ = [
    "MAX_BITS", "add_bits", "add_continuity", "add_decode", "add_force", "add_key", "add_model", "add_query",
    "add_quiet", "add_seed", "add_stats", "bits_option", "key_option", "stats_option",
]


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


def key_option(value: str) -> str:
    """``--key``: one of :data:`qbdi_utils.corpus_key.KEY_MODES` ("corpus" or "query").

    Raises:
        OptionError: another word.
    """
    text = str(value).strip().lower()
    if text not in KEY_MODES:
        raise OptionError(f"--key {value!r} is not one of {', '.join(KEY_MODES)} (corpus: hear the query in the "
                          "key the model's corpus was moved to; query: as it is)")
    return text


def add_model(parser, *, required: bool = False, help: str | None = None) -> None:
    """``--model MODEL_DIR``: a saved StyleVAE (optional: the default model)."""
    parser.add_argument("--model", required=required, default=None, metavar="MODEL_DIR",
                        help=help or "directory of a saved StyleVAE (default: the notebooks' default model, "
                        "models/default, trained on the chorales on first use)")


def add_query(parser) -> None:
    """``--query FILE.mid`` (required)."""
    parser.add_argument("--query", required=True, metavar="FILE.mid", help="query MIDI file")


def add_key(parser) -> None:
    """``--key {corpus|query}``: the key the query is heard in (:mod:`qbdi_utils.corpus_key`; default corpus)."""
    parser.add_argument("--key", type=key_option, default="corpus", metavar="{" + "|".join(KEY_MODES) + "}",
                        help="'corpus' (default): move the query to the key the model's training corpus was "
                        "normalised to (tonic C for the chorales), improvise there and write the outputs back "
                        "in the query's key (the fidelity line and claims are measured in the corpus's key); "
                        "'query': use the query in its own key")


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


def add_decode(parser) -> None:
    """``--decode MODE``: how decoder probabilities become notes (:data:`qbdi_utils.improvise.DECODE_MODES`)."""
    parser.add_argument("--decode", choices=DECODE_MODES, default="paper",
                        help="'paper': one threshold (default; the paper's decoding); 'floor': every bar keeps "
                        "at least the corpus's typical onsets; 'typical': floor, and at 0 bits a typical bar "
                        "of the corpus instead of the decoder's blur (floor and typical need the model's corpus); "
                        "'sustain': the paper's threshold for onsets, notes held on down to the continuation "
                        "threshold the model file records (an option, not the paper's)")


def add_quiet(parser) -> None:
    """``--quiet``: print no warnings (errors and results are still printed)."""
    parser.add_argument("--quiet", action="store_true",
                        help="print no warnings (each warning is otherwise printed once per run)")


