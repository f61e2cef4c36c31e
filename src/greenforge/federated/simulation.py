"""Flower's simulation engine, started safely: a local Ray on 127.0.0.1, no dashboard, limited.

:func:`run_simulation` runs ``serve(grid)`` as the ServerApp against ``num_nodes`` virtual
SuperNodes whose ClientApps run in Ray actors (one CPU each). Ray is started by
:func:`greenforge.ray_local.init_ray` (loopback only, checked after start; an address in
``RAY_ADDRESS`` is joined as it is) before Flower's Ray backend looks for it, so Flower uses
that instance instead of starting its own on all interfaces.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from greenforge.federated._flwr import import_flwr

if TYPE_CHECKING:
    from flwr.clientapp import ClientApp

OBJECT_STORE_BYTES = 100 * 1024 * 1024
"""Ray's object store for a simulation of small models (Ray's own default is 30 % of RAM)."""


def run_simulation(
    serve: Callable[[Any], None],
    app: ClientApp,
    num_nodes: int,
    *,
    cpus: int = 2,
    cpus_per_client: float = 1.0,
    shutdown: bool = False,
) -> None:
    """Runs ``serve(grid)`` against ``num_nodes`` ClientApps on Flower's simulation engine.

    ``cpus``: CPUs the local Ray may use; ``cpus_per_client``: per actor (so ``cpus /
    cpus_per_client`` clients train at once). ``shutdown=True`` stops Ray afterwards.
    Exceptions raised by ``serve`` propagate.
    """
    import_flwr("Flower's simulation engine")
    from flwr.serverapp import Grid, ServerApp
    from flwr.simulation import run_simulation as flwr_run_simulation

    from greenforge.ray_local import init_ray

    # actors import the apps' modules by name: give them this process's import path
    pythonpath = os.pathsep.join(p for p in sys.path if p)
    ray = init_ray(
        what="the Flower simulation engine",
        num_cpus=cpus,
        object_store_memory=OBJECT_STORE_BYTES,
        log_to_driver=False,
        logging_level=logging.WARNING,
        runtime_env={
            "env_vars": {
                "PYTHONPATH": pythonpath,
                "FLWR_TELEMETRY_ENABLED": os.environ.get("FLWR_TELEMETRY_ENABLED", "0"),
            }
        },
    )
    server = ServerApp()
    failure: list[BaseException] = []

    @server.main()
    def _main(grid: Grid, context: Any) -> None:
        try:
            serve(grid)
        except BaseException as exc:
            failure.append(exc)
            raise

    try:
        flwr_run_simulation(
            server_app=server,
            client_app=app,
            num_supernodes=num_nodes,
            backend_name="ray",
            backend_config={"client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0}},
        )
    except RuntimeError:
        if failure:
            raise failure[0] from None
        raise
    finally:
        if shutdown:
            ray.shutdown()
    if failure:
        raise failure[0]
