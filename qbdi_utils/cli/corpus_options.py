"""The corpus and the model's layout on the command line: ``--corpus``, ``--meter``, ``--steps-per-quarter``.

Each option is defined once here with its typed converter (:func:`meter_option`, the grid's); the
corpus loader and :class:`qbdi_utils.pianoroll.RollSpec` stay the one source of what is valid.

Imports: corpus, errors, pianoroll.
Used in: cli/train.py, cli/evaluate.py, cli/sweep.py, cli/frames.py, cli/outputs.py.
"""

from __future__ import annotations

from qbdi_utils.corpus import NAMED_SOURCES
from qbdi_utils.errors import OptionError
from qbdi_utils.pianoroll import RollSpec

__all__ = ["ANY_METER", "CORPUS_METAVAR", "GRID_STEPS", "add_corpus", "add_grid", "add_meter", "grid_spec",
           "meter_option", "parse_meter"]

ANY_METER = "any"
"""``--meter any``: keep pieces in every meter (each bar its own frame: :func:`qbdi_utils.pianoroll.bar_layout`)."""

CORPUS_METAVAR = "{" + "|".join(NAMED_SOURCES) + "|PATH}"


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
