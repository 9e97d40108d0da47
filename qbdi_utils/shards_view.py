"""The streaming view of a built corpus store: frame shards on disk, read one at a time.

A :class:`ShardedCorpus` is what :func:`qbdi_utils.shards.build` returns: the frame shards of one
set of options (their layout is in :mod:`qbdi_utils.shards`'s docstring) with nothing but piece ids
and counts in memory. It is a frame source of :mod:`qbdi_utils.training.stream` (streamed
training) and turns into the in-memory corpus (:meth:`ShardedCorpus.to_arrays`, piece order).
:func:`frame_lengths_of` reads the valid steps of every frame off the pieces' records.

Imports: files, errors, pianoroll.
Used in: :mod:`qbdi_utils.shards`, :mod:`qbdi_utils.corpus`, :func:`qbdi_utils.training.train`,
tests/test_shards.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from qbdi_utils import files as files_mod
from qbdi_utils.errors import CorpusError
from qbdi_utils.pianoroll import RollSpec, frames_digest

__all__ = ["ShardedCorpus", "frame_lengths_of"]


def frame_lengths_of(pieces, spec: RollSpec = RollSpec()) -> np.ndarray:
    """The valid steps of every frame of a corpus, pieces in order (their ``frame_lengths`` records).

    Args:
        pieces: ``Corpus.pieces`` (or a ShardedCorpus's), each with ``n_frames`` and the run-length
            coded ``frame_lengths`` [[length, count], ...]; a record without it (a store written before
            issue 25) counts ``spec.steps_per_frame`` for each frame.
        spec: roll layout.

    Returns:
        (sum of n_frames,) int64.
    """
    parts = []
    for p in pieces:
        runs = p.get("frame_lengths")
        if runs is None:
            parts.append(np.full(int(p["n_frames"]), spec.steps_per_frame, np.int64))
        else:
            parts.append(np.repeat(np.asarray([r[0] for r in runs], np.int64),
                                   np.asarray([r[1] for r in runs], np.int64)))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


@dataclass
class ShardedCorpus:
    """A corpus as frame shards on disk, for streaming (nothing but ids and counts in memory).

    Attributes:
        shard_paths: frame-shard files (``.npz``, keys in the module docstring), in shard order;
            None for a shard that could not be written (its data is then held in memory).
        shard_sizes: frames per shard.
        piece_index: (N,) int32 global piece ids of every frame, in shard order.
        piece_names: name of each piece id (augmented copies "<name>@+2" etc.).
        pieces: one dict per piece id (as :attr:`qbdi_utils.corpus.Corpus.pieces`).
        skipped: (name, reason) of every file not used, across all shards.
        spec: roll layout.
        options: the options the frames were built with.
        fingerprint: the corpus cache key (set by the corpus module).
        ingest: counts of this load: parsed (files), reused (files found in listed shards),
            shards (pieces shards used), new_shards, frame_shards_built, frame_shards_reused,
            workers (processes that parsed: 1 when in-process), seconds (wall clock),
            job_cpu_seconds (CPU time of the parse and frame jobs, summed over the workers; on a
            shared machine ``job_cpu_seconds / seconds`` shows how much CPU the load really got),
            its two parts parse_cpu_seconds and frames_cpu_seconds, and parent_cpu_seconds (CPU
            time of the calling process outside the jobs: listing, manifests, pool start-up and
            waiting). CPU seconds do not count the time spent waiting for a core, so they
            compare loads better than wall time on a shared machine (not perfectly: on the
            2-core development machine the same parse cost up to a third more CPU seconds while
            another job ran).
        store: the store folder (None when caching was off).
        held_shards: {shard: (packed frames, n_columns, piece ids)} of the shards that could not be
            written, held in memory for this load (their ``shard_paths`` entry is None).
    """

    shard_paths: list
    shard_sizes: list
    piece_index: np.ndarray
    piece_names: list
    pieces: list
    skipped: list
    spec: RollSpec
    options: dict
    fingerprint: str = ""
    ingest: dict = field(default_factory=dict)
    store: Path | None = None
    held_shards: dict = field(default_factory=dict, repr=False)

    @property
    def n_frames(self) -> int:
        """Number of frames N."""
        return int(self.piece_index.shape[0])

    @property
    def frame_size(self) -> int:
        """Values in one frame (``spec.frame_size``)."""
        return int(self.spec.frame_size)

    @property
    def n_shards(self) -> int:
        """Number of frame shards."""
        return len(self.shard_sizes)

    @property
    def frame_lengths(self) -> np.ndarray:
        """(N,) int64 valid steps of every frame, in shard order (from the pieces' records)."""
        pid = np.asarray(self.piece_index)
        if not len(pid):
            return np.zeros(0, np.int64)
        firsts = np.concatenate([[0], np.flatnonzero(pid[1:] != pid[:-1]) + 1])
        return frame_lengths_of([self.pieces[int(pid[a])] for a in firsts], self.spec)

    def _read_packed(self, i: int) -> tuple[np.ndarray, int, np.ndarray]:
        if i in self.held_shards:
            return self.held_shards[i]
        path = self.shard_paths[i]
        try:
            with np.load(path, allow_pickle=False) as z:
                out = (z["frames"], int(z["n_columns"]), np.asarray(z["piece_index"], dtype=np.int32))
        except OSError as exc:
            raise files_mod.fs_error(exc, path, "read") from None
        except Exception as exc:
            raise CorpusError(f"damaged frame shard ({type(exc).__name__}); load the corpus again "
                              "to rebuild it", path) from None
        if out[0].shape[0] != self.shard_sizes[i] or out[1] != self.frame_size:
            raise CorpusError("frame shard does not match its manifest; load the corpus again", path)
        return out

    def read_shard(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames and global piece ids of shard ``i``.

        Returns:
            (frames (n, frame_size) uint8 0/1, piece_ids (n,) int32).

        Raises:
            CorpusError: the shard file is damaged or no longer matches.
            FileSystemError: it cannot be read.
        """
        packed, n_col, ids = self._read_packed(int(i))
        return np.unpackbits(packed, axis=1, count=n_col), ids

    def iter_shards(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """:meth:`read_shard` of every shard, in shard order."""
        for i in range(self.n_shards):
            yield self.read_shard(i)

    def _piece_order_runs(self) -> list[tuple[int, int, int]]:
        """(shard, first row, end row) runs that visit every frame in piece order."""
        starts = np.concatenate([[0], np.cumsum(self.shard_sizes)]).astype(np.int64)
        order = np.argsort(self.piece_index, kind="stable")
        if order.size == 0:
            return []
        shard_of = np.repeat(np.arange(self.n_shards), self.shard_sizes)[order]
        breaks = np.flatnonzero((np.diff(order) != 1) | (np.diff(shard_of) != 0)) + 1
        runs = []
        for a, b in zip(np.concatenate([[0], breaks]), np.concatenate([breaks, [order.size]])):
            s = int(shard_of[a])
            runs.append((s, int(order[a] - starts[s]), int(order[b - 1] - starts[s] + 1)))
        return runs

    @property
    def in_piece_order(self) -> bool:
        """Whether shard order is piece order (true for a store built from scratch)."""
        return bool(np.all(np.diff(self.piece_index) >= 0))

    def frames_fingerprint(self) -> str:
        """:func:`qbdi_utils.model.frames_fingerprint` of the in-memory corpus's frames (piece order).

        SHA-256 of ``repr((N, D))`` then the uint8 frames row by row in piece order, first 16 hex
        digits. Shards are read as the piece order reaches them and dropped after their last run.
        """
        runs = self._piece_order_runs()
        last = {s: k for k, (s, _, _) in enumerate(runs)}

        def blocks():
            cache: dict = {}
            for k, (s, a, b) in enumerate(runs):
                if s not in cache:
                    cache[s] = self._read_packed(s)
                packed, n_col, _ = cache[s]
                yield np.unpackbits(packed[a:b], axis=1, count=n_col)
                if last[s] == k:
                    del cache[s]

        return frames_digest((self.n_frames, self.frame_size), blocks())

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All frames in piece order, as the in-memory corpus holds them.

        Returns:
            (frames (N, frame_size) uint8, piece_index (N,) int32), sorted by piece id (stable).
        """
        order = np.argsort(self.piece_index, kind="stable")
        dest = np.empty(self.n_frames, dtype=np.int64)
        dest[order] = np.arange(self.n_frames)
        out = np.empty((self.n_frames, self.frame_size), dtype=np.uint8)
        start = 0
        for i in range(self.n_shards):
            fr, _ = self.read_shard(i)
            out[dest[start:start + len(fr)]] = fr
            start += len(fr)
        return out, self.piece_index[order]
