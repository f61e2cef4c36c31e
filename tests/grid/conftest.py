"""Fixtures shared by the grid tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

import pytest

Serve = Callable[[ThreadingHTTPServer], None]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start a test HTTP server (on 127.0.0.1) in a thread; stopped and closed after the test.

    A server with a ``stop`` event has it set first, so handlers that wait on it end at once.
    """
    started: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(srv: ThreadingHTTPServer) -> None:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        started.append((srv, thread))

    yield start
    for srv, thread in started:
        stop = getattr(srv, "stop", None)
        if isinstance(stop, threading.Event):
            stop.set()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)
