"""Tests of qbdi_utils.live and `qbdi live`: files and a simulated clock; OSC over 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mido
import numpy as np
import pytest

from qbdi_utils import improvise, live, live_controls, live_io, live_time, pianoroll
from qbdi_utils.errors import OptionError
from qbdi_utils.improvise import BITS_SCALE

ROOT = Path(__file__).resolve().parents[1]
SPF = 16


@pytest.fixture(scope="module")
def query_mid(chord_query_mid):
    """A 6-bar synthetic chord query at 100 bpm (whole bars, no pickup)."""
    return chord_query_mid(6)


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(*argv, timeout=240):
    return subprocess.run([sys.executable, "-m", "qbdi_utils.cli", *map(str, argv)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _session(model, path, bits=None, stats="corpus", *, on_bar=None, cc_bits=None, mode="improvise",
             continuity=1.0, osc=False, seed=0, guess=None):
    lines = []
    controls = live_controls.Controls(live_controls.Settings(bits, stats, continuity), log=lines.append,
                             navigate=mode == "navigate")
    server = live_controls.OscControl(controls, "127.0.0.1", 0) if osc else None
    source = live_io.FileSource(path, model.spec)
    session = live.LiveSession(model, source, controls, live_time.SimulatedClock(),
                               live_time.TempoTimeline(source.piece.tempo_bpm, model.spec), seed=seed, mode=mode,
                               cc_bits=cc_bits, on_bar=on_bar, guess=guess)
    return session, controls, server, lines


def _recorded_roll(result, tmp_path, name="rec.mid"):
    path = tmp_path / name
    path.write_bytes(result.recording)
    return pianoroll.read_midi(path).roll


def _shifted_notes(roll):
    return [(p, s + SPF, e + SPF) for p, s, e in pianoroll.roll_to_notes(roll)]


# ------------------------------------------------------------------------------------------------
# the CLI against `qbdi improvise`


def test_cli_file_speed0_full_rate_is_improvise_shifted_by_one_bar(tiny_model, query_mid, tmp_path):
    model_dir = tiny_model.info["model_dir"]
    imp, rec = tmp_path / "imp.mid", tmp_path / "live.mid"
    r = _cli("improvise", "--model", model_dir, "--query", query_mid, "--bits", "full", "--out", imp)
    assert r.returncode == 0, r.stderr
    r = _cli("live", "--model", model_dir, "--in", query_mid, "--speed", "0", "--bits", "full",
             "--out", rec, "--osc-port", "off")
    assert r.returncode == 0, r.stderr
    a = pianoroll.read_midi(imp)
    b = pianoroll.read_midi(rec)
    expected = _shifted_notes(a.roll)
    assert len(expected) > 20
    assert [tuple(n) for n in pianoroll.roll_to_notes(b.roll)] == expected
    assert b.n_steps == a.n_steps + SPF  # the last answer plays out its whole bar
    assert b.tempo_bpm == pytest.approx(100.0, rel=1e-5)
    # velocities come from the input (the query is written at velocity 80)
    vels = {m.velocity for m in mido.MidiFile(rec).tracks[0] if m.type == "note_on" and m.velocity}
    assert vels == {80}


def test_fixed_budget_with_corpus_statistics_is_improvise_shifted(tiny_model, query_mid, tmp_path):
    """Bar k's channel noise is row k of default_rng(seed): a fixed budget reproduces improvise."""
    session, *_ = _session(tiny_model, query_mid, bits=8, stats="corpus", seed=3)
    result = session.run()
    got = [tuple(n) for n in pianoroll.roll_to_notes(_recorded_roll(result, tmp_path))]
    want = improvise.improvise(tiny_model, pianoroll.read_midi(query_mid), 8, mode="corpus", seed=3)
    assert got == _shifted_notes(want.roll)
    assert [b.settings.bits for b in result.bars] == [8] * 6


# ------------------------------------------------------------------------------------------------
# controls while playing


