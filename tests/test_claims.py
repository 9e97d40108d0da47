"""Tests of qbdi_utils.claims: the verdicts and numbers notebook 04 and the README report.

References are independent of the module: scipy.stats.spearmanr, brute-force distances, hand-built
chroma and claims tables whose verdicts are worked out by hand.
"""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
from scipy import stats

from qbdi_utils import claims, harmony, pianoroll, zero_bit
from qbdi_utils.errors import OutputExistsError
from qbdi_utils.pianoroll import Piece, RollSpec

# ---------------------------------------------------------------------------------------------
# helpers


def triad_chroma(names):
    """One chroma row per triad name (root position, weights 1), silence for None."""
    out = []
    for n in names:
        c = np.zeros(12)
        if n is not None:
            k = harmony.TRIAD_NAMES.index(n)
            root, third = k % 12, (4 if k < 12 else 3)
            c[[root, (root + third) % 12, (root + 7) % 12]] = 1.0
        out.append(c)
    return np.array(out)


def test_triad_chroma_helper_is_labelled_as_built():
    names = ["C", "G", "Am", "F#", "Ebm" if "Ebm" in harmony.TRIAD_NAMES else "Cm"]
    np.testing.assert_array_equal(harmony.triad_labels(triad_chroma(names)),
                                  [harmony.TRIAD_NAMES.index(n) for n in names])


# ---------------------------------------------------------------------------------------------
# numbers


@pytest.mark.parametrize("seed", range(6))
def test_spearman_equals_scipy_with_ties_and_inf(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, 12).astype(float)
    b = rng.normal(size=12).round(1)
    b[:3] = b[3]  # ties on both sides
    a[0] = np.inf
    assert claims.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def test_spearman_hand_cases():
    assert claims.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert claims.spearman([np.inf, 3, 2, 1], [0.5, 0.4, 0.3, 0.1]) == pytest.approx(1.0)
    assert claims.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1, 2, 3) vs (1.5, 1.5, 3): r = 0.866...
    assert claims.spearman([1, 2, 3], [5, 5, 9]) == pytest.approx(np.sqrt(3) / 2)
    assert np.isnan(claims.spearman([1, 2, 3], [4, 4, 4]))
    with pytest.raises(ValueError):
        claims.spearman([1, 2], [1, 2, 3])


def test_nearest_distances_against_brute_force():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(7, 5)), rng.normal(size=(11, 5))
    brute = [min(np.linalg.norm(x - y) for y in b) for x in a]
    np.testing.assert_allclose(claims.nearest_distances(a, b), brute, rtol=1e-9)
    # "different": the row itself (and its exact repeat) does not count
    b2 = np.vstack([b, b[3]])
    brute_diff = [min(np.linalg.norm(b2[i] - b2[j]) for j in range(len(b2)) if np.linalg.norm(b2[i] - b2[j]) > 1e-3)
                  for i in range(len(b2))]
    np.testing.assert_allclose(claims.nearest_distances(b2, b2, different=True), brute_diff, rtol=1e-9)
    np.testing.assert_allclose(claims.nearest_distances([[0.0, 0.0]], [[3.0, 4.0], [6.0, 8.0]]), [5.0])


def test_mean_sd_table():
    rows = [{"rate": "full rate", "a_mean": 0.123456, "a_sd": 0.0123456, "b_mean": 3.0, "b_sd": float("nan"),
             "c_mean": 0.194, "c_sd": 2.78e-17, "chance": 0.55555}]
    got = claims.mean_sd_table(rows, {"rate": "rate", "A": "a", "B": "b", "C": "c", "ch": "chance"})
    assert got == [{"rate": "full rate", "A": "0.123 ± 0.0123", "B": 3.0, "C": "0.194 ± 0.0", "ch": 0.556}]


