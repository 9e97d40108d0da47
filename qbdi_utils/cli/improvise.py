"""``qbdi improvise`` and ``qbdi sweep``: a query MIDI file in, improvisations in the corpus's style out.

    qbdi improvise [--model MODEL_DIR] --query FILE.mid --bits {full|N} [--stats MODE] [--seed S]
                   --out OUT.mid [--musicxml F.musicxml] [--wav F.wav] [--force]
    qbdi sweep     [--model MODEL_DIR] --query FILE.mid --out DIR [--seeds K] [--stats MODE] [--force]

Every option and output is checked before the model is loaded, so a refusal costs nothing. The
outputs of one command (improvise: the MIDI, MusicXML and WAV; sweep: every MIDI and claims.csv) are
one :class:`qbdi_utils.files.OutputSet`: they appear all together or not at all, and without
``--force`` their creation is exclusive (a concurrent run that got there first wins; this one says
"exists; pass --force"). A file-system fault is one line naming the path, exit 2. What about the
query the model cannot take as it is (another meter, notes out of range, longer than any training
piece) is printed as ``warning:`` lines on stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from qbdi_utils import files, limits
from qbdi_utils.cli import int_option, output_file_option
from qbdi_utils.errors import FileSystemError, MidiFileError, ModelError, OptionError, OutputExistsError
from qbdi_utils import pianoroll, vae
from qbdi_utils.improvise import CLAIM_RATES, claims_csv_text, claims_sweep, improvise, parse_bits
from qbdi_utils.render._common import check_suffix
from qbdi_utils.render.audio import WAV_SUFFIXES, wav_bytes
from qbdi_utils.render.notation import MUSICXML_SUFFIXES, musicxml_bytes

__all__ = ["MAX_BITS", "MAX_SEED", "MAX_SEEDS", "MIDI_SUFFIXES", "add_parser", "run_improvise", "run_sweep"]

_STATS = ("query", "corpus", "posterior", "prior")

MAX_BITS = 1_000_000
"""Largest --bits: far above any model's full-rate information (a few thousand bits per frame)."""
MAX_SEED = 2**32 - 1
"""Largest --seed (numpy seeds are 32-bit words here, so larger ones would only alias)."""
MAX_SEEDS = 1_000
"""Largest --seeds of ``qbdi sweep`` (each seed is 8 more improvisations and MIDI files)."""
MIDI_SUFFIXES = (".mid", ".midi")
"""Names accepted for MIDI outputs."""


def _add_model_and_query(parser) -> None:
    parser.add_argument("--model", default=None, metavar="MODEL_DIR",
                        help="directory of a saved StyleVAE (default: the notebooks' default model, "
                        "models/default, trained on the chorales on first use)")
    parser.add_argument("--query", required=True, metavar="FILE.mid", help="query MIDI file")


def _add_stats(parser) -> None:
    parser.add_argument("--stats", default="query", metavar="{" + "|".join(_STATS) + "}",
                        help="channel source statistics (default: query)")


def add_parser(subparsers) -> None:
    """Register the ``improvise`` and ``sweep`` sub-commands."""
    p = subparsers.add_parser(
        "improvise",
        help="improvise on a query MIDI file at a bit budget",
        description="Encode each bar of a query, send it through a channel of N bits per frame "
        "(or full rate) and decode it in the model's style; write MIDI (and optionally MusicXML, WAV).",
    )
    _add_model_and_query(p)
    p.add_argument("--bits", required=True, metavar="{full|N}",
                   help="bits per frame: 'full' (no channel) or a whole number >= 0")
    _add_stats(p)
    p.add_argument("--seed", default="0", metavar="S", help="seed of the channel noise (default 0)")
    p.add_argument("--threshold", default=None, metavar="P",
                   help="binarization threshold in (0, 1) (default: the model's)")
    p.add_argument("--out", required=True, metavar="OUT.mid", help="output MIDI file")
    p.add_argument("--musicxml", default=None, metavar="F", help="also write MusicXML here")
    p.add_argument("--wav", default=None, metavar="F", help="also write a WAV rendering here")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=run_improvise)

    s = subparsers.add_parser(
        "sweep",
        help="improvise at every bit budget of the paper's claims and tabulate them",
        description="Improvise on a query at full rate and 1024..0 bits per frame with K seeds each; "
        "write one MIDI per rate and seed and the claims table (claims.csv) into DIR.",
    )
    _add_model_and_query(s)
    s.add_argument("--out", required=True, metavar="DIR", help="output directory")
    s.add_argument("--seeds", default="5", metavar="K", help="channel seeds per rate (default 5)")
    _add_stats(s)
    s.add_argument("--force", action="store_true", help="write into an existing, non-empty DIR")
    s.set_defaults(func=run_sweep)


