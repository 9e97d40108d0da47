"""One training run: frames (or a frame source) in, a trained and measured :class:`StyleVAE` out.

:func:`train` splits the frames by piece (:mod:`qbdi_utils.training.split`), fits the networks
(:mod:`qbdi_utils.training.fit`), chooses the decoding threshold on the validation pieces
(:mod:`qbdi_utils.training.threshold`), scores the validation and test pieces
(:mod:`qbdi_utils.training.scores`) and records the corpus statistics of the latent means.

**Streaming** (a frame source, or ``stream=True``): the training frames are read shard by shard
through tf.data (:func:`qbdi_utils.training.stream.training_batches`: shards in a seeded order, a
bounded shuffle buffer, whole batches made in numpy, two chunks ahead in a background thread:
:func:`qbdi_utils.training.stream.read_ahead`) and each epoch iterates them inside one
``tf.function`` with the same XLA step as in memory. Memory stays flat as the corpus grows: only
O(N) small integers (piece ids, split indices, successor indices) are held for the whole corpus.
The split is the same as in memory (same seed, same pieces); held-out sets are capped at
``max_eval_frames`` frames each (default :data:`STREAM_EVAL_FRAMES`, whole pieces chosen by seed:
:func:`qbdi_utils.training.split.cap_held_out`) and gathered shard by shard; ``corpus_stats`` are
the exact mean and variance of the latent means over the training frames (as in memory: held-out
pieces never shape the model), accumulated shard by shard; the fingerprint is the source's
``frames_fingerprint()``. What is guaranteed: same seed -> same weights (same machine, same source
and shards); the same training frames, split, initial weights and per-epoch frame count as in
memory, but another shuffle order and noise draws, so the loss curves agree only statistically
(within a few percent on small corpora), not bit for bit. The predictor head pairs consecutive
frames of one piece inside one shard.

**Several devices** (``devices=N > 1``): data-parallel training under a
``tf.distribute.MirroredStrategy`` over the first N GPUs (or N logical CPU devices:
:func:`qbdi_utils.training.devices.split_cpu`, which must run before TensorFlow starts; ``train``
tries it itself). The GLOBAL batch stays ``batch_size``: each step draws the global batch and its
noise once, each replica trains on its slice (its loss = its sum / the global batch size) and the
gradients are summed across replicas, so N devices follow the 1-device run up to floating-point
rounding. Variables (encoder, decoder, predictor, Adam's slots) live under the strategy.
Multi-worker: set ``TF_CONFIG`` on every machine (cluster: the list of workers, task: this
worker's index), run the SAME command (same corpus, seed and ``devices``) on each; training then
uses ``MultiWorkerMirroredStrategy``; every worker returns the same model and only the chief
(:func:`qbdi_utils.training.devices.is_chief`, worker 0) should save it. Example, two machines::

    TF_CONFIG='{"cluster": {"worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 0}}' \\
        qbdi train --corpus DIR --devices 1 --out model   # on b: "index": 1

Imports: errors, pianoroll, model, training.devices, training.epochs, training.fit, training.scores,
training.split, training.stream, training.tf_loop, training.threshold.
Used in: notebooks/02_vae_training.ipynb, ``qbdi train``, benchmarks/bench_scale.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from qbdi_utils.errors import CorpusError, OptionError
from qbdi_utils.model import PRESETS, StyleVAE, VAEConfig, frames_fingerprint, import_keras
from qbdi_utils.pianoroll import RollSpec
from qbdi_utils.training import devices as devices_mod
from qbdi_utils.training import stream as stream_mod
from qbdi_utils.training.epochs import EpochProgress, validation_inputs
from qbdi_utils.training.fit import FIT_DEFAULTS, fit_function, make_trainer, seed_everything
from qbdi_utils.training.scores import set_scores
from qbdi_utils.training.split import (
    TEST_STREAM, VALIDATION_STREAM, cap_held_out, eval_noise, split_pieces, subset_successors, successor_index,
)
from qbdi_utils.training.threshold import THRESHOLD_GRID, choose_threshold
from qbdi_utils.training.tf_loop import tf_fit

__all__ = ["STREAM_EVAL_FRAMES", "train"]


#: Frames per held-out set (validation, test) when streaming and ``max_eval_frames`` is not given.
STREAM_EVAL_FRAMES = 2000


def _latent_stats_streamed(model: StyleVAE, source, train_idx: np.ndarray) -> dict:
    """Mean and variance of the latent means over the TRAINING frames of a frame source, shard by shard.

    Chan et al.'s pairwise update of (count, mean, sum of squared deviations) in float64: the same
    numbers as ``mean.var(axis=0)`` over the concatenated training frames, up to rounding.
    """
    L = model.latent_dim
    keep = np.zeros(int(source.n_frames), bool)
    keep[np.asarray(train_idx, np.int64)] = True
    n_tot, mean, m2 = 0, np.zeros(L), np.zeros(L)
    off = 0
    for frames in stream_mod.read_shards(source):
        sel = keep[off:off + len(frames)]
        off += len(frames)
        frames = frames[sel]
        if not len(frames):
            continue
        mu = model.encode(frames)[0].astype(np.float64)
        nb, mb = len(mu), mu.mean(axis=0)
        delta, tot = mb - mean, n_tot + len(mu)
        m2 = m2 + ((mu - mb) ** 2).sum(axis=0) + delta ** 2 * (n_tot * nb / tot)
        mean = mean + delta * (nb / tot)
        n_tot = tot
    return {"mean": mean, "var": m2 / max(n_tot, 1)}


def train(frames, *, spec: RollSpec | None = None, groups: np.ndarray | None = None,
          config: VAEConfig | None = None, progress: bool = True, fit_options: dict | None = None,
          stream: bool | None = None, max_eval_frames: int | None = None, devices: int | None = None,
          shuffle_frames: int | None = None, **fields) -> tuple[StyleVAE, dict]:
    """Train a style VAE on frames (Adam, loss D + beta R [+ gamma P]), choose its threshold, measure it.

    The loss per frame is D + beta * R in nats: beta weighs the RATE (beta-VAE convention; the
    paper's Appendix-B beta weighs the distortion, so beta = 1 / beta_paper up to scale). With
    gamma > 0 it is D + beta R + gamma P, P the mean over the batch's pairs of CE(x_{t+1} | z_t) of
    the predictor head (nats per pair; a piece's last bar has no pair and counts in D and R only:
    :func:`qbdi_utils.model.predictive_terms`); pairs never cross a piece (``groups``) or a side of
    the split. gamma = 0 trains exactly the model without a head. The frames are split by piece
    (:func:`split_pieces`); the threshold is chosen on validation, every "held-out" number comes
    from test. Streaming and several devices: see the module docstring.

    Args:
        frames: (N, spec.frame_size) binary frames, N >= 3 (>= 2 with test_fraction 0); the frames
            of one piece consecutive and in time order. Or a *frame source*
            (:mod:`qbdi_utils.training.stream`: e.g. ``shards_view.ShardedCorpus``, ``stream.ArraySource``),
            which is always streamed and carries its own pieces.
        spec: roll layout of the frames (default RollSpec()).
        groups: optional (N,) group label per frame (e.g. ``corpus.piece_index``); whole groups go
            to one side of the split, so held-out bars come from unseen pieces. Not with a source.
        config: base configuration (default ``PRESETS["paper"]``); ``input_dim`` is set from spec.
        progress: show a tqdm progress bar.
        fit_options: speed settings {"jit_compile": bool|"auto", "steps_per_execution": int,
            "loop": "auto"|"keras"} (see :func:`fit_function`); they do not change the model.
            Streaming and several devices always use the project's TensorFlow loop.
        stream: None (default: stream a frame source, keep an array in memory), True (stream an
            array too, through ``stream.ArraySource``), False (in memory; refused for a source).
            :func:`qbdi_utils.training.stream.should_stream` decides from a memory budget.
        max_eval_frames: cap on the frames of each held-out set (whole pieces chosen by seed);
            None = no cap in memory, :data:`STREAM_EVAL_FRAMES` when streaming.
        devices: None or 1 (one device), N > 1 (data-parallel over N local devices); with
            ``TF_CONFIG`` set, any N selects the multi-worker strategy.
        shuffle_frames: streaming's shuffle buffer (default ``stream.DEFAULT_SHUFFLE_FRAMES``): 2.5 KB
            a frame, 5 KB with gamma > 0.
        **fields: VAEConfig fields overriding the config: hidden_dim, latent_dim (paper 500, 500),
            beta (weight of R, >= 0), epochs, batch_size, learning_rate, validation_fraction,
            test_fraction, seed (seeds weights, noise, shuffling and the split: same seed, same
            weights), gamma (weight of the predictive term, >= 0; 0 = no predictor head).

    Returns:
        (model, history): history has per-epoch lists ``loss``, ``d_nats``, ``r_nats`` (running
        means over the epoch's training batches) and ``val_loss``, ``val_d_nats``, ``val_r_nats``
        (validation frames after the epoch), all in nats per frame, plus ``epoch`` (1-based),
        ``epoch_seconds`` (training wall time per epoch, TensorFlow loops), ``train_idx``,
        ``validation_idx``, ``test_idx`` (the held-out sets as scored, i.e. after any cap),
        ``threshold_grid``, ``threshold_f1`` (validation F1 per grid threshold); with gamma > 0
        also ``p_nats``, ``val_p_nats`` and ``n_pairs`` (training pairs (x_t, x_{t+1})).
        ``model.info`` holds ``validation_*`` and ``test_*`` (= ``held_out_*``) R, D, loss,
        precision, recall, F1; streamed or multi-device runs also ``streamed``, ``devices`` and
        ``max_eval_frames``.

    Raises:
        OptionError: frames of the wrong shape, a field unknown or out of range, too few frames,
            groups or stream=False with a frame source, streaming or devices on a non-TensorFlow
            backend, more devices than there are.
        TrainingDivergedError: (an OptionError) the training loss became NaN or infinite (checked
            after every epoch, e.g. ``beta=inf`` or a huge learning rate); no model is returned.
        CorpusError: a frame source whose shards disagree with its sizes or piece ids.

    Used in: notebooks/02_vae_training.ipynb, ``qbdi train``, benchmarks/bench_scale.py.
    """
    spec = RollSpec() if spec is None else spec
    x, source = _frames_or_source(frames, spec, groups, stream)
    cfg = (PRESETS["paper"] if config is None else config).replace(input_dim=spec.frame_size, **fields)
    _check_limits(max_eval_frames, shuffle_frames)
    if source is None and stream:
        if groups is not None and len(groups) != len(x):
            raise ValueError(f"groups must have {len(x)} entries, got {len(groups)}")
        source = stream_mod.ArraySource(x, groups)
    _check_backend(source is not None or devices not in (None, 1))
    run = _Run(spec, cfg, progress, fit_options, max_eval_frames, devices_mod.strategy_for(devices))
    if source is None:
        return _train_in_memory(x, groups, run)
    return _train_streamed(source, replace(
        run, max_eval_frames=STREAM_EVAL_FRAMES if max_eval_frames is None else int(max_eval_frames),
        shuffle_frames=stream_mod.DEFAULT_SHUFFLE_FRAMES if shuffle_frames is None else int(shuffle_frames)))


def _frames_or_source(frames, spec: RollSpec, groups, stream):
    """(frames as an array, None) or (None, the frame source), checked against the roll layout."""
    if stream_mod.is_frame_source(frames):
        if stream is False:
            raise OptionError("a frame source is always streamed; pass an array to train in memory")
        if groups is not None:
            raise OptionError("a frame source carries its own pieces (piece_index); do not pass groups")
        if int(frames.frame_size) != spec.frame_size:
            raise OptionError(f"the frame source holds frames of {frames.frame_size} cells, the roll "
                              f"layout has {spec.frame_size}")
        return None, frames
    x = np.asarray(frames)
    if x.ndim != 2 or x.shape[1] != spec.frame_size:
        raise OptionError(f"frames must have shape (N, {spec.frame_size}), got {x.shape}")
    return x, None


def _check_limits(max_eval_frames, shuffle_frames) -> None:
    """Refuse a held-out cap or a shuffle buffer below one frame (OptionError)."""
    if max_eval_frames is not None and int(max_eval_frames) < 1:
        raise OptionError(f"max_eval_frames must be >= 1, got {max_eval_frames}")
    if shuffle_frames is not None and int(shuffle_frames) < 1:
        raise OptionError(f"shuffle_frames must be >= 1, got {shuffle_frames}")


def _check_backend(needs_tensorflow: bool) -> None:
    """Refuse streaming or several devices on a Keras backend other than TensorFlow (OptionError)."""
    keras = import_keras()
    if needs_tensorflow and keras.backend.backend() != "tensorflow":
        raise OptionError("streaming and multi-device training need the TensorFlow backend "
                          f"(KERAS_BACKEND is {keras.backend.backend()!r})")


@dataclass(frozen=True)
class _Run:
    """The settings of one :func:`train` call, as they travel to the fit and the finish."""

    spec: RollSpec
    cfg: VAEConfig
    progress: bool
    fit_options: dict | None
    max_eval_frames: int | None
    strategy: object
    shuffle_frames: int | None = None

    @property
    def n_devices(self) -> int:
        return self.strategy.num_replicas_in_sync if self.strategy is not None else 1


@dataclass(frozen=True)
class _Split:
    """The split of one run: indices (into all N frames), held-out frames and successor positions."""

    n_frames: int
    groups: np.ndarray | None
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray
    next_tr: np.ndarray
    next_val: np.ndarray
    next_test: np.ndarray


def _split_indices(n: int, groups, cfg: VAEConfig, max_eval_frames):
    """(train_idx, val_idx, test_idx): the split by piece, each held-out set capped."""
    train_idx, val_idx, test_idx = split_pieces(n, cfg.validation_fraction, cfg.test_fraction,
                                                cfg.effective_split_seed, groups)
    val_idx = cap_held_out(val_idx, groups, max_eval_frames, cfg.effective_split_seed, "validation")
    test_idx = cap_held_out(test_idx, groups, max_eval_frames, cfg.effective_split_seed, "test")
    return train_idx, val_idx, test_idx


def _timed(fit, epochs: int):
    """(history, seconds) of ``fit(epochs)``."""
    t0 = time.perf_counter()
    hist = fit(epochs)
    return hist, time.perf_counter() - t0


def _train_in_memory(x, groups, run: _Run):
    """:func:`train` on an in-memory array (the fast path; with a strategy, the data-parallel loop)."""
    cfg, spec, strategy = run.cfg, run.spec, run.strategy
    x = (x != 0).astype(np.uint8)
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(x):
            raise ValueError(f"groups must have {len(x)} entries, got {len(groups)}")
        if len(groups):
            # the longest training piece, so that improvise can warn about queries longer than any
            _, piece_of_frame = np.unique(groups, return_inverse=True)
            cfg = cfg.replace(max_piece_frames=int(np.bincount(piece_of_frame).max()))
            run = replace(run, cfg=cfg)
    train_idx, val_idx, test_idx = _split_indices(len(x), groups, cfg, run.max_eval_frames)
    nxt = successor_index(groups, len(x))
    next_tr, next_val, next_test = (subset_successors(nxt, idx) for idx in (train_idx, val_idx, test_idx))
    split = _Split(len(x), groups, train_idx, val_idx, test_idx, x[val_idx], x[test_idx],
                   next_tr, next_val, next_test)
    x_tr = x[train_idx]

    seed_everything(cfg.seed)
    callbacks = [EpochProgress(cfg.epochs, run.progress)]
    if strategy is None:
        trainer = make_trainer(cfg, cfg.seed, run.fit_options)
        fit = fit_function(trainer, x_tr, cfg, split.x_val, callbacks=callbacks, fit_options=run.fit_options,
                           next_tr=next_tr, next_val=next_val, n_pitches=spec.n_pitches)
    else:
        with strategy.scope():
            trainer = make_trainer(cfg, cfg.seed, run.fit_options)
        fit = tf_fit(trainer, cfg, {"x": x_tr, "next": next_tr, "n_pitches": spec.n_pitches},
                     validation_inputs(split.x_val, cfg, next_val), callbacks=callbacks,
                     opts={**FIT_DEFAULTS, **(run.fit_options or {})}, strategy=strategy)
    hist, train_seconds = _timed(fit, cfg.epochs)
    extra = {}
    if strategy is not None or run.max_eval_frames is not None:
        extra = {"streamed": False, "devices": run.n_devices, "max_eval_frames": run.max_eval_frames}
    return _finish(trainer, hist, train_seconds, run, split, fingerprint=frames_fingerprint(x),
                   stats=lambda model: _latent_stats(model, x_tr), extra=extra)


def _latent_stats(model: StyleVAE, x: np.ndarray) -> dict:
    """Mean and variance over the frames x (the training frames) of the latent means (float64)."""
    mean, _ = model.encode(x)
    return {"mean": mean.astype(np.float64).mean(axis=0), "var": mean.astype(np.float64).var(axis=0)}


def _train_streamed(source, run: _Run):
    """:func:`train` on a frame source, streamed (see the module docstring)."""
    cfg, strategy = run.cfg, run.strategy
    n = int(source.n_frames)
    pid = np.asarray(source.piece_index)
    if len(pid) != n:
        raise CorpusError(f"frame source is inconsistent: piece_index has {len(pid)} entries, "
                          f"n_frames is {n}")
    known = bool(getattr(source, "pieces_known", True))
    groups = pid if known else None
    if known and n:
        cfg = cfg.replace(max_piece_frames=int(np.unique(pid, return_counts=True)[1].max()))
        run = replace(run, cfg=cfg)
    train_idx, val_idx, test_idx = _split_indices(n, groups, cfg, run.max_eval_frames)
    nxt = stream_mod.source_successors(source)
    next_tr, next_val, next_test = (subset_successors(nxt, idx) for idx in (train_idx, val_idx, test_idx))
    del nxt
    split = _Split(n, groups, train_idx, val_idx, test_idx, stream_mod.gather_frames(source, val_idx),
                   stream_mod.gather_frames(source, test_idx), next_tr, next_val, next_test)
    mask = np.zeros(n, dtype=bool)
    mask[train_idx] = True

    seed_everything(cfg.seed)
    if strategy is None:
        trainer = make_trainer(cfg, cfg.seed, run.fit_options)
    else:
        with strategy.scope():
            trainer = make_trainer(cfg, cfg.seed, run.fit_options)
    feed = {"source": source, "mask": mask, "n_train": len(train_idx), "shuffle_frames": run.shuffle_frames,
            "n_pitches": run.spec.n_pitches}
    fit = tf_fit(trainer, cfg, feed, validation_inputs(split.x_val, cfg, next_val),
                 callbacks=[EpochProgress(cfg.epochs, run.progress)],
                 opts={**FIT_DEFAULTS, **(run.fit_options or {})}, strategy=strategy)
    hist, train_seconds = _timed(fit, cfg.epochs)
    extra = {"streamed": True, "devices": run.n_devices, "max_eval_frames": run.max_eval_frames,
             "shuffle_frames": run.shuffle_frames}
    return _finish(trainer, hist, train_seconds, run, split, fingerprint=source.frames_fingerprint(),
                   stats=lambda model: _latent_stats_streamed(model, source, train_idx), extra=extra)


def _finish(trainer, hist: dict, train_seconds: float, run: _Run, split: _Split, *, fingerprint: str,
            stats, extra: dict):
    """The trained model with its threshold, held-out scores, corpus statistics, info and history."""
    keras = import_keras()
    spec, cfg, groups = run.spec, run.cfg, split.groups
    train_idx, val_idx, test_idx = split.train_idx, split.val_idx, split.test_idx
    x_val, x_test = split.x_val, split.x_test
    next_tr, next_val, next_test = split.next_tr, split.next_val, split.next_test
    n_frames = split.n_frames
    g_val = None if groups is None else groups[val_idx]
    g_test = None if groups is None else groups[test_idx]
    model = StyleVAE(trainer.encoder, trainer.decoder, spec=spec, config=cfg,
                     fingerprint=fingerprint, predictor=trainer.predictor)
    model.threshold, f1_grid = choose_threshold(x_val, model.reconstruct(x_val), spec=spec, groups=g_val)
    L = cfg.latent_dim
    info_scores = set_scores(model, x_val, g_val, eval_noise(cfg.seed, VALIDATION_STREAM, len(x_val), L),
                             "validation", next_val)
    if len(x_test):
        info_scores.update(set_scores(model, x_test, g_test,
                                      eval_noise(cfg.seed, TEST_STREAM, len(x_test), L), "test", next_test))
    reported = "test" if len(x_test) else "validation"
    for k in ("d_nats", "r_nats", "loss_nats", "precision", "recall", "f1") + (
            ("p_nats",) if model.has_predictor else ()):
        info_scores[f"held_out_{k}"] = info_scores[f"{reported}_{k}"]
    model.corpus_stats = stats(model)
    curves = ("loss", "d_nats", "r_nats", "val_loss", "val_d_nats", "val_r_nats") + (
        ("p_nats", "val_p_nats") if model.has_predictor else ())
    history = {k: [float(v) for v in hist[k]] for k in curves}
    n_run = len(history["loss"])  # fewer than cfg.epochs when early stopping ended the run
    history.update({
        "epoch": list(range(1, n_run + 1)),
        "train_idx": train_idx, "validation_idx": val_idx, "test_idx": test_idx,
        "threshold_grid": THRESHOLD_GRID.tolist(), "threshold_f1": f1_grid.tolist(),
    })
    if "epoch_seconds" in hist:
        history["epoch_seconds"] = [float(v) for v in hist["epoch_seconds"]]
    if model.has_predictor:
        history["n_pairs"] = int(np.count_nonzero(next_tr >= 0))
        history["next_tr"] = next_tr
    model.info = {
        "train_seconds": round(train_seconds, 2),
        "n_frames": int(n_frames), "n_train": int(len(train_idx)), "n_validation": int(len(x_val)),
        "n_test": int(len(x_test)), "n_held_out": int(len(x_test) if len(x_test) else len(x_val)),
        "held_out_set": reported,
        **info_scores,
        "backend": keras.backend.backend(),
        **({"n_train_pairs": int(np.count_nonzero(next_tr >= 0))} if model.has_predictor else {}),
        **extra,
        "history": {k: history[k] for k in curves},
    }
    if hist.get("best_epoch") is not None or cfg.patience is not None:
        best = hist.get("best_epoch")
        model.info["epochs_run"] = int(n_run)
        model.info["best_epoch"] = None if best is None else int(best) + 1  # 1-based, as history["epoch"]
        history["best_epoch"] = model.info["best_epoch"]
    if groups is not None:
        model.info["validation_groups"] = sorted(int(g) for g in np.unique(g_val))
        model.info["test_groups"] = sorted(int(g) for g in np.unique(g_test))
    return model, history
