"""Start-up and end-to-end time of the commands that run a saved model: prints one JSON line.

Measured, each as the minimum wall time of ``--repeats`` runs in fresh subprocesses (the machine is
shared: the minimum is the run least disturbed; ``*_median`` gives the median too):

- ``numpy_mido_seconds``: ``python -c "import numpy, mido"``, the floor of any command that reads MIDI;
- ``info_seconds``: ``qbdi info``;
- ``improvise_seconds``: ``qbdi improvise --query <default query> --bits 256 --out F`` (the default
  model, found and checked against its corpus as a user's first command does);
- ``improvise_model_seconds``: the same with ``--model <default model dir>`` (no corpus check);
- ``navigate_seconds``: ``qbdi navigate --query <default query> --source query --bits 256 --out F``
  (the default model);

and in this process, once the model and query are loaded (median of 7 after a warm-up):

- ``compute_seconds``: ``improvise(model, query, 256)``, the command's computation.

Target (issue 26): ``improvise_seconds <= 2 * (numpy_mido_seconds + compute_seconds)``
(``within_target``). ``tensorflow_imported`` says whether the improvise command imported TensorFlow
(``sys.modules`` after the command, in one more run). The subprocesses run as an installed package
does, with compiled bytecode (kept in a temporary ``PYTHONPYCACHEPREFIX``, filled by one warm-up run of
each command; ``PYTHONDONTWRITEBYTECODE`` is dropped); ``--no-bytecode`` compiles every module at
every start instead (``bytecode`` says which). Timings depend on the machine's load: ``load_before``
and ``load_after`` are the 1-minute load averages around the runs (the machine has ``cpus`` cores).

Needs the default model (``models_dir()/default``; set QBDI_MODELS_DIR / QBDI_CACHE_DIR to reuse one).

Run: .venv/bin/python benchmarks/bench_startup.py [--repeats 5] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BITS = "256"


def _wall(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return dt, r


def _times(cmd: list[str], env: dict, repeats: int) -> list[float]:
    """Wall times of ``repeats`` runs of ``cmd`` after one warm-up run (file cache, bytecode)."""
    _wall(cmd, env)
    return [_wall(cmd, env)[0] for _ in range(repeats)]


def _compute_seconds(model_dir: Path, query: Path) -> float:
    from qbdi_utils import pianoroll
    from qbdi_utils.improvise import improvise
    from qbdi_utils.model import StyleVAE

    model = StyleVAE.load(model_dir)
    piece = pianoroll.read_midi(query, spec=model.spec)
    improvise(model, piece, int(BITS))  # warm-up
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        improvise(model, piece, int(BITS))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-bytecode", action="store_true", help="compile every module at every start")
    args = ap.parse_args()

    from qbdi_utils import corpus, training
    from qbdi_utils.model import MODEL_FILE

    model_dir = training.default_model_dir()
    if not (model_dir / MODEL_FILE).is_file():
        raise SystemExit(f"no default model in {model_dir}; train it first (qbdi improvise does) or set "
                         "QBDI_MODELS_DIR")
    query = corpus.query_path(None)
    env = dict(os.environ)
    load_before = os.getloadavg()[0]
    py = sys.executable
    qbdi = [py, "-m", "qbdi_utils.cli"]
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        out = str(Path(tmp) / "out.mid")
        improvise = qbdi + ["improvise", "--query", str(query), "--bits", BITS, "--out", out, "--force"]
        navigate = qbdi + ["navigate", "--query", str(query), "--source", "query", "--bits", BITS,
                           "--out", str(Path(tmp) / "nav.mid"), "--force"]
        times["numpy_mido"] = _times([py, "-c", "import numpy, mido"], env, args.repeats)
        times["info"] = _times(qbdi + ["info"], env, args.repeats)
        probe = ("import sys; from qbdi_utils.cli import main; code = main(sys.argv[1:]); "
                 "print('TF', 'tensorflow' in sys.modules); sys.exit(code)")
        _, r = _wall([py, "-c", probe] + improvise[3:], env)
        tf_imported = "TF True" in r.stdout
        times["improvise"] = _times(improvise, env, args.repeats)
        times["improvise_model"] = _times(improvise + ["--model", str(model_dir)], env, args.repeats)
        times["navigate"] = _times(navigate, env, args.repeats)
    compute = _compute_seconds(model_dir, query)
    best = {k: min(v) for k, v in times.items()}
    target = 2 * (best["numpy_mido"] + compute)
    print(json.dumps({
        "bench": "startup",
        **{f"{k}_seconds": round(v, 3) for k, v in best.items()},
        **{f"{k}_median": round(statistics.median(v), 3) for k, v in times.items()},
        "compute_seconds": round(compute, 4),
        "target_seconds": round(target, 3),
        "within_target": bool(best["improvise"] <= target),
        "tensorflow_imported": tf_imported,
        "query": query.name, "bits": int(BITS), "repeats": args.repeats, "bytecode": not args.no_bytecode,
        "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(), "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
