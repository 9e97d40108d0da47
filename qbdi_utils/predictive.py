"""Predictive information of a style VAE's latent states, measured with bounds that mean something.

PAPER.md section 8 (the paper's Appendix B): Y the next bar x_{t+1}, Z the latent state of bar t,
drawn from the frozen encoder's posterior q(z | x_t) (the stochastic code the decoder and the
predictor head see while training). Three numbers per model, all on held-out pieces, lag 1:

* **I_probe** = CE(marginal) - E_z CE(probe | z), nats per frame. A fresh probe of the predictor
  head's family (latent -> hidden_dim ReLU -> frame_size Bernoulli logits), fitted on the frozen
  encoder's posterior samples of the *training* pieces only (fresh samples each epoch, stopped
  early on a tenth of them), scored on ``n_draws`` posterior samples of each held-out bar (mean
  cross-entropy over the draws). It is a variational bound on I(Z;Y) *plus* the cells' total
  correlation: the marginal is factorised (independent cells), and its cross-entropy exceeds H(Y)
  by the total correlation of Y, a constant of the data (large on chorales: notes sound together).
  Differences between models on the same pieces are honest differences of probe cross-entropies.
  Scoring on posterior *means* (the first version) measured something else: the means are an almost
  surely injective function of the bar, so a predictor of y from them bounds I(X_t; Y) plus a
  constant, the same for every model, and what varied between models was only how much a short fit
  could decode (``i_probe_on_means_lag1_nats`` keeps that number for comparison).
* **I_NCE**, a contrastive lower bound of I(Z;Y) itself (InfoNCE; van den Oord et al. 2018, Poole
  et al. 2019): for a held-out pair (z_1, y) and K - 1 candidate codes z_2..z_K drawn independently
  of it, with the probe's log-likelihood as critic s(z, y) = log q(y | z),

      I(Z;Y) >= E[ s(z_1, y) - log (1/K sum_k exp s(z_k, y)) ]  <= log K.

  The marginal of y cancels, so no total correlation enters. The bound needs the candidates to be
  exchangeable with z_1 and independent of y: each candidate is a posterior sample of a random bar
  of ANOTHER held-out piece, one piece per candidate (bars of one piece are not independent), so K
  is at most the number of held-out pieces with a pair. It cannot exceed log K (checked in the
  tests, and on a Gaussian pair whose I(X;Y) is known).
* **head**: the trained predictor head's own held-out value CE(marginal) - E_z CE(head | z) on the
  same draws (an honest held-out predictor too: it never saw these pieces), and its InfoNCE.

Both probe-based numbers are given as mean and sd over ``probe_seeds`` (each seed refits the probe
and redraws the samples and candidates), on the test pieces and on the validation pieces (to choose
gamma on validation, notebook 06). Lag 0 (the bar itself) is not measured any more: on any code it
is dominated by the cells' total correlation, and I(Z; X_t) is bounded by the rate R anyway.

:func:`evaluate` reports a model's test R, D, note F1 and these bounds (``qbdi evaluate``); :func:`grid`
evaluates many models (cached); :func:`mean_sd` and :func:`paired_differences` aggregate them.

Used in: ``qbdi evaluate``; notebook 06 (predictive training).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from qbdi_utils import files, paths
from qbdi_utils.corpus import METER_ANY
from qbdi_utils.model import StyleVAE, VAEConfig, frames_fingerprint
from qbdi_utils.training import (
    cached_model, held_out_scores, split_held_out, split_pieces, subset_successors, successor_index,
)

__all__ = ["CRITIC_TEMPERATURES", "DEFAULT_CANDIDATES", "DEFAULT_DRAWS", "DEFAULT_PROBE_SEEDS", "GRID_METRICS",
           "bernoulli_ce", "candidate_rows", "evaluate", "fit_probe", "grid", "info_nce", "marginal_rates",
           "mean_sd", "paired_differences", "probe_bounds", "successor_pairs"]

_PROBE_BATCH = 256
_PROBE_MAX_EPOCHS = 15
_PROBE_PATIENCE = 3
_PROBE_LR = 2e-3
_STOP_FRACTION = 0.1
# Version of the method, part of the key of grid()'s stored evaluations: 3 = scored on posterior
# samples with InfoNCE and validation pieces (2 scored on means, 1 fitted on means), so evaluations
# of another method are never reused.
_PROBE_METHOD = 3
# random streams of the scoring draws (per probe seed), apart from the probe's own fitting stream
_DRAW_STREAM = 7

#: probe seeds of :func:`evaluate` (each refits the probe and redraws samples and candidates).
DEFAULT_PROBE_SEEDS = (0, 1, 2)
#: posterior samples per held-out bar.
DEFAULT_DRAWS = 8
#: InfoNCE candidates K (at most the held-out pieces with a pair): log 32 = 3.47 nats.
DEFAULT_CANDIDATES = 32
#: temperatures tau of the InfoNCE critic tau * log q(y | z); one is chosen per probe on the probe's
#: own stop set (training pieces), never on the pieces it is reported on. tau = 0 gives exactly 0, so
#: a critic that only adds noise (the summed log-likelihood of 2,496 cells swings widely) costs nothing.
CRITIC_TEMPERATURES = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)

#: the per-model numbers :func:`mean_sd` aggregates by default (test R, D, note F1, the lag-1 bounds
#: on test and validation pieces).
GRID_METRICS = ("r_nats", "d_nats", "f1", "i_probe_lag1_nats", "i_nce_lag1_nats", "head_lag1_nats",
                "head_nce_lag1_nats", "i_probe_on_means_lag1_nats", "val_r_nats", "val_i_probe_lag1_nats",
                "val_i_nce_lag1_nats", "val_head_lag1_nats")


def marginal_rates(y: np.ndarray) -> np.ndarray:
    """Per-cell Bernoulli rates of binary targets, Krichevsky-Trofimov smoothed: (k + 1/2) / (n + 1).

    Args:
        y: (N, D) binary targets.

    Returns:
        (D,) float64 rates in (0, 1) (never 0 or 1, so unseen cells cost finite nats).

    Used in: :func:`probe_bounds`.
    """
    y = np.asarray(y) != 0
    return (y.sum(axis=0) + 0.5) / (len(y) + 1.0)


def bernoulli_ce(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-frame Bernoulli cross-entropy -log q(y) summed over cells, in nats.

    Args:
        logits: (N, D) or (D,) logits of q (broadcast against y).
        y: (N, D) binary targets.

    Returns:
        (N,) float64 nats per frame.

    Used in: :func:`probe_bounds`.
    """
    lg = np.asarray(logits, np.float64)
    yy = np.asarray(y, np.float64)
    return np.sum(np.logaddexp(0.0, lg) - yy * lg, axis=-1)


