"""Frame sources: training frames read shard by shard, so a corpus need not fit in memory.

A **frame source** is any object with these attributes (duck-typed; nothing to subclass)::

    n_frames            int, N
    frame_size          int, D (spec.frame_size)
    shard_sizes         list of ints, frames per shard (they sum to N)
    piece_index         (N,) int32 global piece id of every frame, in shard order
    read_shard(i)       -> (frames uint8 (n_i, D) of 0/1, piece_ids int32 (n_i,)) of shard i
    frames_fingerprint()  -> str, ``model.frames_fingerprint`` of all frames concatenated in shard order

A piece's frames are consecutive and in time order inside ONE shard (a piece never straddles two
shards). :class:`qbdi_utils.shards_view.ShardedCorpus` (the bit-packed on-disk corpus) is a frame source;
this module adds two small ones: :class:`ArraySource` (a numpy array, or a memory-mapped ``.npy``
opened with ``np.load(path, mmap_mode="r")``, cut into shards) and :class:`SyntheticSource` (chord
frames generated shard by shard, for benchmarks of memory and speed).

``qbdi_utils.training.train`` streams a frame source through tf.data: the batches come from
:func:`training_batches` (numpy; TensorFlow only inside :func:`stream_dataset`), made ahead of the step in a background thread
by :func:`read_ahead` into the tf.data pipeline of :func:`stream_dataset`, held-out frames from
:func:`gather_frames`. Only O(N) small integers (piece
ids, split masks) are ever held for the whole corpus; frame data is held one shard plus a bounded
shuffle buffer at a time. :func:`should_stream` says when an
array is better streamed than trained from memory.

Used in: :func:`qbdi_utils.training.train` (``stream=``), benchmarks/bench_scale.py,
tests/test_train_scale.py.
"""

from __future__ import annotations

import os
import queue
import threading

import numpy as np

from qbdi_utils.errors import CorpusError, OptionError
from qbdi_utils.pianoroll import RollSpec, frames_digest
from qbdi_utils.model import synthetic_frames

__all__ = [
    "ArraySource", "DEFAULT_SHARD_FRAMES", "DEFAULT_SHUFFLE_FRAMES", "IN_MEMORY_BYTES_PER_CELL",
    "SyntheticSource", "gather_frames", "is_frame_source", "read_ahead", "read_shards", "should_stream",
    "source_successors", "stream_dataset", "stream_fingerprint", "training_batches",
]

#: Frames per shard of :class:`ArraySource` / :class:`SyntheticSource` (about 10 MB of uint8 frames).
DEFAULT_SHARD_FRAMES = 4096

#: Frames of the shuffle buffer of :func:`training_batches` (about 20 MB of uint8 frames; twice that
#: with the predictor head's next bars).
DEFAULT_SHUFFLE_FRAMES = 8192

#: Bytes per frame cell that in-memory training holds at its peak, on top of the networks and
#: TensorFlow: the uint8 frames and their split copies, the float32 training frames and the
#: tf.constant made of them, and transients. Counting the copies gives 10; measured by
#: benchmarks/bench_scale.py (paper model, 80,000 bars: peak RSS 3,565 MB in memory against 982 MB
#: streamed) it is 32 KB per bar, 13 bytes per cell.
IN_MEMORY_BYTES_PER_CELL = 13

_SHUFFLE_STREAM = 3  # random stream of the streamed shuffle (training.split uses 1 and 2 for evaluation noise)

_PROTOCOL = ("n_frames", "frame_size", "shard_sizes", "piece_index", "read_shard")


def is_frame_source(obj) -> bool:
    """True when ``obj`` has the attributes of a frame source (see the module docstring).

    Used in: :func:`qbdi_utils.training.train`.
    """
    return not isinstance(obj, np.ndarray) and all(hasattr(obj, a) for a in _PROTOCOL)


def should_stream(n_frames: int, frame_size: int, memory_budget_bytes: int | None = None) -> bool:
    """Whether training on ``n_frames`` frames should stream them instead of holding them in memory.

    In-memory training holds about :data:`IN_MEMORY_BYTES_PER_CELL` (10) bytes per frame cell at its
    peak (13 x 2496 = 32 KB per bar, 32 GB per million bars); streaming holds a constant amount
    (one shard, the shuffle buffer, the capped held-out sets). Streams when that estimate exceeds
    the budget.

    Args:
        n_frames: N, frames of the corpus.
        frame_size: D, cells per frame (2496 for the paper's layout).
        memory_budget_bytes: bytes the training data may use; None = half of the machine's
            physical memory.

    Returns:
        True to stream (``train(..., stream=True)``), False for the in-memory fast path.

    Raises:
        OptionError: a negative count or a budget <= 0.

    Used in: ``qbdi train --memory-budget``, :func:`qbdi_utils.training.train`.
    """
    if n_frames < 0 or frame_size < 0:
        raise OptionError(f"n_frames and frame_size must be >= 0, got {n_frames}, {frame_size}")
    if memory_budget_bytes is None:
        memory_budget_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    if memory_budget_bytes <= 0:
        raise OptionError(f"the memory budget must be > 0 bytes, got {memory_budget_bytes}")
    return int(n_frames) * int(frame_size) * IN_MEMORY_BYTES_PER_CELL > int(memory_budget_bytes)


