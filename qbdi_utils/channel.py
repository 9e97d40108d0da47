"""The rate-limited channel between encoder and decoder (PAPER.md section 4).

Each latent component is treated as a Gaussian source. A budget of ``total_bits`` bits per frame is
split over the components by reverse water-filling, and every component is then passed through
Berger's (1971) test channel, which for a Gaussian source sits exactly on the rate-distortion bound
``D(R) = sigma^2 2^(-2R)``:

    mu_d      = z_e + 2^(-2R) (mu_e - z_e)
    sigma_d^2 = 2^(-4R) (2^(2R) - 1) sigma_e^2        (a variance; the noise std is its square root)
    z_d       ~ Normal(mu_d, sigma_d^2)

A component with 0 bits is "removed from transmission": the decoder receives ``mu_e`` and nothing
else. Which mean and variance play ``mu_e`` and ``sigma_e^2`` is the explicit ``mode`` of
:func:`source_stats`. The usual entry point is :func:`transmit` (one call for a batch of frames);
:func:`allocate` returns the bit allocation it uses.

Pure numpy; imports nothing of ours except :mod:`qbdi_utils.errors`.

How many bits a channel really carries, measured by a binned estimator, and the static against
dynamic allocation experiment are :mod:`qbdi_utils.channel_rate`.

Used in: notebooks/03_bit_allocation_channel.ipynb, notebooks/04_query_generation.ipynb.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from qbdi_utils.errors import OptionError

__all__ = [
    "MODES",
    "Allocation",
    "allocate",
    "allocation_distortion",
    "berger_channel",
    "causal_variances",
    "gaussian_mi_bits",
    "check_budget",
    "measure_channel",
    "reverse_water_filling",
    "reverse_water_filling_loop",
    "source_stats",
    "transmit",
    "true_rate_bits",
    "water_level",
]

MODES = ("query", "corpus", "posterior", "prior")
"""The statistics modes of :func:`source_stats`, default first."""


# ----------------------------------------------------------------------------------------------
# argument checks


def _variances(variances: Any, name: str = "variances") -> np.ndarray:
    v = np.asarray(variances, dtype=np.float64)
    if v.ndim != 1:
        raise OptionError(f"{name} must be a 1-D array of per-component variances, got shape {v.shape}")
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise OptionError(f"{name} must be finite and >= 0 (got min {np.nanmin(v) if v.size else 'n/a'})")
    return v


def check_budget(total_bits: Any) -> int:
    """A bit budget per frame, checked.

    Args:
        total_bits: a whole number >= 0 (an integral float is accepted).

    Returns:
        The budget as an int.

    Raises:
        OptionError: not a whole number >= 0.
    """
    if isinstance(total_bits, (bool, np.bool_)):
        raise OptionError(f"total_bits must be a non-negative integer, got {total_bits!r}")
    try:
        b = int(total_bits)
    except (TypeError, ValueError):
        raise OptionError(f"total_bits must be a non-negative integer, got {total_bits!r}") from None
    if b != total_bits or b < 0:
        raise OptionError(f"total_bits must be a non-negative integer (bits per frame), got {total_bits!r}")
    return b


def _generator(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise OptionError(
            "the channel draws noise: pass rng=<int seed> or a numpy.random.Generator "
            "(randomness is never implicit)"
        )
    return np.random.default_rng(rng)


# ----------------------------------------------------------------------------------------------
# bit allocation


def reverse_water_filling(variances, total_bits, *, max_bits_per_component=None) -> np.ndarray:
    """Greedy integer bit allocation: the paper's reverse water-filling, in closed form.

    The paper's loop hands out one bit at a time to the component with the largest remaining
    variance and divides that variance by 4. This function returns exactly the allocation of that
    loop (:func:`reverse_water_filling_loop`), ties broken towards the lowest index, without the
    loop: writing ``sigma_j^2 = m_j 4^q_j`` with ``1 <= m_j < 4`` (exact, via ``frexp``), the
    remaining variance after ``k`` bits is ``m_j 4^(q_j - k)``, so the loop picks candidates in
    order of (level ``q_j - k`` descending, ``m_j`` descending, index ascending). A binary search
    finds the last level that is reached; the bits of that level go to the largest mantissas.
    Comparisons are exact (no logarithms), so the result equals the loop's bit for bit; the cost is
    O(L log B) instead of O(L B).

    Because each extra bit of a component saves 3/4 of its remaining variance, a decreasing
    amount, the greedy allocation minimises ``sum_j sigma_j^2 4^(-bits_j)`` over all integer
    allocations with ``sum bits = total_bits``.

    Edge cases: ``total_bits = 0`` gives all zeros; components with zero variance never get a bit
    (there is nothing to describe); if no component has positive variance, or every component has
    reached ``max_bits_per_component``, the remaining bits are not spent (``bits.sum() <
    total_bits``). Otherwise ``bits.sum() == total_bits``.

    Args:
        variances: (L,) float, source variance of each component, >= 0.
        total_bits: int >= 0, bits per frame.
        max_bits_per_component: optional int cap on any one component's bits (None = no cap, the
            paper's algorithm).

    Returns:
        bits: (L,) int64, bits per component.

    Used in: notebooks/03_bit_allocation_channel.ipynb (via :func:`allocate` also 04).
    """
    v = _variances(variances)
    budget = check_budget(total_bits)
    cap = None if max_bits_per_component is None else check_budget(max_bits_per_component)
    bits = np.zeros(v.size, dtype=np.int64)
    pos = np.flatnonzero(v > 0)
    if budget == 0 or pos.size == 0 or cap == 0:
        return bits
    mant, exp2 = np.frexp(v[pos])  # v = mant * 2**exp2, 0.5 <= mant < 1 (also for subnormals)
    e = exp2.astype(np.int64) - 1  # v = (2 mant) * 2**e, 1 <= 2 mant < 2
    q = e // 2  # floor division: e = 2q + s, s in {0, 1}
    m4 = 2.0 * mant * np.where(e - 2 * q == 1, 2.0, 1.0)  # v = m4 * 4**q, 1 <= m4 < 4 (exact)

    def above(level: int) -> int:
        """Number of candidates (one per bit) strictly above ``level``."""
        k = np.maximum(q - level, 0)
        if cap is not None:
            k = np.minimum(k, cap)
        return int(k.sum())

    if cap is not None and cap * pos.size <= budget:
        bits[pos] = cap
        return bits
    # smallest level with above(level) <= budget; above(hi) = 0, above(lo) > budget
    hi = int(q.max())
    lo = (int(q.min()) - cap - 1) if cap is not None else (hi - budget - 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if above(mid) <= budget:
            hi = mid
        else:
            lo = mid
    level = hi
    k = np.maximum(q - level, 0)
    if cap is not None:
        k = np.minimum(k, cap)
    left = budget - int(k.sum())
    if left > 0:
        # candidates exactly at `level`: components whose next bit sits on that level
        at = np.flatnonzero((q - k == level) & ((k < cap) if cap is not None else True))
        order = np.lexsort((pos[at], -m4[at]))  # mantissa descending, then index ascending
        k[at[order[:left]]] += 1
    bits[pos] = k
    return bits


def reverse_water_filling_loop(variances, total_bits) -> np.ndarray:
    """The paper's allocation loop, literally: one bit at a time to the largest remaining variance.

    O(L B); kept as the reference that :func:`reverse_water_filling` is tested and benchmarked
    against. Ties go to the lowest index (``numpy.argmax``); the loop stops early when every
    remaining variance is 0.

    Args:
        variances: (L,) float >= 0.
        total_bits: int >= 0.

    Returns:
        bits: (L,) int64.

    Used in: notebooks/03_bit_allocation_channel.ipynb, benchmarks/bench_channel.py.
    """
    remaining = _variances(variances).copy()
    bits = np.zeros(remaining.size, dtype=np.int64)
    for _ in range(check_budget(total_bits)):
        j = int(np.argmax(remaining)) if remaining.size else 0
        if remaining.size == 0 or remaining[j] <= 0:
            break
        bits[j] += 1
        remaining[j] /= 4.0
    return bits


def water_level(variances, total_bits) -> tuple[float, np.ndarray]:
    """Continuous reverse water-filling: the level theta and the real-valued rates.

    Solves ``D_j = min(theta, sigma_j^2)``, ``R_j = 1/2 log2(sigma_j^2 / D_j)``, ``sum R_j = B``.
    Components below the level get 0 bits. ``total_bits`` may be any real >= 0 here.
    The total distortion ``sum_j D_j`` is the lower bound that any integer allocation (in
    particular :func:`reverse_water_filling`) can only approach; the greedy rates differ from these
    by less than one bit per component.

    Args:
        variances: (L,) float >= 0.
        total_bits: float >= 0, bits per frame.

    Returns:
        (theta, rates): theta float (a variance; ``max(variances)`` at 0 bits, 0.0 if all variances
        are 0), rates (L,) float64 in bits.

    Raises:
        OptionError: variances not finite and >= 0, or a budget that is not a finite number >= 0.

    Used in: notebooks/03_bit_allocation_channel.ipynb.
    """
    v = _variances(variances)
    try:
        budget = float(total_bits)
    except (TypeError, ValueError):
        raise OptionError(f"total_bits must be a number >= 0, got {total_bits!r}") from None
    if not np.isfinite(budget) or budget < 0:
        raise OptionError(f"total_bits must be a finite number >= 0, got {total_bits!r}")
    rates = np.zeros(v.size)
    pos = np.flatnonzero(v > 0)
    if pos.size == 0:
        return 0.0, rates
    if budget == 0:
        return float(v.max()), rates
    logs = np.sort(np.log2(v[pos]))[::-1]  # descending
    k = np.arange(1, logs.size + 1)
    log_theta = (np.cumsum(logs) - 2.0 * budget) / k  # level if the top k components are active
    nxt = np.append(logs[1:], -np.inf)
    ok = (log_theta <= logs) & (log_theta >= nxt)
    i = int(np.flatnonzero(ok)[0]) if ok.any() else int(np.argmin(np.abs(log_theta - logs)))
    lt = float(log_theta[i])
    rates[pos] = np.maximum(0.5 * (np.log2(v[pos]) - lt), 0.0)
    return float(np.exp2(lt)), rates


def allocation_distortion(variances, bits) -> np.ndarray:
    """Rate-distortion bound ``sigma^2 2^(-2R)`` per component (sum it for the frame's total).

    Args:
        variances: (L,) or (N, L) float >= 0.
        bits: same shape (or broadcastable), int or float >= 0 (inf allowed).

    Returns:
        (L,) or (N, L) float64, expected squared error of each component.

    Used in: notebooks/03_bit_allocation_channel.ipynb.
    """
    return np.asarray(variances, dtype=np.float64) * np.exp2(-2.0 * np.asarray(bits, dtype=np.float64))


# ----------------------------------------------------------------------------------------------
# Berger's test channel


def berger_channel(z_e, mu, var, bits, rng=None) -> np.ndarray:
    """Berger's test channel, per component, broadcasting over frames.

    ``mu_d = z_e + 2^(-2R) (mu_e - z_e)``, ``sigma_d^2 = 2^(-4R) (2^(2R) - 1) sigma_e^2`` and
    ``z_d = mu_d + sigma_d * eps``. With z_e Gaussian of mean ``mu`` and variance ``var`` this gives
    ``E[(z_e - z_d)^2] = var 2^(-2R)`` and ``I(z_e; z_d) = R`` bits. R = 0 returns ``mu`` exactly
    (noise variance 0); R = inf returns ``z_e`` exactly. One standard normal draw of shape (N, L)
    is taken whenever ``bits`` is not None, whatever the rates, so the same ``rng`` seed gives
    common random numbers across budgets.

    Args:
        z_e: (N, L) float, encoder values.
        mu: (L,) or (N, L) float, source mean mu_e.
        var: (L,) or (N, L) float >= 0, source variance sigma_e^2 (a variance, not a std).
        bits: (L,) or (N, L) int or float >= 0 (inf allowed), rate of each component in bits; None
            means no channel (full rate): ``z_e`` is returned unchanged (a copy).
        rng: numpy.random.Generator or int seed (required unless ``bits`` is None).

    Returns:
        z_d: (N, L), same float dtype as ``z_e`` (float64 for integer input).

    Raises:
        OptionError: negative or NaN bits, or a variance that is not finite and >= 0.

    Used in: notebooks/03_bit_allocation_channel.ipynb, notebooks/04_query_generation.ipynb.
    """
    z = np.asarray(z_e)
    out_dtype = z.dtype if np.issubdtype(z.dtype, np.floating) else np.float64
    if z.ndim != 2:
        raise OptionError(f"z_e must be (N frames, L components), got shape {z.shape}")
    if bits is None:
        return z.astype(out_dtype, copy=True)
    z = z.astype(np.float64)
    shape = z.shape
    try:
        m = np.broadcast_to(np.asarray(mu, dtype=np.float64), shape)
        s2 = np.broadcast_to(np.asarray(var, dtype=np.float64), shape)
        r = np.broadcast_to(np.asarray(bits, dtype=np.float64), shape)
    except ValueError:
        raise OptionError(
            f"mu {np.shape(mu)}, var {np.shape(var)} and bits {np.shape(bits)} must be (L,) or (N, L) "
            f"to match z_e {shape}"
        ) from None
    if np.any(np.isnan(r)) or np.any(r < 0):
        raise OptionError("bits must be >= 0 (0 = component not transmitted, inf = lossless)")
    if not np.all(np.isfinite(s2)) or np.any(s2 < 0):
        raise OptionError("var must be finite and >= 0 (it is a variance, not a standard deviation)")
    gen = _generator(rng)
    eps = gen.standard_normal(shape)
    f = np.exp2(-2.0 * r)  # 2^(-2R); exactly 1 at R = 0 and 0 at R = inf
    one_minus_f = -np.expm1(-2.0 * np.log(2.0) * r)  # 1 - 2^(-2R), accurate for small R
    mu_d = z + f * (m - z)
    var_d = f * one_minus_f * s2  # = 2^(-4R) (2^(2R) - 1) sigma^2
    mu_d = np.where(r == 0, m, mu_d)  # exact mu_e at 0 bits, whatever rounding would do
    z_d = mu_d + np.sqrt(var_d) * eps
    return z_d.astype(out_dtype, copy=False)


def gaussian_mi_bits(z_e, z_d) -> np.ndarray:
    """Gaussian estimate -1/2 log2(1 - rho^2) of I(z_e; z_d) per component, from samples.

    Exact for jointly Gaussian pairs; for a Gaussian z_e and any channel it is a lower bound on the
    information (h(z_e | z_d) is at most the entropy of a Gaussian with the linear estimation error).

    Args:
        z_e: (M, L) float, source samples.
        z_d: (M, L) float, channel outputs.

    Returns:
        (L,) float64 bits; 0 where either side is constant.

    Used in: notebooks/03_bit_allocation_channel.ipynb.
    """
    a = np.asarray(z_e, dtype=np.float64)
    b = np.asarray(z_d, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"z_e and z_d must be the same (M, L) shape, got {a.shape} and {b.shape}")
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(den > 0, (a * b).sum(axis=0) / np.where(den > 0, den, 1.0), 0.0)
    return -0.5 * np.log2(np.clip(1.0 - rho**2, np.finfo(float).tiny, None))


def measure_channel(mu, var, bits, n_samples, rng) -> dict[str, np.ndarray]:
    """Monte Carlo check of the channel on Gaussian sources z_e ~ Normal(mu, var).

    Args:
        mu: (L,) float, source means.
        var: (L,) float > 0, source variances.
        bits: (L,) float >= 0, rates.
        n_samples: int, frames drawn.
        rng: numpy.random.Generator or int seed.

    Returns:
        dict with (L,) float64 arrays: ``distortion`` (measured mean of (z_e - z_d)^2),
        ``distortion_theory`` (var 2^(-2R)), ``mi_bits`` (Gaussian estimate
        -1/2 log2(1 - rho^2) of I(z_e; z_d); 0 where z_d is constant), ``rate_bits`` (the rates).

    Used in: notebooks/03_bit_allocation_channel.ipynb.
    """
    gen = _generator(rng)
    mu = np.asarray(mu, dtype=np.float64)
    var = _variances(var, "var")
    bits = np.asarray(bits, dtype=np.float64)
    z_e = mu + np.sqrt(var) * gen.standard_normal((int(n_samples), mu.size))
    z_d = berger_channel(z_e, mu, var, bits, gen)
    dist = np.mean((z_e - z_d) ** 2, axis=0)
    return {
        "distortion": dist,
        "distortion_theory": allocation_distortion(var, bits),
        "mi_bits": gaussian_mi_bits(z_e, z_d),
        "rate_bits": bits,
    }


# ----------------------------------------------------------------------------------------------
# source statistics and the whole transmission


def source_stats(z_mean, z_logvar=None, mode="query", corpus_stats=None) -> tuple[np.ndarray, np.ndarray]:
    """The mean mu_e and variance sigma_e^2 the channel treats as the source, per ``mode``.

    - ``"query"`` (default): mean and variance, across the query's frames, of the latent means.
      Fewer bits pull every bar towards the query's average latent state, so at 0 bits every bar
      decodes to the same thing and the output loses the query (room for "fewer chords,
      converging on the tonic").
    - ``"corpus"``: the same statistics over the training corpus (``corpus_stats``, stored with the
      model). Fewer bits pull the bars towards the corpus's average state, i.e. towards the style
      itself rather than towards this query's average.
    - ``"posterior"``: what the original notebooks did: mu_e is each frame's own posterior mean and
      sigma_e^2 the time average of the posterior variance exp(logvar). Kept for comparison only:
      0 bits still sends the query (mu_e is the query) and bits go to collapsed components (whose
      posterior variance is near 1), so lowering the rate mostly adds noise instead of removing
      the query.
    - ``"prior"``: 0 and 1, the VAE's prior. Fewer bits pull towards the decoding of z = 0, and
      since all components look alike, bits are spread evenly in index order regardless of which
      components the music uses.

    (The channel's noise-variance fix, std vs variance, is in :func:`berger_channel` and applies
    to every mode. A one-bar query has zero variance in ``"query"`` mode: no component gets bits
    and the bar itself, its own mean, is sent at every budget.)

    Args:
        z_mean: (N, L) float, latent means of the query's frames.
        z_logvar: (N, L) float, latent log-variances (needed for ``"posterior"`` only).
        mode: one of :data:`MODES`.
        corpus_stats: for ``"corpus"``: mapping with "mean" (L,) and "var" (L,) (``StyleVAE.corpus_stats``)
            or a (mean, var) pair.

    Returns:
        (mu, var): mu (L,) float64, or (N, L) in ``"posterior"`` mode; var (L,) float64.

    Raises:
        OptionError: an unknown mode, latents of the wrong shape, log-variances missing or mismatched
            (posterior mode), or corpus statistics missing or of the wrong size.

    Used in: notebooks/03_bit_allocation_channel.ipynb, notebooks/04_query_generation.ipynb.
    """
    z = np.asarray(z_mean, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] == 0:
        raise OptionError(f"z_mean must be (N frames >= 1, L components), got shape {z.shape}")
    n_comp = z.shape[1]
    if mode == "query":
        return z.mean(axis=0), z.var(axis=0)
    if mode == "prior":
        return np.zeros(n_comp), np.ones(n_comp)
    if mode == "corpus":
        if corpus_stats is None:
            raise OptionError(
                'mode "corpus" needs corpus_stats (the model\'s .corpus_stats, {"mean": (L,), "var": (L,)})'
            )
        if isinstance(corpus_stats, Mapping):
            mu, var = corpus_stats["mean"], corpus_stats["var"]
        else:
            mu, var = corpus_stats
        mu = np.asarray(mu, dtype=np.float64)
        var = _variances(var, "corpus_stats['var']")
        if mu.shape != (n_comp,) or var.shape != (n_comp,):
            raise OptionError(
                f"corpus_stats has shapes {mu.shape}/{var.shape} but the latents have {n_comp} "
                "components: use the statistics stored with the model that encoded the query"
            )
        return mu, var
    if mode == "posterior":
        if z_logvar is None:
            raise OptionError('mode "posterior" needs z_logvar (the encoder\'s log-variances)')
        lv = np.asarray(z_logvar, dtype=np.float64)
        if lv.shape != z.shape:
            raise OptionError(f"z_logvar shape {lv.shape} differs from z_mean shape {z.shape}")
        return z.copy(), np.exp(lv).mean(axis=0)
    raise OptionError(f"unknown statistics mode {mode!r}; choose one of {', '.join(MODES)}")


@dataclass(frozen=True)
class Allocation:
    """A bit allocation and the source statistics it was made for (see :func:`allocate`).

    Attributes:
        bits: (L,) int64 (static) or (N, L) int64 (dynamic); None at full rate.
        mu: (L,) or (N, L) (``"posterior"`` mode) float64, mu_e of the channel.
        var: (L,) float64, sigma_e^2 the Berger channel is designed for (also when dynamic).
        allocation_var: (L,) or (N, L) (dynamic) float64, the variances the bits were allocated on
            (dynamic: predicted causally from the decoded frames, see :func:`causal_variances`).
        mode: statistics mode; dynamic: per-frame allocation; total_bits: budget per frame or None.
    """

    bits: np.ndarray | None
    mu: np.ndarray
    var: np.ndarray
    allocation_var: np.ndarray
    mode: str
    dynamic: bool
    total_bits: int | None

    @property
    def n_active(self) -> float:
        """Components receiving at least one bit (mean over frames when dynamic; L at full rate)."""
        if self.bits is None:
            return float(self.var.shape[-1])
        return float(np.mean(np.sum(self.bits > 0, axis=-1)))

    @property
    def expected_distortion(self) -> float:
        """Mean over frames of sum_j var_j 2^(-2 bits_j): expected squared error per frame (0 at full rate).

        The expectation is over a Gaussian source with the mode's statistics (mean ``mu``,
        variance ``var``) and the channel noise, frame by frame for a dynamic allocation.
        """
        if self.bits is None:
            return 0.0
        return float(np.mean(np.sum(allocation_distortion(self.var, self.bits), axis=-1)))

    @property
    def true_rate_bits(self) -> float:
        """Information per frame the channel carries about a source with the mode's statistics, in bits.

        ``inf`` in ``"posterior"`` mode (the decoder is handed each frame's own encoding as mu_e,
        even at 0 bits), else :func:`true_rate_bits` with the design variance as source variance,
        i.e. exactly ``total_bits`` (mean over frames when dynamic). ``inf`` at full rate.
        """
        if self.bits is None or self.mode == "posterior":
            return float("inf")
        return float(np.mean(np.atleast_2d(true_rate_bits(self.bits, self.var, self.var))))


def causal_variances(decoded, mu, var) -> np.ndarray:
    """Per-frame allocation variances the decoder can compute: predicted from the frames before.

    Frame 0 uses the static variance; frame ``n > 0`` uses the average of the static variance and
    the squared deviation of the previous *decoded* frame from the source mean,
    ``v_n = (var + (z_d[n-1] - mu)^2) / 2``. Only already decoded frames enter, so the decoder,
    which has ``mu``, ``var`` and ``z_d[:n]``, computes the same allocation for frame ``n`` as the
    encoder: the per-frame pattern of components that get bits is not side information.

    Args:
        decoded: (N, L) float, decoded frames z_d in order (the last row is never used: it only
            predicts a frame N that is not there).
        mu: (L,) float, source mean mu_e.
        var: (L,) float >= 0, static source variance sigma_e^2.

    Returns:
        (N, L) float64, the variances frame n's bits are allocated on.

    Raises:
        OptionError: if var is not a 1-D array of finite values >= 0.

    Used in: notebooks/03_bit_allocation_channel.ipynb (through :func:`transmit`).
    """
    v = _variances(var, "var")
    d = np.asarray(decoded, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != v.size:
        raise ValueError(f"decoded must be (N, {v.size}), got shape {d.shape}")
    out = np.empty_like(d)
    if d.shape[0]:
        out[0] = v
        out[1:] = 0.5 * (v + (d[:-1] - np.asarray(mu, dtype=np.float64)) ** 2)
    return out


def allocate(
    z_mean,
    z_logvar=None,
    total_bits=None,
    *,
    mode="query",
    corpus_stats=None,
    dynamic=False,
    decoded=None,
) -> Allocation:
    """Source statistics plus bit allocation for a batch of frames (no noise drawn).

    Static (default): one allocation, by :func:`reverse_water_filling` on the source variance of
    ``mode``, shared by all frames. Dynamic: the same budget in every frame, allocated on variances
    predicted causally from the frames decoded before it (:func:`causal_variances`), so that the
    decoder can recompute the allocation from what it has received; the Berger channel keeps the
    mode's static variance, so each frame carries exactly ``total_bits`` bits about a Gaussian
    source with the mode's statistics (:attr:`Allocation.true_rate_bits`). A dynamic allocation
    depends on the decoded frames, hence on the channel noise: :func:`transmit` computes it frame
    by frame; here ``decoded`` must be given.

    (Until this version "dynamic" allocated each frame on its own squared deviation from the mean
    and used that as the channel variance: the noise then revealed |z - mu| and the pattern of
    components getting bits was free side information, so the channel carried more than
    ``total_bits`` bits; see :func:`compare_static_dynamic`.)

    Args:
        z_mean: (N, L) float, latent means.
        z_logvar: (N, L) float or None (needed for ``mode="posterior"``).
        total_bits: int >= 0 bits per frame, or None for full rate (no channel).
        mode: statistics mode, see :func:`source_stats`.
        corpus_stats: for ``mode="corpus"``.
        dynamic: per-frame allocation predicted from the decoded past.
        decoded: (N, L) float, the decoded frames (dynamic only; frame n's bits use rows < n).

    Returns:
        :class:`Allocation`.

    Raises:
        OptionError: a wrong mode, budget or statistics (see :func:`source_stats`); dynamic in
            ``"posterior"`` mode (its source mean is each frame's own encoding, which the decoder
            does not have); dynamic with a budget but without ``decoded``.

    Used in: notebooks/03_bit_allocation_channel.ipynb, notebooks/04_query_generation.ipynb.
    """
    mu, var = source_stats(z_mean, z_logvar, mode, corpus_stats)
    if dynamic and mode == "posterior":
        raise OptionError(
            'dynamic allocation needs a source mean the decoder knows; "posterior" mode uses each '
            "frame's own encoding as mu_e: use query, corpus or prior"
        )
    if total_bits is None:
        return Allocation(None, mu, var, var, mode, bool(dynamic), None)
    budget = check_budget(total_bits)
    if not dynamic:
        return Allocation(reverse_water_filling(var, budget), mu, var, var, mode, False, budget)
    if decoded is None:
        raise OptionError(
            "a dynamic allocation depends on the decoded frames: pass decoded=z_d, or use "
            "transmit(..., dynamic=True, return_allocation=True)"
        )
    d = np.asarray(decoded, dtype=np.float64)
    if d.shape != np.shape(z_mean):
        raise ValueError(f"decoded shape {d.shape} differs from z_mean shape {np.shape(z_mean)}")
    alloc_var = causal_variances(d, mu, var)
    bits = np.stack([reverse_water_filling(row, budget) for row in alloc_var]) if len(d) else (
        np.zeros(d.shape, dtype=np.int64)
    )
    return Allocation(bits, mu, var, alloc_var, mode, True, budget)


def transmit(
    z_mean,
    z_logvar=None,
    total_bits=None,
    *,
    mode="query",
    corpus_stats=None,
    dynamic=False,
    rng=None,
    return_allocation=False,
):
    """Send a batch of latent frames through the rate-limited channel: allocation + Berger channel.

    The encoder value is the posterior mean ``z_e = z_mean`` (the query's deterministic encoding).
    ``total_bits=None`` is full rate: ``z_mean`` comes back unchanged. With a budget, each frame's
    components get bits by reverse water-filling (:func:`allocate`), components with 0 bits are
    replaced by ``mu_e``, the others pass through :func:`berger_channel`. Dynamic: frame by frame,
    frame n's bits allocated on :func:`causal_variances` of the frames already decoded. One
    (N, L) standard normal draw either way, so a seed gives common random numbers across budgets
    and between static and dynamic.

    Args:
        z_mean: (N, L) float, latent means of the frames (``StyleVAE.encode(frames)[0]``).
        z_logvar: (N, L) float or None, latent log-variances (only ``mode="posterior"`` uses them).
        total_bits: int >= 0 bits per frame, or None for full rate.
        mode: "query" | "corpus" | "posterior" | "prior", see :func:`source_stats`.
        corpus_stats: ``StyleVAE.corpus_stats`` for ``mode="corpus"``.
        dynamic: allocate per frame from the decoded past (see :func:`allocate`).
        rng: numpy.random.Generator or int seed (required when total_bits is not None).
        return_allocation: also return the :class:`Allocation`.

    Returns:
        z_d: (N, L) float, same dtype as z_mean; or (z_d, Allocation) if ``return_allocation``.

    Raises:
        OptionError: see :func:`allocate`; no ``rng`` with a budget.

    Used in: notebooks/03_bit_allocation_channel.ipynb, notebooks/04_query_generation.ipynb, the CLI.
    """
    z = np.asarray(z_mean)
    if not dynamic or total_bits is None:
        alloc = allocate(z_mean, z_logvar, total_bits, mode=mode, corpus_stats=corpus_stats, dynamic=dynamic)
        if alloc.bits is None:
            z_d = berger_channel(z, alloc.mu, alloc.var, None)
        else:
            z_d = berger_channel(z, alloc.mu, alloc.var, alloc.bits, rng)
        return (z_d, alloc) if return_allocation else z_d
    mu, var = source_stats(z_mean, z_logvar, mode, corpus_stats)
    if mode == "posterior":
        allocate(z_mean, z_logvar, total_bits, mode=mode, corpus_stats=corpus_stats, dynamic=True)  # raises
    budget = check_budget(total_bits)
    gen = _generator(rng)
    zf = z.astype(np.float64)
    eps = gen.standard_normal(zf.shape)
    z_d = np.empty_like(zf)
    bits = np.zeros(zf.shape, dtype=np.int64)
    dev_prev = None
    for n in range(zf.shape[0]):
        v_n = var if dev_prev is None else 0.5 * (var + dev_prev)
        bits[n] = reverse_water_filling(v_n, budget)
        z_d[n] = _berger_row(zf[n], mu, var, bits[n], eps[n])
        dev_prev = (z_d[n] - mu) ** 2
    out_dtype = z.dtype if np.issubdtype(z.dtype, np.floating) else np.float64
    z_d = z_d.astype(out_dtype, copy=False)
    if not return_allocation:
        return z_d
    alloc = Allocation(bits, mu, var, causal_variances(z_d, mu, var), mode, True, budget)
    return z_d, alloc


def _berger_row(z, mu, var, bits, eps) -> np.ndarray:
    """:func:`berger_channel` on one frame with given standard normal draws (same arithmetic)."""
    r = bits.astype(np.float64)
    f = np.exp2(-2.0 * r)
    one_minus_f = -np.expm1(-2.0 * np.log(2.0) * r)
    mu_d = np.where(r == 0, mu, z + f * (mu - z))
    return mu_d + np.sqrt(f * one_minus_f * var) * eps


# ----------------------------------------------------------------------------------------------
# how many bits a channel really carries


def true_rate_bits(bits, design_var, source_var) -> np.ndarray:
    """Closed-form information per frame of Berger channels applied to Gaussian sources, in bits.

    A Berger channel designed for variance sigma^2 at R bits, applied to a Gaussian source of
    variance s^2, is ``z_d = (1 - a) z_e + a mu + n`` with ``a = 2^(-2R)`` and
    ``var(n) = 2^(-4R) (2^(2R) - 1) sigma^2``, so
    ``I(z_e; z_d) = 1/2 log2(1 + (2^(2R) - 1) s^2 / sigma^2)``: R when s^2 = sigma^2, more when the
    source is wider than the design. Summed over the last axis (components); 0 bits give 0.

    Args:
        bits: (..., L) int or float >= 0, rate of each component.
        design_var: (..., L) float > 0 where bits > 0, the channel's sigma_e^2.
        source_var: (..., L) float >= 0, the source's true variance s^2.

    Returns:
        (...) float64, bits per frame (a float for 1-D input).

    Used in: notebooks/03_bit_allocation_channel.ipynb.
    """
    r = np.asarray(bits, dtype=np.float64)
    sig = np.asarray(design_var, dtype=np.float64)
    s2 = np.asarray(source_var, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(r > 0, s2 / np.where(sig > 0, sig, np.nan), 0.0)
        per = 0.5 * np.log2(1.0 + np.expm1(2.0 * np.log(2.0) * r) * ratio)
    per = np.where(r > 0, per, 0.0)
    return per.sum(axis=-1)
