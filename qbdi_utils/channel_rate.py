"""How many bits a channel really carries: mutual-information estimators and the static / dynamic experiment.

:func:`binned_mi_bits` estimates I(z_e; z_d) per component from samples (the Gaussian estimate,
:func:`qbdi_utils.channel.gaussian_mi_bits`, stays with the channel, whose measurement uses it);
:func:`own_deviation_transmit` is the channel that would code each frame's own deviation;
:func:`compare_static_dynamic` sets a static allocation (one per corpus) against a dynamic one (one per
frame) in rate and distortion (notebook 03). The channel itself is :mod:`qbdi_utils.channel`.

Imports: channel. Used in: notebooks/03_bit_allocation_channel.ipynb, tests/test_channel.py.
"""

from __future__ import annotations

import numpy as np

from qbdi_utils.channel import (
    allocation_distortion, berger_channel, check_budget, gaussian_mi_bits, reverse_water_filling, source_stats,
    transmit,
)
from qbdi_utils.errors import OptionError

__all__ = ["binned_mi_bits", "compare_static_dynamic", "own_deviation_transmit"]


def binned_mi_bits(z_e, z_d, bins: int = 16) -> np.ndarray:
    """Plug-in estimate of I(z_e; z_d) per component on an equal-count grid, bias-corrected, in bits.

    Each component's samples are cut into ``bins`` equal-count cells by rank and the mutual
    information of the two cell indices is computed from the counts, minus the Miller-Madow bias
    ``(bins - 1)^2 / (2 M ln 2)``. Quantising can only lose information, so for large ``M`` this is a
    lower bound that also sees dependence a correlation misses (e.g. noise whose size reveals |z_e|).

    Args:
        z_e: (M, L) float, source samples.
        z_d: (M, L) float, channel outputs.
        bins: int >= 2, cells per axis.

    Returns:
        (L,) float64 bits, clipped at 0; 0 where z_d is constant.

    Used in: notebooks/03_bit_allocation_channel.ipynb (through :func:`compare_static_dynamic`).
    """
    a = np.asarray(z_e, dtype=np.float64)
    b = np.asarray(z_d, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"z_e and z_d must be the same (M, L) shape, got {a.shape} and {b.shape}")
    m, n_comp = a.shape
    if m == 0:
        return np.zeros(n_comp)

    def cells(x):  # equal-count cells by rank (ties broken by sample order, which carries no information)
        ranks = np.argsort(np.argsort(x, axis=0, kind="stable"), axis=0, kind="stable")
        return ranks * bins // m

    ix, iy = cells(a), cells(b)
    flat = (np.arange(n_comp)[None, :] * bins + ix) * bins + iy
    joint = np.bincount(flat.ravel(), minlength=n_comp * bins * bins).reshape(n_comp, bins, bins) / m
    px, py = joint.sum(2, keepdims=True), joint.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log2(joint / (px * py)), 0.0)
    mi = terms.sum(axis=(1, 2)) - (bins - 1) ** 2 / (2.0 * m * np.log(2.0))
    out = np.maximum(mi, 0.0)
    out[np.all(b == b[0], axis=0)] = 0.0
    return out


def own_deviation_transmit(z_mean, total_bits, mu, rng) -> np.ndarray:
    """The former dynamic scheme, kept only to measure it: NOT a ``total_bits`` channel.

    Each frame's bits are allocated on its own squared deviation ``(z - mu)^2`` and that deviation
    is the channel variance, so the decoder needs the deviation pattern it cannot have.

    Args:
        z_mean: (N, L) float, encoder values.
        total_bits: int >= 0 nominal bits per frame.
        mu: (L,) float, source mean.
        rng: numpy.random.Generator or int seed.

    Returns:
        z_d: (N, L) float64.

    Raises:
        OptionError: a wrong budget or no rng.

    Used in: :func:`compare_static_dynamic` (notebooks/03_bit_allocation_channel.ipynb).
    """
    z = np.asarray(z_mean, dtype=np.float64)
    dev = (z - np.asarray(mu, dtype=np.float64)) ** 2
    budget = check_budget(total_bits)
    bits = np.stack([reverse_water_filling(row, budget) for row in dev]) if len(z) else np.zeros(z.shape, int)
    return berger_channel(z, mu, dev, bits, rng)