def _bits_option(value: str):
    """--bits as None (full rate) or a whole number of bits per frame, at most MAX_BITS."""

    bits = parse_bits(value)
    if bits is not None and bits > MAX_BITS:
        shown = value.strip() if len(value.strip()) <= 30 else f"({len(value.strip())} digits)"
        raise OptionError(f"--bits {shown} is more than {MAX_BITS} bits per frame; "
                          "for an unconstrained channel pass --bits full")
    return bits


def _check_stats(value: str) -> str:
    if value not in _STATS:
        raise OptionError(f"--stats {value!r} is not one of {', '.join(_STATS)}")
    return value


def _check_inputs(model_dir: str | None, query: str) -> tuple[Path | None, Path]:
    m, q = (None if model_dir is None else Path(model_dir)), Path(query)
    if m is None:
        pass  # the default model; vae.default_model() loads or trains it
    elif not m.exists():
        raise ModelError("no such model directory; train one with `qbdi train` or pass --model DIR", m)
    elif not m.is_dir():
        raise ModelError("is a file, not a model directory; pass the directory a model was saved to", m)
    if not q.exists():
        raise MidiFileError("no such query file; pass an existing .mid file to --query", q)
    if q.is_dir():
        raise MidiFileError("is a directory; pass a .mid file to --query", q)
    limits.check_regular(q, MidiFileError, "a .mid file to --query", "QBDI_MAX_MIDI_BYTES")
    if m is not None and os.path.lexists(m / vae.WEIGHTS_FILE):
        limits.check_regular(m / vae.WEIGHTS_FILE, ModelError, "the weights written by `qbdi train`",
                             "QBDI_MAX_MODEL_BYTES")
    return m, q


def _check_output(option: str, value: str | None, suffixes: tuple[str, ...], what: str) -> Path | None:
    """An output file option as a Path: a file name with the suffix of what is written there."""

    if value is None:
        return None
    return check_suffix(output_file_option(option, value), suffixes, what, option)


def _load(model_dir: Path | None, query_path: Path, audio: bool = False):
    """The model and the query; with ``audio``, the WAV's length is checked before any work (the
    output has the query's steps and tempo)."""
    if model_dir is None:
        model = vae.default_model(progress=True)
    else:
        model = vae.StyleVAE.load(model_dir)
    query = pianoroll.read_midi(query_path, spec=model.spec)
    if audio:
        limits.check_audio_seconds(query.n_steps * 60.0 / query.tempo_bpm / query.spec.steps_per_quarter,
                                   f"{query_path}: the --wav of this query")
    return model, query


def _warn(command: str, warnings) -> None:
    for w in warnings:
        print(f"qbdi {command}: warning: {w}", file=sys.stderr)


def _check_outputs(args, extra: tuple = ()) -> list:
    """--out, --musicxml and --wav (and ``extra`` paths) checked before any work: suffixes, distinct
    names, and nothing in the way unless --force (the commit is exclusive again)."""

    outs = [_check_output("--out", args.out, MIDI_SUFFIXES, "MIDI"),
            _check_output("--musicxml", args.musicxml, MUSICXML_SUFFIXES, "uncompressed MusicXML"),
            _check_output("--wav", args.wav, WAV_SUFFIXES, "WAV audio")]
    given = [p for p in outs + list(extra) if p is not None]
    names = [os.path.abspath(p) for p in given]
    if len(set(names)) != len(names):
        raise OptionError("--out, --musicxml and --wav (and files written beside --out) must name different files")
    files.check_outputs(given, force=args.force)
    return outs


