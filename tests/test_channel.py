"""Tests of qbdi_utils.channel against the theory it implements (PAPER.md section 4) and against the
three defects of the original notebooks (PAPER.md section 7).

References used here are independent of the module: a literal argmax loop and a brute-force search
for the allocation, closed-form rate-distortion results and Monte Carlo on Gaussian sources for the
channel. Seeds are fixed; Monte-Carlo sample sizes make the tolerances several standard errors wide.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qbdi_utils import channel, channel_rate
from qbdi_utils.channel import (
    allocate,
    berger_channel,
    reverse_water_filling,
    reverse_water_filling_loop,
    source_stats,
    transmit,
    water_level,
)
from qbdi_utils.errors import OptionError, QbdiError

# ---------------------------------------------------------------------------------------------
# independent references


def naive_greedy(variances, total_bits):
    """The paper's loop written out here: argmax (first index on ties), divide by 4."""
    exact = any(isinstance(v, Fraction) for v in variances)
    rem = list(variances) if exact else np.array(variances, dtype=float)
    bits = [0] * len(rem)
    for _ in range(total_bits):
        if exact:
            j = max(range(len(rem)), key=lambda i: (rem[i], -i))
        else:
            j = int(np.argmax(rem))  # first maximum
        if rem[j] <= 0:
            break
        bits[j] += 1
        rem[j] /= 4  # exact for floats (no underflow) and for Fractions
    return np.array(bits)


def brute_force_min_distortion(variances, total_bits):
    """Minimum of sum var * 4^-b over all integer b >= 0 with sum b == total_bits."""
    best = np.inf
    L = len(variances)
    for combo in itertools.combinations_with_replacement(range(L), total_bits):
        b = np.bincount(np.array(combo, dtype=int), minlength=L)
        best = min(best, float(np.sum(np.asarray(variances) * 4.0 ** (-b))))
    return best


def distortion(variances, bits):
    return float(np.sum(np.asarray(variances, float) * 4.0 ** (-np.asarray(bits, float))))


# ---------------------------------------------------------------------------------------------
# allocation


variance_lists = st.lists(
    st.one_of(
        st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 12.0, 16.0]),  # ties and powers of 4
        st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=12,
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(variance_lists, st.integers(min_value=0, max_value=80))
def test_closed_form_equals_the_naive_loop(variances, total_bits):
    expected = naive_greedy(variances, total_bits)
    got = reverse_water_filling(variances, total_bits)
    assert got.dtype.kind == "i"
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(reverse_water_filling_loop(variances, total_bits), expected)


def test_closed_form_equals_loop_at_paper_scale():
    rng = np.random.default_rng(4)
    for variances in (rng.exponential(1.0, 500), np.exp(rng.normal(0, 3, 500)), np.ones(500)):
        for total_bits in (0, 1, 64, 256, 1024, 4096):
            np.testing.assert_array_equal(
                reverse_water_filling(variances, total_bits), naive_greedy(variances, total_bits)
            )


def test_ties_go_to_the_lowest_index():
    np.testing.assert_array_equal(reverse_water_filling(np.ones(5), 3), [1, 1, 1, 0, 0])
    # 4 and 1: after one bit the first is at 1 too, the tie goes to index 0
    np.testing.assert_array_equal(reverse_water_filling([4.0, 1.0], 2), [2, 0])
    np.testing.assert_array_equal(reverse_water_filling([1.0, 4.0], 2), [1, 1])


@pytest.mark.parametrize("seed", range(6))
def test_greedy_is_the_optimal_integer_allocation(seed):
    rng = np.random.default_rng(seed)
    L = int(rng.integers(2, 5))
    variances = rng.exponential(1.0, L) * (4.0 ** rng.integers(-2, 3, L))
    if seed % 2:
        variances[0] = variances[-1]  # a tie
    for total_bits in range(0, 9):
        bits = reverse_water_filling(variances, total_bits)
        assert bits.sum() == total_bits
        assert distortion(variances, bits) == pytest.approx(
            brute_force_min_distortion(variances, total_bits), rel=1e-12
        )


