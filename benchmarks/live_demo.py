"""A recorded live run: ``qbdi live`` on a shipped query in real time, the budget turned over OSC.

Writes the first 24 bars of data/queries/haydn_op74no1_mvt1.mid as the input, runs ``qbdi live`` on it
at 120 bpm (real time, the default model, full rate and corpus statistics at the start, OSC on a free
port of 127.0.0.1), and sends OSC messages at fixed moments of the run: bits 64, 16, 0, a bad value,
statistics "query", bits 256. Keeps the recording (figures/live_recording.mid), the session log
(figures/live_recording.json) and draws figures/live_recording.png: the heard bars shifted by the one
bar of latency above, the answers below, each bar labelled with the budget it was answered at.
Prints one JSON line: the changes by bar and the ignored messages.

    QBDI_MODELS_DIR=... python benchmarks/live_demo.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from qbdi_utils import pianoroll, render  # noqa: E402
from qbdi_utils.improvise import excerpt  # noqa: E402
from qbdi_utils.paths import REPO_ROOT  # noqa: E402

QUERY = REPO_ROOT / "data" / "queries" / "haydn_op74no1_mvt1.mid"
BARS = 24
BAR_S = 2.0  # 120 bpm
#: (seconds after the start, OSC address, value): each lands inside a bar, not near a bar line
SCHEDULE = [(7.0, "/qbdi/bits", 64), (15.0, "/qbdi/bits", 16), (23.0, "/qbdi/bits", 0),
            (27.0, "/qbdi/bits", "lots"), (31.0, "/qbdi/stats", "query"), (39.0, "/qbdi/bits", 256)]
FIG = REPO_ROOT / "figures"


def main() -> int:
    from pythonosc.udp_client import SimpleUDPClient

    work = Path(tempfile.mkdtemp(prefix="qbdi-live-demo-"))
    q = pianoroll.read_midi(QUERY)
    roll = excerpt(q.roll, (1, BARS))
    query = pianoroll.write_midi(roll, work / "haydn_24.mid", tempo_bpm=120.0)
    rec, log = FIG / "live_recording.mid", FIG / "live_recording.json"
    cmd = [sys.executable, "-m", "qbdi_utils.cli", "live", "--in", str(query), "--out", str(rec),
           "--bits", "full", "--stats", "corpus", "--tempo", "120", "--osc-port", "0", "--log", str(log), "--force"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    lines, started, port = [], threading.Event(), {}

    def read():
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if "Ctrl-C stops" in line:
                port["n"] = int(line.split("OSC on 127.0.0.1:")[1].split(";")[0])
                started.set()

    threading.Thread(target=read, daemon=True).start()
    if not started.wait(600):
        print("\n".join(lines), file=sys.stderr)
        return 1
    t0 = time.monotonic()
    client = SimpleUDPClient("127.0.0.1", port["n"])
    for at, address, value in SCHEDULE:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        client.send_message(address, value)
    code = proc.wait()
    if code != 0:
        print("\n".join(lines), file=sys.stderr)
        return code
    session = json.loads(log.read_text())
    out = pianoroll.read_midi(rec)
    draw(roll, out.roll, session["bars"])
    print(json.dumps({"changes": [ln for ln in lines if ln.startswith("qbdi live: bar ")],
                      "ignored": session["ignored"], "bars": len(session["bars"]),
                      "recording": str(rec.relative_to(REPO_ROOT)),
                      "figure": "figures/live_recording.png"}))
    return 0


def draw(heard, answers, bars) -> None:
    """Heard bars shifted by one bar above, answers below, each answer bar labelled with its budget."""
    import matplotlib.pyplot as plt

    spf = 16
    shifted = np.zeros((heard.shape[0] + spf, heard.shape[1]), np.uint8)
    shifted[spf:] = heard
    shifted = pianoroll.make_valid(shifted)
    fig, axes = plt.subplots(2, 1, figsize=(15, 6.5), sharex=True)
    render.plot_roll(shifted, ax=axes[0], title="heard (Haydn op. 74 no. 1, bars 1-24), drawn one bar late",
                     color="tab:gray")
    render.plot_roll(answers, ax=axes[1], title="answered live (qbdi live, 120 bpm, budget turned over OSC)")
    top = axes[1].get_ylim()[1]
    for b in bars:
        x = (b["plays_in_bar"] - 1) * spf + spf / 2 - 0.5
        label = "full" if b["bits"] == "full" else f"{b['bits']}b"
        if b["stats"] != "corpus":
            label += "\nquery st."
        axes[1].text(x, top, label, ha="center", va="top", fontsize=7, color="tab:red")
    axes[1].set_xlabel("bar (the answer to bar k sounds in bar k + 1)")
    fig.tight_layout()
    render.save_figure(fig, FIG / "live_recording.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
