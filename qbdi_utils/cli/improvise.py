"""``qbdi improvise`` and ``qbdi sweep``: a query MIDI file in, improvisations in the corpus's style out.

    qbdi improvise [--model MODEL_DIR] --query FILE.mid --bits {full|N} [--stats MODE] [--seed S]
                   --out OUT.mid [--musicxml F] [--wav F] [--force]
    qbdi sweep     [--model MODEL_DIR] --query FILE.mid --out DIR [--seeds K] [--stats MODE] [--force]

Every output is checked before the model is loaded, so a refusal costs nothing; existing outputs are
never overwritten without ``--force``. What about the query the model cannot take as it is (another
meter, notes out of range, longer than any training piece) is printed as ``warning:`` lines on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qbdi_utils.cli import int_option
from qbdi_utils.errors import MidiFileError, ModelError, OptionError, OutputExistsError

_STATS = ("query", "corpus", "posterior", "prior")


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
    return m, q


def _check_output(path: str | None, force: bool) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if p.exists() and not force:
        raise OutputExistsError("exists; pass --force to overwrite it", p)
    if p.exists() and p.is_dir():
        raise OutputExistsError("is a directory; give a file name", p)
    return p


def _load(model_dir: Path | None, query_path: Path):
    from qbdi_utils import pianoroll, vae

    if model_dir is None:
        model = vae.default_model(progress=True)
    else:
        model = vae.StyleVAE.load(model_dir)
    query = pianoroll.read_midi(query_path, spec=model.spec)
    return model, query


def _warn(command: str, warnings) -> None:
    for w in warnings:
        print(f"qbdi {command}: warning: {w}", file=sys.stderr)


def _write_midi(piece, path: Path) -> None:
    from qbdi_utils import pianoroll

    sigs = piece.time_signatures or [(0, 4, 4)]
    pianoroll.write_midi(piece.roll, path, tempo_bpm=[tuple(t) for t in piece.tempo_map],
                         spec=piece.spec, time_signature=tuple(sigs[0][1:]))


def run_improvise(args) -> int:
    """Handler of ``qbdi improvise``."""
    from qbdi_utils.improvise import parse_bits

    bits = parse_bits(args.bits)
    stats = _check_stats(args.stats)
    seed = int_option("--seed", args.seed, 0)
    threshold = None
    if args.threshold is not None:
        try:
            threshold = float(args.threshold)
        except ValueError:
            raise OptionError(f"--threshold {args.threshold!r} is not a number") from None
        if not 0.0 < threshold < 1.0:
            raise OptionError(f"--threshold {threshold} must lie strictly between 0 and 1")
    model_dir, query_path = _check_inputs(args.model, args.query)
    outs = [_check_output(args.out, args.force), _check_output(args.musicxml, args.force),
            _check_output(args.wav, args.force)]
    names = [p.resolve() for p in outs if p is not None]
    if len(set(names)) != len(names):
        raise OptionError("--out, --musicxml and --wav must name different files")

    from qbdi_utils.improvise import improvise

    model, query = _load(model_dir, query_path)
    piece = improvise(model, query, bits, mode=stats, seed=seed, threshold=threshold)
    _warn("improvise", piece.warnings)
    _write_midi(piece, outs[0])
    written = [outs[0]]
    if outs[1] is not None:
        from qbdi_utils import render

        render.write_musicxml(piece, outs[1], force=args.force, name=piece.name)
        written.append(outs[1])
    if outs[2] is not None:
        from qbdi_utils import render

        render.write_wav(piece, outs[2], force=args.force)
        written.append(outs[2])
    print(f"{piece.name}: {piece.n_steps} steps at {piece.tempo_bpm:g} bpm -> "
          + ", ".join(str(p) for p in written))
    return 0


def run_sweep(args) -> int:
    """Handler of ``qbdi sweep``."""
    from qbdi_utils.improvise import CLAIM_RATES, claims_sweep, write_claims_csv

    stats = _check_stats(args.stats)
    k = int_option("--seeds", args.seeds, 1)
    model_dir, query_path = _check_inputs(args.model, args.query)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError("exists and is a file; give a directory for --out", out)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise OutputExistsError("exists and is not empty; pass --force to write into it", out)

    model, query = _load(model_dir, query_path)
    rows, pieces = claims_sweep(model, query, CLAIM_RATES, k, mode=stats, return_pieces=True)
    _warn("sweep", next(iter(pieces.values())).warnings)
    out.mkdir(parents=True, exist_ok=True)
    stem = query_path.stem
    for (bits, seed), piece in pieces.items():
        tag = "full" if bits is None else f"{bits}bits"
        _write_midi(piece, out / f"{stem}_{tag}_seed{seed}.mid")
    csv_path = write_claims_csv(rows, out / "claims.csv", force=True)
    print(f"{len(pieces)} improvisations of {stem} ({len(CLAIM_RATES)} rates x {k} seeds) and "
          f"{csv_path} written to {out}")
    return 0
