"""The live providers, pointed by their base-URL settings at a real HTTP server on 127.0.0.1
that misbehaves: 401, 500, malformed JSON, a trickle of one byte every 0.5 s, a key echoed back.

What must hold: a clear ProviderError naming the provider and the status, never the key; the
request deadline and the command's network budget respected (elapsed time is bounded, with
generous slack: a correctness bound, not a speed target); the fallback visible in the series
source; nothing secret in the cache.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import cast

import pytest

from greenforge.config import Secret, Settings
from greenforge.errors import ConfigError, ProviderError
from greenforge.grid.cache import DiskCache
from greenforge.grid.chain import GridFallbackWarning, NetworkBudget, intensity_for
from greenforge.grid.http import ApiProvider, ProviderBudgetError, RetryPolicy
from greenforge.grid.provider import IntensityProvider
from greenforge.grid.providers.electricitymaps import ElectricityMapsProvider
from greenforge.grid.providers.energidata import EnergiDataProvider
from greenforge.grid.providers.ukneso import UkNesoProvider
from greenforge.grid.providers.watttime import WattTimeProvider
from greenforge.grid.series import IntensitySeries
from greenforge.testing import FakeMeter
from greenforge.tracker import Tracker

Serve = Callable[[ThreadingHTTPServer], None]
pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent / "fixtures" / "api"
NOW = 1795946400.0  # 2026-11-29T10:00:00Z, the time of the recorded answers
EM_TOKEN = "em-key-misbehave-4242"
WT_USER = "grid-user"
WT_PASSWORD = "wt-pass-misbehave-1717"
WT_BEARER = str(json.loads((FIXTURES / "watttime/login.json").read_text())["token"])
SECRETS = (
    EM_TOKEN,
    WT_PASSWORD,
    WT_BEARER,
    base64.b64encode(f"{WT_USER}:{WT_PASSWORD}".encode()).decode(),
)
TRICKLE_EVERY_S = 0.5
DEADLINE_S = 1.0
SLACK_S = 4.0  # generous: the bound checks that the deadline holds, not how fast we are


class Misbehaving(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.mode = "ok"
        self.stop = threading.Event()
        self.paths: list[str] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up on a trickle is expected


_RECORDED = {
    "/em/carbon-intensity/forecast": "electricitymaps/forecast.json",
    "/wt/login": "watttime/login.json",
    "/wt/v3/forecast": "watttime/forecast.json",
}


class Handler(BaseHTTPRequestHandler):
    server: Misbehaving
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _echo(self) -> str:
        # everything the client sent that could hold a key
        return " ".join(f"{k}: {v}" for k, v in self.headers.items()) + " " + self.path

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        mode = self.server.mode
        echo = self._echo()
        if mode == "401":
            self._send(401, json.dumps({"message": f"bad credentials: {echo}"}).encode())
        elif mode == "500":
            self._send(500, json.dumps({"error": f"internal error for {echo}"}).encode())
        elif mode == "badjson":
            self._send(200, b'{"data": [1, 2, ')
        elif mode == "trickle":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                if self.server.stop.wait(TRICKLE_EVERY_S):
                    return
                self.wfile.write(b" ")
                self.wfile.flush()
        else:  # "ok": the recorded answer, with the request's credentials echoed back
            path = self.path.split("?", 1)[0]
            body = json.loads((FIXTURES / _RECORDED[path]).read_text())
            body["echo"] = echo
            body[f"key {echo}"] = [echo]
            self._send(200, json.dumps(body).encode(), {"X-Echo": echo.replace("\n", " ")})


@pytest.fixture
def server(serve: Serve) -> Misbehaving:
    srv = Misbehaving()
    serve(srv)
    return srv


def _settings(tmp_path: Path, server: Misbehaving, **kw: object) -> Settings:
    values: dict[str, object] = {
        "home": tmp_path,
        "http_timeout_s": DEADLINE_S,
        "electricitymaps_token": Secret(EM_TOKEN),
        "watttime_username": WT_USER,
        "watttime_password": Secret(WT_PASSWORD),
        "watttime_region": "CAISO_NORTH",
        "electricitymaps_base_url": server.base + "/em",
        "watttime_base_url": server.base + "/wt",
        "ukneso_base_url": server.base + "/neso",
        "energidataservice_base_url": server.base + "/eds",
    }
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


RETRY = RetryPolicy(max_attempts=2, backoff_base_s=0.01)
ONCE = RetryPolicy(max_attempts=1)


def _kw(settings: Settings, retry: RetryPolicy) -> dict[str, object]:
    return {
        "retry": retry,
        "cache": DiskCache(settings.resolved_home() / "cache", clock=lambda: NOW),
        "clock": lambda: NOW,
    }


PROVIDERS: dict[str, tuple[type[ApiProvider], str]] = {
    "electricitymaps": (ElectricityMapsProvider, "DE"),
    "watttime": (WattTimeProvider, "CAISO_NORTH"),
    "uk-neso": (UkNesoProvider, "GB"),
    "energidataservice": (EnergiDataProvider, "DK-DK1"),
}


_MADE: list[ApiProvider] = []


@pytest.fixture(autouse=True)
def _close_providers() -> Iterator[None]:
    yield
    while _MADE:  # their HTTP clients (and sockets) end with the test, failed or not
        _MADE.pop().close()


def _make(name: str, settings: Settings, retry: RetryPolicy = RETRY) -> IntensityProvider:
    cls, _zone = PROVIDERS[name]
    provider = cls(settings, **_kw(settings, retry))  # type: ignore[arg-type]
    _MADE.append(provider)
    return cast("IntensityProvider", provider)


def _forecast(provider: IntensityProvider, zone: str) -> IntensitySeries:
    return provider.forecast(zone, NOW, NOW + 3600)


def _assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@pytest.mark.parametrize(
    ("mode", "expected"),
    [("401", r"HTTP 401"), ("500", r"HTTP 500"), ("badjson", r"invalid JSON")],
)
def test_a_misbehaving_server_gives_a_clear_error_without_the_key(
    server: Misbehaving, tmp_path: Path, name: str, mode: str, expected: str
) -> None:
    server.mode = mode
    provider = _make(name, _settings(tmp_path, server))

    with pytest.raises(ProviderError, match=expected) as err:
        _forecast(provider, PROVIDERS[name][1])

    text = str(err.value)
    assert text.startswith(f"{name}: GET /")  # the provider and the endpoint (path only)
    _assert_no_secret(text + repr(err.value))
    assert server.paths, "the provider must have used the configured base URL"


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_a_trickling_server_is_cut_off_at_the_deadline(
    server: Misbehaving, tmp_path: Path, name: str
) -> None:
    server.mode = "trickle"
    provider = _make(name, _settings(tmp_path, server), retry=ONCE)

    started = time.monotonic()
    with pytest.raises(ProviderError, match=rf"no complete answer within {DEADLINE_S:g} s"):
        _forecast(provider, PROVIDERS[name][1])
    elapsed = time.monotonic() - started

    assert elapsed < DEADLINE_S + SLACK_S


@pytest.mark.parametrize(("mode", "status"), [("401", "HTTP 401"), ("500", "HTTP 500")])
def test_the_fallback_to_embedded_data_is_visible_in_the_source(
    server: Misbehaving, tmp_path: Path, mode: str, status: str
) -> None:
    server.mode = mode
    settings = _settings(tmp_path, server, intensity_providers=("electricitymaps", "embedded"))
    em = _make("electricitymaps", settings)

    with pytest.warns(GridFallbackWarning, match="electricitymaps"):
        series = intensity_for(
            settings, "DE", NOW, NOW + 3600, forecast=True, providers={"electricitymaps": em}
        )

    assert series.source.startswith("embedded")
    assert "fallback after electricitymaps" in series.source
    assert status in series.source
    _assert_no_secret(series.source)


def test_two_slow_providers_together_cost_at_most_the_network_budget(
    server: Misbehaving, tmp_path: Path
) -> None:
    server.mode = "trickle"
    budget_s = 1.5
    settings = _settings(
        tmp_path,
        server,
        http_timeout_s=30.0,  # each request alone could wait long: the budget must cut it
        http_budget_s=budget_s,
        intensity_providers=("electricitymaps", "uk-neso", "embedded"),
    )
    providers = {n: _make(n, settings) for n in ("electricitymaps", "uk-neso")}

    started = time.monotonic()
    with pytest.warns(GridFallbackWarning):
        series = intensity_for(settings, "GB", NOW, NOW + 3600, forecast=True, providers=providers)
    elapsed = time.monotonic() - started

    assert elapsed < budget_s + SLACK_S
    assert series.source.startswith("embedded")
    assert "fallback after electricitymaps" in series.source
    assert "uk-neso: ProviderBudgetError" in series.source


def test_a_tracker_never_makes_its_workload_wait_on_a_slow_api(
    server: Misbehaving, tmp_path: Path
) -> None:
    server.mode = "trickle"
    budget_s = 6.0  # asking the API before the workload would take all of it
    settings = _settings(
        tmp_path,
        server,
        http_timeout_s=30.0,
        http_budget_s=budget_s,
        intensity_providers=("electricitymaps", "embedded"),
    )
    tracker = Tracker(settings, zone="DE", meters=[FakeMeter(10.0)], persist=False)

    started = time.monotonic()
    tracker.start()
    start_s = time.monotonic() - started
    with pytest.warns(GridFallbackWarning, match="electricitymaps"):
        record = tracker.stop()

    assert start_s < budget_s - 2.0
    assert record.emissions is not None
    assert "fallback after electricitymaps" in record.emissions.intensity.source
    # (whether the background request reached the server before stop() gave up on it depends
    # on the machine's load; what matters is that neither start nor stop waited for it)


def test_no_request_is_sent_once_the_budget_is_spent(server: Misbehaving, tmp_path: Path) -> None:
    settings = _settings(tmp_path, server)
    spent = NetworkBudget(0.0)
    provider = UkNesoProvider(settings, budget=spent, **_kw(settings, RETRY))  # type: ignore[arg-type]
    _MADE.append(provider)

    with pytest.raises(ProviderBudgetError, match=r"network budget of 0 s.*http_budget_s"):
        provider.forecast("GB", NOW, NOW + 3600)

    assert server.paths == []


def test_an_echoed_key_never_reaches_the_cache(server: Misbehaving, tmp_path: Path) -> None:
    server.mode = "ok"
    settings = _settings(tmp_path, server)
    em = _make("electricitymaps", settings)
    wt = _make("watttime", settings)

    em_series = _forecast(em, "DE")
    wt_series = _forecast(wt, "CAISO_NORTH")

    assert em_series is not None
    assert wt_series is not None
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 2  # the two forecasts; the WattTime login is never cached
    for f in files:
        text = f.read_text()
        _assert_no_secret(text)
        assert "***" in text  # the echo was there, redacted


def test_base_urls_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"watttime_base_url.*http\(s\) URL"):
        Settings(home=tmp_path, watttime_base_url="ftp://mirror.example.org")
    with pytest.raises(ConfigError, match=r"credentials") as err:
        Settings(home=tmp_path, ukneso_base_url="https://me:hunter22@mirror.example.org")
    assert "hunter22" not in str(err.value)
