"""``qbdi frames FILE``: how a MIDI file looks as the paper's frames, and what did not fit."""

from __future__ import annotations

import json

from qbdi_utils.cli import corpus_options
from qbdi_utils.cli.corpus_options import parse_meter
from qbdi_utils.errors import MeterError, OptionError
from qbdi_utils.pianoroll import piece_to_frames, read_midi, roll_to_notes

__all__ = ["add_parser", "run", "off_meter"]


def add_parser(subparsers) -> None:
    """Register the ``frames`` sub-command."""
    p = subparsers.add_parser(
        "frames",
        help="read a MIDI file and print its frame count and the notes it could not represent",
        description="Read FILE with the project's MIDI reader and print the number of 16-step frames "
        "(one 4/4 bar each), its length, meter, tempo, and counts of notes that could not be "
        "represented (drums, pitches outside 24..101).",
    )
    p.add_argument("file", metavar="FILE", help="a .mid/.midi file")
    corpus_options.add_meter(p, default=None, help="require this meter, e.g. 4/4 (default: any)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def off_meter(piece, numerator: int, denominator: int) -> list[tuple[int, int, int]]:
    """The time signatures of ``piece`` other than numerator/denominator, as (step, num, den).

    A leading pickup signature (a first bar shorter than a full bar, see
    :func:`qbdi_utils.pianoroll.read_midi`) is not counted.
    """
    return [(st, n, d) for st, n, d in piece.time_signatures
            if (n, d) != (numerator, denominator) and not (st == 0 and piece.bar_offset_steps > 0)]


def run(args) -> int:
    """Handler: print frame count and what was dropped; QbdiError propagates to the CLI."""

    meter = parse_meter(args.meter) if args.meter is not None else None
    piece = read_midi(args.file)
    if meter is not None:
        off = off_meter(piece, *meter)
        if off:
            st, n, d = off[0]
            raise MeterError(f"meter {n}/{d} at bar {st // piece.spec.steps_per_frame + 1}; --meter {meter[0]}/{meter[1]} accepts only "
                             f"{meter[0]}/{meter[1]} (--meter any, the default, accepts any meter)", args.file)
    frames = piece_to_frames(piece)
    info = {
        "file": str(args.file),
        "frames": int(frames.shape[0]),
        "steps": piece.n_steps,
        "notes": len(roll_to_notes(piece.roll, piece.spec)),
        "time_signatures": [f"{n}/{d}@{s}" for s, n, d in piece.time_signatures],
        "tempo_bpm": round(piece.tempo_bpm, 3),
        "ticks_per_beat": piece.ticks_per_beat,
        "pickup_steps": piece.bar_offset_steps,
        "not_represented": dict(piece.dropped),
    }
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"{info['file']}: {info['frames']} frames ({info['steps']} steps of a 16th note, "
          f"{info['notes']} notes)")
    print(f"  meter {', '.join(info['time_signatures']) or 'none (4/4 assumed)'}; "
          f"tempo {info['tempo_bpm']} bpm; {info['ticks_per_beat']} ticks per beat; "
          f"pickup {info['pickup_steps']} steps")
    if piece.dropped:
        what = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(piece.dropped.items()))
        print(f"  not represented: {what} notes")
    else:
        print("  not represented: nothing (every note fits)")
    return 0
