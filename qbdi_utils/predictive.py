"""Predictive information of a style VAE's latent states, measured without trusting its head.

PAPER.md section 8 (the paper's Appendix B): for Y a target (the next bar x_{t+1}, lag 1, or the
bar itself, lag 0) and Z the latent state of bar t, any predictor q(y | z) gives the variational
lower bound I(Z;Y) >= H(Y) - E[-log q(Y | Z)]. Replacing H(Y) by the cross-entropy of the best
predictor that ignores z (per-cell Bernoulli rates, itself >= H(Y) on unseen data up to sampling
noise) gives

    I_probe(Z;Y) = CE(marginal) - CE(probe given z)          nats per frame,

both cross-entropies measured on held-out (test) pieces.

**What it bounds.** CE(probe) - H(Y) >= 0, so H(Y) - CE(probe) is a lower bound of I(Z;Y) (up to
sampling noise). The marginal here is *factorised* (independent cells), and its cross-entropy
exceeds H(Y) by the cells' total correlation (notes sound for many steps, chords move together:
on the chorales this is large). So I_probe is a lower bound of I(Z;Y) + [CE(marginal) - H(Y)],
not of I(Z;Y) alone: on a synthetic corpus whose next bar is one of 12 bars chosen by the current
one, I(Z;Y) <= ln 12 = 2.5 nats while I_probe is ~150 nats. The marginal term depends on the data
only, so *differences* of I_probe between models on the same pieces are differences of probe
cross-entropies, an honest comparison; read absolute values as "nats per frame the latent state
saves a cell-wise predictor", not as mutual information.

The probe is *fresh*: the same family as
the predictor head (latent -> hidden_dim ReLU -> frame_size Bernoulli logits), fitted on the frozen
encoder's latent states of the *training* pieces only, never on the head's weights. It is a plain
numpy MLP (Adam, float32), deterministic for a seed, stopped early on a tenth of the training pieces;
it starts from the marginal (output bias = logit of the rates, tiny output weights), so epoch 0 is the
marginal and an uninformative z gives I_probe ~ 0 rather than a negative number from overfitting.

**Inputs: posterior samples for fitting, means for scoring.** Each epoch the probe is fitted on
fresh samples z = mean + std * eps of the frozen encoder's posterior q(z | x_t) -- the inputs the
predictor head sees while it trains -- and it is scored (stop set and test pieces) on the posterior
means. A first version fitted on the means alone: with ~4,700 training pairs and 1.5 M weights it
over-fitted within 3-8 epochs and, for the gamma = 4 models of notebook 06 (rate ~65 nats), fell
below the very head it is meant to check (I_probe 14.9 and -0.8 nats against the head's 16.1 and
17.7 on the same test pairs); fitted on posterior samples the same probe reached 23.1 and 14.7. Any
predictor of y from the mean gives a lower bound, so scoring on means keeps the bound valid.

:func:`evaluate` reports a model's test R, D, note F1 and I_probe at lag 1 and lag 0 (``qbdi
evaluate``).

Used in: ``qbdi evaluate``; notebook 06 (deep music information dynamics) is to call :func:`evaluate`.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from qbdi_utils import files, paths
from qbdi_utils.model import StyleVAE, VAEConfig, frames_fingerprint
from qbdi_utils.training import cached_model, held_out_scores, split_held_out, split_pieces, successor_index

__all__ = ["GRID_METRICS", "bernoulli_ce", "evaluate", "fit_probe", "grid", "marginal_rates", "mean_sd",
           "probe_information"]

_PROBE_BATCH = 256
_PROBE_MAX_EPOCHS = 15
_PROBE_PATIENCE = 3
_PROBE_LR = 2e-3
_STOP_FRACTION = 0.1
# Version of the probe's method, part of the key of grid()'s stored evaluations: 2 = fitted on
# posterior samples (1 fitted on the means), so evaluations of another method are never reused.
_PROBE_METHOD = 2

#: the per-model numbers :func:`mean_sd` aggregates by default (test R, D, note F1, I_probe lag 1 and 0).
GRID_METRICS = ("r_nats", "d_nats", "f1", "i_probe_lag1_nats", "i_probe_lag0_nats")


def marginal_rates(y: np.ndarray) -> np.ndarray:
    """Per-cell Bernoulli rates of binary targets, Krichevsky-Trofimov smoothed: (k + 1/2) / (n + 1).

    Args:
        y: (N, D) binary targets.

    Returns:
        (D,) float64 rates in (0, 1) (never 0 or 1, so unseen cells cost finite nats).

    Used in: :func:`probe_information`.
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

    Used in: :func:`probe_information`.
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

    Used in: :func:`probe_information`.
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
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1_, b2_, tiny = 0.9, 0.999, 1e-7
    t = 0
    best = ([p.copy() for p in params], 0)
    stop_ce = [_ce_mean(params, zs, ys)]
    since_best = 0
    for epoch in range(1, int(max_epochs) + 1):
        order = rng.permutation(len(zf))
        z_epoch = zf if sf is None else zf + sf * rng.standard_normal(zf.shape, dtype=np.float32)
        for i in range(0, len(order), batch_size):
            b = order[i:i + batch_size]
            zb, yb = z_epoch[b], yf[b]
            h, logits = _forward(params, zb)
            with np.errstate(over="ignore"):  # exp(-logit) -> inf gives sigmoid 0, as it should
                dl = (1.0 / (1.0 + np.exp(-logits)) - yb) / len(b)  # d mean CE / d logits
            dh = (dl @ params[2].T) * (h > 0)
            grads = [zb.T @ dh, dh.sum(axis=0), h.T @ dl, dl.sum(axis=0)]
            t += 1
            lr_t = learning_rate * np.sqrt(1 - b2_ ** t) / (1 - b1_ ** t)
            for k, g in enumerate(grads):
                m[k] *= b1_
                m[k] += (1 - b1_) * g
                v[k] *= b2_
                v[k] += (1 - b2_) * (g * g)
                params[k] -= (lr_t * m[k] / (np.sqrt(v[k]) + tiny)).astype(np.float32)
        stop_ce.append(_ce_mean(params, zs, ys))
        if stop_ce[-1] < min(stop_ce[:-1]):
            best, since_best = ([p.copy() for p in params], epoch), 0
        else:
            since_best += 1
            if since_best >= patience:
                break
    return {"params": best[0], "epochs": best[1], "stop_ce_nats": stop_ce}


