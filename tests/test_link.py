"""The host's side of a judgement: the relay between the two sandboxes, the report socket,
and the canary's name."""

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest

from judiciary.link import Relay, ReportSink
from judiciary.runner import canary_name, write_canary

OPEN: list[socket.socket] = []


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    OPEN.append(sock)
    sock.connect(str(path))
    sock.settimeout(5)
    return sock


@pytest.fixture(autouse=True)
def close_clients():  # type: ignore[no-untyped-def]
    yield
    while OPEN:
        OPEN.pop().close()


@pytest.fixture
def relay(tmp_path: Path):  # type: ignore[no-untyped-def]
    r = Relay(tmp_path / "suite.sock", tmp_path / "deliverable.sock", 10001, 10002)
    r.start()
    yield r
    r.close()


def test_relay_pumps_both_ways_and_counts(relay: Relay) -> None:
    suite, deliverable = connect(relay.paths[0]), connect(relay.paths[1])
    suite.sendall(b"ping" * 1000)
    got = b""
    while len(got) < 4000:
        got += deliverable.recv(65536)
    deliverable.sendall(b"pong")
    assert got == b"ping" * 1000 and suite.recv(10) == b"pong"
    deadline = time.monotonic() + 5
    while relay.bytes["to_suite"] < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert relay.bytes == {"to_deliverable": 4000, "to_suite": 4}


def test_a_side_that_hangs_up_hangs_up_the_other(relay: Relay) -> None:
    suite, deliverable = connect(relay.paths[0]), connect(relay.paths[1])
    deliverable.close()  # the deliverable's process died
    assert suite.recv(10) == b""  # the suite learns at once, not after its timeout


def test_one_connection_per_side(relay: Relay) -> None:
    connect(relay.paths[0])
    connect(relay.paths[1])
    time.sleep(0.1)
    with pytest.raises(OSError):  # the listeners are closed: nobody else joins the link
        connect(relay.paths[1])


def test_close_unblocks_and_is_idempotent(tmp_path: Path) -> None:
    r = Relay(tmp_path / "a.sock", tmp_path / "b.sock", 10001, 10002)
    r.start()
    suite, deliverable = connect(r.paths[0]), connect(r.paths[1])
    stop = threading.Event()

    def flood() -> None:  # the deliverable never reads: the relay blocks sending to it
        while not stop.is_set():
            try:
                suite.sendall(b"x" * 65536)
            except OSError:
                return

    threading.Thread(target=flood, daemon=True).start()
    time.sleep(0.3)
    started = time.monotonic()
    r.close()
    r.close()
    stop.set()
    assert time.monotonic() - started < 5
    assert not r.paths[0].exists() and not r.paths[1].exists()
    deliverable.close()
    suite.close()


def test_close_before_anyone_connects(tmp_path: Path) -> None:
    r = Relay(tmp_path / "a.sock", tmp_path / "b.sock", 10001, 10002)
    r.start()
    started = time.monotonic()
    r.close()
    assert time.monotonic() - started < 2


def test_report_sink_keeps_the_first_connection_only(tmp_path: Path) -> None:
    sink = ReportSink(tmp_path / "report.sock", 10001, cap=1000)
    sink.start()
    first = connect(sink.path)
    first.sendall(b'{"tests": {}}')
    time.sleep(0.1)
    with pytest.raises(OSError):
        connect(sink.path).sendall(b'{"forged": true}')
    first.close()
    sink.close()
    assert sink.data() == b'{"tests": {}}' and not sink.over_cap


def test_report_sink_reads_what_arrived_before_close(tmp_path: Path) -> None:
    sink = ReportSink(tmp_path / "report.sock", 10001, cap=10_000)
    sink.start()
    with connect(sink.path) as conn:
        conn.sendall(b"x" * 5000)
    sink.close()  # right after the launcher exited: nothing it sent is lost
    assert sink.data() == b"x" * 5000


def test_report_sink_caps(tmp_path: Path) -> None:
    sink = ReportSink(tmp_path / "report.sock", 10001, cap=100)
    sink.start()
    with connect(sink.path) as conn, contextlib.suppress(OSError):  # the sink stops reading at the cap
        conn.sendall(b"x" * 100_000)
    sink.close()
    assert sink.over_cap and len(sink.data()) <= 100 + 65536


def test_canary_looks_like_the_suites_own(tmp_path: Path) -> None:
    files = ["pyproject.toml", "test_sorter.py", "test_sorter_edge.py"]
    expected = ["test_sorter.py::test_a", "test_sorter_edge.py::test_b"]
    names = {canary_name(files, expected) for _ in range(50)}
    for nodeid in names:
        filename, _, func = nodeid.partition("::")
        assert filename.startswith("test_sorter_") and filename.endswith(".py")
        assert filename not in files and func.startswith("test_") and func.isidentifier()
    assert len(names) > 5
    nodeid = next(iter(names))
    write_canary(tmp_path, nodeid, "pkg.sorter")
    source = (tmp_path / nodeid.partition("::")[0]).read_text()
    assert source.startswith("import pkg.sorter\n") and f"def {nodeid.partition('::')[2]}():" in source
