"""The explorer driven without a browser: set controls, read what the Output widgets now hold."""

from __future__ import annotations

import base64
import datetime
import io
import json
import re

import numpy as np
import pytest

from qbdi_utils import corpus, explore, harmony, pianoroll
from qbdi_utils.errors import OptionError
from qbdi_utils.improvise import improvise

QUERY = "boston_boys_reel"  # the shortest shipped query (32 bars)


@pytest.fixture(scope="module")
def ex(tiny_model):
    e = explore.Explorer(tiny_model, QUERY, bits=32, sample_rate=8000, dpi=40)
    yield e
    e.close()


def _expected_metrics(model, query_name, bits, mode, seed):
    """The notebook 04 metrics computed from scratch: improvise(), bar frames, harmony functions."""
    q = corpus.load_query(query_name, spec=model.spec)
    out = improvise(model, q, bits=bits, mode=mode, seed=seed)
    off = q.bar_offset_steps
    qc = harmony.chroma(pianoroll.to_frames(q.roll, q.spec, off), q.spec)
    of = pianoroll.to_frames(out.roll, out.spec, off)
    agree = harmony.frame_agreement(qc, harmony.chroma(of, out.spec))
    stats = harmony.output_stats(of, tonic=harmony.tonic_triad(qc), spec=out.spec)
    return out, {**agree, **stats}


def _html(out_widget) -> str:
    return "".join(o["data"].get("text/html", "") for o in out_widget.outputs)


def _number(text: str, label: str) -> float:
    return float(re.search(re.escape(label) + r" ([-0-9.]+)", text).group(1))


def test_bit_scale_is_fine_at_the_bottom_increasing_and_ends_at_full_rate():
    opts = explore.bits_options()
    labels = [lbl for lbl, _ in opts]
    assert labels[:9] == ["0", "1", "2", "3", "4", "6", "8", "12", "16"]
    assert labels[-2:] == ["1024", "full"]
    nums = [v for _, v in opts[:-1]]
    assert nums == sorted(set(nums)) and opts[-1][1] == "full"
    # at least a third of the stops lie below 32 bits, where the music changes most
    assert sum(v < 32 for v in nums) >= len(opts) / 3
    with pytest.raises(OptionError):
        explore.bits_options([4, 2])
    with pytest.raises(OptionError):
        explore.bits_options([None, 4])