def test_greedy_against_the_continuous_optimum():
    rng = np.random.default_rng(11)
    ratios = []
    for _ in range(200):
        L = int(rng.integers(2, 40))
        variances = np.exp(rng.normal(0, 2, L))
        total_bits = int(rng.integers(1, 200))
        bits = reverse_water_filling(variances, total_bits)
        theta, rates = water_level(variances, total_bits)
        # the continuous solution is the reverse water-filling of the textbook ...
        assert rates.sum() == pytest.approx(total_bits, rel=1e-9)
        np.testing.assert_allclose(variances * 4.0 ** (-rates), np.minimum(theta, variances), rtol=1e-9)
        # ... a lower bound on any integer allocation, and greedy stays within one bit per component
        d_cont = float(np.sum(np.minimum(theta, variances)))
        d_int = distortion(variances, bits)
        assert d_int >= d_cont * (1 - 1e-12)
        assert np.max(np.abs(bits - rates)) <= 1.0 + 1e-9
        ratios.append(d_int / d_cont)
    # integer rounding of a 4^-R curve costs at most max_t (1 - 3t/4) 4^t = 1.2635 per component
    assert max(ratios) <= 1.27


def test_water_level_closed_cases():
    theta, rates = water_level([1.0, 1.0], 1)
    assert theta == pytest.approx(0.5)
    np.testing.assert_allclose(rates, [0.5, 0.5])
    # a weak component below the level gets nothing: var 16 and 0.01 with 1 bit -> theta = 4
    theta, rates = water_level([16.0, 0.01], 1)
    assert theta == pytest.approx(4.0)
    np.testing.assert_allclose(rates, [1.0, 0.0])
    assert water_level([3.0, 2.0], 0) == (3.0, pytest.approx(np.zeros(2)))
    theta, rates = water_level([0.0, 0.0], 5)
    assert theta == 0.0 and not rates.any()


def test_allocation_edge_cases():
    assert not reverse_water_filling([1.0, 2.0], 0).any()
    assert reverse_water_filling([], 10).shape == (0,)
    # zero variances never get bits; all zero: bits stay unspent
    np.testing.assert_array_equal(reverse_water_filling([0.0, 1.0, 0.0], 7), [0, 7, 0])
    np.testing.assert_array_equal(reverse_water_filling([0.0, 0.0], 7), [0, 0])
    # more bits than useful with a cap: each component stops at the cap, the rest is unspent
    np.testing.assert_array_equal(
        reverse_water_filling([1.0, 2.0, 0.0], 100, max_bits_per_component=5), [5, 5, 0]
    )
    capped = reverse_water_filling([1.0, 64.0], 5, max_bits_per_component=2)
    np.testing.assert_array_equal(capped, [2, 2])
    # a huge budget on one component and a huge dynamic range do not overflow or lose bits
    assert reverse_water_filling([1.0], 10**6)[0] == 10**6
    # (the float loop underflows here; exact rationals do not, and the closed form must agree)
    wide = [1e-300, 1e300, 5e-324]
    bits = reverse_water_filling(wide, 3000)
    assert bits.sum() == 3000
    np.testing.assert_array_equal(bits, naive_greedy([Fraction(v) for v in wide], 3000))


@pytest.mark.parametrize("bad", [-1, 2.5, "8", None, True])
def test_bad_budgets_raise_an_option_error(bad):
    with pytest.raises(OptionError):
        reverse_water_filling([1.0, 2.0], bad)


def test_bad_variances_raise_an_option_error():
    for bad in ([1.0, -0.1], [np.nan, 1.0], [[1.0, 2.0]]):
        with pytest.raises(QbdiError):
            reverse_water_filling(bad, 3)


# ---------------------------------------------------------------------------------------------
# Berger's test channel: Monte Carlo against rate-distortion theory

N_MC = 200_000