def _play_planes_by_bar(roll, n_bars):
    n = pianoroll.RollSpec().n_pitches
    out = np.zeros((n_bars * SPF, n), np.uint8)
    out[:min(len(roll), len(out))] = roll[:len(out), :n]
    return out.reshape(n_bars, SPF, n)


def _check_switch(result, tiny_model, query_mid, tmp_path, first_new_heard):
    """Answers to heard bars < first_new_heard at full rate, from it on at 0 bits (corpus)."""
    q = pianoroll.read_midi(query_mid)
    full = improvise.improvise(tiny_model, q, None, mode="corpus")
    zero = improvise.improvise(tiny_model, q, 0, mode="corpus")
    n_bars = q.n_steps // SPF
    rec = _play_planes_by_bar(_recorded_roll(result, tmp_path), n_bars + 1)
    f, z = _play_planes_by_bar(full.roll, n_bars), _play_planes_by_bar(zero.roll, n_bars)
    for heard in range(1, n_bars + 1):  # heard bar h (1-based) is answered in recorded bar h + 1
        want = f[heard - 1] if heard < first_new_heard else z[heard - 1]
        other = z[heard - 1] if heard < first_new_heard else f[heard - 1]
        assert (rec[heard] == want).all(), heard
        assert not (want == other).all(), heard  # the budget makes an audible difference here


def test_osc_message_mid_stream_changes_the_budget_from_the_next_bar_on(tiny_model, query_mid, tmp_path):
    from pythonosc.udp_client import SimpleUDPClient

    holder = {}

    def on_bar(rec):
        if rec.heard == 2:  # while bar 3 is being played
            holder["client"].send_message("/qbdi/bits", 0)
            deadline = time.monotonic() + 10
            while holder["controls"].received < 1 and time.monotonic() < deadline:
                time.sleep(0.005)

    session, controls, server, lines = _session(tiny_model, query_mid, None, "corpus", on_bar=on_bar, osc=True)
    try:
        assert server.address[0] == "127.0.0.1"
        holder.update(controls=controls, client=SimpleUDPClient("127.0.0.1", server.address[1]))
        result = session.run()
    finally:
        server.close()
    assert controls.received == 1
    assert [b.settings.bits for b in result.bars] == [None, None, 0, 0, 0, 0]
    assert [b.plays_in for b in result.bars] == [2, 3, 4, 5, 6, 7]
    assert [c.text() for c in result.changes] == ["bar 4: bits full -> 0 (osc)"]
    assert lines == ["bar 4: bits full -> 0 (osc)"]
    _check_switch(result, tiny_model, query_mid, tmp_path, first_new_heard=3)


def _with_cc(query_mid, tmp_path, control, value, at_quarters):
    mid = mido.MidiFile(query_mid)
    tpb = mid.ticks_per_beat
    cc = mido.MidiTrack([mido.Message("control_change", channel=0, control=control, value=value,
                                      time=int(at_quarters * tpb))])
    out = mido.MidiFile(type=1, ticks_per_beat=tpb)
    out.tracks.extend([mid.tracks[0], cc])
    path = tmp_path / "with_cc.mid"
    out.save(path)
    return path


def test_cc_change_mid_stream_changes_the_budget_from_the_next_bar_on(tiny_model, query_mid, tmp_path):
    path = _with_cc(query_mid, tmp_path, control=20, value=0, at_quarters=6.5)  # inside bar 2
    session, controls, _, lines = _session(tiny_model, path, None, "corpus", cc_bits=20)
    result = session.run()
    assert [b.settings.bits for b in result.bars] == [None, 0, 0, 0, 0, 0]
    assert lines == ["bar 3: bits full -> 0 (cc 20)"]
    _check_switch(result, tiny_model, path, tmp_path, first_new_heard=2)
    # another controller number changes nothing
    session, _, _, lines = _session(tiny_model, path, None, "corpus", cc_bits=21)
    assert [b.settings.bits for b in session.run().bars] == [None] * 6 and lines == []


