"""Training corpora and queries as piano-roll frames, cached. Notebook 01.

One code path serves every input: music21's Bach chorales (and the Essen folk songs, source
``"essen"``, see :data:`qbdi_utils.music21_files.ESSEN_FILE`) are written to a temporary MIDI file by
music21 and read back with :func:`qbdi_utils.pianoroll.read_midi`, exactly like any ``.mid`` file of a
user's folder. Only the bar lines come from music21 (a chorale's pickup), since a MIDI file written
by music21 does not mark them.

Key normalisation (the default ``transpose="tonic"``): every piece is moved by at most a tritone so
that its tonic is C: major pieces to C major, minor pieces to C minor. The paper's query is in C and
its claim is that low rates make the output "converge on the tonic chord of the piece (C)" (PAPER.md
section 5); what a starved channel converges to is the corpus's average, so the corpus must share the
query's tonic. With keys mixed the corpus average has no tonic (its best triad is G, the chorales
favouring sharp keys); with the relative scheme (C major / A minor) the average triad is A minor,
because 45% of the 4/4 chorales are minor; with every tonic on C it is C major and the two most common
frame triads are C and C minor. Notebook 01 shows the numbers. Augmenting by transposition (option
``augment``) would put the other tonics back, so it is off by default. The estimated key comes from
the roll itself (Krumhansl-Kessler profiles on duration-weighted pitch classes), so folders of MIDI
files get the same treatment.

The cache is the sharded, incremental store of :mod:`qbdi_utils.shards`: one folder per source
(keyed by the folder, or music21's version, the spec and the meter), holding the parsed pieces in
shards of a few hundred files each and, per set of options, one frame shard per pieces shard.
Adding or changing files parses only those files (in parallel, ``workers``); nothing is ever stale,
since a file is reused only while its path, size and modification time are unchanged.
``Corpus.fingerprint`` still hashes the source (music21 version and file list, or each file's name,
size and modification time), the roll spec and every option.

Imports: paths, shards, shards_view, errors, files, harmony, music21_files, pianoroll.
Used in: notebooks 01-08, :mod:`qbdi_utils.training.cache`, the CLI, the explorer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qbdi_utils import paths
from qbdi_utils import shards, shards_view
from qbdi_utils.errors import CorpusError, OptionError, QbdiError
from qbdi_utils.files import cause_in_words
from qbdi_utils.harmony import KEY_TONIC_NAMES, Key, estimate_key
from qbdi_utils.music21_files import ESSEN_PIECES, chorale_paths, essen_path, essen_tunes, music21_version
from qbdi_utils.pianoroll import (
    Piece, RollSpec, bar_meters, cut_bars, read_midi, transpose_roll,
)

__all__ = [
    "CACHE_VERSION", "CHORALE_SHARD_FILES", "NAMED_SOURCES", "QUERY_NAMES", "DEFAULT_QUERY", "QUERY_SOURCES",
    "TRANSPOSE_MODES",
    "PITCH_CLASS_NAMES", "estimate_key", "key_name", "normalising_shift", "Corpus",
    "score_to_piece", "corpus_fingerprint", "load_corpus", "default_query_path", "query_path",
    "METER_ANY", "meter_counts",
    "load_query", "export_queries",
]

#: Bump when the reader or the frame layout changes, so old caches are not reused.
CACHE_VERSION = 2

#: Queries shipped in data/queries (file stems), default first. See data/README.md.
QUERY_NAMES = ("haydn_op74no1_mvt1", "joplin_maple_leaf_rag", "boston_boys_reel")
DEFAULT_QUERY = QUERY_NAMES[0]

#: Where each query comes from in the music21 corpus, and whether repeats are written out
#: (the Haydn movement is long enough without its exposition repeat), for :func:`export_queries`.
QUERY_SOURCES = {
    "haydn_op74no1_mvt1": ("haydn/opus74no1/movement1", False),
    "joplin_maple_leaf_rag": ("joplin/maple_leaf_rag", True),
    "boston_boys_reel": ("ryansMammoth/BostonBoysReel", True),
}

#: Files per pieces shard for the chorales: music21 parses a score about 100 times slower than
#: mido reads a MIDI file, so their shards are smaller (and the 433 chorales use the workers).
CHORALE_SHARD_FILES = 64

#: Files of music21's Bach folder that are not chorales.
_NOT_CHORALES = {"bwv846": "not a chorale (Well-Tempered Clavier prelude)"}

TRANSPOSE_MODES = (None, "relative", "tonic")

#: ``load_corpus(meter=METER_ANY)`` (the default) keeps pieces in every meter, each bar its own frame
#: (:func:`qbdi_utils.pianoroll.bar_layout`); a meter such as "4/4" keeps only the pieces in it.
METER_ANY = "any"

#: Corpora that ship inside music21 and are named rather than given as a folder (issue 23).
NAMED_SOURCES = ("chorales", "essen")


# ---------------------------------------------------------------------------------------------
# keys: one estimator, in harmony; these names stay importable from here for notebooks and users

PITCH_CLASS_NAMES = KEY_TONIC_NAMES


def key_name(tonic: int, mode: str) -> str:
    """'C major', 'Eb minor', ... (the name :attr:`harmony.Key.name` gives)."""
    return Key(int(tonic), mode, float("nan"), 0).name


def normalising_shift(tonic: int, mode: str, transpose: str | None) -> int:
    """Semitones (-6..5) that move a key to C major / A minor ("relative") or to tonic C ("tonic").

    Args:
        tonic: pitch class of the tonic, C = 0.
        mode: "major" or "minor".
        transpose: None (no shift), "relative" or "tonic".

    Returns:
        The shift in semitones, the smallest in size (ties go down).
    """
    if transpose is None:
        return 0
    target = 9 if (transpose == "relative" and mode == "minor") else 0
    return ((target - tonic + 6) % 12) - 6


# ---------------------------------------------------------------------------------------------
# meters

def meter_counts(pieces) -> dict:
    """Pieces and bars by meter, over the kept pieces (augmented copies not counted).

    Args:
        pieces: ``Corpus.pieces`` (or a ShardedCorpus's), each with its ``meters`` record.

    Returns:
        {"pieces": {meters: count}, "bars": {meter: count}}, most common first; a piece in several
        meters counts under their names joined by "+" (e.g. "4/4+3/4"), its bars under each meter.

    Used in: :func:`qbdi_utils.training.record_corpus`, notebooks/01_data_prep.ipynb.
    """
    by_piece: dict[str, int] = {}
    bars: dict[str, int] = {}
    for p in pieces:
        if p.get("augment_shift", 0):
            continue
        m = p.get("meters") or {}
        key = "+".join(m) if m else "unknown"
        by_piece[key] = by_piece.get(key, 0) + 1
        for k, v in m.items():
            bars[k] = bars.get(k, 0) + int(v)
    order = lambda d: dict(sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))  # noqa: E731
    return {"pieces": order(by_piece), "bars": order(bars)}


# ---------------------------------------------------------------------------------------------
# the corpus object

@dataclass
class Corpus:
    """Frames of a corpus, with where each frame came from and what was left out.

    Attributes:
        frames: (N, spec.frame_size) uint8, bar frames of all kept pieces (and their augmented
            copies), in piece order: one bar of the piece's meter each, padded at its end (a bar
            longer than a frame split at its beats; :func:`qbdi_utils.pianoroll.bar_layout`).
        piece_index: (N,) int, index into ``piece_names`` of each frame.
        piece_names: names of the kept pieces; augmented copies are named "<name>@+2" etc.
        skipped: list of (name, reason) for every piece that was not used.
        fingerprint: hex digest identifying source, spec and options (the cache key).
        spec: the roll layout.
        options: the options the corpus was built with.
        pieces: one dict per entry of ``piece_names``: name, key (estimated, before
            transposition), shift (semitones applied in all), augment_shift (the augmentation part
            of it, 0 for the original), n_frames, n_steps, bar_offset_steps, dropped (counts),
            frame_lengths (the valid steps of its frames, run-length coded as [[length, count], ...];
            :func:`qbdi_utils.shards_view.frame_lengths_of`), meters (bars per meter, e.g. {"3/4": 24}).
        from_cache: whether nothing had to be parsed or cut into frames (all shards reused).
        load_seconds: wall-clock seconds this load took.
        cache_path: the shard store folder (None when caching was off).
        ingest: counts of this load (:class:`qbdi_utils.shards_view.ShardedCorpus`): parsed, reused,
            shards, new_shards, frame_shards_built, frame_shards_reused, workers, seconds,
            job_cpu_seconds (= parse_cpu_seconds + frames_cpu_seconds), parent_cpu_seconds.
    """

    frames: np.ndarray
    piece_index: np.ndarray
    piece_names: list
    skipped: list
    fingerprint: str
    spec: RollSpec = field(default_factory=RollSpec)
    options: dict = field(default_factory=dict)
    pieces: list = field(default_factory=list)
    from_cache: bool = False
    load_seconds: float = 0.0
    cache_path: Path | None = None
    ingest: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        """Number of frames N."""
        return int(self.frames.shape[0])

    @property
    def frame_lengths(self) -> np.ndarray:
        """(N,) int64 valid steps of each frame (``spec.steps_per_frame`` for a 4/4 bar), piece order."""
        return shards_view.frame_lengths_of(self.pieces, self.spec)

    def piece_frames(self, i: int) -> np.ndarray:
        """Frames of piece ``i``: (n_i, spec.frame_size) uint8."""
        return self.frames[self.piece_index == i]

    def meter_counts(self) -> dict:
        """Pieces and bars by meter over the kept pieces (:func:`meter_counts`)."""
        return meter_counts(self.pieces)

    def skipped_reasons(self) -> dict:
        """Counts of skipped pieces by reason, shortened to its kind ("meter 3/4", ...)."""
        out: dict[str, int] = {}
        for _, reason in self.skipped:
            kind = re.sub(r" at step \d+", "", reason.split(";")[0].split(" (")[0]).strip()
            out[kind] = out.get(kind, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def dropped_totals(self) -> dict:
        """Notes that could not be represented, summed over kept pieces, by reason."""
        out: dict[str, int] = {}
        for p in self.pieces:
            for k, v in p["dropped"].items():
                out[k] = out.get(k, 0) + v
        return out

    def summary(self) -> dict:
        """Counts worth printing: pieces kept/skipped, frames, skip reasons, dropped notes, ingest."""
        base = [p for p in self.pieces if p.get("augment_shift", 0) == 0]
        return {
            "pieces_kept": len(base),
            "pieces_with_augmentation": len(self.pieces),
            "pieces_skipped": len(self.skipped),
            "frames": self.n_frames,
            "meters": self.meter_counts(),
            "skipped_by_reason": self.skipped_reasons(),
            "notes_dropped": self.dropped_totals(),
            "from_cache": self.from_cache,
            "load_seconds": round(self.load_seconds, 3),
            "ingest": dict(self.ingest),
        }


# ---------------------------------------------------------------------------------------------
# sources











MIDI_SUFFIXES = (".mid", ".midi")


def _folder_paths(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """MIDI files below ``folder`` (sorted by relative path), and the MIDI-named entries that are not
    readable files, as (relative name, reason): links that dangle or loop, folders named like MIDI
    files, sockets and the like. Nothing is ignored silently."""
    files, problems = [], []
    entries, unreadable = [], []
    # os.walk, not Path.rglob: rglob skips a folder it may not read without a word
    for here, dirs, names in os.walk(folder, onerror=unreadable.append):
        entries += [Path(here) / n for n in dirs + names]
    for exc in unreadable:
        where = Path(os.fsdecode(exc.filename)) if exc.filename is not None else folder
        rel = str(where.relative_to(folder)) if where != folder else "."
        problems.append((rel, f"a folder that cannot be read ({cause_in_words(exc)}); "
                              "its files were not used"))
    for p in sorted(entries, key=lambda p: str(p.relative_to(folder))):
        if p.suffix.lower() not in MIDI_SUFFIXES:
            continue
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            try:
                p.resolve(strict=True)
            except FileNotFoundError:
                problems.append((rel, "a link to a file that does not exist"))
                continue
            except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError on a loop, later ones OSError
                problems.append((rel, "a link that loops back on itself"))
                continue
        if p.is_dir():
            problems.append((rel, "a folder with a MIDI name, not a MIDI file"))
        elif not p.is_file():
            problems.append((rel, "not a regular file"))
        else:
            files.append(p)
    return files, problems


def _short_reason(exc: Exception) -> str:
    """The reason part of an error message (without the leading path)."""
    msg = str(exc)
    path = getattr(exc, "path", None)
    if path is not None and msg.startswith(f"{path}: "):
        msg = msg[len(f"{path}: "):]
    return msg


def _m21_pickup_quarters(score) -> float:
    """Length in quarter notes of a pickup measure (0 when the score starts on a bar line)."""
    try:
        part = score.parts[0]
        measures = list(part.getElementsByClass("Measure"))
        if not measures:
            return 0.0
        m0 = measures[0]
        bar = float(m0.barDuration.quarterLength)
        have = float(m0.duration.quarterLength)
        if float(m0.paddingLeft) > 0 or (len(measures) > 1 and 0 < have < bar):
            return float(measures[1].offset) if len(measures) > 1 else 0.0
    except Exception:  # an odd score: treat as starting on a bar line
        return 0.0
    return 0.0


def score_to_piece(score, name: str, spec: RollSpec = RollSpec(), *, meter: str | None = None,
                   tmp_dir: str | Path | None = None) -> Piece:
    """A music21 score through MIDI into a Piece, with its pickup from music21's bar lines.

    Args:
        score: a music21 Score (or Stream).
        name: piece name.
        spec: roll layout.
        meter: passed to :func:`read_midi` ("4/4" to require 4/4).
        tmp_dir: where to write the temporary MIDI file.

    Returns:
        Piece whose ``bar_offset_steps`` is the pickup length in steps.

    Used in: notebooks/01_data_prep.ipynb
    """
    fd, tmp = tempfile.mkstemp(suffix=".mid", prefix="qbdi-", dir=tmp_dir)
    os.close(fd)
    try:
        score.write("midi", fp=tmp)
        piece = read_midi(tmp, spec, meter=meter)
    except QbdiError as exc:
        raise type(exc)(_short_reason(exc), name) from None
    finally:
        os.unlink(tmp)
    piece.name = name
    piece.bar_offset_steps = int(round(_m21_pickup_quarters(score) * spec.steps_per_quarter))
    return piece


def _load_chorale(path: Path, spec: RollSpec, meter: str | None) -> Piece:
    from music21 import converter

    try:
        score = converter.parse(str(path))
    except Exception as exc:
        raise CorpusError(f"music21 could not parse it ({type(exc).__name__}: {exc})", path.stem) from None
    return score_to_piece(score, path.stem, spec, meter=meter)


def _parse_midi_file(path: str, name: str, spec: RollSpec, meter: str | None) -> Piece | str:
    """A MIDI file of a folder -> Piece named ``name``, or the reason it is skipped (never raises).
    Runs in the store's worker processes (:func:`qbdi_utils.shards.build`)."""
    try:
        piece = read_midi(path, spec, meter=meter)
    except QbdiError as exc:
        return _short_reason(exc)
    except Exception as exc:  # report, do not stop
        return f"unexpected {type(exc).__name__}: {exc}"
    piece.name = name
    return piece


