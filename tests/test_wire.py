"""The judge's wire (sandbox_images/runtime/kernel_wire.py), tested without Docker.

Two set-ups, both in this process unless said otherwise:

* an honest deliverable: ``Peer(b, strict=False).serve_forever()`` in a thread on one end of a
  socketpair, the suite's strict ``Peer`` on the other end, and deliverable modules written to a
  temporary folder and imported *by the serving side only* (the test never imports them itself);
  the remote-module finder is tested against a deliverable served by a separate Python process;
* a hostile deliverable: the test (or a thread) speaks raw frames on the other end and answers
  the suite's requests badly; every such case must end in ``LinkBroken`` within a bounded time,
  with a readable reason, no other exception escaping, and every later request failing fast.

Covered: plain values of every type the module docstring lists; sharing, cycles, identity of
returned arguments and in-place mutation of arguments; exceptions (built-in and the
deliverable's own hierarchy); generators, classes, instances, enums, context managers and
callbacks; the strict side's comparisons and what it refuses to serve; the remote module finder;
malformed frames, values, classes, updates and requests, time-outs, collision attacks and
nesting limits; ``LinkBroken`` being no ordinary error; and, at the end, values near each limit
of the decoder (huge ints, long decimals, wide or renamed namedtuples, generic class names,
built-in iterators, items views, OSError's filename, exception groups) that once broke the link.
"""

import collections
import contextlib
import copy
import datetime
import decimal
import fractions
import importlib
import importlib.util
import json
import math
import os
import random
import re
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

RUNTIME = Path(__file__).parents[1] / "sandbox_images" / "runtime"
sys.path.insert(0, str(RUNTIME))
import kernel_wire as wire  # noqa: E402

sys.path.remove(str(RUNTIME))

TIMEOUT = 2.0  # the suite's time-outs with an honest deliverable: never reached
HOSTILE_TIMEOUT = 0.3  # the suite's time-outs against a hostile deliverable
SUITE_SECRET = "the suite's secret"  # a global of the suite the deliverable must not reach


# -- helpers ---------------------------------------------------------------------------


def frame(message: object) -> bytes:
    """One frame: 4-byte big-endian length and the JSON document (bytes are sent as they are)."""
    data = message if isinstance(message, bytes) else json.dumps(message, separators=(",", ":")).encode()
    return struct.pack(">I", len(data)) + data


def send_frame(sock: socket.socket, message: object) -> None:
    sock.sendall(frame(message))


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the suite's side closed the link")
        data += chunk
    return data


def recv_frame(sock: socket.socket) -> Any:
    (size,) = struct.unpack(">I", recv_exact(sock, 4))
    return json.loads(recv_exact(sock, size))


def nest(levels: int, leaf: object = 0) -> object:
    """A tagged tuple nested ``levels`` deep."""
    value = leaf
    for _ in range(levels):
        value = ["T", [value]]
    return value


def nested_lists(levels: int, leaf: object) -> object:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def desc(**overrides: object) -> dict[str, object]:
    """A class description as the other side sends it the first time."""
    return {"n": "Thing", "m": "deliverable", "b": [], "d": [], "h": True} | overrides


def answer(value: object, updates: list[object] | None = None, rid: int = 1) -> list[object]:
    return ["r", rid, value, updates or []]


VIEW_TYPES = (type({}.keys()), type({}.values()), type({}.items()))


def equivalent(got: object, want: object) -> bool:
    """Equal values of the same type, with nan, -0.0, Decimal text, exceptions and views handled."""
    if isinstance(want, float):
        if type(got) is not float:
            return False
        if math.isnan(want):
            return math.isnan(got)
        return got == want and math.copysign(1, got) == math.copysign(1, want)
    if isinstance(want, complex):
        return type(got) is complex and equivalent(got.real, want.real) and equivalent(got.imag, want.imag)
    if isinstance(want, decimal.Decimal):
        return type(got) is decimal.Decimal and str(got) == str(want)
    if isinstance(want, (datetime.datetime, datetime.time)):
        return type(got) is type(want) and got.isoformat() == want.isoformat()  # offsets included
    if isinstance(want, BaseException):
        return type(got) is type(want) and equivalent(got.args, want.args)
    if type(want) in VIEW_TYPES:
        return type(got) is type(want) and equivalent(list(got), list(want))  # type: ignore[call-overload]
    if isinstance(want, tuple) and hasattr(want, "_fields"):
        return (
            isinstance(got, tuple)
            and type(got).__name__ == type(want).__name__
            and getattr(got, "_fields", None) == want._fields
            and equivalent(tuple(got), tuple(want))
        )
    if isinstance(want, (list, tuple)):
        return (
            type(got) is type(want)
            and len(got) == len(want)  # type: ignore[arg-type]
            and all(equivalent(g, w) for g, w in zip(got, want, strict=False))  # type: ignore[call-overload]
        )
    if isinstance(want, dict):
        return type(got) is dict and got.keys() == want.keys() and all(equivalent(got[k], want[k]) for k in want)
    return type(got) is type(want) and got == want


def crosses(action: Callable[[], object], server: "wire.Peer | None" = None) -> object:
    """Run ``action``; a broken link fails the test with the link's reason (for the near-limit tests),
    and the reason the deliverable's side (``server``) gave up, when it did."""
    try:
        return action()
    except wire.LinkBroken as exc:
        their = f" (the deliverable's side: {server.broken})" if server is not None and server.broken else ""
        pytest.fail(f"the link broke: {exc}{their}", pytrace=False)


def assert_readable(reason: object) -> None:
    assert isinstance(reason, str)
    assert reason.startswith("the deliverable's process "), reason
    assert 20 < len(reason) < 700 and "\n" not in reason and "Traceback" not in reason, reason


def assert_breaks(peer: wire.Peer, action: Callable[[], object], match: str, within: float) -> None:
    """``action`` ends in LinkBroken within ``within`` s, readably, and later requests fail fast."""
    start = time.monotonic()
    with pytest.raises(wire.LinkBroken) as info:
        action()
    elapsed = time.monotonic() - start
    assert elapsed < within, f"the link took {elapsed:.2f} s to break"
    assert peer.broken == str(info.value)
    assert_readable(peer.broken)
    assert re.search(match, peer.broken), peer.broken
    assert peer.depth == 0
    start = time.monotonic()
    with pytest.raises(wire.LinkBroken, match=re.escape(peer.broken)):
        peer.request("get", 0, "anything")
    assert time.monotonic() - start < 0.1


# -- an honest deliverable, served by a thread of this process --------------------------------

