"""Tests of streaming (frame sources, tf.data) and data-parallel training (qbdi_utils.training: stream, devices, train).

Batches are checked against frames that carry their own index in their first cells, so which frame
(and which next bar) a batch holds is read off the data, not taken from the code under test.
Data-parallel training runs in a subprocess: logical CPU devices must be configured before
TensorFlow starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from qbdi_utils import training
from qbdi_utils.training import devices, stream
from qbdi_utils.model import frames_fingerprint, import_keras, synthetic_frames
from qbdi_utils.errors import CorpusError, OptionError

_BITS = 16  # the first 16 cells of a tagged frame hold its index in binary
_TINY = dict(hidden_dim=32, latent_dim=8, progress=False, fit_options={"jit_compile": False})


def _tagged(n: int, width: int = 64, seed: int = 0) -> np.ndarray:
    """(n, width) uint8 frames whose first 16 cells are the frame's index in binary, the rest random."""
    x = (np.random.default_rng(seed).random((n, width)) < 0.2).astype(np.uint8)
    x[:, :_BITS] = (np.arange(n)[:, None] >> np.arange(_BITS)) & 1
    return x


def _index(rows: np.ndarray) -> np.ndarray:
    """The index tags of tagged frames."""
    return (rows[:, :_BITS].astype(np.int64) << np.arange(_BITS)).sum(axis=1)


def _epoch(source, mask, B, epoch, shuffle_frames, pairs=False, seed=0):
    return list(stream.training_batches(source, mask, B, seed=seed, epoch=epoch,
                                        shuffle_frames=shuffle_frames, pairs=pairs))


# ---------------------------------------------------------------------------- the batch stream

@pytest.mark.parametrize("shuffle_frames", [16, 1000])
def test_batches_hold_each_training_frame_once_per_epoch(shuffle_frames):
    n, B = 230, 7
    groups = np.repeat(np.arange(23), 10)
    src = stream.ArraySource(_tagged(n), groups, shard_frames=40)
    assert sum(src.shard_sizes) == n and all(s % 10 == 0 for s in src.shard_sizes)  # whole pieces
    mask = np.isin(groups, np.arange(0, 23, 3), invert=True)  # every third piece held out
    orders = []
    for e in range(2):
        batches = _epoch(src, mask, B, e, shuffle_frames)
        sizes = [len(b[0]) for b in batches]
        assert all(s == B for s in sizes[:-1]) and 1 <= sizes[-1] <= B
        got = _index(np.concatenate([b[0] for b in batches]))
        assert sorted(got.tolist()) == np.flatnonzero(mask).tolist()  # exactly the training frames
        orders.append(got)
        again = _index(np.concatenate([b[0] for b in _epoch(src, mask, B, e, shuffle_frames)]))
        assert np.array_equal(again, got)  # seeded
    assert not np.array_equal(orders[0], orders[1])  # each epoch its own order
    # the buffer is shuffled, not read in order: the first batch is not the first training frames
    assert not np.array_equal(np.sort(orders[0][:B]), np.flatnonzero(mask)[:B])


def test_pairs_stay_inside_a_piece_a_shard_and_the_training_side():
    n = 120
    groups = np.repeat(np.arange(12), 10)
    x = _tagged(n)
    # groups=None: all frames one piece, cut at shard boundaries 50 and 100
    for src, grp in ((stream.ArraySource(x, groups, shard_frames=30), groups),
                     (stream.ArraySource(x, None, shard_frames=50), np.zeros(n, int))):
        bounds = set(np.cumsum(src.shard_sizes).tolist())
        mask = np.ones(n, bool)
        mask[[13, 14, 55]] = False
        seen = 0
        for xb, yb, mb in _epoch(src, mask, 8, 0, 64, pairs=True):
            for i, k in enumerate(_index(xb)):
                ok = (k + 1 < n and grp[k + 1] == grp[k] and mask[k + 1] and (k + 1) not in bounds)
                assert mb[i] == float(ok)
                if ok:
                    assert _index(yb[i:i + 1])[0] == k + 1 and np.array_equal(yb[i], x[k + 1])
                else:
                    assert not yb[i].any()
                seen += 1
        assert seen == mask.sum()
    assert stream.source_successors(stream.ArraySource(x, None, shard_frames=50))[[49, 99, 119]].tolist() == [-1] * 3


