"""The sandbox's control stream, read as hostile data (kernel/sandbox/docker.py: OutputReader)."""

import json
import struct

from kernel.sandbox.docker import MAX_CONTROL, OutputReader


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(payload)) + payload


def control(doc: object) -> bytes:
    return frame(9, json.dumps(doc).encode())


def test_output_is_demultiplexed_and_the_exit_code_read() -> None:
    r = OutputReader(keep=4, cap=1000)
    r.feed(frame(1, b"hello") + frame(2, b"oops") + control({"exit": 3}))
    assert bytes(r.kept[1]) == b"hell" and bytes(r.kept[2]) == b"oops" and r.totals == {1: 5, 2: 4}
    assert r.exit_code() == 3 and r.violation is None


def test_frames_split_anywhere_are_read_whole() -> None:
    data = frame(1, b"a" * 100) + control({"exit": 0})
    r = OutputReader(keep=1000, cap=10_000)
    for i in range(len(data)):
        r.feed(data[i : i + 1])
    assert r.totals[1] == 100 and r.exit_code() == 0


def test_control_frames_count_toward_the_output_cap() -> None:
    r = OutputReader(keep=10, cap=10_000)
    for _ in range(100):
        r.feed(control({"ready": 1}))  # the first is the zygote's; the rest break the protocol
        if r.violation:
            break
    assert r.violation is not None
    flood = OutputReader(keep=10, cap=1000)
    flood.feed(frame(1, b"x" * 600) + frame(1, b"x" * 600))
    assert flood.exceeded


def test_hostile_control_frames_are_violations_not_crashes() -> None:
    for payload in (b"[" * 4000, b"not json", json.dumps({"exit": "0"}).encode(), json.dumps({"exit": 2**40}).encode(),
                    json.dumps({"exit": 0, "more": 1}).encode(), json.dumps([1]).encode()):  # fmt: skip
        r = OutputReader(keep=10, cap=10_000)
        r.feed(frame(9, payload))
        assert r.violation is not None and r.exit_code() is None, payload
    big = OutputReader(keep=10, cap=10**9)
    big.feed(struct.pack(">BxxxL", 9, MAX_CONTROL + 1))
    assert big.violation is not None


def test_nothing_after_the_exit_code_is_read() -> None:
    r = OutputReader(keep=100, cap=1000)
    r.feed(control({"exit": 0}) + frame(1, b"late") + control({"exit": 1}))
    r.feed(frame(1, b"x" * 5000))
    assert r.exit_code() == 0 and r.totals[1] == 0 and not r.exceeded
