"""``qbdi improvise``: a query MIDI file in, an improvisation in the corpus's style out.

    qbdi improvise [--model MODEL_DIR] --query FILE.mid [--key {corpus|query}] --bits {full|N} [--stats MODE] [--seed S]
                   [--threshold P] [--decode {paper|floor|typical}] [--velocity {query|corpus|N}]
                   [--tracks {one|melody+accompaniment}] [--programs P[,P]] [--wav-format {mono22|stereo44}]
                   --out OUT.mid [--musicxml F.musicxml] [--wav F.wav] [--corpus C] [--force] [--quiet]

Every option and output is checked before the model is loaded, so a refusal costs nothing. The
outputs (the MIDI, MusicXML and WAV) are one :class:`qbdi_utils.files.OutputSet`: they appear all
together or not at all, and without ``--force`` their creation is exclusive. What about the query the
model cannot take as it is (another meter, notes out of range, longer than any training piece) is
printed as ``warning:`` lines on stderr, once each; ``--decode`` chooses the decoding (notebook 08:
the paper's threshold, a per-bar onset floor, or a typical corpus bar at 0 bits); then the fidelity line (query and style side) and,
when the output is silent or nearly so, a warning with the cause and what to try instead.
``--key corpus`` (the default) improvises on the query moved to the key the model's corpus was
normalised to and writes the output back in the query's key (:func:`qbdi_utils.cli.key.hear`).
``qbdi sweep`` (every budget of the paper's claims) is :mod:`qbdi_utils.cli.sweep`.
"""

from __future__ import annotations

from qbdi_utils import blend
from qbdi_utils.cli import checks, options, performing
from qbdi_utils.cli.messages import warn
from qbdi_utils.cli.fidelity import report_piece
from qbdi_utils.cli.key import answer, hear, say_key
from qbdi_utils.cli.outputs import add_piece_outputs, check_piece_outputs, load, training_corpus_once, write_piece
from qbdi_utils.cli.values import probability
from qbdi_utils.improvise import improvise

__all__ = ["add_parser", "run_improvise"]


def add_parser(subparsers) -> None:
    """Register the ``improvise`` sub-command."""
    p = subparsers.add_parser(
        "improvise",
        help="improvise on a query MIDI file at a bit budget",
        description="Encode each bar of a query, send it through a channel of N bits per frame "
        "(or full rate) and decode it in the model's style; write MIDI (and optionally MusicXML, WAV).",
    )
    options.add_model(p)
    options.add_query(p)
    options.add_key(p)
    options.add_bits(p, required=True, help="bits per frame: 'full' (no channel) or a whole number >= 0")
    options.add_stats(p)
    options.add_seed(p)
    p.add_argument("--threshold", type=probability("--threshold"), default=None, metavar="P",
                   help="binarization threshold in (0, 1) (default: the model's)")
    options.add_decode(p)
    performing.add_performance(p)
    add_piece_outputs(p, out_help="output MIDI file")
    p.set_defaults(func=run_improvise)


def run_improvise(args) -> int:
    """Handler of ``qbdi improvise``."""
    model_dir, query_path = checks.check_inputs(args.model, args.query)
    outs = check_piece_outputs(args)
    layout = performing.layout(args)
    model, query = load(model_dir, query_path, audio=args.wav is not None)
    heard, shift = hear(args.key, model, query)  # --key corpus: in the corpus's key
    layout = performing.with_query_programs(layout, query)
    training = training_corpus_once(model, args.corpus)  # --decode floor and the fidelity line: one load
    decode = blend.decoding(model, args.decode, training)
    piece = improvise(model, heard, args.bits, mode=args.stats, seed=args.seed, threshold=args.threshold, **decode)
    (written,), folded = answer([piece], shift)  # written in the query's key
    written.warnings += performing.perform(args, model, query, written)
    warn("improvise", written.warnings)
    given = write_piece(written, outs, args.force, layout=layout)
    say_key(args, shift, folded)
    print(f"{written.name}: {written.n_steps} steps at {written.tempo_bpm:g} bpm -> "
          + ", ".join(str(p) for p in given))
    report_piece("improvise", model, heard, piece, corpus=args.corpus, threshold=args.threshold,
                 training=training)  # like with like: both in the corpus's key
    return 0