DELIVERABLE = '''
import collections
import copy
import enum


def ident(x):
    return x


def rebuild(x):
    """New containers with the same contents (sharing and cycles kept)."""
    try:
        return copy.deepcopy(x)
    except TypeError:  # dict views
        return x


def identical(a, b):
    return a is b


def shared():
    inner = [1, 2]
    return [inner, inner, {"again": inner}, (inner,)]


def cyclic():
    lst = [0]
    lst.append(lst)
    d = {}
    d["self"] = d
    return [lst, d]


def sort_in_place(x):
    x.sort()


def sort_and_return(x):
    x.sort()
    return x


def update(d, **more):
    d.update(more)


def append_inner(outer, value):
    outer[0].append(value)


def replace_first(outer):
    outer[0] = ["new"]


def extend(buf, data):
    buf.extend(data)


def add(s, value):
    s.add(value)


def append_self(x):
    x.append(x)


def first(x):
    return x[0]


def append_then_fail(x):
    x.append("touched")
    raise ValueError("failed after touching")


def fail_value():
    raise ValueError("bad value: 42")


def fail_key():
    return {}["missing"]


def raise_named(name):
    raise {"KeyboardInterrupt": KeyboardInterrupt, "SystemExit": SystemExit, "StopIteration": StopIteration}[name]()


def open_missing(path):
    with open(path):
        pass


class Base(ValueError):
    pass


class Sub(Base):
    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def fail_sub(code):
    raise Sub(f"sub failed with code {code}", code)


def squares(n):
    for i in range(n):
        yield i * i


class Counter:
    kind = "counter"

    def __init__(self, start=0):
        self.count = start

    def incr(self, by=1):
        self.count += by
        return self.count

    def __eq__(self, other):
        return isinstance(other, Counter) and self.count == other.count

    __hash__ = None

    def __len__(self):
        return self.count

    def __repr__(self):
        return f"Counter({self.count})"


class Liar:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __lt__(self, other):
        return True

    def __hash__(self):
        return 0


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Managed:
    def __init__(self, suppress):
        self.suppress = suppress
        self.seen = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.seen = [getattr(exc_type, "__name__", None), None if exc is None else str(exc), tb is None]
        return self.suppress


def sort_with(items, key):
    return sorted(items, key=key)


def call(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def call_with_list(fn):
    lst = [3, 1, 2]
    fn(lst)
    return lst


def bounce(n, fn):
    return n if n == 0 else fn(n - 1)


def counted():
    return collections.Counter("abracadabra")


def deep(levels):
    value = 0
    for _ in range(levels):
        value = [value]
    return value


def _end_of(ref):
    """The deliverable's own end of the link, as hostile code would reach it."""
    return object.__getattribute__(ref, "_wire_peer"), object.__getattribute__(ref, "_wire_id")


def probe(callback, foreign, module, box, crate_class, foreign_class):
    """Try everything the suite's side must refuse, and a few things it must serve."""
    peer, number = _end_of(callback)
    attempts = {
        "import": lambda: peer.request("import", None, "os"),
        "exports": lambda: peer.request("exports", number),
        "callback.__globals__": lambda: peer.request("get", number, "__globals__"),
        "callback.__code__": lambda: peer.request("get", number, "__code__"),
        "callback.__closure__": lambda: peer.request("get", number, "__closure__"),
        "callback.__globals__ via the stand-in": lambda: callback.__globals__,
        "set callback.__doc__": lambda: setattr(callback, "__doc__", "changed"),
        "type(foreign)()": lambda: type(foreign)(),
        "type(box)(1)": lambda: type(box)(1),
        "foreign_class()": lambda: foreign_class(),
        "crate_class(3).value": lambda: crate_class(3).value,
        "foreign.value": lambda: foreign.value,
        "set foreign.value": lambda: setattr(foreign, "value", "changed"),
        "module.SUITE_SECRET": lambda: module.SUITE_SECRET,
        "box._secret": lambda: box._secret,
        "set box._secret": lambda: setattr(box, "_secret", "changed"),
        "box.value": lambda: box.value,
        "set box.label": lambda: setattr(box, "label", "set by the deliverable"),
        "del box.value": lambda: delattr(box, "value"),
        "callback(20)": lambda: callback(20),
    }
    out = {}
    for key, attempt in attempts.items():
        try:
            out[key] = ["served", attempt()]
        except Exception as exc:
            out[key] = f"{type(exc).__name__}: {exc}"
    return out


def forbidden_op(callback):
    peer, number = _end_of(callback)
    return peer.request("op", number, "__reduce_ex__", [2])
'''

SUITE_HELPER = """
class Box:
    def __init__(self, value):
        self.value = value
        self._secret = "box secret"


class Crate(Box):
    pass
"""


class Foreign:
    """A class of the suite's process defined outside the suite's files: nothing of it is served."""

    value = "foreign"


class SuiteError(Exception):
    """The suite's own exception class, raised in a callback."""


class Link:
    """The suite's strict peer and an honest deliverable served by a thread of this process."""

    def __init__(self, root: Path, timeout: float) -> None:
        self.suite_dir = root / "suite"
        self.deliverable_dir = root / "deliverable"
        self.suite_dir.mkdir(parents=True)
        self.deliverable_dir.mkdir()
        a, b = socket.socketpair()
        self.server = wire.Peer(b, strict=False, timeout=None)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.peer = wire.Peer(
            a, strict=True, timeout=timeout, first_timeout=timeout, suite_files=str(self.suite_dir) + os.sep
        )
        self.names: list[str] = []

    def load(self, source: str) -> Any:
        """Write a deliverable module and import it on the deliverable's side: a remote reference."""
        name = f"deliverable_{uuid.uuid4().hex[:12]}"
        (self.deliverable_dir / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        self.names.append(name)
        module, is_package = self.peer.request("import", None, name)
        assert isinstance(module, wire.Remote) and is_package is False
        return module

    def suite_module(self, source: str) -> types.ModuleType:
        """A module of the suite's own files (under ``suite_files``), imported on the suite's side."""
        name = f"suite_{uuid.uuid4().hex[:12]}"
        path = self.suite_dir / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        self.names.append(name)
        spec.loader.exec_module(module)
        return module

    def close(self) -> None:
        self.peer.sock.close()
        self.thread.join(5)
        self.server.sock.close()
        for name in self.names:
            sys.modules.pop(name, None)
        assert not self.thread.is_alive(), "the deliverable's side did not stop when the suite hung up"


@pytest.fixture
def make_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Link]]:
    links: list[Link] = []

    def make(timeout: float = TIMEOUT) -> Link:
        link = Link(tmp_path / f"link{len(links)}", timeout)
        monkeypatch.syspath_prepend(str(link.deliverable_dir))
        links.append(link)
        return link

    yield make
    for link in links:
        link.close()


@pytest.fixture
def link(make_link: Callable[..., Link]) -> Link:
    return make_link()


@pytest.fixture
def mod(link: Link) -> Any:
    return link.load(DELIVERABLE)


# -- 1. plain values -------------------------------------------------------------------------

Point = collections.namedtuple("Point", ["x", "y"])
inf, nan = float("inf"), float("nan")
UTC = datetime.UTC

PLAIN = {
    "None": None,
    "True": True,
    "False": False,
    "zero": 0,
    "negative int": -7,
    "2**63": 2**63,
    "big int": 2**200 + 1,
    "negative big int": -(2**300),
    "huge int": 2**20_000 + 12345,
    "negative huge int": -(3**20_000),
    "float": 1.5,
    "subnormal float": 5e-324,
    "inf": inf,
    "-inf": -inf,
    "nan": nan,
    "-0.0": -0.0,
    "empty str": "",
    "unicode str": "h\u00e9llo \u2713 \U0001f600",
    "lone surrogates": "a\ud800b\udfffc",
    "NUL": "\x00",
    "bytes": b"\x00\xffdata",
    "empty bytes": b"",
    "bytearray": bytearray(b"\x00ab"),
    "list": [1, "two", [3.0, None]],
    "empty list": [],
    "tuple": (1, (2, (3,))),
    "empty tuple": (),
    "dict with non-str keys": {"a": 1, 2: "b", None: [1], (1, 2): {"x": 3}, 2.5: True, frozenset({1}): b"k", b"k": 0},
    "empty dict": {},
    "set": {1, "a", (2, 3), None},
    "empty set": set(),
    "frozenset": frozenset({1, 2, frozenset({3})}),
    "namedtuple": Point(1, [2]),
    "complex": complex(1.5, -2),
    "complex nan inf": complex(nan, -inf),
    "Decimal": decimal.Decimal("1.10"),
    "Decimal -0": decimal.Decimal("-0"),
    "Decimal NaN": decimal.Decimal("NaN"),
    "Decimal -Infinity": decimal.Decimal("-Infinity"),
    "Decimal exponent": decimal.Decimal("1E+999999"),
    "Fraction": fractions.Fraction(1, 3),
    "big Fraction": fractions.Fraction(-(2**200), 3**50),
    "date": datetime.date(2024, 2, 29),
    "datetime": datetime.datetime(2024, 2, 29, 13, 14, 15, 161718),
    "datetime UTC": datetime.datetime(2024, 2, 29, 13, 14, tzinfo=UTC),
    "datetime +05:30": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30))),
    "datetime odd offset": datetime.datetime(
        2024, 1, 1, tzinfo=datetime.timezone(-datetime.timedelta(hours=3, seconds=7, microseconds=8))
    ),
    "time": datetime.time(1, 2, 3, 4),
    "time UTC": datetime.time(1, 2, tzinfo=UTC),
    "timedelta": datetime.timedelta(days=-1, seconds=5, microseconds=7),
    "slice": slice(1, None, -2),
    "slice of anything": slice("a", [1], None),
    "range": range(0, 10, 3),
    "huge range": range(-(2**70), 2**70, 7),
    "Ellipsis": ...,
    "NotImplemented": NotImplemented,
    "dict keys": {"a": 1, 2: 3}.keys(),
    "dict values": {"a": [1], "b": 2}.values(),
    "empty dict items": {}.items(),
    "built-in class": int,
    "built-in exception class": KeyError,
    "exception as a value": ValueError("as a value", 3),
    "nested": {"deep": [[[[{"x": (1, frozenset({2}))}]]]], "nt": Point(x=(1,), y={"s": {3}})},
}


