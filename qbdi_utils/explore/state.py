"""An explorer's settings, checked once, and what it keeps of them and of its uploads in a folder.

:class:`Settings` are the values of the explorer's controls that a reloaded page gets back (bit budget,
statistics mode, seed, instrument, the two bar ranges). :func:`initial_settings` checks the values a
caller gives; :func:`restore_settings` lays the kept ones over them, each only if its control still
offers it. A ``state_dir`` holds :data:`STATE_FILE` (the settings, the uploads and the query
selected) and ``uploads/`` (the last :data:`MAX_KEPT_UPLOADS` uploaded files), all written atomically
(:mod:`qbdi_utils.files`).

Imports: files, errors, improvise (STATS_MODES), explore.content (the slider's stops, the instruments).
Used in: :class:`qbdi_utils.explore.Explorer` (notebooks/explorer.ipynb, ``make explore``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from qbdi_utils import files
from qbdi_utils.errors import OptionError
from qbdi_utils.explore.content import INSTRUMENTS, bits_options
from qbdi_utils.improvise import STATS_MODES

__all__ = [
    "STATE_FILE",
    "MAX_KEPT_UPLOADS",
    "UPLOAD_PREFIX",
    "GIVEN_PREFIX",
    "Settings",
    "initial_settings",
    "restore_settings",
    "read_state",
    "write_state",
    "kept_uploads",
    "keep_upload",
]

#: Settings file of an explorer's ``state_dir`` (uploaded files go to its ``uploads/``).
STATE_FILE = "state.json"
#: Uploads an explorer's ``state_dir`` keeps (the oldest are forgotten beyond).
MAX_KEPT_UPLOADS = 16
#: Query keys of uploaded files (``"upload:<hash>:<name>"``) and of a query given to the explorer.
UPLOAD_PREFIX = "upload:"
GIVEN_PREFIX = "given:"


@dataclass(frozen=True)
class Settings:
    """The values of an explorer's controls that are kept.

    Attributes:
        bits: a stop of the bit slider (an int, or "full").
        mode: channel statistics mode (one of ``improvise.STATS_MODES``).
        seed: channel seed.
        program: General MIDI program of the audio (one of :data:`INSTRUMENTS`).
        overlay_bars: bars (first, last) of the plot, from 1.
        audio_bars: bars (first, last) of the audio, from 1.
    """

    bits: int | str
    mode: str
    seed: int
    program: int
    overlay_bars: tuple
    audio_bars: tuple


def initial_settings(*, bits, mode: str, seed: int, program: int, overlay_bars, audio_bars) -> Settings:
    """The settings a caller gives the explorer, checked against what its controls offer.

    Args:
        bits: a stop of :func:`bits_options` (None or "full" = full rate).
        mode: statistics mode.
        seed: channel seed.
        program: General MIDI program (one of :data:`INSTRUMENTS`).
        overlay_bars, audio_bars: bar ranges (first, last), 1 <= first <= last.

    Returns:
        The Settings (full rate as "full").

    Raises:
        OptionError: a value its control does not offer, or a bar range that is not
            1 <= first <= last.
    """
    for label, rng in (("overlay_bars", overlay_bars), ("audio_bars", audio_bars)):
        if len(tuple(rng)) != 2 or not 1 <= int(rng[0]) <= int(rng[1]):
            raise OptionError(f"{label} {tuple(rng)!r} is not (first, last) with 1 <= first <= last "
                              "(bars count from 1)")
    options = bits_options()
    bits = "full" if bits is None else bits
    if bits not in [v for _, v in options]:
        raise OptionError(f"bits {bits!r} is not a stop of the slider: {[lbl for lbl, _ in options]}")
    if mode not in STATS_MODES:
        raise OptionError(f"statistics mode {mode!r} is not one of {', '.join(STATS_MODES)}")
    if program not in [p for _, p in INSTRUMENTS]:
        raise OptionError(f"program {program} is not one of {INSTRUMENTS}")
    return Settings(bits=bits, mode=mode, seed=seed, program=program, overlay_bars=overlay_bars,
                    audio_bars=audio_bars)


def restore_settings(saved: dict, start: Settings) -> Settings:
    """``start`` with the kept settings laid over it, each only where its control still offers it.

    Args:
        saved: the dict of :func:`read_state`.
        start: the settings of :func:`initial_settings`.

    Returns:
        The settings the explorer starts from.
    """
    stops = [v for _, v in bits_options()]
    bits = saved.get("bits", start.bits) if saved.get("bits", start.bits) in stops else start.bits
    mode = saved.get("mode", start.mode) if saved.get("mode", start.mode) in STATS_MODES else start.mode
    program = saved.get("program", start.program) \
        if saved.get("program", start.program) in [p for _, p in INSTRUMENTS] else start.program
    seed = start.seed
    if isinstance(saved.get("seed"), int) and 0 <= saved["seed"] <= 1_000_000:
        seed = saved["seed"]
    ranges = {"overlay_bars": start.overlay_bars, "audio_bars": start.audio_bars}
    for name in ranges:
        r = saved.get(name)
        if isinstance(r, list) and len(r) == 2 and all(isinstance(b, int) for b in r) and 1 <= r[0] <= r[1]:
            ranges[name] = tuple(r)
    return replace(start, bits=bits, mode=mode, program=program, seed=seed, **ranges)


def read_state(state_dir) -> dict:
    """The kept settings and uploads of ``state_dir`` ({} without one, or when its file is unreadable).

    Args:
        state_dir: the folder, or None.

    Returns:
        The dict :func:`write_state` wrote, its ``uploads`` cut to entries whose file is still there.
    """
    if state_dir is None:
        return {}
    state_dir = Path(state_dir)
    try:
        saved = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict):
        return {}
    ups = [e for e in saved.get("uploads", []) if isinstance(e, dict)
           and {"key", "file", "name"} <= set(e) and (state_dir / "uploads" / Path(str(e["file"])).name).is_file()
           and Path(str(e["file"])).name == e["file"]]
    saved["uploads"] = ups
    return saved


def write_state(state_dir, uploads: dict, query: str, settings: Settings) -> None:
    """Write the uploads, the selected query and the settings to ``state_dir/state.json`` (atomically).

    Args:
        state_dir: the folder (None: nothing is written).
        uploads: query key -> (kept file, shown name), oldest first.
        query: the selected query's key (a query given to the explorer is not kept).
        settings: the current settings.
    """
    if state_dir is None:
        return
    state = {
        "uploads": [{"key": k, "file": f.name, "name": n} for k, (f, n) in uploads.items()],
        "query": query if not str(query).startswith(GIVEN_PREFIX) else None,
        "bits": settings.bits, "mode": settings.mode, "seed": int(settings.seed),
        "program": int(settings.program), "overlay_bars": list(settings.overlay_bars),
        "audio_bars": list(settings.audio_bars),
    }
    files.write_text(Path(state_dir) / STATE_FILE, json.dumps(state, indent=1), force=True)


def kept_uploads(state_dir, saved: dict) -> dict:
    """The uploads :func:`read_state` found: query key -> (file in ``state_dir/uploads``, shown name)."""
    return {e["key"]: (Path(state_dir) / "uploads" / e["file"], e["name"]) for e in saved.get("uploads", [])}


def keep_upload(state_dir, uploads: dict, key: str, file_name: str, name: str, data: bytes) -> None:
    """Keep an uploaded file in ``state_dir/uploads`` (atomically) as the newest of ``uploads``, and
    forget the oldest beyond :data:`MAX_KEPT_UPLOADS` (their files deleted).

    Args:
        state_dir: the folder.
        uploads: query key -> (kept file, shown name), oldest first; updated in place.
        key: the upload's query key.
        file_name: the kept file's name.
        name: the name shown.
        data: the file's bytes.
    """
    kept = files.write_bytes(Path(state_dir) / "uploads" / file_name, data, force=True)
    uploads.pop(key, None)
    uploads[key] = (kept, name)
    while len(uploads) > MAX_KEPT_UPLOADS:
        old = next(iter(uploads))
        old_file, _ = uploads.pop(old)
        if old_file not in [f for f, _ in uploads.values()]:
            old_file.unlink(missing_ok=True)
