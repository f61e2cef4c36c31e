"""Prometheus: a real tracker's ``/metrics`` scraped over HTTP, and a real push to a
Pushgateway stand-in, both on 127.0.0.1 and parsed with prometheus_client's text parser.

The tracker samples on a :class:`ManualClock` with a one-hour interval, so its figures only
change when the test closes a window: every scrape sees exactly the tracker's values.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import sys
import threading
from collections.abc import Iterator

import httpx
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from greenforge.errors import ConfigError, MissingExtraError
from greenforge.integrations.prometheus import PrometheusExporter
from greenforge.testing import FakeMeter, ManualClock, StaticIntensity
from greenforge.tracker import Tracker

POWER_W = {"cpu": 10.0, "gpu:0": 30.0}


def _tracker(clock: ManualClock, **kwargs: object) -> Tracker:
    return Tracker(
        zone="DE",
        interval_s=3600.0,
        meters=[FakeMeter(POWER_W, method="fake", clock=clock)],
        provider=StaticIntensity(200.0),
        persist=False,
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


def _exporter(tracker: Tracker) -> PrometheusExporter:
    (exporter,) = tracker.exporters
    assert isinstance(exporter, PrometheusExporter)
    return exporter


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _sample_10_s(tracker: Tracker, clock: ManualClock) -> None:
    clock.advance(10.0)
    with tracker.window("step"):  # a window boundary reads the meters (the sample is 10 s old)
        pass


def test_metrics_endpoint_serves_the_trackers_figures_on_loopback_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = ManualClock()
    tracker = _tracker(clock, prometheus_port=0).start()
    try:
        exporter = _exporter(tracker)
        assert exporter.port is not None
        assert exporter.port > 0
        assert f"Prometheus metrics on http://127.0.0.1:{exporter.port}/metrics" in (
            capsys.readouterr().err
        )
        _sample_10_s(tracker, clock)
        response = httpx.get(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5.0)
        assert response.status_code == 200
        got = _samples(response.text)
        for component, watts in POWER_W.items():
            key = ("greenforge_energy_joules_total", (("component", component), ("method", "fake")))
            assert got[key] == pytest.approx(watts * 10.0)
            assert got[("greenforge_power_watts", (("component", component),))] == pytest.approx(
                watts
            )
        assert sum(
            v for (name, _), v in got.items() if name == "greenforge_energy_joules_total"
        ) == pytest.approx(tracker.energy_j)
        assert tracker.co2e_g > 0
        assert got[("greenforge_co2e_grams_total", ())] == pytest.approx(tracker.co2e_g)
        grid = (
            "greenforge_grid_intensity_grams_per_kwh",
            (("source", "static:DE"), ("zone", "DE")),
        )
        assert got[grid] == pytest.approx(200.0)
        info = ("greenforge_run_info", (("name", tracker.name), ("run_id", tracker.run_id)))
        assert got[info] == 1.0
        # Bound to 127.0.0.1 alone: another loopback address of this host is refused.
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.2", exporter.port), 2),
        ):
            pass
        # Its own registry: the process-wide default one has none of these metrics.
        assert prometheus_client.REGISTRY.get_sample_value("greenforge_co2e_grams_total") is None
    finally:
        record = tracker.stop()
    assert record.warnings == ()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", exporter.port), 2),
    ):
        pass  # shut down at stop


class _Gateway(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, str]]

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append(("PUT", self.path, body.decode()))
        self.send_response(202)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _gateway() -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    received: list[tuple[str, str, str]] = []
    handler = type("Handler", (_Gateway,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_pushgateway_gets_the_metrics_at_each_flush_and_at_stop() -> None:
    clock = ManualClock()
    with _gateway() as (url, received):
        tracker = _tracker(clock, pushgateway=url).start()
        exporter = _exporter(tracker)
        assert exporter.port is None  # push only: nothing served
        _sample_10_s(tracker, clock)
        exporter.flush()
        _sample_10_s(tracker, clock)
        record = tracker.stop()
    assert record.warnings == ()
    assert [(m, p) for m, p, _ in received] == [
        ("PUT", f"/metrics/job/greenforge/run_id/{record.id}")
    ] * 2
    first, last = (_samples(body) for _, _, body in received)
    key = ("greenforge_energy_joules_total", (("component", "cpu"), ("method", "fake")))
    assert first[key] == pytest.approx(100.0)
    assert last[key] == pytest.approx(200.0)
    assert sum(
        v for (name, _), v in last.items() if name == "greenforge_energy_joules_total"
    ) == pytest.approx(record.energy_j)
    assert record.emissions is not None
    assert last[("greenforge_co2e_grams_total", ())] == pytest.approx(record.emissions.co2e_g)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_dead_pushgateway_warns_once_and_the_run_completes() -> None:
    clock = ManualClock()
    tracker = _tracker(clock, pushgateway=f"http://127.0.0.1:{_free_port()}").start()
    exporter = _exporter(tracker)
    _sample_10_s(tracker, clock)
    exporter.flush()
    exporter.flush()
    record = tracker.stop()
    assert record.status == "completed"
    assert record.energy_j == pytest.approx(400.0)
    assert exporter.push_failures == 3
    assert exporter.pushes == 0
    assert len([w for w in record.warnings if "Pushgateway" in w]) == 1


def test_a_bad_port_is_a_clear_config_error_and_the_workload_still_runs() -> None:
    with pytest.raises(ConfigError, match="bad Prometheus port 70000"):
        PrometheusExporter(70000)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(
            ConfigError, match=f"cannot serve Prometheus metrics on 127.0.0.1:{port}"
        ):
            PrometheusExporter(port).start(_tracker(ManualClock()))
        for bad in (70000, port):
            clock = ManualClock()
            tracker = _tracker(clock, prometheus_port=bad).start()
            _sample_10_s(tracker, clock)
            record = tracker.stop()
            assert tracker.exporters == []
            assert record.status == "completed"
            assert record.energy_j == pytest.approx(400.0)
            assert any(f"Prometheus port {bad}" in w or f":{bad} " in w for w in record.warnings)


def test_a_bad_pushgateway_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="bad Pushgateway URL 'localhost:9091'"):
        PrometheusExporter(None, pushgateway="localhost:9091")


def test_without_the_extra_it_names_the_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'greenforge\[prometheus\]'"):
        PrometheusExporter(0)


def test_greenforge_run_serves_metrics_the_command_itself_can_scrape(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from greenforge.cli.app import main

    port = _free_port()
    scrape = f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/metrics').read().decode())"
    code = main(
        [
            "run",
            "--zone",
            "DE",
            "--prometheus",
            "--port",
            str(port),
            "--",
            sys.executable,
            "-c",
            scrape,
        ]
    )
    out, err = capfd.readouterr()
    assert code == 0
    assert f"Prometheus metrics on http://127.0.0.1:{port}/metrics" in err
    names = {family.name for family in text_string_to_metric_families(out)}
    assert {"greenforge_energy_joules", "greenforge_co2e_grams", "greenforge_run_info"} <= names