@pytest.fixture(scope="module")
def gaussian_run():
    """Gaussian sources with random means/variances through the channel at several rates."""
    rng = np.random.default_rng(2024)
    rates = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0] * 2)
    L = rates.size
    mu = rng.normal(0, 3, L)
    var = np.exp(rng.uniform(np.log(0.01), np.log(25.0), L))
    z_e = mu + np.sqrt(var) * rng.standard_normal((N_MC, L))
    z_d = berger_channel(z_e, mu, var, rates, rng)
    return dict(rates=rates, mu=mu, var=var, z_e=z_e, z_d=z_d)


def test_distortion_matches_sigma2_2_pow_minus_2R(gaussian_run):
    r = gaussian_run
    measured = np.mean((r["z_e"] - r["z_d"]) ** 2, axis=0)
    theory = r["var"] * 2.0 ** (-2 * r["rates"])
    np.testing.assert_allclose(measured, theory, rtol=0.02)


def test_mutual_information_matches_the_rate(gaussian_run):
    r = gaussian_run
    rho = np.array([np.corrcoef(r["z_e"][:, j], r["z_d"][:, j])[0, 1] for j in range(r["rates"].size)])
    mi = -0.5 * np.log2(1 - rho**2)
    np.testing.assert_allclose(mi, r["rates"], atol=0.05)


def test_output_is_the_reverse_channel_source(gaussian_run):
    # z_d ~ Normal(mu, var - D): the decoder sees the mean plus a shrunken spread
    r = gaussian_run
    d = r["var"] * 2.0 ** (-2 * r["rates"])
    np.testing.assert_allclose(r["z_d"].var(axis=0), r["var"] - d, rtol=0.02)
    np.testing.assert_allclose(r["z_d"].mean(axis=0), r["mu"], atol=float(4 * np.sqrt(r["var"].max() / N_MC)))


def test_measure_channel_helper_agrees_with_theory():
    out = channel.measure_channel([0.0, 1.0, -2.0], [1.0, 4.0, 0.5], [0.0, 1.0, 2.5], 100_000, 3)
    assert out["distortion"][0] == pytest.approx(1.0, rel=0.02) and out["mi_bits"][0] == 0.0
    np.testing.assert_allclose(out["distortion"], out["distortion_theory"], rtol=0.02)
    np.testing.assert_allclose(out["mi_bits"], [0.0, 1.0, 2.5], atol=0.05)


def test_zero_bits_sends_mu_exactly_and_infinite_bits_send_z_e():
    rng = np.random.default_rng(0)
    z_e = rng.normal(size=(50, 4))
    mu = np.array([0.3, -1.0, 2.0, 0.0])
    out = berger_channel(z_e, mu, np.full(4, 2.0), np.zeros(4, int), rng)
    np.testing.assert_array_equal(out, np.broadcast_to(mu, z_e.shape))
    for big in (np.inf, 10**6):
        np.testing.assert_array_equal(berger_channel(z_e, mu, np.full(4, 2.0), np.full(4, big), rng), z_e)
    # 40 bits: closer than float32 resolution
    np.testing.assert_allclose(berger_channel(z_e, mu, np.full(4, 2.0), np.full(4, 40), rng), z_e, rtol=1e-9, atol=1e-9)
    # no budget: unchanged copy, dtype kept
    z32 = z_e.astype(np.float32)
    same = berger_channel(z32, mu, 1.0, None)
    assert same.dtype == np.float32 and same is not z32
    np.testing.assert_array_equal(same, z32)


def test_channel_broadcasts_per_frame_means_and_bits():
    rng = np.random.default_rng(1)
    z_e = rng.normal(size=(3, 2))
    mu = rng.normal(size=(3, 2))
    bits = np.array([[0, 0], [0, 3], [0, 0]])
    out = berger_channel(z_e, mu, [1.0, 1.0], bits, rng)
    np.testing.assert_array_equal(out[bits == 0], mu[bits == 0])
    assert out[1, 1] != mu[1, 1]
    with pytest.raises(OptionError):
        berger_channel(z_e, mu[:, :1].T, 1.0, bits, rng)
    with pytest.raises(OptionError):
        berger_channel(z_e, 0.0, 1.0, [-1, 0], rng)
    with pytest.raises(OptionError, match="rng"):
        berger_channel(z_e, 0.0, 1.0, [1, 1], None)


