"""Corpus cache speed: cold parse vs warm load of the chorale corpus; prints one JSON line.

Cold: music21 parses every chorale (in ``workers`` processes, default the cores available), writes
MIDI, read_midi reads it back, frames are cut, and the pieces and frame shards of the store
(qbdi_utils.shards) are written, all in an empty temporary cache folder. Warm: the same call again,
read from the shards. Goal: warm at least 10x faster than cold (issue 2).

Run: .venv/bin/python benchmarks/bench_corpus_cache.py [LIMIT [WORKERS]]   (LIMIT = number of pieces,
all by default)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile


def main() -> None:
    limit = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "all" else None
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else None
    os.environ["QBDI_CACHE_DIR"] = tempfile.mkdtemp(prefix="qbdi-bench-cache-")
    from qbdi_utils.corpus import load_corpus

    cold = load_corpus("chorales", limit=limit, progress=False, workers=workers)
    warms = [load_corpus("chorales", limit=limit, progress=False, workers=workers) for _ in range(3)]
    assert not cold.from_cache and all(w.from_cache for w in warms)
    warm = sorted(w.load_seconds for w in warms)[1]
    print(json.dumps({
        "bench": "corpus_cache", "pieces_kept": len(cold.piece_names),
        "pieces_skipped": len(cold.skipped), "frames": cold.n_frames,
        "cold_seconds": round(cold.load_seconds, 2), "warm_seconds_median3": round(warm, 4),
        "speedup": round(cold.load_seconds / warm, 1), "goal_speedup": 10,
        "meets_goal": cold.load_seconds / warm >= 10, "workers": cold.ingest["workers"],
        "shards": cold.ingest["shards"], "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2), "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