def test_write_fine_sweep_csv(tmp_path):
    rows = [{"rate": "4 bits", "bits": 4, "components_with_bits": 4, "excess_triad_agreement": 0.123456, "x": 1}]
    path = claims.write_fine_sweep_csv(rows, tmp_path / "f.csv")
    with open(path) as fh:
        got = list(csv.DictReader(fh))
    assert list(got[0]) == list(claims.FINE_COLUMNS)
    assert got[0]["bits"] == "4" and got[0]["excess_triad_agreement"] == "0.1235" and got[0]["rate"] == "4 bits"
    assert got[0]["chroma_cosine_mean"] == ""
    with pytest.raises(OutputExistsError):
        claims.write_fine_sweep_csv(rows, path)


# ---------------------------------------------------------------------------------------------
# bar by bar


def test_per_bar_triads_and_break_away_hand_counted():
    q = triad_chroma(["C", "G", "Am", "F", "C"])
    full = triad_chroma(["C", "G", "Am", "Dm", "C"])  # agrees on bars 0, 1, 2, 4
    agree, labels = claims.per_bar_triads(q, full)
    np.testing.assert_array_equal(agree, [True, True, True, False, True])
    assert [harmony.TRIAD_NAMES[k] for k in labels] == ["C", "G", "Am", "Dm", "C"]
    low1 = triad_chroma(["C", "Em", "Am", "F", "G"])  # loses bars 1, 4; gains bar 3; changes 1, 3, 4
    low2 = triad_chroma(["C", "G", "Am", "Dm", "C"])  # identical to full
    b = claims.break_away(q, full, [low1, low2])
    assert b == pytest.approx({"changed": (3 / 5 + 0) / 2, "lost": (2 / 5 + 0) / 2, "gained": (1 / 5 + 0) / 2,
                               "n_seeds": 2})
    with pytest.raises(ValueError):
        claims.per_bar_triads(q, full[:3])


def _brute_break_away(q, full, lows):
    """break_away by enumerating every priority order of the symbols a bar's three tie sets use."""
    def tie_set(c):
        if not np.any(c):
            return frozenset({"silence"})
        scores = [float(np.dot(c, triad_chroma([n])[0])) for n in harmony.TRIAD_NAMES]
        best = max(scores)
        return frozenset(n for n, v in zip(harmony.TRIAD_NAMES, scores) if v >= best - 1e-9)

    out = {"changed": [], "lost": [], "gained": []}
    for low in lows:
        acc = {"changed": 0.0, "lost": 0.0, "gained": 0.0}
        for cq, cf, cl in zip(q, full, low):
            sq, sf, sl = tie_set(cq), tie_set(cf), tie_set(cl)
            symbols = sorted(sq | sf | sl)
            assert len(symbols) <= 6
            orders = list(itertools.permutations(symbols))
            for order in orders:
                rank = {s: i for i, s in enumerate(order)}
                tq, tf, tl = (min(s, key=rank.get) for s in (sq, sf, sl))
                acc["lost"] += (tf == tq and tl != tq) / len(orders)
                acc["gained"] += (tf != tq and tl == tq) / len(orders)
                acc["changed"] += (tl != tf) / len(orders)
        for k in acc:
            out[k].append(acc[k] / len(q))
    return {k: float(np.mean(v)) for k, v in out.items()}


def test_break_away_credits_ties_by_their_expectation_brute_force():
    rng = np.random.default_rng(3)
    # silence, a triad, or a dyad tied between two triads (a fifth, a major or a minor third), so that
    # a bar's three tie sets use at most 6 symbols and all their orders can be enumerated
    names = list(harmony.TRIAD_NAMES)

    def bar():
        kind = int(rng.integers(0, 3))
        if kind == 0:
            return np.zeros(12)
        if kind == 1:
            return triad_chroma([names[int(rng.integers(24))]])[0]
        root = int(rng.integers(12))
        c = np.zeros(12)
        c[[root, (root + (7, 4, 3)[int(rng.integers(3))]) % 12]] = 1.0
        return c

    for _ in range(4):
        q = np.array([bar() for _ in range(5)])
        full = np.array([bar() for _ in range(5)])
        lows = [np.array([bar() for _ in range(5)]) for _ in range(2)]
        got = claims.break_away(q, full, lows)
        want = _brute_break_away(q, full, lows)
        for k in ("changed", "lost", "gained"):
            assert got[k] == pytest.approx(want[k], abs=1e-12), k


