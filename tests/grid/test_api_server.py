"""The live providers against a real HTTP server on 127.0.0.1: real sockets, timeouts, retries."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from greenforge.config import Secret, Settings
from greenforge.grid.cache import DiskCache
from greenforge.grid.http import ProviderTimeoutError, RetryPolicy
from greenforge.grid.providers.electricitymaps import ElectricityMapsProvider
from greenforge.grid.providers.energidata import EnergiDataProvider
from greenforge.grid.providers.ukneso import UkNesoProvider

FIXTURES = Path(__file__).parent / "fixtures" / "api"
NOW = 1795946400.0  # 2026-11-29T10:00:00Z
TOKEN = "em-server-token-77aa"
SLOW_S = 1.5
TIMEOUT_S = 0.2

Serve = Callable[[ThreadingHTTPServer], None]
pytestmark = pytest.mark.integration


class RecordedApis(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: dict[str, int] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timeout test) is expected; keep the output clean


class Handler(BaseHTTPRequestHandler):
    server: RecordedApis

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            hit = self.server.hits[path] = self.server.hits.get(path, 0) + 1
        fixture = FIXTURES
        if path == "/v3/carbon-intensity/forecast":
            if self.headers.get("auth-token") != TOKEN:
                self._send(
                    401, json.loads((fixture / "electricitymaps/error_401.json").read_text())
                )
                return
            self._send(200, json.loads((fixture / "electricitymaps/forecast.json").read_text()))
        elif path.endswith("/fw48h"):  # NESO: busy once, then the recorded answer
            if hit == 1:
                self._send(503, {"error": "busy"}, {"Retry-After": "0"})
            else:
                self._send(200, json.loads((fixture / "ukneso/fw48h.json").read_text()))
        elif path == "/dataset/CO2Emis":  # Energi Data Service: slower than the timeout
            self.server.stop.wait(SLOW_S)
            self._send(200, json.loads((fixture / "energidataservice/co2emis.json").read_text()))
        else:
            self._send(404, {"error": "not found"})


@pytest.fixture
def server(serve: Serve) -> RecordedApis:
    srv = RecordedApis()
    serve(srv)
    return srv


def test_real_http_auth_header_retries_and_timeouts(server: RecordedApis, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings = Settings(
        home=tmp_path, electricitymaps_token=Secret(TOKEN), http_timeout_s=TIMEOUT_S
    )
    retry = RetryPolicy(max_attempts=2, backoff_base_s=0.01)

    def cache(name: str) -> DiskCache:
        return DiskCache(tmp_path / name, clock=lambda: NOW)

    # a real request with the auth-token header, built by build_client (no injected client)
    em = ElectricityMapsProvider(
        settings, base_url=base + "/v3", retry=retry, cache=cache("em"), clock=lambda: NOW
    )
    forecast = em.forecast("DE", NOW, NOW + 3 * 3600)
    assert len(forecast) == 3
    assert forecast.source == "electricitymaps:forecast"

    # 503 then 200: retried for real
    neso = UkNesoProvider(settings, base_url=base, retry=retry, cache=cache("neso"))
    series = neso.forecast("GB", NOW, NOW + 3600)
    assert list(series.values_g_per_kwh) == [100, 110]
    assert server.hits["/intensity/2026-11-29T10:00Z/fw48h"] == 2

    # a server slower than the timeout: every try times out, then a clear error
    eds = EnergiDataProvider(settings, base_url=base, retry=retry, cache=cache("eds"))
    with pytest.raises(
        ProviderTimeoutError, match=r"/dataset/CO2Emis.*no complete answer within 0.2 s"
    ):
        eds.history("DK-DK1", NOW - 3600, NOW)
    assert server.hits["/dataset/CO2Emis"] == 2