def _forward(params, z):
    W1, b1, W2, b2 = params
    h = np.maximum(z @ W1 + b1, 0.0)
    return h, h @ W2 + b2


def _ce_mean(params, z, y) -> float:
    out = 0.0
    for i in range(0, len(z), 2048):
        out += float(bernoulli_ce(_forward(params, z[i:i + 2048])[1], y[i:i + 2048]).sum())
    return out / max(len(z), 1)


def fit_probe(z: np.ndarray, y: np.ndarray, *, hidden_dim: int, seed: int = 0,
              groups: np.ndarray | None = None, z_std: np.ndarray | None = None,
              max_epochs: int = _PROBE_MAX_EPOCHS,
              patience: int = _PROBE_PATIENCE, learning_rate: float = _PROBE_LR,
              batch_size: int = _PROBE_BATCH) -> dict:
    """Fit the probe q(y | z) = Bernoulli(sigmoid(W2 relu(W1 z + b1) + b2)) by Adam on mean CE.

    A tenth of the training pieces (``groups``; frames without groups) is kept aside to stop
    early: the returned weights are those of the epoch (0 = the marginal start) with the lowest
    cross-entropy on it. With ``z_std`` every epoch fits on fresh samples ``z + z_std * eps``
    (eps standard normal from the probe's seeded generator) and the stop set is scored on ``z``.

    Args:
        z: (N, L) inputs (frozen latent means of training bars).
        y: (N, D) binary targets.
        hidden_dim: hidden units (the predictor head's: the model's hidden_dim).
        seed: seeds the initial weights, the stop split and the batch order.
        groups: (N,) piece label per row, or None.
        z_std: optional (N, L) posterior standard deviations of the rows (same shape as z); None
            fits on ``z`` itself.
        max_epochs, patience, learning_rate, batch_size: the optimiser's schedule.

    Returns:
        dict ``params`` (W1 (L, H), b1 (H,), W2 (H, D), b2 (D,) float32), ``epochs`` (best epoch),
        ``stop_ce_nats`` (per-epoch CE on the stop set, epoch 0 first).

    Used in: :func:`probe_bounds`.
    """
    z = np.asarray(z, np.float32)
    y = (np.asarray(y) != 0).astype(np.float32)
    if z.ndim != 2 or y.ndim != 2 or len(z) != len(y):
        raise ValueError(f"z (N, L) and y (N, D) must have the same N, got {z.shape}, {y.shape}")
    if z_std is not None:
        z_std = np.asarray(z_std, np.float32)
        if z_std.shape != z.shape:
            raise ValueError(f"z_std must have the shape of z {z.shape}, got {z_std.shape}")
    rng = np.random.default_rng(seed)
    fit_idx, stop_idx = split_held_out(len(z), _STOP_FRACTION, seed, groups)
    zf, yf, zs, ys = z[fit_idx], y[fit_idx], z[stop_idx], y[stop_idx]
    sf = None if z_std is None else z_std[fit_idx]
    L, D = z.shape[1], y.shape[1]
    rates = marginal_rates(yf)
    params = [
        (rng.standard_normal((L, hidden_dim)) * np.sqrt(2.0 / L)).astype(np.float32),
        np.zeros(hidden_dim, np.float32),
        (rng.standard_normal((hidden_dim, D)) * 1e-3).astype(np.float32),
        np.log(rates / (1 - rates)).astype(np.float32),
    ]
    adam = _Adam(params, learning_rate)
    best = ([p.copy() for p in params], 0)
    stop_ce = [_ce_mean(params, zs, ys)]
    since_best = 0
    for epoch in range(1, int(max_epochs) + 1):
        order = rng.permutation(len(zf))
        z_epoch = zf if sf is None else zf + sf * rng.standard_normal(zf.shape, dtype=np.float32)
        for i in range(0, len(order), batch_size):
            b = order[i:i + batch_size]
            adam.step(params, _probe_grads(params, z_epoch[b], yf[b]))
        stop_ce.append(_ce_mean(params, zs, ys))
        if stop_ce[-1] < min(stop_ce[:-1]):
            best, since_best = ([p.copy() for p in params], epoch), 0
        else:
            since_best += 1
            if since_best >= patience:
                break
    return {"params": best[0], "epochs": best[1], "stop_ce_nats": stop_ce}


