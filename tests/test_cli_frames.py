"""``qbdi frames FILE``: counts on good files, one stderr line and exit 2 on bad ones."""

from __future__ import annotations

import json
import subprocess
import sys

import mido
import pytest

from qbdi_utils.cli import main
from qbdi_utils.pianoroll import notes_to_roll, write_midi


def _file_with_extras(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=480)
    mid.tracks.append(mido.MidiTrack([
        mido.Message("note_on", note=60, velocity=64, time=0),
        mido.Message("note_on", note=110, velocity=64, time=0),           # too high
        mido.Message("note_on", channel=9, note=36, velocity=64, time=0),  # drum
        mido.Message("note_off", note=60, velocity=0, time=480 * 20),      # 5 bars long
        mido.Message("note_off", note=110, velocity=0, time=0),
        mido.Message("note_off", channel=9, note=36, velocity=0, time=0),
    ]))
    p = tmp_path / "x.mid"
    mid.save(str(p))
    return p


def test_frames_text(tmp_path, capsys):
    p = _file_with_extras(tmp_path)
    assert main(["frames", str(p)]) == 0
    out = capsys.readouterr().out
    assert "5 frames" in out and "80 steps" in out
    assert "1 drum" in out and "1 out of range" in out


def test_frames_json(tmp_path, capsys):
    p = write_midi(notes_to_roll([(60, 0, 4)], 33), tmp_path / "y.mid")
    assert main(["frames", "--json", str(p)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 3 and info["steps"] == 33 and info["not_represented"] == {}


@pytest.mark.parametrize("content,words", [(None, "not found"), (b"", "empty"),
                                           (b"hello", "MThd")])
def test_frames_bad_file_one_line_exit_2(tmp_path, capsys, content, words):
    p = tmp_path / "bad.mid"
    if content is not None:
        p.write_bytes(content)
    assert main(["frames", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(p) in err and words in err and "Traceback" not in err


def test_frames_meter_refused(tmp_path, capsys):
    p = write_midi(notes_to_roll([(60, 0, 4)], 12), tmp_path / "w.mid", time_signature=(3, 4))
    assert main(["frames", "--meter", "4/4", str(p)]) == 2
    assert "3/4" in capsys.readouterr().err


def test_console_script_no_traceback(tmp_path):
    p = tmp_path / "t.mid"
    p.write_text("text")
    r = subprocess.run([sys.executable, "-c", "import sys; from qbdi_utils.cli import main; sys.exit(main())",
                        "frames", str(p)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and str(p) in r.stderr


def test_frames_meter_error_speaks_cli_not_python(tmp_path, capsys):
    p = write_midi(notes_to_roll([(60, 0, 4)], 12), tmp_path / "w.mid", time_signature=(3, 4))
    assert main(["frames", "--meter", "4/4", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--meter any" in err and "meter=None" not in err and "at bar 1" in err
    assert main(["frames", "--meter", "four", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--meter 'four'" in err
    assert main(["frames", "--meter", "3/4", str(p)]) == 0
