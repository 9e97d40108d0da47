"""The hidden names the atomic writers use beside a destination, and how a leftover is recognised.

``.NAME.qbdi-KIND-PID-N[.ext]`` (KIND: tmp, new, old, claim); a NAME too long for the tail is stood
for by a hash (``.qbdi-long-HASH...``). See :mod:`qbdi_utils.files` for the discipline.

Imports: nothing of the package.
Used in: the other modules of :mod:`qbdi_utils.files`; tests/test_files.py, tests/test_hostile.py.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from pathlib import Path

__all__ = [
    "NAME_MAX",
    "LONG_NAME_PREFIX",
    "LEFTOVER_NAME",
    "hidden_name",
    "is_leftover",
    "leftover_destination",
]

NAME_MAX = 255
"""Longest file name in bytes (Linux, macOS); a hidden name that would be longer embeds a hash."""
LONG_NAME_PREFIX = "qbdi-long-"
"""Hidden names of destinations longer than NAME_MAX allows start ``.qbdi-long-HASH``."""

LEFTOVER_NAME = re.compile(r"^\.(?P<name>.+)\.qbdi-(?P<kind>tmp|new|old|claim)-(?P<pid>\d+)-(?P<n>\d+)"
                           r"(?P<ext>\.[^.]*)?$")
"""The hidden names of :func:`hidden_name` (groups: name, kind, pid, n, ext)."""
_counter = itertools.count()


def hidden_name(path: str | Path, kind: str = "tmp") -> Path:
    """A fresh hidden sibling of ``path``: ``.NAME.qbdi-KIND-PID-N`` (+ NAME's suffix for ``tmp``).

    Args:
        path: the destination.
        kind: ``tmp`` (a file being written), ``new`` (a folder being staged), ``old`` (a folder
            being replaced) or ``claim`` (marker of the no-hard-link fallback).

    Returns:
        The sibling path (not created). The suffix is kept for ``tmp`` so that libraries that pick a
        format from the extension (matplotlib, numpy's .npz) write the right thing.
    """
    path = Path(path)
    ext = path.suffix if kind == "tmp" else ""
    tail = f".qbdi-{kind}-{os.getpid()}-{next(_counter)}{ext}"
    name = f".{path.name}{tail}"
    if len(os.fsencode(name)) > NAME_MAX:
        # a legal long name (up to NAME_MAX bytes) has no room for the tail: stand for it by a hash
        name = f".{LONG_NAME_PREFIX}{_name_hash(path.name)}{tail}"
    return path.with_name(name)


def _name_hash(name: str) -> str:
    """16 hex digits standing for a file name too long to be embedded in a hidden name."""
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:16]


def leftover_destination(folder: Path, embedded: str, names: list[str]) -> Path | None:
    """The destination a leftover stands for: ``embedded`` itself, or for a long name's hash the
    entry of ``names`` with that hash (None when no such entry exists any more)."""
    if not embedded.startswith(LONG_NAME_PREFIX):
        return folder / embedded
    digest = embedded[len(LONG_NAME_PREFIX):]
    for n in names:
        if not n.startswith(".") and _name_hash(n) == digest:
            return folder / n
    return None


def is_leftover(path: str | Path) -> bool:
    """Whether ``path``'s name is one of the hidden names :func:`hidden_name` makes."""
    return LEFTOVER_NAME.match(Path(path).name) is not None