def test_cc_values_spread_evenly_over_the_explorer_scale():
    stops = len(BITS_SCALE)  # 22 stops: 0 .. 1024 bits, then full rate
    assert live_controls.cc_to_bits(0) == 0 and live_controls.cc_to_bits(127) is None
    for v in range(128):
        idx = int(np.floor(v * (stops - 1) / 127 + 0.5))
        assert live_controls.cc_to_bits(v) == BITS_SCALE[idx]
    assert sorted({BITS_SCALE.index(live_controls.cc_to_bits(v)) for v in range(128)}) == list(range(stops))


def test_unknown_osc_addresses_and_bad_values_are_logged_never_fatal(tiny_model, query_mid):
    from pythonosc.udp_client import SimpleUDPClient

    holder = {}
    sent = [("/qbdi/nope", 1), ("/qbdi/bits", "lots"), ("/qbdi/bits", -3), ("/qbdi/bits", True),
            ("/qbdi/stats", "weird"), ("/qbdi/continuity", 0.5), ("/other", "x"), ("/qbdi/bits", [1, 2]),
            ("/qbdi/bits", 15.6)]  # a fader's float: rounded

    def on_bar(rec):
        if rec.heard == 1:
            for address, value in sent:
                holder["client"].send_message(address, value)
            deadline = time.monotonic() + 10
            while holder["controls"].received < len(sent) and time.monotonic() < deadline:
                time.sleep(0.005)

    session, controls, server, lines = _session(tiny_model, query_mid, None, "corpus", on_bar=on_bar, osc=True)
    try:
        holder.update(controls=controls, client=SimpleUDPClient("127.0.0.1", server.address[1]))
        result = session.run()
    finally:
        server.close()
    assert len(result.bars) == 6  # played to the end
    assert len(result.rejected) == len(sent) - 1
    joined = "\n".join(result.rejected)
    for needle in ("/qbdi/nope", "/other", "'lots'", "-3", "True", "'weird'", "continuity", "takes one value"):
        assert needle in joined
    assert all(line.startswith("ignored (osc): ") for line in result.rejected)
    assert [c.text() for c in result.changes] == ["bar 3: bits full -> 16 (osc)"]
    assert [b.settings.bits for b in result.bars] == [None, 16, 16, 16, 16, 16]
    assert lines[-1] == "bar 3: bits full -> 16 (osc)"


def test_controls_stats_and_continuity_changes_are_logged_with_their_bar():
    lines = []
    c = live_controls.Controls(live_controls.Settings(None, "corpus", 0.8), log=lines.append, navigate=True)
    assert c.submit("stats", "query") and c.submit("continuity", "0.25") and c.submit("bits", "64")
    assert c.submit("bits", "64")  # the same again: applied once, logged once
    s = c.settings_for(7)
    assert s == live_controls.Settings(64, "query", 0.25)
    assert lines == ["bar 7: stats corpus -> query (osc)", "bar 7: continuity 0.8 -> 0.25 (osc)",
                     "bar 7: bits full -> 64 (osc)"]
    assert not c.submit("continuity", 1.5) and c.settings_for(8) == s


# ------------------------------------------------------------------------------------------------
# ports, Ctrl-C