@pytest.mark.parametrize("value", list(PLAIN.values()), ids=list(PLAIN))
def test_plain_value_round_trip(mod: Any, value: object) -> None:
    for function in (mod.ident, mod.rebuild):
        got = function(value)
        assert equivalent(got, value), (got, value)


@pytest.mark.parametrize("value", [int, KeyError, NotImplemented, Ellipsis, None], ids=repr)
def test_singletons_and_builtin_classes_keep_identity(mod: Any, value: object) -> None:
    assert mod.ident(value) is value


def test_containers_decode_as_new_objects_of_exact_types(mod: Any) -> None:
    value = [[1], {"a": {2}}, bytearray(b"x")]
    got = mod.rebuild(value)
    assert got == value and got is not value and got[0] is not value[0]
    assert [type(x) for x in got] == [list, dict, bytearray]


def test_subclasses_of_plain_types_cross_as_their_plain_base(mod: Any) -> None:
    """The deliverable's subclass never reaches the suite: its values do, as the base type."""
    assert type(mod.Level.HIGH) is int and mod.Level.HIGH == 2
    counted = mod.counted()
    assert type(counted) is dict and counted == {"a": 5, "b": 2, "r": 2, "c": 1, "d": 1}
    ordered = mod.rebuild(collections.OrderedDict([("b", 1), ("a", 2)]))
    assert type(ordered) is dict and list(ordered) == ["b", "a"]
    assert type(mod.rebuild(collections.defaultdict(list, {"k": [1]}))) is dict


def test_value_deeper_than_max_depth_is_refused_cleanly_both_ways(mod: Any, link: Link) -> None:
    too_deep = nested_lists(wire.MAX_DEPTH + 5, 0)
    with pytest.raises(wire.NotJudgeable, match="nests deeper than 100 levels"):  # not a ValueError of the deliverable
        mod.ident(too_deep)
    assert "could not cross" in (link.peer.not_judgeable or "")
    with pytest.raises(ValueError, match="nests deeper than 100 levels"):
        mod.deep(wire.MAX_DEPTH + 5)
    assert equivalent(mod.deep(wire.MAX_DEPTH), nested_lists(wire.MAX_DEPTH, 0))
    assert link.peer.broken is None and mod.ident(1) == 1


