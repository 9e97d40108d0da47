"""Speed of the channel: prints one JSON line.

Allocation of 4,096 bits over 500 components (the closed form vs the paper's literal argmax loop,
median of repeats, same random variances) and one full transmit() of a 64-frame query with 500
latent components at 256 bits per frame. Goal: allocation well under 10 ms.

Run: .venv/bin/python benchmarks/bench_channel.py
"""

from __future__ import annotations

import json
import platform
import time

import numpy as np

from qbdi_utils.channel import reverse_water_filling, reverse_water_filling_loop, transmit


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    rng = np.random.default_rng(0)
    n_comp, total_bits, n_frames = 500, 4096, 64
    variances = rng.exponential(1.0, n_comp)
    fast = reverse_water_filling(variances, total_bits)
    loop = reverse_water_filling_loop(variances, total_bits)
    assert np.array_equal(fast, loop), "closed form and loop disagree"
    z_mean = rng.normal(0, 1, (n_frames, n_comp)).astype(np.float32)
    z_logvar = rng.normal(-2, 0.5, (n_frames, n_comp)).astype(np.float32)
    result = {
        "benchmark": "channel",
        "components": n_comp,
        "total_bits": total_bits,
        "allocation_ms": 1e3 * median_seconds(lambda: reverse_water_filling(variances, total_bits), 201),
        "allocation_loop_ms": 1e3 * median_seconds(lambda: reverse_water_filling_loop(variances, total_bits), 11),
        "transmit_frames": n_frames,
        "transmit_bits_per_frame": 256,
        "transmit_ms": 1e3 * median_seconds(lambda: transmit(z_mean, z_logvar, 256, rng=1), 51),
        "transmit_dynamic_ms": 1e3
        * median_seconds(lambda: transmit(z_mean, z_logvar, 256, dynamic=True, rng=1), 11),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
