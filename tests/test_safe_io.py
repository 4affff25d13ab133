"""Reading what a sandbox left: links, FIFOs, devices and oversized files are refused, never followed."""

import os
import threading
from pathlib import Path

import pytest

from kernel.runs import read_result
from kernel.safe_io import Unreadable, read_capped


def test_plain_file(tmp_path: Path) -> None:
    (tmp_path / "r").write_bytes(b'{"ok": true, "value": 1}')
    assert read_capped(tmp_path / "r", 100) == b'{"ok": true, "value": 1}'
    assert read_capped(tmp_path / "missing", 100) is None


@pytest.mark.parametrize("make", ["symlink_dev_zero", "symlink_host_file", "fifo", "oversized"])
def test_hostile_result_files(tmp_path: Path, make: str) -> None:
    path = tmp_path / "result.json"
    if make == "symlink_dev_zero":
        path.symlink_to("/dev/zero")
    elif make == "symlink_host_file":
        secret = tmp_path / "host-secret.json"
        secret.write_text('{"ok": true, "value": "root-only secret"}')
        path.symlink_to(secret)
    elif make == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(b"x" * 2000)
    done = threading.Event()
    outcome: list[object] = []

    def read() -> None:
        outcome.append(read_result(path, 1000))
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(5), "the kernel blocked on a file the sandbox left"
    (result,) = outcome
    value, _ = result  # type: ignore[misc]
    assert not (value or {}).get("ok"), "a link or special file must never yield a value"
    with pytest.raises(Unreadable):
        read_capped(path, 1000)