def test_break_away_lost_minus_gained_is_the_fall_in_mean_agreement():
    # an identity of expectations: E[lost] - E[gained] = E[agree(full)] - E[agree(low)], ties included
    rng = np.random.default_rng(11)
    q, full, low = (rng.integers(0, 2, size=(40, 12)).astype(float) for _ in range(3))
    b = claims.break_away(q, full, [low])
    fall = harmony.frame_agreement(q, full)["triad_agreement"] - harmony.frame_agreement(q, low)["triad_agreement"]
    assert b["lost"] - b["gained"] == pytest.approx(fall, abs=1e-12)


def test_break_away_half_credit_for_a_two_way_tie():
    # query C major; full rate C major; the low rate plays only C and G, tied between C and Cm
    q = triad_chroma(["C"])
    c_g = np.zeros((1, 12))
    c_g[0, [0, 7]] = 1.0
    b = claims.break_away(q, q, [c_g])
    assert b["lost"] == pytest.approx(0.5) and b["gained"] == pytest.approx(0.0)
    assert b["changed"] == pytest.approx(0.5)
    b = claims.break_away(q, c_g, [q])  # the reverse: full rate tied, low rate on C
    assert b["gained"] == pytest.approx(0.5) and b["lost"] == pytest.approx(0.0)


def test_full_bar_triads_leaves_out_a_pickup_and_a_partial_last_bar():
    spec = RollSpec()

    def bar(pitches, steps=16):
        r = np.zeros((steps, spec.n_columns), np.uint8)
        for p in pitches:
            r[:, p - spec.min_pitch] = 1
            r[0, spec.n_pitches + p - spec.min_pitch] = 1
        return r

    c_major, g_major, f_major = (60, 64, 67), (55, 59, 62), (53, 57, 60)
    roll = np.vstack([bar(f_major, 12), bar(c_major), bar(g_major), bar(f_major, 5)])  # 12-step pickup, 5-step tail
    piece = Piece(roll=roll, spec=spec)
    assert claims.full_bar_triads(piece, 12, roll.shape[0]) == ["C", "G"]
    # read without the pickup: F(12)+C(4) -> F, C(12)+G(4) -> C, G(12)+F(4) -> G; the 1-step tail left out
    assert claims.full_bar_triads(piece, 0, roll.shape[0]) == ["C", "F", "G"]


def test_chroma_distribution_hand_counted():
    c = triad_chroma(["C", "C", "G", "Am", None])
    d = zero_bit.chroma_distribution(c)
    assert d["C"] == pytest.approx(2 / 4) and d["G"] == pytest.approx(1 / 4)  # silent bar left out
    # summed chroma: C=3 (C,C,Am) ... E=3, G=3+... profile shares by hand
    s = c.sum(0)
    assert d["pc_C"] == pytest.approx(s[0] / s.sum()) and d["pc_G"] == pytest.approx(s[7] / s.sum())
    assert d["triad"] == "C"


# ---------------------------------------------------------------------------------------------
# verdicts


def _row(rate, bits, agree, chance, sd=0.01, triads=10.0, tonic=0.2, cos=0.8, tonnetz=0.3):
    return {"rate": rate, "bits": bits, "triad_agreement_mean": agree, "triad_agreement_sd": sd,
            "chance_triad_agreement": chance, "distinct_triads_mean": triads, "tonic_share_mean": tonic,
            "chroma_cosine_mean": cos, "chance_chroma_cosine": 0.5, "tonnetz_distance_mean": tonnetz,
            "chance_tonnetz_distance": 0.7}


