"""Content fingerprints: winnowed k-gram hashes, streamed, bounded in memory, seen through encodings.

A blob is cut into every K-byte substring (k-gram); each k-gram is hashed, and in every
window of W consecutive hashes the smallest is kept (winnowing, Schleimer et al. 2003).
Two blobs that share any run of at least K + W - 1 bytes share a fingerprint, wherever
the run sits in either of them: a partial copy, a copy under a new header or a file
split in two is still found, and the fingerprints of a blob do not depend on its name.

Work is done a segment at a time with numpy, so memory stays bounded whatever the
size. A large blob keeps only the fingerprints whose low ``level`` bits are zero, so it
stores at most about ``max_fingerprints``; the selection is the same for every blob, so
a sampled blob still meets its copies.

The content is also seen through the encodings a copier would use to hide it: gzip,
base64 (whole blobs or long runs inside text) and JSON strings (run inputs and outputs).
Decoded bytes are bounded, and decoding nests at most ``MAX_DEPTH`` deep.
"""

import base64
import binascii
import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

K = 32  # bytes in a k-gram
W = 32  # hashes in a winnowing window: every shared run of K + W - 1 = 63 bytes is found
GUARANTEE = K + W - 1
SEGMENT = 1 << 20  # bytes hashed at a time
MAX_DEPTH = 2  # encodings inside encodings (base64 of gzip) are followed this deep
TEXT_SCAN_BYTES = 16 << 20  # base64 runs are looked for inside text blobs up to this size
JSON_BYTES = 8 << 20  # JSON documents up to this size have their strings read
BASE64_RUN = re.compile(rb"(?:[A-Za-z0-9+/]{4}[\r\n]?){24,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")

HEX_ID = re.compile(r"[0-9a-f]{16,64}")
U64 = npt.NDArray[np.uint64]
_BASE = np.uint64(0x100000001B3)  # odd, so every power is invertible modulo 2**64
_TABLE = np.random.default_rng(0x6B65726E656C).integers(1, 2**63, size=256, dtype=np.uint64)
_INVERSE = np.uint64(pow(int(_BASE), -1, 2**64))
_POWER_CACHE: dict[str, U64] = {}


def _powers(n: int) -> tuple[U64, U64]:
    """B**i and B**-i for i < n, modulo 2**64 (computed once for the largest n seen)."""
    if len(_POWER_CACHE.get("up", ())) < n:
        size = max(n, SEGMENT + GUARANTEE)
        with np.errstate(over="ignore"):
            up = np.full(size, _BASE, dtype=np.uint64)
            up[0] = 1
            down = np.full(size, _INVERSE, dtype=np.uint64)
            down[0] = 1
            _POWER_CACHE["up"] = np.cumprod(up, dtype=np.uint64)
            _POWER_CACHE["down"] = np.cumprod(down, dtype=np.uint64)
    return _POWER_CACHE["up"][:n], _POWER_CACHE["down"][:n]


