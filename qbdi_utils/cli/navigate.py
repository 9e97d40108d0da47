"""``qbdi navigate``: oracle improvisation in latent space (a new bar order, then the channel, then the VAE).

    qbdi navigate [--model MODEL_DIR] --query FILE.mid [--key {corpus|query}] --source {query|corpus} [--continuity P]
                  [--min-context K] [--bits full|N] [--stats MODE] [--seed S] [--velocity {query|corpus|N}]
                  [--tracks {one|melody+accompaniment}] [--programs P[,P]] [--wav-format {mono22|stereo44}] --out OUT.mid
                  [--musicxml F] [--wav F] [--corpus C] [--force] [--quiet]

``--source query`` walks the VMO built on the query's own latent states (continue with probability P,
otherwise jump to a state sharing at least K bars of context); ``--source corpus`` takes the path
through the oracle of the model's training corpus closest to the query (the corpus the model records,
or ``--corpus`` if it moved; a corpus that is gone is one line before anything is parsed). Beside
OUT.mid it writes OUT.json: for every output bar (counted from 1), the oracle state it came from (query
bar, or corpus piece and bar, from 1) and whether it was a jump. ``--key`` as in ``qbdi improvise`` (default
corpus: the query is heard in the corpus's key, the outputs written back in its own). Options and outputs are checked
before the model is loaded; the fidelity line and a warning for a (nearly) silent output follow.
"""

from __future__ import annotations

from pathlib import Path

from qbdi_utils import navigate as nav_mod
from qbdi_utils.cli import checks, model_corpus, options, performing
from qbdi_utils.cli.messages import warn
from qbdi_utils.cli.fidelity import report_piece
from qbdi_utils.cli.key import answer, hear, say_key
from qbdi_utils.cli.outputs import add_piece_outputs, check_piece_outputs, load, write_piece
from qbdi_utils.errors import OptionError
from qbdi_utils.navigate import DEFAULT_CONTINUITY, SOURCES, check_min_context
from qbdi_utils.navigate_output import path_json_text

__all__ = ["add_parser", "run_navigate"]


def add_parser(subparsers) -> None:
    """Register the ``navigate`` sub-command."""
    p = subparsers.add_parser(
        "navigate",
        help="improvise by walking a Variable Markov Oracle over latent states (query or corpus)",
        description="Build a VMO over latent states (the query's own, or the model's training corpus), "
        "choose a new path of the query's length through it, send it through a channel of N bits per "
        "frame (or full rate) and decode it; write MIDI, the path as JSON beside it, and optionally "
        "MusicXML and WAV.",
    )
    options.add_model(p)
    options.add_query(p)
    options.add_key(p)
    p.add_argument("--source", required=True, metavar="{query|corpus}",
                   help="'query': navigate the query's own oracle; 'corpus': the path through the "
                   "model's training corpus closest to the query")
    options.add_continuity(p, "probability in [0, 1] of playing the next bar (source query; "
                           "1 replays the query like `qbdi improvise`)")
    p.add_argument("--min-context", type=check_min_context, default=None, metavar="K",
                   help="shortest context (bars) a jump's target must share (source query; default 1)")
    options.add_bits(p, required=False,
                     help="bits per frame: 'full' (no channel, the default) or a whole number >= 0")
    options.add_stats(p)
    options.add_seed(p, help="seed of the path and the channel noise (default 0)")
    performing.add_performance(p)
    add_piece_outputs(p, out_help="output MIDI file (OUT.json is written beside it)")
    p.set_defaults(func=run_navigate)


def run_navigate(args) -> int:
    """Handler of ``qbdi navigate``."""
    if args.source not in SOURCES:
        raise OptionError(f"--source {args.source!r} is not one of {', '.join(SOURCES)}")
    if args.source == "corpus":
        for name, value in (("--continuity", args.continuity), ("--min-context", args.min_context)):
            if value is not None:
                raise OptionError(f"{name} applies to --source query only; the corpus path is the "
                                  "one closest to the query")
    continuity = DEFAULT_CONTINUITY if args.continuity is None else args.continuity
    min_context = 1 if args.min_context is None else args.min_context
    model_dir, query_path = checks.check_inputs(args.model, args.query)
    json_path = Path(args.out).with_suffix(".json")
    outs = check_piece_outputs(args, extra=(json_path,))
    layout = performing.layout(args)

    model, query = load(model_dir, query_path, audio=args.wav is not None)
    heard, shift = hear(args.key, model, query)  # --key corpus: in the corpus's key
    layout = performing.with_query_programs(layout, query)
    oracle = None
    if args.source == "corpus":
        oracle = nav_mod.corpus_oracle(model, model_corpus.training_corpus(model, args.corpus, progress=True))
    nav = nav_mod.navigate(model, heard, args.source, continuity, min_context, bits=args.bits, mode=args.stats,
                           seed=args.seed, oracle=oracle)
    (back,), folded = answer([nav], shift)  # written in the query's key
    back.warnings += performing.perform(args, model, query, back)
    warn("navigate", back.warnings)
    written = write_piece(back, outs, args.force, {json_path: path_json_text(back)}, layout=layout)
    say_key(args, shift, folded)
    print(f"{back.name}: {len(back.path)} bars, {int(back.jumps.sum())} jumps, oracle threshold "
          f"{back.oracle_threshold:.3f} -> " + ", ".join(str(Path(p)) for p in written))
    report_piece("navigate", model, heard, nav, corpus=args.corpus)  # like with like: both in the corpus's key
    return 0
