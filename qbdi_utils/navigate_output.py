"""The record of an oracle improvisation: for every output bar, the state it came from, as JSON.

``qbdi navigate`` writes it beside its MIDI output (OUT.json). Imports: files, navigate.
Used in: ``qbdi navigate``, tests/test_navigate.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qbdi_utils import files
from qbdi_utils.navigate import Navigation

__all__ = ["path_json_text", "path_record", "write_path_json"]


def path_record(nav: Navigation) -> dict:
    """The path of a :class:`Navigation` as a JSON-able dict (what ``qbdi navigate`` writes).

    Args:
        nav: a Navigation.

    Returns:
        {"query", "source", "continuity", "min_context", "bits", "stats", "seed", "oracle_threshold",
        "n_bars", "n_jumps", "bars": [{"bar", "piece", "piece_bar", "jump"} per output bar]}; bars
        count from 1, as MusicXML and the explorer do (bar 1 is the first frame, which holds a
        pickup, if any); for the query source ``piece`` is the query and ``piece_bar`` the query bar.

    Used in: ``qbdi navigate``.
    """
    bars = [{"bar": t + 1, "piece": name, "piece_bar": int(b) + 1, "jump": bool(j)}
            for t, ((name, b), j) in enumerate(zip(nav.labels, nav.jumps))]
    return {
        "query": nav.query_name, "source": nav.source, "continuity": nav.continuity,
        "min_context": nav.min_context, "bits": "full" if nav.bits is None else int(nav.bits),
        "stats": nav.mode, "seed": int(nav.seed), "oracle_threshold": round(float(nav.oracle_threshold), 6),
        "path_cost": None if not np.isfinite(nav.path_cost) else round(float(nav.path_cost), 6),
        "n_bars": len(bars), "n_jumps": int(np.sum(nav.jumps)), "bars": bars,
    }


def path_json_text(nav: Navigation) -> str:
    """:func:`path_record` of ``nav`` as JSON text, one output bar per line."""
    rec = path_record(nav)
    bars = rec.pop("bars")
    head = json.dumps(rec)[:-1]
    lines = ",\n  ".join(json.dumps(b) for b in bars)
    return f'{head}, "bars": [\n  {lines}\n]}}\n'


def write_path_json(nav: Navigation, path, force: bool = False) -> Path:
    """Write :func:`path_json_text` of ``nav`` to ``path`` atomically (UTF-8 JSON, one bar per line).

    Args:
        nav: a Navigation.
        path: output file.
        force: overwrite an existing file.

    Returns:
        the path written.

    Raises:
        OutputExistsError: the file exists and ``force`` is false.
        FileSystemError: the file cannot be written.

    Used in: notebooks/07_oracle_improvisation.ipynb; ``qbdi navigate`` writes the same text in its output set.
    """
    return files.write_text(path, path_json_text(nav), force=force)