def probe_information(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray,
                      y_test: np.ndarray, *, hidden_dim: int, seed: int = 0,
                      groups_train: np.ndarray | None = None,
                      z_train_std: np.ndarray | None = None) -> dict:
    """I_probe(Z;Y) = CE(marginal) - CE(probe | z) on test pairs, probe and marginal fitted on training pairs.

    Args:
        z_train, y_train: (N, L) inputs and (N, D) binary targets of training pieces.
        z_test, y_test: (M, L) and (M, D) of test pieces.
        hidden_dim: the probe's hidden units.
        seed: seeds the probe's fit.
        groups_train: (N,) piece label of each training row (for the early-stopping split).
        z_train_std: optional (N, L) posterior standard deviations of the training rows: the probe
            is then fitted on posterior samples (:func:`fit_probe`); test rows are scored as given.

    Returns:
        dict ``i_probe_nats`` (mean over test rows, nats per frame), ``i_probe_se_nats`` (its
        standard error over test rows), ``ce_probe_nats``, ``ce_marginal_nats`` (test, nats per
        frame), ``n_train``, ``n_test``, ``probe_epochs``.

    Used in: :func:`evaluate`; tests/test_predictive.py.
    """
    y_test = (np.asarray(y_test) != 0)
    fit = fit_probe(z_train, y_train, hidden_dim=hidden_dim, seed=seed, groups=groups_train,
                    z_std=z_train_std)
    rates = marginal_rates(y_train)
    ce_marg = bernoulli_ce(np.log(rates / (1 - rates))[None, :], y_test)
    ce_probe = np.concatenate([
        bernoulli_ce(_forward(fit["params"], np.asarray(z_test[i:i + 2048], np.float32))[1],
                     y_test[i:i + 2048]) for i in range(0, len(y_test), 2048)]) if len(y_test) else np.zeros(0)
    diff = ce_marg - ce_probe
    n = len(diff)
    return {"i_probe_nats": float(diff.mean()) if n else float("nan"),
            "i_probe_se_nats": float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
            "ce_probe_nats": float(ce_probe.mean()) if n else float("nan"),
            "ce_marginal_nats": float(ce_marg.mean()) if n else float("nan"),
            "n_train": int(len(z_train)), "n_test": int(n), "probe_epochs": int(fit["epochs"])}


