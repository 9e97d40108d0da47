"""Guards of the explorer web server, loaded into the Voila process by :func:`qbdi_utils.explore.serve`.

Every page view of the explorer starts a kernel that loads TensorFlow and a model (about 0.8 GB), so
a server that starts a kernel for every ``GET /`` can be made to eat the machine by any local
process. :class:`GuardedKernelManager` (Voila's ``multi_kernel_manager_class``) adds two bounds:

* **a cap on live kernels** (``max_kernels``, default ``QBDI_EXPLORE_MAX_KERNELS`` of
  :mod:`qbdi_utils.limits`): a page view beyond it gets HTTP 503 with one sentence saying so, before
  any kernel starts (kernels still starting count);
* **a short cull for kernels that never connect** (``unconnected_cull_seconds``, default
  :data:`UNCONNECTED_CULL_SECONDS`): a kernel whose page was fetched (the notebook ran) but whose
  browser never opened its websocket, idle that long, is shut down. Kernels a page did connect to
  are left to Voila's ordinary idle cull (:data:`qbdi_utils.explore.KERNEL_CULL_SECONDS`).

This module imports jupyter_server and tornado at the top, so only the Voila process imports it.

Used in: ``make explore`` (through :func:`qbdi_utils.explore.serve`).
"""

from __future__ import annotations

import datetime

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from tornado.ioloop import PeriodicCallback
from traitlets import Float, Int, default

from qbdi_utils import limits

__all__ = ["UNCONNECTED_CULL_SECONDS", "CHECK_INTERVAL_S", "GuardedKernelManager"]

#: Seconds a kernel whose page never connected may stay idle before it is shut down.
UNCONNECTED_CULL_SECONDS = 30.0
#: How often the cull looks (seconds).
CHECK_INTERVAL_S = 5.0


class GuardedKernelManager(AsyncMappingKernelManager):
    """Voila's kernel manager with a cap on live kernels and a cull of never-connected ones."""

    max_kernels = Int(config=True, help="most kernels (page views) alive at once")
    unconnected_cull_seconds = Float(UNCONNECTED_CULL_SECONDS, config=True,
                                     help="idle seconds after which a never-connected kernel is shut down")

    @default("max_kernels")
    def _max_kernels_default(self):
        return int(limits.limit("QBDI_EXPLORE_MAX_KERNELS"))

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._starting = 0
        self._connected_once: set[str] = set()
        self._guard: PeriodicCallback | None = None

    async def start_kernel(self, *args, **kwargs):
        """Start a kernel unless ``max_kernels`` are alive or starting (then HTTP 503)."""
        if len(self.list_kernel_ids()) + self._starting >= self.max_kernels:
            raise web.HTTPError(
                503, reason=f"The explorer already serves {self.max_kernels} pages (each holds a model "
                f"in memory): close one, or try again in a minute. The limit is "
                f"QBDI_EXPLORE_MAX_KERNELS={self.max_kernels}.")
        self._starting += 1
        try:
            kernel_id = await super().start_kernel(*args, **kwargs)
        finally:
            self._starting -= 1
        if self._guard is None:
            self._guard = PeriodicCallback(self.cull_unconnected, CHECK_INTERVAL_S * 1000)
            self._guard.start()
        return kernel_id

    async def cull_unconnected(self) -> list[str]:
        """Shut down kernels that never had a connection and are idle past the limit.

        Returns:
            The ids of the kernels shut down.
        """
        now = datetime.datetime.now(datetime.timezone.utc)
        culled = []
        for kernel_id in list(self.list_kernel_ids()):
            try:
                model = self.kernel_model(kernel_id)
                kernel = self.get_kernel(kernel_id)
            except (KeyError, web.HTTPError):
                continue
            if model.get("connections", 0) > 0:
                self._connected_once.add(kernel_id)
                continue
            if kernel_id in self._connected_once or model.get("execution_state") == "busy":
                continue
            last = getattr(kernel, "last_activity", None)
            if last is None:
                continue
            if last.tzinfo is None:
                last = last.replace(tzinfo=datetime.timezone.utc)
            if (now - last).total_seconds() > self.unconnected_cull_seconds:
                self.log.info("qbdi explorer: shutting down kernel %s, whose page never connected", kernel_id)
                await self.shutdown_kernel(kernel_id)
                culled.append(kernel_id)
        self._connected_once &= set(self.list_kernel_ids())
        return culled