def _table(low_agree=0.40, triads=(18, 17, 16, 1), zero_tonic=0.0, zero_agree=0.15):
    return [
        _row("query", "", 1.0, 0.14, 0.0, 18.0, 0.26),
        _row("chance", "", 0.14, 0.14, float("nan"), 18.0, 0.26),
        _row("full rate", "", 0.62, 0.13, triads=triads[0]),
        _row("256 bits", 256, low_agree, 0.13, triads=triads[1]),
        _row("32 bits", 32, 0.30, 0.13, triads=triads[2]),
        _row("0 bits", 0, zero_agree, zero_agree, triads=triads[3], tonic=zero_tonic),
    ]


def test_claim_verdicts_worked_out_by_hand():
    breaks = {"lost": 0.08, "gained": 0.05, "changed": 0.2, "n_seeds": 5}
    v = claims.claim_verdicts(_table(), breaks, {"query": ["G"]}, "C")
    assert [x["verdict"] for x in v] == ["yes", "yes", "yes", "partly", "NO"]
    # excess: full 0.49, 256 bits 0.27 (< 0.49 - 0.02), 32 bits 0.17, 0 bits 0 -> perfectly monotone
    assert v[2]["rho"] == pytest.approx(1.0)
    assert "excess +0.490" in v[0]["numbers"] and "the 0-bit bar is G" in v[4]["numbers"]
    # 256 bits within 0.02 of full rate: break-away only "partly" when bars lose more than they gain
    v = claims.claim_verdicts(_table(low_agree=0.61), breaks, {"query": ["G"]}, "C")
    assert v[1]["verdict"] == "partly"
    v = claims.claim_verdicts(_table(low_agree=0.61), {**breaks, "gained": 0.09}, {"query": ["G"]}, "C")
    assert v[1]["verdict"] == "NO"
    # fewer chords fully when some budget above 0 has < 3/4 of full rate's triads (18 * 0.75 = 13.5)
    v = claims.claim_verdicts(_table(triads=(18, 15, 13, 1)), breaks, {"query": ["C"]}, "C")
    assert v[3]["verdict"] == "yes"
    # more chords at lower rates: the correlation is negative, the claim fails
    v = claims.claim_verdicts(_table(triads=(3, 4, 5, 6)), breaks, {"query": ["C"]}, "C")
    assert v[3]["verdict"] == "NO" and v[3]["rho"] < 0
    v = claims.claim_verdicts(_table(zero_tonic=0.95), breaks, {"query": ["C"]}, "C")
    assert v[4]["verdict"] == "yes"
    # no harmony kept at full rate
    t = _table()
    t[2]["triad_agreement_mean"] = 0.2
    assert claims.claim_verdicts(t, breaks, {}, "C")[0]["verdict"] == "NO"


def test_with_excess_and_verdict_label():
    r = claims.with_excess([_row("full rate", "", 0.6, 0.1, sd=0.03)])[0]
    assert r["excess_mean"] == pytest.approx(0.5) and r["excess_sd"] == 0.03
    assert [claims.verdict_label(x) for x in (True, False, "partly")] == ["yes", "NO", "partly"]


def _fine(bits, triads, tonic, comps=None, maxb=None):
    return [{"bits": b, "distinct_triads_mean": t, "tonic_share_mean": s,
             "components_with_bits": b if comps is None else comps[i], "max_bits_per_component": min(b, 1) if maxb is None else maxb[i]}
            for i, (b, t, s) in enumerate(zip(bits, triads, tonic))]


