"""The Mint's example tasks (examples/tasks/): well-formed, each suite passes its reference and fails a stub.

No Docker: each suite runs in a plain pytest subprocess against a module built the way the builder agents
build one (the used tasks' solutions, recursively and each once, then the task's own solution).
"""

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

TASKS_DIR = Path(__file__).resolve().parent.parent / "examples" / "tasks"
NAME_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
FIELDS = {"name", "kind", "reward", "target", "function", "signature", "description", "uses"}
KINDS = {"code", "tests"}
MIN_REWARD, MAX_REWARD = 8, 40
MIN_TESTS, MAX_TESTS = 4, 8


def _load_tasks() -> dict[str, dict[str, Any]]:
    tasks = {}
    for path in sorted(TASKS_DIR.iterdir()):
        if path.is_dir():
            with open(path / "task.toml", "rb") as f:
                tasks[path.name] = tomllib.load(f)
    return tasks


TASKS = _load_tasks()
NAMES = sorted(TASKS)


def _closure(name: str) -> list[str]:
    """The tasks whose solutions make up ``name``'s module, in build order: uses first (depth-first), each once."""
    order: list[str] = []

    def visit(n: str, path: tuple[str, ...]) -> None:
        assert n not in path, f"cycle in uses: {' -> '.join((*path, n))}"
        if n in order:
            return
        for used in TASKS[n]["uses"]:
            visit(used, (*path, n))
        order.append(n)

    visit(name, ())
    return order


def _suite_file(name: str) -> Path:
    return TASKS_DIR / name / "suite" / f"test_{TASKS[name]['target']}.py"


def _imported_modules(tree: ast.Module) -> set[str]:
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, "relative import"
            mods.add(node.module.split(".")[0])
    return mods


def test_there_are_tasks_of_both_kinds():
    assert len(TASKS) >= 25
    kinds = [t["kind"] for t in TASKS.values()]
    assert kinds.count("code") >= 15 and kinds.count("tests") >= 8
    assert sum(bool(t["uses"]) for t in TASKS.values()) >= 5
    assert max(len(_closure(n)) for n in NAMES) >= 3


def test_functions_are_unique():
    functions = [t["function"] for t in TASKS.values()]
    assert len(set(functions)) == len(functions)


@pytest.mark.parametrize("name", NAMES)
def test_task_toml(name):
    task = TASKS[name]
    assert set(task) == FIELDS
    assert NAME_RE.fullmatch(name) and task["name"] == name
    assert task["kind"] in KINDS
    assert type(task["reward"]) is int and MIN_REWARD <= task["reward"] <= MAX_REWARD
    for key in ("target", "function", "signature", "description"):
        assert isinstance(task[key], str) and task[key].strip(), key
    assert task["target"].isidentifier() and task["function"].isidentifier()
    assert task["signature"].startswith(task["function"] + "(")
    uses = task["uses"]
    assert isinstance(uses, list) and all(isinstance(u, str) for u in uses)
    assert len(set(uses)) == len(uses) and name not in uses
    assert all(u in TASKS for u in uses), f"unknown task in uses: {uses}"
    _closure(name)  # asserts there is no cycle


@pytest.mark.parametrize("name", NAMES)
def test_suite_manifest(name):
    task = TASKS[name]
    with open(TASKS_DIR / name / "suite" / "pyproject.toml", "rb") as f:
        manifest = tomllib.load(f)
    assert manifest["project"]["name"] == f"task-{name}-suite"
    assert isinstance(manifest["project"]["version"], str)
    assert manifest["tool"]["kernel"] == {"kind": "tests", "target": task["target"]}
    files = sorted(p.name for p in (TASKS_DIR / name / "suite").iterdir() if p.name != "__pycache__")
    assert files == sorted(["pyproject.toml", _suite_file(name).name])

    tree = ast.parse(_suite_file(name).read_text(encoding="utf-8"))
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == task["target"]]
    assert [[a.name for a in n.names] for n in imports] == [[task["function"]]]
    assert _imported_modules(tree) <= set(sys.stdlib_module_names) | {task["target"]}
    tests = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
    assert MIN_TESTS <= len(tests) <= MAX_TESTS
    assert all(not t.args.args and not t.decorator_list for t in tests), "plain test functions only"


@pytest.mark.parametrize("name", NAMES)
def test_solution_shape(name):
    """One function, stdlib imports only; used functions are called, never defined or imported."""
    task = TASKS[name]
    tree = ast.parse((TASKS_DIR / name / "solution.py").read_text(encoding="utf-8"))
    defs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    assert defs == [task["function"]]
    for node in tree.body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        assert docstring or isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef), ast.dump(node)
    assert _imported_modules(tree) <= set(sys.stdlib_module_names)
    bound = {
        alias.asname or alias.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for alias in n.names
    }
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    for used in task["uses"]:
        fn = TASKS[used]["function"]
        assert fn not in bound, f"{fn} is imported"
        assert fn in called, f"{fn} (from uses) is never called"


def _build(name: str) -> str:
    sources = [(TASKS_DIR / n / "solution.py").read_text(encoding="utf-8").strip() + "\n" for n in _closure(name)]
    return "\n\n".join(sources)


def _start_suite(name: str, module_source: str, where: Path) -> subprocess.Popen[str]:
    where.mkdir(parents=True)
    (where / f"{TASKS[name]['target']}.py").write_text(module_source, encoding="utf-8")
    suite = _suite_file(name)
    (where / suite.name).write_text(suite.read_text(encoding="utf-8"), encoding="utf-8")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(where)],
        cwd=where,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )


@pytest.mark.parametrize("name", NAMES)
def test_suite_passes_reference_and_fails_stub(name, tmp_path):
    function = TASKS[name]["function"]
    stub = f"def {function}(*a, **k):\n    return None\n"
    good = _start_suite(name, _build(name), tmp_path / "good")
    bad = _start_suite(name, stub, tmp_path / "bad")
    good_out, _ = good.communicate(timeout=60)
    bad_out, _ = bad.communicate(timeout=60)

    n_tests = sum(
        isinstance(n, ast.FunctionDef) and n.name.startswith("test")
        for n in ast.parse(_suite_file(name).read_text(encoding="utf-8")).body
    )
    assert good.returncode == 0, good_out
    assert f"{n_tests} passed" in good_out, good_out
    # 1: tests ran and some failed (not 5, nothing collected; not 2, a collection error).
    assert bad.returncode == 1, bad_out
    assert " failed" in bad_out, bad_out
