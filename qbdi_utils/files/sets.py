"""Outputs committed together: :class:`OutputSet` (several files, all or none) and
:func:`replacing_dir` (a whole folder staged beside its destination and swapped in).

Imports: errors, tables (csv_text), files.names, files.faults, files.leftovers, files.atomic.
Used in: through :mod:`qbdi_utils.files`: model.persist (model folders), render.notation, cli (improvise,
navigate, analyze, sweep, live).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Iterator

from qbdi_utils.errors import FileSystemError, OutputExistsError
from qbdi_utils.files import atomic
from qbdi_utils.files.atomic import bytes_writer, fsync_dir, link_exclusive, make_parents, remove_empty, stage_file
from qbdi_utils.files.faults import EXISTS_HINT, NO_LINK_ERRNOS, fs_error, translated_errors
from qbdi_utils.files.leftovers import clean_leftovers, clean_once, remove_path
from qbdi_utils.files.names import hidden_name
from qbdi_utils.tables import csv_text

__all__ = [
    "OutputSet",
    "replacing_dir",
]

class OutputSet:
    """Several output files that appear all together or not at all.

    Use as a context manager; members are staged as hidden temporaries while the block runs and
    moved into place when it ends without an exception::

        with OutputSet(force=args.force) as outs:
            outs.add_bytes(mid_path, midi_bytes)
            outs.add_with(wav_path, lambda tmp: wavfile.write(tmp, sr, audio))
        # here both exist, or (after an exception) neither was created or changed

    Without ``force``, creation is exclusive: if any member exists at commit time (checked at
    ``add_*`` already, and atomically again at commit), the set is rolled back and
    OutputExistsError raised. With ``force``, replaced files are kept as hidden backups until the
    whole set is in place and restored if it fails. A run killed *during the commit* (a few
    renames) can leave the members moved so far, each of them complete.

    Raises (from ``add_*`` and commit): OutputExistsError, FileSystemError.

    Used in: ``qbdi analyze`` (the two CSVs and two plots).
    """

    def __init__(self, *, force: bool = False, mkdir: bool = True):
        """Args: force: replace existing files; mkdir: create missing folders (removed on rollback)."""
        self.force = force
        self.mkdir = mkdir
        self._staged: list[tuple[Path, Path]] = []   # (tmp, dest)
        self._created_dirs: list[Path] = []
        self._done = False

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
        return False

    @property
    def paths(self) -> list[Path]:
        """The destinations added so far."""
        return [d for _, d in self._staged]

    def add_with(self, path: str | Path, write: Callable[[Path], object]) -> Path:
        """Stage ``path`` written by ``write(tmp_path)`` (see :func:`write_with`); returns ``path``.

        Raises:
            OutputExistsError: the path exists and the set is not forced.
            FileSystemError: the temporary file cannot be written.
        """
        path = Path(path)
        if path in self.paths:
            raise ValueError(f"{path} is already in this output set")
        if path.is_dir():
            self.discard()
            raise FileSystemError("cannot write: is a folder, not a file", path)
        if not self.force and os.path.lexists(path):
            self.discard()
            raise OutputExistsError(EXISTS_HINT, path)
        try:
            if self.mkdir:
                make_parents(path.parent, self._created_dirs)
            clean_once(path.parent)
            self._staged.append((stage_file(path, write), path))
        except BaseException:
            self.discard()
            raise
        return path

    def add_bytes(self, path: str | Path, data: bytes) -> Path:
        """Stage ``data`` as ``path``."""
        return self.add_with(path, bytes_writer(bytes(data)))

    def add_text(self, path: str | Path, text: str, encoding: str = "utf-8") -> Path:
        """Stage ``text`` as ``path``."""
        return self.add_bytes(path, text.encode(encoding))

    def add_csv(self, path: str | Path, rows: Iterable, *, columns: list[str] | None = None,
                float_format: str | None = None) -> Path:
        """Stage a CSV table (:func:`qbdi_utils.tables.csv_text`) as ``path``."""
        return self.add_text(path, csv_text(rows, columns, float_format=float_format))

    def commit(self) -> list[Path]:
        """Move every staged member into place, or none; returns the destinations.

        Raises:
            OutputExistsError: a member exists and the set is not forced (nothing is left behind).
            FileSystemError: a file-system fault while moving members into place (the set is rolled back).
        """
        if self._done:
            return self.paths
        atomic.stage_hook("staged-all")
        placed: list[Path] = []                 # created (no force) or replaced (force)
        backups: list[tuple[Path, Path]] = []   # (backup, dest) of replaced files
        current = None
        try:
            for tmp, dest in self._staged:
                current = dest
                if self.force:
                    if os.path.isdir(dest) and not os.path.islink(dest):
                        raise FileSystemError("cannot write: is a folder, not a file", dest)
                    if os.path.lexists(dest):
                        b = hidden_name(dest)
                        try:
                            os.link(dest, b, follow_symlinks=False)
                        except OSError as exc:
                            if exc.errno not in NO_LINK_ERRNOS:
                                raise
                            shutil.copy2(dest, b, follow_symlinks=False)
                        backups.append((b, dest))
                    os.replace(tmp, dest)
                else:
                    link_exclusive(tmp, dest)
                placed.append(dest)
                atomic.stage_hook("committed-one")
        except BaseException as exc:
            restored = {d for _, d in backups}
            for dest in placed:
                if dest not in restored:
                    with contextlib.suppress(OSError):
                        os.unlink(dest)
            for b, dest in backups:
                with contextlib.suppress(OSError):
                    if os.path.samefile(b, dest):  # not replaced yet; rename() of a link onto itself is a no-op
                        os.unlink(b)
                    else:
                        os.replace(b, dest)
            self.discard()
            if isinstance(exc, FileExistsError):
                raise OutputExistsError(EXISTS_HINT, current) from None
            if isinstance(exc, OSError):
                raise fs_error(exc, current) from None
            raise
        for b, _ in backups:
            with contextlib.suppress(OSError):
                os.unlink(b)
        for d in dict.fromkeys(d.parent for d in placed):
            fsync_dir(d)
        self._done = True
        return placed

    def discard(self) -> None:
        """Remove the staged temporaries and the folders this set created (if empty)."""
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._staged = []
        remove_empty(self._created_dirs)
        self._created_dirs = []
        self._done = True


@contextlib.contextmanager
def replacing_dir(dest: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Stage a whole folder beside ``dest`` and swap it in at the end, so ``dest`` is always whole.

    Yields an empty hidden staging folder (``.NAME.qbdi-new-PID-N``); write every file of the new
    folder there. When the block ends without an exception the folder is fsync'ed and swapped in:
    without force by one rename (fails if ``dest`` meanwhile exists and is not empty); with force by
    ``dest`` -> ``.NAME.qbdi-old-PID-N``, staging -> ``dest``, then deleting the backup. On an
    exception (or a failed swap) the staging folder is removed and ``dest`` is unchanged. The only
    window in which ``dest`` is absent is between the two renames; a run killed there is repaired
    by :func:`clean_leftovers` (the backup is renamed back), which this function also runs first.

    Args:
        dest: the folder to create or replace.
        force: replace an existing folder.

    Yields:
        The staging folder (a Path).

    Raises:
        OutputExistsError: ``dest`` exists (not as an empty folder) and ``force`` is false.
        FileSystemError: a file-system fault, or ``dest`` is a file.
    """
    dest = Path(dest)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise FileSystemError("cannot write: is a file, not a folder", dest)
    created: list[Path] = []
    make_parents(dest.parent, created)
    try:
        clean_leftovers(dest.parent)
        if not force and os.path.isdir(dest) and any(os.scandir(dest)):
            raise OutputExistsError(EXISTS_HINT, dest)
        stage = hidden_name(dest, "new")
        with translated_errors(dest):
            os.mkdir(stage)
    except BaseException:
        remove_empty(created)
        raise
    try:
        yield stage
        atomic.stage_hook("dir-staged")
        with translated_errors(dest):
            for root, _, files in os.walk(stage):
                for f in files:
                    fd = os.open(os.path.join(root, f), os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                fsync_dir(Path(root))
        _swap_in(stage, dest, force)
    except BaseException:
        remove_path(stage)
        remove_empty(created)
        raise
    fsync_dir(dest.parent)


def _swap_in(stage: Path, dest: Path, force: bool) -> None:
    try:
        if not force or not os.path.lexists(dest):
            os.rename(stage, dest)   # onto nothing or an empty folder; a non-empty one fails
            return
        backup = hidden_name(dest, "old")
        os.rename(dest, backup)
        atomic.stage_hook("dir-swapped-out")
        try:
            os.rename(stage, dest)
        except BaseException:
            os.rename(backup, dest)
            raise
        atomic.stage_hook("dir-swapped-in")
        remove_path(backup)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise OutputExistsError(EXISTS_HINT, dest) from None
        if exc.errno == errno.ENOTDIR:
            raise FileSystemError("cannot write: is a file, not a folder", dest) from None
        raise fs_error(exc, dest) from None