# ---------------------------------------------------------------------------------------------
# the three defects of PAPER.md section 7, each with a test the original code fails


def test_defect1_noise_variance_is_not_used_as_a_std():
    """Original: noise std = 2^-4R (2^2R - 1) sigma^2. Correct: that is the variance.

    With sigma^2 = 4 and R = 1 the right noise variance is 0.75; the original gives 0.75^2 = 0.5625,
    25% off, far outside the 2% tolerance. The conditional spread z_d - mu_d isolates the noise.
    """
    rng = np.random.default_rng(7)
    var, R = np.array([4.0, 0.2]), np.array([1.0, 0.5])
    z_e = np.zeros((N_MC, 2)) + np.array([1.0, -0.3])
    mu = np.array([-1.0, 0.4])
    f = 2.0 ** (-2 * R)
    noise = berger_channel(z_e, mu, var, R, rng) - (z_e + f * (mu - z_e))
    expected = 2.0 ** (-4 * R) * (2.0 ** (2 * R) - 1) * var  # [0.75, 0.05]
    np.testing.assert_allclose(noise.var(axis=0), expected, rtol=0.02)
    original = expected**2
    assert np.all(np.abs(original / expected - 1) > 0.1)  # the original is distinguishable


def _latents_with_collapsed_components(n=64, seed=0):
    """4 informative components (means vary, posterior var small), 4 collapsed (mean ~0, var ~1)."""
    rng = np.random.default_rng(seed)
    z_mean = np.concatenate([rng.normal(0, 2.0, (n, 4)), rng.normal(0, 0.01, (n, 4))], axis=1)
    z_logvar = np.concatenate([np.full((n, 4), np.log(0.05)), np.full((n, 4), np.log(0.98))], axis=1)
    return z_mean, z_logvar


def test_defect2_bits_go_to_the_variance_of_the_means_not_the_posterior_variance():
    z_mean, z_logvar = _latents_with_collapsed_components()
    alloc = allocate(z_mean, z_logvar, 8)  # default mode "query"
    assert alloc.bits[:4].sum() == 8 and alloc.bits[4:].sum() == 0
    # the original rule (time-averaged exp(logvar)) sends every bit to the collapsed components
    original = reverse_water_filling(np.exp(z_logvar).mean(axis=0), 8)
    assert original[:4].sum() == 0
    assert allocate(z_mean, z_logvar, 8, mode="posterior").bits[:4].sum() == 0  # kept, for comparison


def test_defect3_zero_bits_send_the_same_constant_for_every_frame():
    z_mean, z_logvar = _latents_with_collapsed_components(n=32, seed=1)
    z_d = transmit(z_mean, z_logvar, 0, rng=0)
    np.testing.assert_array_equal(z_d, np.broadcast_to(z_mean.mean(axis=0), z_mean.shape))
    assert np.all(z_d == z_d[0])
    # a little information: frames start to differ again, and they differ more with more bits
    spread = [np.ptp(transmit(z_mean, z_logvar, b, rng=0), axis=0).sum() for b in (0, 4, 64)]
    assert spread[0] == 0 < spread[1] < spread[2]
    # the original per-frame mu_e keeps the query at 0 bits (what "posterior" mode reproduces)
    np.testing.assert_allclose(transmit(z_mean, z_logvar, 0, mode="posterior", rng=0), z_mean)


# ---------------------------------------------------------------------------------------------
# statistics modes, dynamic allocation, transmit