def _offsets(source) -> np.ndarray:
    """(n_shards + 1,) int64 start of every shard in the global frame order, then N."""
    sizes = np.asarray(list(source.shard_sizes), dtype=np.int64)
    return np.concatenate([[0], np.cumsum(sizes)])


def _check_source(source) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, piece_index) of a frame source after checking that its sizes agree."""
    off = _offsets(source)
    pid = np.asarray(source.piece_index)
    if off[-1] != int(source.n_frames) or len(pid) != int(source.n_frames):
        raise CorpusError(f"frame source is inconsistent: shard sizes sum to {int(off[-1])}, "
                          f"n_frames is {source.n_frames}, piece_index has {len(pid)} entries")
    return off, pid


def _read(source, i: int, off: np.ndarray, pid: np.ndarray) -> np.ndarray:
    """Frames of shard i as uint8 0/1, checked against the shard's size and piece ids."""
    frames, ids = source.read_shard(int(i))
    frames = np.asarray(frames)
    n = int(off[i + 1] - off[i])
    if frames.shape != (n, int(source.frame_size)):
        raise CorpusError(f"shard {i} of the frame source holds frames of shape {frames.shape}, "
                          f"expected ({n}, {source.frame_size})")
    if not np.array_equal(np.asarray(ids), pid[off[i]:off[i + 1]]):
        raise CorpusError(f"shard {i} of the frame source has piece ids that disagree with its piece_index")
    if frames.dtype != np.uint8 or frames.max(initial=0) > 1:
        frames = (frames != 0).astype(np.uint8)
    return frames


def source_successors(source) -> np.ndarray:
    """Index of each frame's next bar in the same piece AND the same shard, or -1.

    Like ``training.successor_index(source.piece_index, N)`` but never across a shard boundary (which
    a well-formed source never puts inside a piece anyway). O(N) int64.

    Used in: :func:`qbdi_utils.training.train` (streaming, gamma > 0).
    """
    off, pid = _check_source(source)
    n = len(pid)
    nxt = np.arange(1, n + 1, dtype=np.int64)
    if n:
        nxt[-1] = -1
        nxt[:-1][pid[1:] != pid[:-1]] = -1
        ends = off[1:-1] - 1
        nxt[ends[ends >= 0]] = -1
    return nxt


def read_shards(source):
    """The frames of every shard in order, checked against the source's sizes and piece ids.

    Yields:
        (n_i, D) uint8 0/1 frames of shard i, for i = 0, 1, ...

    Raises:
        CorpusError: a shard disagrees with the source's sizes or piece ids.

    Used in: :func:`stream_fingerprint`, :func:`qbdi_utils.training.train` (corpus statistics).
    """
    off, pid = _check_source(source)
    for i in range(len(off) - 1):
        yield _read(source, i, off, pid)


def stream_fingerprint(source) -> str:
    """``model.frames_fingerprint`` of a frame source's frames, read shard by shard (constant memory).

    Returns:
        16 hex digits, equal to ``model.frames_fingerprint(all frames concatenated in shard order)``.

    Used in: :class:`ArraySource`, :class:`SyntheticSource`.
    """
    return frames_digest((int(source.n_frames), int(source.frame_size)), read_shards(source))


