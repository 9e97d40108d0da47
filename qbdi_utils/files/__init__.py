"""How the package writes anything a user keeps: atomic files, output sets, model folders.

The discipline (issue 11):

* **Atomic files.** Data goes to a hidden temporary name in the destination folder
  (``.NAME.qbdi-tmp-PID-N[.ext]``), is flushed and fsync'ed, and only then renamed into place, so a
  reader sees the old file or the whole new one, never a partial one. A NAME so long (up to the
  255-byte NAME_MAX) that the hidden name would not fit is replaced there by a hash of it
  (``.qbdi-long-HASH.qbdi-tmp-PID-N[.ext]``); a folder backup under such a name whose destination
  is gone is kept rather than restored, since its name cannot be recovered.
* **Exclusive creation without force.** When overwriting is not allowed the finished temporary is
  hard-linked to the destination (``os.link`` fails if the destination exists, atomically), then
  unlinked. Of two racing writers exactly one wins; the other gets
  :class:`~qbdi_utils.errors.OutputExistsError`. Where the file system has no hard links, the
  fallback claims the name with ``O_CREAT | O_EXCL`` (an empty placeholder, after leaving a hidden
  ``.NAME.qbdi-claim-PID-N`` marker) and renames the temporary over it; a run killed between the two
  steps leaves an empty placeholder and its marker, and :func:`clean_leftovers` removes both.
* **Output sets.** :class:`OutputSet` stages several files and commits them together: all appear or
  none does (on an exception the temporaries, the members already moved into place and the folders
  the set created are removed; files that were overwritten are put back).
* **Model folders.** :func:`replacing_dir` stages the complete new folder beside the destination
  (``.NAME.qbdi-new-PID-N``) and swaps it in with two renames: destination -> hidden backup
  (``.NAME.qbdi-old-PID-N``), staged -> destination, then the backup is deleted. The one window
  POSIX cannot close is between the two renames, when the destination name is briefly absent; a run
  killed exactly there leaves the complete old folder as the backup, and the next run's
  :func:`clean_leftovers` renames it back. A leftover backup whose destination exists (the swap was
  done, the deletion was not) is deleted.
* **Leftovers** of a killed run are hidden names carrying the writer's process id; they are removed
  (or, for a backup, restored) by :func:`clean_leftovers` once that process is gone (or the leftover
  is older than :data:`STALE_AFTER_S`), which every writer here calls once per folder per process.
* **Errors.** An :class:`OSError` becomes :class:`~qbdi_utils.errors.FileSystemError`, one line naming
  the path and the cause in words (:func:`fs_error`). :func:`check_writable` checks a destination up
  front.

The file-size limit (``ulimit -f``): exceeding it sends SIGXFSZ, whose default action kills the
process before Python sees the error. CPython ignores SIGXFSZ at start-up, so a plain ``python`` /
``qbdi`` process gets ``OSError(EFBIG)``; :func:`ignore_sigxfsz` (called again by the ``qbdi`` command)
keeps it so when an embedding interpreter or a library restored the default. The EFBIG then becomes
a FileSystemError like any other.

Leftover detection uses process ids, so it is exact on one machine; on a folder shared by several
machines a leftover of a live writer elsewhere is only removed after :data:`STALE_AFTER_S`.

The package: :mod:`~qbdi_utils.files.names` (hidden names, leftovers recognised),
:mod:`~qbdi_utils.files.faults` (errors in words, up-front checks, SIGXFSZ),
:mod:`~qbdi_utils.files.leftovers` (cleaning them), :mod:`~qbdi_utils.files.atomic` (one file),
:mod:`~qbdi_utils.files.sets` (output sets, folder swaps); this ``__init__`` is the documented home of
the names below (``from qbdi_utils import files``; ``files.write_bytes(...)``).

Imports: its submodules.
Used in: every module that writes what a user keeps.
"""

from qbdi_utils.files.atomic import write_bytes, write_csv, write_text, write_with
from qbdi_utils.files.faults import (EXISTS_HINT, cause_in_words, check_dir_output, check_outputs, check_writable,
                                     fs_error, ignore_sigxfsz)
from qbdi_utils.files.leftovers import STALE_AFTER_S, clean_leftovers
from qbdi_utils.files.names import LONG_NAME_PREFIX, NAME_MAX, hidden_name, is_leftover
from qbdi_utils.files.sets import OutputSet, replacing_dir

__all__ = [
    "STALE_AFTER_S",
    "EXISTS_HINT",
    "hidden_name",
    "NAME_MAX",
    "LONG_NAME_PREFIX",
    "is_leftover",
    "fs_error",
    "cause_in_words",
    "check_writable",
    "check_outputs",
    "check_dir_output",
    "write_bytes",
    "write_text",
    "write_with",
    "write_csv",
    "OutputSet",
    "replacing_dir",
    "clean_leftovers",
    "ignore_sigxfsz",
]