def test_source_stats_modes():
    z_mean, z_logvar = _latents_with_collapsed_components(n=10)
    mu, var = source_stats(z_mean, z_logvar)  # default "query"
    np.testing.assert_allclose(mu, z_mean.mean(0))
    np.testing.assert_allclose(var, z_mean.var(0))
    mu, var = source_stats(z_mean, None, "prior")
    assert not mu.any() and np.all(var == 1)
    stats = {"mean": np.arange(8.0), "var": np.full(8, 0.5)}
    for cs in (stats, (stats["mean"], stats["var"])):
        mu, var = source_stats(z_mean, None, "corpus", cs)
        np.testing.assert_array_equal(mu, stats["mean"])
        np.testing.assert_array_equal(var, stats["var"])
    mu, var = source_stats(z_mean, z_logvar, "posterior")
    np.testing.assert_array_equal(mu, z_mean)
    np.testing.assert_allclose(var, np.exp(z_logvar).mean(0))
    for kwargs in (
        dict(mode="corpus"),
        dict(mode="corpus", corpus_stats={"mean": np.zeros(3), "var": np.ones(3)}),
        dict(mode="posterior"),
        dict(mode="median"),
    ):
        with pytest.raises(OptionError):
            source_stats(z_mean, None, **kwargs)
    with pytest.raises(OptionError):
        source_stats(z_mean[0], None)


def test_dynamic_allocation_is_recomputed_by_the_decoder_from_what_it_received():
    """No side information: frame n's bits follow from mu, var and the decoded frames before n."""
    z_mean, z_logvar = _latents_with_collapsed_components(n=12, seed=3)
    z_d, alloc = transmit(z_mean, z_logvar, 10, dynamic=True, rng=5, return_allocation=True)
    assert alloc.bits.shape == z_mean.shape
    np.testing.assert_array_equal(alloc.bits.sum(axis=1), 10)
    mu, var = z_mean.mean(0), z_mean.var(0)
    # the decoder's view, written out here: average of the static variance and the last decoded deviation
    prev = None
    for n in range(z_mean.shape[0]):
        v = var if prev is None else (var + (z_d[n - 1] - mu) ** 2) / 2
        np.testing.assert_array_equal(alloc.bits[n], naive_greedy(v, 10))
        prev = n
    # the same allocation from allocate() given only the decoded frames
    np.testing.assert_array_equal(allocate(z_mean, None, 10, dynamic=True, decoded=z_d).bits, alloc.bits)
    # changing a future encoder frame changes nothing in the earlier frames' bits or outputs
    z2 = z_mean.copy()
    z2[7:] += 5.0
    z_d2, alloc2 = transmit(z2, None, 10, dynamic=True, rng=5, return_allocation=True)
    z_d2b, alloc2b = transmit(z2, None, 10, mode="corpus", corpus_stats=(mu, var), dynamic=True, rng=5,
                              return_allocation=True)
    np.testing.assert_array_equal(alloc2b.bits[:8], alloc.bits[:8])
    np.testing.assert_array_equal(z_d2b[:7], z_d[:7])
    np.testing.assert_array_equal(z_d[alloc.bits == 0], np.broadcast_to(mu, z_mean.shape)[alloc.bits == 0])
    with pytest.raises(OptionError, match="decoded"):
        allocate(z_mean, None, 10, dynamic=True)
    with pytest.raises(OptionError, match="posterior"):
        transmit(z_mean, z_logvar, 10, mode="posterior", dynamic=True, rng=0)


def test_dynamic_channel_error_is_the_berger_distortion_of_its_allocation():
    """Each frame: E[(z - z_d)^2 | z] = a^2 (z - mu)^2 + a (1 - a) var with a = 4^-bits (static design variance)."""
    rng = np.random.default_rng(8)
    z_mean = rng.normal(0, 1.0, (8, 6)) * np.array([3.0, 2.0, 1.0, 0.5, 0.2, 0.05])
    mu, var = z_mean.mean(0), z_mean.var(0)
    errs = {f: [] for f in (0, 3, 6)}
    bits_seen = {f: [] for f in (0, 3, 6)}
    for s in range(600):
        z_d, alloc = transmit(z_mean, None, 9, dynamic=True, rng=s, return_allocation=True)
        for f in errs:
            errs[f].append((z_d[f] - z_mean[f]) ** 2)
            bits_seen[f].append(alloc.bits[f])
    for f in errs:
        a = 4.0 ** -np.array(bits_seen[f], dtype=float)
        theory = a * a * (z_mean[f] - mu) ** 2 + a * (1 - a) * var  # per seed, given that seed's bits
        diff = np.array(errs[f]) - theory  # mean 0: frame f's noise is independent of frame f's bits
        se = diff.std(axis=0, ddof=1) / np.sqrt(diff.shape[0])
        assert np.all(np.abs(diff.mean(axis=0)) <= 4 * se + 1e-12)
        assert np.all(diff[a == 1.0] == pytest.approx(0.0, abs=1e-12))  # 0 bits: exactly mu, no noise


