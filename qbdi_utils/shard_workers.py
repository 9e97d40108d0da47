"""The jobs that build the corpus store's shards, and the process pool that runs them (issue 15).

A **parse job** (:func:`parse_job`) parses one batch of files with the corpus module's parser and
writes the batch's pieces shard; a **frame job** (:func:`frames_job`) turns one pieces shard into the
frames of one set of options and writes the frame shard. Both run in a worker process or in the
calling process and return plain data (the file list, the infos, the CPU seconds, and the shard's
data when it could not be written). :class:`Runner` runs a list of jobs in a lazily started
``forkserver`` pool, or in-process, falling back to the calling process when workers cannot start
or die. The store's layout and its manifests are :mod:`qbdi_utils.shards`'.

Imports: errors, files, pianoroll. Used by: shards.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from qbdi_utils import files as files_mod
from qbdi_utils.errors import QbdiError
from qbdi_utils.pianoroll import Piece, RollSpec

__all__ = ["STORE_VERSION", "PARSE_GC_THRESHOLD", "savez", "write_shard", "piece_meta", "pieces_from", "read_meta",
           "sparse_gc", "parse_job", "frames_job", "Runner"]

#: Bump when a shard's layout changes; a store of another version is ignored (a new folder is used).
STORE_VERSION = 1

def savez(tmp: Path, arrays: dict) -> None:
    """Write an .npz at ``tmp`` (the writer behind every shard; tests replace it to fill the disk)."""
    np.savez_compressed(tmp, **arrays)


def write_shard(path: Path, arrays: dict) -> str | None:
    """Write a shard atomically; None on success, else the one-line reason (nothing left behind)."""
    try:
        files_mod.write_with(path, lambda tmp: savez(tmp, arrays), force=True)
    except QbdiError as exc:
        return str(exc)
    except OSError as exc:  # not translated on the way (should not happen; never a traceback)
        return str(files_mod.fs_error(exc, path))
    return None


def piece_meta(p: Piece) -> dict:
    return {"n_steps": int(p.n_steps), "bar_offset_steps": int(p.bar_offset_steps),
            "dropped": dict(p.dropped), "tempo_map": [list(t) for t in p.tempo_map],
            "time_signatures": [list(t) for t in p.time_signatures],
            "ticks_per_beat": int(p.ticks_per_beat)}


def pieces_from(rolls: np.ndarray, meta: dict, spec: RollSpec, keys=None) -> dict:
    """{key: Piece} of the kept files of a pieces shard (only ``keys`` when given)."""
    out, start = {}, 0
    for f in meta["files"]:
        m = f.get("piece")
        if m is None:
            continue
        n = int(m["n_steps"])
        if keys is None or f["key"] in keys:
            out[f["key"]] = Piece(roll=rolls[start:start + n], spec=spec, name=f["name"],
                                  tempo_map=[tuple(t) for t in m["tempo_map"]],
                                  time_signatures=[tuple(t) for t in m["time_signatures"]],
                                  ticks_per_beat=int(m["ticks_per_beat"]),
                                  bar_offset_steps=int(m["bar_offset_steps"]), dropped=dict(m["dropped"]))
        start += n
    return out


def read_meta(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["meta"]))


#: Allocations between young-generation collections while a batch is parsed (Python's default: 700).
#: music21 builds and drops hundreds of thousands of linked objects per score; at the default the
#: cyclic collector took about a fifth of a chorale's parse (45 of ~220 ms), at this setting ~15 ms.
#: Output is unchanged (only when garbage is collected changes); the setting is restored afterwards.
PARSE_GC_THRESHOLD = 25_000


@contextlib.contextmanager
def sparse_gc() -> Iterator[None]:
    """Collect cyclic garbage less often for the duration (see :data:`PARSE_GC_THRESHOLD`)."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], PARSE_GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def parse_job(job: dict, on_file: Callable[[], None] | None = None) -> dict:
    """Parse one batch of files and write its pieces shard (runs in a worker or in-process).

    Returns the shard's file list ``[[key, size, mtime_ns, reason or None], ...]``, the write error
    (None when written) and, when the shard was not written, its data.
    """
    cpu0 = time.process_time()
    spec = RollSpec.from_dict(job["spec"])
    parse = job["parse"]
    rolls, metas = [], []
    with sparse_gc():
        for key, path, name, size, mtime_ns in job["files"]:
            try:
                out = parse(path, name, spec, job["meter"])
            except Exception as exc:  # the parser reports its own errors; anything else is still a skip
                out = f"unexpected {type(exc).__name__}: {exc}"
            m = {"key": key, "size": size, "mtime_ns": mtime_ns, "name": name}
            if isinstance(out, str):
                m["skipped"] = out
            else:
                m["piece"] = piece_meta(out)
                rolls.append(np.asarray(out.roll, dtype=np.uint8))
            metas.append(m)
            if on_file is not None:
                on_file()
    roll = np.concatenate(rolls) if rolls else np.zeros((0, spec.n_columns), np.uint8)
    meta = {"version": STORE_VERSION, "spec": spec.to_dict(), "meter": job["meter"], "files": metas}
    arrays = {"rolls": np.packbits(roll, axis=1), "n_columns": np.int64(roll.shape[1]),
              "meta": np.array(json.dumps(meta))}
    error = None
    if job["folder"] is not None:
        error = write_shard(Path(job["folder"]) / job["name"], arrays)
    listing = [[m["key"], m["size"], m["mtime_ns"], m.get("skipped")] for m in metas]
    return {"name": job["name"], "files": listing, "error": error, "cpu": time.process_time() - cpu0,
            "data": (roll, meta) if (job["folder"] is None or error) else None}