def test_value_larger_than_max_frame_is_refused_before_sending(mod: Any, link: Link) -> None:
    ident = mod.ident
    sent = link.peer.bytes_out
    with pytest.raises(wire.NotJudgeable, match="is larger than the 16,777,216"):
        ident(b"x" * (wire.MAX_FRAME * 3 // 4 + 10))
    assert link.peer.bytes_out == sent
    assert link.peer.broken is None and mod.ident("still fine") == "still fine"


def test_counters(mod: Any, link: Link) -> None:
    calls, sent, received = link.peer.calls, link.peer.bytes_out, link.peer.bytes_in
    assert mod.ident("x") == "x"  # two requests: get ident, call it
    assert link.peer.calls == calls + 2
    assert link.peer.bytes_out > sent and link.peer.bytes_in > received


# -- 2. sharing, cycles, identity, mutation ------------------------------------------------------


def test_shared_references_survive(mod: Any) -> None:
    got = mod.shared()
    assert got[0] == [1, 2] and got[0] is got[1] and got[2]["again"] is got[0] and got[3][0] is got[0]
    inner = [5]
    assert mod.identical(inner, inner) is True
    assert mod.call(lambda pair: pair[0] is pair[1], [inner, inner]) is True


def test_cycles_survive(mod: Any) -> None:
    lst, dct = mod.cyclic()
    assert lst[0] == 0 and lst[1] is lst
    assert dct["self"] is dct
    mine: list[object] = [1]
    mine.append(mine)
    back = mod.rebuild(mine)
    assert back is not mine and back[1] is back


def test_returned_argument_is_the_argument(mod: Any) -> None:
    lst, dct, st, buf = [3, 1], {"k": 1}, {1}, bytearray(b"b")
    assert mod.ident(lst) is lst and mod.ident(dct) is dct and mod.ident(st) is st and mod.ident(buf) is buf
    outer = [[1], [2]]
    assert mod.first(outer) is outer[0]
    assert mod.sort_and_return(lst) is lst and lst == [1, 3]


def test_in_place_mutation_is_seen_by_the_caller(mod: Any) -> None:
    lst = [3, 1, 2]
    assert mod.sort_in_place(lst) is None and lst == [1, 2, 3]
    dct = {"a": 1}
    mod.update(dct, b=2, c=[3])
    assert dct == {"a": 1, "b": 2, "c": [3]}
    inner = [1]
    outer = [inner, [2]]
    mod.append_inner(outer, 9)
    assert outer == [[1, 9], [2]] and outer[0] is inner and inner == [1, 9]
    mod.replace_first(outer)
    assert outer == [["new"], [2]] and inner == [1, 9]
    buf = bytearray(b"ab")
    mod.extend(buf, b"cd")
    assert buf == bytearray(b"abcd")
    st = {1}
    mod.add(st, (2, 3))
    assert st == {1, (2, 3)}
    nested_in_tuple = ([1],)
    mod.append_inner(nested_in_tuple, 2)
    assert nested_in_tuple == ([1, 2],)
    by_keyword: list[int] = [2, 1]
    mod.call(lambda x: x.sort(), x=by_keyword)
    assert by_keyword == [1, 2]


def test_mutation_into_a_cycle(mod: Any) -> None:
    lst: list[object] = [1]
    mod.append_self(lst)
    assert len(lst) == 2 and lst[1] is lst


def test_mutation_before_an_exception_is_seen(mod: Any) -> None:
    lst = ["before"]
    with pytest.raises(ValueError, match="failed after touching"):
        mod.append_then_fail(lst)
    assert lst == ["before", "touched"]


def test_suite_side_mutation_in_a_callback_is_seen_by_the_deliverable(mod: Any) -> None:
    assert mod.call_with_list(lambda lst: lst.sort()) == [1, 2, 3]


def test_suite_objects_come_back_as_themselves(mod: Any) -> None:
    mine = Foreign()
    assert mod.ident(mine) is mine
    assert mod.ident(Foreign) is Foreign
    pair = mod.ident((mine, mine))
    assert type(pair) is tuple and pair[0] is mine and pair[1] is mine


# -- 3. exceptions ------------------------------------------------------------------------------


def test_builtin_exceptions(mod: Any, link: Link) -> None:
    with pytest.raises(ValueError, match="bad value: 42") as info:
        mod.fail_value()
    assert type(info.value) is ValueError and info.value.args == ("bad value: 42",)
    assert any("raised in the deliverable's process" in note for note in info.value.__notes__)
    assert any("fail_value" in note for note in info.value.__notes__)
    with pytest.raises(KeyError) as key_info:
        mod.fail_key()
    assert key_info.value.args == ("missing",)
    with pytest.raises(FileNotFoundError) as os_info:
        mod.open_missing(str(link.deliverable_dir / "missing.txt"))
    assert isinstance(os_info.value, OSError) and os_info.value.errno == 2
    assert link.peer.broken is None


def test_the_deliverables_exception_hierarchy(mod: Any) -> None:
    with pytest.raises(mod.Base) as info:
        mod.fail_sub(3)
    exc = info.value
    assert isinstance(exc, mod.Sub) and isinstance(exc, mod.Base) and isinstance(exc, ValueError)
    assert type(exc) is mod.Sub and mod.Sub.__mro__[1] is mod.Base
    assert str(exc) == "sub failed with code 3"
    assert exc.code == 3  # asked of the exception object that stays in the deliverable's process
    with pytest.raises(AttributeError):
        exc.no_such_attribute  # noqa: B018
    with pytest.raises(ValueError, match="code 7"):
        mod.fail_sub(7)


def test_exception_from_a_suite_callback_comes_back_as_the_suites_class(mod: Any) -> None:
    def callback() -> None:
        raise SuiteError("raised by the suite")

    with pytest.raises(SuiteError, match="raised by the suite") as info:
        mod.call(callback)
    assert type(info.value) is SuiteError


def test_stop_iteration_ends_iteration_but_not_a_call(mod: Any) -> None:
    with pytest.raises(StopIteration):
        next(iter(mod.squares(0)))
    with pytest.raises(RuntimeError, match="raised StopIteration from a call"):
        mod.raise_named("StopIteration")  # would silently end a loop of the suite's (PEP 479)
    assert list(map(mod.ident, [1, 2])) == [1, 2]


@pytest.mark.parametrize("name", ["KeyboardInterrupt", "SystemExit"])
def test_exceptions_that_would_steer_pytest_arrive_as_runtime_error(mod: Any, link: Link, name: str) -> None:
    with pytest.raises(RuntimeError, match=f"the deliverable raised {name}"):
        mod.raise_named(name)
    assert link.peer.broken is None


# -- 4. generators, classes, instances, enums, callbacks ---------------------------------------------


def test_generators(mod: Any) -> None:
    assert list(mod.squares(5)) == [0, 1, 4, 9, 16]
    assert sum(mod.squares(4)) == 14
    gen = mod.squares(3)
    assert iter(gen) is gen and next(gen) == 0 and list(gen) == [1, 4]


def test_classes_and_instances(mod: Any, link: Link) -> None:
    counter = mod.Counter(5)
    assert isinstance(counter, mod.Counter) and type(counter) is mod.Counter
    assert isinstance(mod.Counter, wire.RemoteClass) and "other process" in repr(mod.Counter)
    assert counter.count == 5 and counter.kind == "counter" and mod.Counter.kind == "counter"
    assert counter.incr(2) == 7 and counter.count == 7
    counter.count = 10
    assert counter.count == 10 and len(counter) == 10 and repr(counter) == "Counter(10)"
    counter.extra = "x"
    del counter.extra
    with pytest.raises(AttributeError):
        counter.extra  # noqa: B018
    assert mod.Counter(1) == mod.Counter(1)  # remote against remote: the deliverable's __eq__
    assert mod.Counter(1) != mod.Counter(2)
    with pytest.raises(TypeError):
        hash(counter)  # the deliverable's class is unhashable, so is its stand-in
    assert mod.ident(mod.Counter) is mod.Counter
    calls = link.peer.calls
    for probe in ("__wrapped__", "__code__", "__test__", "__signature__"):
        assert not hasattr(counter, probe)
    assert link.peer.calls == calls  # refused on the suite's side, never asked


def test_enum_member_identity(mod: Any) -> None:
    red = mod.Color.RED
    assert mod.ident(red) is red
    assert mod.ident(mod.Color.RED) is mod.Color.RED
    assert mod.Color.RED is not mod.Color.GREEN
    assert isinstance(red, mod.Color) and red.name == "RED" and red.value == 1
    assert {red: "r"}[mod.Color.RED] == "r"


def test_subclassing_a_stand_in_class_is_refused(mod: Any) -> None:
    with pytest.raises(TypeError, match="runs in another process"):

        class Mine(mod.Counter):  # type: ignore[misc]
            pass

    with pytest.raises(TypeError, match="another process"):
        type("Mine", (mod.Base,), {})


def test_callbacks(mod: Any) -> None:
    assert mod.sort_with([3, 1, 2], key=lambda x: -x) == [3, 2, 1]
    assert mod.call(lambda a, b=0: a * 10 + b, 4, b=2) == 42
    assert mod.bounce(0, None) == 0

    def down(n: int) -> int:
        return mod.bounce(n, down)  # type: ignore[no-any-return]

    assert down(10) == 0  # ten crossings each way, nested


def test_callback_recursion_beyond_max_nesting_is_a_clean_error(mod: Any, link: Link) -> None:
    def down(n: int) -> int:
        return mod.bounce(n, down)  # type: ignore[no-any-return]

    with pytest.raises((RuntimeError, wire.NotJudgeable), match="nest deeper than 32"):
        down(200)  # refused at depth 32, then unwound through the deliverable as a RuntimeError
    assert "nest deeper than 32" in (link.peer.not_judgeable or "")  # and the judgement is refunded
    assert link.peer.broken is None and link.peer.depth == 0
    assert down(3) == 0


def test_context_manager_gets_the_exception_but_never_the_traceback(mod: Any) -> None:
    managed = mod.Managed(False)
    with pytest.raises(KeyError), managed as entered:
        assert entered is managed
        raise KeyError("inside")
    assert managed.seen == ["KeyError", "", True]  # the class crosses, never the suite's message
    with mod.Managed(False) as quiet:
        pass
    assert quiet.seen == [None, None, True]


def test_context_manager_cannot_swallow_any_error_in_the_suites_block(mod: Any, link: Link) -> None:
    before = link.peer.untrusted_operations
    with pytest.raises(wire.NotJudgeable, match="suppressing AssertionError"), mod.Managed(True) as managed:
        raise AssertionError("the suite's check")
    assert managed.seen == ["AssertionError", "", True]  # an assertion's explanation never crosses
    assert link.peer.untrusted_operations == before + 1
    with pytest.raises(wire.NotJudgeable, match="suppressing"), mod.Managed(True):
        mod.fail_value()  # even its own error: suppressing it would skip the rest of the suite's block


# -- 5. strictness ------------------------------------------------------------------------------


def test_remote_objects_are_not_trusted_about_plain_data(mod: Any, link: Link) -> None:
    liar = mod.Liar()
    before = link.peer.untrusted_operations
    reflected = [1, 2]
    for compare in (lambda: liar == [1, 2], lambda: liar != [1, 2], lambda: reflected == liar, lambda: liar < 3):
        with pytest.raises(wire.NotJudgeable, match="between an object of the deliverable"):
            compare()
    assert link.peer.untrusted_operations == before + 4
    with pytest.raises(wire.NotJudgeable):
        _ = liar in [[1, 2], 0, None]  # list membership compares
    with pytest.raises(wire.NotJudgeable):
        pytest.raises(Exception, lambda: liar == 1)  # noqa: B017 - no suite can take the refusal for an answer
    assert (liar == mod.Liar()) is True  # remote against remote is the deliverable's own business
    assert (liar != mod.Liar()) is False
    assert {liar: 1}[liar] == 1


def test_suite_side_refuses_to_serve_the_deliverable(mod: Any, link: Link) -> None:
    helper = link.suite_module(SUITE_HELPER)
    box = helper.Box(7)
    this_module = sys.modules[__name__]
    out = mod.probe(lambda x: x + 1, Foreign(), this_module, box, helper.Crate, Foreign)
    refused_attribute = "AttributeError: the suite's process does not show attribute"
    not_handed = "PermissionError: the suite's process only lets the deliverable use what the suite handed it"
    assert out.pop("import") == "PermissionError: the suite's process imports nothing for the deliverable"
    assert out.pop("exports") == "PermissionError: the suite's process lists nothing for the deliverable"
    # a class the deliverable was only told about (the type of a value), or one not of the suite's files
    assert out.pop("type(foreign)()") == not_handed
    assert out.pop("type(box)(1)") == not_handed
    assert out.pop("foreign_class()") == not_handed
    assert out.pop("callback.__globals__ via the stand-in").startswith("AttributeError")
    for key in (
        "callback.__globals__",
        "callback.__code__",
        "callback.__closure__",
        "foreign.value",
        "module.SUITE_SECRET",
        "box._secret",
    ):
        assert out.pop(key).startswith(refused_attribute), key
    for key in ("set callback.__doc__", "set foreign.value", "set box._secret", "set box.label", "del box.value"):
        assert out.pop(key).startswith("PermissionError: the deliverable may not change attribute"), key
    # public attributes of the suite's own objects are served, and calls are
    assert out.pop("box.value") == ["served", 7]
    assert out.pop("crate_class(3).value") == ["served", 3]  # a class of the suite's files, handed over
    assert out.pop("callback(20)") == ["served", 21]
    assert out == {}
    assert not hasattr(box, "label") and box._secret == "box secret" and box.value == 7  # nothing changed
    assert SUITE_SECRET == "the suite's secret" and Foreign.value == "foreign"
    assert link.peer.broken is None


def test_a_special_method_that_is_not_forwarded_breaks_the_link(mod: Any, link: Link) -> None:
    assert_breaks(link.peer, lambda: mod.forbidden_op(lambda: None), "invalid request.*not forwarded", 2)


# -- 6. the remote module finder (the deliverable in its own process) ---------------------------------

SERVE = """
import socket
import sys

sys.path[:0] = [sys.argv[2], sys.argv[3]]
import kernel_wire

kernel_wire.Peer(socket.socket(fileno=int(sys.argv[1])), strict=False, timeout=None).serve_forever()
"""

REMOTE_MODULE = """
CONST = 3
existing = "the deliverable's"
len = "shadows a built-in"
_hidden = "private"


def square(x):
    return x * x


def get_const():
    return CONST


class Error(Exception):
    pass


def fail():
    raise Error("remote failure")
"""


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.SimpleNamespace]:
    root = tmp_path / "remote"
    prefix = f"remote_{uuid.uuid4().hex[:10]}"
    package = root / f"{prefix}_pkg"
    package.mkdir(parents=True)
    (root / f"{prefix}_mod.py").write_text(REMOTE_MODULE)
    (package / "__init__.py").write_text("NAME = 'package'\n")
    (package / "sub.py").write_text("def where():\n    return __name__\n")
    script = tmp_path / "serve.py"
    script.write_text(SERVE)
    a, b = socket.socketpair()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(b.fileno()), str(RUNTIME), str(root)],
        pass_fds=[b.fileno()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    b.close()
    peer = wire.Peer(a, strict=True, timeout=5, first_timeout=20, suite_files=str(tmp_path / "suite") + os.sep)
    names = types.SimpleNamespace(peer=peer, mod=f"{prefix}_mod", pkg=f"{prefix}_pkg", missing=f"{prefix}_missing")
    finder = wire.RemoteFinder(peer, [names.mod, names.pkg, names.missing])
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, finder])
    try:
        yield names
    finally:
        a.close()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        for name in list(sys.modules):
            if name.startswith(prefix):
                del sys.modules[name]
    assert proc.returncode == 0, err.decode(errors="replace")


