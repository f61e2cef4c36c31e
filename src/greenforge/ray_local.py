"""Ray, started or joined safely: a local Ray that GreenForge starts listens on 127.0.0.1 only.

``ray.init()`` with no address starts a local Ray whose servers (GCS, raylet, object manager,
workers, agents: about eight sockets) listen on all interfaces, reachable from the network,
with a dashboard on top. :func:`init_ray` starts it on the loopback address instead
(``_node_ip_address="127.0.0.1"``; Ray then binds its servers to that address), without the
dashboard unless asked (and then on 127.0.0.1 too). Given an address (``--ray-address``, or
``RAY_ADDRESS``), it joins that cluster as it is: a cluster someone started is theirs to secure.

Ray is imported only here, when a Ray executor first needs it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
from collections.abc import Iterator
from typing import Any

from greenforge.errors import ConfigError, MissingExtraError

LOOPBACK = "127.0.0.1"
_INIT_LOCK = threading.Lock()


def import_ray(what: str) -> Any:
    """The ``ray`` module; :class:`MissingExtraError` naming ``what`` needs it when absent."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray", what) from None
    return ray


def is_loopback(host: str) -> bool:
    """True for a loopback address (``127.0.0.0/8``, ``::1``, ``::ffff:127.x``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def init_ray(
    address: str | None = None,
    *,
    dashboard: bool = False,
    what: str = "the ray executor",
    **init_kwargs: Any,
) -> Any:
    """The ``ray`` module, initialised (already-initialised Ray is used as it is).

    ``address`` (else ``$RAY_ADDRESS``) joins that cluster. Without one, a new local Ray is
    started that listens on 127.0.0.1 only, with no dashboard unless ``dashboard=True`` (or
    ``include_dashboard=True`` in ``init_kwargs``), which then listens on 127.0.0.1 as well.
    ``init_kwargs`` go to ``ray.init`` (``num_cpus``, ``resources``, ``log_to_driver`` ...).
    Raises :class:`~greenforge.errors.ConfigError` if the local Ray did not bind to loopback
    (it is shut down again).
    """
    ray = import_ray(what)
    with _INIT_LOCK:
        if ray.is_initialized():
            return ray
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address is not None and address != "local":
            ray.init(address=address, **init_kwargs)
            return ray
        kwargs: dict[str, Any] = {
            "include_dashboard": dashboard,
            "dashboard_host": LOOPBACK,
            "_node_ip_address": LOOPBACK,
            **init_kwargs,
        }
        with _node_ip_stays_loopback():
            # "local": always a new instance of our own, never a cluster that happens to run
            ray.init(address="local", **kwargs)
        node_ip = _node_ip(ray)
        if node_ip is not None and not is_loopback(node_ip):
            ray.shutdown()
            raise ConfigError(
                f"the local Ray started for {what} came up on {node_ip}, not on {LOOPBACK}, so "
                "its servers would be reachable from the network; it was shut down. Start a "
                f"cluster yourself (`ray start --head --node-ip-address {LOOPBACK}`) and pass "
                "its address (--ray-address auto)."
            )
        return ray


@contextlib.contextmanager
def _node_ip_stays_loopback() -> Iterator[None]:
    """While Ray starts: keep ``127.0.0.1`` as the node address.

    On Linux, Ray replaces a loopback ``_node_ip_address`` by the machine's network address
    (``services.resolve_ip_for_localhost``) unless its "clusters disabled" switch
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read once at import into
    ``ray_constants.ENABLE_RAY_CLUSTER``) is off, as on macOS. The switch is turned off only
    for the duration of ``ray.init`` and restored after; the result is checked by the caller.
    """
    try:
        from ray._private import ray_constants
    except ImportError:  # pragma: no cover - a Ray without that module: checked after init
        yield
        return
    if not hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):  # pragma: no cover
        yield
        return
    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def _node_ip(ray: Any) -> str | None:
    try:
        return str(ray.util.get_node_ip_address())
    except Exception:  # pragma: no cover - the check is best effort across Ray versions
        return None