def _parse_chorale_file(path: str, name: str, spec: RollSpec, meter: str | None) -> Piece | str:
    """A chorale score -> Piece (through music21 and MIDI), or the reason it is skipped (never raises)."""
    p = Path(path)
    if p.stem in _NOT_CHORALES:
        return _NOT_CHORALES[p.stem]
    try:
        return _load_chorale(p, spec, meter)
    except QbdiError as exc:
        return _short_reason(exc)
    except Exception as exc:  # music21 internals: report, do not stop
        return f"unexpected {type(exc).__name__}: {exc}"


def _parse_essen_tune(path: str, name: str, spec: RollSpec, meter: str | None) -> Piece | str:
    """One song of an Essen ABC file (``name`` is "<file stem>-<X number>") -> Piece through music21
    and MIDI, or the reason it is skipped (never raises)."""
    from music21 import converter

    number = int(name.rsplit("-", 1)[1])
    try:
        text = dict(essen_tunes(path)).get(number)
        if text is None:
            return f"no 4/4 song X:{number} in {Path(path).name}"
        try:
            score = converter.parse(text, format="abc")
        except Exception as exc:
            return f"music21 could not parse it ({type(exc).__name__}: {exc})"
        return score_to_piece(score, name, spec, meter=meter)
    except QbdiError as exc:
        return _short_reason(exc)
    except Exception as exc:  # music21 internals: report, do not stop
        return f"unexpected {type(exc).__name__}: {exc}"