def test_fine_sweep_verdict_worked_out_by_hand():
    rows = _fine([32, 16, 8, 4, 2, 1, 0], [16.0, 15.0, 12.0, 9.0, 7.0, 4.0, 1.0], [0.2, 0.2, 0.1, 0.1, 0.05, 0.03, 0.0])
    v = claims.fine_sweep_verdict(rows)
    assert v["holds"] and v["rho"] == pytest.approx(1.0) and v["one_bit_each"]
    assert v["half_bits"] == 2  # 9 > 16 / 2 at 4 bits; 7 <= 8 at 2 bits
    assert "Spearman 1.00 over the 6 budgets above 0" in v["text"]


def test_fine_sweep_verdict_half_vocabulary_and_bookkeeping():
    rows = _fine([32, 16, 8, 4, 2, 1, 0], [16.0, 15.0, 12.0, 8.0, 7.0, 4.0, 1.0], [0.2, 0.2, 0.1, 0.1, 0.05, 0.03, 0.0])
    v = claims.fine_sweep_verdict(rows)
    assert v["half_bits"] == 4 and v["top_bits"] == 32 and v["low_bits"] == 1 and v["zero_triads"] == 1.0
    assert not v["tonic_rises"] and "does not rise" in v["text"] and "at 1 bit " in v["text"]
    rows = _fine([32, 16, 1], [16.0, 15.5, 14.0], [0.1, 0.1, 0.5], comps=[20, 12, 1], maxb=[3, 2, 1])
    v = claims.fine_sweep_verdict(rows)
    assert not v["holds"]  # 14 >= 0.75 * 16
    assert v["half_bits"] is None and v["tonic_rises"] and not v["one_bit_each"]
    assert "32->20" in v["text"] and "never down to half" in v["text"]
    with pytest.raises(ValueError):
        claims.fine_sweep_verdict(_fine([0], [1.0], [0.0]))


# ---------------------------------------------------------------------------------------------
# with a (tiny) model


def _query(n_frames=6):
    from qbdi_utils.model import synthetic_frames

    spec = RollSpec()
    roll = pianoroll.make_valid(pianoroll.from_frames(synthetic_frames(n_frames, seed=4), spec), spec)
    return Piece(roll=roll, spec=spec, name="q", time_signatures=[(0, 4, 4)])


def test_fine_sweep_bookkeeping_on_a_tiny_model(tiny_model):
    from qbdi_utils import channel
    from qbdi_utils.claims import claims_sweep
    from qbdi_utils.improvise import encode_query

    q = _query()
    rows = claims.fine_sweep(tiny_model, q, (4, 1, 0), 2, n_shuffles=3)
    assert [r["bits"] for r in rows] == [4, 1, 0]
    ref = claims_sweep(tiny_model, q, (4, 1, 0), 2, n_shuffles=3)[2:]
    enc = encode_query(tiny_model, q)
    _, var = channel.source_stats(enc.mean, None, "query")
    for r, r0 in zip(rows, ref):
        assert r["triad_agreement_mean"] == r0["triad_agreement_mean"]
        assert r["excess_triad_agreement"] == pytest.approx(r0["triad_agreement_mean"] - r0["chance_triad_agreement"])
        # the paper's loop written out: one bit at a time to the largest remaining variance
        rem, bits = var.copy(), np.zeros(var.size, int)
        for _ in range(r["bits"]):
            j = int(np.argmax(rem))
            if rem[j] <= 0:
                break
            bits[j] += 1
            rem[j] /= 4
        assert r["components_with_bits"] == int((bits > 0).sum()) and r["max_bits_per_component"] == bits.max()