def test_first_view_shows_plot_metrics_and_audio(ex):
    assert ex.plot.outputs and ex.plot.outputs[0]["data"]["image/png"]
    png = base64.b64decode(ex.plot.outputs[0]["data"]["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<audio" in _html(ex.audio) and "base64" in _html(ex.audio)
    assert "chroma cosine" in _html(ex.metrics)
    assert ex.encode_count == 1


@pytest.mark.parametrize("bits", [0, 3, "full"])
def test_moving_the_bit_slider_replaces_the_outputs_with_that_budgets_metrics(ex, tiny_model, bits):
    before = (ex.plot.outputs, ex.metrics.outputs, ex.audio.outputs)
    ex.bits.value = bits
    assert ex.plot.outputs != before[0] and ex.metrics.outputs != before[1]
    assert ex.audio.outputs is not before[2]
    out, want = _expected_metrics(tiny_model, QUERY, None if bits == "full" else bits, ex.mode.value,
                                  ex.seed.value)
    np.testing.assert_array_equal(ex.improvisation.roll, out.roll)
    text = _html(ex.metrics)
    assert out.name in text
    for label, key in (("chroma cosine", "chroma_cosine"), ("Tonnetz distance", "tonnetz_distance"),
                       ("triad agreement", "triad_agreement"), ("tonic share", "tonic_share")):
        assert _number(text, label) == pytest.approx(want[key], abs=5e-4), label
    assert _number(text, "distinct triads") == pytest.approx(want["distinct_triads"], abs=0.05)
    assert _number(text, "empty bars") == pytest.approx(want["empty_frame_rate"], abs=0.005)


def test_metrics_line_shows_the_style_side(ex, tiny_model):
    """The blend's second side on the page: fit to the query's own bars and onsets per bar; the tiny
    model records no corpus, so its corpus side reads nan."""
    from qbdi_utils import style

    ex.bits.value = 16
    out = ex.improvisation
    q = corpus.load_query(QUERY, spec=tiny_model.spec)
    text = _html(ex.metrics)
    assert "fit corpus nan" in text and "(corpus nan)" in text
    want_query_fit = style.style_fit_query(style.bar_descriptors(out, out.spec), style.bar_descriptors(q, q.spec))
    assert _number(text, "fit query") == pytest.approx(want_query_fit, abs=5e-4)
    # onsets per bar counted here: articulated cells (columns 78..155) of the output's bar frames
    bars = pianoroll.to_frames(out.roll, out.spec, q.bar_offset_steps).reshape(-1, out.spec.steps_per_frame,
                                                                                 out.spec.frame_size // out.spec.steps_per_frame)
    want_onsets = bars[:, :, out.spec.n_pitches:].sum() / len(bars)
    assert ex.last_metrics["onsets_per_bar"] == pytest.approx(want_onsets, abs=1e-9)
    assert _number(text, "onsets/bar") == pytest.approx(want_onsets, abs=0.05)


def test_seed_and_statistics_change_the_transmission_without_encoding_again(ex, tiny_model):
    ex.bits.value = 8
    n = ex.encode_count
    ex.seed.value = 7
    ex.mode.value = "prior"
    assert ex.encode_count == n
    out, want = _expected_metrics(tiny_model, QUERY, 8, "prior", 7)
    np.testing.assert_array_equal(ex.improvisation.roll, out.roll)
    assert _number(_html(ex.metrics), "chroma cosine") == pytest.approx(want["chroma_cosine"], abs=5e-4)
    assert set(ex.timings) >= {"channel", "metrics", "plot", "audio", "total"}
    ex.mode.value = "query"
    ex.seed.value = 0


def test_the_instrument_changes_the_audio_only(ex, monkeypatch):
    from qbdi_utils import render

    ex.bits.value = 6
    plot, metrics, audio, n = ex.plot.outputs, ex.metrics.outputs, ex.audio.outputs, ex.encode_count
    calls = []
    real = render.synthesize
    monkeypatch.setattr(render, "synthesize", lambda *a, **k: calls.append(k["program"]) or real(*a, **k))
    ex.program.value = 19
    assert calls == [19]
    assert ex.plot.outputs is plot and ex.metrics.outputs is metrics and ex.encode_count == n
    assert ex.audio.outputs != audio and "church organ" in _html(ex.audio)
    ex.program.value = 0  # heard before: from the cache, the same player as before
    assert calls == [19] and ex.audio.outputs == audio


def test_outputs_live_in_the_widget_state_a_reloaded_page_reads(ex):
    ex.bits.value = 16
    # what a browser receives when it (re)connects to the Output models: their synced state
    for w in (ex.plot, ex.metrics, ex.audio):
        state = w.get_state()
        assert json.loads(json.dumps(state["outputs"])) == list(w.outputs)
    assert "16 bits" in _html(ex.metrics)


def test_a_second_view_after_the_first_is_closed_still_refreshes(tiny_model):
    first = explore.Explorer(tiny_model, QUERY, bits=4, sample_rate=8000, dpi=40)
    first.close()
    second = explore.Explorer(tiny_model, QUERY, bits=4, sample_rate=8000, dpi=40)
    try:
        old_plot, old_metrics = second.plot.outputs, second.metrics.outputs
        assert "4 bits" in _html(second.metrics)
        second.bits.value = 64
        assert second.plot.outputs != old_plot and second.metrics.outputs != old_metrics
        assert "64 bits" in _html(second.metrics)
        assert first.widget.comm is None  # the discarded view's models are gone
    finally:
        second.close()


def test_choosing_another_query_encodes_it_once(ex):
    n = ex.encode_count
    ex.query.value = "joplin_maple_leaf_rag"
    assert ex.encode_count == n + 1
    assert "joplin_maple_leaf_rag" in _html(ex.metrics)
    ex.bits.value = 2
    assert ex.encode_count == n + 1
    ex.query.value = QUERY
    assert ex.encode_count == n + 2


def _midi_bytes(tmp_path, spec) -> bytes:
    roll = np.zeros((64, spec.n_columns), np.uint8)
    for step, chord in ((0, (60, 64, 67)), (16, (65, 69, 72)), (32, (67, 71, 74)), (48, (60, 64, 67))):
        for p in chord:
            i = p - spec.min_pitch
            roll[step:step + 16, i] = 1
            roll[step, spec.n_pitches + i] = 1
    return pianoroll.write_midi(roll, tmp_path / "cadence.mid", spec=spec).read_bytes()


def test_an_uploaded_midi_file_becomes_the_query(tiny_model, tmp_path):
    e = explore.Explorer(tiny_model, QUERY, bits=12, sample_rate=8000, dpi=40)
    try:
        data = _midi_bytes(tmp_path, tiny_model.spec)
        e.upload.value = ({"name": "cadence.mid", "type": "audio/midi", "size": len(data),
                           "content": memoryview(data),
                           "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)},)
        assert str(e.query.value).startswith("upload:")
        assert ("cadence.mid (uploaded)", e.query.value) in list(e.query.options)
        assert e.improvisation.query_name == "cadence"
        assert e.improvisation.n_steps == 64
        assert "cadence @ 12 bits" in _html(e.metrics)
        assert e.upload.value == ()  # the bytes are not kept in the widget (and a re-upload fires again)
        # a broken file is reported in the status line and leaves the current view alone
        before = e.metrics.outputs
        e._on_upload({"new": ({"name": "junk.mid", "content": b"not midi"},)})
        assert "junk" in e.status.value or "MIDI" in e.status.value
        assert e.metrics.outputs == before
    finally:
        e.close()


def test_download_links_carry_the_current_improvisation(ex, tmp_path):
    import mido
    from scipy.io import wavfile

    ex.bits.value = 24
    out = ex.improvisation
    name = ex.make_download("midi")
    assert name.endswith(".mid") and "24bits" in name
    link = _html(ex.downloads)
    data = base64.b64decode(re.search(r'href="data:audio/midi;base64,([^"]+)"', link).group(1))
    path = tmp_path / name
    path.write_bytes(data)
    back = pianoroll.read_midi(path, out.spec)
    np.testing.assert_array_equal(back.roll[: out.n_steps], out.roll)
    assert mido.MidiFile(path).tracks

    ex.make_download("wav")
    link = _html(ex.downloads)
    assert link.count('<a id="qbdi-dl-') == 2 and link.count("<script>") == 2  # each saved by itself
    wav = base64.b64decode(re.search(r'href="data:audio/wav;base64,([^"]+)"', link).group(1))
    sr, pcm = wavfile.read(io.BytesIO(wav))
    seconds = out.n_steps * 60.0 / out.tempo_bpm / out.spec.steps_per_quarter
    assert sr == 8000 and seconds <= len(pcm) / sr <= seconds + 1.5

    ex.bits.value = 32
    assert ex.downloads.outputs == ()  # links of an earlier setting are withdrawn


def test_musicxml_download_is_a_score(tiny_model):
    # four bars of the query: the barely trained model's dense output makes music21's notation of
    # all 32 bars take minutes on a loaded 2-core machine, and four bars test the same path
    q = corpus.load_query(QUERY, spec=tiny_model.spec)
    short = pianoroll.Piece(roll=q.roll[:4 * tiny_model.spec.steps_per_frame], spec=q.spec, name="reel4",
                            tempo_map=q.tempo_map[:1], time_signatures=q.time_signatures[:1])
    e = explore.Explorer(tiny_model, short, bits="full", sample_rate=8000, dpi=40)
    try:
        name, mime, data = e.file_bytes("musicxml")
        assert name.endswith(".musicxml") and "xml" in mime
        assert b"<score-partwise" in data[:2000]
        with pytest.raises(OptionError):
            e.file_bytes("pdf")
    finally:
        e.close()


def test_a_piece_or_a_midi_path_can_be_the_first_query(tiny_model, tmp_path):
    path = tmp_path / "cadence.mid"
    path.write_bytes(_midi_bytes(tmp_path, tiny_model.spec))
    piece = corpus.load_query(str(path), spec=tiny_model.spec)
    for query in (piece, str(path)):
        e = explore.Explorer(tiny_model, query, bits=1, sample_rate=8000, dpi=40)
        try:
            assert list(e.query.options)[0] == ("cadence", e.query.value)
            assert e.improvisation.query_name == "cadence" and "cadence @ 1 bits" in _html(e.metrics)
        finally:
            e.close()


def test_values_the_controls_do_not_offer_are_option_errors(tiny_model):
    with pytest.raises(OptionError, match="slider"):
        explore.Explorer(tiny_model, QUERY, bits=5)
    with pytest.raises(OptionError, match="statistics"):
        explore.Explorer(tiny_model, QUERY, mode="nope")
    with pytest.raises(OptionError, match="query"):
        explore.Explorer(tiny_model, "not_a_query")


def test_serve_refuses_bad_ports_and_missing_notebooks_before_starting(tmp_path, capsys):
    with pytest.raises(OptionError):
        explore.serve(port=0)
    with pytest.raises(OptionError):
        explore.serve(port=8866, notebook=tmp_path / "missing.ipynb")
    assert explore.main(["--port", "eighty"]) == 2
    assert "eighty" in capsys.readouterr().err


def test_explorer_notebook_only_builds_the_explorer():
    import nbformat

    nb = nbformat.read(explore.EXPLORER_NOTEBOOK, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "page(" in code  # the page: qbdi_utils.explore.page builds the explorer
    # committed executed: its only outputs are the explorer's widget view (no errors, no stray text)
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert outs and all(o.get("output_type") in ("display_data", "execute_result")
                        and "application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outs)
    assert not explore.EXPLORER_NOTEBOOK.name[0].isdigit()  # outside the Makefile's notebooks/0*.ipynb


def test_the_bar_ranges_redraw_the_plot_or_the_audio_only(ex):
    from scipy.io import wavfile

    ex.bits.value = 12
    out, n, metrics, audio = ex.improvisation, ex.encode_count, ex.metrics.outputs, ex.audio.outputs
    ex.plot_range.value = (5, 12)
    assert ex.overlay_bars == (5, 12) and "bars 5-12" in ex.plot.outputs[0]["data"]["text/plain"]
    assert ex.improvisation is out and ex.encode_count == n and ex.metrics.outputs is metrics
    assert ex.audio.outputs is audio  # the plot range leaves the audio alone
    ex.audio_range.value = (3, 6)
    assert ex.improvisation is out and ex.encode_count == n
    assert "bars 3-6" in _html(ex.audio)
    wav = base64.b64decode(re.search(r'src="data:audio/wav;base64,([^"]+)"', _html(ex.audio)).group(1))
    sr, pcm = wavfile.read(io.BytesIO(wav))
    # 4 bars of 4 quarters at the piece's tempo (the synthesizer may add a release tail)
    seconds = 4 * 4 * 60.0 / out.tempo_bpm
    assert sr == 8000 and seconds - 0.05 <= len(pcm) / sr <= seconds + 1.5
    # the ranges reach the query's last bar and no further (bars counted from 1)
    n_bars = -(-out.n_steps // out.spec.steps_per_frame)
    assert ex.plot_range.min == 1 and ex.plot_range.max == n_bars == ex.audio_range.max
    ex.plot_range.value, ex.audio_range.value = (1, 16), (1, 8)


def test_a_shorter_query_cuts_the_bar_ranges_to_its_length(tiny_model, tmp_path):
    e = explore.Explorer(tiny_model, QUERY, bits=12, sample_rate=8000, dpi=40, overlay_bars=(9, 24))
    try:
        e.add_midi("cadence.mid", _midi_bytes(tmp_path, tiny_model.spec))  # 4 bars
        assert e.plot_range.max == 4 and e.overlay_bars == (1, 4) and e.audio_bars == (1, 4)
        assert "bars 1-4" in e.plot.outputs[0]["data"]["text/plain"]
        e.query.value = QUERY
        q = corpus.load_query(QUERY, spec=tiny_model.spec)  # its pickup makes 33 bars from the roll's start
        assert e.plot_range.max == -(-q.n_steps // q.spec.steps_per_frame) == 33
    finally:
        e.close()


def test_the_upload_button_shows_the_file_name(tiny_model, tmp_path):
    e = explore.Explorer(tiny_model, QUERY, bits=12, sample_rate=8000, dpi=40)
    try:
        assert e.upload.tooltip == "upload MIDI" and "qbdi-upload" in e.upload._dom_classes
        e.add_midi("my cadence.mid", _midi_bytes(tmp_path, tiny_model.spec))
        assert e.upload.tooltip == "my cadence.mid"  # the page's CSS shows the tooltip as the label
    finally:
        e.close()


def test_uploads_and_settings_survive_a_new_explorer_on_the_same_state_dir(tiny_model, tmp_path):
    state = tmp_path / "state"
    data = _midi_bytes(tmp_path, tiny_model.spec)
    first = explore.Explorer(tiny_model, QUERY, bits=12, sample_rate=8000, dpi=40, state_dir=state)
    try:
        key = first.add_midi("cadence.mid", data)
        first.bits.value, first.seed.value, first.program.value = 3, 5, 19
        first.plot_range.value = (2, 3)
        roll = first.improvisation.roll.copy()
    finally:
        first.close()
    kept = list((state / "uploads").iterdir())
    assert [p.read_bytes() for p in kept] == [data]
    assert not [p for p in state.rglob(".*")]  # written atomically: no temporaries left
    # a reloaded page: a new explorer (a new kernel) on the same folder
    second = explore.Explorer(tiny_model, QUERY, sample_rate=8000, dpi=40, state_dir=state)
    try:
        assert second.query.value == key and ("cadence.mid (uploaded)", key) in list(second.query.options)
        assert (second.bits.value, second.seed.value, second.program.value) == (3, 5, 19)
        assert second.overlay_bars == (2, 3) and second.upload.tooltip == "cadence.mid"
        out = improvise(tiny_model, corpus.load_query(str(kept[0]), spec=tiny_model.spec), bits=3,
                        mode="query", seed=5)
        np.testing.assert_array_equal(second.improvisation.roll, out.roll)
        np.testing.assert_array_equal(second.improvisation.roll, roll)
        assert second.improvisation.query_name == "cadence"
    finally:
        second.close()
    # a kept file that went missing, and a broken settings file, are ignored
    kept[0].unlink()
    third = explore.Explorer(tiny_model, QUERY, sample_rate=8000, dpi=40, state_dir=state)
    try:
        assert third.query.value == QUERY and all(not str(k).startswith("upload:") for _, k in third.query.options)
    finally:
        third.close()
    (state / explore.STATE_FILE).write_text("{not json")
    fourth = explore.Explorer(tiny_model, QUERY, bits=8, sample_rate=8000, dpi=40, state_dir=state)
    try:
        assert fourth.query.value == QUERY and fourth.bits.value == 8
    finally:
        fourth.close()


def test_the_heading_names_the_models_corpus(tiny_model):
    import copy

    assert explore.corpus_label(tiny_model) == "a corpus the model does not record"
    m = copy.copy(tiny_model)
    for source, words in (("chorales", "the Bach chorales"), ("essen", "Essen"),
                          ("/home/me/pop_clips", "the MIDI files of pop_clips/")):
        m.info = {**tiny_model.info, "corpus": {"source": source, "options": {}}}
        assert words in explore.corpus_label(m)
    e = explore.Explorer(m, QUERY, bits=1, sample_rate=8000, dpi=40, refresh=False)
    try:
        assert "pop_clips/" in e.heading.value and "/home/me" not in e.heading.value
        assert e.improvisation is None  # refresh=False: no view computed yet
    finally:
        e.close()


def test_a_download_saves_itself_once(ex):
    ex.bits.value = 4
    ex.make_download("midi")
    link = _html(ex.downloads)
    assert "sessionStorage" in link and ".click()" in link and 'download="' in link
    data = base64.b64decode(re.search(r'href="data:audio/midi;base64,([^"]+)"', link).group(1))
    assert data == ex.file_bytes("midi")[2]


def test_explore_refuses_a_missing_model_folder_in_one_line(tmp_path, capsys):
    assert explore.main(["--model", str(tmp_path / "mine")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "mine" in err and "qbdi train" in err
    (tmp_path / "empty").mkdir()
    assert explore.main(["--model", str(tmp_path / "empty"), "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "empty" in err
