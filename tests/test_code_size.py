"""The code stays easy to enter: no class over 250 lines and no function over 60 in the package
and the app (docstrings and comments count)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {ast.ClassDef: 250, ast.FunctionDef: 60, ast.AsyncFunctionDef: 60}


def oversized(path: Path, root: Path = ROOT) -> list[str]:
    """'file:line name (N lines, limit L)' for each class or function of ``path`` over its limit
    (the file named relative to ``root``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        limit = LIMITS.get(type(node))
        if limit and (length := node.end_lineno - node.lineno + 1) > limit:
            found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines, limit {limit})")
    return found


def test_no_class_or_function_is_oversized():
    files = sorted((ROOT / "seqgan_music").rglob("*.py")) + [ROOT / "app.py"]
    offenders = [line for path in files for line in oversized(path)]
    assert not offenders, "\n".join(offenders)


def test_the_check_sees_an_oversized_function_and_class(tmp_path):
    long = tmp_path / "long.py"
    long.write_text("def f():\n" + "    x = 1\n" * 60 + "class C:\n" + "    y = 2\n" * 250 + "def g():\n    pass\n")
    assert oversized(long, tmp_path) == ["long.py:1 f (61 lines, limit 60)", "long.py:62 C (251 lines, limit 250)"]