def test_sources_fingerprint_gather_and_checks():
    x = _tagged(100)
    src = stream.ArraySource(x, np.repeat(np.arange(10), 10), shard_frames=25)
    assert src.frames_fingerprint() == frames_fingerprint(x)
    idx = np.array([0, 3, 31, 77, 99])
    assert np.array_equal(stream.gather_frames(src, idx), x[idx])
    syn = stream.SyntheticSource(100, seed=2, piece_frames=16, shard_frames=40)
    assert syn.shard_sizes == [32, 32, 32, 4] and syn.piece_index[-1] == 6
    whole = np.concatenate([syn.read_shard(i)[0] for i in range(4)])
    assert syn.frames_fingerprint() == frames_fingerprint(whole)
    assert np.array_equal(syn.read_shard(1)[0], synthetic_frames(32, seed=[2, 1]))

    class Liar(stream.ArraySource):
        def read_shard(self, i):
            f, p = super().read_shard(i)
            return f, p + 1
    with pytest.raises(CorpusError, match="piece ids"):
        list(stream.read_shards(Liar(x, np.repeat(np.arange(10), 10), shard_frames=25)))


def test_should_stream_follows_the_budget():
    D = 2496
    assert not stream.should_stream(1000, D, 10 ** 9)  # 32 MB
    assert stream.should_stream(100_000, D, 10 ** 9)   # 3.2 GB
    n_edge = 10 ** 9 // (D * stream.IN_MEMORY_BYTES_PER_CELL)
    assert not stream.should_stream(n_edge, D, 10 ** 9) and stream.should_stream(n_edge + 1, D, 10 ** 9)
    with pytest.raises(OptionError):
        stream.should_stream(10, D, 0)


def test_read_ahead_keeps_order_runs_ahead_raises_in_place_and_stops():
    assert list(stream.read_ahead(iter(range(50)), depth=3)) == list(range(50))
    # it runs ahead: while the consumer holds item 0, the producer makes items 1 and 2 (a plain
    # generator would only make them on demand, and this would time out)
    reached = threading.Event()

    def items():
        for i in range(5):
            if i == 2:
                reached.set()
            yield i

    it = stream.read_ahead(items(), depth=2)
    assert next(it) == 0
    assert reached.wait(timeout=10)
    assert list(it) == [1, 2, 3, 4]

    def failing():
        yield 0
        yield 1
        raise CorpusError("shard 7 is damaged")

    got = []
    with pytest.raises(CorpusError, match="shard 7"):
        for v in stream.read_ahead(failing()):
            got.append(v)
    assert got == [0, 1]
    # closing the consumer stops the producer of an endless stream
    made = []

    def endless():
        i = 0
        while True:
            made.append(i)
            yield i
            i += 1

    it = stream.read_ahead(endless(), depth=2)
    next(it)
    it.close()
    threads = [t for t in threading.enumerate() if t.name == "qbdi-read-ahead"]
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    assert len(made) <= 4  # one handed over, two queued, one blocked in put
    with pytest.raises(ValueError):
        next(stream.read_ahead(iter([]), depth=0))