# ---------------------------------------------------------------------------------------------
# I(z_e; z_d) <= B per frame, every mode (F1 of issue 12)


def _binned_mi_bits(x, y, bins=24):
    """Plug-in mutual information on an equal-count grid, bits (independent of the package)."""
    qx = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
    qy = np.quantile(y, np.linspace(0, 1, bins + 1)[1:-1])
    joint = np.zeros((bins, bins))
    np.add.at(joint, (np.searchsorted(qx, x), np.searchsorted(qy, y)), 1)
    p = joint / joint.sum()
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float(np.sum(p[nz] * np.log2(p[nz] / (px @ py)[nz])))


def _gaussian_mi(x, y):
    rho = np.corrcoef(x, y)[0, 1]
    return -0.5 * np.log2(1 - rho**2)


@pytest.mark.parametrize("rate", [0.5, 1.0, 2.0, 3.0])
def test_true_rate_closed_form_matches_simulation_of_a_mismatched_berger_channel(rate):
    """z_d = (1-a) z_e + a mu + n: I = 1/2 log2(1 + (4^R - 1) s^2 / sigma^2), checked by simulation."""
    rng = np.random.default_rng(int(rate * 10))
    for s2, sig2 in ((1.0, 1.0), (4.0, 1.0), (0.25, 1.0)):
        z_e = 0.3 + np.sqrt(s2) * rng.standard_normal((200_000, 1))
        z_d = berger_channel(z_e, 0.3, sig2, rate, rng)
        closed = channel.true_rate_bits([rate], [sig2], [s2])
        assert closed == pytest.approx(0.5 * np.log2(1 + (4**rate - 1) * s2 / sig2))
        assert _gaussian_mi(z_e[:, 0], z_d[:, 0]) == pytest.approx(closed, abs=0.02)
        if s2 == sig2:
            assert closed == pytest.approx(rate)
        assert (closed > rate) == (s2 > sig2)


def _mc_frame_rate(z_e, z_d):
    """Sum over components of the Gaussian MI estimate and its standard error (10 batches)."""
    per_batch = [
        sum(_gaussian_mi(a[:, j], b[:, j]) for j in range(z_e.shape[1]) if np.std(b[:, j]) > 0)
        for a, b in zip(np.array_split(z_e, 10), np.array_split(z_d, 10))
    ]
    return float(np.mean(per_batch)), float(np.std(per_batch, ddof=1) / np.sqrt(10))


@pytest.mark.parametrize("mode", ["query", "corpus", "prior"])
@pytest.mark.parametrize("budget", [3, 12])
def test_static_channel_carries_at_most_B_bits_per_frame(mode, budget):
    rng = np.random.default_rng(budget)
    L = 6
    mu = rng.normal(0, 1, L)
    var = np.array([3.0, 1.5, 1.0, 0.5, 0.2, 0.05]) if mode != "prior" else np.ones(L)
    if mode == "prior":
        mu = np.zeros(L)
    z_e = mu + np.sqrt(var) * rng.standard_normal((60_000, L))
    z_d, alloc = transmit(z_e, None, budget, mode=mode, corpus_stats=(mu, var), rng=1, return_allocation=True)
    est, se = _mc_frame_rate(z_e, z_d)
    assert est <= budget + 3 * se + 0.01
    assert est == pytest.approx(budget, abs=3 * se + 0.02)  # the Gaussian estimate is exact here
    assert alloc.true_rate_bits == pytest.approx(budget)


