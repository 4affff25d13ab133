"""The audit writer, queries, export, and the workspace watcher's incompleteness signals."""

import csv
import io
import json
import os
import time
from pathlib import Path

import pytest

from kernel.api import Kernel
from kernel.audit.files import OverflowAwareEmitter, WorkspaceWatcher, walk
from kernel.audit.log import AuditWriter, list_events
from kernel.db import Database
from tests.conftest import PackageFactory


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "k.db")


def test_writer_batches_and_flushes(db: Database, tmp_path: Path) -> None:
    writer = AuditWriter(tmp_path / "k.db", batch=7)
    for i in range(100):
        writer.record("r1", "alice", "proxy", "read_artifact", path=f"f{i}", size=i, digest="d" * 64)
    writer.flush()
    events = list_events(db, limit=None)
    assert [e.path for e in events] == [f"f{i}" for i in range(100)]
    assert events[5].bytes == 5 and events[5].source == "proxy" and events[5].ok
    writer.close()


def test_query_filters_and_export(fake_kernel: Kernel, make_pkg: PackageFactory) -> None:
    k = fake_kernel
    art = k.submit(make_pkg("def main(v):\n    return v\n"), "alice").artifact.id
    with k.db.transaction() as conn:
        for rid, who in (("aaaaaaaa01", "alice"), ("bbbbbbbb02", "bob")):
            conn.execute(
                "INSERT INTO runs (id, artifact_id, principal, state, owner_process, started_at)"
                " VALUES (?, ?, ?, 'done', '1:1', '2026-01-01T00:00:00')",
                (rid, art, who),
            )
    k.audit.record("aaaaaaaa01", "alice", "file", "written", path="a,b.txt", size=3, digest="ab")
    k.audit.record("bbbbbbbb02", "bob", "kernel", "copy_in", path="/kernel/in/input.json", size=2)
    k.audit.flush()
    assert [e.path for e in k.events(run_id="aaaaaa")] == ["a,b.txt"]
    assert [e.op for e in k.events(principal="bob")] == ["copy_in"]
    lines = "".join(k.export_events("jsonl")).splitlines()
    assert [json.loads(x)["op"] for x in lines] == ["written", "copy_in"]
    rows = list(csv.DictReader(io.StringIO("".join(k.export_events("csv")))))
    assert rows[0]["path"] == "a,b.txt" and rows[1]["principal"] == "bob"


def test_watcher_records_and_signals_overflow(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    w = WorkspaceWatcher(tmp_path, lambda op, path, detail: seen.append((op, path)), max_events=1000)
    w.start()
    (tmp_path / "a.txt").write_text("hi")
    time.sleep(0.3)
    emitter = next(iter(w.observer.emitters))
    assert isinstance(emitter, OverflowAwareEmitter)
    emitter.on_queue_overflow()  # what inotify's IN_Q_OVERFLOW triggers
    problems = w.stop()
    assert ("created", "a.txt") in seen and ("closed", "a.txt") in seen
    assert problems == ["the inotify queue overflowed; some file events were lost"]
    assert w.stop() == problems  # idempotent


def test_watcher_caps_events(tmp_path: Path) -> None:
    w = WorkspaceWatcher(tmp_path, lambda *a: None, max_events=5)
    w.start()
    for i in range(20):
        (tmp_path / f"f{i}").write_text("x")
    time.sleep(0.3)
    assert w.stop() == ["more than 5 file events; the rest were not recorded"]


def test_unwatchable_folder_is_incomplete(tmp_path: Path) -> None:
    w = WorkspaceWatcher(tmp_path / "missing", lambda *a: None, max_events=5)
    w.start()
    assert w.stop()[0].startswith("could not watch the workspace")


def test_walk_lists_regular_files_only(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.bin").write_bytes(b"abc")
    os.symlink("/etc/passwd", tmp_path / "link")
    assert list(walk(tmp_path)) == [("d/x.bin", tmp_path / "d" / "x.bin")]