def test_cap_held_out_takes_whole_pieces_by_seed():
    groups = np.repeat(np.arange(20), np.arange(1, 21))  # piece p has p + 1 frames
    idx = np.flatnonzero(groups >= 5)
    got = training.cap_held_out(idx, groups, 40, seed=0)
    pieces = np.unique(groups[got])
    assert len(got) <= 40 and set(got) <= set(idx)
    assert all(np.count_nonzero(groups[got] == p) == p + 1 for p in pieces)  # whole pieces
    assert np.array_equal(got, training.cap_held_out(idx, groups, 40, seed=0))
    assert not np.array_equal(got, training.cap_held_out(idx, groups, 40, seed=1))
    assert np.array_equal(training.cap_held_out(idx, groups, None, seed=0), idx)
    assert len(training.cap_held_out(idx, groups, 3, seed=0)) == 3  # no piece fits: a piece's start


# ---------------------------------------------------------------------------- streamed training

@pytest.fixture(scope="module")
def corpus():
    n = 320
    x = synthetic_frames(n, seed=5)
    return x, np.repeat(np.arange(n // 10), 10)


def test_streaming_follows_in_memory_and_repeats_itself(corpus):
    x, g = corpus
    kw = dict(epochs=4, seed=1, **_TINY)
    m0, h0 = training.train(x, groups=g, **kw)
    src = stream.ArraySource(x, g, shard_frames=64)
    m1, h1 = training.train(src, **kw)
    m2, _ = training.train(src, **kw)
    # same split, same data, same initial weights; another shuffle and noise: close curves
    for k in ("train_idx", "validation_idx", "test_idx"):
        assert np.array_equal(h0[k], h1[k])
    np.testing.assert_allclose(h1["loss"], h0["loss"], rtol=0.02)
    np.testing.assert_allclose(h1["val_loss"], h0["val_loss"], rtol=0.02)
    assert h1["loss"][-1] < h1["loss"][0]
    assert m1.fingerprint == m0.fingerprint == frames_fingerprint(x)
    assert m1.config == m0.config and m1.info["streamed"] and m1.info["n_train"] == m0.info["n_train"]
    for a, b in zip(m1.get_weights(), m2.get_weights()):  # same seed, same weights
        assert np.array_equal(a, b)
    # corpus statistics over the TRAINING frames only, recomputed in one piece (float32 encoder:
    # batch shapes move the last bits of the latent means); in memory the same frames
    mu = m1.encode(x[h1["train_idx"]])[0].astype(np.float64)
    mu0 = m0.encode(x[h0["train_idx"]])[0].astype(np.float64)
    np.testing.assert_allclose(m0.corpus_stats["mean"], mu0.mean(axis=0), rtol=1e-5, atol=1e-7)
    assert not np.allclose(m0.corpus_stats["mean"], m0.encode(x)[0].astype(np.float64).mean(axis=0),
                           rtol=1e-9, atol=1e-12)  # held-out frames would move it
    np.testing.assert_allclose(m1.corpus_stats["mean"], mu.mean(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(m1.corpus_stats["var"], mu.var(axis=0), rtol=1e-5, atol=1e-7)


def test_streaming_never_trains_on_held_out_pieces_and_caps_them(corpus, monkeypatch):
    x, g = corpus
    tr, va, te = training.split_pieces(len(x), 0.25, 0.25, 2, g)
    x = x.copy()
    x[np.concatenate([va, te])] = 1  # held-out frames are all ones
    rows, epochs = [], []
    real = stream.training_batches

    def spy(*a, **k):
        epochs.append(k["epoch"])
        for b in real(*a, **k):
            rows.append(b[0])
            yield b
    monkeypatch.setattr(stream, "training_batches", spy)
    model, h = training.train(stream.ArraySource(x, g, shard_frames=50), epochs=2, seed=2,
                               validation_fraction=0.25, test_fraction=0.25, max_eval_frames=35, **_TINY)
    seen = np.concatenate(rows)
    assert len(seen) == 2 * len(tr)  # two epochs of the training frames, nothing else
    assert epochs == [0, 1]  # one pipeline for the run: each epoch read once, none read ahead of the last
    assert not seen.all(axis=1).any()
    for key, full in (("validation_idx", va), ("test_idx", te)):
        got = h[key]
        assert 0 < len(got) <= 35 and len(got) % 10 == 0 and set(got) <= set(full)  # whole pieces
    assert model.info["n_validation"] == len(h["validation_idx"]) and model.info["max_eval_frames"] == 35
    assert model.info["test_groups"] == sorted(set(g[h["test_idx"]].tolist()))


def test_streaming_gamma_pairs_inside_pieces_and_shards(corpus):
    x, g = corpus
    # two shards of 160 frames; without groups the whole array is one piece, cut between the shards
    src = stream.ArraySource(x, None, shard_frames=160)
    model, h = training.train(src, epochs=2, seed=0, gamma=0.5, **_TINY)
    nxt = h["next_tr"]
    tr = h["train_idx"]
    pairs = [(tr[i], tr[j]) for i, j in enumerate(nxt) if j >= 0]
    assert h["n_pairs"] == len(pairs) > 0
    assert all(b == a + 1 and not (a < 160 <= b) for a, b in pairs)
    in_tr = set(tr.tolist())
    expected = sum(1 for a in in_tr if a + 1 in in_tr and a != 159)  # independent count
    assert h["n_pairs"] == expected
    assert np.isfinite(h["p_nats"]).all() and model.has_predictor


def test_frame_source_misuse_is_refused(corpus):
    x, g = corpus
    src = stream.ArraySource(x, g)
    with pytest.raises(OptionError, match="always streamed"):
        training.train(src, stream=False, **_TINY)
    with pytest.raises(OptionError, match="own pieces"):
        training.train(src, groups=g, **_TINY)
    with pytest.raises(OptionError, match="max_eval_frames"):
        training.train(x, max_eval_frames=0, **_TINY)


def test_split_cpu_after_tensorflow_started_is_one_clear_error():
    import_keras()
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # the runtime is up now
    assert devices.split_cpu(1)  # nothing to change
    with pytest.raises(OptionError, match="start of the program"):
        devices.split_cpu(len(tf.config.list_logical_devices("CPU")) + 1)


# ---------------------------------------------------------------------------- several devices

_MIRRORED = textwrap.dedent("""
    import json, time, numpy as np
    from qbdi_utils import training
    from qbdi_utils.training import devices
    from qbdi_utils.model import frames_fingerprint, import_keras, synthetic_frames
    devices.split_cpu(2)
    from qbdi_utils import training
    from qbdi_utils.training import stream
    from qbdi_utils.model import frames_fingerprint, import_keras, synthetic_frames
    x = synthetic_frames(200, seed=3); g = np.repeat(np.arange(20), 10)
    kw = dict(hidden_dim=32, latent_dim=8, epochs=3, seed=4, batch_size=40, progress=False,
              fit_options={"jit_compile": False})
    out = {}
    for name, data, groups, gamma in (("memory", x, g, 0.0),
                                      ("stream", stream.ArraySource(x, g, shard_frames=60), None, 0.5)):
        t0 = time.perf_counter()
        m1, h1 = training.train(data, groups=groups, gamma=gamma, **kw)
        t1 = time.perf_counter()
        m2, h2 = training.train(data, groups=groups, gamma=gamma, devices=2, **kw)
        print(name, round(t1 - t0, 1), round(time.perf_counter() - t1, 1))
        out[name] = {"loss1": h1["loss"], "loss2": h2["loss"], "val1": h1["val_loss"],
                     "val2": h2["val_loss"], "devices": m2.info["devices"]}
    print(json.dumps(out))
""")


def test_two_devices_follow_one_device_within_one_percent():
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    run = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for name, r in out.items():
        assert r["devices"] == 2
        for a, b in (("loss1", "loss2"), ("val1", "val2")):
            rel = np.abs(np.subtract(r[b], r[a])) / np.abs(r[a])
            print(f"{name} {a[:-1]}: max relative difference 1 vs 2 devices {rel.max():.2e}")
            assert rel.max() <= 0.01