def test_finder_imports_a_remote_module(remote: types.SimpleNamespace) -> None:
    module = importlib.import_module(remote.mod)
    assert isinstance(module, wire.RemoteModule) and module.__name__ == remote.mod
    assert not hasattr(module, "__path__")
    assert module.square(7) == 49 and module.CONST == 3
    with pytest.raises(module.Error, match="remote failure"):
        module.fail()
    module.CONST = 10  # set in the deliverable's module
    assert module.get_const() == 10 and module.CONST == 10
    del module.CONST
    with pytest.raises(NameError):
        module.get_const()
    assert remote.peer.broken is None


def test_finder_imports_a_remote_package_and_submodule(remote: types.SimpleNamespace) -> None:
    sub = importlib.import_module(f"{remote.pkg}.sub")
    package = sys.modules[remote.pkg]
    assert isinstance(package, wire.RemoteModule) and package.__path__ == []
    assert package.NAME == "package" and package.sub is sub
    assert sub.where() == f"{remote.pkg}.sub"


def test_star_import_never_rebinds_builtins_or_existing_names(remote: types.SimpleNamespace) -> None:
    namespace: dict[str, object] = {"existing": "the suite's"}
    exec(f"from {remote.mod} import *", namespace)  # a star import must run at module level
    assert namespace["CONST"] == 3 and namespace["square"](3) == 9  # type: ignore[operator]
    assert namespace["existing"] == "the suite's"
    assert "len" not in namespace and "_hidden" not in namespace and "Error" in namespace


def test_finder_missing_module_and_foreign_names(remote: types.SimpleNamespace) -> None:
    with pytest.raises(ImportError):
        importlib.import_module(remote.missing)
    calls = remote.peer.calls
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"not_a_deliverable_{uuid.uuid4().hex[:8]}")
    assert remote.peer.calls == calls  # names not the deliverable's are never asked for
    assert remote.peer.broken is None and importlib.import_module(remote.mod).square(2) == 4


# -- 7. a hostile deliverable ------------------------------------------------------------------


class Hostile:
    """The suite's strict peer, and the deliverable's end of the socketpair spoken raw."""

    def __init__(self, timeout: float, first_timeout: float | None) -> None:
        self.suite_sock, self.sock = socket.socketpair()
        self.sock.settimeout(10)
        self.peer = wire.Peer(
            self.suite_sock,
            strict=True,
            timeout=timeout,
            first_timeout=timeout if first_timeout is None else first_timeout,
            suite_files="/nonexistent/suite/",
        )
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def run(self, script: Callable[[], None]) -> None:
        """Run ``script`` in a thread (the deliverable's side acting while the suite waits)."""

        def guarded() -> None:
            try:
                script()
            except OSError:
                pass  # the suite's side hung up: the script is over
            except BaseException as exc:  # noqa: BLE001 - reported by join()
                self.errors.append(exc)

        thread = threading.Thread(target=guarded, daemon=True)
        thread.start()
        self.threads.append(thread)

    def send(self, *messages: object) -> None:
        data = b"".join(frame(m) for m in messages)
        self.run(lambda: self.sock.sendall(data))

    def send_raw(self, data: bytes) -> None:
        self.run(lambda: self.sock.sendall(data))

    def join(self) -> None:
        for thread in self.threads:
            thread.join(5)
            assert not thread.is_alive()
        if self.errors:
            raise self.errors[0]

    def close(self) -> None:
        self.suite_sock.close()
        for thread in self.threads:
            thread.join(5)
        self.sock.close()


@pytest.fixture
def hostile() -> Iterator[Callable[..., Hostile]]:
    made: list[Hostile] = []

    def make(timeout: float = HOSTILE_TIMEOUT, first_timeout: float | None = None) -> Hostile:
        made.append(Hostile(timeout, first_timeout))
        return made[-1]

    yield make
    for h in made:
        h.close()


def default_request(peer: wire.Peer) -> object:
    """Sends three containers: the argument list (0), [1, 2] (1) and the keyword dict (2)."""
    return peer.request("call", 0, [[1, 2]], {})


def sends(*messages: object) -> Callable[[Hostile], None]:
    return lambda h: h.send(*messages)


def sends_raw(data: bytes) -> Callable[[Hostile], None]:
    return lambda h: h.send_raw(data)


def closes(h: Hostile) -> None:
    h.sock.close()


def closes_after_reading(h: Hostile) -> None:
    def script() -> None:
        recv_frame(h.sock)
        h.sock.shutdown(socket.SHUT_RDWR)

    h.run(script)


def trickles(h: Hostile) -> None:
    data = frame(answer("slowly"))

    def script() -> None:
        for i in range(len(data)):
            h.sock.sendall(data[i : i + 1])
            time.sleep(0.05)

    h.run(script)


HASH_0 = 2**61 - 1  # k * HASH_0 hashes to 0 for every k

