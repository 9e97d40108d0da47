"""qbdi_utils.blend: the blend's points, baselines and verdicts (tiny model; numbers checked independently)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qbdi_utils import blend, claims, improvise, pianoroll, style
from qbdi_utils.model import synthetic_frames
from qbdi_utils.pianoroll import Piece


@pytest.fixture(scope="module")
def query(tiny_model):
    spec = tiny_model.spec
    roll = pianoroll.make_valid(pianoroll.from_frames(synthetic_frames(10, seed=4), spec), spec)
    return Piece(roll=roll, spec=spec, name="chords")


@pytest.fixture(scope="module")
def ref(tiny_model):
    return style.frames_descriptors(synthetic_frames(40, seed=9), tiny_model.spec)


def test_query_end_scores_one_on_the_query_side(query, ref):
    row = blend.query_end(query, ref)
    assert row["chroma_cosine"] == pytest.approx(1.0) and row["triad_agreement"] == pytest.approx(1.0)
    assert row["style_fit_query"] == pytest.approx(1.0)
    assert set(blend.POINT_KEYS) <= set(row) and math.isnan(row["p_corpus"])


def test_retrieval_by_latent_from_the_query_itself_gives_the_query(tiny_model, query):
    frames = pianoroll.to_frames(query.roll, query.spec)
    out = blend.retrieval(tiny_model, query, frames[::-1], by="latent")
    np.testing.assert_array_equal(out.roll, query.roll)
    by_chroma = blend.retrieval(tiny_model, query, frames[::-1], by="chroma")
    d = style.fidelity(query, by_chroma, style.bar_descriptors(query))
    assert d["chroma_cosine"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        blend.retrieval(tiny_model, query, frames, by="pitch")


def test_interpolation_at_one_is_full_rate_and_at_zero_one_repeated_bar(tiny_model, query, ref):
    enc = improvise.encode_query(tiny_model, query)
    full = improvise.improvise(tiny_model, query, bits=None)
    out = improvise.decode_latents(tiny_model, enc, 1.0 * enc.mean)
    np.testing.assert_array_equal(out.roll, full.roll)
    mean = np.asarray(tiny_model.corpus_stats["mean"], np.float32)
    zero = improvise.decode_latents(tiny_model, enc, np.repeat(mean[None], len(enc.mean), axis=0))
    fr = pianoroll.to_frames(zero.roll, zero.spec)
    assert all((f == fr[1]).all() for f in fr[1:-1])  # inner bars identical (the edges may differ by ties)
    rows = blend.interpolation_curve(tiny_model, query, ref, alphas=(1.0, 0.0))
    assert [r["knob"] for r in rows] == [1.0, 0.0] and rows[0]["n"] == 1


def test_sampled_decoding_draws_each_cell_from_its_probability(tiny_model, query):
    enc = improvise.encode_query(tiny_model, query)
    out = improvise.decode_latents(tiny_model, enc, enc.mean, sample_seed=5)
    p = np.asarray(tiny_model.decode(enc.mean))
    drawn = (np.random.default_rng(5).random(p.shape) < p).astype(np.uint8)
    expected = pianoroll.make_valid(pianoroll.from_frames(pianoroll.binarize(drawn, 0.5, tiny_model.spec),
                                                          tiny_model.spec)[:query.n_steps], tiny_model.spec)
    np.testing.assert_array_equal(out.roll, expected)


def test_channel_curve_rows(tiny_model, query, ref):
    rows = blend.channel_curve(tiny_model, query, ref, rates=(None, 16, 0), seeds=2)
    assert [r["label"] for r in rows] == ["full rate", "16 bits", "0 bits"]
    assert all(r["n"] == 2 and all(np.isfinite(r[k]) for k in style.FIDELITY_KEYS) for r in rows)
    sampled = blend.channel_curve(tiny_model, query, ref, rates=(0,), seeds=1, sample=True)
    assert sampled[0]["method"] == "channel, sampled"
    # the floored decoding: at least k onsets in every bar the floor can reach (independent count on the frames)
    floored = blend.channel_curve(tiny_model, query, ref, rates=(None,), seeds=1, min_onsets=3)
    assert floored[0]["method"] == "channel, floored"
    out = improvise.improvise(tiny_model, query, bits=None, min_onsets=3)
    fr = pianoroll.to_frames(out.roll, out.spec).reshape(-1, out.spec.steps_per_frame, out.spec.n_columns)
    assert (fr[:, :, out.spec.n_pitches:].sum(axis=(1, 2)) >= 3).all()


def _row(knob, x, y, method="channel", label=""):
    return {"method": method, "label": label or str(knob), "knob": knob, "chroma_cosine": x, "style_fit_corpus": y}


def test_matched_reads_the_curve_by_linear_interpolation():
    curve = [_row(None, 0.9, 0.5), _row(64, 0.7, 0.6), _row(0, 0.3, 0.8)]
    pts = [_row(1.0, 0.8, 0.7, "interpolation"), _row(0.0, 0.5, 0.6, "interpolation"), _row("x", 0.95, 0.9, "retrieval")]
    got = blend.matched(curve, pts)
    assert got[0]["channel_y"] == pytest.approx(0.55) and got[0]["difference"] == pytest.approx(0.15)
    assert got[1]["channel_y"] == pytest.approx(0.7) and got[1]["difference"] == pytest.approx(-0.1)
    assert math.isnan(got[2]["channel_y"])


def test_thesis_needs_a_rank_correlation_and_a_rise():
    rising = [_row(None, 0.9, 0.50), _row(256, 0.8, 0.55), _row(64, 0.7, 0.60), _row(0, 0.3, 0.70)]
    t = blend.thesis(rising)
    assert t["holds"] and t["spearman"] == pytest.approx(-1.0) and t["best_label"] == "0"
    flat = [_row(None, 0.9, 0.50), _row(64, 0.7, 0.505), _row(0, 0.3, 0.51)]
    assert not blend.thesis(flat)["holds"]  # monotone but within the margin
    falling = [_row(None, 0.9, 0.7), _row(0, 0.3, 0.4)]
    assert not blend.thesis(falling)["holds"]


def test_sweep_rows_carry_the_style_columns_as_numbers(tiny_model, query, ref):
    rows, pieces = claims.claims_sweep(tiny_model, query, (None, 0), 2, return_pieces=True, n_shuffles=2)
    table = blend.sweep_with_fidelity(query, rows, pieces, ref)
    assert [t["rate"] for t in table] == ["query", "chance", "full rate", "0 bits"]
    for t in table[2:]:
        for k in blend.SWEEP_STYLE_COLUMNS:
            assert np.isfinite(float(t[k])), k
    full = [style.fidelity(query, pieces[(None, s)], ref) for s in (0, 1)]
    assert float(table[2]["onsets_per_bar"]) == pytest.approx(np.mean([f["onsets_per_bar"] for f in full]), abs=1e-4)
    assert float(table[0]["style_fit_query"]) == pytest.approx(1.0)
    assert table[1]["style_fit_corpus"] == ""
    no_ref = blend.sweep_with_fidelity(query, rows, pieces, None)
    assert math.isnan(no_ref[2]["style_fit_corpus"]) and np.isfinite(no_ref[2]["style_fit_query"])


def test_findings_state_the_verdict_and_dominance():
    curve = [dict(_row(None, 0.9, 0.50, label="full rate"), onsets_per_bar=15.0, corpus_onsets_per_bar=17.0, empty_bar_rate=0.0, p_corpus=0.5),
             dict(_row(0, 0.3, 0.30), onsets_per_bar=18.0, corpus_onsets_per_bar=17.0, empty_bar_rate=0.0, p_corpus=0.8)]
    ends = {"style_fit_corpus": 0.6, "onsets_per_bar": 16.0, "p_corpus": 0.4}
    pts = [_row("chroma", 0.95, 0.9, "retrieval", "by chroma"), _row(0.5, 0.6, 0.35, "interpolation", "a=0.5")]
    text = " ".join(blend.findings("q", curve, blend.matched(curve, pts), ends, ends))
    assert "rise as bits fall?** No" in text
    assert "than the channel at full rate** (chroma cosine 0.900, style fit 0.500): retrieval by chroma (0.950, 0.900)." in text
    assert "0 of 1 baseline points lie above" in text  # a=0.5: 0.35 against the curve's 0.4
    assert "rises as bits fall: yes" in text            # the classifier: 0.5 -> 0.8
    assert "Held notes" not in text                     # hand-made rows without the held-note keys


def test_findings_report_held_notes_beside_the_query_and_the_corpus():
    held = dict(corpus_sounding_per_bar=59.6, query_sounding_per_bar=60.3, corpus_note_length=3.52,
                query_note_length=3.51)
    curve = [dict(_row(None, 0.9, 0.50, label="full rate"), onsets_per_bar=15.0, corpus_onsets_per_bar=17.0,
                  empty_bar_rate=0.0, p_corpus=0.5, sounding_per_bar=50.9, note_length=3.29, **held),
             dict(_row(0, 0.3, 0.30), onsets_per_bar=18.0, corpus_onsets_per_bar=17.0, empty_bar_rate=0.0,
                  p_corpus=0.8, sounding_per_bar=41.25, note_length=2.5, **held)]
    ends = {"style_fit_corpus": 0.6, "onsets_per_bar": 16.0, "p_corpus": 0.4}
    text = " ".join(blend.findings("q", curve, [], ends, ends))
    assert ("sounding cells per bar 50.9 at full rate and 41.2 at 0, against 59.6 in the corpus's test bars "
            "and 60.3 in the query; mean note length 3.29 steps at full rate, 2.50 at 0 (corpus 3.52, query 3.51)") in text


def test_targets_against_hand_checked_rows():
    from types import SimpleNamespace

    ref = SimpleNamespace(onsets=np.array([4.0, 4.0]), empty=np.array([0.0, 0.0]))
    q = {"style_fit_corpus": 0.6}

    def r(knob, ons, empty, fit, triad=0.5):
        return {"knob": knob, "onsets_per_bar": ons, "empty_bar_rate": empty, "style_fit_corpus": fit,
                "triad_agreement": triad}

    good = [r(None, 4.5, 0.0, 0.72, 0.59), r(64, 3.2, 0.02, 0.68), r(16, 5.0, 0.0, 0.671),
            r(8, 0.1, 0.9, 0.1), r(0, 0.0, 1.0, 0.1)]  # 8 and 0 bits are not judged
    t = blend.targets(good, q, ref, baseline_triad=0.60)
    assert [t[k] for k in blend.TARGET_KEYS] == [True, True, True, True, True]
    assert t["onsets_range"] == (3.2, 5.0) and t["min_fit"] == pytest.approx(0.671)
    # each target failed by the smallest step over its limit
    bad = blend.targets([r(None, 4.5, 0.0, 0.69, 0.579), r(64, 2.9, 0.03, 0.639)], q, ref, baseline_triad=0.60)
    assert [bad[k] for k in blend.TARGET_KEYS] == [False, False, False, False, False]
    assert math.isnan(blend.targets(good, q, ref)["full_rate_triads_kept"])
    with pytest.raises(ValueError, match="full-rate"):
        blend.targets([r(64, 4, 0, 0.7)], q, ref)


def test_decoding_paper_needs_no_corpus(tiny_model):
    assert blend.decoding(tiny_model, "paper") == {}
    with pytest.raises(Exception, match="decoding must be one of"):
        blend.decoding(tiny_model, "blur")


def test_thinning_counts_the_bars_the_paper_leaves_empty(tiny_model, query):
    rows = blend.thinning(tiny_model, query, rates=(None, 0), seeds=1)
    assert [r["label"] for r in rows] == ["full rate", "0 bits"]
    spec = tiny_model.spec
    for r, bits in zip(rows, (None, 0)):
        out = improvise.improvise(tiny_model, query, bits=bits)
        p = np.asarray(tiny_model.decode(out.latents), np.float64)
        mx = p.reshape(-1, spec.steps_per_frame, spec.n_columns)[:, :, :spec.n_pitches].max(axis=(1, 2))
        assert r["max_p"] == pytest.approx(mx.mean())
        # independently: the bars the paper's binarisation leaves without a note
        written = pianoroll.binarize(p.astype(np.float32), tiny_model.threshold, spec)
        assert r["silent_share"] == pytest.approx(np.mean(written.sum(axis=1) == 0))
