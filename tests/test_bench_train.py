"""Tests of benchmarks/bench_train.py's roofline arithmetic (not its timings, which need a quiet machine).

The matmul FLOP count is checked against the kernels of the trainer the project actually builds,
the learning-rate rule against hand values, the TensorFlow peak probe on a tiny size.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from qbdi_utils.model import PRESETS
from qbdi_utils.training.fit import make_trainer

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_train", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("gamma", [0.0, 0.5])
def test_matmul_flops_count_every_dense_kernel_of_the_trainer(bench, gamma):
    cfg = PRESETS["paper"].replace(input_dim=96, hidden_dim=24, latent_dim=8, gamma=gamma)
    trainer = make_trainer(cfg, 0)
    kernels = [v for v in trainer.trainable_variables if len(v.shape) == 2]
    # encoder hidden, mean, log-variance, decoder hidden, output (+ the head's two layers)
    assert len(kernels) == (7 if gamma > 0 else 5)
    weights = sum(int(np.prod(v.shape)) for v in kernels)
    assert bench.matmul_flops_per_sample(cfg) == 6 * weights


def test_paper_model_matmul_params_by_hand(bench):
    # 2496*500 + 500*(2*500) + 500*500 + 500*2496
    assert bench.matmul_flops_per_sample(PRESETS["paper"]) == 6 * 3_246_000


def test_scaled_learning_rate_is_the_square_root_rule(bench):
    assert bench.scaled_learning_rate(100) == pytest.approx(1e-3)
    assert bench.scaled_learning_rate(400) == pytest.approx(2e-3)
    assert bench.scaled_learning_rate(500) == pytest.approx(1e-3 * math.sqrt(5))


def test_peak_probe_reports_every_size_and_kernel(bench):
    window = bench.peak_matmul_rates(sizes=(128, 256), seconds=0.02)
    rates = window()
    assert set(rates) == {"xla-128", "tf-128", "xla-256", "tf-256"}
    assert all(np.isfinite(r) and r > 0 for r in rates.values())


def test_peak_operands_are_float32_and_scaled(bench):
    a, w = bench._square_pair(256)
    assert a.dtype == np.float32 and w.dtype == np.float32  # a float64 peak would be half the float32 one
    assert a.shape == w.shape == (256, 256)
    assert np.std(a) == pytest.approx(1 / 16, rel=0.05)
    x = a.astype(np.float64)
    for _ in range(4):
        x = x @ w
    assert np.std(x) == pytest.approx(1 / 16, rel=0.2)  # the chain neither explodes nor vanishes