def _probe_grads(params: list, zb: np.ndarray, yb: np.ndarray) -> list:
    """Gradients of the probe's mean CE on a batch (zb (B, L), yb (B, D)) by W1, b1, W2, b2."""
    h, logits = _forward(params, zb)
    with np.errstate(over="ignore"):  # exp(-logit) -> inf gives sigmoid 0, as it should
        dl = (1.0 / (1.0 + np.exp(-logits)) - yb) / len(zb)  # d mean CE / d logits
    dh = (dl @ params[2].T) * (h > 0)
    return [zb.T @ dh, dh.sum(axis=0), h.T @ dl, dl.sum(axis=0)]


class _Adam:
    """Adam (beta1 0.9, beta2 0.999, eps 1e-7) on a list of float32 arrays, updated in place."""

    def __init__(self, params: list, learning_rate: float):
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0
        self.learning_rate = learning_rate

    def step(self, params: list, grads: list) -> None:
        """One update of every array of ``params`` by its gradient."""
        b1_, b2_, tiny = 0.9, 0.999, 1e-7
        self.t += 1
        lr_t = self.learning_rate * np.sqrt(1 - b2_ ** self.t) / (1 - b1_ ** self.t)
        m, v = self.m, self.v
        for k, g in enumerate(grads):
            m[k] *= b1_
            m[k] += (1 - b1_) * g
            v[k] *= b2_
            v[k] += (1 - b2_) * (g * g)
            params[k] -= (lr_t * m[k] / (np.sqrt(v[k]) + tiny)).astype(np.float32)


def info_nce(scores: np.ndarray) -> np.ndarray:
    """Per-row InfoNCE value s[i, 0] - log(1/K sum_k exp s[i, k]), the positive pair in column 0.

    Each value is at most log K (the positive is one of the K terms of the sum), whatever the critic.

    Args:
        scores: (N, K) critic values s(z_k, y_i), column 0 the pair's own code, columns 1.. the
            candidates (K >= 1).

    Returns:
        (N,) float64 nats; their mean is the InfoNCE lower bound of I(Z;Y) when the candidates are
        exchangeable with the positive and independent of y.

    Used in: :func:`probe_bounds`; tests/test_predictive.py (the Gaussian check).
    """
    s = np.asarray(scores, np.float64)
    if s.ndim != 2 or s.shape[1] < 1:
        raise ValueError(f"scores must have shape (N, K) with K >= 1, got {s.shape}")
    m = s.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(s - m).sum(axis=1))
    return s[:, 0] - lse + np.log(s.shape[1])