def test_posterior_mode_is_not_a_rate_limited_channel():
    """mu_e is each frame's own encoding: at 0 bits the decoder gets z_e itself (unbounded rate)."""
    rng = np.random.default_rng(2)
    z_e = rng.standard_normal((5000, 4))
    z_d, alloc = transmit(z_e, np.zeros_like(z_e), 0, mode="posterior", rng=0, return_allocation=True)
    np.testing.assert_array_equal(z_d, z_e)
    assert alloc.true_rate_bits == np.inf
    assert _binned_mi_bits(z_e[:, 0], z_d[:, 0]) > 3.0  # log2(24) = 4.6 is the grid's ceiling


@pytest.mark.parametrize("budget", [4, 10])
def test_dynamic_channel_carries_at_most_B_bits_in_each_frame_given_the_decoded_past(budget):
    """Fix a decoded past, draw many source values for the next frame, measure I per frame."""
    rng = np.random.default_rng(budget)
    mu = rng.normal(0, 1, 6)
    var = np.array([3.0, 1.5, 1.0, 0.5, 0.2, 0.05])
    past = mu + np.sqrt(var) * rng.standard_normal((5, 6))
    for n in (0, 3, 5):
        # transmit a sequence whose first n frames are fixed: the same seed gives the same past outputs,
        # so draw the new frame's noise independently per sample with the allocation the scheme used
        seq = np.vstack([past[:n], mu[None, :]])
        _, alloc = transmit(seq, None, budget, mode="corpus", corpus_stats=(mu, var), dynamic=True, rng=7,
                            return_allocation=True)
        bits_n = alloc.bits[n]
        assert bits_n.sum() == budget
        z_e = mu + np.sqrt(var) * rng.standard_normal((60_000, 6))
        outs = []
        for chunk in np.array_split(np.arange(z_e.shape[0]), 20):
            block = np.repeat(seq[None], chunk.size, 0)
            block[:, n] = z_e[chunk]
            for k, row in enumerate(block[:3]):  # spot-check: the scheme keeps the past's allocation
                _, al = transmit(row, None, budget, mode="corpus", corpus_stats=(mu, var), dynamic=True, rng=7,
                                 return_allocation=True)
                np.testing.assert_array_equal(al.bits[n], bits_n)
            outs.append(berger_channel(z_e[chunk], mu, var, bits_n, rng))
        est, se = _mc_frame_rate(z_e, np.vstack(outs))
        assert est <= budget + 3 * se + 0.01
        assert est == pytest.approx(channel.true_rate_bits(bits_n, var, var), abs=3 * se + 0.02)


@pytest.mark.parametrize("rate", [0.5, 1.0, 2.0])
def test_binned_mi_is_a_lower_bound_close_to_the_closed_form_and_sees_what_correlation_misses(rate):
    rng = np.random.default_rng(11)
    z_e = rng.standard_normal((40_000, 2))
    z_d = np.column_stack([berger_channel(z_e[:, :1], 0.0, 1.0, rate, rng)[:, 0],
                           berger_channel(z_e[:, 1:], 0.0, z_e[:, 1:] ** 2, rate, rng)[:, 0]])
    est = channel_rate.binned_mi_bits(z_e, z_d, bins=16)
    assert rate - 0.4 < est[0] <= rate + 0.03  # quantising loses information, never adds (bias corrected)
    assert est[1] == pytest.approx(_binned_mi_bits(z_e[:, 1], z_d[:, 1], bins=16), abs=0.03)
    assert est[1] > channel.gaussian_mi_bits(z_e, z_d)[1] + 0.3  # |z| leaks through the noise's size
    assert channel_rate.binned_mi_bits(z_e, np.zeros_like(z_e)).tolist() == [0.0, 0.0]


