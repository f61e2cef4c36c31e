"""README and docs examples run, so they never rot.

In each Markdown file, fenced ``python`` blocks are executed in order in one namespace (so later
examples may build on earlier ones), and ``console`` blocks have every line that starts with
``$ greenforge `` run through the CLI, which must exit 0. ``text`` and ``bash`` blocks are not run
(the README's two set-up commands are what CI itself runs).
"""

from __future__ import annotations

import re
import shlex
import sys
import types
from pathlib import Path

import pytest

from greenforge.cli.app import main

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(path: Path) -> list[tuple[str, str, int]]:
    text = path.read_text(encoding="utf-8")
    return [
        (m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)
    ]


def test_docs_exist() -> None:
    assert (REPO / "README.md").is_file()
    assert any(kind in {"python", "console"} for doc in DOCS for kind, _, _ in blocks(doc))


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_examples_run(
    doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_data: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GREENFORGE_SHARED_DATA", str(shared_data))
    module = types.ModuleType(f"_docs_{doc.stem.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    for kind, code, line in blocks(doc):
        where = f"{doc.name}:{line}"
        if kind == "python":
            exec(compile(code, where, "exec", dont_inherit=True), namespace)
        elif kind == "console":
            for cmd in code.splitlines():
                if cmd.startswith("$ greenforge "):
                    argv = shlex.split(cmd[len("$ greenforge ") :])
                    code_ = main(argv)
                    assert code_ == 0, f"{where}: `{cmd}` exited {code_}"