def test_zero_bit_bar_is_the_decoded_source_mean(tiny_model):
    from qbdi_utils.improvise import encode_query, improvise

    q = _query()
    enc = encode_query(tiny_model, q)
    z_corpus = enc.mean * 2.0
    zb = zero_bit.zero_bit_bar(tiny_model, enc, "query", (0.3, 0.7), z_corpus)
    mu = enc.mean.mean(0)
    assert zb["norm"] == pytest.approx(float(np.linalg.norm(mu)), rel=1e-5)
    assert zb["nn"] == pytest.approx(min(np.linalg.norm(z - mu) for z in z_corpus), rel=1e-4)
    out = improvise(tiny_model, q, bits=0, mode="query", seed=0)  # every bar is that one bar
    np.testing.assert_array_equal(out.roll[:16], pianoroll.from_frames(zb["bar"][None], q.spec))
    assert set(zb["by_th"]) == {0.3, 0.7, round(tiny_model.threshold, 3)}
    assert 0 <= zb["lo"] <= zb["hi"] <= 1
    assert zb["n_on"] == int((zb["p"] >= tiny_model.threshold).sum())
    g = zero_bit.latent_geometry(z_corpus, n_sample=4, seed=0)
    assert g["norm_min"] == pytest.approx(np.linalg.norm(z_corpus, axis=1).min())
    assert g["n_sample"] == 4


@pytest.mark.parametrize("combo", list(itertools.islice(itertools.product([0.9, 0.3], [0.3, 0.9]), 4)))
def test_zero_bit_findings_follow_the_numbers(combo):
    hi_q, hi_c = combo
    zb = {
        "query": dict(norm=2.0, nn=4.0, hi=hi_q, lo=0.0, n_on=10, near=0.2, pcs=["G", "B", "D"], top_share=0.4,
                      label="G", score=0.6, runner="D", runner_score=0.55, by_th={0.5: "G"}, scales=["G"],
                      decided=0.6, soft="G"),
        "corpus": dict(norm=0.5, nn=4.5, hi=hi_c, lo=0.2, n_on=5, near=0.9, pcs=["C", "G"], top_share=0.5,
                       label="C", score=0.5, runner="Am", runner_score=0.45, by_th={0.5: "C"}, scales=[],
                       decided=0.0, soft="C"),
    }
    dist = {n: {"triad": "C", "C": 0.3, "G": 0.1} for n in ("corpus bars", "corpus reconstructions", "prior", "query bars")}
    lines = zero_bit.zero_bit_findings(zb, dist, {"norm_min": 4.0, "norm_median": 7.0, "nn_median": 5.0},
                                       decided=0.98, threshold=0.48, latent_dim=500, key_tonic=0,
                                       zero_tonic_share=0.0, mode="query", prior_name="prior")
    text = "\n".join(lines)
    assert "lean to C, not G" in text and "inside the shell" in text and "not remote" in text
    assert ("`corpus` statistics the 0-bit bar is a threshold artefact" in text) == (hi_c - 0.2 < 0.5)
    assert "the dominant of C" in text and "narrow" in text and "for this model it is not" in text


def test_query_overview_counts(tiny_model):
    from qbdi_utils import corpus as corpus_mod
    from qbdi_utils.pianoroll import Piece

    roll = np.zeros((16 * 5, tiny_model.spec.n_columns), np.uint8)
    for b in range(5):  # C major triads, one per bar
        for p in (48, 52, 55):
            roll[16 * b:16 * b + 16, p - tiny_model.spec.min_pitch] = 1
            roll[16 * b, tiny_model.spec.n_pitches + p - tiny_model.spec.min_pitch] = 1
    q = Piece(roll=roll, name="cmaj", time_signatures=[(0, 4, 4)])
    corp = corpus_mod.Corpus(frames=roll.reshape(5, -1), piece_index=np.array([0, 0, 1, 1, 1]),
                             piece_names=["a", "b"], skipped=[], fingerprint="", spec=tiny_model.spec,
                             options={}, pieces=[{"n_frames": 2}, {"n_frames": 3}])
    o = claims.query_overview(tiny_model, q, corp)
    assert o["key"] == "C major" and o["bars"] == 5 and o["longest_piece_bars"] == 3
    assert o["corpus_tonic_share"] == 1.0 and o["bars_over_longest"] == pytest.approx(1.67, abs=0.005)
