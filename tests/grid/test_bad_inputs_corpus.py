"""Every file of the bad-input corpus, through the Python API and both CLIs that take files.

``tests/data/bad_inputs/manifest.json`` says what each file must give (see ``make_corpus.py``
there). The CLIs run as subprocesses under a 1.5 GiB address-space limit, so a reader whose
memory grows with a field or a decompressed size fails here instead of eating the machine;
a crash (segfault: exit >= 128) or a Python traceback fails the test.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from greenforge.errors import DataError, GreenForgeError
from greenforge.grid.files import load_csv
from greenforge.timeutil import utc_iso_seconds

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_inputs"
MANIFEST: dict[str, dict[str, Any]] = json.loads(
    (CORPUS / "manifest.json").read_text(encoding="utf-8")
)
MEMORY_LIMIT_BYTES = 1536 * 1024 * 1024
EXIT_CODES = {1, 2, 3, 4, 5, 6, 7, 8, 9}


def _limit_memory() -> None:  # runs in the child only
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def greenforge(*commands: list[str], home: Path) -> list[subprocess.CompletedProcess[str]]:
    """Run ``greenforge <command>`` for each command side by side (memory-limited children)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "OPENBLAS_NUM_THREADS": "1",
        "COLUMNS": "200",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "greenforge", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=env,
            cwd=home,
            preexec_fn=_limit_memory,
        )
        for command in commands
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def strict_json(text: str) -> Any:
    """``text`` parsed as JSON, refusing ``NaN`` / ``Infinity`` (which ``json`` accepts)."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"invalid JSON constant {constant!r} in the output")

    return json.loads(text, parse_constant=refuse)


def assert_clean_failure(proc: subprocess.CompletedProcess[str], name: str) -> None:
    assert proc.returncode in EXIT_CODES, (name, proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, (name, proc.stderr[-2000:])
    assert proc.stderr.strip(), name


def test_the_manifest_lists_every_file_of_the_corpus() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.suffix in (".csv", ".gz")}
    assert files == set(MANIFEST)
    assert len(files) >= 40


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_the_python_api_gives_the_expected_result(name: str) -> None:
    expect = MANIFEST[name]
    if expect.get("ok"):
        series = load_csv(CORPUS / name)
        assert len(series) == expect["rows"]
        if "values" in expect:
            assert series.values_g_per_kwh.tolist() == expect["values"]
        if "first_utc" in expect:
            assert utc_iso_seconds(series.start_s) == expect["first_utc"]
        assert all(math.isfinite(v) for v in series.values_g_per_kwh.tolist())
        return
    with pytest.raises(GreenForgeError) as info:
        load_csv(CORPUS / name)
    assert info.value.exit_code == expect["exit_code"]
    assert isinstance(info.value, DataError)
    assert expect["error"] in str(info.value)
    assert name in str(info.value)  # the message names the file


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_the_cli_gives_a_clear_error_or_a_result(name: str, tmp_path: Path) -> None:
    expect = MANIFEST[name]
    path = str(CORPUS / name)
    show, back = greenforge(
        ["grid", "show", "DE", "--file", path, "--json"],
        ["backtest", "--file", path, "--json"],
        home=tmp_path,
    )
    if not expect.get("ok"):
        for proc in (show, back):
            assert proc.returncode == expect["exit_code"], (name, proc.stderr[-2000:])
            assert_clean_failure(proc, name)
            assert expect["error"] in " ".join(proc.stderr.split()), (name, proc.stderr)
        return
    assert show.returncode == 0, (name, show.stderr[-2000:])
    assert len(strict_json(show.stdout)["points"]) == expect["rows"]
    if back.returncode == 0:
        out = strict_json(back.stdout)
        if "saving_note" in expect:
            row = out["results"][0]
            assert row["saving_pct"] is None
            assert expect["saving_note"] in row["saving_note"]
    else:
        assert "saving_note" not in expect, (name, back.stderr)
        assert_clean_failure(back, name)