def _run_lengths(values) -> list[list[int]]:
    """[[value, count], ...] of the runs of equal values."""
    out: list[list[int]] = []
    for v in np.asarray(values).tolist():
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([int(v), 1])
    return out


def _expand_piece(piece: Piece, spec: RollSpec, transpose: str | None,
                  augment: tuple) -> list[tuple[np.ndarray, dict]]:
    """A piece's bar frames after key normalisation, then one copy per augmentation shift.

    Returns:
        [(frames (n, spec.frame_size) uint8, info dict as in ``Corpus.pieces``), ...], the
        original first.
    """
    tonic, mode = estimate_key(piece.roll, spec)[:2]
    base_shift = normalising_shift(tonic, mode, transpose)
    sigs = list(piece.time_signatures)
    meters: dict[str, int] = {}
    for m in bar_meters(piece.n_steps, sigs, piece.bar_offset_steps, spec):
        meters[m] = meters.get(m, 0) + 1
    out = []
    for extra in (0,) + tuple(augment):
        shift = base_shift + extra
        roll, lost = transpose_roll(piece.roll, shift, spec) if shift else (piece.roll, 0)
        bars = cut_bars(roll, spec, sigs, piece.bar_offset_steps)
        dropped = dict(piece.dropped)
        if lost:
            dropped["transposed_out_of_range"] = lost
        name = piece.name if extra == 0 else f"{piece.name}@{extra:+d}"
        out.append((bars.frames, {"name": name, "key": key_name(tonic, mode), "shift": int(shift),
                                  "augment_shift": int(extra), "n_frames": int(len(bars.frames)),
                                  "n_steps": int(piece.n_steps), "bar_offset_steps": int(piece.bar_offset_steps),
                                  "dropped": dropped, "frame_lengths": _run_lengths(bars.lengths),
                                  "meters": dict(meters)}))
    return out


