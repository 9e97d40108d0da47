"""What the ``qbdi`` command tells its user besides its results: warnings, once per run, in command-line terms.

- :func:`warn` prints ``qbdi COMMAND: warning: ...`` on stderr, each distinct sentence once per run,
  and nothing under ``--quiet`` (:func:`start_run` sets both up; :func:`qbdi_utils.cli.main` calls it).
- Python warnings raised by the library during a command (corpus cache, synthesis fallback, ...) are
  routed through :func:`warn` too, so they read the same way and ``--quiet`` silences them as well.
- :func:`cli_terms` turns the library's Python advice in a message ("pass meter=None", "(force=True)")
  into the command line's ("--meter any", "--force"); every error and warning line passes through it.
- :func:`silence_warning`: an output that is silent or nearly so is said to be, with its cause and the
  alternative.

Imports: nothing of the package. Used in: every ``qbdi_utils/cli/*.py`` that prints a warning, cli/__init__.py.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterable, Mapping

__all__ = ["NEARLY_SILENT_SHARE", "cli_terms", "silence_warning", "start_run", "warn"]

NEARLY_SILENT_SHARE = 0.25
"""An output is "nearly silent" below this share of the corpus's mean onsets (notes starting) per bar."""

# The library's advice for Python callers, and what a user of the command line types instead.
_LIBRARY_TO_CLI = (
    ("(pass meter=None to accept any meter)", "(`qbdi train --meter any` accepts any meter)"),
    ("pass --force (force=True) to overwrite it", "pass --force to overwrite it"),
    ("--force (force=True)", "--force"),
    ("force=True", "--force"),
)

_run = {"command": "", "quiet": False, "seen": set()}


def cli_terms(text: str) -> str:
    """``text`` with the library's keyword-argument advice replaced by the matching command-line option.

    Args:
        text: an error or warning message from the library.

    Returns:
        The message as a command-line user should read it.
    """
    for library, cli in _LIBRARY_TO_CLI:
        text = text.replace(library, cli)
    return text


def start_run(command: str, quiet: bool) -> None:
    """Begin one command's run: forget the warnings already printed, remember ``--quiet``, and route
    Python warnings raised during the run through :func:`warn`.

    Args:
        command: the sub-command ("improvise").
        quiet: ``--quiet`` was given.
    """
    _run.update(command=command, quiet=bool(quiet), seen=set())

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001 (warnings' signature)
        warn(command, [str(message)])

    warnings.showwarning = show


def warn(command: str, lines: Iterable[str]) -> None:
    """Print each of ``lines`` as ``qbdi COMMAND: warning: ...`` on stderr: once per run, never under --quiet.

    Args:
        command: the sub-command.
        lines: sentences (library text is passed through :func:`cli_terms`).
    """
    for w in lines:
        text = cli_terms(str(w))
        if _run["quiet"] or text in _run["seen"]:
            continue
        _run["seen"].add(text)
        print(f"qbdi {command}: warning: {text}", file=sys.stderr)


def silence_warning(fidelity: Mapping, bits, stats: str, threshold: float | None = None) -> str | None:
    """The warning for an output that is silent or nearly so, else None.

    "Nearly silent": fewer onsets per bar than :data:`NEARLY_SILENT_SHARE` of the corpus's mean
    (``corpus_onsets_per_bar``; when the corpus is unknown only a silent output is flagged).

    Args:
        fidelity: a :func:`qbdi_utils.style.fidelity` dict of the output (``onsets_per_bar``,
            ``corpus_onsets_per_bar``, ``empty_bar_rate``).
        bits: the budget (None: full rate).
        stats: the ``--stats`` mode used.
        threshold: ``--threshold`` when the user gave one (None: the model's own).

    Returns:
        One sentence naming what happened, why, and what to try instead; or None.
    """
    got, corpus = float(fidelity["onsets_per_bar"]), float(fidelity["corpus_onsets_per_bar"])
    silent = not got > 0
    if not silent and not (math.isfinite(corpus) and got < NEARLY_SILENT_SHARE * corpus):
        return None
    what = ("the output has no notes" if silent else
            f"the output is nearly silent: {got:.1f} notes start per bar against the corpus's {corpus:.1f} "
            f"(below {NEARLY_SILENT_SHARE:.0%}), {float(fidelity['empty_bar_rate']):.0%} of its bars empty")
    if threshold is not None:
        why = (f"few of the decoder's note probabilities reach --threshold {threshold:g}; try a lower "
               "--threshold, or leave it out for the model's own")
    elif bits is not None and stats != "corpus":
        sent = "nothing" if bits == 0 else "little"
        why = (f"at {bits} bits the channel sends {sent} of each bar, so the decoder gets the --stats {stats} "
               "statistics in its place and is too unsure of any note to pass the threshold; try --stats "
               "corpus (the corpus's statistics in their place) or more --bits")
    elif bits is not None:
        why = "at this budget the decoder is too unsure of any note to pass the threshold; try more --bits"
    else:
        why = ("the model decodes this query with few notes above its threshold (a query far from the corpus, "
               "or a model trained too briefly); try a model trained longer")
    return f"{what}; {why}"
