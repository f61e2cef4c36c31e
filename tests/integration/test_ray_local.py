"""A local Ray started by GreenForge (greenforge.ray_local) listens on loopback only.

Starts a real local Ray (one CPU, ~10-20 s) the way each Ray executor does, lists the listening sockets of this process and
of every process under it (the GCS, raylet, agents and workers Ray started), and checks that
none is bound to an address reachable from the network (0.0.0.0, ::, or a real interface).
"""

from __future__ import annotations

from collections.abc import Iterator

import psutil
import pytest
import ray

from greenforge.config import Settings
from greenforge.forge.search import _ray_evaluator
from greenforge.ray_local import LOOPBACK, is_loopback
from greenforge.schedule.executors.ray import RayExecutor

pytestmark = pytest.mark.integration


def _start_for_schedule() -> None:
    RayExecutor(Settings(), init_kwargs={"num_cpus": 1})._ensure_ray()


def _start_for_forge() -> None:
    _ray_evaluator({"num_cpus": 1})


@pytest.fixture(params=[_start_for_schedule, _start_for_forge], ids=["schedule", "forge"])
def started_ray(request: pytest.FixtureRequest) -> Iterator[None]:
    """A local Ray started as ``schedule --executor ray`` / ``forge --executor ray`` start it
    without ``--ray-address``."""
    if ray.is_initialized():  # another module's cluster: start our own
        ray.shutdown()
    request.param()
    try:
        yield
    finally:
        ray.shutdown()


def _listening_addresses() -> list[tuple[str, int, str]]:
    me = psutil.Process()
    pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
    out = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids and conn.laddr:
            try:
                name = psutil.Process(conn.pid).name()
            except psutil.Error:
                name = "?"
            out.append((conn.laddr.ip, conn.laddr.port, name))
    return out


@pytest.mark.usefixtures("started_ray")
def test_a_local_ray_listens_on_loopback_only_and_has_no_dashboard() -> None:
    @ray.remote
    def where() -> str:
        return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]

    assert ray.get(where.remote()) == LOOPBACK  # a worker really ran, on the loopback node

    listening = _listening_addresses()

    assert len(listening) >= 3, listening  # GCS, raylet, workers: Ray's servers were found
    exposed = [a for a in listening if not is_loopback(a[0])]
    assert exposed == [], f"listening beyond loopback: {exposed}"
    assert not any("dashboard" in name.lower() for _ip, _port, name in listening)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.2", False),
        ("not an address", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