# ---------------------------------------------------------------------------------------------
# loading

def _check_options(source, transpose, augment, meter, limit):
    if transpose not in TRANSPOSE_MODES:
        raise OptionError(f"transpose must be one of {TRANSPOSE_MODES}, got {transpose!r}")
    aug = tuple(sorted({int(a) for a in (augment or ())} - {0}))
    if any(abs(a) > 11 for a in aug):
        raise OptionError(f"augment shifts must lie within -11..11 semitones, got {augment!r}")
    if meter is not None and meter != METER_ANY and not re.fullmatch(r"\d+/\d+", str(meter)):
        raise OptionError(f"meter must look like '4/4' or be 'any', got {meter!r}")
    if limit is not None and int(limit) < 1:
        raise OptionError(f"limit must be a positive number of pieces or None, got {limit!r}")
    return aug


def _source_file(p: Path, key: str, name: str) -> shards.SourceFile:
    st = p.stat()
    return shards.SourceFile(key=key, path=str(p), name=name, size=int(st.st_size),
                             mtime_ns=int(st.st_mtime_ns))


def _source_id(source) -> tuple[str, list, str, list[tuple[str, str]], str]:
    """(kind, files as SourceFile in piece order, identity string with the file list, MIDI-named
    entries that are not files, identity without the file list) of a corpus source."""
    if isinstance(source, str) and source == "chorales":
        version = music21_version()
        files = [_source_file(p, p.name, p.stem) for p in chorale_paths()]
        ident = f"music21-chorales-{version}-" + ",".join(f.key for f in files)
        return "chorales", files, ident, [], f"chorales-{version}"
    if isinstance(source, str) and source == "essen":
        version = music21_version()
        path = essen_path()
        st = path.stat()
        files = [shards.SourceFile(key=f"{path.name}#{n}", path=str(path), name=f"{path.stem}-{n}",
                                   size=int(st.st_size), mtime_ns=int(st.st_mtime_ns))
                 for n, _ in essen_tunes(path)[:ESSEN_PIECES]]
        ident = f"music21-essen-{version}-" + ",".join(f.key for f in files)
        return "essen", files, ident, [], f"essen-{version}-{path.name}"
    folder = Path(source)
    if not folder.exists():
        raise CorpusError("no such corpus: give 'chorales', 'essen' or a folder of .mid/.midi files", folder)
    if folder.is_file():
        paths_, problems = [folder], []
        files = [_source_file(folder, folder.name, folder.name)]
    else:
        paths_, problems = _folder_paths(folder)
        files = [_source_file(p, str(p.relative_to(folder)), str(p.relative_to(folder))) for p in paths_]
    if not files:
        detail = f" ({len(problems)} MIDI-named entries are not files: {problems[0][0]}: {problems[0][1]})" \
            if problems else ""
        raise CorpusError(f"the folder holds no .mid or .midi files{detail}", folder)
    parts = [f"{Path(f.path).name}:{f.size}:{f.mtime_ns}" for f in files]
    parts += [f"!{name}" for name, _ in problems]
    resolved = folder.resolve()
    return "folder", files, f"folder-{resolved}-" + ",".join(parts), problems, f"folder-{resolved}"


