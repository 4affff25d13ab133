"""The CLI against the real engine: invoke prints a JSON RunResult; a failed run exits 1."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.service.spawn import Daemon
from tests.conftest import PackageFactory

pytestmark = pytest.mark.docker


KERNEL = str(Path(sys.executable).parent / "kernel")  # the console script: through a daemon when one serves


def kernel(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")}
    env["KERNEL_HOME"] = str(home)
    return subprocess.run([KERNEL, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(params=["in-process", "daemon"])
def served(request: pytest.FixtureRequest, tmp_path: Path, docker_image: str) -> Iterator[Path]:
    """A home the CLI works on in its own process, or through `kernel serve` (the same answers)."""
    home = tmp_path / "home"
    if request.param == "in-process":
        yield home
        return
    with Daemon(home):
        yield home


def test_invoke_json_and_exit_codes(served: Path, make_pkg: PackageFactory) -> None:
    home = served
    assert kernel(home, "principal", "create", "alice", "--grant", "10").returncode == 0
    ok_pkg = make_pkg("def main(v):\n    return {'double': v * 2}\n", price=1)
    art = json.loads(kernel(home, "submit", str(ok_pkg), "--as", "alice", "--json").stdout)["artifact"]["id"]
    done = kernel(home, "invoke", art[:10], "--as", "alice", "--input", "21", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "ok" and doc["output"] == {"double": 42} and doc["usage"]["cpu_seconds"] > 0
    shown = json.loads(kernel(home, "show", doc["id"], "--json").stdout)
    late = ("state", "usage")  # through the daemon the answer may come while the run's audit is written
    assert {k: v for k, v in shown.items() if k not in late} == {k: v for k, v in doc.items() if k not in late}
    assert json.loads(kernel(home, "runs", "--json").stdout)[0]["id"] == doc["id"]

    bad_pkg = make_pkg("def main(v):\n    raise KeyError('gone')\n")
    bad = json.loads(kernel(home, "submit", str(bad_pkg), "--as", "alice", "--json").stdout)["artifact"]["id"]
    failed = kernel(home, "invoke", bad, "--as", "alice")
    assert failed.returncode == 1 and "status error" in failed.stdout and "KeyError" in failed.stdout
    assert "Traceback" not in failed.stderr
    doctor = json.loads(kernel(home, "doctor", "--json").stdout)
    assert doctor["image"]["built"] and "runc" in doctor["engine"]["runtimes"]
