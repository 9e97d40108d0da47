"""The explorer's web page: :func:`page` (what notebooks/explorer.ipynb shows) and the status of the
page's model, which the server writes and the page's kernels read while the model is prepared.

Imports: files, training (default_model), model (StyleVAE), explore.content (public_message),
explore.explorer (Explorer).
Used in: notebooks/explorer.ipynb (``make explore``), :mod:`qbdi_utils.explore.server`.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path

from qbdi_utils import files, training
from qbdi_utils.explore.content import public_message
from qbdi_utils.explore.explorer import Explorer
from qbdi_utils.model import StyleVAE

__all__ = [
    "MODEL_ENV",
    "STATUS_ENV",
    "STATE_ENV",
    "write_status",
    "read_status",
    "load_model_dir",
    "page",
]

#: Environment of the page's kernels, set by :func:`serve`: the model folder, the status file of the
#: model's preparation (:func:`write_status`), the folder where explorers keep uploads and settings.
MODEL_ENV = "QBDI_EXPLORE_MODEL"
STATUS_ENV = "QBDI_EXPLORE_STATUS"
STATE_ENV = "QBDI_EXPLORE_STATE"


def write_status(path, state: str, message: str = "", model_dir=None) -> None:
    """Write the status of the page's model (atomically): "preparing", "ready" or "failed".

    Args:
        path: the status file (JSON).
        state: "preparing", "ready" or "failed".
        message: the last progress line, or the error.
        model_dir: the model's folder (once ready).

    Used in: :func:`serve`.
    """
    files.write_text(path, json.dumps({"state": state, "message": message, "time": time.time(),
                                       "model_dir": None if model_dir is None else str(model_dir)}),
                     force=True)


def read_status(path) -> dict:
    """The status written by :func:`write_status` ({"state": "preparing"} while the file is absent).

    Used in: :func:`page`.
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"state": "preparing", "message": ""}


def load_model_dir(d) -> StyleVAE:
    """The model of folder ``d``, which records that folder in ``info["model_dir"]`` (named in the heading).

    Raises:
        ModelError: ``d`` is not a readable model folder.
    """
    model = StyleVAE.load(d)
    model.info["model_dir"] = str(d)
    return model


def page(model_dir=None, *, status_file=None, state_dir=None, poll_s: float = 0.5, **explorer_kw):
    """What the explorer's web page shows: the explorer of a model, or, while the model is being
    prepared, its progress, replaced by the explorer when it is ready.

    The arguments default to the environment :func:`serve` gives the page's kernels
    (:data:`MODEL_ENV`, :data:`STATUS_ENV`, :data:`STATE_ENV`). With a status file, the function returns
    at once (the page is sent without waiting for the model) and the kernel's event loop waits for the
    status "ready", loads the model (on a worker thread, so the kernel keeps answering the page), puts
    the controls on the page, then computes the first view.
    Without one (the notebook run by nbval or ``make reproduce``), it builds the explorer before it
    returns: of ``model_dir``, or of the default model (:func:`training.default_model`).

    Args:
        model_dir: the model's folder (None: the status file's, or the default model).
        status_file: the preparation status (:func:`write_status`) to wait for.
        state_dir: where the explorer keeps uploads and settings (:class:`Explorer`).
        poll_s: seconds between looks at the status file.
        **explorer_kw: more arguments of :class:`Explorer`.

    Returns:
        An ipywidgets VBox (its child: the progress line, then the explorer's widget).

    Used in: notebooks/explorer.ipynb (``make explore``).
    """
    import asyncio

    import ipywidgets as W

    model_dir = model_dir or os.environ.get(MODEL_ENV) or None
    status_file = status_file or os.environ.get(STATUS_ENV) or None
    state_dir = state_dir or os.environ.get(STATE_ENV) or None
    note = W.HTML('<span style="color:#555">loading the model ...</span>')
    box = W.VBox([note])
    box.explorer = None

    def load(d):
        return training.default_model(progress=True) if d is None else load_model_dir(d)

    def build(model):
        ex = Explorer(model, state_dir=state_dir, refresh=False, **explorer_kw)
        box.explorer = ex
        return ex

    if status_file is None:
        ex = build(load(model_dir))
        ex.refresh()
        box.children = (ex.widget,)
        return box

    async def wait_and_build():
        t0 = time.monotonic()
        try:
            while True:
                st = read_status(status_file)
                if st.get("state") == "ready":
                    break
                if st.get("state") == "failed":
                    note.value = (f'<span style="color:#b00">the model could not be prepared: '
                                  f'{html.escape(public_message(Exception(st.get("message", ""))))}</span>')
                    return
                note.value = (f'<b>preparing the model</b> ({time.monotonic() - t0:.0f} s so far; the page '
                              f'fills in by itself when it is ready):<br><code>{html.escape(st.get("message") or "...")}'
                              f'</code>')
                await asyncio.sleep(poll_s)
            note.value = '<span style="color:#555">loading the model ...</span>'
            # loaded on a worker thread: the kernel keeps answering the page, which connects meanwhile
            # (a kernel blocked for long while the page's widget manager connects leaves it empty)
            model = await asyncio.get_running_loop().run_in_executor(None, load, st.get("model_dir") or model_dir)
            ex = build(model)
            box.children = (ex.widget,)
            ex.status.value = '<span style="color:#555">computing the first view ...</span>'
            await asyncio.sleep(0.05)  # the controls go out before the first view is computed
            ex.refresh_on_page()
        except Exception as exc:  # nowhere else to report on the page
            note.value = f'<span style="color:#b00">{html.escape(public_message(exc))}</span>'

    box._task = asyncio.ensure_future(wait_and_build())
    return box
