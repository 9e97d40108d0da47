"""The explorer's web server: :func:`serve` starts Voila on notebooks/explorer.ipynb at once, with any
model (``--model DIR``) or the default one, which it prepares (trains on first use) in a separate
process while the page shows its progress (:func:`qbdi_utils.explore.page`); :func:`main` is
``python -m qbdi_utils.explore [--model DIR] [--port N]``, what ``make explore [MODEL=DIR]`` runs.

Imports: limits, paths, render (synthesis_engine), training (default model), errors, model.persist
(read_model), explore.content (corpus_label), explore.web (the status protocol and the page's
environment).
Used in: ``make explore``, tests/test_explore_browser.py, benchmarks/bench_explore.py --startup.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from qbdi_utils import limits, paths, render, training
from qbdi_utils.errors import ModelError, OptionError, QbdiError
from qbdi_utils.explore.content import corpus_label
from qbdi_utils.explore.web import MODEL_ENV, STATE_ENV, STATUS_ENV, write_status
from qbdi_utils.model.persist import read_model
from qbdi_utils.paths import REPO_ROOT

__all__ = [
    "EXPLORER_NOTEBOOK",
    "DEFAULT_PORT",
    "KERNEL_CULL_SECONDS",
    "explorer_state_dir",
    "serve",
    "main",
]

#: The notebook that ``make explore`` serves with Voila.
EXPLORER_NOTEBOOK = REPO_ROOT / "notebooks" / "explorer.ipynb"

#: Port of the explorer web page.
DEFAULT_PORT = 8866

#: Seconds after which Voila shuts down the kernel of a page that was closed or reloaded.
KERNEL_CULL_SECONDS = 300


def explorer_state_dir() -> Path:
    """Where the web page's explorers keep uploads and settings: ``cache_dir()/explorer``.

    Used in: :func:`serve` (``make explore``).
    """
    return paths.cache_dir() / "explorer"


def _prepare_default(status: Path, echo) -> "subprocess.Popen":
    """Start the default model's preparation (loaded, or trained on first use) in its own process on a
    pseudo-terminal (so its progress bars redraw often); a thread copies its output to ``echo`` and
    its last line into the status file, then writes "ready" or "failed"."""
    import pty
    import subprocess
    import sys
    import threading

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "qbdi_utils.explore", "--prepare-default"],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)

    def follow():
        last, shown, buf = "", 0.0, b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            echo.write(chunk.decode("utf-8", "replace"))
            echo.flush()
            buf = (buf + chunk)[-4096:]
            parts = [p.strip() for p in re.split(r"[\r\n]+", buf.decode("utf-8", "replace")) if p.strip()]
            if parts:
                last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", parts[-1])
            if time.monotonic() - shown > 0.5:
                write_status(status, "preparing", last)
                shown = time.monotonic()
        code = proc.wait()
        os.close(master)
        if code == 0:
            write_status(status, "ready", last, model_dir=training.default_model_dir())
        else:
            write_status(status, "failed", last or f"the preparation ended with status {code}")

    threading.Thread(target=follow, daemon=True).start()
    return proc


def serve(port: int = DEFAULT_PORT, notebook=EXPLORER_NOTEBOOK, model_dir=None, train_progress: bool = True,
          token: str | None = None, state_dir=None) -> int:
    """Serve the explorer notebook as a web page with Voila on 127.0.0.1 until Ctrl-C.

    The page is served at once. With ``model_dir`` the page's kernels load that model; without, the
    default model is prepared (loaded, or trained on first use) in a separate process while the page
    shows its progress (:func:`page`). The server is guarded: a fresh random token is required (the
    printed URL carries it; without it the server answers 403), at most ``QBDI_EXPLORE_MAX_KERNELS``
    pages have a kernel at once (HTTP 503 beyond), a kernel whose page never connects is shut down
    after a short idle time (:class:`qbdi_utils.explore_server.GuardedKernelManager`), and tracebacks,
    which name server paths, are not shown on the page.

    Args:
        port: TCP port on 127.0.0.1.
        notebook: the notebook to serve (default notebooks/explorer.ipynb).
        model_dir: the model's folder (``qbdi train --out DIR``); None: the default model.
        train_progress: echo the default model's preparation (progress bars) on the terminal.
        token: the access token (default: a fresh random one, printed in the URL).
        state_dir: where the pages keep uploads and settings (default :func:`explorer_state_dir`).

    Returns:
        Exit status: 0 after Ctrl-C, else Voila's status.

    Raises:
        OptionError: a port outside 1..65535 or a missing notebook.
        ModelError: ``model_dir`` is not a readable model folder.

    Used in: ``make explore``.
    """
    import secrets
    import subprocess
    import sys

    if not 0 < int(port) < 65536:
        raise OptionError(f"port must be 1..65535, got {port}")
    notebook = Path(notebook)
    if not notebook.is_file():
        raise OptionError(f"explorer notebook {notebook} not found")
    run_dir = Path(tempfile.mkdtemp(prefix="qbdi-explore-"))
    status = run_dir / "status.json"
    if model_dir is not None:
        model_dir = Path(model_dir).resolve()
        saved = read_model(model_dir)  # a missing or broken model: one line now, not on the page
        print(f"model: {model_dir}, trained on {corpus_label(saved)}; audio: "
              f"{render.synthesis_engine()} synthesizer", flush=True)
        write_status(status, "ready", "", model_dir=model_dir)
    else:
        write_status(status, "preparing", "starting")
    token = secrets.token_urlsafe(18) if token is None else str(token)
    max_kernels = int(limits.limit("QBDI_EXPLORE_MAX_KERNELS"))
    # Voila runs in its own session so Ctrl-C reaches only us; we stop it with SIGTERM, on which it
    # shuts its kernels down. SIGTERM to us (e.g. from a process manager) does the same as Ctrl-C.
    proc = subprocess.Popen(_voila_command(notebook, int(port), token, max_kernels), cwd=str(notebook.parent),
                            start_new_session=True, env=_page_env(status, state_dir))
    print(f"qbdi explorer: http://127.0.0.1:{int(port)}/?token={token}  (Ctrl-C stops it; at most "
          f"{max_kernels} pages at once)", flush=True)
    prep = None
    if model_dir is None:
        print(f"model: {training.default_model_dir()} (the default model, trained on the Bach chorales): "
              "preparing it; the page shows the progress", flush=True)
        prep = _prepare_default(status, sys.stderr if train_progress else open(os.devnull, "w"))
    return _wait(proc, prep, run_dir)


def _voila_command(notebook: Path, port: int, token: str, max_kernels: int) -> list[str]:
    """The command line of the guarded Voila server of :func:`serve`."""
    import sys

    # uploads arrive as one websocket message: let one a little over the MIDI limit through, so the
    # page can say it is too large instead of the connection being reset
    ws_max = int(limits.limit("QBDI_MAX_MIDI_BYTES")) * 2 + 2**20
    return [sys.executable, "-m", "voila", str(notebook), f"--port={port}", "--no-browser",
            "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", "--show_tracebacks=False",
            f"--Voila.token={token}",
            f"--Voila.tornado_settings={{'websocket_max_message_size': {ws_max}}}",
            # every page view has its own kernel (with a model in memory): at most max_kernels of
            # them; a kernel whose page never connects goes after UNCONNECTED_CULL_SECONDS idle, the
            # kernels of closed or reloaded pages after 5 idle minutes, never one a page is still
            # connected to
            "--VoilaConfiguration.multi_kernel_manager_class="
            "qbdi_utils.explore_server.GuardedKernelManager",
            f"--GuardedKernelManager.max_kernels={max_kernels}",
            f"--MappingKernelManager.cull_idle_timeout={KERNEL_CULL_SECONDS}",
            "--MappingKernelManager.cull_interval=60", "--MappingKernelManager.cull_connected=False"]


def _page_env(status: Path, state_dir) -> dict:
    """The environment of the Voila server and its page kernels: the status file and the state folder."""
    # the dict form of --Voila.tornado_settings keeps its int (the key=value form makes strings)
    # but traitlets calls it deprecated; say nothing about that
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning:traitlets.traitlets")
    env[STATUS_ENV] = str(status)
    env[STATE_ENV] = str(explorer_state_dir() if state_dir is None else Path(state_dir))
    env.pop(MODEL_ENV, None)
    return env


def _stop(p, timeout=15) -> None:
    """Stop a child process (SIGTERM, then SIGKILL after ``timeout`` seconds); None or ended: nothing."""
    import subprocess

    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def _wait(proc, prep, run_dir: Path) -> int:
    """Wait for the Voila server until it ends or Ctrl-C / SIGTERM; then stop the preparation, remove
    ``run_dir`` and return the exit status (0 after Ctrl-C)."""
    import shutil
    import signal

    def _interrupt(_sig, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        _stop(prep)
        _stop(proc)
        print("qbdi explorer: stopped", flush=True)
        return 0
    finally:
        _stop(prep)
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(run_dir, ignore_errors=True)


def main(argv=None) -> int:
    """``python -m qbdi_utils.explore [--model DIR] [--port N]``: :func:`serve` with one-line errors."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m qbdi_utils.explore",
                                     description="Serve the qbdi explorer as a web page (Voila).")
    parser.add_argument("--model", default=None, metavar="DIR",
                        help="a model folder (qbdi train --out DIR); default: the default model, trained on "
                             "the Bach chorales on first use")
    parser.add_argument("--port", default=str(DEFAULT_PORT), help=f"TCP port (default {DEFAULT_PORT})")
    parser.add_argument("--prepare-default", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.prepare_default:  # the default model's preparation, run by serve in its own process
            training.default_model(progress=True)
            return 0
        try:
            port = int(args.port)
        except ValueError:
            raise OptionError(f"--port {args.port!r} is not a whole number") from None
        if args.model is not None and not Path(args.model).is_dir():
            raise ModelError("no such model folder (--model); give a folder written by `qbdi train --out DIR`, "
                             "or leave --model out for the default model", args.model)
        return serve(port, model_dir=args.model)
    except QbdiError as exc:
        print(f"explore: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # during training
        print("explore: interrupted", file=sys.stderr)
        return 130

