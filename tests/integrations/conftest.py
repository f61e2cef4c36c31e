"""Shared set-up for the experiment-tracker integration tests: one real MLflow tracking server
on 127.0.0.1 for the whole session (SQLite backend in a temp dir), W&B in offline mode in a temp
dir, and one real tiny forge run logged to both through the CLI flags.

`mlflow server` takes 15-40 s to come up (it imports MLflow's server twice: the CLI, then the
uvicorn worker), so it is started as soon as collection shows a test that needs it, and the
tests that do not need it run first, while it boots."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 on the installed CPU torch, not TF

SERVER_START_S = 240.0
"""`mlflow server` imports a lot: ~15 s on an idle 2-core box, a minute beside other work."""

TINY_FORGE = """[data]
kind = "npz"
path = "blobs.npz"

[model]
architecture = "mlp"
hidden = [16]

[task]
name = "tiny"
tolerance = 0.1
expected_inferences = 100000
epochs = 1
batch_size = 32
lr = 0.01
measure_budget_s = 1.0
serving_runtimes = ["native"]
recipes = ["baseline", { recipe = "quantize", source = "baseline", mode = "int8-dynamic" }]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 in its own process group (started, not yet waited)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = (root / "server.log").open("wb")
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("mlflow")),
                "server",
                *("--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"),
                *("--artifacts-destination", str(root / "artifacts")),
                *("--host", "127.0.0.1", "--port", self.url.rsplit(":", 1)[1]),
                *("--workers", "1"),  # one uvicorn process (the default 4 import MLflow 4 times)
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=root,
        )

    def wait(self) -> str:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"mlflow server exited: {self.tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not up: {self.tail()}")
            time.sleep(0.25)

    def tail(self) -> str:
        return (self.root / "server.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


_early: dict[str, MlflowServer] = {}


def _needs_server(item: pytest.Item) -> bool:
    return "mlflow_server" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Starts the MLflow server now when a selected test needs it, and runs this folder's tests
    that do not need it first (stable order otherwise), so they overlap its start."""
    here = Path(__file__).parent
    waiting = {id(i) for i in items if Path(str(i.path)).parent == here and _needs_server(i)}
    if not waiting or config.option.collectonly:
        return
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="greenforge-mlflow-server-"))
    _early["server"] = MlflowServer(root)
    order = {id(i): n for n, i in enumerate(items)}
    items.sort(key=lambda i: (id(i) in waiting, order[id(i)]))


def pytest_unconfigure(config: pytest.Config) -> None:
    server = _early.pop("server", None)
    if server is not None:
        server.stop()
        import shutil

        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real `mlflow server` on 127.0.0.1 (started at collection, stopped after)."""
    server = _early.get("server")
    if server is not None:
        yield server.wait()
        return
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server.wait()
    finally:
        server.stop()


@pytest.fixture
def mlflow_experiment(mlflow_server: str, monkeypatch: pytest.MonkeyPatch, request: Any) -> str:
    """A fresh experiment on the server, made the default of this test's MLflow calls."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    client = MlflowClient(mlflow_server)
    experiment_id = str(client.create_experiment(f"{request.node.name}-{os.urandom(3).hex()}"))
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    return experiment_id


WANDB_ENV = {
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "WANDB_CONSOLE": "off",
    "WANDB_DISABLE_GIT": "true",
    "WANDB_DISABLE_CODE": "true",
    "WANDB_X_DISABLE_STATS": "true",
    "WANDB_X_DISABLE_META": "true",
    "WANDB_X_DISABLE_MACHINE_INFO": "true",
    "WANDB_ANONYMOUS": "never",
    "WANDB_PROJECT": "greenforge-tests",
}


@pytest.fixture(scope="session")
def wandb_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """W&B offline for the session, every file under one temp dir (runs in ``<dir>/wandb``)."""
    root = tmp_path_factory.mktemp("wandb")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in WANDB_ENV.items():
            mp.setenv(key, value)
        for key, sub in (
            ("WANDB_DIR", "."),
            ("WANDB_CACHE_DIR", "cache"),
            ("WANDB_DATA_DIR", "data"),
            ("WANDB_CONFIG_DIR", "config"),
            ("WANDB_ARTIFACT_DIR", "artifacts"),
        ):
            (root / sub).mkdir(exist_ok=True)
            mp.setenv(key, str(root / sub))
        mp.delenv("WANDB_API_KEY", raising=False)
        mp.delenv("WANDB_BASE_URL", raising=False)
        yield root
        import wandb

        wandb.teardown()


def blobs_npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    centers = rng.normal(0.0, 4.0, size=(3, 8))
    y = np.arange(240) % 3
    x = centers[y] + rng.normal(0.0, 0.6, size=(240, 8))
    np.savez(path, x=x.astype(np.float32), y=y.astype(np.int64))
    return path


@pytest.fixture(scope="session")
def forge_logged(
    tmp_path_factory: pytest.TempPathFactory, mlflow_server: str, wandb_dir: Path
) -> dict[str, Any]:
    """One real tiny `greenforge forge --mlflow --wandb` run: its exit code, output directory,
    printed lines and the MLflow experiment it logged to."""
    from mlflow import MlflowClient

    from greenforge.cli.app import main

    root = tmp_path_factory.mktemp("forge")
    blobs_npz(root / "blobs.npz")
    (root / "task.toml").write_text(TINY_FORGE, encoding="utf-8")
    experiment_id = str(MlflowClient(mlflow_server).create_experiment("forge-cli"))
    out = root / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GREENFORGE_HOME", str(root / "home"))
        for var in [
            v for v in os.environ if v.startswith("GREENFORGE_") and v != "GREENFORGE_HOME"
        ]:
            mp.delenv(var)
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server)
        mp.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
        mp.setenv("MPLBACKEND", "Agg")
        mp.chdir(root)
        before = set(wandb_dir.glob("wandb/offline-run-*"))
        code, printed = _run_main(
            main,
            [
                *("forge", "--config", "task.toml", "--out", str(out), "--zone", "FR"),
                *("--threads", "1", "--mlflow", "--wandb"),
            ],
        )
        new_runs = sorted(set(wandb_dir.glob("wandb/offline-run-*")) - before)
    return {
        "code": code,
        "out": out,
        "printed": printed,
        "experiment_id": experiment_id,
        "wandb_runs": [p.name.rsplit("-", 1)[1] for p in new_runs],
    }


def _run_main(main: Any, argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(argv)
    return int(code), buffer.getvalue()