def _pairs(groups, idx, lag):
    """(source rows, target rows) of (x_t, x_{t+lag}) pairs inside the frames ``idx`` (whole pieces)."""
    g = None if groups is None else np.asarray(groups)[idx]
    if lag == 0:
        rows = np.arange(len(idx))
        return rows, rows
    nxt = successor_index(g, len(idx))
    src = np.flatnonzero(nxt >= 0)
    return src, nxt[src]


def evaluate(model: StyleVAE, frames: np.ndarray, groups: np.ndarray | None = None, *,
             seed: int = 0) -> dict:
    """Test-piece R, D, note F1 and I_probe(Z;Y) at lag 1 (next bar) and lag 0 (the bar itself).

    The frames are split as the model's training split them (its config's fractions and seed,
    :func:`qbdi_utils.training.split_pieces`); on the same corpus the model was trained on
    (``same_corpus``), the training pieces are the model's and the test pieces were never seen.
    A model without a test set (format 1) is measured on its validation pieces (``held_out_set``).
    The probes are fitted on posterior samples of the frozen encoder over training pieces only
    (fresh each epoch) and scored on the posterior means of the test pieces.

    Args:
        model: a StyleVAE (any gamma).
        frames: (N, frame_size) binary frames, each piece's frames consecutive and in time order.
        groups: (N,) piece label per frame (``corpus.piece_index``), or None (one piece).
        seed: seeds the probes' fits.

    Returns:
        dict: ``held_out_set``, ``same_corpus``, ``n_train_frames``, ``n_test_frames``,
        ``r_nats``, ``d_nats``, ``loss_nats``, ``f1``, ``precision``, ``recall`` (test),
        ``threshold``, ``gamma``, ``beta``, then for lag in (1, 0): ``i_probe_lag{lag}_nats``,
        ``i_probe_lag{lag}_se_nats``, ``ce_probe_lag{lag}_nats``, ``ce_marginal_lag{lag}_nats``,
        ``n_pairs_lag{lag}_train``, ``n_pairs_lag{lag}_test``, ``probe_epochs_lag{lag}``;
        with a predictor head also ``head_ce_lag1_nats`` (the trained head on test pairs, z = mean).

    Used in: ``qbdi evaluate``; notebook 06.
    """
    cfg = model.config
    x = (np.asarray(frames) != 0).astype(np.uint8)
    if x.ndim != 2 or x.shape[1] != cfg.input_dim:
        raise ValueError(f"frames must have shape (N, {cfg.input_dim}), got {x.shape}")
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(x):
            raise ValueError(f"groups must have {len(x)} entries, got {len(groups)}")
    train_idx, val_idx, test_idx = split_pieces(len(x), cfg.validation_fraction, cfg.test_fraction,
                                                cfg.seed, groups)
    role = "test" if len(test_idx) else "validation"
    held_idx = test_idx if len(test_idx) else val_idx
    g_held = None if groups is None else groups[held_idx]
    s = held_out_scores(model, x[held_idx], g_held, role)
    out = {"held_out_set": role, "same_corpus": model.fingerprint == frames_fingerprint(x),
           "n_train_frames": int(len(train_idx)), "n_test_frames": int(len(held_idx)),
           "gamma": cfg.gamma, "beta": cfg.beta, "threshold": model.threshold,
           **{k: s[f"{role}_{k}"] for k in ("r_nats", "d_nats", "loss_nats", "f1", "precision", "recall")}}
    mean, logvar = model.encode(x)
    std = np.exp(0.5 * np.asarray(logvar, np.float32))
    for lag in (1, 0):
        src_tr, dst_tr = _pairs(groups, train_idx, lag)
        src_te, dst_te = _pairs(groups, held_idx, lag)
        z_tr, z_te = mean[train_idx][src_tr], mean[held_idx][src_te]
        res = probe_information(z_tr, x[train_idx][dst_tr], z_te, x[held_idx][dst_te],
                                hidden_dim=cfg.hidden_dim, seed=seed,
                                groups_train=None if groups is None else groups[train_idx][src_tr],
                                z_train_std=std[train_idx][src_tr])
        out.update({f"i_probe_lag{lag}_nats": res["i_probe_nats"],
                    f"i_probe_lag{lag}_se_nats": res["i_probe_se_nats"],
                    f"ce_probe_lag{lag}_nats": res["ce_probe_nats"],
                    f"ce_marginal_lag{lag}_nats": res["ce_marginal_nats"],
                    f"n_pairs_lag{lag}_train": res["n_train"], f"n_pairs_lag{lag}_test": res["n_test"],
                    f"probe_epochs_lag{lag}": res["probe_epochs"]})
        if lag == 1 and model.has_predictor and len(src_te):
            p = np.clip(model.predict_next(z_te).astype(np.float64), 1e-7, 1 - 1e-7)
            y = x[held_idx][dst_te]
            out["head_ce_lag1_nats"] = float(-np.sum(y * np.log(p) + (1 - y) * np.log1p(-p), axis=1).mean())
    return out