def training_batches(source, train_mask: np.ndarray, batch_size: int, *, seed: int, epoch: int,
                     shuffle_frames: int = DEFAULT_SHUFFLE_FRAMES, pairs: bool = False):
    """One epoch of shuffled training batches read shard by shard (numpy; the tf.data generator).

    Shuffling is two-level and seeded by (seed, epoch): the shards are visited in a random order;
    their training frames fill a buffer of about ``shuffle_frames`` frames, which is permuted,
    and all but half a buffer is emitted in batches (the kept half mixes with the next shards).
    At the end the rest is permuted and emitted, the last batch possibly short. Every training
    frame is emitted exactly once per epoch; when ``shuffle_frames >= `` the training frames, the
    epoch is one uniform permutation of them.

    Args:
        source: a frame source (module docstring).
        train_mask: (N,) bool, True for the frames the optimiser may see.
        batch_size: frames per batch B.
        seed: the training seed.
        epoch: 0-based epoch number (each epoch has its own order).
        shuffle_frames: size of the shuffle buffer, in frames (>= batch_size).
        pairs: also give each frame's next bar (gamma > 0): the next frame of the same shard if it
            belongs to the same piece and is a training frame, else nothing (mask 0).

    Yields:
        (x,) with x (b, D) uint8, or with ``pairs`` (x, y, m): y (b, D) uint8 next bars (zeros
        where m == 0), m (b,) float32 1/0; b = batch_size except for the epoch's last batch.

    Raises:
        CorpusError: the source's shards disagree with its sizes or piece ids.

    Used in: :func:`qbdi_utils.training.train` (streaming); tests/test_train_scale.py.
    """
    off, pid = _check_source(source)
    mask = np.asarray(train_mask, dtype=bool)
    if len(mask) != len(pid):
        raise ValueError(f"train_mask must have {len(pid)} entries, got {len(mask)}")
    B = int(batch_size)
    buf = max(int(shuffle_frames), B)
    rng = np.random.default_rng([int(seed), _SHUFFLE_STREAM, int(epoch)])
    D = int(source.frame_size)
    pool: list[tuple[np.ndarray, ...]] = []
    pooled = 0

    def emit(parts, n_out):
        cols = [np.concatenate(c) for c in zip(*parts)]
        perm = rng.permutation(len(cols[0]))
        cols = [c[perm] for c in cols]
        out = [tuple(c[i:i + B] for c in cols) for i in range(0, n_out, B)]
        rest = [tuple(c[n_out:] for c in cols)] if n_out < len(cols[0]) else []
        return out, rest

    for i in rng.permutation(len(off) - 1):
        lo, hi = int(off[i]), int(off[i + 1])
        m = mask[lo:hi]
        if not m.any():
            continue
        x = _read(source, i, off, pid)
        keep = np.flatnonzero(m)
        if pairs:
            p = pid[lo:hi]
            has = np.zeros(hi - lo, dtype=bool)
            has[:-1] = (p[1:] == p[:-1]) & m[1:]
            y = np.zeros((len(keep), D), np.uint8)
            hk = has[keep]
            y[hk] = x[keep[hk] + 1]
            pool.append((x[keep], y, hk.astype(np.float32)))
        else:
            pool.append((x[keep],))
        pooled += len(keep)
        if pooled >= buf:
            n_out = ((pooled - buf // 2) // B) * B
            if n_out:
                out, pool = emit(pool, n_out)
                pooled -= n_out
                yield from out
    if pooled:
        out, _ = emit(pool, pooled)
        yield from out


def read_ahead(items, depth: int = 2):
    """Iterate ``items`` while a background thread computes up to ``depth`` items ahead.

    The streamed training needs its next chunk of batches (shard reads, unpacking, shuffling: all
    numpy) made while the current chunk trains. tf.data's ``prefetch`` cannot do that here: with
    ``tf.config.experimental.enable_op_determinism()`` (which seeded training turns on) TensorFlow
    disables prefetching in any pipeline that runs a stateful op, and ``Dataset.from_generator`` is
    one (TensorFlow's documentation of ``enable_op_determinism``, "Determinism and tf.data", item 4).
    One producer thread and a FIFO queue keep the order, so the items are exactly those of
    ``items``; TensorFlow releases the GIL while it trains, so the thread runs beside the step.

    An exception raised by ``items`` is raised here, at the item where it happened. Closing this
    generator (or dropping it) stops the thread after its current item.

    Used in: :func:`qbdi_utils.training.train` (streaming); tests/test_train_scale.py.
    """
    if int(depth) < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    q: queue.Queue = queue.Queue(maxsize=int(depth))
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put((None, item)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put((exc, None))
            return
        put((None, done))

    worker = threading.Thread(target=produce, name="qbdi-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            exc, item = q.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()


#: Batches per element of the streamed tf.data pipeline (see :func:`stream_dataset`).
_STREAM_CHUNK_BATCHES = 32


def stream_dataset(source, train_mask: np.ndarray, cfg, *, first_epoch: int, last_epoch: int,
                    pairs: bool, shuffle_frames: int):
    """One tf.data pipeline of epochs ``first_epoch .. last_epoch - 1`` of
    :func:`training_batches`, in chunks made ahead of the step.

    numpy makes the batches (shard reads, unpacking, shuffle buffer) in the generator, which runs
    in a background thread two chunks ahead of the step (:func:`read_ahead`): tf.data's own
    ``prefetch`` does not run ahead once op determinism is on (seeded training turns it on), so
    before, every chunk was made while the step waited (0.04-0.15 s at each epoch's start for the
    shuffle buffer, about 0.01 s per other chunk, 10-15% of a 1.4 s epoch on an 8,000-frame
    corpus). Each element is a *chunk*: up to
    :data:`_STREAM_CHUNK_BATCHES` consecutive full batches stacked; a chunk ends early at a smaller
    batch and at the end of an epoch, so cutting a chunk into ``batch_size`` rows gives back exactly
    the generator's batches and no chunk spans two epochs. The training loop runs a chunk's batches
    in one graph, as the in-memory loop runs an epoch (iterating the dataset batch by batch inside
    the graph trained about a third slower on two cores: one IteratorGetNext between every two
    steps). One pipeline serves the whole run, so the next epoch's first shards are read and
    shuffled while the current epoch's last chunks train; a pipeline per epoch made every epoch wait
    for its shuffle buffer to fill first (0.1 s of a 1.4 s epoch on an 8,000-frame corpus).
    """
    import tensorflow as tf

    D, B = int(source.frame_size), int(cfg.batch_size)

    def chunks():
        for epoch in range(int(first_epoch), int(last_epoch)):
            parts: list = []

            def flush():
                out = tuple(np.concatenate([p[k] for p in parts]) for k in range(len(parts[0])))
                parts.clear()
                return out

            for b in training_batches(source, train_mask, B, seed=int(cfg.seed), epoch=epoch,
                                                 shuffle_frames=shuffle_frames, pairs=pairs):
                parts.append(b)
                if len(b[0]) < B or len(parts) == _STREAM_CHUNK_BATCHES:
                    yield flush()
            if parts:
                yield flush()

    sig = (tf.TensorSpec((None, D), tf.uint8),)
    if pairs:
        sig += (tf.TensorSpec((None, D), tf.uint8), tf.TensorSpec((None,), tf.float32))
    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    # prefetch(2) does not run ahead under op determinism (read_ahead does), but without it ending
    # the pipeline after the last epoch stalled for 6.6-8.9 s in 3 of 6 runs (0.002 s with it);
    # the cause inside tf.data is not known
    return (tf.data.Dataset.from_generator(lambda: read_ahead(chunks(), depth=2), output_signature=sig)
            .prefetch(2).with_options(options))


def gather_frames(source, indices: np.ndarray) -> np.ndarray:
    """The frames at sorted global indices, read shard by shard (only shards holding some).

    Args:
        source: a frame source.
        indices: sorted int array of frame positions in the source's order.

    Returns:
        (len(indices), D) uint8 frames, in the order of ``indices``.

    Used in: :func:`qbdi_utils.training.train` (held-out sets when streaming).
    """
    off, pid = _check_source(source)
    idx = np.asarray(indices, dtype=np.int64)
    out = np.empty((len(idx), int(source.frame_size)), np.uint8)
    if not len(idx):
        return out
    if np.any(np.diff(idx) < 0) or idx[0] < 0 or idx[-1] >= len(pid):
        raise ValueError("indices must be sorted positions inside the source")
    shard = np.searchsorted(off, idx, side="right") - 1
    for i in np.unique(shard):
        sel = np.flatnonzero(shard == i)
        out[sel] = _read(source, int(i), off, pid)[idx[sel] - off[i]]
    return out


class ArraySource:
    """A frame source over an array of frames: a numpy array or a memory-mapped ``.npy``.

    ``ArraySource(np.load("frames.npy", mmap_mode="r"), groups)`` streams a frames file larger
    than memory (only the shard being read is paged in).

    Args:
        frames: (N, D) binary frames (any dtype holding 0/1), the frames of a piece consecutive
            and in time order.
        groups: (N,) piece label per frame (any sortable labels), or None: then all frames are one
            piece (as ``training.successor_index`` reads None), cut into shards anyway, so the
            predictor head loses the pair at each shard boundary; ``pieces_known`` is False and
            training splits frame by frame (as in-memory training without groups does).
        shard_frames: target frames per shard; shards end at piece boundaries, a piece longer than
            this is one shard of its own.

    Attributes:
        n_frames, frame_size, shard_sizes, piece_index (int32 ids: the rank of each label among
        the sorted distinct labels), pieces_known; :meth:`read_shard`, :meth:`frames_fingerprint`.

    Raises:
        OptionError: frames not 2-D, groups of the wrong length, shard_frames < 1.

    Used in: ``train(frames, stream=True)``, tests/test_train_scale.py.
    """

    def __init__(self, frames: np.ndarray, groups: np.ndarray | None = None, *,
                 shard_frames: int = DEFAULT_SHARD_FRAMES):
        self._frames = frames if isinstance(frames, np.ndarray) else np.asarray(frames)
        if self._frames.ndim != 2:
            raise OptionError(f"frames must be a 2-D array (N, frame_size), got shape {self._frames.shape}")
        if int(shard_frames) < 1:
            raise OptionError(f"shard_frames must be >= 1, got {shard_frames}")
        n = len(self._frames)
        self.n_frames, self.frame_size = int(n), int(self._frames.shape[1])
        self.pieces_known = groups is not None
        if groups is None:
            self.piece_index = np.zeros(n, np.int32)
            starts = np.arange(0, n, int(shard_frames))
        else:
            g = np.asarray(groups)
            if len(g) != n:
                raise OptionError(f"groups must have {n} entries, got {len(g)}")
            self.piece_index = np.unique(g, return_inverse=True)[1].astype(np.int32).reshape(-1)
            run_starts = np.concatenate([[0], np.flatnonzero(g[1:] != g[:-1]) + 1]) if n else np.zeros(0, int)
            starts, size = [], 0
            for k, s in enumerate(run_starts):
                end = run_starts[k + 1] if k + 1 < len(run_starts) else n
                if not starts or size + (end - s) > int(shard_frames) and size > 0:
                    starts.append(int(s))
                    size = 0
                size += int(end - s)
            starts = np.asarray(starts, dtype=np.int64)
        bounds = np.concatenate([starts, [n]]).astype(np.int64)
        self._bounds = bounds
        self.shard_sizes = [int(b - a) for a, b in zip(bounds[:-1], bounds[1:])]

    def read_shard(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(frames uint8 (n_i, D), piece ids int32 (n_i,)) of shard i."""
        a, b = int(self._bounds[i]), int(self._bounds[i + 1])
        return (np.asarray(self._frames[a:b]) != 0).astype(np.uint8), self.piece_index[a:b]

    def frames_fingerprint(self) -> str:
        """``model.frames_fingerprint`` of the frames, computed shard by shard."""
        return stream_fingerprint(self)


class SyntheticSource:
    """A frame source of synthetic chord frames made shard by shard (``model.synthetic_frames``).

    Nothing proportional to N x D is ever held, so it measures the memory of streaming training
    on corpora of any size: ``train(SyntheticSource(500_000), epochs=1, ...)``.

    Args:
        n_frames: N.
        seed: seed of the frames (shard i is ``synthetic_frames(n_i, seed=[seed, i])``).
        piece_frames: frames per piece (the last piece may be shorter).
        shard_frames: frames per shard (rounded down to whole pieces, at least one piece).
        spec: roll layout (default RollSpec()).

    Used in: benchmarks/bench_scale.py, tests/test_train_scale.py.
    """

    pieces_known = True

    def __init__(self, n_frames: int, seed: int = 0, *, piece_frames: int = 16,
                 shard_frames: int = DEFAULT_SHARD_FRAMES, spec: RollSpec | None = None):
        if int(n_frames) < 1 or int(piece_frames) < 1:
            raise OptionError(f"n_frames and piece_frames must be >= 1, got {n_frames}, {piece_frames}")
        self.spec = RollSpec() if spec is None else spec
        self.n_frames, self.frame_size, self.seed = int(n_frames), int(self.spec.frame_size), int(seed)
        per = max(int(piece_frames), (int(shard_frames) // int(piece_frames)) * int(piece_frames))
        bounds = list(range(0, self.n_frames, per)) + [self.n_frames]
        self._bounds = np.asarray(bounds, dtype=np.int64)
        self.shard_sizes = [int(b - a) for a, b in zip(bounds[:-1], bounds[1:])]
        self.piece_index = (np.arange(self.n_frames) // int(piece_frames)).astype(np.int32)

    def read_shard(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(frames uint8 (n_i, D), piece ids int32 (n_i,)) of shard i, generated afresh."""
        a, b = int(self._bounds[i]), int(self._bounds[i + 1])
        return synthetic_frames(b - a, seed=[self.seed, int(i)], spec=self.spec), self.piece_index[a:b]

    def frames_fingerprint(self) -> str:
        """``model.frames_fingerprint`` of all the frames, generated shard by shard."""
        return stream_fingerprint(self)