@pytest.mark.parametrize("which", ["--in", "--out"])
def test_missing_port_is_one_line_exit_2(tiny_model, query_mid, tmp_path, which):
    args = {"--in": str(query_mid), "--out": str(tmp_path / "o.mid")}
    args[which] = "No Such Port 7"
    r = _cli("live", "--model", tiny_model.info["model_dir"], "--in", args["--in"], "--out", args["--out"],
             "--osc-port", "off", timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("qbdi live: error: ") and "'No Such Port 7'" in lines[0]
    assert not (tmp_path / "o.mid").exists()


def test_sigint_leaves_a_complete_recording_and_all_notes_off(tiny_model, chord_query_mid, tmp_path):
    rec = tmp_path / "rec.mid"
    cmd = [sys.executable, "-m", "qbdi_utils.cli", "live", "--model", tiny_model.info["model_dir"],
           "--in", str(chord_query_mid(12)), "--out", str(rec), "--tempo", "240", "--osc-port", "off"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stderr=subprocess.PIPE, text=True)
    got = []
    started = threading.Event()

    def read():
        for line in proc.stderr:
            got.append(line)
            if "Ctrl-C stops" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(180), "".join(got)
        time.sleep(2.6)  # bars of 1 s: bar 1 heard, its answer sounding during bar 2 or 3
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, "".join(got)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    assert any("stopped (Ctrl-C)" in line for line in got), "".join(got)
    assert not any("Traceback" in line for line in got), "".join(got)
    mid = mido.MidiFile(rec)  # a valid MIDI file, written whole
    msgs = [m for m in mid.tracks[0] if not m.is_meta]
    sounding = set()
    n_on = 0
    for m in msgs:
        if m.type == "note_on" and m.velocity:
            sounding.add(m.note)
            n_on += 1
        elif m.type in ("note_on", "note_off"):
            sounding.discard(m.note)
    assert n_on > 0 and not sounding  # every note ended
    last = msgs[-1]
    assert last.type == "control_change" and last.control == 123  # all notes off, sent last
    assert pianoroll.read_midi(rec).n_steps < 12 * SPF  # stopped early, not played to the end


# ------------------------------------------------------------------------------------------------
# the pieces


def _random_midi(path, seed, pickup_quarters=1):
    """Notes at odd tick positions (many near half steps and bar lines), with a pickup bar."""
    rng = np.random.default_rng(seed)
    tpb = 96
    events = []
    for _ in range(60):
        start = int(rng.integers(0, tpb * 4 * 5))
        length = int(rng.integers(1, tpb * 3))
        pitch = int(rng.integers(30, 90))
        events += [(start, 1, mido.Message("note_on", note=pitch, velocity=int(rng.integers(1, 128)))),
                   (start + length, 0, mido.Message("note_off", note=pitch, velocity=0))]
    # releases and onsets just around the half step before a bar line
    bar = lambda k: 4 * k * tpb  # noqa: E731  (before the shift by the pickup below)
    for k, (on, off) in enumerate([(-13, -7), (-7, -5), (-30, -6), (-6, 20), (-5, -1)]):
        events += [(bar(k + 1) + on, 1, mido.Message("note_on", note=92 + k, velocity=50)),
                   (bar(k + 1) + off, 0, mido.Message("note_off", note=92 + k, velocity=0))]
    track = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=1, denominator=4, time=0),
                            mido.MetaMessage("time_signature", numerator=4, denominator=4,
                                             time=pickup_quarters * tpb)])
    now = pickup_quarters * tpb
    for tick, _, msg in sorted(((t + pickup_quarters * tpb, o, m) for t, o, m in events),
                               key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    mid.tracks.append(track)
    mid.save(path)
    return path


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_segmenter_bars_taken_early_equal_read_midi_frames(tmp_path, seed, spec):
    """Each bar is taken half a step before its bar line, as the session does, and still equals
    read_midi + to_frames (an independent reader)."""
    path = _random_midi(tmp_path / "r.mid", seed)
    piece = pianoroll.read_midi(path)
    assert piece.bar_offset_steps == 4
    want = pianoroll.to_frames(piece.roll, spec, piece.bar_offset_steps)
    src = live_io.FileSource(path, spec)
    seg = live.BarSegmenter(spec, 16, piece.bar_offset_steps)
    bars, k = [], 0
    for pos, msg, ti in src.events:
        while pos >= seg.bar_start(k + 1) - 0.5:
            bars.append(seg.take_bar(k)[0])
            k += 1
        seg.message(msg, pos, ti)
    seg.end_all(src.end_step)
    while len(bars) < len(want):
        bars.append(seg.take_bar(len(bars))[0])
    got = np.stack([b.reshape(-1) for b in bars])
    assert got.shape == want.shape
    assert (got == want).all()


def test_scheduler_holds_a_note_over_the_bar_line_and_splits_a_repeated_one(spec):
    n = spec.n_pitches
    a = np.zeros((16, spec.n_columns), np.uint8)
    b = np.zeros_like(a)
    held, repeated = 60 - spec.min_pitch, 64 - spec.min_pitch
    a[8:, held] = 1
    a[8, n + held] = 1
    b[:4, held] = 1  # continues, not articulated
    a[12:, repeated] = 1
    a[12, n + repeated] = 1
    b[:2, repeated] = 1
    b[0, n + repeated] = 1  # articulated again: a second note
    sch = live.Scheduler(spec)
    sch.add(a, 16, [(3, 90)])
    sch.add(b, 32, [])
    events = []
    while np.isfinite(sch.next_step()):
        st, msg = sch.pop()
        events.append((st, msg.type, msg.note, msg.velocity))
    assert events == [(24, "note_on", 60, 90), (28, "note_on", 64, 90), (32, "note_off", 64, 0),
                      (32, "note_on", 64, 90), (34, "note_off", 64, 0), (36, "note_off", 60, 0)]


def test_midi_clock_timeline_follows_the_pulses(spec):
    tl = live_time.MidiClockTimeline(spec)
    assert tl.time_at(16) == float("inf")
    iv = 60 / (90 * 24)  # 90 bpm
    tl.on_message(mido.Message("start"), 0.0)
    for i in range(30):
        tl.on_message(mido.Message("clock"), 1.0 + i * iv)
    assert tl.bpm == pytest.approx(90)
    assert tl.time_at(16) == pytest.approx(1.0 + 16 * 6 * iv)  # a 16th note is 6 pulses
    assert tl.step_at(1.0 + 29 * iv) == pytest.approx(29 / 6)


def test_navigate_continuity_one_plays_like_improvise_and_lower_continuity_jumps(tiny_model, chord_query_mid,
                                                                                 tmp_path):
    q = chord_query_mid(10)
    plain = _session(tiny_model, q, None)[0].run()
    walk1 = _session(tiny_model, q, None, mode="navigate", continuity=1.0)[0].run()
    assert walk1.recording == plain.recording
    assert [b.source_bar for b in walk1.bars] == list(range(1, 11))
    walk = _session(tiny_model, q, None, mode="navigate", continuity=0.2, seed=5)[0].run()
    src = [b.source_bar for b in walk.bars]
    assert all(1 <= s <= b.heard for s, b in zip(src, walk.bars))  # only bars already heard
    assert src != list(range(1, 11))


def test_meter_options(spec):
    assert live_time.parse_meter("4/4") == (4, 4, 16)
    assert live_time.parse_meter("3/4") == (3, 4, 12)
    assert live_time.parse_meter("6/4") == (6, 4, 24)  # issue 25: a bar longer than a frame is split at its beats
    assert live_time.parse_meter("file") == live_time.FILE_METER
    for bad in ("3/5", "x", "0/4", "3/64"):
        with pytest.raises(OptionError):
            live_time.parse_meter(bad)


@pytest.mark.parametrize("at_quarters", [6.5, 7.8])
def test_early_guess_changes_nothing_heard(tiny_model, chord_query_mid, tmp_path, at_quarters):
    """Answering a step early (the real-clock default) and keeping the guess only when the bar and the
    settings did not change gives the same recording; a CC between the guess (7.75 quarters) and the
    bar's closing (7.875) is still honoured."""
    path = _with_cc(chord_query_mid(6), tmp_path, control=20, value=40, at_quarters=at_quarters)
    plain = _session(tiny_model, path, None, cc_bits=20, guess=False)[0].run()
    early = _session(tiny_model, path, None, cc_bits=20, guess=True)[0].run()
    assert early.recording == plain.recording
    assert [b.settings.bits for b in early.bars] == [None] + [live_controls.cc_to_bits(40)] * 5
    assert early.n_guessed == (6 if at_quarters < 7.75 else 5)


@pytest.mark.parametrize("seed", [0, 1])
def test_early_guess_with_notes_off_the_grid(tiny_model, tmp_path, seed):
    path = _random_midi(tmp_path / "r.mid", seed)
    plain = _session(tiny_model, path, 16, guess=False)[0].run()
    early = _session(tiny_model, path, 16, guess=True)[0].run()
    assert early.recording == plain.recording
    assert 0 < early.n_guessed < len(early.bars)  # some bars changed in their last step
