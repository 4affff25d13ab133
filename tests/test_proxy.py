"""The proxy server over a real Unix socket on the host: framing, validation, limits."""

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel.proxy import BalanceCall, ProxyServer, Refusal, TransferCall


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.refusals: list[tuple[str, str]] = []

    def dispatch(self, call: Any) -> Any:
        self.calls.append(call)
        if isinstance(call, TransferCall) and call.args.amount > 10:
            raise Refusal("insufficient_funds", "only 10 scrip")
        return 42 if isinstance(call, BalanceCall) else "done"

    def refused(self, op: str, code: str, message: str, size: int) -> None:
        self.refusals.append((op, code))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ProxyServer, Recorder, Path]]:
    rec = Recorder()
    path = tmp_path / "k.sock"
    srv = ProxyServer(path, rec.dispatch, rec.refused, max_message=1024, max_calls=5, max_connections=2)
    srv.start()
    yield srv, rec, path
    srv.close(wait=2)
    assert not path.exists()


def connect(path: Path) -> tuple[socket.socket, Any]:
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(path))
    return s, s.makefile("rwb")


def ask(f: Any, message: bytes) -> dict[str, Any] | None:
    f.write(message)
    f.flush()
    line = f.readline()
    return json.loads(line) if line else None


def test_round_trip_and_typed_refusal(server: tuple[ProxyServer, Recorder, Path]) -> None:
    srv, rec, path = server
    s, f = connect(path)
    assert ask(f, b'{"op": "balance", "args": {}}\n') == {"ok": True, "value": 42}
    assert ask(f, b'{"op": "transfer", "args": {"to": "bob", "amount": 11}}\n') == {
        "ok": False, "code": "insufficient_funds", "error": "only 10 scrip"
    }  # fmt: skip
    assert rec.refusals == [("transfer", "insufficient_funds")]
    assert srv.calls == 3 and srv.bytes_in > 0 and srv.bytes_out > 0  # the connection counts as a call
    f.close()
    s.close()


@pytest.mark.parametrize(
    "message, code",
    [
        (b"this is not json\n", "invalid"),
        (b'{"op": "balance", "args": {}, "principal": "alice"}\n', "invalid"),  # identity is the socket
        (b'{"op": "balance", "args": {"as": "alice"}}\n', "invalid"),
        (b'{"op": "transfer", "args": {"to": "bob", "amount": "5"}}\n', "invalid"),
        (b'{"op": "transfer", "args": {"to": "bob", "amount": -5}}\n', "invalid"),
        (b'{"op": "format_disk", "args": {}}\n', "invalid"),
        (b'{"op": "balance", "args": {}, "pad": "' + b"x" * 2000 + b'"}\n', "too_large"),
    ],
)
def test_bad_messages_close_the_connection_not_the_server(
    server: tuple[ProxyServer, Recorder, Path], message: bytes, code: str
) -> None:
    srv, rec, path = server
    s, f = connect(path)
    answer = ask(f, message)
    assert answer is not None and answer["ok"] is False and answer["code"] == code
    assert f.readline() == b""  # closed
    assert rec.calls == [] and rec.refusals == [("message", code)]
    s2, f2 = connect(path)  # the server still serves
    assert ask(f2, b'{"op": "balance", "args": {}}\n') == {"ok": True, "value": 42}
    for x in (f, s, f2, s2):
        x.close()


def test_a_huge_message_is_cut_off_without_reading_it_all(server: tuple[ProxyServer, Recorder, Path]) -> None:
    _, rec, path = server
    s, f = connect(path)
    sent = 0
    with pytest.raises(OSError):  # the server hangs up long before 1 GB
        while sent < 2**30:
            s.sendall(b"x" * 65536)
            sent += 65536
    assert sent < 64 * 2**20
    assert rec.refusals == [("message", "too_large")]
    f.close()
    s.close()


def test_call_quota(server: tuple[ProxyServer, Recorder, Path]) -> None:
    _, rec, path = server
    s, f = connect(path)  # call 1: the connection itself
    answers = [ask(f, b'{"op": "balance", "args": {}}\n') for _ in range(5)]
    assert [a["ok"] for a in answers[:4] if a] == [True] * 4
    assert answers[4] is not None and answers[4]["code"] == "limit"
    f.close()
    s.close()


def test_connect_loops_hit_the_quota_and_leave_no_threads(server: tuple[ProxyServer, Recorder, Path]) -> None:
    srv, _, path = server
    for _ in range(5):  # five connections use up the quota of five calls
        s, f = connect(path)
        f.close()
        s.close()
    s, f = connect(path)
    assert json.loads(f.readline())["code"] == "limit"
    f.close()
    s.close()
    time.sleep(0.2)
    assert len([t for t in srv.threads if t.is_alive()]) <= 2  # the accept loop, at most one more


def test_connection_limit(server: tuple[ProxyServer, Recorder, Path]) -> None:
    _, _, path = server
    held = [connect(path) for _ in range(2)]
    for _, f in held:  # make sure both were accepted
        assert ask(f, b'{"op": "balance", "args": {}}\n') is not None
    s, f = connect(path)
    assert json.loads(f.readline())["code"] == "limit"
    for sock, fh in [*held, (s, f)]:
        fh.close()
        sock.close()


def test_close_waits_for_a_call_in_progress(tmp_path: Path) -> None:
    release = threading.Event()

    def slow(call: Any) -> Any:
        release.wait(5)
        return "late"

    srv = ProxyServer(tmp_path / "k.sock", slow, lambda *a: None, max_message=100, max_calls=5, max_connections=1)
    srv.start()
    s, f = connect(tmp_path / "k.sock")
    f.write(b'{"op": "balance", "args": {}}\n')
    f.flush()
    threading.Timer(0.3, release.set).start()
    srv.close(wait=5)
    assert all(not t.is_alive() for t in srv.threads)
    f.close()
    s.close()