def candidate_rows(pieces: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """InfoNCE candidates of every row: itself, then one random row of each of k - 1 OTHER pieces.

    The k - 1 pieces are distinct and chosen at random per row, so the candidates are independent
    of the row (another piece) and of each other (one per piece), as the bound needs.

    Args:
        pieces: (N,) piece label of each row.
        k: candidates per row, 1 <= k <= number of distinct pieces.
        rng: the generator of the draw.

    Returns:
        (N, k) int64 row indices, column 0 = the row itself.

    Raises:
        ValueError: k out of range.

    Used in: :func:`probe_bounds`.
    """
    pieces = np.asarray(pieces)
    labels, inv, counts = np.unique(pieces, return_inverse=True, return_counts=True)
    n, P = len(pieces), len(labels)
    if not 1 <= int(k) <= P:
        raise ValueError(f"k must be in [1, {P}] (the number of pieces), got {k}")
    order = np.argsort(inv, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    keys = rng.random((n, P))
    keys[np.arange(n), inv] = np.inf  # never the row's own piece
    chosen = np.argsort(keys, axis=1)[:, :int(k) - 1]
    pick = np.minimum((rng.random(chosen.shape) * counts[chosen]).astype(np.int64), counts[chosen] - 1)
    return np.concatenate([np.arange(n, dtype=np.int64)[:, None], order[starts[chosen] + pick]], axis=1)


def _logits_of(fn, z: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(fn(z[i:i + 2048]), np.float64) for i in range(0, len(z), 2048)]) \
        if len(z) else np.zeros((0, 0))


def _nce_rows(logits: np.ndarray, y: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """(rows, temperatures) InfoNCE with critic tau log q(y_i | z_c), log q = y_i . l_c - sum softplus(l_c)."""
    sp = np.logaddexp(0.0, logits).sum(axis=1)
    out = np.empty((len(y), len(CRITIC_TEMPERATURES)))
    for i in range(0, len(y), 64):
        c = cand[i:i + 64]
        s = np.einsum("nd,nkd->nk", y[i:i + 64], logits[c]) - sp[c]
        for j, tau in enumerate(CRITIC_TEMPERATURES):
            out[i:i + 64, j] = info_nce(tau * s)
    return out


@dataclass(frozen=True)
class _Rows:
    """Rows scored by :func:`_score`: posterior means and stds (M, L) float32, binary targets (M, D)
    float64, the piece of each row (M,), the marginal's CE per row (M,) and the InfoNCE candidates K."""

    mean: np.ndarray
    std: np.ndarray
    y: np.ndarray
    pieces: np.ndarray
    marg_ce: np.ndarray
    k: int


def _rows(mean, std, y, pieces, marg_logit: np.ndarray, n_candidates: int) -> _Rows:
    """:class:`_Rows` of a set, K = min(n_candidates, the set's pieces)."""
    y = (np.asarray(y) != 0).astype(np.float64)
    return _Rows(np.asarray(mean, np.float32), np.asarray(std, np.float32), y, pieces,
                 bernoulli_ce(marg_logit, y), min(int(n_candidates), len(np.unique(pieces))))


def _score(fn, rows: _Rows, n_draws: int, rng) -> dict:
    """CE(marginal) - E_z CE(fn | z) and InfoNCE at every critic temperature over ``n_draws`` posterior
    samples of ``rows`` (fn: z -> logits)."""
    mean, std, y = rows.mean, rows.std, rows.y
    ce = np.zeros(len(y))
    nce = np.zeros(len(CRITIC_TEMPERATURES))
    for _ in range(int(n_draws)):
        z = (mean + std * rng.standard_normal(mean.shape, dtype=np.float32)).astype(np.float32)
        lg = _logits_of(fn, z)
        ce += bernoulli_ce(lg, y) / n_draws
        nce += _nce_rows(lg, y, candidate_rows(rows.pieces, rows.k, rng)).mean(axis=0) / n_draws
    diff = rows.marg_ce - ce
    return {"i": float(diff.mean()), "se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else np.nan,
            "ce": float(ce.mean()), "nce": nce}


def probe_bounds(z_train: np.ndarray, y_train: np.ndarray, held: dict, *, hidden_dim: int,
                 z_train_std: np.ndarray | None = None, groups_train: np.ndarray | None = None,
                 seeds=DEFAULT_PROBE_SEEDS, n_draws: int = DEFAULT_DRAWS,
                 n_candidates: int = DEFAULT_CANDIDATES, head=None,
                 probe_max_epochs: int = _PROBE_MAX_EPOCHS) -> dict:
    """I_probe on posterior samples, its InfoNCE bound and (optionally) the head's, over several probe seeds.

    For every seed a probe is fitted on the training rows (:func:`fit_probe`, on posterior samples
    when ``z_train_std`` is given) and every held-out set is scored on ``n_draws`` posterior samples
    of each row (mean CE over the draws) and by InfoNCE with K = min(n_candidates, pieces of the
    set) candidates (:func:`candidate_rows`, :func:`info_nce`). The draws follow the seed.

    Args:
        z_train, y_train: (N, L) posterior means and (N, D) binary targets of training rows.
        held: role -> (mean (M, L), std (M, L), y (M, D) binary, pieces (M,)) of a held-out set.
        hidden_dim: the probe's hidden units.
        z_train_std: (N, L) posterior standard deviations of the training rows, or None.
        groups_train: (N,) piece of each training row (the probe's early-stopping split).
        seeds: probe seeds (>= 1 of them).
        n_draws: posterior samples per held-out row (>= 1).
        n_candidates: InfoNCE candidates K (clipped to the set's pieces).
        head: optional ``z (B, L) -> logits (B, D)`` of a trained predictor, scored on the same draws.
        probe_max_epochs: the probe's epoch cap.

    Returns:
        dict ``n_train``, ``probe_epochs``, ``critic_temperatures`` (and ``head_critic_temperatures``)
        per seed (the InfoNCE critic is tau * log q(y | z), tau of :data:`CRITIC_TEMPERATURES` chosen on
        the probe's stop set of training pieces) and, per role, a dict: ``i_probe_nats``,
        ``i_probe_sd`` (over seeds; nan for one seed), ``i_probe_by_seed``, ``i_probe_se_nats`` (over
        rows, mean over seeds), ``i_nce_nats``, ``i_nce_sd``, ``i_nce_by_seed``, ``n_candidates``,
        ``log_k``, ``ce_marginal_nats``, ``ce_probe_nats``, ``i_probe_on_means_nats`` (the probe scored on
        the means, for comparison), ``n``; with ``head`` also ``head_nats``, ``head_sd``,
        ``head_nce_nats``, ``head_nce_sd``, ``head_ce_nats``.

    Used in: :func:`evaluate`; tests/test_predictive.py.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or int(n_draws) < 1:
        raise ValueError("need at least one probe seed and one draw")
    rates = marginal_rates(y_train)
    marg_logit = np.log(rates / (1 - rates))[None, :]
    sets = {role: _rows(*h, marg_logit, n_candidates) for role, h in held.items()}
    per = {role: {"i": [], "nce": [], "se": [], "ce": [], "means": [], "h": [], "hnce": [], "hce": []}
           for role in held}
    epochs, taus, head_taus = [], [], []
    z_train = np.asarray(z_train, np.float32)
    std_train = np.zeros_like(z_train) if z_train_std is None else np.asarray(z_train_std, np.float32)
    pieces_train = np.arange(len(z_train)) if groups_train is None else np.asarray(groups_train)
    y_bin = (np.asarray(y_train) != 0).astype(np.float64)
    for seed in seeds:
        fit = fit_probe(z_train, y_train, hidden_dim=hidden_dim, seed=seed, groups=groups_train,
                        z_std=z_train_std, max_epochs=probe_max_epochs)
        epochs.append(int(fit["epochs"]))
        probe = lambda z, p=fit["params"]: _forward(p, np.asarray(z, np.float32))[1]  # noqa: E731
        # the critic's temperature, on the probe's own stop set (the same split as fit_probe's)
        stop = split_held_out(len(z_train), _STOP_FRACTION, seed, groups_train)[1]
        stop_rows = _rows(z_train[stop], std_train[stop], y_bin[stop], pieces_train[stop], marg_logit, n_candidates)
        t_probe = _critic_index(probe, stop_rows, n_draws, seed)
        taus.append(CRITIC_TEMPERATURES[t_probe])
        if head is not None:
            t_head = _critic_index(head, stop_rows, n_draws, seed)
            head_taus.append(CRITIC_TEMPERATURES[t_head])
        for role, rows in sets.items():
            rec = per[role]
            sc = _score(probe, rows, n_draws, np.random.default_rng([seed, _DRAW_STREAM]))
            rec["i"].append(sc["i"]), rec["nce"].append(float(sc["nce"][t_probe])), rec["se"].append(sc["se"])
            rec["ce"].append(sc["ce"])
            rec["means"].append(float((rows.marg_ce - bernoulli_ce(_logits_of(probe, rows.mean), rows.y)).mean()))
            rec["k"], rec["n"], rec["marg"] = rows.k, len(rows.y), float(rows.marg_ce.mean())
            if head is not None:
                hs = _score(head, rows, n_draws, np.random.default_rng([seed, _DRAW_STREAM]))
                rec["h"].append(hs["i"]), rec["hnce"].append(float(hs["nce"][t_head])), rec["hce"].append(hs["ce"])
    out = {"n_train": int(len(z_train)), "probe_epochs": epochs, "critic_temperatures": taus,
           "head_critic_temperatures": head_taus}
    out.update({role: _role_summary(rec, head is not None) for role, rec in per.items()})
    return out


def _critic_index(fn, stop_rows: _Rows, n_draws: int, seed: int) -> int:
    """Index in :data:`CRITIC_TEMPERATURES` of the InfoNCE critic's temperature, chosen on the stop set."""
    return int(np.argmax(_score(fn, stop_rows, n_draws, np.random.default_rng([seed, _DRAW_STREAM + 1]))["nce"]))


def _mean_sd(v) -> tuple[float, float]:
    """Mean and sample sd of the values (sd nan for one value)."""
    v = np.asarray(v, np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else float("nan"))


def _role_summary(rec: dict, with_head: bool) -> dict:
    """One held-out set's numbers of :func:`probe_bounds` from its per-seed records."""
    r = {"n": rec["n"], "n_candidates": rec["k"], "log_k": float(np.log(rec["k"])),
         "ce_marginal_nats": rec["marg"], "ce_probe_nats": float(np.mean(rec["ce"])),
         "i_probe_se_nats": float(np.mean(rec["se"])),
         "i_probe_on_means_nats": float(np.mean(rec["means"])),
         "i_probe_by_seed": rec["i"], "i_nce_by_seed": rec["nce"]}
    r["i_probe_nats"], r["i_probe_sd"] = _mean_sd(rec["i"])
    r["i_nce_nats"], r["i_nce_sd"] = _mean_sd(rec["nce"])
    if with_head:
        r["head_nats"], r["head_sd"] = _mean_sd(rec["h"])
        r["head_nce_nats"], r["head_nce_sd"] = _mean_sd(rec["hnce"])
        r["head_ce_nats"] = float(np.mean(rec["hce"]))
    return r


def successor_pairs(nxt: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (x_t, x_{t+1}) pairs inside a subset of the corpus: no pair crosses a frame outside it.

    Args:
        nxt: (N,) the corpus's successor index (:func:`qbdi_utils.training.successor_index`).
        idx: sorted frame indices of the subset (e.g. the test pieces).

    Returns:
        (source rows, target rows): int64 positions within ``idx``.

    Used in: :func:`evaluate`; tests/test_predictive.py.
    """
    sub = subset_successors(nxt, np.asarray(idx, np.int64))
    src = np.flatnonzero(sub >= 0)
    return src, sub[src]


def evaluate(model: StyleVAE, frames: np.ndarray, groups: np.ndarray | None = None, *,
             seeds=DEFAULT_PROBE_SEEDS, n_draws: int = DEFAULT_DRAWS, n_candidates: int = DEFAULT_CANDIDATES,
             probe_max_epochs: int = _PROBE_MAX_EPOCHS) -> dict:
    """Test-piece R, D, note F1 and the lag-1 bounds (I_probe, I_NCE, the head's) on test and validation pieces.

    The frames are split as the model's training split them (its config's fractions and split
    seed, :func:`qbdi_utils.training.split_pieces`); on the corpus the model was trained on
    (``same_corpus``) the probes' training pieces are the model's and the held-out pieces were never
    seen. A model without a test set (format 1) is measured on its validation pieces (``held_out_set``)
    and has no ``val_`` numbers. Pairs (x_t, x_{t+1}) never cross a piece or a frame outside a set.
    Without groups every frame is its own "piece" for the InfoNCE candidates (frames of one piece
    are then not independent: pass groups).

    Args:
        model: a StyleVAE (any gamma).
        frames: (N, frame_size) binary frames, each piece's frames consecutive and in time order.
        groups: (N,) piece label per frame (``corpus.piece_index``), or None (one piece).
        seeds: probe seeds (mean and sd are over them).
        n_draws: posterior samples per held-out bar.
        n_candidates: InfoNCE candidates K (clipped to the held-out pieces).
        probe_max_epochs: the probes' epoch cap.

    Returns:
        dict: ``held_out_set``, ``same_corpus``, ``n_train_frames``, ``n_test_frames``, ``r_nats``,
        ``d_nats``, ``loss_nats``, ``f1``, ``precision``, ``recall`` (test), ``threshold``, ``gamma``,
        ``beta``, ``probe_seeds``, ``n_draws``, ``probe_epochs_lag1``, ``n_pairs_lag1_train``, then for
        the test pieces ``i_probe_lag1_nats``, ``i_probe_lag1_sd`` (sd over probe seeds),
        ``i_probe_lag1_se_nats`` (over test pairs), ``i_probe_lag1_by_seed``, ``i_nce_lag1_nats``,
        ``i_nce_lag1_sd``, ``i_nce_lag1_by_seed``, ``nce_candidates``, ``nce_log_k``,
        ``ce_marginal_lag1_nats``, ``ce_probe_lag1_nats``, ``i_probe_on_means_lag1_nats``,
        ``n_pairs_lag1_test``; with a predictor head ``head_lag1_nats`` (CE(marginal) - CE(head) on the
        same posterior samples: comparable with I_probe), ``head_lag1_sd``, ``head_nce_lag1_nats``,
        ``head_ce_lag1_nats`` (else these are nan); the same with the prefix ``val_`` for the
        validation pieces, plus ``val_r_nats``, ``val_d_nats``, ``val_f1``.

    Used in: ``qbdi evaluate``; notebook 06.
    """
    cfg = model.config
    x, groups = _checked_frames(frames, groups, cfg.input_dim)
    train_idx, val_idx, test_idx = split_pieces(len(x), cfg.validation_fraction, cfg.test_fraction,
                                                cfg.effective_split_seed, groups)
    role = "test" if len(test_idx) else "validation"
    held_idx = test_idx if len(test_idx) else val_idx
    s = held_out_scores(model, x[held_idx], None if groups is None else groups[held_idx], role)
    out = {"held_out_set": role, "same_corpus": model.fingerprint == frames_fingerprint(x),
           "n_train_frames": int(len(train_idx)), "n_test_frames": int(len(held_idx)),
           "gamma": cfg.gamma, "beta": cfg.beta, "threshold": model.threshold,
           "probe_seeds": [int(v) for v in seeds], "n_draws": int(n_draws),
           **{k: s[f"{role}_{k}"] for k in ("r_nats", "d_nats", "loss_nats", "f1", "precision", "recall")}}
    sets = {"test": held_idx}
    if len(test_idx):
        sv = held_out_scores(model, x[val_idx], None if groups is None else groups[val_idx], "validation")
        out.update({f"val_{k}": sv[f"validation_{k}"] for k in ("r_nats", "d_nats", "f1")})
        sets["val"] = val_idx
    mean, logvar = model.encode(x)
    std = np.exp(0.5 * np.asarray(logvar, np.float32))
    nxt = successor_index(groups, len(x))
    pieces = np.arange(len(x)) if groups is None else groups
    src_tr, dst_tr = successor_pairs(nxt, train_idx)
    held = {}
    for name, idx in sets.items():
        src, dst = successor_pairs(nxt, idx)
        held[name] = (mean[idx][src], std[idx][src], x[idx][dst], pieces[idx][src])
    head = None
    if model.has_predictor:
        head = lambda z: _head_logits(model, z)  # noqa: E731
    res = probe_bounds(mean[train_idx][src_tr], x[train_idx][dst_tr], held, hidden_dim=cfg.hidden_dim,
                       z_train_std=std[train_idx][src_tr], groups_train=pieces[train_idx][src_tr],
                       seeds=seeds, n_draws=n_draws, n_candidates=n_candidates, head=head,
                       probe_max_epochs=probe_max_epochs)
    out["probe_epochs_lag1"] = res["probe_epochs"]
    out["critic_temperatures"] = res["critic_temperatures"]
    out["head_critic_temperatures"] = res["head_critic_temperatures"]
    out["n_pairs_lag1_train"] = res["n_train"]
    for name in sets:
        out.update(_lag1_columns(res[name], "" if name == "test" else "val_"))
    return out


def _lag1_columns(r: dict, pre: str) -> dict:
    """The columns of :func:`evaluate` for one held-out set's :func:`probe_bounds` numbers, names prefixed ``pre``."""
    return {
        f"{pre}i_probe_lag1_nats": r["i_probe_nats"], f"{pre}i_probe_lag1_sd": r["i_probe_sd"],
        f"{pre}i_probe_lag1_se_nats": r["i_probe_se_nats"], f"{pre}i_probe_lag1_by_seed": r["i_probe_by_seed"],
        f"{pre}i_nce_lag1_nats": r["i_nce_nats"], f"{pre}i_nce_lag1_sd": r["i_nce_sd"],
        f"{pre}i_nce_lag1_by_seed": r["i_nce_by_seed"], f"{pre}nce_candidates": r["n_candidates"],
        f"{pre}nce_log_k": r["log_k"], f"{pre}ce_marginal_lag1_nats": r["ce_marginal_nats"],
        f"{pre}ce_probe_lag1_nats": r["ce_probe_nats"],
        f"{pre}i_probe_on_means_lag1_nats": r["i_probe_on_means_nats"], f"{pre}n_pairs_lag1_test": r["n"],
        **{f"{pre}{k}": r.get(v, float("nan")) for k, v in (
            ("head_lag1_nats", "head_nats"), ("head_lag1_sd", "head_sd"),
            ("head_nce_lag1_nats", "head_nce_nats"), ("head_ce_lag1_nats", "head_ce_nats"))}}


def _checked_frames(frames, groups, input_dim: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``frames`` as (N, input_dim) uint8 0/1 and ``groups`` as an (N,) array (or None), checked."""
    x = (np.asarray(frames) != 0).astype(np.uint8)
    if x.ndim != 2 or x.shape[1] != input_dim:
        raise ValueError(f"frames must have shape (N, {input_dim}), got {x.shape}")
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(x):
            raise ValueError(f"groups must have {len(x)} entries, got {len(groups)}")
    return x, groups


def _head_logits(model: StyleVAE, z: np.ndarray) -> np.ndarray:
    """The predictor head's logits (from its probabilities, clipped to 1e-7 so no logit is infinite)."""
    p = np.clip(model.predict_next(np.asarray(z, np.float32)).astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def _evaluation_path(model: StyleVAE, x: np.ndarray, groups, options: dict):
    """Where :func:`grid` keeps one model's evaluation: keyed on the method and the probe's schedule, the model's
    config, its weights (the latent means of a few frames) and data, the pieces and the evaluation options."""
    h = hashlib.sha256(json.dumps([_PROBE_METHOD, _PROBE_BATCH, _PROBE_PATIENCE, _PROBE_LR, _STOP_FRACTION,
                                   _DRAW_STREAM, options], sort_keys=True).encode())
    h.update(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    h.update(str(model.fingerprint).encode() + frames_fingerprint(x).encode())
    h.update(b"" if groups is None else np.ascontiguousarray(np.asarray(groups, np.int64)).tobytes())
    h.update(np.ascontiguousarray(np.asarray(model.encode(x[:16])[0], np.float32)).tobytes())
    return paths.models_dir() / "evaluations" / f"{h.hexdigest()[:16]}.json"


def grid(configs, frames: np.ndarray, groups: np.ndarray | None = None, *, source: str = "chorales",
         seeds=DEFAULT_PROBE_SEEDS, n_draws: int = DEFAULT_DRAWS, n_candidates: int = DEFAULT_CANDIDATES,
         probe_max_epochs: int = _PROBE_MAX_EPOCHS, progress: bool = False, model_fn=None,
         cache: bool = True, meter: str | None = METER_ANY) -> list[dict]:
    """One :func:`evaluate` row per model configuration (e.g. beta x gamma x seed), models cached on disk.

    The probes are the slow part (one fit per probe seed and model), so with ``cache`` each model's
    evaluation is kept as JSON in ``models_dir()/evaluations``, keyed on the model's configuration,
    its weights (latent means of the first frames), the frames, the pieces and the evaluation
    options; a changed model or corpus misses the cache and is evaluated again.

    Args:
        configs: iterable of :class:`qbdi_utils.model.VAEConfig`.
        frames: (N, frame_size) binary frames of the corpus the models are trained on.
        groups: (N,) piece label per frame (``corpus.piece_index``), or None.
        source: corpus name for :func:`qbdi_utils.training.cached_model`.
        seeds, n_draws, n_candidates, probe_max_epochs: as :func:`evaluate` (the same for every model).
        progress: progress bars while training.
        model_fn: optional ``config -> StyleVAE`` used instead of ``cached_model`` (tests, other caches).
        cache: reuse (and store) evaluations in ``models_dir()/evaluations``.
        meter: the corpus meter the models are trained on (``cached_model``'s); ``frames`` must be
            that corpus, or the rows' ``same_corpus`` is False and their test pieces may have trained
            the model.

    Returns:
        list of dicts in the order of ``configs``: ``gamma``, ``beta``, ``seed`` (the model's training
        seed), ``epochs`` (its config's), ``train_seconds`` (``model.info``; nan if unknown), ``info``
        (the model's held-out numbers from training: ``validation_loss_nats`` etc., the keys of
        ``model.info`` that are numbers), then every key of :func:`evaluate`.

    Used in: notebook 06 (predictive training).
    """
    x = (np.asarray(frames) != 0).astype(np.uint8)
    options = {"seeds": [int(s) for s in seeds], "n_draws": int(n_draws), "n_candidates": int(n_candidates),
               "probe_max_epochs": int(probe_max_epochs)}
    rows = []
    for cfg in configs:
        if not isinstance(cfg, VAEConfig):
            raise TypeError(f"configs must hold VAEConfig objects, got {type(cfg).__name__}")
        model = (cached_model(cfg, source=source, progress=progress, meter=meter) if model_fn is None
                 else model_fn(cfg))
        path = _evaluation_path(model, x, groups, options) if cache else None
        if path is not None and path.is_file():
            r = json.loads(path.read_text())
        else:
            r = evaluate(model, x, groups, seeds=seeds, n_draws=n_draws, n_candidates=n_candidates,
                         probe_max_epochs=probe_max_epochs)
            if path is not None:
                files.write_text(path, json.dumps(r, sort_keys=True), force=True)
        info = getattr(model, "info", None) or {}
        rows.append({"gamma": float(cfg.gamma), "beta": float(cfg.beta), "seed": int(cfg.seed),
                     "epochs": int(cfg.epochs), "train_seconds": float(info.get("train_seconds", np.nan)),
                     "info": {k: v for k, v in info.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
                     **{k: v for k, v in r.items() if k not in ("gamma", "beta")}})
    return rows


def mean_sd(rows, by=("gamma", "beta"), metrics=GRID_METRICS) -> list[dict]:
    """Mean and sample standard deviation (ddof = 1) of each metric over the rows sharing the ``by`` keys.

    Args:
        rows: dicts (e.g. from :func:`grid`), each with the ``by`` keys and the ``metrics``.
        by: keys that name a group (rows with equal values are pooled; e.g. the seeds of one gamma, beta).
        metrics: numeric keys to aggregate.

    Returns:
        one dict per group, groups in first-seen order: the ``by`` values, ``n`` (rows pooled), and
        ``<metric>_mean``, ``<metric>_sd`` for each metric (sd is nan for a group of one row).

    Used in: notebook 06 (predictive training).
    """
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), []).append(r)
    out = []
    for key, members in groups.items():
        row = dict(zip(by, key))
        row["n"] = len(members)
        for m in metrics:
            v = np.array([float(r[m]) for r in members], np.float64)
            row[f"{m}_mean"] = float(v.mean())
            row[f"{m}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
        out.append(row)
    return out


def paired_differences(rows, metric: str, a: dict, b: dict, *, pair_by: str = "seed",
                       confidence: float = 0.95) -> dict:
    """Mean difference of a metric between two configurations over matched rows (b minus a), with its uncertainty.

    Rows of configuration ``a`` and ``b`` (dicts of key -> value that select rows, e.g.
    ``{"gamma": 0.0, "beta": 1.0}``) are paired on ``pair_by`` (the training seed: the same split,
    the same seed's initial draw); the differences' mean, sd, standard error, Student t and the
    two-sided t confidence interval are returned.

    Args:
        rows: dicts (e.g. from :func:`grid`).
        metric: the numeric key compared.
        a, b: the two selections.
        pair_by: key on which rows are paired (each value at most once per selection).
        confidence: level of the interval.

    Returns:
        dict ``n`` (pairs), ``mean``, ``sd``, ``se``, ``t``, ``ci_low``, ``ci_high``, ``positive``
        (pairs with b > a), ``diffs`` (per pair, in the order of the pairing values).

    Raises:
        ValueError: fewer than 2 pairs, or a pairing value twice in one selection.

    Used in: notebook 06 (predictive training).
    """
    from scipy import stats

    def pick(sel):
        out = {}
        for r in rows:
            if all(r[k] == v for k, v in sel.items()):
                if r[pair_by] in out:
                    raise ValueError(f"{pair_by} = {r[pair_by]} twice in the rows of {sel}")
                out[r[pair_by]] = float(r[metric])
        return out

    ra, rb = pick(a), pick(b)
    keys = sorted(set(ra) & set(rb))
    if len(keys) < 2:
        raise ValueError(f"need at least 2 pairs on {pair_by!r} between {a} and {b}, got {len(keys)}")
    d = np.array([rb[k] - ra[k] for k in keys])
    n, m, sd = len(d), float(d.mean()), float(d.std(ddof=1))
    se = sd / np.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    return {"n": n, "mean": m, "sd": sd, "se": se, "t": m / se if se > 0 else float("inf") * np.sign(m),
            "ci_low": m - half, "ci_high": m + half, "positive": int(np.sum(d > 0)), "diffs": d.tolist()}