def test_the_former_own_deviation_scheme_carries_more_than_its_budget():
    """Why dynamic changed: own deviation as channel variance leaks |z - mu| (issue 12, F1)."""
    rng = np.random.default_rng(4)
    z_e = rng.standard_normal((40_000, 1)) * np.array([1.0, 1.0])[None, :1]
    z_e = np.hstack([z_e, rng.standard_normal((40_000, 1))])  # two unit-variance components
    z_d = channel_rate.own_deviation_transmit(z_e, 1, np.zeros(2), 3)  # 1 bit per frame in total
    binned = sum(_binned_mi_bits(z_e[:, j], z_d[:, j]) for j in range(2))
    assert binned > 1.3  # well above the 1-bit budget (plug-in bias at 24 bins is ~0.01 bit)
    assert channel.gaussian_mi_bits(z_e, z_d).sum() > 1.0


def test_compare_static_dynamic_rates_and_distortions():
    rng = np.random.default_rng(0)
    scale = np.array([2.0, 1.5, 1.0, 0.6, 0.3, 0.1, 0.0, 0.0])
    z = rng.standard_normal((60, 8)) * scale
    rows = channel_rate.compare_static_dynamic(z, [0, 4, 12], seeds=3, rate_samples=6000, seed=1)
    mu, var = z.mean(0), z.var(0)
    assert [r["bits"] for r in rows] == [0, 4, 12]
    r0 = rows[0]
    total = float(np.mean(np.sum((z - mu) ** 2, axis=1)))
    for key in ("static", "dynamic", "own_deviation", "static_theory", "static_at_own_rate"):
        assert r0[key] == pytest.approx(total)  # 0 bits: every scheme sends mu
    for r in rows[1:]:
        assert r["static_rate"] == pytest.approx(r["bits"]) and r["dynamic_rate"] == pytest.approx(r["bits"])
        assert r["own_deviation_rate"] > 1.2 * r["bits"]
        b = naive_greedy(var, int(r["bits"]))
        assert r["static_theory"] == pytest.approx(float(np.sum(var * 4.0**-b)))
    with pytest.raises(OptionError):
        channel_rate.compare_static_dynamic(z, [4], mode="posterior")


def test_transmit_full_rate_and_reproducibility():
    z_mean, z_logvar = _latents_with_collapsed_components(n=8)
    z32 = z_mean.astype(np.float32)
    full = transmit(z32, z_logvar, None)
    assert full.dtype == np.float32
    np.testing.assert_array_equal(full, z32)
    a = transmit(z_mean, z_logvar, 12, rng=9)
    np.testing.assert_array_equal(a, transmit(z_mean, z_logvar, 12, rng=np.random.default_rng(9)))
    assert not np.array_equal(a, transmit(z_mean, z_logvar, 12, rng=10))
    z_d, alloc = transmit(z_mean, z_logvar, 12, rng=9, return_allocation=True)
    np.testing.assert_array_equal(z_d, a)
    assert alloc.bits.sum() == 12 and alloc.total_bits == 12 and alloc.mode == "query"
    assert alloc.expected_distortion == pytest.approx(distortion(alloc.var, alloc.bits))
    with pytest.raises(OptionError, match="rng"):
        transmit(z_mean, z_logvar, 12)


def test_transmit_on_a_trained_encoder(tiny_model):
    """End to end with a real (tiny) VAE: query statistics, corpus statistics, full rate."""
    from qbdi_utils.model import synthetic_frames

    mean, logvar = tiny_model.encode(synthetic_frames(24, seed=5))
    assert np.array_equal(transmit(mean, logvar, None), mean)
    for mode in ("query", "corpus", "posterior", "prior"):
        z_d, alloc = transmit(
            mean, logvar, 32, mode=mode, corpus_stats=tiny_model.corpus_stats, rng=0, return_allocation=True
        )
        assert z_d.shape == mean.shape and np.all(np.isfinite(z_d))
        assert alloc.bits.sum() == 32
    z0 = transmit(mean, logvar, 0, mode="corpus", corpus_stats=tiny_model.corpus_stats, rng=0)
    np.testing.assert_allclose(z0, np.broadcast_to(tiny_model.corpus_stats["mean"], mean.shape), rtol=1e-6)