def _write_outputs(piece, outs: list, force: bool, extra_texts: dict | None = None) -> list:
    """MIDI, MusicXML and WAV of ``piece`` (and ``extra_texts``: {path: text}) as one output set:
    all of them appear, or none. Returns the paths written."""
    with files.OutputSet(force=force) as out_set:
        out_set.add_bytes(outs[0], _midi_bytes(piece))
        for path, text in (extra_texts or {}).items():
            out_set.add_text(path, text)
        if outs[1] is not None:

            out_set.add_bytes(outs[1], musicxml_bytes(piece, name=piece.name))
        if outs[2] is not None:

            out_set.add_bytes(outs[2], wav_bytes(piece))
    return list(out_set.paths)


def _midi_bytes(piece) -> bytes:

    sigs = piece.time_signatures or [(0, 4, 4)]
    return pianoroll.midi_bytes(piece.roll, tempo_bpm=[tuple(t) for t in piece.tempo_map],
                                spec=piece.spec, time_signature=tuple(sigs[0][1:]))


def run_improvise(args) -> int:
    """Handler of ``qbdi improvise``."""

    bits = _bits_option(args.bits)
    stats = _check_stats(args.stats)
    seed = int_option("--seed", args.seed, 0, MAX_SEED, "a seed is a 32-bit number")
    threshold = None
    if args.threshold is not None:
        try:
            threshold = float(args.threshold)
        except ValueError:
            raise OptionError(f"--threshold {args.threshold!r} is not a number") from None
        if not 0.0 < threshold < 1.0:
            raise OptionError(f"--threshold {threshold} must lie strictly between 0 and 1")
    model_dir, query_path = _check_inputs(args.model, args.query)
    outs = _check_outputs(args)


    model, query = _load(model_dir, query_path, audio=args.wav is not None)
    piece = improvise(model, query, bits, mode=stats, seed=seed, threshold=threshold)
    _warn("improvise", piece.warnings)
    given = _write_outputs(piece, outs, args.force)
    print(f"{piece.name}: {piece.n_steps} steps at {piece.tempo_bpm:g} bpm -> "
          + ", ".join(str(p) for p in given))
    return 0


def _sweep_name(stem: str, bits: int | None, seed: int) -> str:
    tag = "full" if bits is None else f"{bits}bits"
    return f"{stem}_{tag}_seed{seed}.mid"


def run_sweep(args) -> int:
    """Handler of ``qbdi sweep``."""

    stats = _check_stats(args.stats)
    k = int_option("--seeds", args.seeds, 1, MAX_SEEDS,
                   f"each seed is {len(CLAIM_RATES)} more improvisations")
    model_dir, query_path = _check_inputs(args.model, args.query)
    if not str(args.out).strip():
        raise OptionError("--out is empty; give a folder name")
    out = Path(args.out)
    if os.path.lexists(out) and not out.is_dir():
        raise FileSystemError("cannot write: is a file, not a folder; give a folder for --out", out)
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise OutputExistsError("exists and is not empty; pass --force to write into it", out)
    stem = query_path.stem
    targets = [out / _sweep_name(stem, b, s) for b in CLAIM_RATES for s in range(k)] + [out / "claims.csv"]
    files.check_outputs(targets, force=args.force)

    model, query = _load(model_dir, query_path)
    rows, pieces = claims_sweep(model, query, CLAIM_RATES, k, mode=stats, return_pieces=True)
    _warn("sweep", next(iter(pieces.values())).warnings)
    with files.OutputSet(force=args.force) as out_set:
        for (bits, seed), piece in pieces.items():
            out_set.add_bytes(out / _sweep_name(stem, bits, seed), _midi_bytes(piece))
        out_set.add_text(out / "claims.csv", claims_csv_text(rows))
    print(f"{len(pieces)} improvisations of {stem} ({len(CLAIM_RATES)} rates x {k} seeds) and "
          f"{out / 'claims.csv'} written to {out}")
    return 0