def _mix(h: U64) -> U64:
    """Spread the bits (a 64-bit finaliser), so the low bits can be used for sampling."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def kgram_hashes(data: bytes) -> U64:
    """The hash of every K-byte substring of ``data`` (none if it is shorter).

    A polynomial hash from prefix sums: sum(T[b_j] * B**j) over a window, brought back to
    the window's start by B**-i; all arithmetic wraps modulo 2**64.
    """
    n = len(data) - K + 1
    if n <= 0:
        return np.empty(0, dtype=np.uint64)
    up, down = _powers(len(data))
    with np.errstate(over="ignore"):
        prefix = np.zeros(len(data) + 1, dtype=np.uint64)
        np.cumsum(_TABLE[np.frombuffer(data, dtype=np.uint8)] * up, dtype=np.uint64, out=prefix[1:])
        return _mix((prefix[K:] - prefix[:n]) * down[:n])


def winnow(hashes: U64) -> U64:
    """The minimum of every window of W consecutive hashes (all of them if fewer than W)."""
    n = len(hashes)
    if n == 0:
        return hashes
    if n <= W:
        return np.array([hashes.min()], dtype=np.uint64)
    # van Herk / Gil-Werman: prefix and suffix minima inside blocks of W give every window's minimum.
    blocks = -(-n // W)
    padded = np.full(blocks * W, np.iinfo(np.uint64).max, dtype=np.uint64)
    padded[:n] = hashes
    grid = padded.reshape(blocks, W)
    prefix = np.minimum.accumulate(grid, axis=1).ravel()
    suffix = np.minimum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].ravel()
    windows = n - W + 1
    return np.minimum(suffix[:windows], prefix[W - 1 : W - 1 + windows])


@dataclass
class BlobPrint:
    """What the auditor keeps of one blob."""

    size: int
    level: int
    fingerprints: U64  # unique, sorted
    entropy: float  # bits per byte of the raw bytes (8.0 for random or encrypted)
    encodings: list[str] = field(default_factory=list)  # what was decoded to find more
    content_bytes: int = 0  # raw plus decoded bytes fingerprinted

    @property
    def span(self) -> float:
        """Bytes of content per kept fingerprint: what one shared fingerprint stands for."""
        return self.content_bytes / len(self.fingerprints) if len(self.fingerprints) else 0.0


def level_for(size: int, max_fingerprints: int) -> int:
    """How many low bits must be zero for a blob of ``size`` to keep about ``max_fingerprints``."""
    expected = size * 2 / (W + 1)
    return max(0, math.ceil(math.log2(expected / max_fingerprints))) if expected > max_fingerprints else 0


class _Stream:
    """Winnowing over a stream of pieces: carries the last K + W - 2 bytes between segments."""

    def __init__(self, level: int):
        self.mask = np.uint64((1 << level) - 1)
        self.kept: list[U64] = []
        self.tail = b""
        self.bytes = 0
        self.pending = bytearray()

    def feed(self, piece: bytes) -> None:
        self.bytes += len(piece)
        self.pending += piece
        while len(self.pending) >= SEGMENT:
            self._segment(bytes(self.pending[:SEGMENT]))
            del self.pending[:SEGMENT]

    def _segment(self, data: bytes) -> None:
        window = self.tail + data
        minima = winnow(kgram_hashes(window))
        if len(minima) > 1:  # a window's minimum usually stays the minimum of the next ones
            minima = minima[np.concatenate(([True], minima[1:] != minima[:-1]))]
        if self.mask:
            minima = minima[(minima & self.mask) == 0]
        self.kept.append(np.unique(minima))
        self.tail = window[-(GUARANTEE - 1) :]

    def finish(self) -> U64:
        if self.pending or not self.kept:
            self._segment(bytes(self.pending))
            self.pending.clear()
        return np.unique(np.concatenate(self.kept)) if self.kept else np.empty(0, dtype=np.uint64)


def _entropy(counts: npt.NDArray[np.int64]) -> float:
    total = int(counts.sum())
    if total == 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


MAX_MEMBERS = 1000  # gzip members decoded per blob (empty members cost time, not budget)


def _gunzip(data: bytes, budget: int) -> tuple[list[bytes], bool]:
    """The decompressed bytes of a gzip blob (every member), at most ``budget`` of them, in
    pieces; and whether the whole blob decompressed. Input is fed 4 KiB at a time, so the
    content before damage is kept; damage, trailing bytes or too many members mean False
    (the raw fingerprints are then kept as well)."""
    out: list[bytes] = []
    view = memoryview(data)
    offset = 0
    for _ in range(MAX_MEMBERS):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pos = offset
        while pos < len(data) and budget > 0 and not inflater.eof:
            buf: bytes | memoryview = view[pos : pos + 4096]
            pos += len(buf)
            while buf and budget > 0 and not inflater.eof:
                before = inflater.copy()
                try:
                    piece = inflater.decompress(buf, min(budget, SEGMENT))
                except zlib.error:
                    out += _salvage(before, bytes(buf), budget)
                    return out, False
                budget -= len(piece)
                if piece:
                    out.append(piece)
                buf = inflater.unconsumed_tail
        if not inflater.eof:
            return out, budget <= 0
        offset = pos - len(inflater.unused_data)
        if offset >= len(data) or budget <= 0:
            return out, True
        if data[offset : offset + 2] != b"\x1f\x8b":
            return out, not data[offset:].strip(b"\0")  # trailing zeros are padding; anything else is not gzip
    return out, False


_BASE64_BYTES = np.zeros(256, dtype=bool)
_BASE64_BYTES[list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\r\n")] = True


def _base64_runs(text: bytes) -> Iterator["re.Match[bytes]"]:
    """Long base64 runs in ``text``. numpy finds the stretches of base64 characters long
    enough to hold one first, so ordinary text (short words) costs one pass, not a regex."""
    inside = np.concatenate(([False], _BASE64_BYTES[np.frombuffer(text, dtype=np.uint8)], [False]))
    edges = np.diff(inside.astype(np.int8))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long = ends - starts >= 96
    for start, end in zip(starts[long].tolist(), ends[long].tolist(), strict=True):
        yield from BASE64_RUN.finditer(text, start, min(len(text), end + 2))  # + the '=' padding


def _salvage(inflater: "zlib._Decompress", buf: bytes, budget: int) -> list[bytes]:
    """What decompresses from ``buf`` before the damage in it, fed 64 bytes at a time."""
    out: list[bytes] = []
    for i in range(0, len(buf), 64):
        try:
            piece = inflater.decompress(buf[i : i + 64], budget)
        except zlib.error:
            break
        budget -= len(piece)
        if piece:
            out.append(piece)
        if budget <= 0 or inflater.eof:
            break
    return out


def _b64(text: bytes) -> bytes | None:
    compact = re.sub(rb"\s+", b"", text)
    compact = compact[: len(compact) - len(compact) % 4] if not compact.endswith(b"=") else compact
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _json_parts(value: Any, out: list[bytes]) -> None:
    """The content inside a JSON document: its strings (keys too) and byte arrays (lists of
    integers 0-255), in document order. Ids and digests are references, not content."""
    if isinstance(value, str):
        if not HEX_ID.fullmatch(value):
            out.append(value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, dict):
        for k, v in value.items():
            _json_parts(str(k), out)
            _json_parts(v, out)
    elif isinstance(value, list):
        if len(value) >= K and all(type(x) is int and 0 <= x <= 255 for x in value):
            out.append(bytes(value))
        else:
            for v in value:
                _json_parts(v, out)


class Fingerprinter:
    """Fingerprints blobs with one set of limits (from the kernel's settings)."""

    def __init__(self, max_fingerprints: int = 16384, max_decoded_bytes: int = 64 << 20):
        self.max_fingerprints = max_fingerprints
        self.max_decoded_bytes = max_decoded_bytes

    def of_bytes(self, data: bytes) -> BlobPrint:
        return self.of_pieces([data], len(data))

    def of_pieces(self, pieces: Iterable[bytes], size: int) -> BlobPrint:
        """One pass over the blob: raw fingerprints, byte histogram, and what can be decoded."""
        level = level_for(size, self.max_fingerprints)
        budget = [self.max_decoded_bytes]
        sets: list[U64] = []
        encodings: list[str] = []
        content = [0]
        counts = np.zeros(256, dtype=np.int64)

        def histogram(stream: Iterable[bytes]) -> Iterator[bytes]:
            for piece in stream:
                counts[:] += np.bincount(np.frombuffer(piece, dtype=np.uint8), minlength=256)
                yield piece

        self._walk(histogram(pieces), level, 0, sets, encodings, content, budget)
        fps = np.unique(np.concatenate(sets)) if sets else np.empty(0, dtype=np.uint64)
        while len(fps) > self.max_fingerprints * 5 // 4:  # decoded views added more: sample further
            level += 1
            fps = fps[(fps & np.uint64((1 << level) - 1)) == 0]
        return BlobPrint(size, level, fps, round(_entropy(counts), 3), encodings, content[0])

    def _walk(
        self,
        pieces: Iterable[bytes],
        level: int,
        depth: int,
        sets: list[U64],
        encodings: list[str],
        content: list[int],
        budget: list[int],
    ) -> None:
        """Fingerprint one view of the blob, then its decoded views.

        When a decoding covers the whole view (a gzip file, a base64 file, a JSON
        document), the encoded bytes are only an envelope: their fingerprints are dropped,
        so content is counted once, and an encoded copy meets its plaintext original.
        """
        stream = _Stream(level)
        head = bytearray()  # the start of the blob, kept to decide which decoders apply
        keep = TEXT_SCAN_BYTES if depth < MAX_DEPTH else 0
        for piece in pieces:
            stream.feed(piece)
            if len(head) <= keep:
                head += piece[: keep + 1 - len(head)]
        raw = stream.finish()
        views = self._decodings(bytes(head), stream.bytes, budget) if depth < MAX_DEPTH and head else []
        if not any(whole for _, _, whole in views):
            sets.append(raw)
            content[0] += stream.bytes
        for name, decoded, _ in views:
            if name not in encodings:
                encodings.append(name)
            self._walk(decoded, level, depth + 1, sets, encodings, content, budget)

    def _decodings(self, head: bytes, size: int, budget: list[int]) -> list[tuple[str, list[bytes], bool]]:
        """Decoded views of a blob (gzip, base64, JSON strings) within the byte budget, each
        with whether it covers the whole blob."""
        if len(head) < size:
            return []  # larger than the text-scan cap: raw fingerprints only
        if head[:2] == b"\x1f\x8b":
            out, complete = _gunzip(head, budget[0])
            budget[0] -= sum(map(len, out))
            return [("gzip", out, complete)] if out else []
        views: list[tuple[str, list[bytes], bool]] = []
        if size <= JSON_BYTES and head[:1] in (b"{", b"[", b'"'):
            try:
                doc = json.loads(head)
            except (ValueError, UnicodeDecodeError, RecursionError):
                doc = None
            if doc is not None and not isinstance(doc, (int, float, bool)):
                parts: list[bytes] = []
                _json_parts(doc, parts)
                text = b"\n".join(parts)  # lines split into a list come back as the lines they were
                if len(text) <= budget[0]:
                    budget[0] -= len(text)
                    # Mostly strings: the JSON is their envelope. Mostly numbers: keep the raw too.
                    return [("json", [text], len(text) >= size // 2)]
        if np.count_nonzero(np.frombuffer(head, dtype=np.uint8) >= 0x80) > len(head) // 10:
            return views  # binary: no base64 text to find
        covered = 0
        for match in _base64_runs(head):
            decoded = _b64(match.group())
            if decoded and len(decoded) <= budget[0]:
                budget[0] -= len(decoded)
                covered += len(match.group())
                views.append(("base64", [decoded], False))
        if views and covered >= 0.95 * len(head.strip()):
            views = [("base64", [b"".join(p for _, pieces, _ in views for p in pieces)], True)]
        return views