HOSTILE_ANSWERS = [
    # framing
    pytest.param(sends_raw(struct.pack(">I", wire.MAX_FRAME + 1)), "message of 16,777,217 bytes", id="frame-too-large"),
    pytest.param(sends_raw(struct.pack(">I", 100) + b'["r",1'), "did not answer within 0.3 s", id="frame-cut-short"),
    pytest.param(trickles, "did not answer within 0.3 s", id="frame-trickled"),
    pytest.param(lambda h: None, "did not answer within 0.3 s", id="silence"),
    pytest.param(closes, "stopped reading|ended", id="closed-before"),
    pytest.param(closes_after_reading, "ended", id="closed-after-the-request"),
    pytest.param(sends(b"\xff\x00 not json"), "not JSON", id="not-json"),
    pytest.param(sends(b""), "not JSON", id="empty-frame"),
    pytest.param(sends(b"[" * 100_000 + b"]" * 100_000), "not JSON", id="json-nested-100000-deep"),
    pytest.param(sends(b'["r",1,' + b"9" * 5000 + b",[]]"), "not JSON", id="json-int-of-5000-digits"),
    pytest.param(sends({"r": 1}), "malformed message", id="not-a-list"),
    pytest.param(sends(["r", 1]), "malformed message", id="too-short"),
    pytest.param(sends(["z", 1, None, []]), "malformed message", id="unknown-kind"),
    pytest.param(sends(["r", 99, None, []]), "not asked", id="wrong-request-id"),
    pytest.param(sends(["r", 1, None]), "not asked", id="answer-without-updates"),
    # values
    pytest.param(sends(answer(nest(wire.MAX_DEPTH + 50))), "nested deeper than 100", id="deeper-than-max-depth"),
    pytest.param(sends(answer(["T", [None] * (wire.MAX_ITEMS + 1)])), "1,000,000", id="max-items"),
    pytest.param(sends(answer(["Z", 1])), "an unknown tag", id="unknown-tag"),
    pytest.param(sends(answer([1, 2])), "neither JSON scalar nor tagged", id="untagged-list"),
    pytest.param(sends(answer([])), "neither JSON scalar nor tagged", id="empty-list"),
    pytest.param(sends(answer({"a": 1})), "neither JSON scalar nor tagged", id="json-object"),
    pytest.param(sends(answer(["T", "abc"])), "not a list", id="sequence-not-a-list"),
    pytest.param(sends(answer(["L", 1, []])), "numbered out of order", id="containers-out-of-order"),
    pytest.param(sends(answer(["L", 0, [["L", 0, []]]])), "numbered out of order", id="container-number-reused"),
    pytest.param(sends(answer(["M", 0])), "container not sent", id="back-reference-to-unsent"),
    pytest.param(sends(answer(["a", 3])), "argument not sent", id="argument-out-of-range"),
    pytest.param(sends(answer(["a", "0"])), "argument not sent", id="argument-not-int"),
    pytest.param(sends(answer(["o", 12345])), "never sent", id="own-object-never-exported"),
    pytest.param(sends(answer(["p", 1, ["b", "int"]])), "not one of the sender's classes", id="proxy-builtin-class"),
    pytest.param(sends(answer(["p", 1, ["b", "nope"]])), "unknown built-in class", id="proxy-unknown-builtin"),
    pytest.param(sends(answer(["p", "1", ["c", 1, desc()]])), "malformed reference", id="proxy-id-not-int"),
    pytest.param(sends(answer(["p", 1, ["c", 1, {"n": "A"}]])), "malformed class description", id="class-malformed"),
    pytest.param(sends(answer(["p", 1, ["c", 1, None]])), "before it was described", id="class-never-described"),
    pytest.param(
        sends(answer(["p", 1, ["c", 1, desc(b=[["c", 1, desc()]])]])), "before it was described", id="class-cyclic"
    ),
    pytest.param(
        sends(answer(["p", 1, ["c", 1, desc(b=[["c", 2, desc(b=[["c", 1, None]])]])]])),
        "before it was described",
        id="class-cyclic-through-another",
    ),
    pytest.param(
        sends(answer(["p", 1, ["c", 1, desc(b=[["o", 0]])]])), "derive from one of ours", id="class-from-ours"
    ),
    pytest.param(sends(answer(["c", 1, desc(n="bad\nname")])), "not printable", id="class-name-not-printable"),
    pytest.param(sends(answer(["c", 1, desc(n="")])), "not printable", id="class-name-empty"),
    pytest.param(sends(answer(["c", 1, desc(n="A" * 201)])), "not printable", id="class-name-too-long"),
    pytest.param(sends(answer(["c", 1, desc(b=[["b", "int"]] * 17)])), "malformed class", id="class-too-many-bases"),
    pytest.param(sends(answer(["c", 1, desc(d="__call__")])), "malformed class", id="class-specials-not-list"),
    pytest.param(
        sends(answer(["T", [["p", i, ["c", i, desc(n=f"C{i}")]] for i in range(wire.MAX_CLASSES + 1)]])),
        "more than 10000 classes",
        id="max-classes",
    ),
    pytest.param(sends(["x", 1, 42, []]), "error that is not an exception", id="error-not-an-exception"),
    pytest.param(
        sends(["x", 1, ["X", ["b", "int"], [], "m", None, None], []]), "not an exception class", id="exception-of-int"
    ),
    pytest.param(
        sends(["x", 1, ["X", ["c", 1, desc()], [], "m", None, None], []]),
        "not an exception class",
        id="exception-of-remote-non-exception-class",
    ),
    pytest.param(sends(answer(["X", ["b", "ValueError"], []])), "malformed exception", id="exception-malformed"),
    pytest.param(
        sends(answer(["X", ["b", "ValueError"], [], 5, None, None])), "exception's message", id="exception-message"
    ),
    pytest.param(
        sends(answer(["X", ["b", "ValueError"], [], "m", "7", None])), "malformed exception", id="exception-ref-not-int"
    ),
    pytest.param(
        sends(answer(["D", 0, [[["L", 1, []], 1]]])), r"malformed 'D' value \(TypeError\)", id="dict-unhashable-key"
    ),
    pytest.param(sends(answer(["D", 0, [[1, 2, 3]]])), "not pairs", id="dict-items-not-pairs"),
    pytest.param(
        sends(answer(["S", 0, [["D", 1, []]]])), r"malformed 'S' value \(TypeError\)", id="set-unhashable-item"
    ),
    pytest.param(
        sends(answer(["S", 0, [k * HASH_0 for k in range(1, 66)]])),
        "more than 64 keys share one hash",
        id="set-65-same",
    ),
    pytest.param(
        sends(answer(["D", 0, [[k * HASH_0, k] for k in range(1, 66)]])), "share one hash", id="dict-65-same-hash"
    ),
    pytest.param(sends(answer(["F", [k * HASH_0 for k in range(1, 66)]])), "share one hash", id="frozenset-65-same"),
    pytest.param(sends(answer(["K", [k * HASH_0 for k in range(1, 66)]])), "share one hash", id="keys-view-65-same"),
    pytest.param(sends(answer(["I", "f" * 300_000])), "more than 1,048,576 bits", id="huge-hex-int"),
    pytest.param(sends(answer(["I", "xyz"])), "malformed 'I'", id="hex-int-not-hex"),
    pytest.param(sends(answer(["B", "@@@@"])), "bad base64", id="bad-base64-bytes"),
    pytest.param(sends(answer(["A", 0, "abc"])), "bad base64", id="bad-base64-bytearray"),
    pytest.param(sends(answer(["B", 5])), "base64 text", id="base64-not-text"),
    pytest.param(sends(answer(["Dec", "1" * 1001])), "decimal of more than 1000", id="decimal-too-long"),
    pytest.param(sends(answer(["Dec", "abc"])), "malformed 'Dec'", id="decimal-not-a-number"),
    pytest.param(sends(answer(["f", "1.5"])), "other than nan or inf", id="float-tag-finite"),
    pytest.param(sends(answer(["C", 1, 2])), "complex of non-floats", id="complex-of-ints"),
    pytest.param(sends(answer(["Fr", 1.0, 2])), "fraction of non-integers", id="fraction-of-floats"),
    pytest.param(sends(answer(["Fr", 1, 0])), "invalid value", id="fraction-zero-denominator"),
    pytest.param(sends(answer(["R", 0, 1.5, 1])), "range of non-integers", id="range-of-floats"),
    pytest.param(sends(answer(["R", 0, 1, 0])), "malformed 'R'", id="range-step-zero"),
    pytest.param(sends(answer(["sl", 1])), "malformed 'sl'", id="slice-short"),
    pytest.param(sends(answer(["td", 1.5, 0, 0])), "timedelta of non-integers", id="timedelta-of-floats"),
    pytest.param(sends(answer(["td", 10**10, 0, 0])), "malformed 'td'", id="timedelta-overflow"),
    pytest.param(sends(answer(["d", "2024-01-01" + " " * 60])), "malformed date", id="date-too-long"),
    pytest.param(sends(answer(["dt", "yesterday"])), "malformed 'dt'", id="datetime-not-iso"),
    pytest.param(sends(answer(["N", "not ok", ["a"], [1]])), "not an identifier", id="namedtuple-bad-name"),
    pytest.param(sends(answer(["N", "P", ["_a"], [1]])), "malformed 'N'", id="namedtuple-underscore-field"),
    pytest.param(sends(answer(["N", "P", ["a", "b"], [1]])), "malformed 'N'", id="namedtuple-arity"),
    pytest.param(sends(answer(["N", "P", ["a"] * 256, []])), "namedtuple's fields", id="namedtuple-256-fields"),
    pytest.param(
        sends(answer(["T", [["N", f"P{i}", ["a"], [i]] for i in range(257)]])),
        "more than 256 kinds of namedtuple",
        id="namedtuple-kinds",
    ),
    # updates
    pytest.param(sends(answer(None, 5)), "malformed updates", id="updates-not-a-list"),  # type: ignore[arg-type]
    pytest.param(sends(answer(None, [[0, []]] * 4)), "malformed updates", id="more-updates-than-containers"),
    pytest.param(sends(answer(None, [[7, []]])), "update of a container not sent", id="update-of-unsent"),
    pytest.param(sends(answer(None, [[0]])), "malformed update", id="update-malformed"),
    pytest.param(sends(answer(None, [[1, "not a list"]])), "not a list", id="update-wrong-contents"),
    pytest.param(
        sends(answer(None, [[2, [[["L", 0, []], 1]]]])), "TypeError while decoding", id="update-unhashable-key"
    ),
    # requests from the deliverable while the suite waits
    pytest.param(sends(["q", 5, "eval", 0, "1 + 1"]), "invalid request", id="request-unknown-op"),
    pytest.param(sends(["q", 5, "call"]), "invalid request", id="request-too-short"),
    pytest.param(sends(["q", 5, "get", 999, "x"]), "never sent", id="request-target-never-exported"),
    pytest.param(sends(["q", 5, "call", 0, ["M", 3], ["D", 0, []]]), "invalid request", id="request-bad-payload"),
]


