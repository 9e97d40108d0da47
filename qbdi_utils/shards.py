"""The sharded, incremental corpus store: parallel parsing, pieces shards, frame shards (issue 15).

:func:`qbdi_utils.corpus.load_corpus` reads every corpus through here. This module knows nothing
about MIDI or music21: the corpus module hands it the source's files and two functions, one that
parses a file into a :class:`~qbdi_utils.pianoroll.Piece` (or a skip reason) and one that turns a
piece into frames for the transposition options. Both are top-level functions of
:mod:`qbdi_utils.corpus`, so worker processes can import them.

The store
---------
One folder per source, ``<cache root>/shards-<kind>-<16 hex>`` (cache root: ``paths.cache_dir()``
unless given), keyed by what the source is -- the resolved folder (or ``chorales`` with music21's
version), the roll spec and the meter -- and never by its file list. Inside:

* ``pieces-<16 hex>.npz`` -- a **pieces shard**: the parsed, untransposed rolls of one batch of
  files. Keys: ``rolls`` = ``np.packbits(rolls, axis=1)`` of the kept files' rolls stacked in
  file order, ``n_columns`` (int, columns before packing) and ``meta`` (a JSON string: for each
  file its ``key`` -- relative path, or file name for the chorales --, ``size``, ``mtime_ns``,
  ``name`` and either ``piece`` -- the :class:`Piece` fields: n_steps, bar_offset_steps, dropped,
  tempo_map, time_signatures, ticks_per_beat -- or ``skipped``, the reason).
* ``index.json`` -- the manifest: the complete pieces shards and, for each, its files as
  ``[key, size, mtime_ns, skip reason or null]``. A file whose (key, size, mtime_ns) is listed is
  never parsed again. A shard none of whose files is still current (all vanished or changed) is
  dropped and deleted.
* ``frames-<options 16 hex>-<16 hex>.npz`` -- a **frame shard**: the frames of one pieces shard's
  current files for one set of options (transposition, augmentation). Keys: ``frames`` =
  ``np.packbits(frames, axis=1)`` (uint8, (n, ceil(D / 8))), ``n_columns`` (D, the frame size),
  ``piece_index`` ((n,) int32 GLOBAL piece ids, see below) and ``meta`` (JSON: the pieces it
  holds, with their ids). Unpack with ``np.unpackbits(frames, axis=1, count=n_columns)``.
* ``frames-<options 16 hex>.json`` -- the frame manifest of one set of options.

Every file is written atomically (:func:`qbdi_utils.files.write_with`). A manifest is rewritten
after each shard completes (when manifests grow large, at most as often as keeps the rewriting
below about a fifth of the time; shards written since the last rewrite are not lost: a complete
shard file that the manifest does not list is adopted by the next load, after reading its meta).
A shard that cannot be written (disk full, read-only folder) is never listed and leaves no file;
its data is kept in memory for this load, and one warning says how many shards were not written.
An ingest killed half-way resumes: finished shards are not parsed again. A lock file
(``lock``, ``fcntl.flock``) serialises loads of the same store on one machine.

Order and ids
-------------
Global piece order is the source's order of the current files (sorted relative paths; for the
chorales :func:`qbdi_utils.music21_files.chorale_paths`), skipped files taking no id, each kept file's
augmented copies right after it. Frame shards are listed by their first piece id. A store grown
by adding files may interleave (a new file sorting between old ones lives in a new shard): the
shard order then differs from piece order. The in-memory corpus is always in piece order;
:meth:`ShardedCorpus.frames_fingerprint` hashes in piece order, reading shards as the order needs
them and keeping a shard (packed) only until its last row is hashed -- one shard at a time when the
orders agree. A file inserted between old ones shifts later ids: frame shards whose ids changed
are rebuilt from their pieces shards (no parsing).

Parallel parsing
----------------
``workers`` processes (default: the cores this process may use) of a
:class:`concurrent.futures.ProcessPoolExecutor` started with ``forkserver`` (never ``fork``: the
parent may hold TensorFlow's threads), whose server preloads this package; each worker parses a
batch of files and writes its shard itself, returning only the file list. With one worker or fewer
than two shards' worth of new files the parse runs in the calling process. The forkserver is
process-wide: this module sets its preload list once (to ``qbdi_utils.corpus``). As with any
non-fork pool, each worker imports the caller's main script again: a script that loads with
``workers > 1`` should keep its top level under ``if __name__ == "__main__":`` (notebooks and
``python -c`` need nothing). Without the guard, a worker that reaches the load while re-running the
script exits at once instead of waiting on the store's lock, which the parent holds (that was a
deadlock); the parent then parses in-process. Should workers die for any reason (that mistake, a
crash, memory) or not start at all (a process limit, no shared memory), the rest is parsed in the
calling process, with a warning. While a batch is parsed, wherever it runs, the
cyclic garbage collector runs less often (:data:`qbdi_utils.shard_workers.PARSE_GC_THRESHOLD`), then as
before. The jobs and the pool are :mod:`qbdi_utils.shard_workers`; this module holds the store's layout,
its manifests and the build (:func:`build`, configured by :class:`SourceRecipe` and
:class:`StoreSettings`); the streaming view of a built store is :mod:`qbdi_utils.shards_view`.

Imports: files, paths, progress, errors, pianoroll, shard_workers, shards_view.
Used in: :mod:`qbdi_utils.corpus`, ``qbdi train`` (``default_workers``), tests/test_shards.py.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from qbdi_utils import files as files_mod
from qbdi_utils import paths
from qbdi_utils import progress as progress_bars
from qbdi_utils.errors import CorpusError, OptionError, QbdiError
from qbdi_utils.pianoroll import RollSpec
from qbdi_utils.shard_workers import STORE_VERSION, Runner, frames_job, parse_job, read_meta
from qbdi_utils.shards_view import ShardedCorpus

__all__ = [
    "DEFAULT_SHARD_FILES", "MANIFEST", "SourceFile", "SourceRecipe", "StoreSettings",
    "default_workers", "store_dir", "build", "forget_frames",
]

#: Files per pieces shard (fewer when that gives the workers too few shards to share).
DEFAULT_SHARD_FILES = 256

#: The manifest of the pieces shards.
MANIFEST = "index.json"

_PIECES_RE = re.compile(r"^pieces-[0-9a-f]{16}\.npz$")


@dataclass(frozen=True)
class SourceFile:
    """One file of a corpus source, as the store keys it.

    Attributes:
        key: relative path below the source folder (the file name for the chorales); unique.
        path: where to read it.
        name: the piece name it gets.
        size: bytes.
        mtime_ns: modification time in nanoseconds.
    """

    key: str
    path: str
    name: str
    size: int
    mtime_ns: int

    @property
    def ident(self) -> tuple:
        """(key, size, mtime_ns): what a listed shard must match for the file not to be parsed."""
        return (self.key, int(self.size), int(self.mtime_ns))


def default_workers() -> int:
    """The cores this process may run on (``len(os.sched_getaffinity(0))``, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def store_dir(kind: str, identity: str, spec: RollSpec, meter: str | None,
              cache_root: str | Path | None = None) -> Path:
    """The store folder of a source: ``<cache_root>/shards-<kind>-<16 hex>``.

    Args:
        kind: "folder" or "chorales".
        identity: what the source is (the resolved folder; "chorales-<music21 version>"), not
            its file list.
        spec: roll layout.
        meter: the meter filter the pieces were parsed with ("4/4" or None).
        cache_root: parent folder (default ``paths.cache_dir()``).

    Returns:
        The folder's path (not created).
    """
    root = Path(cache_root) if cache_root is not None else paths.cache_dir()
    key = _digest({"v": STORE_VERSION, "kind": kind, "source": identity, "spec": spec.to_dict(),
                   "meter": meter})
    return root / f"shards-{kind}-{key}"


# ---------------------------------------------------------------------------------------------
# manifests

class _Manifest:
    """A JSON manifest rewritten atomically, throttled when it grows large (see module docstring)."""

    def __init__(self, path: Path | None, head: dict, errors: list):
        self.path, self.head, self.errors = path, head, errors
        self.shards: dict = {}
        self._cost = 0.0
        self._last = 0.0
        self._dirty = False

    def load(self) -> None:
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return  # missing or damaged: start empty (shard files are adopted again)
        if isinstance(data, dict) and all(data.get(k) == v for k, v in self.head.items()):
            self.shards = dict(data.get("shards") or {})

    def save(self, force: bool = False) -> None:
        if self.path is None:
            return
        self._dirty = True
        now = time.perf_counter()
        if not force and now - self._last < 5 * self._cost:
            return
        t0 = time.perf_counter()
        text = json.dumps(dict(self.head, shards=self.shards), separators=(",", ":"))
        try:
            files_mod.write_text(self.path, text, force=True)
        except QbdiError as exc:
            self.errors.append(str(exc))
        self._cost = time.perf_counter() - t0
        self._last = time.perf_counter()
        self._dirty = False

    def flush(self) -> None:
        if self._dirty:
            self.save(force=True)


def _rerunning_main_script() -> bool:
    """Whether this process is a worker that is re-running the caller's main script while it starts.

    A forkserver or spawn child runs the parent's main script as module ``__mp_main__`` before it
    becomes a worker (``multiprocessing.spawn.prepare``); only when that run has finished does
    ``sys.modules["__main__"]`` become the same module. A script without an ``if __name__ ==
    "__main__":`` guard calls ``load_corpus`` again during that run.
    """
    rerun = sys.modules.get("__mp_main__")
    return rerun is not None and sys.modules.get("__main__") is not rerun


@contextlib.contextmanager
def _locked(folder: Path):
    import fcntl

    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _open_store(folder: Path) -> str | None:
    """Create the store folder and its lock file; None when usable, else the reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o666))
    except FileExistsError:
        return str(files_mod.fs_error(OSError(errno.ENOTDIR, "not a folder"), folder, "create the folder"))
    except OSError as exc:
        return str(files_mod.fs_error(exc, folder, "create the folder"))
    return None







# ---------------------------------------------------------------------------------------------
# building

@dataclass(frozen=True)
class SourceRecipe:
    """What a corpus source is and how its files become frames: everything that keys the store.

    Attributes:
        kind: "folder" or "chorales" (part of the store's name).
        identity: the source's identity without its file list (see :func:`store_dir`).
        parse: ``parse(path, name, spec, meter) -> Piece | str`` (a reason to skip); top-level.
        expand: ``expand(piece, spec, transpose, augment) -> [(frames, info dict), ...]``, the
            original first then one entry per augmentation shift; top-level.
        spec: roll layout.
        meter: meter filter passed to ``parse``.
        transpose: passed to ``expand``.
        augment: shifts passed to ``expand``.
        options: recorded on the result (``ShardedCorpus.options``).
    """

    kind: str
    identity: str
    parse: Callable
    expand: Callable
    spec: RollSpec
    meter: str | None
    transpose: object
    augment: tuple
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StoreSettings:
    """Where and how a store is built (nothing here changes the frames).

    Attributes:
        cache_root: parent of the store folder (default ``paths.cache_dir()``).
        cache: False keeps every shard in memory and writes nothing.
        workers: processes for parsing (default :func:`default_workers`); 1 parses in-process.
        shard_files: files per pieces shard (default :data:`DEFAULT_SHARD_FILES`).
        progress: a progress bar over the files parsed.
    """

    cache_root: str | Path | None = None
    cache: bool = True
    workers: int | None = None
    shard_files: int | None = None
    progress: bool = True


def build(recipe: SourceRecipe, wanted: list[SourceFile], present: list[SourceFile],
          settings: StoreSettings = StoreSettings()) -> ShardedCorpus:
    """Bring a source's store up to date and return its frames as a :class:`ShardedCorpus`.

    Files of ``wanted`` not found in a listed pieces shard (by key, size and mtime) are parsed, in
    batches of ``settings.shard_files``, in ``settings.workers`` processes; each batch becomes a
    pieces shard. Then one frame shard per pieces shard is built (or reused) for the recipe's
    ``transpose`` and ``augment``.

    Args:
        recipe: the source and how its files become frames.
        wanted: the files to use, in global piece order.
        present: every current file of the source (``wanted`` is its head when a limit applies);
            shards holding none of them are dropped.
        settings: cache folder, workers, shard size, progress bar.

    Returns:
        ShardedCorpus; ``skipped`` lists the wanted files that were not used.

    Raises:
        OptionError: workers or shard_files below 1.
    """
    t0, cpu0 = time.perf_counter(), time.process_time()
    workers = default_workers() if settings.workers is None else int(settings.workers)
    shard_files = DEFAULT_SHARD_FILES if settings.shard_files is None else int(settings.shard_files)
    if workers < 1:
        raise OptionError(f"workers must be at least 1, got {workers}")
    if shard_files < 1:
        raise OptionError(f"shard_files must be at least 1, got {shard_files}")
    folder = (store_dir(recipe.kind, recipe.identity, recipe.spec, recipe.meter, settings.cache_root)
              if settings.cache else None)
    errors: list[str] = []
    if folder is not None:
        reason = _open_store(folder)
        if reason is not None:
            warnings.warn(f"corpus cache not written ({reason}); set QBDI_CACHE_DIR to a writable "
                          "folder", stacklevel=3)
            folder = None
    if _rerunning_main_script():
        # a worker re-running an unguarded script: never wait on the lock the parent holds (that was
        # a deadlock); end this worker quietly, the parent parses in-process and says why
        raise SystemExit(1)
    runner = Runner(workers)
    try:
        with (_locked(folder) if folder is not None else contextlib.nullcontext()):
            for _attempt in range(3):
                state = _Build(folder, recipe, runner, shard_files, settings.progress, errors)
                result = _build_once(state, wanted, present)
                if result is not None:
                    break
            else:  # pragma: no cover - shards damaged while being read three times over
                raise CorpusError("the corpus store keeps changing while it is read", folder)
    finally:
        runner.close()
    if errors:
        warnings.warn(f"corpus cache not written: {len(errors)} file(s) failed, first: {errors[0]}; "
                      "the corpus is complete, only the next load parses again", stacklevel=3)
    result.ingest["workers"] = workers if runner.used_pool and not runner.broken else 1
    result.ingest["seconds"] = round(time.perf_counter() - t0, 3)
    result.ingest["parent_cpu_seconds"] = round(time.process_time() - cpu0 - runner.here_cpu, 3)
    return result


def _adopt_and_prune(folder: Path | None, manifest: _Manifest, present: list[SourceFile]) -> None:
    """Adopt complete shard files the manifest misses; drop shards with no current file."""
    if folder is None:
        return
    files_mod.clean_leftovers(folder)
    listed = set(manifest.shards)
    for name in sorted(os.listdir(folder)):
        if _PIECES_RE.match(name) and name not in listed:
            try:
                meta = read_meta(folder / name)
                if meta.get("version") != STORE_VERSION:
                    raise ValueError("other version")
                manifest.shards[name] = {"files": [[f["key"], f["size"], f["mtime_ns"], f.get("skipped")]
                                                   for f in meta["files"]]}
            except Exception:  # not a complete shard of ours
                with contextlib.suppress(OSError):
                    os.unlink(folder / name)
    current = {f.ident for f in present}
    seen: set = set()
    for name in list(manifest.shards):
        idents = {(k, int(s), int(m)) for k, s, m, _ in manifest.shards[name]["files"]}
        useful = (idents & current) - seen
        if not useful or not (folder / name).is_file():
            del manifest.shards[name]
            with contextlib.suppress(OSError):
                os.unlink(folder / name)
        seen |= idents


@dataclass
class _Build:
    """One pass of :func:`build` over the store: its fixed inputs and what the steps find out."""

    folder: Path | None
    recipe: SourceRecipe
    runner: Runner
    shard_files: int
    progress: bool
    errors: list
    head: dict = field(default_factory=dict)
    where: dict = field(default_factory=dict)  # (key, size, mtime_ns) -> (shard name, skip reason)
    held_pieces: dict = field(default_factory=dict)  # shards not written: name -> (rolls, meta)
    cpu: float = 0.0  # CPU seconds of the parse jobs, wherever they ran
    fcpu: float = 0.0  # CPU seconds of the frame jobs
    wanted_frames: dict = field(default_factory=dict)  # frame shard -> its pieces shard
    infos: dict = field(default_factory=dict)  # frame shard -> its pieces' infos (with ids)
    held_frames: dict = field(default_factory=dict)  # frame shards not written: name -> data


def _build_once(b: _Build, wanted: list[SourceFile], present: list[SourceFile]) -> ShardedCorpus | None:
    """One pass: the manifest, the new files parsed, the frame shards; None when a pieces shard
    turned out damaged (it is forgotten, the next pass parses its files again)."""
    spec = b.recipe.spec
    b.head = {"version": STORE_VERSION, "spec": spec.to_dict(), "meter": b.recipe.meter}
    manifest = _Manifest(b.folder / MANIFEST if b.folder is not None else None, b.head, b.errors)
    manifest.load()
    n_listed = len(manifest.shards)
    _adopt_and_prune(b.folder, manifest, present)
    if len(manifest.shards) != n_listed:
        manifest.save(force=True)
    for name, entry in manifest.shards.items():
        for k, s, m, reason in entry["files"]:
            b.where.setdefault((k, int(s), int(m)), (name, reason))
    todo = [f for f in wanted if f.ident not in b.where]
    n_jobs = _parse_new(b, manifest, todo)
    per_shard, skipped, names, n_ids = _piece_ids(b, wanted)
    n_built = _frame_shards(b, manifest, per_shard)
    if n_built is None:
        return None
    return _assemble(b, n_ids, names, skipped, ingest={
        "parsed": len(todo), "reused": len(wanted) - len(todo), "shards": len(per_shard),
        "new_shards": n_jobs, "frame_shards_built": n_built,
        "frame_shards_reused": len(b.wanted_frames) - n_built, "job_cpu_seconds": round(b.cpu + b.fcpu, 3),
        "parse_cpu_seconds": round(b.cpu, 3), "frames_cpu_seconds": round(b.fcpu, 3)})


def _parse_new(b: _Build, manifest: _Manifest, todo: list[SourceFile]) -> int:
    """Parse the new files in batches, each written as a pieces shard as it completes (or held in
    memory); fills ``b.where``, ``b.held_pieces``, ``b.cpu``. Returns the number of batches."""
    runner, shard_files, folder, recipe = b.runner, b.shard_files, b.folder, b.recipe
    parallel = runner.workers > 1 and len(todo) >= 2 * shard_files
    size = shard_files if not parallel else max(1, min(shard_files, math.ceil(len(todo) / (4 * runner.workers))))
    jobs = []
    for i in range(0, len(todo), size):
        batch = todo[i:i + size]
        jobs.append({"folder": None if folder is None else str(folder),
                     "name": f"pieces-{_digest([f.ident for f in batch])}.npz",
                     "files": [[f.key, f.path, f.name, f.size, f.mtime_ns] for f in batch],
                     "parse": recipe.parse, "spec": recipe.spec.to_dict(), "meter": recipe.meter})
    bar = progress_bars.progress(total=len(todo), desc=f"parsing {recipe.kind}", unit="file", mininterval=3.0) \
        if (b.progress and todo) else None
    try:
        tick = (lambda: bar.update(1)) if (bar is not None and not parallel) else None
        for res in runner.run(parse_job, jobs, parallel=parallel, on_file=tick):
            b.cpu += res["cpu"]
            if bar is not None and parallel:
                bar.update(len(res["files"]))
            if res["error"]:
                b.errors.append(res["error"])
            if res["data"] is not None:
                b.held_pieces[res["name"]] = res["data"]
            else:
                manifest.shards[res["name"]] = {"files": res["files"]}
                manifest.save()
            for k, s, m, reason in res["files"]:
                b.where[(k, int(s), int(m))] = (res["name"], reason)
    finally:
        if bar is not None:
            bar.close()
    manifest.flush()
    return len(jobs)


def _piece_ids(b: _Build, wanted: list[SourceFile]) -> tuple[dict, list, list, int]:
    """Global piece ids in ``wanted``'s order: ({pieces shard: [[key, first id], ...]}, skipped
    [(name, reason)], piece names (augmented copies right after their piece), number of ids)."""
    aug = tuple(b.recipe.augment)
    per_shard: dict = {}
    skipped, next_id, names = [], 0, []
    for f in wanted:
        shard, reason = b.where[f.ident]
        if reason is not None:
            skipped.append((f.name, reason))
            continue
        per_shard.setdefault(shard, []).append([f.key, next_id])
        names.append(f.name)
        names += [f"{f.name}@{a:+d}" for a in aug]
        next_id += 1 + len(aug)
    return per_shard, skipped, names, next_id


def _frame_shards(b: _Build, manifest: _Manifest, per_shard: dict) -> int | None:
    """Build (or reuse) one frame shard per pieces shard for the recipe's options; delete the frame
    shards no longer wanted. Fills ``b.wanted_frames``, ``b.infos``, ``b.held_frames``; returns the
    number of frame shards built, or None after forgetting damaged pieces shards."""
    folder, recipe = b.folder, b.recipe
    aug = tuple(recipe.augment)
    # "framing": frames at each piece's own bar lines, with their lengths in the infos (issue 25)
    opt_key = _digest({"v": STORE_VERSION, "transpose": recipe.transpose, "augment": list(aug),
                       "framing": "bars"})
    fman = _Manifest(folder / f"frames-{opt_key}.json" if folder is not None else None,
                     dict(b.head, transpose=recipe.transpose, augment=list(aug)), b.errors)
    fman.load()
    n_fman = len(fman.shards)
    wanted_frames, fjobs = b.wanted_frames, []
    for shard, include in per_shard.items():
        fname = f"frames-{opt_key}-{_digest([shard, include])}.npz"
        wanted_frames[fname] = shard
        if fname in fman.shards and folder is not None and (folder / fname).is_file():
            continue
        fjobs.append({"folder": None if folder is None else str(folder), "name": fname,
                      "pieces_name": shard,
                      "pieces_path": None if folder is None else str(folder / shard),
                      "pieces_data": b.held_pieces.get(shard), "include": include, "expand": recipe.expand,
                      "spec": recipe.spec.to_dict(), "transpose": recipe.transpose, "augment": list(aug)})
    # frame shards no longer wanted for these options
    for fname in list(fman.shards):
        if fname not in wanted_frames:
            del fman.shards[fname]
    if folder is not None:
        prefix = f"frames-{opt_key}-"
        for name in os.listdir(folder):
            if name.startswith(prefix) and name.endswith(".npz") and name not in wanted_frames:
                with contextlib.suppress(OSError):
                    os.unlink(folder / name)
    held_frames = b.held_frames  # frame shards not written: name -> (packed, n_columns, piece_index)
    infos = b.infos
    infos.update({name: entry["pieces"] for name, entry in fman.shards.items()})
    damaged = []
    n_files = sum(len(j["include"]) for j in fjobs)
    fparallel = b.runner.pool is not None or (b.runner.workers > 1 and n_files >= 2 * b.shard_files)
    for res in b.runner.run(frames_job, fjobs, parallel=fparallel):
        if "damaged" in res:
            damaged.append(wanted_frames[res["name"]])
            continue
        b.fcpu += res["cpu"]
        infos[res["name"]] = res["pieces"]
        if res["error"]:
            b.errors.append(res["error"])
        if res["data"] is not None:
            held_frames[res["name"]] = res["data"]
        else:
            fman.shards[res["name"]] = {"pieces_shard": wanted_frames[res["name"]],
                                        "n_frames": res["n_frames"], "pieces": res["pieces"]}
            fman.save()
    if damaged:  # a pieces shard could not be read: forget it, parse its files again
        for shard in damaged:
            manifest.shards.pop(shard, None)
            with contextlib.suppress(OSError):
                os.unlink(folder / shard)
        manifest.save(force=True)
        fman.flush()
        return None
    if fjobs or len(fman.shards) != n_fman:
        fman.save(force=True)
    return len(fjobs)


def _assemble(b: _Build, n_ids: int, names: list, skipped: list, ingest: dict) -> ShardedCorpus:
    """The :class:`ShardedCorpus` over the frame shards, ordered by their first piece id."""
    folder, wanted_frames, infos, held_frames = b.folder, b.wanted_frames, b.infos, b.held_frames
    entries = sorted(wanted_frames, key=lambda name: min(p["id"] for p in infos[name]))
    all_pieces: list = [None] * n_ids
    shard_paths, shard_sizes, index_parts, held = [], [], [], {}
    for i, fname in enumerate(entries):
        pinfo = infos[fname]
        path = None if (folder is None or fname in held_frames) else folder / fname
        for p in pinfo:
            all_pieces[p["id"]] = {k: v for k, v in p.items() if k != "id"}
        ids = np.array([p["id"] for p in pinfo], dtype=np.int32)
        counts = np.array([p["n_frames"] for p in pinfo], dtype=np.int64)
        index_parts.append(np.repeat(ids, counts))
        shard_paths.append(path)
        shard_sizes.append(int(counts.sum()))
        if path is None:
            held[i] = held_frames[fname]
    piece_index = np.concatenate(index_parts) if index_parts else np.zeros(0, np.int32)
    return ShardedCorpus(
        shard_paths=shard_paths, shard_sizes=shard_sizes, piece_index=piece_index.astype(np.int32),
        piece_names=names, pieces=all_pieces, skipped=skipped, spec=b.recipe.spec,
        options=dict(b.recipe.options), ingest=ingest, store=folder, held_shards=held)


def forget_frames(sc: ShardedCorpus) -> int:
    """Delete the frame shards of ``sc`` (e.g. one turned out damaged); the next
    :func:`build` with the same options rebuilds them from the pieces shards, without parsing.

    Returns:
        The number of files deleted.
    """
    n = 0
    for path in sc.shard_paths:
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
                n += 1
    return n
