"""Training throughput of the paper's VAE against a numpy-GEMM roofline measured in the same run.

Prints one JSON line:
    samples_per_s           frames per second of the project's training loop (train.train's compiled
                            Keras trainer and fit call), batch 100, after a warm-up epoch
    gemm_flops_per_s        float32 FLOP/s of numpy matrix products with the model's own shapes
                            (forward, input-gradient and weight-gradient product of every dense layer)
    roofline_samples_per_s  gemm_flops_per_s / (6 x matmul parameters): the rate if training did
                            nothing but those products at numpy's speed
    roofline_fraction       samples_per_s / roofline_samples_per_s (target >= 0.70)
    peak_rss_mb             peak resident memory of this process

Training and GEMM timings are interleaved (rounds of GEMM window, training epoch, GEMM window), and
the best of each is reported, so a neighbour's load on the shared cores affects both alike; the
median of the per-round ratios, the spread of the GEMM windows (max/min) and the load average are
printed too, to judge the noise: with another process on the two cores numpy's threaded GEMM
collapses (down to a few GFLOP/s), so a gemm_spread above ~1.3 means the run was contended and its
fraction is not trustworthy; rerun on a quiet machine. Options: --backend tensorflow|jax,
--jit auto|true|false, --spe N (steps_per_execution), --frames N, --rounds N, --gamma G (G > 0 adds
the predictor head, trained on next-bar pairs inside pieces of 16 bars; its two dense layers count
in the roofline's matmul parameters).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    ap.add_argument("--jit", default=None, help="auto|true|false (default: the project's setting)")
    ap.add_argument("--spe", type=int, default=None, help="steps_per_execution (default: project's)")
    ap.add_argument("--loop", default=None, help="auto|keras: the project's loop or plain Model.fit")
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=1, help="timed epochs per round")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--gamma", type=float, default=0.0, help="weight of the predictive term (0: no head)")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds between GEMM and training")
    ap.add_argument("--gemm-seconds", type=float, default=0.5, help="length of each GEMM window")
    args = ap.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import numpy as np

    from qbdi_utils import train, vae

    cfg = vae.PRESETS["paper"].replace(gamma=args.gamma)
    fit_opts = dict(train._FIT_DEFAULTS)
    if args.jit is not None:
        fit_opts["jit_compile"] = {"true": True, "false": False}.get(args.jit.lower(), "auto")
    if args.loop is not None:
        fit_opts["loop"] = args.loop
    if args.spe is not None:
        fit_opts["steps_per_execution"] = args.spe
    B = cfg.batch_size
    n = (args.frames // B) * B
    x = vae.synthetic_frames(n, seed=0).astype(np.float32)

    train._seed_everything(0)
    trainer = train._make_trainer(cfg, 0, fit_opts)
    nxt = train.successor_index(np.arange(n) // 16, n)  # pieces of 16 bars
    fit = train._fit_function(trainer, x, cfg, fit_options=fit_opts, next_tr=nxt)
    fit(1)  # warm-up: tracing / compilation

    dims = [(cfg.input_dim, cfg.hidden_dim), (cfg.hidden_dim, 2 * cfg.latent_dim),
            (cfg.latent_dim, cfg.hidden_dim), (cfg.hidden_dim, cfg.input_dim)]
    if cfg.gamma > 0:  # the predictor head: latent -> hidden -> frame
        dims += [(cfg.latent_dim, cfg.hidden_dim), (cfg.hidden_dim, cfg.input_dim)]
    params = sum(i * o for i, o in dims)
    rng = np.random.default_rng(0)
    mats = [(rng.standard_normal((B, i), np.float32), rng.standard_normal((i, o), np.float32),
             rng.standard_normal((B, o), np.float32)) for i, o in dims]

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
                return reps * 6 * B * params / dt

    gemm_rate(0.3)
    train_rates, gemm_rates, ratios = [], [], []
    for _ in range(args.rounds):
        g0 = gemm_rate(args.gemm_seconds)
        time.sleep(args.pause)  # let BLAS worker threads stop spinning before training starts
        t0 = time.perf_counter()
        fit(args.epochs)
        tr = args.epochs * n / (time.perf_counter() - t0)
        time.sleep(args.pause)
        g1 = gemm_rate(args.gemm_seconds)
        train_rates.append(tr)
        gemm_rates += [g0, g1]
        ratios.append(tr / (0.5 * (g0 + g1) / (6 * params)))
    sps, flops = max(train_rates), max(gemm_rates)
    roof = flops / (6 * params)
    import keras

    out = {
        "samples_per_s": round(sps, 1),
        "gemm_flops_per_s": round(flops, 0),
        "roofline_samples_per_s": round(roof, 1),
        "roofline_fraction": round(sps / roof, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "backend": keras.backend.backend(),
        "jit_compile": str(fit_opts["jit_compile"]),
        "steps_per_execution": fit_opts["steps_per_execution"], "loop": fit_opts["loop"],
        "batch_size": B, "frames": n, "matmul_params": params, "gamma": cfg.gamma,
        "train_rates": [round(r, 1) for r in train_rates],
        "gemm_gflops_per_s": [round(r / 1e9, 1) for r in gemm_rates],
        "roofline_fraction_per_round_median": round(float(np.median(ratios)), 3),
        "gemm_spread": round(max(gemm_rates) / min(gemm_rates), 2),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