@pytest.mark.parametrize("setup, match", HOSTILE_ANSWERS)
def test_hostile_answer_breaks_the_link(
    hostile: Callable[..., Hostile], setup: Callable[[Hostile], None], match: str
) -> None:
    h = hostile()
    setup(h)
    assert_breaks(h.peer, lambda: default_request(h.peer), match, within=3)


def test_deliverable_that_never_reads_cannot_block_the_suite(hostile: Callable[..., Hostile]) -> None:
    h = hostile()
    big = b"x" * 3_000_000  # far more than a socket buffer holds
    assert_breaks(h.peer, lambda: h.peer.request("call", 0, [big], {}), "stopped reading", within=3)


def test_non_forwarded_special_method_request_breaks_the_link(hostile: Callable[..., Hostile]) -> None:
    h = hostile()
    h.send(["q", 5, "op", 0, "__reduce_ex__", ["L", 0, [2]]])  # 0: the callback below
    assert_breaks(h.peer, lambda: h.peer.request("call", 0, [lambda: None], {}), "not forwarded", within=3)


def test_colliding_hashes_are_refused_quickly(hostile: Callable[..., Hostile]) -> None:
    h = hostile(timeout=5)
    h.send(answer(["S", 0, [k * HASH_0 for k in range(1, 50_001)]]))  # quadratic: minutes to build
    assert_breaks(h.peer, lambda: default_request(h.peer), "share one hash", within=0.5)


def test_first_answer_may_take_first_timeout_later_ones_timeout(hostile: Callable[..., Hostile]) -> None:
    h = hostile(timeout=0.1, first_timeout=1.0)

    def script() -> None:
        for rid in (1, 2):
            recv_frame(h.sock)
            time.sleep(0.3)
            send_frame(h.sock, answer(f"answer {rid}", rid=rid))

    h.run(script)
    assert default_request(h.peer) == "answer 1"
    assert_breaks(h.peer, lambda: default_request(h.peer), "did not answer within 0.1 s", within=1.0)
    h.join()


def test_suite_answers_forbidden_requests_without_sharing_anything(hostile: Callable[..., Hostile]) -> None:
    """Refusals go back as exceptions with no reference and no traceback; the link stays up."""
    h = hostile(timeout=2)
    seen: dict[int, list[object]] = {}

    def script() -> None:
        request = recv_frame(h.sock)
        callback_id, foreign_id = (item[1] for item in request[4][2])
        asks = [
            ["q", 5, "import", None, "os"],
            ["q", 6, "exports", callback_id],
            ["q", 7, "get", callback_id, "__globals__"],
            ["q", 8, "get", foreign_id, "value"],
            ["q", 9, "set", callback_id, "__doc__", "x"],
            ["q", 10, "del", foreign_id, "value"],
            ["q", 11, "call", foreign_id, ["L", 0, []], ["D", 1, []]],
            ["q", 12, "op", callback_id, "__call__", ["L", 0, [41]]],
        ]
        for ask in asks:
            send_frame(h.sock, ask)
            message = recv_frame(h.sock)
            seen[message[1]] = message
        send_frame(h.sock, answer("done"))

    h.run(script)
    assert h.peer.request("call", 0, [lambda x: x + 1, Foreign()], {}) == "done"
    h.join()
    expected = {
        5: "PermissionError",
        6: "PermissionError",
        7: "AttributeError",
        8: "AttributeError",
        9: "PermissionError",  # set
        10: "PermissionError",  # del
        11: "TypeError",
    }
    for rid, name in expected.items():
        kind, _, error, updates = seen[rid]
        assert kind == "x" and updates == [], seen[rid]
        tag, cls, _args, message, reference, tb = error
        assert (tag, cls) == ("X", ["b", name]), error
        assert reference is None and tb is None, "the strict side shared an exception or a traceback"
        assert "Traceback" not in message and "test_wire" not in message
    assert seen[12][0] == "r" and seen[12][2] == 42
    assert h.peer.broken is None and Foreign.value == "foreign"


def test_callbacks_nesting_beyond_max_nesting_unwind_cleanly(hostile: Callable[..., Hostile]) -> None:
    """The deliverable answers every request with a request that makes the suite call back."""
    h = hostile(timeout=2)
    calls: list[int] = []
    report: dict[str, object] = {}

    def callback() -> object:
        calls.append(h.peer.depth)
        return h.peer.request("get", 0, "again")

    def script() -> None:
        pending: list[int] = []
        while True:
            message = recv_frame(h.sock)
            if message[0] != "q":
                report["error"] = message
                break
            pending.append(message[1])
            send_frame(h.sock, ["q", 1000 + len(pending), "call", 0, ["L", 0, []], ["D", 1, []]])
        while pending:  # answer every open request, innermost first
            rid = pending.pop()
            send_frame(h.sock, answer("done" if rid == 1 else "unwound", rid=rid))
            if pending:
                report.setdefault("answers", []).append(recv_frame(h.sock))  # type: ignore[attr-defined]

    h.run(script)
    assert h.peer.request("call", 0, [callback], {}) == "done"
    h.join()
    kind, _, error, _ = report["error"]  # type: ignore[misc]
    assert kind == "x" and error[1] == ["b", "RuntimeError"]  # the judge's refusal, in its own words
    assert f"nest deeper than {wire.MAX_NESTING}" in error[3]
    assert len(calls) == wire.MAX_NESTING and max(calls) == wire.MAX_NESTING
    assert all(a[0] == "r" and a[2] == "unwound" for a in report["answers"])  # type: ignore[attr-defined]
    assert h.peer.broken is None and h.peer.depth == 0


def test_hashing_while_decoding_cannot_recurse_without_bound(hostile: Callable[..., Hostile]) -> None:
    """Each answer holds a set of a new remote object whose hash the suite must ask for."""
    h = hostile(timeout=2)

    def script() -> None:
        described = False
        while True:
            message = recv_frame(h.sock)
            cls = ["c", 1, None] if described else ["c", 1, desc(n="Hashy")]
            described = True
            send_frame(h.sock, answer(["S", 0, [["p", 100 + message[1], cls]]], rid=message[1]))

    h.run(script)
    assert_breaks(h.peer, lambda: default_request(h.peer), f"nest deeper than {wire.MAX_NESTING}", within=3)


# -- fuzzing: whatever arrives, a value or LinkBroken ------------------------------------------------


class Widget:
    def __init__(self) -> None:
        self.x = 1

    def __call__(self) -> int:
        return 1

    def __len__(self) -> int:
        return 1


def fuzz_corpus() -> list[object]:
    values: list[object] = [v for v in PLAIN.values() if not isinstance(v, type)]
    values += [Widget(), [Widget(), {Widget()}], KeyError("k", [1]), {"e": ValueError(1)}, [Point(1, 2)] * 2]
    corpus = []
    for value in values:  # each encoded on its own, as a first message would be
        corpus.append(wire.Encoder(wire.Peer(None, strict=False)).value(value))
    return corpus


ATOMS: list[object] = [None, True, 0, -1, 2, 2**70, 1.5, "", "T", "L", [], ["M", 0], ["a", 0], ["o", 0], {"k": 1}]
TAGS = sorted(wire.DECODERS)


def mutate(node: object, rng: random.Random) -> object:
    if isinstance(node, list) and node and rng.random() < 0.7:
        node = list(node)
        i = rng.randrange(len(node))
        node[i] = mutate(node[i], rng)
        return node
    choice = rng.randrange(8)
    if choice == 0 and isinstance(node, list) and node and isinstance(node[0], str):
        return [rng.choice(TAGS), *node[1:]]
    if choice == 1 and isinstance(node, list) and node:
        return node[: rng.randrange(len(node))]
    if choice == 2 and isinstance(node, list) and node:
        return [*node, rng.choice(node)]
    if choice == 3 and isinstance(node, int) and not isinstance(node, bool):
        return node + rng.choice([-2, -1, 1, 100])
    if choice == 4:
        return rng.choice([["T", [node]], ["L", 0, [node]], ["S", 0, [node]], ["D", 0, [[node, node]]]])
    if choice == 5:
        return [rng.choice(["M", "a", "o"]), rng.randrange(4)]
    return copy.deepcopy(rng.choice(ATOMS))