def corpus_fingerprint(ident: str, spec: RollSpec, options: dict) -> str:
    """Hex digest (16 chars) of source identity, spec and options: the cache key."""
    blob = json.dumps({"v": CACHE_VERSION, "source": ident, "spec": spec.to_dict(),
                       "options": options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_corpus(source="chorales", *, spec: RollSpec = RollSpec(), transpose: str | None = "tonic",
                augment=(), meter: str | None = METER_ANY, limit: int | None = None, cache: bool = True,
                progress: bool = True, workers: int | None = None, in_memory: bool = True,
                shard_files: int | None = None, cache_root: str | Path | None = None):
    """Load a corpus as bar-aligned frames, parsing only what the shard store does not hold yet.

    Every piece goes through MIDI and :func:`read_midi`. Pieces that fail (bad file, no notes,
    wrong meter, ...) are skipped and listed in ``Corpus.skipped`` with the reason; loading never
    stops halfway. Parsing runs in ``workers`` processes and is cached in shards
    (:mod:`qbdi_utils.shards`); files whose path, size and modification time are unchanged are not
    parsed again. A cache that cannot be written is a warning; the corpus is still returned.

    Args:
        source: "chorales" (music21's Bach chorales, no download), "essen" (German folk songs from
            music21's Essen collection, :data:`qbdi_utils.music21_files.ESSEN_FILE`) or a folder of .mid/.midi files
            (searched recursively) or a single MIDI file.
        spec: roll layout.
        transpose: "tonic" (every piece to tonic C: C major or C minor; the default, see the module
            docstring), "relative" (major pieces to C major, minor to A minor) or None (keep keys).
        augment: extra transpositions in semitones applied after ``transpose`` to every piece,
            e.g. (-2, -1, 1, 2); () for none (the default).
        meter: "any" (:data:`METER_ANY`, the default; None means the same) keeps every meter, each
            bar its own frame (:func:`qbdi_utils.pianoroll.bar_layout`: a bar shorter than a frame
            padded at its end, a longer one split at its beats; ``Corpus.frame_lengths`` says how
            many steps of each frame are the bar's); "4/4" (or any N/D) keeps only pieces in that meter.
        limit: use at most this many source pieces (in sorted order), e.g. for quick tests.
        cache: keep the shards in the store (``<cache_root>/shards-...``); False parses everything
            and writes nothing.
        progress: show a progress bar over the files parsed.
        workers: processes for parsing (default: the cores available); 1 parses in this process.
            Scripts that use more than one should keep their top level under
            ``if __name__ == "__main__":`` as for any process pool.
        in_memory: True returns a :class:`Corpus` with all frames in memory; False returns the
            :class:`qbdi_utils.shards_view.ShardedCorpus` (frames stay in their shards, for streaming).
        shard_files: files per pieces shard (default :data:`qbdi_utils.shards.DEFAULT_SHARD_FILES`,
            :data:`CHORALE_SHARD_FILES` for the chorales). Fewer new files than two shards' worth
            are parsed in this process whatever ``workers`` says.
        cache_root: folder holding the store (default ``paths.cache_dir()``).

    Returns:
        Corpus (frames (N, spec.frame_size) uint8, piece_index (N,), ...) or, with
        ``in_memory=False``, ShardedCorpus. Both carry ``ingest`` counts.

    Raises:
        CorpusError: unknown source, empty folder, or no usable piece at all.
        OptionError: an option out of range.

    Used in: notebooks/01_data_prep.ipynb, notebooks/02_vae_training.ipynb
    """
    t0 = time.perf_counter()
    aug = _check_options(source, transpose, augment, meter, limit)
    meter = None if meter == METER_ANY else meter
    kind, files, ident, problems, store_ident = _source_id(source)
    wanted = files if limit is None else files[: int(limit)]
    options = {"transpose": transpose, "augment": list(aug), "meter": meter,
               "limit": None if limit is None else int(limit)}
    fp = corpus_fingerprint(ident, spec, options)
    if shard_files is None and kind in NAMED_SOURCES:
        shard_files = CHORALE_SHARD_FILES
    recipe = _recipe(kind, store_ident, spec, meter=meter, transpose=transpose, aug=aug, options=options)
    settings = shards.StoreSettings(cache_root=cache_root, cache=cache, workers=workers,
                                    shard_files=shard_files, progress=progress)

    def build():
        return shards.build(recipe, wanted, files, settings)

    sc = build()
    sc.fingerprint = fp
    sc.skipped = list(problems) + list(sc.skipped)
    if not sc.piece_names:
        _no_usable_piece(sc, len(wanted), source if kind == "folder" else kind)
    if not in_memory:
        return sc
    c = _in_memory_corpus(sc, build, problems, spec, options)
    c.load_seconds = time.perf_counter() - t0
    return c


def _recipe(kind: str, store_ident: str, spec: RollSpec, *, meter, transpose, aug: tuple,
            options: dict) -> shards.SourceRecipe:
    """The store's recipe of a source: its parse function (by kind) and the frame options."""
    parse = {"chorales": _parse_chorale_file, "essen": _parse_essen_tune}.get(kind, _parse_midi_file)
    return shards.SourceRecipe(kind, store_ident, parse, _expand_piece, spec, meter, transpose, aug, options)


def _in_memory_corpus(sc: shards_view.ShardedCorpus, build, problems: list, spec: RollSpec,
                      options: dict) -> "Corpus":
    """The :class:`Corpus` of a loaded store view, its frames read into memory (piece order)."""
    sc, frames, piece_index = _frames_in_memory(sc, build, problems)
    return Corpus(frames=frames, piece_index=piece_index, piece_names=list(sc.piece_names),
                  skipped=sc.skipped, fingerprint=sc.fingerprint, spec=spec, options=options,
                  pieces=list(sc.pieces),
                  from_cache=(sc.ingest["parsed"] == 0 and sc.ingest["frame_shards_built"] == 0),
                  cache_path=sc.store, ingest=dict(sc.ingest))


def _frames_in_memory(sc: shards_view.ShardedCorpus, build, problems: list):
    """``sc``'s frames and piece index in memory; a frame shard damaged since it was listed is
    built again (``build()``, the same load) and the parse counts added up. Returns (sc, frames, piece_index)."""
    try:
        frames, piece_index = sc.to_arrays()
    except CorpusError:  # a frame shard was damaged after it was listed: build the frames again
        shards.forget_frames(sc)
        ingest, fp = sc.ingest, sc.fingerprint
        sc = build()
        sc.fingerprint, sc.skipped = fp, list(problems) + list(sc.skipped)
        sc.ingest["parsed"] += ingest["parsed"]
        frames, piece_index = sc.to_arrays()
    return sc, frames, piece_index


def _no_usable_piece(sc: shards_view.ShardedCorpus, n_wanted: int, where) -> None:
    """Raise the CorpusError of a load that kept no piece, with the first five reasons."""
    reasons = "; ".join(f"{n}: {r}" for n, r in sc.skipped[:5])
    raise CorpusError(f"no usable piece among {n_wanted} files ({reasons})", where)


# ---------------------------------------------------------------------------------------------
# queries

def default_query_path() -> Path:
    """data/queries/<DEFAULT_QUERY>.mid"""
    return paths.QUERY_DIR / f"{DEFAULT_QUERY}.mid"


def query_path(name: str | None = None) -> Path:
    """Path of a shipped query by name (a stem from QUERY_NAMES) or of any MIDI file path."""
    if name is None:
        return default_query_path()
    p = paths.QUERY_DIR / f"{name}.mid"
    if p.exists() or name in QUERY_NAMES:
        return p
    return Path(name)


def load_query(name: str | None = None, spec: RollSpec = RollSpec(), *,
               transpose: str | None = None) -> Piece:
    """A query piece: one of data/queries (default: :data:`DEFAULT_QUERY`) or any MIDI file.

    Bar lines: the shipped queries mark a pickup with a short first time signature, which
    :func:`read_midi` turns into ``bar_offset_steps``; use
    :func:`qbdi_utils.pianoroll.piece_to_frames` to get bar-aligned frames.

    Args:
        name: a name from :data:`QUERY_NAMES`, a path to a MIDI file, or None for the default.
        spec: roll layout.
        transpose: None keeps the key (default); "relative"/"tonic" as in :func:`load_corpus`.

    Returns:
        Piece.

    Raises:
        MidiFileError, NoNotesError: as :func:`read_midi`.

    Used in: notebooks/01_data_prep.ipynb, notebooks/04_query_generation.ipynb
    """
    if transpose not in TRANSPOSE_MODES:
        raise OptionError(f"transpose must be one of {TRANSPOSE_MODES}, got {transpose!r}")
    piece = read_midi(query_path(name), spec)
    if transpose is not None:
        tonic, mode = estimate_key(piece.roll, spec)[:2]
        shift = normalising_shift(tonic, mode, transpose)
        if shift:
            piece.roll, lost = transpose_roll(piece.roll, shift, spec)
            if lost:
                piece.dropped["transposed_out_of_range"] = lost
    return piece


def export_queries(force: bool = False, out_dir: Path | None = None) -> list[Path]:
    """Write the shipped queries from the music21 corpus into data/queries (provenance: data/README.md).

    Repeats are written out where :data:`QUERY_SOURCES` says so; a pickup is marked by a short first time signature so :func:`read_midi`
    knows the bar lines.

    Args:
        force: overwrite existing files.
        out_dir: target folder (default ``paths.QUERY_DIR``).

    Returns:
        The paths written (or already present).
    """
    import mido
    from music21 import corpus as m21corpus

    out_dir = Path(out_dir or paths.QUERY_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (src, expand) in QUERY_SOURCES.items():
        out = out_dir / f"{name}.mid"
        written.append(out)
        if out.exists() and not force:
            continue
        score = m21corpus.parse(src)
        if expand:
            score = score.expandRepeats()
        else:  # music21 writes repeats out when making MIDI; drop the repeat signs instead
            for m in score.recurse().getElementsByClass("Measure"):
                if "Repeat" in type(m.leftBarline).__name__:
                    m.leftBarline = None
                if "Repeat" in type(m.rightBarline).__name__:
                    m.rightBarline = None
        pickup_q = _m21_pickup_quarters(score)
        score.write("midi", fp=str(out))
        mid = mido.MidiFile(str(out))
        if pickup_q > 0:
            tpb = mid.ticks_per_beat
            conductor = mid.tracks[0]
            msgs, tick = [], 0
            for m in conductor:
                tick += m.time
                msgs.append((tick, m))
            ts = [m for _, m in msgs if m.type == "time_signature"]
            num, den = (ts[0].numerator, ts[0].denominator) if ts else (4, 4)
            p_ticks = int(round(pickup_q * tpb))
            keep = [(t, m) for t, m in msgs if m.type != "time_signature" or t > 0]
            keep.append((0, mido.MetaMessage("time_signature", numerator=int(round(pickup_q * den / 4)) or 1,
                                             denominator=den, time=0)))
            keep.append((p_ticks, mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0)))
            keep.sort(key=lambda x: (x[0], x[1].type == "end_of_track"))
            new, now = mido.MidiTrack(), 0
            for t, m in keep:
                new.append(m.copy(time=t - now))
                now = t
            mid.tracks[0] = new
        mid.save(str(out))
    return written