def frames_job(job: dict) -> dict:
    """Build one frame shard from a pieces shard (runs in a worker or in-process)."""
    cpu0 = time.process_time()
    spec = RollSpec.from_dict(job["spec"])
    if job["pieces_data"] is not None:
        rolls, meta = job["pieces_data"]
    else:
        try:
            with np.load(job["pieces_path"], allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                rolls = np.unpackbits(z["rolls"], axis=1, count=int(z["n_columns"]))
        except Exception as exc:  # damaged or vanished: the parent drops it and parses its files again
            return {"name": job["name"], "damaged": f"{type(exc).__name__}: {exc}"}
    include = job["include"]  # [[key, first id], ...] in id order
    pieces = pieces_from(rolls, meta, spec, {k for k, _ in include})
    if len(pieces) != len(include):
        return {"name": job["name"], "damaged": "files missing from the pieces shard"}
    frames, ids, infos = [], [], []
    for key, first in include:
        for j, (fr, info) in enumerate(job["expand"](pieces[key], spec, job["transpose"],
                                                     tuple(job["augment"]))):
            frames.append(fr)
            ids.append(np.full(len(fr), first + j, dtype=np.int32))
            infos.append(dict(info, id=first + j))
    fr = np.concatenate(frames) if frames else np.zeros((0, spec.frame_size), np.uint8)
    piece_index = np.concatenate(ids) if ids else np.zeros(0, np.int32)
    packed = np.packbits(fr, axis=1)
    meta_out = {"version": STORE_VERSION, "pieces_shard": job["pieces_name"], "pieces": infos}
    error = None
    if job["folder"] is not None:
        error = write_shard(Path(job["folder"]) / job["name"], {
            "frames": packed, "n_columns": np.int64(fr.shape[1]), "piece_index": piece_index,
            "meta": np.array(json.dumps(meta_out))})
    return {"name": job["name"], "pieces": infos, "n_frames": int(len(fr)), "error": error,
            "cpu": time.process_time() - cpu0,
            "data": (packed, int(fr.shape[1]), piece_index) if (job["folder"] is None or error) else None}


_preload_set = False


def _context():
    global _preload_set
    try:
        ctx = multiprocessing.get_context("forkserver")
    except ValueError:  # no forkserver on this platform
        return multiprocessing.get_context("spawn")
    if not _preload_set:
        # workers start from a server that already imported numpy and the parsers
        ctx.set_forkserver_preload(["qbdi_utils.corpus"])
        _preload_set = True
    return ctx


def _warn_worker_died() -> None:
    """Warn, on behalf of the corpus loader's caller, that a worker died and the rest is parsed here."""
    warnings.warn("a corpus worker process died (a script loading with workers > 1 needs "
                  "'if __name__ == \"__main__\":'); parsing the rest in this process", stacklevel=6)


class Runner:
    """Runs jobs in-process or in a lazily started process pool; yields results as they finish."""

    def __init__(self, workers: int):
        self.workers = int(workers)
        self.pool: ProcessPoolExecutor | None = None
        self.used_pool = False
        self.broken = False
        self.here_cpu = 0.0  # CPU seconds of the jobs run in this process

    def run(self, fn, jobs: list, *, parallel: bool, on_file=None) -> Iterator[dict]:
        if not jobs:
            return
        if not parallel or self.workers < 2 or len(jobs) < 2 or self.broken:
            for job in jobs:
                yield self._here(fn, job, on_file)
            return
        try:
            if self.pool is None:
                self.pool = ProcessPoolExecutor(max_workers=min(self.workers, len(jobs)),
                                                mp_context=_context())
            pending = {self.pool.submit(fn, job): job for job in jobs}
        except (OSError, RuntimeError, ValueError, NotImplementedError, BrokenProcessPool) as exc:
            if isinstance(exc, BrokenProcessPool):
                # a worker died while the jobs were being handed out: the same cause as below
                _warn_worker_died()
            else:
                # no processes here (a process limit, no /dev/shm, a sandbox): parse in this process
                warnings.warn(f"corpus worker processes could not start ({exc}); parsing in this "
                              "process", stacklevel=5)
            self.broken = True
            self.close()
            for job in jobs:
                yield self._here(fn, job, on_file)
            return
        self.used_pool = True
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                job = pending.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    # a worker died (out of memory, a crash in a parser): finish here, one by one
                    _warn_worker_died()
                    self.broken = True
                    self.close()
                    rest = [job] + list(pending.values())
                    pending.clear()
                    for j in rest:
                        yield self._here(fn, j)
                    return
                yield result

    def _here(self, fn, job: dict, on_file=None) -> dict:
        """Run one job in this process, adding its CPU seconds to ``here_cpu``."""
        result = fn(job, on_file) if on_file is not None else fn(job)
        self.here_cpu += result.get("cpu", 0.0)
        return result

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
