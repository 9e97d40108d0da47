"""Training throughput of the paper's VAE against the machine's float32 matmul peak, measured through TensorFlow.

Prints one JSON line. The roofline:
    peak_flops_per_s        best float32 FLOP/s of large square matmuls (n x n times n x n, 2 n^3
                            FLOP; sizes --peak-sizes, default 1024 and 2048) run by TensorFlow, the
                            framework that trains, in a tf.function, both with XLA (what the training
                            step uses) and without (TensorFlow's own kernels); best of the timed
                            windows after a warm-up
    peak_gflops_by_size     {size: best GFLOP/s over kernels and windows}, and
    peak_gflops_by_kernel   {"xla-<size>" / "tf-<size>": best GFLOP/s}, to see where the peak came from
Training, for the paper's batch 100 ("batch100_") and for a big batch for large corpora ("batchB_",
B = big_batch, learning rate big_batch_learning_rate):
    <b>_samples_per_s       frames per second of the project's training loop (make_trainer and
                            fit_function: the compiled trainer ``qbdi train`` uses), best epoch
                            over --frames synthetic frames, after a warm-up epoch
    <b>_train_flops_per_s   samples_per_s x 6 x matmul_params. This counts the dense layers' matmul
                            FLOPs only: per frame and per weight, 2 for the forward product and 2 each
                            for the two backward products (input gradient, weight gradient); biases,
                            activations, the loss, sampling and Adam are not counted, so it is a lower
                            bound on the work done and its ratio to the peak is an honest "fraction
                            of the machine" for this matmul-dominated model
    <b>_train_fraction_of_peak  train_flops_per_s / peak_flops_per_s
    <b>_heldout_loss_nats   held-out loss (D + beta R, nats per frame, test pieces) of a model trained
                            by training.train for a FIXED number of samples (--quality-epochs passes over
                            the training split, the same for every batch), so that speed is not
                            bought with a worse model; on the Bach chorales (the first run parses
                            them into the corpus cache), or synthetic frames with --corpus synthetic
    <b>_heldout_f1          note F1 of that model's written outputs on the same test pieces
Kept for comparison only, under a label that says what it is:
    numpy_gemm_ratio_haswell_kernels  batch-100 training FLOP/s over numpy's FLOP/s on the model's own
                            small matmul shapes (100 x 2496 x 500 ...). numpy here is OpenBLAS built
                            with Haswell (AVX2) as its base kernels (``numpy_blas``), a different
                            library from the one that trains, run on shapes far too small to reach
                            the machine's peak: the ratio went above 1 ("faster than the roofline")
                            and is NOT a roofline.

Timings are interleaved: every round runs the peak windows, a batch-100 epoch, a batch-B epoch and
a numpy window (with pauses so that spinning BLAS threads do not steal the next phase's cores), and
the best of each is reported, so a neighbour's load on the shared cores hits all of them alike. The
per-round median fractions, the spreads (max/min over rounds) of the peak and of each training rate,
and the load average are printed too: a spread above ~1.3 means the run was contended and its
numbers are not trustworthy; rerun on a quiet machine. ``contended`` is true when a spread exceeds
1.3, a training fraction exceeds 1 (training cannot beat the peak: the peak windows were starved) or
the 1-minute load average exceeds the cores + 1 (steady load from others slows every phase alike,
so the spreads stay small but the rates are not the machine's).

recommended_batch (and recommended_learning_rate) is the big batch when it is faster AND its
held-out loss after the fixed number of samples is within --loss-tolerance (relative, default 0.01)
of batch 100's, else 100: speed bought with a worse model is not recommended (null with
--quality-epochs 0, which measures no loss). The big batch is
--big-batch (default 500, learning rate 1e-3 x sqrt(500 / 100) = 2.24e-3, the square-root scaling
rule for Adam, unless --big-lr is given), or with ``--big-batch auto`` the fastest of --candidates
(default 250, 500, 1000, 2000) within the tolerance, or if none is, the one with the lowest held-out
loss; ``sweep`` in the JSON then lists every candidate's samples/s and held-out loss.
Measured on the chorales (20 epochs = 94,520 samples, seed 0; 2 shared cores under load, so the
speeds are only indicative): held-out loss 158.9 nats at batch 100 against 179.2 / 207.2 / 228.9 /
230.9 at 250 / 500 / 1000 / 2000 with the sqrt rule (183.7 / 204.6 / 239.1 at 250 / 500 / 1000
with the linear rule; 183.9 at batch 500 after twice the samples), for at most ~1.5x the samples/s:
on a corpus of this size the big batches lose more in steps than they gain in speed, so the
recommendation there is batch 100; rerun with --big-batch auto on a larger corpus to revisit it.

Options: --backend tensorflow|jax, --jit auto|true|false, --spe N (steps_per_execution), --loop
auto|keras, --frames N (timing frames), --rounds N, --gamma G (G > 0 adds the predictor head, trained
on next-bar pairs; its two dense layers count in matmul_params), --peak-sizes 1024,2048[,4096],
--peak-seconds S, --quality-epochs E (0 skips the held-out runs: a speed-only run), --corpus
auto|chorales|synthetic, --quick (2 rounds, 1024 only, 5 quality epochs: a smoke run, not a
measurement).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time

__all__ = ["main", "matmul_flops_per_sample", "peak_matmul_rates", "scaled_learning_rate"]

PAPER_BATCH = 100
PAPER_LR = 1e-3
DEFAULT_BIG_BATCH = 500
CANDIDATES = (250, 500, 1000, 2000)


def scaled_learning_rate(batch: int, base_lr: float = PAPER_LR, base_batch: int = PAPER_BATCH) -> float:
    """Adam learning rate for a batch size by the square-root scaling rule: base_lr x sqrt(batch / base_batch).

    Used in: :func:`main` (the learning rate of the recommended big batch).
    """
    return float(base_lr) * math.sqrt(int(batch) / int(base_batch))


def matmul_flops_per_sample(cfg) -> int:
    """Dense-layer matmul FLOPs of one training frame: 6 x (sum of in x out over the dense layers).

    2 FLOPs per weight for the forward product, 2 for the input-gradient product and 2 for the
    weight-gradient product. Layers: encoder input -> hidden -> (mean, log-variance), decoder latent
    -> hidden -> frame, and with gamma > 0 the predictor head latent -> hidden -> frame.

    Used in: :func:`main`.
    """
    i, h, z = int(cfg.input_dim), int(cfg.hidden_dim), int(cfg.latent_dim)
    dims = [(i, h), (h, 2 * z), (z, h), (h, i)]
    if float(cfg.gamma) > 0:
        dims += [(z, h), (h, i)]
    return 6 * sum(a * b for a, b in dims)


def _square_pair(n: int):
    """Two (n, n) float32 matrices of N(0, 1/n) entries: chained products x @ w keep entries ~N(0, 1/n)."""
    import numpy as np

    rng = np.random.default_rng(n)
    scale = np.float32(1.0 / np.sqrt(n))  # a float32 scalar: a float64 one would promote to float64
    return tuple(rng.standard_normal((n, n), np.float32) * scale for _ in range(2))


def peak_matmul_rates(sizes=(1024, 2048), seconds: float = 0.4, kernels=("xla", "tf")):
    """A function measuring TensorFlow's float32 n x n matmul rate, one timed window per size and kernel.

    Each (size, kernel) is one ``tf.function`` chaining k products x <- x @ w (k such that a call is
    about 8 GFLOP, at most 8 products, so call overhead is negligible from n = 512 up; the chain
    keeps the products from being merged),
    with ``jit_compile=True`` for "xla" and False for "tf"; it is traced and run once here (warm-up).

    Args:
        sizes: matrix sizes n.
        seconds: length of each timed window.
        kernels: "xla" and/or "tf".

    Returns:
        ``window() -> {"xla-1024": FLOP/s, ...}``, one timed window of every (size, kernel).

    Used in: :func:`main`.
    """
    import numpy as np
    import tensorflow as tf

    funcs = {}
    for n in sizes:
        a, w = (tf.constant(m, dtype=tf.float32) for m in _square_pair(n))
        k = min(8, max(1, round(8e9 / (2 * n ** 3))))  # unrolled: few products keep compiling fast
        for kern in kernels:
            def make(k=k, w=w, jit=(kern == "xla")):
                @tf.function(jit_compile=jit)
                def chain(x):
                    for _ in range(k):
                        x = tf.matmul(x, w)
                    return tf.reduce_sum(x[:1, :1])  # a scalar to wait for; the products must all run
                return chain
            f = make()
            f(a).numpy()  # trace, compile, warm the caches
            funcs[f"{kern}-{n}"] = (f, a, 2.0 * n ** 3 * k)

    def window() -> dict:
        out = {}
        for key, (f, a, flop) in funcs.items():
            reps, t0 = 0, time.perf_counter()
            while True:
                f(a).numpy()
                reps += 1
                dt = time.perf_counter() - t0
                if dt >= seconds:
                    break
            out[key] = reps * flop / dt
        return out

    return window


def _quality_data(which: str, frames: int):
    """(frames, groups or None, label) for the held-out runs."""
    from qbdi_utils import corpus
    from qbdi_utils.model import synthetic_frames

    if which in ("chorales", "auto"):  # embedded in music21; parsed once into the shard cache
        c = corpus.load_corpus("chorales", progress=False)
        return c.frames, c.piece_index, f"chorales ({len(c.frames)} frames, {len(c.piece_names)} pieces)"
    return synthetic_frames(frames, seed=0), None, f"synthetic ({frames} frames)"


def _heldout(frames, groups, cfg, batch: int, lr: float, epochs: int, fit_opts: dict) -> dict:
    """Held-out loss and F1 of training.train run for ``epochs`` passes at (batch, lr)."""
    from qbdi_utils import training

    model, _ = training.train(frames, groups=groups, config=cfg, batch_size=int(batch), learning_rate=float(lr),
                              epochs=int(epochs), progress=False, fit_options=fit_opts)
    return {"loss": model.info["held_out_loss_nats"], "f1": model.info["held_out_f1"],
            "n_train": model.info["n_train"], "seconds": model.info["train_seconds"]}


def _parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in str(text).split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise SystemExit(f"bench_train: expected a comma-separated list of positive sizes, got {text!r}")
    return sizes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    ap.add_argument("--jit", default=None, help="auto|true|false (default: the project's setting)")
    ap.add_argument("--spe", type=int, default=None, help="steps_per_execution (default: project's)")
    ap.add_argument("--loop", default=None, help="auto|keras: the project's loop or plain Model.fit")
    ap.add_argument("--frames", type=int, default=6000, help="synthetic frames of each timed epoch")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--gamma", type=float, default=0.0, help="weight of the predictive term (0: no head)")
    ap.add_argument("--pause", type=float, default=0.3, help="seconds between phases of a round")
    ap.add_argument("--peak-sizes", default="1024,2048", help="square matmul sizes of the peak")
    ap.add_argument("--peak-seconds", type=float, default=0.4, help="length of each peak window")
    ap.add_argument("--gemm-seconds", type=float, default=0.3, help="length of each numpy window")
    ap.add_argument("--big-batch", default=str(DEFAULT_BIG_BATCH),
                    help=f"batch recommended for large corpora, or 'auto' to pick among --candidates "
                         f"(default {DEFAULT_BIG_BATCH})")
    ap.add_argument("--big-lr", type=float, default=None,
                    help="its learning rate (default 1e-3 x sqrt(batch / 100))")
    ap.add_argument("--candidates", default=",".join(map(str, CANDIDATES)), help="batches tried by auto")
    ap.add_argument("--loss-tolerance", type=float, default=0.01,
                    help="auto: accepted relative held-out loss above batch 100's")
    ap.add_argument("--quality-epochs", type=int, default=20,
                    help="passes over the training split of each held-out run (0: skip them)")
    ap.add_argument("--corpus", default="auto", choices=("auto", "chorales", "synthetic"),
                    help="data of the held-out runs (auto = chorales)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 rounds, 1024 only, 5 quality epochs")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.peak_sizes, args.quality_epochs = 2, "1024", min(args.quality_epochs, 5)
        args.frames, args.peak_seconds, args.pause = min(args.frames, 2000), 0.2, 0.1
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sizes = _parse_sizes(args.peak_sizes)
    auto = str(args.big_batch).lower() == "auto"
    candidates = _parse_sizes(args.candidates) if auto else (int(args.big_batch),)
    if args.rounds < 1 or args.frames < max(candidates + (PAPER_BATCH,)):
        raise SystemExit("bench_train: need --rounds >= 1 and --frames >= the largest batch")

    import numpy as np

    from qbdi_utils import training
    from qbdi_utils.model import PRESETS, synthetic_frames
    from qbdi_utils.training.fit import FIT_DEFAULTS, fit_function, make_trainer, seed_everything

    t_start = time.perf_counter()
    base = PRESETS["paper"].replace(gamma=args.gamma)
    fit_opts = dict(FIT_DEFAULTS)
    if args.jit is not None:
        fit_opts["jit_compile"] = {"true": True, "false": False}.get(args.jit.lower(), "auto")
    if args.loop is not None:
        fit_opts["loop"] = args.loop
    if args.spe is not None:
        fit_opts["steps_per_execution"] = args.spe
    flops_per_sample = matmul_flops_per_sample(base)
    lr_of = {b: (args.big_lr if args.big_lr is not None else scaled_learning_rate(b)) for b in candidates}
    lr_of[PAPER_BATCH] = PAPER_LR
    batches = (PAPER_BATCH,) + tuple(b for b in candidates if b != PAPER_BATCH)

    # --- one compiled training loop per batch, on synthetic frames (speed does not depend on content)
    x_all = synthetic_frames(args.frames, seed=0).astype(np.float32)
    fits, n_of = {}, {}
    for b in batches:
        n = (args.frames // b) * b
        cfg = base.replace(batch_size=b, learning_rate=lr_of[b])
        seed_everything(0)
        trainer = make_trainer(cfg, 0, fit_opts)
        nxt = training.successor_index(np.arange(n) // 16, n)  # pieces of 16 bars
        fits[b] = fit_function(trainer, x_all[:n], cfg, fit_options=fit_opts, next_tr=nxt)
        fits[b](1)  # warm-up: tracing / compilation
        n_of[b] = n

    # --- the old comparison: numpy on the model's own shapes at batch 100
    cfg100 = base.replace(batch_size=PAPER_BATCH)
    i, h, z = cfg100.input_dim, cfg100.hidden_dim, cfg100.latent_dim
    dims = [(i, h), (h, 2 * z), (z, h), (h, i)] + ([(z, h), (h, i)] if base.gamma > 0 else [])
    rng = np.random.default_rng(0)
    B = PAPER_BATCH
    mats = [(rng.standard_normal((B, a), np.float32), rng.standard_normal((a, o), np.float32),
             rng.standard_normal((B, o), np.float32)) for a, o in dims]

    def gemm_rate(seconds):
        reps, t0 = 0, time.perf_counter()
        while True:
            for X, W, G in mats:
                X @ W          # forward
                G @ W.T        # gradient w.r.t. the input
                X.T @ G        # gradient w.r.t. the weights
            reps += 1
            dt = time.perf_counter() - t0
            if dt >= seconds:
                return reps * B * flops_per_sample / dt

    peak_window = peak_matmul_rates(sizes, args.peak_seconds)  # traced and warmed up here
    gemm_rate(0.2)

    # --- interleaved rounds
    peaks, train_rates, gemm_rates = [], {b: [] for b in batches}, []
    for _ in range(args.rounds):
        peaks.append(peak_window())
        for b in batches:
            time.sleep(args.pause)  # let spinning worker threads stop before the next phase
            t0 = time.perf_counter()
            fits[b](1)
            train_rates[b].append(n_of[b] / (time.perf_counter() - t0))
        time.sleep(args.pause)
        gemm_rates.append(gemm_rate(args.gemm_seconds))
        time.sleep(args.pause)
    round_peak = [max(p.values()) for p in peaks]
    peak = max(round_peak)
    by_kernel = {k: round(max(p[k] for p in peaks) / 1e9, 1) for k in peaks[0]}
    by_size = {str(n): max(v for k, v in by_kernel.items() if k.endswith(f"-{n}")) for n in sizes}
    best_kernel = max(by_kernel, key=by_kernel.get)
    timing_seconds = time.perf_counter() - t_start

    # --- held-out quality after a fixed number of samples
    quality, corpus_label = {}, None
    if args.quality_epochs > 0:
        frames, groups, corpus_label = _quality_data(args.corpus, args.frames)
        for b in batches:
            quality[b] = _heldout(frames, groups, base, b, lr_of[b], args.quality_epochs, fit_opts)

    # --- the big batch shown, and the batch recommended: a big batch only if it costs no held-out loss
    sps = {b: max(r) for b, r in train_rates.items()}

    def within(b):
        return not quality or quality[b]["loss"] <= quality[PAPER_BATCH]["loss"] * (1 + args.loss_tolerance)

    bigger = [b for b in candidates if b != PAPER_BATCH] or [PAPER_BATCH]
    ok = [b for b in bigger if within(b) and sps[b] > sps[PAPER_BATCH]]
    if not auto:
        big = bigger[0]
    elif ok:
        big = max(ok, key=lambda b: sps[b])
    else:  # none keeps the model: show the least bad one
        big = min(bigger, key=lambda b: quality[b]["loss"]) if quality else max(bigger, key=lambda b: sps[b])
    recommended = (big if big in ok else PAPER_BATCH) if quality else None  # no evidence: no advice

    import keras

    def block(prefix: str, b: int) -> dict:
        fl = sps[b] * flops_per_sample
        rounds = [r * flops_per_sample / p for r, p in zip(train_rates[b], round_peak)]
        out = {
            f"{prefix}_samples_per_s": round(sps[b], 1),
            f"{prefix}_train_flops_per_s": round(fl, 0),
            f"{prefix}_train_fraction_of_peak": round(fl / peak, 3),
            f"{prefix}_fraction_per_round_median": round(float(np.median(rounds)), 3),
            f"{prefix}_train_spread": round(max(train_rates[b]) / min(train_rates[b]), 2),
            f"{prefix}_train_rates": [round(r, 1) for r in train_rates[b]],
        }
        if quality:
            out[f"{prefix}_heldout_loss_nats"] = round(quality[b]["loss"], 3)
            out[f"{prefix}_heldout_f1"] = round(quality[b]["f1"], 4)
        return out

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        numpy_blas = f"{blas.get('name')} {blas.get('version')} ({blas.get('openblas configuration', '')})"
    except Exception:
        numpy_blas = "unknown"
    out = {
        "peak_flops_per_s": round(peak, 0),
        "peak_gflops_by_size": by_size,
        "peak_gflops_by_kernel": by_kernel,
        "peak_kernel": best_kernel,
        "peak_spread": round(max(round_peak) / min(round_peak), 2),
        **block("batch100", PAPER_BATCH),
        "big_batch": big,
        "big_batch_learning_rate": round(lr_of[big], 6),
        **(block("batchB", big) if big != PAPER_BATCH else {}),
        "recommended_batch": recommended,
        "recommended_learning_rate": round(lr_of[recommended], 6) if recommended else None,
        "quality_samples": (quality[PAPER_BATCH]["n_train"] * args.quality_epochs) if quality else 0,
        "quality_epochs": args.quality_epochs,
        "corpus": corpus_label,
        "numpy_gemm_ratio_haswell_kernels": round(sps[PAPER_BATCH] * flops_per_sample / max(gemm_rates), 3),
        "numpy_gemm_gflops": [round(r / 1e9, 1) for r in gemm_rates],
        "numpy_blas": numpy_blas,
        "matmul_params": flops_per_sample // 6, "flops_per_sample": flops_per_sample,
        "backend": keras.backend.backend(), "jit_compile": str(fit_opts["jit_compile"]),
        "steps_per_execution": fit_opts["steps_per_execution"], "loop": fit_opts["loop"],
        "frames": args.frames, "rounds": args.rounds, "gamma": base.gamma,
        "timing_seconds": round(timing_seconds, 1),
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    spreads = [out["peak_spread"]] + [v for k, v in out.items() if k.endswith("_train_spread")]
    fractions = [v for k, v in out.items() if k.endswith("_train_fraction_of_peak")]
    out["contended"] = (max(spreads) > 1.3 or max(fractions) > 1.0
                        or out["load_avg_1min"] > (os.cpu_count() or 1) + 1)
    if auto:
        out["sweep"] = {str(b): {"samples_per_s": round(sps[b], 1), "learning_rate": round(lr_of[b], 6),
                                 **({"heldout_loss_nats": round(quality[b]["loss"], 3)} if quality else {})}
                        for b in batches}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