@pytest.mark.parametrize("seed", range(3))
def test_fuzzed_answers_give_a_value_or_linkbroken(seed: int) -> None:
    rng = random.Random(seed)
    corpus = fuzz_corpus()
    outcomes: collections.Counter[str] = collections.Counter()
    for _ in range(200):
        value = rng.choice(corpus)
        for _ in range(rng.randint(1, 3)):
            value = mutate(value, rng)
        updates = mutate([[1, ["L", 9, [1]]]], rng) if rng.random() < 0.2 else []
        a, b = socket.socketpair()
        try:
            peer = wire.Peer(a, strict=True, timeout=0.05, first_timeout=0.05, suite_files="/nonexistent/")
            b.sendall(frame(["r", 1, value, updates]))
            start = time.monotonic()
            try:
                default_request(peer)
            except wire.LinkBroken:
                assert_readable(peer.broken)
                outcomes["timed out" if "did not answer" in str(peer.broken) else "refused"] += 1
            except BaseException as exc:
                pytest.fail(f"{type(exc).__name__}: {exc} escaped for the answer {json.dumps(value)[:300]}")
            else:
                assert peer.broken is None
                outcomes["value"] += 1
            assert time.monotonic() - start < 1
        finally:
            a.close()
            b.close()
    assert outcomes["refused"] >= 20 and outcomes["value"] >= 20, outcomes  # the mutations reach both ends


# -- 8. LinkBroken is no ordinary error ----------------------------------------------------------


def test_linkbroken_is_not_an_exception(hostile: Callable[..., Hostile]) -> None:
    assert issubclass(wire.LinkBroken, BaseException) and not issubclass(wire.LinkBroken, Exception)
    h = hostile()
    h.send(b"garbage")
    caught = []
    with pytest.raises(wire.LinkBroken):
        try:
            default_request(h.peer)
        except Exception as exc:  # what a suite might write around a call
            caught.append(exc)
    assert caught == []
    with pytest.raises(wire.LinkBroken), pytest.raises(Exception):  # noqa: B017
        default_request(h.peer)
    assert h.peer.broken is not None


# -- 9. values near the decoder's limits, which once broke the link ----------------------------------

NEAR_LIMITS = """
import collections
import decimal
import fractions


def items_view(d):
    return d.items()


def exception_keys_sharing():
    lst = [1]
    return {"a": lst, ValueError(lst): 0}


def exception_keys_with_lists():
    return {ValueError([1]): [2], KeyError([3]): [4]}


class Thing:
    pass


def thing_and_too_deep():
    value = 0
    for _ in range(150):
        value = [value]
    return [Thing(), value]


def thing():
    return Thing()


def at_max_depth(kind):
    leaf = {"complex": 1j, "fraction": fractions.Fraction(1, 3), "range": range(3), "exception": KeyError("k")}[kind]
    for _ in range(100):
        leaf = [leaf]
    return leaf


def big_int():
    return 1 << 300_000


def long_decimal():
    return decimal.Decimal("1." + "0" * 1000)


def wide_namedtuple():
    Wide = collections.namedtuple("Wide", [f"f{i}" for i in range(300)])
    return Wide(*range(300))


def renamed_namedtuple():
    Row = collections.namedtuple("Row", ["id", "class", "2nd"], rename=True)
    return Row(1, 2, 3)


def generic_instance():
    return type("Model[int]", (), {})()


class Group(ExceptionGroup):
    pass


def raise_group():
    raise Group("several", [ValueError("a"), KeyError("b")])


def pairs(a, b):
    return zip(a, b)


def evens(xs):
    return filter(lambda x: x % 2 == 0, xs)


def numbered(xs):
    return enumerate(xs)


def backwards(xs):
    return reversed(xs)


def as_text(xs):
    return map(str, xs)


def sentinel():
    return object()


def ident(x):
    return x
"""


@pytest.mark.parametrize("value", [{"a": 1, "b": 2}, {1: 2}], ids=["str-keys", "int-keys"])
def test_dict_items_view_crosses(link: Link, value: dict[object, object]) -> None:
    mod = link.load(NEAR_LIMITS)
    got = crosses(lambda: mod.items_view(value))
    assert list(got) == list(value.items())  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "call, expected",
    [
        pytest.param(lambda m: list(m.pairs([1, 2], "ab")), [(1, "a"), (2, "b")], id="zip"),
        pytest.param(lambda m: list(m.evens([1, 2, 3, 4])), [2, 4], id="filter"),
        pytest.param(lambda m: list(m.numbered("ab")), [(0, "a"), (1, "b")], id="enumerate"),
        pytest.param(lambda m: list(m.backwards("ab")), ["b", "a"], id="reversed"),
        pytest.param(lambda m: list(m.as_text([1, 2])), ["1", "2"], id="map"),
        pytest.param(lambda m: m.sentinel() is not None, True, id="object"),
    ],
)
def test_builtin_iterators_and_sentinels_cross(link: Link, call: Callable[[Any], object], expected: object) -> None:
    mod = link.load(NEAR_LIMITS)
    assert crosses(lambda: call(mod)) == expected


@pytest.mark.parametrize("make", [object, lambda: map(str, [1])], ids=["object", "map"])
def test_suite_sentinel_crosses(make_link: Callable[..., Link], make: Callable[[], object]) -> None:
    link = make_link(timeout=0.3)
    mod = link.load(NEAR_LIMITS)
    value = make()
    assert crosses(lambda: mod.ident(value), link.server) is value


@pytest.mark.parametrize("function", ["exception_keys_sharing", "exception_keys_with_lists"])
def test_dict_keys_holding_containers_cross(link: Link, function: str) -> None:
    mod = link.load(NEAR_LIMITS)
    got = crosses(lambda: getattr(mod, function)())
    assert isinstance(got, dict) and len(got) == 2


def test_class_described_in_a_message_that_never_crossed(link: Link) -> None:
    mod = link.load(NEAR_LIMITS)
    with pytest.raises(ValueError, match="deeper than 100"):
        mod.thing_and_too_deep()
    assert isinstance(crosses(mod.thing), mod.Thing)


def test_suite_class_described_in_a_request_that_never_crossed(make_link: Callable[..., Link]) -> None:
    link = make_link(timeout=0.3)
    mod = link.load(NEAR_LIMITS)
    with pytest.raises(wire.NotJudgeable, match="deeper than 100"):
        mod.ident([Foreign(), nested_lists(150, 0)])
    mine = Foreign()
    assert crosses(lambda: mod.ident(mine), link.server) is mine


@pytest.mark.parametrize("kind", ["complex", "fraction", "range", "exception"])
def test_value_at_max_depth_crosses(link: Link, kind: str) -> None:
    mod = link.load(NEAR_LIMITS)
    with contextlib.suppress(ValueError):  # a clean refusal would do too
        crosses(lambda: mod.at_max_depth(kind))
    assert link.peer.broken is None


@pytest.mark.parametrize(
    "function", ["big_int", "long_decimal", "wide_namedtuple", "renamed_namedtuple", "generic_instance"]
)
def test_value_beyond_a_decoder_limit_fails_cleanly(link: Link, function: str) -> None:
    mod = link.load(NEAR_LIMITS)
    with contextlib.suppress(ValueError):  # a clean refusal would do too
        crosses(lambda: getattr(mod, function)())
    assert link.peer.broken is None


def test_suite_value_beyond_a_decoder_limit_fails_cleanly(make_link: Callable[..., Link]) -> None:
    link = make_link(timeout=0.3)
    mod = link.load(NEAR_LIMITS)
    with contextlib.suppress(ValueError):  # a clean refusal would do too
        crosses(lambda: mod.ident(1 << 300_000), link.server)
    assert link.peer.broken is None


def test_oserror_keeps_its_filename(mod: Any, link: Link) -> None:
    path = str(link.deliverable_dir / "missing.txt")
    with pytest.raises(FileNotFoundError) as info:
        mod.open_missing(path)
    assert info.value.filename == path
    assert str(info.value) == f"[Errno 2] No such file or directory: {path!r}"


def test_exception_group_subclass_crosses(link: Link) -> None:
    mod = link.load(NEAR_LIMITS)
    with pytest.raises(ExceptionGroup):
        crosses(mod.raise_group)