def _evaluation_path(model: StyleVAE, x: np.ndarray, groups, seed: int):
    """Where :func:`grid` keeps one model's evaluation: keyed on the probe's method and schedule, the model's
    config, its weights (the latent means of a few frames) and data, the pieces and the probe seed."""
    h = hashlib.sha256(json.dumps([_PROBE_METHOD, _PROBE_BATCH, _PROBE_MAX_EPOCHS, _PROBE_PATIENCE, _PROBE_LR,
                                   _STOP_FRACTION]).encode())
    h.update(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    h.update(str(model.fingerprint).encode() + frames_fingerprint(x).encode() + str(int(seed)).encode())
    h.update(b"" if groups is None else np.ascontiguousarray(np.asarray(groups, np.int64)).tobytes())
    h.update(np.ascontiguousarray(np.asarray(model.encode(x[:16])[0], np.float32)).tobytes())
    return paths.models_dir() / "evaluations" / f"{h.hexdigest()[:16]}.json"


def grid(configs, frames: np.ndarray, groups: np.ndarray | None = None, *, source: str = "chorales",
         seed: int = 0, progress: bool = False, model_fn=None, cache: bool = True) -> list[dict]:
    """One :func:`evaluate` row per model configuration (e.g. gamma x beta x seed), models cached on disk.

    The probes are the slow part (two fits per model), so with ``cache`` each model's evaluation is
    kept as JSON in ``models_dir()/evaluations``, keyed on the model's configuration, its weights
    (latent means of the first frames), the frames, the pieces and ``seed``; a changed model or
    corpus misses the cache and is evaluated again.

    Args:
        configs: iterable of :class:`qbdi_utils.model.VAEConfig` (e.g. ``PRESETS["paper"].replace(gamma=1.0, seed=1)``).
        frames: (N, frame_size) binary frames of the corpus the models are trained on.
        groups: (N,) piece label per frame (``corpus.piece_index``), or None.
        source: corpus name for :func:`qbdi_utils.training.cached_model`.
        seed: seeds the probes' fits (the same for every model, so rows differ by model only).
        progress: progress bars while training.
        model_fn: optional ``config -> StyleVAE`` used instead of ``cached_model`` (tests, other caches).
        cache: reuse (and store) evaluations in ``models_dir()/evaluations``.

    Returns:
        list of dicts in the order of ``configs``: ``gamma``, ``beta``, ``seed`` (the model's training
        seed), ``epochs``, ``train_seconds`` (the wall time its training took when it was trained, as
        recorded in ``model.info``; nan if unknown), then every key of :func:`evaluate`
        (``gamma``/``beta`` agree with the config).

    Used in: notebook 06 (predictive training).
    """
    x = (np.asarray(frames) != 0).astype(np.uint8)
    rows = []
    for cfg in configs:
        if not isinstance(cfg, VAEConfig):
            raise TypeError(f"configs must hold VAEConfig objects, got {type(cfg).__name__}")
        model = cached_model(cfg, source=source, progress=progress) if model_fn is None else model_fn(cfg)
        path = _evaluation_path(model, x, groups, seed) if cache else None
        if path is not None and path.is_file():
            r = json.loads(path.read_text())
        else:
            r = evaluate(model, x, groups, seed=seed)
            if path is not None:
                files.write_text(path, json.dumps(r, sort_keys=True), force=True)
        rows.append({"gamma": float(cfg.gamma), "beta": float(cfg.beta), "seed": int(cfg.seed),
                     "epochs": int(cfg.epochs),
                     "train_seconds": float((getattr(model, "info", None) or {}).get("train_seconds", np.nan)),
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
