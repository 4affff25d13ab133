"""Content fingerprints: what they find (partial, shifted, renamed, encoded copies), what they
do not (unrelated content), and that they stay bounded on huge, hostile or binary input."""

import base64
import gzip
import json
import random
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest

from kernel.audit.fingerprint import GUARANTEE, Fingerprinter, kgram_hashes, level_for, winnow

FP = Fingerprinter(max_fingerprints=16384, max_decoded_bytes=8 << 20)


def text(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    words = ["ledger", "scrip", "token", "escrow", "audit", "kernel", "value", "stream", "merge", "index"]
    out, total = [], 0
    while total < size:
        out.append(f"{rng.choice(words)}_{rng.randrange(10**6)} = {rng.random():.6f}\n")
        total += len(out[-1])
    return "".join(out).encode()[:size]


def shared(a: bytes, b: bytes) -> int:
    return len(np.intersect1d(FP.of_bytes(a).fingerprints, FP.of_bytes(b).fingerprints))


def test_any_shared_run_of_the_guaranteed_length_is_found() -> None:
    rng = random.Random(1)
    for trial in range(30):
        secret = text(trial, 4000)
        start = rng.randrange(0, len(secret) - GUARANTEE)
        piece = secret[start : start + GUARANTEE]
        host = rng.randbytes(rng.randrange(0, 500)) + piece + rng.randbytes(rng.randrange(0, 500))
        assert shared(secret, host) >= 1, f"trial {trial}: a {GUARANTEE}-byte copy was missed"


def test_unrelated_content_shares_nothing() -> None:
    assert shared(text(1, 20_000), text(2, 20_000)) == 0
    assert shared(random.Random(3).randbytes(50_000), random.Random(4).randbytes(50_000)) == 0


def test_partial_copy_under_a_new_header_keeps_most_fingerprints() -> None:
    secret = text(5, 10_000)
    copy = b"# my own header, nothing to see\n" + secret[2_000:7_000] + b"\n# trailer\n"
    part = FP.of_bytes(secret[2_000:7_000]).fingerprints
    found = np.intersect1d(FP.of_bytes(secret).fingerprints, FP.of_bytes(copy).fingerprints)
    assert len(found) >= 0.9 * len(part)


@pytest.mark.parametrize(
    "encode",
    [
        gzip.compress,
        base64.b64encode,
        base64.encodebytes,  # wrapped at 76 columns
        lambda b: base64.b64encode(gzip.compress(b)),
        lambda b: json.dumps({"value": b.decode(), "note": 'quoted\n"text"'}).encode(),
        lambda b: b"prefix text then a blob: " + base64.b64encode(b) + b" and more text",
        lambda b: json.dumps({"lines": b.decode().splitlines()}).encode(),
        lambda b: json.dumps(list(b)).encode(),
        lambda b: gzip.compress(b[: len(b) // 2]) + gzip.compress(b[len(b) // 2 :]),
    ],
    ids=[
        "gzip",
        "base64",
        "base64-wrapped",
        "base64-of-gzip",
        "json-string",
        "base64-inside-text",
        "json-lines",
        "json-byte-array",
        "gzip-members",
    ],  # fmt: skip
)
def test_encoded_copies_are_seen_through(encode) -> None:  # type: ignore[no-untyped-def]
    secret = text(7, 6_000)
    plain = FP.of_bytes(secret)
    coded = FP.of_bytes(encode(secret))
    assert coded.encodings, "no decoder applied"
    assert len(np.intersect1d(plain.fingerprints, coded.fingerprints)) >= 0.95 * len(plain.fingerprints)


def test_names_do_not_matter_and_digests_of_prints_are_stable() -> None:
    a, b = FP.of_bytes(text(9, 3_000)), FP.of_bytes(text(9, 3_000))
    assert np.array_equal(a.fingerprints, b.fingerprints) and a.entropy == b.entropy


def test_entropy_tells_dense_bytes_from_text() -> None:
    assert FP.of_bytes(random.Random(1).randbytes(100_000)).entropy > 7.9
    assert FP.of_bytes(text(1, 100_000)).entropy < 5.5


def test_tiny_empty_binary_and_broken_input() -> None:
    assert len(FP.of_bytes(b"").fingerprints) == 0
    assert len(FP.of_bytes(b"x" * 10).fingerprints) == 0  # shorter than one k-gram
    assert len(FP.of_bytes(b"\xff\xfe\x00\x80" * 100).fingerprints) >= 1
    broken_gzip = gzip.compress(text(1, 5_000))[:200] + b"\x00garbage"
    broken = FP.of_bytes(broken_gzip)
    assert broken.encodings == ["gzip"] and broken.content_bytes > len(broken_gzip), "raw kept, readable part decoded"
    assert "json" not in FP.of_bytes(b'{"a": "\xff\xfe not utf-8 ' + b"y" * 100 + b'"}').encodings
    assert len(FP.of_bytes(b"[" * 100_000).fingerprints) >= 1  # deep JSON nesting: raw fingerprints, no crash


def test_json_of_numbers_keeps_its_raw_fingerprints() -> None:
    rng = random.Random(4)
    weights = json.dumps({"w": [rng.random() for _ in range(3000)]}).encode()
    assert len(FP.of_bytes(weights).fingerprints) > 100
    assert shared(weights, b"copied: " + weights[1000:5000]) > 50
    almost_bytes = json.dumps([*text(2, 500), 256]).encode()
    assert len(FP.of_bytes(almost_bytes).fingerprints) > 10


def test_many_gzip_members_cost_bounded_time() -> None:
    import time

    members = gzip.compress(b"") * 100_000  # 2 MB of empty members
    t = time.perf_counter()
    blob = FP.of_bytes(members)
    assert time.perf_counter() - t < 30 and blob.encodings == [] and blob.content_bytes == len(members)
    chunks = [text(i, 200) for i in range(1500)]
    blob = FP.of_bytes(b"".join(gzip.compress(c) for c in chunks))  # past the member cap: decoded in part
    assert blob.encodings == ["gzip"] and blob.content_bytes > 1000 * 200


def test_decompression_bombs_are_bounded() -> None:
    bomb = gzip.compress(b"\0" * (200 << 20), 9)
    fp = Fingerprinter(max_decoded_bytes=4 << 20)
    blob = fp.of_bytes(bomb)
    assert blob.encodings == ["gzip"] and blob.content_bytes <= len(bomb) + (4 << 20)


def test_decoded_views_do_not_break_the_bound() -> None:
    fp = Fingerprinter(max_fingerprints=512)
    blob = fp.of_bytes(gzip.compress(text(5, 2 << 20)))
    assert blob.encodings == ["gzip"] and len(blob.fingerprints) <= 640
    assert np.all(blob.fingerprints & np.uint64((1 << blob.level) - 1) == 0)


def test_huge_streams_are_sampled_and_bounded_in_memory() -> None:
    size = 96 << 20

    def pieces() -> Iterator[bytes]:
        rng = random.Random(11)
        for _ in range(size // (1 << 20)):
            yield rng.randbytes(1 << 20)

    fp = Fingerprinter(max_fingerprints=4096)
    tracemalloc.start()
    blob = fp.of_pieces(pieces(), size)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert blob.level == level_for(size, 4096) > 0
    assert len(blob.fingerprints) < 3 * 4096
    assert peak < 64 << 20, f"peak {peak >> 20} MiB for a {size >> 20} MiB stream"
    assert np.all(blob.fingerprints & np.uint64((1 << blob.level) - 1) == 0)


def test_a_sampled_blob_still_meets_its_copies() -> None:
    big = text(21, 3 << 20)
    sampled = Fingerprinter(max_fingerprints=2048)
    whole, part = sampled.of_bytes(big), sampled.of_bytes(big[1 << 20 : (1 << 20) + 200_000])
    assert whole.level > part.level
    common = np.intersect1d(whole.fingerprints, part.fingerprints)
    expected = part.fingerprints[(part.fingerprints & np.uint64((1 << whole.level) - 1)) == 0]
    assert len(common) >= 0.95 * len(expected) > 0


def test_hashes_and_winnowing_match_a_plain_reference() -> None:
    data = text(3, 2_000)
    hashes = kgram_hashes(data)
    assert len(hashes) == len(data) - 32 + 1
    reference = [min(hashes[i : i + 32]) for i in range(len(hashes) - 32 + 1)]
    assert winnow(hashes).tolist() == [int(x) for x in reference]
