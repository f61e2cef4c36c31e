"""Prometheus: a running tracker's energy, CO2e, power and grid intensity on ``/metrics``.

``track(..., prometheus_port=N)`` or ``greenforge run --prometheus --port N`` serve, on
127.0.0.1 unless told otherwise (port 0 picks a free port: see :attr:`PrometheusExporter.port`):

- ``greenforge_energy_joules_total{component,method}`` (counter, J so far per component),
- ``greenforge_co2e_grams_total`` (counter, operational CO2e so far, g),
- ``greenforge_power_watts{component}`` (gauge, mean power over the latest interval, W),
- ``greenforge_grid_intensity_grams_per_kwh{zone,source}`` (gauge, g/kWh now),
- ``greenforge_run_info{run_id,name}`` (gauge, 1).

Values are read from the tracker when scraped (nothing is computed on the sampling path but
the latest power). With ``pushgateway=URL`` the same metrics are pushed (job ``greenforge``,
grouped by ``run_id``) at every flush and at stop, each push bounded by a timeout; a failing
gateway is warned about once and never stops the workload. Each exporter has its own
``CollectorRegistry`` (the process-wide default registry is left alone).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from greenforge.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from greenforge.records import Interval
    from greenforge.tracker import Tracker

DEFAULT_ADDR = "127.0.0.1"
PUSH_TIMEOUT_S = 2.0
JOB = "greenforge"


def _client() -> Any:
    """The ``prometheus_client`` module; raises MissingExtraError naming the extra."""
    try:
        import prometheus_client
    except ImportError:
        raise MissingExtraError(
            "prometheus_client", "prometheus", "the Prometheus endpoint"
        ) from None
    return prometheus_client


def check_port(port: int) -> int:
    """The port (0 = any free one) if it is a valid TCP port, else raises ConfigError."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(
            f"bad Prometheus port {port!r}: use a TCP port between 1 and 65535, or 0 to pick "
            "a free one."
        )
    return port


