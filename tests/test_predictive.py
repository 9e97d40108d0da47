"""Tests of the predictive VAE (gamma > 0, qbdi_utils.training/model) and of the probe (qbdi_utils.predictive).

The predictive term is checked against an independent numpy forward pass, pairs against hand-made
piece layouts, I_probe against synthetic corpora whose next bar is independent of / determined by
the current one, and `qbdi train --gamma` / `qbdi evaluate` through the CLI's main().
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from qbdi_utils import pianoroll, predictive, training
from qbdi_utils.model import PRESETS, StyleVAE, predictive_terms, synthetic_frames
from qbdi_utils.cli import main
from qbdi_utils.errors import ModelError
from qbdi_utils.pianoroll import RollSpec


# ---------------------------------------------------------------------------- pairs

def test_successor_index_never_crosses_a_piece():
    groups = np.array([4, 4, 4, 9, 9])  # two pieces: 3 bars, then 2 bars
    nxt = training.successor_index(groups, 5)
    assert nxt.tolist() == [1, 2, -1, 4, -1]
    assert training.successor_index(None, 3).tolist() == [1, 2, -1]
    # within a subset (a side of the split) a successor outside it is no successor
    sub = training.subset_successors(nxt, np.array([0, 1, 3, 4]))
    assert sub.tolist() == [1, -1, 3, -1]


def _chord_pieces(n_pieces, bars, seed, deterministic, bank_size=12):
    """Pieces of bars from a bank of chord bars: next bar = bank[k+1] (deterministic) or random."""
    rng = np.random.default_rng(seed)
    bank = synthetic_frames(bank_size, seed=seed + 100)
    frames, groups = [], []
    for p in range(n_pieces):
        k = int(rng.integers(bank_size))
        for _ in range(bars):
            frames.append(bank[k])
            groups.append(p)
            k = (k + 1) % bank_size if deterministic else int(rng.integers(bank_size))
    return np.array(frames), np.array(groups)


@pytest.fixture(scope="module")
def gamma_model():
    frames, groups = _chord_pieces(10, 12, seed=0, deterministic=True)
    model, h = training.train(frames, groups=groups, hidden_dim=32, latent_dim=8, epochs=4, beta=0.5,
                               gamma=2.0, seed=1, progress=False)
    return model, h, frames, groups


def test_training_pairs_stay_inside_training_pieces(gamma_model):
    model, h, frames, groups = gamma_model
    tr = h["train_idx"]
    n_train_pieces = len(np.unique(groups[tr]))
    # every training piece loses exactly its last bar as a source; nothing pairs across pieces
    assert h["n_pairs"] == model.info["n_train_pairs"] == len(tr) - n_train_pieces
    src = np.flatnonzero(h["next_tr"] >= 0)
    dst = h["next_tr"][src]
    assert np.all(groups[tr][src] == groups[tr][dst]) and np.all(tr[dst] == tr[src] + 1)


# ---------------------------------------------------------------------------- the term

def test_predictive_term_matches_numpy(gamma_model):
    keras = pytest.importorskip("keras")
    model, h, frames, groups = gamma_model
    x = frames[:30].astype(np.float32)
    nxt = training.successor_index(groups[:30], 30)
    mask = (nxt >= 0).astype(np.float32)
    y = x[np.maximum(nxt, 0)]
    eps = np.random.default_rng(3).standard_normal((30, model.latent_dim)).astype(np.float32)
    d, r, p = (keras.ops.convert_to_numpy(t) for t in predictive_terms(
        model.networks.encoder, model.networks.decoder, model.networks.predictor, x, y=y, mask=mask, eps=eps))
    # independent numpy forward pass in float64, NLL written with log(sigmoid) not softplus
    w = [np.asarray(a, np.float64) for a in model.get_weights()]
    We1, be1, Wm, bm, Wv, bv, Wd1, bd1, Wo, bo, Wp1, bp1, Wpo, bpo = w
    hh = np.maximum(x @ We1 + be1, 0)
    mean, logvar = hh @ Wm + bm, hh @ Wv + bv
    z = mean + np.exp(0.5 * logvar) * eps
    q = 1 / (1 + np.exp(-(np.maximum(z @ Wp1 + bp1, 0) @ Wpo + bpo)))
    ce = -np.sum(y * np.log(q) + (1 - y) * np.log1p(-q), axis=1)
    # P is the mean over the batch's PAIRS: p sums to the pairs' CE, scaled by frames / pairs
    np.testing.assert_allclose(p, mask * ce * (30 / mask.sum()), rtol=2e-4)
    np.testing.assert_allclose(p.mean(), ce[mask == 1].mean(), rtol=2e-4)
    assert np.all(p[mask == 0] == 0) and mask.sum() < 30  # last bars contribute nothing
    probs = 1 / (1 + np.exp(-(np.maximum(z @ Wd1 + bd1, 0) @ Wo + bo)))
    np.testing.assert_allclose(d, -np.sum(x * np.log(probs) + (1 - x) * np.log1p(-probs), axis=1), rtol=2e-4)
    # the optimiser saw D + beta R + gamma P (beta 0.5, gamma 2)
    for k in ("", "val_"):
        np.testing.assert_allclose(h[k + "loss"], np.array(h[k + "d_nats"]) + 0.5 * np.array(h[k + "r_nats"])
                                   + 2.0 * np.array(h[k + "p_nats"]), rtol=1e-5)


def test_gamma_zero_is_the_headless_model():
    frames, groups = _chord_pieces(6, 10, seed=2, deterministic=True)
    kw = dict(groups=groups, hidden_dim=16, latent_dim=4, epochs=2, seed=4, progress=False)
    a, _ = training.train(frames, **kw)
    b, _ = training.train(frames, gamma=0.0, **kw)
    c, _ = training.train(frames, gamma=1.0, **kw)
    assert not a.has_predictor and not b.has_predictor and c.has_predictor
    assert len(a.get_weights()) == 10 and len(c.get_weights()) == 14
    assert all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))
    # the head does change training (so the equality above is not vacuous)
    assert not all(np.array_equal(u, v) for u, v in zip(a.get_weights(), c.get_weights()[:10]))


@pytest.mark.parametrize("loop", ["auto", "keras"])
def test_both_loops_train_the_head(loop):
    frames, groups = _chord_pieces(6, 10, seed=2, deterministic=True)
    _, h = training.train(frames, groups=groups, hidden_dim=16, latent_dim=4, epochs=3, gamma=1.0,
                           seed=4, progress=False, fit_options={"loop": loop})
    assert h["p_nats"][-1] < h["p_nats"][0] and len(h["val_p_nats"]) == 3


def test_gamma_model_saves_loads_and_works(gamma_model, tmp_path):
    model, _, frames, _ = gamma_model
    assert "gamma=2.0" in repr(model) and "predictor 8->32->2496" in repr(model)
    model.save(tmp_path / "m")
    m2 = StyleVAE.load(tmp_path / "m")
    assert m2.config.gamma == 2.0 and repr(m2) == repr(model)
    z = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    assert np.array_equal(m2.predict_next(z), model.predict_next(z))
    assert np.array_equal(m2.reconstruct(frames[:4]), model.reconstruct(frames[:4]))
    assert m2.sample(3, seed=1).shape == (3, 2496)
    with pytest.raises(ModelError, match="no predictor head"):
        headless, _ = training.train(frames[:30], hidden_dim=8, latent_dim=4, epochs=1, progress=False)
        headless.predict_next(z[:, :4])


# ---------------------------------------------------------------------------- the probe

@pytest.mark.parametrize("deterministic", [False, True])
def test_bounds_tell_dependence(deterministic):
    """On posterior samples, I_probe and I_NCE ~ 0 when the next bar is independent of the current
    one, clearly > 0 when it is determined; InfoNCE never above log K; spreads over 3 probe seeds."""
    frames, groups = _chord_pieces(60, 12, seed=5, deterministic=deterministic)
    model, _ = training.train(frames, groups=groups, hidden_dim=32, latent_dim=8, epochs=8, seed=0,
                               beta=0.5, progress=False)
    r = predictive.evaluate(model, frames, groups, seeds=(0, 1, 2), n_draws=4, n_candidates=8)
    i, se, nce = r["i_probe_lag1_nats"], r["i_probe_lag1_se_nats"], r["i_nce_lag1_nats"]
    n_test_pieces = 6  # 10 % of 60 pieces
    assert r["n_pairs_lag1_test"] == r["n_test_frames"] - n_test_pieces  # no pair across pieces
    assert r["nce_candidates"] == 6 and r["nce_log_k"] == pytest.approx(np.log(6))
    assert len(r["i_probe_lag1_by_seed"]) == 3 and np.isfinite(r["i_probe_lag1_sd"])
    assert max(r["i_nce_lag1_by_seed"]) <= np.log(6) + 1e-9
    assert max(r["val_i_nce_lag1_by_seed"]) <= r["val_nce_log_k"] + 1e-9
    # an 8-epoch code and a probe that saves ~15 of ~210 nats: the critic ranks the true code above
    # ~84 % of other pieces' codes, which is worth ~0.2 of the log 6 = 1.8 nats InfoNCE could show
    if deterministic:
        assert i > 3 * se and i > 3.0
        assert min(r["i_nce_lag1_by_seed"]) > 0.08, r["i_nce_lag1_by_seed"]
    else:
        assert abs(i) < 3 * se + 0.5
        assert abs(nce) < 0.05, r["i_nce_lag1_by_seed"]
    assert np.isnan(r["head_lag1_nats"])  # gamma = 0: no head


def test_info_nce_never_exceeds_log_k_and_matches_a_gaussian_pair():
    """X ~ N(0, 1), Y = rho X + sqrt(1 - rho^2) N: I(X;Y) = -ln(1 - rho^2) / 2. With the true
    log-density ratio as critic InfoNCE is a lower bound close to it when I << log K, and never
    above log K (saturated when I >> log K)."""
    rng = np.random.default_rng(0)

    def bound(rho, k, n=4000):
        x = rng.standard_normal((n, k))  # column 0 is the pair's own x, the rest independent draws
        y = rho * x[:, 0] + np.sqrt(1 - rho ** 2) * rng.standard_normal(n)
        # log p(y | x) up to terms in y alone (they cancel in InfoNCE)
        s = -(y[:, None] - rho * x) ** 2 / (2 * (1 - rho ** 2))
        return predictive.info_nce(s)

    rho = 0.8
    truth = -0.5 * np.log(1 - rho ** 2)  # 0.511 nats
    v = bound(rho, 256)
    se = v.std(ddof=1) / np.sqrt(len(v))
    assert v.mean() < truth + 3 * se and v.mean() > truth - 0.05
    # brute force: the same bound by explicit sums over the K candidates, row by row
    rng2 = np.random.default_rng(1)
    x = rng2.standard_normal((50, 16))
    y = rho * x[:, 0] + 0.6 * rng2.standard_normal(50)
    s = -(y[:, None] - rho * x) ** 2 / 0.72
    brute = [s[i, 0] - np.log(np.mean([np.exp(s[i, j]) for j in range(16)])) for i in range(50)]
    np.testing.assert_allclose(predictive.info_nce(s), brute, rtol=1e-10, atol=1e-12)
    # saturation: I = 4.6 nats, K = 8: every row <= log 8, the mean close to it
    w = bound(0.99995, 8)
    assert np.all(w <= np.log(8) + 1e-12) and w.mean() > np.log(8) - 0.1
    # any critic, even one that favours the positive without limit, stays <= log K
    huge = np.zeros((5, 4))
    huge[:, 0] = 1e6
    assert np.allclose(predictive.info_nce(huge), np.log(4))


def test_candidates_come_from_other_pieces_one_per_piece():
    pieces = np.repeat([3, 7, 8, 11, 20], [4, 1, 3, 2, 5])
    rows = predictive.candidate_rows(pieces, 5, np.random.default_rng(0))
    assert rows.shape == (15, 5) and np.array_equal(rows[:, 0], np.arange(15))
    for i, r in enumerate(rows):
        got = pieces[r]
        assert len(set(got)) == 5 and got[0] == pieces[i]  # itself, then 4 other pieces once each
    # every row of a piece is chosen at random: over many draws each row of piece 20 appears
    many = predictive.candidate_rows(pieces, 2, np.random.default_rng(1))
    seen = set()
    for s in range(40):
        seen |= set(predictive.candidate_rows(pieces, 5, np.random.default_rng(s))[:, 1:].ravel())
    assert seen == set(range(15)) and many.shape == (15, 2)
    with pytest.raises(ValueError, match="k must be"):
        predictive.candidate_rows(pieces, 6, np.random.default_rng(0))


def test_probe_on_samples_sees_only_what_the_code_keeps():
    """A sharp code carries y to a sampled probe and to InfoNCE (up to I(Z;Y) = ln 4 here); a code
    drowned in posterior noise carries nothing; a blurred one carries less on its samples than the
    same probe reads from the means (the old method scored on means)."""
    rng = np.random.default_rng(1)
    n, D = 3000, 12
    codes = rng.integers(0, 4, n)
    z = np.eye(4, dtype=np.float32)[codes] * 3.0
    table = (rng.random((4, D)) < 0.5).astype(np.uint8)
    te = rng.integers(0, 4, 300)
    z_te, y_te = np.eye(4, dtype=np.float32)[te] * 3.0, table[te]
    pieces = np.arange(300)

    def run(spread):
        return predictive.probe_bounds(z, table[codes], {"t": (z_te, np.full_like(z_te, spread), y_te, pieces)},
                                       hidden_dim=16, z_train_std=np.full_like(z, spread), seeds=(0, 1, 2),
                                       n_draws=3, n_candidates=16)
    sharp, drowned, blurred = run(0.01), run(30.0), run(2.0)
    assert sharp["t"]["i_probe_nats"] > 4.0 and sharp["t"]["i_nce_nats"] > 0.8 * np.log(4)
    assert sharp["t"]["i_nce_nats"] <= np.log(4) + 0.05  # y is a function of 4 equally likely codes
    assert abs(drowned["t"]["i_probe_nats"]) < 0.5 and abs(drowned["t"]["i_nce_nats"]) < 0.2
    assert blurred["t"]["i_probe_on_means_nats"] > blurred["t"]["i_probe_nats"] + 0.3
    assert len(sharp["probe_epochs"]) == 3 and sharp["t"]["i_probe_sd"] >= 0
    assert set(sharp["critic_temperatures"]) <= set(predictive.CRITIC_TEMPERATURES)


def test_pairs_never_cross_frames_outside_the_set():
    nxt = training.successor_index(None, 6)  # one piece of 6 bars
    src, dst = predictive.successor_pairs(nxt, np.array([0, 1, 3, 4]))  # bar 2 and 5 removed
    assert list(zip(src.tolist(), dst.tolist())) == [(0, 1), (2, 3)]  # (1, 3) would skip bar 2


def test_split_seed_fixes_the_split_across_training_seeds():
    frames, groups = _chord_pieces(20, 4, seed=9, deterministic=True)
    kw = dict(groups=groups, hidden_dim=8, latent_dim=4, epochs=1, progress=False)
    _, h0 = training.train(frames, seed=0, split_seed=5, **kw)
    m1, h1 = training.train(frames, seed=1, split_seed=5, **kw)
    _, h2 = training.train(frames, seed=1, **kw)
    assert np.array_equal(h0["test_idx"], h1["test_idx"]) and np.array_equal(h0["validation_idx"], h1["validation_idx"])
    assert not np.array_equal(h1["test_idx"], h2["test_idx"])  # without it the seed moves the split
    assert m1.config.effective_split_seed == 5 and PRESETS["paper"].effective_split_seed == 0
    assert "split_seed" not in PRESETS["paper"].to_dict() and m1.config.to_dict()["split_seed"] == 5
    r = predictive.evaluate(m1, frames, groups, seeds=(0,), n_draws=1, n_candidates=2, probe_max_epochs=1)
    assert r["n_test_frames"] == len(h1["test_idx"])


# ---------------------------------------------------------------------------- CLI

@pytest.fixture
def only_train_and_evaluate(monkeypatch):
    from qbdi_utils import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["train", "evaluate"])


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "abc"])
def test_cli_bad_gamma_is_one_line(value, tmp_path, capsys, only_train_and_evaluate):
    code = main(["train", "--corpus", "chorales", "--out", str(tmp_path / "m"), "--gamma", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("qbdi train: error: --gamma"), err
    assert not (tmp_path / "m").exists()


def test_cli_train_gamma_then_evaluate_json(tmp_path, capsys, only_train_and_evaluate):
    midi_dir = tmp_path / "midi"
    midi_dir.mkdir()
    spec = RollSpec()
    for i in range(6):
        frames, _ = _chord_pieces(1, 6, seed=20 + i, deterministic=True)
        pianoroll.write_midi(pianoroll.from_frames(frames, spec), midi_dir / f"p{i}.mid", spec=spec)
    out = tmp_path / "model"
    assert main(["train", "--corpus", str(midi_dir), "--out", str(out), "--epochs", "2", "--hidden-dim", "16",
                 "--latent-dim", "4", "--gamma", "0.5"]) == 0
    assert "predictor head" in capsys.readouterr().out
    assert StyleVAE.load(out).config.gamma == 0.5
    assert main(["evaluate", "--model", str(out), "--corpus", str(midi_dir), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["same_corpus"] and r["gamma"] == 0.5 and r["held_out_set"] == "test"
    for k in ("r_nats", "d_nats", "f1", "i_probe_lag1_nats", "i_probe_lag1_sd", "i_nce_lag1_nats",
              "i_nce_lag1_sd", "head_lag1_nats"):
        assert np.isfinite(r[k]), k
    assert r["i_nce_lag1_nats"] <= r["nce_log_k"] + 1e-9
    code = main(["evaluate", "--model", str(tmp_path / "nowhere")])
    assert code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cached_model_keys_on_config_and_data(monkeypatch, tmp_path):
    from qbdi_utils import corpus as corpus_mod

    frames, groups = _chord_pieces(8, 6, seed=7, deterministic=True)

    class FakeCorpus:
        pass

    FakeCorpus.frames, FakeCorpus.piece_index = frames, groups
    monkeypatch.setenv("QBDI_MODELS_DIR", str(tmp_path))
    monkeypatch.setattr(corpus_mod, "load_corpus", lambda *a, **k: FakeCorpus)
    calls = []
    real_train = training.train
    monkeypatch.setattr(training.cache, "train", lambda *a, **k: calls.append(k["config"]) or real_train(*a, **k))
    small = PRESETS["paper"].replace(hidden_dim=8, latent_dim=4, epochs=1)
    a = training.cached_model(small.replace(gamma=1.0), progress=False)
    b = training.cached_model(small.replace(gamma=1.0), progress=False)
    c = training.cached_model(small, progress=False)
    assert len(calls) == 2 and not a.from_cache and b.from_cache and not c.from_cache
    assert b.has_predictor and not c.has_predictor and len(list(tmp_path.iterdir())) == 2
    FakeCorpus.frames = frames[::-1].copy()  # other data, same configuration: retrained
    training.cached_model(small.replace(gamma=1.0), progress=False)
    assert len(calls) == 3


# ---------------------------------------------------------------------------- grid (notebook 06)

def test_mean_sd_pools_by_key_like_statistics():
    import statistics

    rows = [{"gamma": 0.0, "beta": 1.0, "a": 1.0}, {"gamma": 1.0, "beta": 1.0, "a": 5.0},
            {"gamma": 0.0, "beta": 1.0, "a": 4.0}, {"gamma": 0.0, "beta": 2.0, "a": 7.0},
            {"gamma": 1.0, "beta": 1.0, "a": 6.0}, {"gamma": 0.0, "beta": 1.0, "a": 10.0}]
    out = predictive.mean_sd(rows, metrics=("a",))
    assert [(r["gamma"], r["beta"], r["n"]) for r in out] == [(0.0, 1.0, 3), (1.0, 1.0, 2), (0.0, 2.0, 1)]
    assert out[0]["a_mean"] == pytest.approx(statistics.mean([1.0, 4.0, 10.0]))
    assert out[0]["a_sd"] == pytest.approx(statistics.stdev([1.0, 4.0, 10.0]))
    assert out[1]["a_sd"] == pytest.approx(statistics.stdev([5.0, 6.0]))
    assert out[2]["a_mean"] == 7.0 and np.isnan(out[2]["a_sd"])


def test_grid_rows_are_evaluate_of_each_config(monkeypatch, tmp_path):
    monkeypatch.setenv("QBDI_MODELS_DIR", str(tmp_path))
    frames, groups = _chord_pieces(10, 8, seed=3, deterministic=True)
    base = PRESETS["paper"].replace(input_dim=frames.shape[1], hidden_dim=16, latent_dim=4, epochs=1)
    configs = [base.replace(gamma=1.0, seed=1), base.replace(gamma=0.0, beta=2.0, seed=0)]
    built = {}

    def model_fn(cfg):
        built[cfg.seed] = training.train(frames, groups=groups, config=cfg, progress=False)[0]
        return built[cfg.seed]

    ev = dict(seeds=(2, 3), n_draws=2, n_candidates=4)
    rows = predictive.grid(configs, frames, groups, model_fn=model_fn, **ev)
    assert [(r["gamma"], r["beta"], r["seed"], r["epochs"]) for r in rows] == [(1.0, 1.0, 1, 1), (0.0, 2.0, 0, 1)]
    for r, cfg in zip(rows, configs):
        direct = predictive.evaluate(built[cfg.seed], frames, groups, **ev)
        assert r["i_probe_lag1_nats"] == direct["i_probe_lag1_nats"] and r["r_nats"] == direct["r_nats"]
        assert r["train_seconds"] == built[cfg.seed].info["train_seconds"] > 0
    assert rows[0]["i_probe_lag1_nats"] != rows[1]["i_probe_lag1_nats"]
    # a second grid over the same models reads the stored evaluations instead of fitting probes again
    calls = []
    real = predictive.evaluate
    monkeypatch.setattr(predictive, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = predictive.grid(configs, frames, groups, model_fn=lambda cfg: built[cfg.seed], **ev)
    # (compared as JSON text: a gamma = 0 row holds nan head values, and nan != nan)
    assert calls == [] and json.dumps(again, sort_keys=True) == json.dumps(rows, sort_keys=True)
    assert len(list((tmp_path / "evaluations").iterdir())) == 2
    # another probe seed is another evaluation
    predictive.grid(configs[:1], frames, groups, model_fn=lambda cfg: built[cfg.seed], **{**ev, "seeds": (4, 5)})
    assert calls == [1]


def test_paired_differences_is_a_paired_t_test():
    from scipy import stats

    rows = [{"g": 0, "seed": s, "m": v} for s, v in enumerate([1.0, 2.0, 4.0, 3.0])]
    rows += [{"g": 1, "seed": s, "m": v} for s, v in enumerate([2.5, 2.0, 6.0, 3.5])]
    rows += [{"g": 1, "seed": 9, "m": 100.0}]  # no partner: left out
    out = predictive.paired_differences(rows, "m", {"g": 0}, {"g": 1})
    ref = stats.ttest_rel([2.5, 2.0, 6.0, 3.5], [1.0, 2.0, 4.0, 3.0])
    assert out["n"] == 4 and out["mean"] == pytest.approx(1.0) and out["t"] == pytest.approx(ref.statistic)
    ci = stats.t.interval(0.95, 3, loc=1.0, scale=np.std([1.5, 0, 2, 0.5], ddof=1) / 2)
    assert (out["ci_low"], out["ci_high"]) == pytest.approx(ci) and out["positive"] == 3
    with pytest.raises(ValueError, match="at least 2 pairs"):
        predictive.paired_differences(rows[:1] + rows[4:5], "m", {"g": 0}, {"g": 1})
