"""``qbdi live``: play a query, hear the model's answer one bar later; the bit budget as a playable knob.

    qbdi live [--model MODEL_DIR] --in PORT|FILE.mid --out PORT|FILE.mid [--record FILE.mid]
              [--bits full|N] [--stats MODE] [--seed S] [--tempo BPM | --clock midi] [--meter N/D|file]
              [--speed X] [--mode improvise|navigate] [--continuity P] [--min-context K]
              [--osc-port N|off] [--osc-host H] [--cc-bits N] [--log FILE.json] [--force]

A MIDI file given to ``--in`` is played as a performer would (at ``--tempo``, default the file's;
``--speed 0`` runs it on a simulated clock as fast as possible); a port name opens a MIDI input
through python-rtmidi. The answers go to an output port or are recorded into a MIDI file (and into
``--record`` when ``--out`` is a port). Settings change while playing through OSC and a MIDI control
change (:mod:`qbdi_utils.live_controls`); each change applies from the next bar and is logged on stderr with its
bar number. Ctrl-C ends the run: all notes off, the recording written atomically, exit 0.

Options, outputs and ports are checked before the model is loaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qbdi_utils import live_controls, live_io, live_run, live_time, training
from qbdi_utils.cli.checks import check_outputs, output_file_option
from qbdi_utils.cli.options import add_bits, add_continuity, add_force, add_model, add_seed, add_stats
from qbdi_utils.cli.values import nonnegative_float, whole_number
from qbdi_utils.errors import MidiFileError, ModelError, OptionError
from qbdi_utils.model import StyleVAE
from qbdi_utils.navigate import check_min_context

__all__ = ["add_parser", "run_live"]


def add_parser(subparsers) -> None:
    """Register the ``live`` sub-command."""
    p = subparsers.add_parser(
        "live",
        help="improvise in real time: each bar played is answered during the next",
        description="Listen to a MIDI input (a port, or a file played in time), encode every completed "
        "bar, send it through a channel of N bits per frame and decode it in the model's style; the "
        "answer plays during the next bar (one bar of latency). The bit budget, statistics and "
        "continuity change while playing through OSC or a MIDI control change.",
    )
    add_model(p)
    p.add_argument("--in", dest="inp", required=True, metavar="PORT|FILE.mid",
                   help="MIDI input port name (or its start), or a .mid file to play")
    p.add_argument("--out", required=True, metavar="PORT|FILE.mid",
                   help="MIDI output port name, or a .mid file recording the answers with their timing")
    p.add_argument("--record", default=None, metavar="FILE.mid",
                   help="also record the answers here (when --out is a port)")
    add_bits(p, required=False,
             help="bits per frame at the start: 'full' (no channel, the default) or a whole number")
    add_stats(p, default="corpus", help="channel statistics: corpus (default; the model's), query (the bars "
              "heard so far), posterior, prior")
    add_seed(p, help="seed of the channel noise and the walk (default 0)")
    p.add_argument("--tempo", type=_positive("--tempo"), default=None, metavar="BPM",
                   help="tempo in quarter notes per minute (default: a file's own tempo, else 120)")
    p.add_argument("--clock", default="tempo", metavar="{tempo|midi}",
                   help="'midi': follow the input port's MIDI clock instead of --tempo")
    p.add_argument("--meter", type=live_time.parse_meter, default=live_time.parse_meter("4/4"), metavar="N/D",
                   help="meter of the bars (default 4/4): any N/D (a bar longer than the model's frame is "
                   "answered frame by frame, split at its beats), or 'file' to follow the --in file's own "
                   "time signatures, meter changes included")
    p.add_argument("--speed", type=nonnegative_float("--speed"), default=1.0, metavar="X",
                   help="file input: 1 plays in real time (default), 2 twice as fast, 0 as fast as possible "
                   "on a simulated clock")
    p.add_argument("--mode", default="improvise", metavar="{improvise|navigate}",
                   help="'navigate': answer with a latent-oracle walk over the bars heard so far")
    add_continuity(p, "navigate: probability in [0, 1] of continuing to the next heard bar")
    p.add_argument("--min-context", type=check_min_context, default=1, metavar="K",
                   help="navigate: shortest context (bars) a jump's target must share (default 1)")
    p.add_argument("--osc-port", type=_osc_port, default=live_controls.DEFAULT_OSC_PORT, metavar="N|off",
                   help=f"UDP port of the OSC controls (default {live_controls.DEFAULT_OSC_PORT}; 0 any free port; off)")
    p.add_argument("--osc-host", default=live_controls.DEFAULT_OSC_HOST, metavar="HOST",
                   help="interface the OSC port listens on (default 127.0.0.1, this machine only)")
    p.add_argument("--cc-bits", type=whole_number("--cc-bits", 0, 127, "controller numbers are 0..127"),
                   default=None, metavar="N",
                   help="MIDI controller number (0..127) whose value sets the bit budget on the "
                   "explorer's scale (0 = 0 bits ... 127 = full rate)")
    p.add_argument("--log", default=None, metavar="FILE.json",
                   help="write the bars' settings and the changes by bar as JSON here")
    add_force(p, help="overwrite existing output files")
    p.set_defaults(func=run_live)


def _positive(name: str):
    """A ``type=`` converter of a finite number > 0 (``--tempo``)."""
    nonnegative = nonnegative_float(name)

    def convert(text: str) -> float:
        v = nonnegative(text)
        if not v > 0:
            raise OptionError(f"{name} {text} must be a positive number of beats per minute")
        return v

    return convert


def _osc_port(text: str) -> int | None:
    """``--osc-port``: a UDP port 0..65535 (0: any free port), or ``off`` (None)."""
    if str(text).strip().lower() == "off":
        return None
    return whole_number("--osc-port", 0, 65535, "UDP ports are 0..65535")(text)


def _midi_output(name: str, value: str) -> Path:
    path = output_file_option(name, value)
    if not live_io.is_midi_file_name(path.name):
        raise OptionError(f"{name} {value}: a recording is a .mid or .midi file")
    return path


def run_live(args) -> int:
    """Handler of ``qbdi live``: options checked, outputs checked, then :func:`qbdi_utils.live_run.run_session`."""
    opts = live_run.LiveOptions(
        inp=args.inp, out=args.out, bits=args.bits, stats=args.stats, seed=args.seed, tempo=args.tempo,
        clock=args.clock, meter=args.meter, speed=args.speed, mode=args.mode, continuity=args.continuity,
        min_context=args.min_context, osc_port=args.osc_port, osc_host=args.osc_host, cc_bits=args.cc_bits)
    opts.check()

    # outputs: files checked, ports opened, before the model is loaded
    outs = []
    if opts.file_out:
        outs.append(_midi_output("--out", args.out))
    if args.record is not None:
        outs.append(_midi_output("--record", args.record))
    log_path = None
    if args.log is not None:
        log_path = output_file_option("--log", args.log)
        outs.append(log_path)
    check_outputs(outs, force=args.force, names="--out, --record and --log")
    model_dir = None if args.model is None else Path(args.model)
    if model_dir is not None and not model_dir.is_dir():
        raise ModelError("no such model directory; train one with `qbdi train` or pass --model DIR", model_dir)
    if opts.file_in and not Path(args.inp).is_file():
        raise MidiFileError("no such MIDI file; pass an existing .mid file or a port name to --in", Path(args.inp))

    result = live_run.run_session(
        opts, lambda: training.default_model(progress=True) if model_dir is None else StyleVAE.load(model_dir),
        lambda line: print(f"qbdi live: {line}", file=sys.stderr, flush=True),
        lambda res: live_run.write_results(res, outs, log_path, force=args.force))
    how = "stopped (Ctrl-C)" if result.interrupted else "done"
    print(f"qbdi live: {how} after {len(result.bars)} bars, {len(result.changes)} changes"
          + (" -> " + ", ".join(str(p) for p in outs) if outs else ""), file=sys.stderr)
    return 0
