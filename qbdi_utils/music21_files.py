"""The corpora that ship inside music21, found without importing music21 (its import takes a second or more).

:func:`chorale_paths` lists the Bach chorale scores and :func:`essen_path` / :func:`essen_tunes`
the Essen folk songs of :data:`ESSEN_FILE`; :func:`music21_version` names the installed music21
(part of a corpus's identity). Parsing them is :mod:`qbdi_utils.corpus`'s business.

Imports: errors. Used in: :mod:`qbdi_utils.corpus`, :mod:`qbdi_utils.training.cache`, tests.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from qbdi_utils.errors import CorpusError

__all__ = ["ESSEN_FILE", "ESSEN_PIECES", "chorale_paths", "essen_path", "essen_tunes", "music21_dir",
           "music21_version"]

#: The second embedded corpus ("essen"): German folk songs from Ludwig Erk's collection in music21's
#: Essen folk song database (ABC encodings by Seymour Schlien; licence: non-commercial use, see
#: music21/corpus/essenFolksong/license.txt). Unaccompanied melodies, 4-16 bars each: another style
#: than the chorales (one voice, not four) at the paper's scale. The file holds 663 songs, 195 of
#: them in 4/4 throughout (every ``M:`` field says 4/4); the corpus is the first
#: :data:`ESSEN_PIECES` of those, in file order.
ESSEN_FILE = "erk10.abc"
ESSEN_PIECES = 128


def music21_dir() -> Path:
    """music21's package folder, found without importing music21 (its import takes a second or more)."""
    import importlib.util

    spec = importlib.util.find_spec("music21")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError("music21 is not installed; `pip install music21` to use its corpora", "music21")
    return Path(list(spec.submodule_search_locations)[0])


def music21_version() -> str:
    """The installed music21's version (from its distribution, without importing it)."""
    from importlib import metadata

    return metadata.version("music21")


def chorale_paths() -> list[Path]:
    """The Bach chorale score files shipped with music21 (MusicXML only; no download).

    The files music21's ``corpus.getComposer("bach")`` lists (a path component, or a file name
    without its extension, is "bach"), found without importing music21, so that checking a cached
    corpus or the default model does not pay for music21's import.
    """
    def is_bach(part: str) -> bool:
        return part.lower() == "bach" or ("." in part and part.rsplit(".", 1)[0].lower() == "bach")

    files = []
    for folder, _, names in os.walk(music21_dir() / "corpus"):  # os.walk: a third of rglob's time
        in_bach = any(is_bach(part) for part in Path(folder).parts)
        files += [Path(folder, n) for n in names if os.path.splitext(n)[1] in (".mxl", ".xml")
                  and not n.startswith(("__", ".")) and (in_bach or is_bach(n))]
    return sorted(sorted(files), key=lambda p: p.name)


def essen_path() -> Path:
    """music21's copy of :data:`ESSEN_FILE` (no download)."""
    return music21_dir() / "corpus" / "essenFolksong" / ESSEN_FILE


def essen_tunes(path: str | Path | None = None) -> list[tuple[int, str]]:
    """The songs of an Essen ABC file that are in 4/4 throughout, as (number, ABC text), in file order.

    Args:
        path: the ABC file (default :func:`essen_path`).

    Returns:
        [(the song's ``X:`` number, its ABC text), ...] for every song whose ``M:`` fields (at least
        one) all read 4/4.
    """
    text = Path(path or essen_path()).read_text(encoding="latin-1")
    out = []
    for tune in re.split(r"\n(?=X:)", text):
        m = re.match(r"X:\s*(\d+)", tune)
        meters = set(re.findall(r"^M:\s*(\S+)", tune, re.M))
        if m and meters == {"4/4"}:
            out.append((int(m.group(1)), tune))
    return out