def check_pushgateway(url: str) -> str:
    """The Pushgateway URL if it is http(s)://host[:port][/path], else raises ConfigError."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(
            f"bad Pushgateway URL {url!r}: use http://HOST:PORT (e.g. http://127.0.0.1:9091)."
        )
    return url


def print_endpoint(url: str) -> None:
    """Print where the metrics are served, to stderr (returns nothing)."""
    print(f"greenforge: Prometheus metrics on {url}", file=sys.stderr, flush=True)


class _Collector:
    """Reads the tracker's figures at scrape (or push) time."""

    def __init__(self, exporter: PrometheusExporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        tracker = self._exporter.tracker
        energy = CounterMetricFamily(
            "greenforge_energy_joules",
            "Energy measured so far per component (J).",
            labels=["component", "method"],
        )
        co2e = CounterMetricFamily(
            "greenforge_co2e_grams", "Operational CO2e so far (g), location-based."
        )
        power = GaugeMetricFamily(
            "greenforge_power_watts",
            "Mean power over the latest sampling interval (W).",
            labels=["component"],
        )
        grid = GaugeMetricFamily(
            "greenforge_grid_intensity_grams_per_kwh",
            "Grid carbon intensity now (gCO2e/kWh).",
            labels=["zone", "source"],
        )
        info = GaugeMetricFamily(
            "greenforge_run_info", "The tracked run (always 1).", labels=["run_id", "name"]
        )
        if tracker is not None:
            for total in tracker.component_totals():
                energy.add_metric([total.component, total.method], total.energy_j)
            co2e.add_metric([], tracker.co2e_g)
            for component, watts in self._exporter.power_w().items():
                power.add_metric([component], watts)
            now = tracker.intensity_now()
            if now is not None:
                value, provenance = now
                grid.add_metric([provenance.zone, provenance.source], value)
            info.add_metric([tracker.run_id, tracker.name], 1.0)
        yield from (energy, co2e, power, grid, info)


class PrometheusExporter:
    """Serves (and optionally pushes) one tracker's metrics; a tracker exporter.

    ``port=None`` serves nothing (push only). :meth:`start` raises ConfigError for a bad or
    busy port; the tracker turns that into a warning and keeps measuring.
    """

    def __init__(
        self,
        port: int | None = 0,
        *,
        addr: str = DEFAULT_ADDR,
        pushgateway: str | None = None,
        push_timeout_s: float = PUSH_TIMEOUT_S,
        on_listen: Callable[[str], None] | None = None,
    ) -> None:
        self.requested_port = None if port is None else check_port(port)
        self.addr = addr
        self.pushgateway = None if pushgateway is None else check_pushgateway(pushgateway)
        self.push_timeout_s = push_timeout_s
        self.on_listen = on_listen
        """Called with the endpoint's URL once it listens (e.g. to print a free port's)."""
        self.port: int | None = None
        """The port actually listened on (after :meth:`start`; the free one for port 0)."""
        self.tracker: Tracker | None = None
        self.pushes = 0
        """Successful pushes so far."""
        self.push_failures = 0
        self._lock = threading.Lock()
        self._power_w: dict[str, float] = {}
        self._server: Any = None
        self._thread: threading.Thread | None = None
        client = _client()
        self.registry = client.CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    # -- tracker exporter protocol -----------------------------------------------------

    def start(self, tracker: Tracker) -> None:
        """Start serving ``/metrics``; raises ConfigError if the port cannot be bound."""
        self.tracker = tracker
        if self.requested_port is None:
            return
        client = _client()
        try:
            server, thread = client.start_http_server(
                self.requested_port, addr=self.addr, registry=self.registry
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot serve Prometheus metrics on {self.addr}:{self.requested_port} "
                f"({exc.strerror or exc}): pick another port, or 0 for a free one."
            ) from None
        self._server, self._thread = server, thread
        self.port = int(server.server_port)
        if self.on_listen is not None:
            self.on_listen(self.url)

    @property
    def url(self) -> str:
        """The ``/metrics`` URL served (empty before :meth:`start` or without a port)."""
        return "" if self.port is None else f"http://{self.addr}:{self.port}/metrics"

    def on_interval(self, interval: Interval) -> None:
        """Keep the interval's mean power per component (W); called on the sampling path."""
        if interval.duration_s <= 0:
            return
        power: dict[str, float] = {}
        for reading in interval.readings:
            power[reading.component] = (
                power.get(reading.component, 0.0) + reading.energy_j / interval.duration_s
            )
        with self._lock:
            self._power_w = power

    def flush(self) -> None:
        """Push to the Pushgateway, if one is set (at each tracker flush)."""
        self.push()

    def stop(self) -> None:
        """Push the final figures (if a gateway is set) and shut the server down."""
        self.push()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    # -- helpers -----------------------------------------------------------------------

    def power_w(self) -> dict[str, float]:
        """Mean power per component over the latest interval (W)."""
        with self._lock:
            return dict(self._power_w)

    def push(self) -> bool:
        """Push the metrics to the Pushgateway; returns False (warning once) on failure."""
        if self.pushgateway is None or self.tracker is None:
            return False
        client = _client()
        try:
            client.push_to_gateway(
                self.pushgateway,
                job=JOB,
                registry=self.registry,
                grouping_key={"run_id": self.tracker.run_id},
                timeout=self.push_timeout_s,
            )
        except Exception as exc:  # a gateway problem never reaches the workload
            self.push_failures += 1
            if self.push_failures == 1:
                self.tracker.warn(
                    f"could not push metrics to the Pushgateway {self.pushgateway} ({exc}); "
                    "will keep trying quietly"
                )
            return False
        self.pushes += 1
        return True

    def metrics_text(self) -> str:
        """The metrics in the Prometheus text format, as ``/metrics`` serves them."""
        text: bytes = _client().generate_latest(self.registry)
        return text.decode()
