"""Progress bars with the package's policy for logs (tqdm; a few lines, not one per step, off a terminal).

Used by the training loop (``training.epochs``) and anything else that shows a bar.
"""

from __future__ import annotations

import sys

__all__ = ["NON_TTY_MININTERVAL_S", "progress_kwargs", "progress"]

NON_TTY_MININTERVAL_S = 30.0
"""Progress bars not on a terminal redraw at most this often (seconds)."""

def _interactive(stream) -> bool:
    """A terminal, or a Jupyter kernel's output (which draws widgets, not log lines)."""
    if type(stream).__module__.startswith("ipykernel"):
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_kwargs(file=None, **kw) -> dict:
    """tqdm keyword arguments with the package's policy for logs.

    On a terminal (or in Jupyter) ``kw`` is returned unchanged. Otherwise (a file, a pipe, a CI
    log) the bar redraws at most every :data:`NON_TTY_MININTERVAL_S` seconds, so a log gets a few
    lines, not one per step.

    Args:
        file: the stream the bar writes to (default ``sys.stderr``).
        **kw: the caller's tqdm arguments.

    Returns:
        The arguments to pass to ``tqdm``.
    """
    stream = file if file is not None else sys.stderr
    kw = dict(kw)
    if file is not None:
        kw["file"] = file
    if not _interactive(stream):
        kw["mininterval"] = max(float(kw.get("mininterval", 0.1)), NON_TTY_MININTERVAL_S)
        kw["maxinterval"] = max(float(kw.get("maxinterval", 10.0)), kw["mininterval"])
        kw["miniters"] = 1  # time-based only (no dynamic miniters)
        kw.setdefault("ascii", True)
        kw.setdefault("dynamic_ncols", False)
    return kw


def progress(iterable=None, **kw):
    """A ``tqdm.auto.tqdm`` bar following :func:`progress_kwargs` (same arguments as tqdm)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, **progress_kwargs(**kw))