def compare_static_dynamic(
    z_mean,
    budgets,
    *,
    mode="query",
    corpus_stats=None,
    seeds=8,
    rate_samples=10000,
    seed=0,
) -> list[dict[str, float]]:
    """Static vs dynamic allocation on a query's latents, at nominal and at true rate.

    For each budget B: the measured distortion ``mean_n ||z_d - z_mean||^2`` (averaged over
    ``seeds`` channel seeds, common random numbers) of the static channel, the causal dynamic
    channel (:func:`transmit` ``dynamic=True``) and the former own-deviation scheme
    (:func:`own_deviation_transmit`); and each scheme's true rate per frame: exact for static and
    dynamic (:attr:`Allocation.true_rate_bits`, B by construction), a Monte-Carlo lower bound for
    the own-deviation scheme on a Gaussian surrogate source with the mode's mean and variance
    (``rate_samples`` frames; sum over components of the larger of :func:`gaussian_mi_bits` and
    :func:`binned_mi_bits`: the binned estimate sees that the noise reveals |z - mu|, which a
    correlation does not). With independent source components the sum over components is a
    lower bound on the information per frame; the pattern of components that get bits is not counted.
    ``static_at_own_rate`` is the static channel's distortion on this query at the own-deviation
    scheme's true rate (its exact expectation over the noise, interpolated in log distortion over
    integer budgets): the comparison at equal true rate.

    Args:
        z_mean: (N, L) float, the query's latent means.
        budgets: iterable of int >= 0, bits per frame.
        mode: "query" | "corpus" | "prior".
        corpus_stats: for ``mode="corpus"``.
        seeds: int >= 1, channel seeds averaged for the distortions.
        rate_samples: int, surrogate frames for the true-rate estimates.
        seed: int, seeds the surrogate source and its channel noise.

    Returns:
        list of dicts, one per budget, keys ``bits``, ``static``, ``dynamic``, ``own_deviation``
        (distortions per frame), ``static_rate``, ``dynamic_rate`` (exact true bits per frame),
        ``own_deviation_rate`` (lower bound), ``static_theory`` (sum var 4^-b), ``static_at_own_rate``.

    Raises:
        OptionError: a wrong mode, budget or statistics; ``"posterior"`` mode (no B-bit channel).

    Used in: notebooks/03_bit_allocation_channel.ipynb.
    """
    if mode == "posterior":
        raise OptionError('"posterior" mode is not a rate-limited channel (mu_e is each frame\'s encoding)')
    z = np.asarray(z_mean, dtype=np.float64)
    mu, var = source_stats(z, None, mode, corpus_stats)
    budgets = [check_budget(b) for b in budgets]
    seeds = int(seeds)
    if seeds < 1:
        raise OptionError(f"seeds must be >= 1, got {seeds}")

    gen = np.random.default_rng(seed)
    surrogate = mu + np.sqrt(var) * gen.standard_normal((int(rate_samples), mu.size))
    noise_seed = int(gen.integers(2**31))
    rows = []
    for b in budgets:
        def send(rng, dynamic=False, b=b, **kw):
            return transmit(z, None, b, mode=mode, corpus_stats=corpus_stats, dynamic=dynamic, rng=rng, **kw)

        _, st = send(0, return_allocation=True)
        _, dy = send(0, dynamic=True, return_allocation=True)
        rows.append({
            "bits": float(b),
            "static": _measured_distortion(z, send, seeds),
            "dynamic": _measured_distortion(z, lambda s: send(s, dynamic=True), seeds),
            "own_deviation": _measured_distortion(z, lambda s, b=b: own_deviation_transmit(z, b, mu, s), seeds),
            "static_rate": st.true_rate_bits,
            "dynamic_rate": dy.true_rate_bits,
            "own_deviation_rate": _rate_lower_bound(surrogate, own_deviation_transmit(surrogate, b, mu, noise_seed)),
            "static_theory": float(allocation_distortion(var, reverse_water_filling(var, b)).sum()),
        })
    at_own = _static_on_query_at_rates(z, mu, var, [r["own_deviation_rate"] for r in rows], budgets)
    for r, d in zip(rows, at_own):
        r["static_at_own_rate"] = d
    return rows


def _measured_distortion(z: np.ndarray, send, seeds: int) -> float:
    """Mean over channel seeds 0..seeds-1 of the distortion per frame ``mean_n ||send(seed)_n - z_n||^2``."""
    return float(np.mean([float(np.mean(np.sum((send(s) - z) ** 2, axis=1))) for s in range(seeds)]))


def _rate_lower_bound(surrogate: np.ndarray, z_d: np.ndarray) -> float:
    """A lower bound on the bits per frame ``z_d`` carries about the surrogate source: per component the
    larger of :func:`gaussian_mi_bits` and :func:`binned_mi_bits`, summed."""
    return float(np.maximum(gaussian_mi_bits(surrogate, z_d), binned_mi_bits(surrogate, z_d)).sum())


def _static_on_query_at_rates(z, mu, var, rates, budgets) -> list[float]:
    """The static channel's expected distortion on the query ``z`` at (fractional) true ``rates``.

    Exact over the noise at integer budgets, ``E||z_d - z||^2 = sum a^2 dev + a (1 - a) var`` with
    ``a = 4^-b`` per component, interpolated in log distortion between them.

    Args:
        z: (N, L) float64, the query's latent means.
        mu, var: (L,) float64, the channel's source mean and variance.
        rates: list of float, true bits per frame to evaluate at.
        budgets: list of int, the experiment's budgets (the grid reaches at least the largest).

    Returns:
        list of float, one distortion per rate.
    """
    top = max([int(np.ceil(r)) for r in rates] + list(budgets) + [1])
    grid = np.unique(np.concatenate([np.arange(0, min(top, 64) + 1), np.geomspace(64, max(top, 64), 60).round()]))
    grid = grid.astype(np.int64)
    dev = np.mean((z - mu) ** 2, axis=0)  # the query's own squared deviation per component

    def expected_on_query(b):
        a = np.exp2(-2.0 * reverse_water_filling(var, int(b)))  # E||z_d - z||^2 given z, exactly
        return float(np.sum(a * a * dev + a * (1.0 - a) * var))

    d_grid = np.array([expected_on_query(g) for g in grid])
    with np.errstate(divide="ignore"):
        log_d = np.log(np.maximum(d_grid, np.finfo(float).tiny))
    return [float(np.exp(np.interp(r, grid, log_d))) for r in rates]
