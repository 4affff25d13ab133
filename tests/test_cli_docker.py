"""The CLI against the real engine: invoke prints a JSON RunResult; a failed run exits 1."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PackageFactory

pytestmark = pytest.mark.docker


def kernel(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERNEL_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "kernel.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_invoke_json_and_exit_codes(tmp_path: Path, make_pkg: PackageFactory, docker_image: str) -> None:
    home = tmp_path / "home"
    assert kernel(home, "principal", "create", "alice", "--grant", "10").returncode == 0
    ok_pkg = make_pkg("def main(v):\n    return {'double': v * 2}\n", price=1)
    art = json.loads(kernel(home, "submit", str(ok_pkg), "--as", "alice", "--json").stdout)["artifact"]["id"]
    done = kernel(home, "invoke", art[:10], "--as", "alice", "--input", "21", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "ok" and doc["output"] == {"double": 42} and doc["usage"]["cpu_seconds"] > 0
    shown = json.loads(kernel(home, "show", doc["id"], "--json").stdout)
    assert shown == doc
    assert json.loads(kernel(home, "runs", "--json").stdout)[0]["id"] == doc["id"]

    bad_pkg = make_pkg("def main(v):\n    raise KeyError('gone')\n")
    bad = json.loads(kernel(home, "submit", str(bad_pkg), "--as", "alice", "--json").stdout)["artifact"]["id"]
    failed = kernel(home, "invoke", bad, "--as", "alice")
    assert failed.returncode == 1 and "status error" in failed.stdout and "KeyError" in failed.stdout
    assert "Traceback" not in failed.stderr
    doctor = json.loads(kernel(home, "doctor", "--json").stdout)
    assert doctor["image"]["built"] and "runc" in doctor["engine"]["runtimes"]
