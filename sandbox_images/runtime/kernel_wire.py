"""The judge's wire: plain data and remote references between the suite's process and the
deliverable's process. Loaded by both (kernel_judge.py on the suite's side, kernel_host.py on
the deliverable's); only the suite's side is trusted, so everything it reads is checked.

Frames are a 4-byte big-endian length and a JSON document. Values are JSON scalars or
tagged lists, decoded by building only the types below: no pickle, no eval, no class of
the peer's is ever instantiated with the peer's code.

    None bool int str float          as JSON (["f", "nan"] for non-finite floats, ["I", hex] for huge ints)
    ["L", memo, items]  list          ["D", memo, [[k, v], ...]] dict     ["S", memo, items] set
    ["A", memo, b64]    bytearray     ["T", items] tuple   ["F", items] frozenset   ["B", b64] bytes
    ["N", name, fields, items] namedtuple   ["C", re, im] complex   ["Dec", s] Decimal   ["Fr", n, d] Fraction
    ["dt"|"d"|"t", iso] datetime/date/time   ["td", d, s, us] timedelta   ["sl", a, b, c] slice
    ["R", a, b, c] range   ["K"|"V"|"It", items] dict views   ["..."] Ellipsis   ["NI"] NotImplemented
    ["M", memo]         the container with that memo number, earlier in this message (shared or cyclic)
    ["a", n]            container n of the request this message answers (identity kept: ``result is arg``)
    ["p", id, class]    an object that stays in the sender's process (a remote reference)
    ["o", id]           one of the receiver's own objects, sent back
    ["c", id, desc]     a class of the sender's; desc (name, module, bases, special methods) the first time
    ["b", name]         a built-in class, by name
    ["X", class, args, message, id, traceback]   an exception

Messages: ["q", rid, op, target, ...] a request (call, get, set, del, op, import, exports),
["r", rid, value, updates] and ["x", rid, exception, updates] its answer; ``updates`` carry the
new contents of mutable containers the request sent, so in-place mutation is seen by the caller.
"""

import base64
import builtins
import collections
import datetime
import decimal
import fractions
import importlib
import importlib.machinery
import json
import math
import struct
import sys
import time
import traceback
import types
import weakref

MAX_FRAME = 16 * 1024 * 1024  # bytes of one message (at most; the suite's side may set less)
MAX_ITEMS = 1_000_000  # units of decoding cost in one message: a scalar 1, a container 4 (likewise)
MAX_DEPTH = 100  # nesting of one value
MAX_NESTING = 32  # calls in flight between the two processes (callbacks included)
MAX_NAME = 200
MAX_TEXT = 16 * 1024
MAX_CLASSES = 10_000
MAX_SAME_HASH = 64  # keys of one dict or set sharing a hash: more is a collision attack
MAX_INT_BITS = 1 << 20  # a huge int crosses as hex text
MAX_FRACTION_BITS = 1 << 16  # larger parts make Fraction() slow to rebuild: such a value stays a reference
MAX_DECIMAL = 1000  # characters
MAX_FIELDS = 255  # of a namedtuple

FORWARDED = frozenset(  # special methods a stand-in forwards when the real class defines them
    """__len__ __iter__ __next__ __reversed__ __bool__ __contains__ __getitem__ __setitem__ __delitem__ __index__
    __int__ __float__ __complex__ __round__ __trunc__ __floor__ __ceil__ __abs__ __neg__ __pos__ __invert__
    __enter__ __exit__ __length_hint__ __bytes__ __format__ __dir__ __call__ __add__ __sub__ __mul__ __matmul__
    __truediv__ __floordiv__ __mod__ __divmod__ __pow__ __lshift__ __rshift__ __and__ __xor__ __or__ __radd__
    __rsub__ __rmul__ __rmatmul__ __rtruediv__ __rfloordiv__ __rmod__ __rdivmod__ __rpow__ __rlshift__
    __rrshift__ __rand__ __rxor__ __ror__ __iadd__ __isub__ __imul__ __imatmul__ __itruediv__ __ifloordiv__
    __imod__ __ipow__ __ilshift__ __irshift__ __iand__ __ixor__ __ior__""".split()  # noqa: SIM905
)
COMPARISONS = frozenset({"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"})
BINARY = FORWARDED & {  # operators whose other operand the object would see
    f"__{prefix}{op}__"
    for op in "add sub mul matmul truediv floordiv mod divmod pow lshift rshift and xor or".split()  # noqa: SIM905
    for prefix in ("", "r", "i")
}
ALWAYS = frozenset({"__repr__", "__str__", "__hash__"}) | COMPARISONS
BUILTIN_CLASSES = {n: c for n, c in vars(builtins).items() if isinstance(c, type) and not n.startswith("_")}
OPS = frozenset({"call", "get", "set", "del", "op", "import", "exports"})


class LinkBroken(BaseException):
    """The other process broke the link: it hung, died, or sent what the protocol forbids.

    A BaseException, so that neither ``except Exception`` nor ``pytest.raises(Exception)`` in
    a suite can take it for an ordinary error of the deliverable.
    """


class NotJudgeable(BaseException):
    """The suite asked for something the judge cannot carry across faithfully: an operator between
    an object of the deliverable and a value of the suite's, or a value beyond the link's limits.

    A BaseException, for the same reason as LinkBroken: a suite expecting TypeError or ValueError
    must not take the judge's refusal for the deliverable's answer. The peer records it, and the
    judgement is refunded with the reason.
    """


class Invalid(Exception):
    """What the peer sent is not a valid message; the link is broken."""


# -- plain data ------------------------------------------------------------------------


def _b64(data):
    return base64.b64encode(bytes(data)).decode("ascii")


def _unb64(text):
    if not isinstance(text, str):
        raise Invalid("bytes must be base64 text")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise Invalid("bad base64") from None


def _identifier(name, what="a name"):
    if not isinstance(name, str) or not name.isidentifier() or len(name) > MAX_NAME:
        raise Invalid(f"{what} is not an identifier")
    return name


def _text(value, what):
    if not isinstance(value, str) or len(value) > MAX_TEXT * 4:
        raise Invalid(f"{what} must be text of at most {MAX_TEXT * 4} characters")
    return value


def _check_hashes(keys):
    """Refuse sets of keys crafted to share one hash (a dict built from them takes quadratic time)."""
    if len(keys) <= MAX_SAME_HASH:
        return
    counts = collections.Counter(hash(k) for k in keys)
    if counts and max(counts.values()) > MAX_SAME_HASH:
        raise Invalid(f"more than {MAX_SAME_HASH} keys share one hash")


class Encoder:
    """One message's encoding: containers are numbered so sharing, cycles and identity survive."""

    def __init__(self, peer, known=None):
        self.peer = peer
        self.known = known or {}  # id(container of the request) -> its number
        self.memo = {}
        self.containers = []  # numbered mutable containers, for the answer's updates
        self._keep = []  # objects whose id() is in memo stay alive while encoding
        self.described = set()  # classes described in this message

    def value(self, obj, depth=0):
        if depth > MAX_DEPTH:
            raise ValueError(f"the value nests deeper than {MAX_DEPTH} levels and cannot cross to the other process")
        t = type(obj)
        if obj is None or t is bool or t is str:
            return obj
        if t is int:
            if obj.bit_length() < 10_000:
                return obj
            if obj.bit_length() > MAX_INT_BITS:
                raise ValueError(f"an integer of more than {MAX_INT_BITS:,} bits cannot cross to the other process")
            return ["I", format(obj, "x")]
        if t is float:
            return obj if math.isfinite(obj) else ["f", repr(obj)]
        peer = self.peer
        if isinstance(obj, Remote) and object.__getattribute__(obj, "_wire_peer") is peer:
            return ["o", object.__getattribute__(obj, "_wire_id")]
        if isinstance(obj, type) and obj.__dict__.get("_wire_peer") is peer:
            return ["o", obj.__dict__["_wire_id"]]
        key = id(obj)
        if key in self.known:
            return ["a", self.known[key]]
        if key in self.memo:
            return ["M", self.memo[key]]
        if isinstance(obj, BaseException):
            return self.exception(obj, depth)
        if isinstance(obj, (list, dict, set, bytearray)):
            number = self._number(obj)
            if isinstance(obj, list):
                return ["L", number, [self.value(x, depth + 1) for x in obj]]
            if isinstance(obj, dict):
                return ["D", number, [[self.value(k, depth + 1), self.value(v, depth + 1)] for k, v in obj.items()]]
            if isinstance(obj, set):
                return ["S", number, [self.value(x, depth + 1) for x in obj]]
            return ["A", number, _b64(obj)]
        plain = self._plain(obj, depth)
        if plain is not None:
            return plain
        if isinstance(obj, type):
            return self.cls(obj, depth, handed=True)
        return ["p", peer.export(obj, handed=True), self.cls(t, depth, of_instance=True)]

    def _number(self, obj):
        number = self.memo[id(obj)] = len(self.memo)
        self._keep.append(obj)
        self.containers.append(obj)
        return number

    def _plain(self, obj, depth):  # noqa: C901 - one branch per plain type
        if isinstance(obj, tuple):
            items = [self.value(x, depth + 1) for x in obj]
            if _namedtuple_fields(obj):
                return ["N", type(obj).__name__, list(type(obj)._fields), items]
            return ["T", items]
        if isinstance(obj, frozenset):
            return ["F", [self.value(x, depth + 1) for x in obj]]
        if isinstance(obj, bytes):
            return ["B", _b64(obj)]
        if isinstance(obj, bool):
            return bool(obj)
        if isinstance(obj, int):  # IntEnum, IntFlag and other int subclasses cross as their value
            return self.value(int(obj), depth)
        if isinstance(obj, float):
            return self.value(float(obj), depth)
        if isinstance(obj, str):
            return str.__str__(obj)
        if isinstance(obj, complex):
            return ["C", self.value(obj.real, depth + 1), self.value(obj.imag, depth + 1)]
        if isinstance(obj, decimal.Decimal):
            text = str(obj)
            return ["Dec", text] if len(text) <= MAX_DECIMAL else None
        if isinstance(obj, fractions.Fraction):
            if max(obj.numerator.bit_length(), obj.denominator.bit_length()) > MAX_FRACTION_BITS:
                return None  # crosses as a reference: rebuilding it would cost the receiver seconds
            return ["Fr", self.value(obj.numerator, depth + 1), self.value(obj.denominator, depth + 1)]
        if isinstance(obj, (datetime.datetime, datetime.time)) and not _fixed_offset(obj.tzinfo):
            return None
        if isinstance(obj, datetime.datetime):
            return ["dt", obj.isoformat()]
        if isinstance(obj, datetime.date):
            return ["d", obj.isoformat()]
        if isinstance(obj, datetime.time):
            return ["t", obj.isoformat()]
        if isinstance(obj, datetime.timedelta):
            return ["td", obj.days, obj.seconds, obj.microseconds]
        if isinstance(obj, slice):
            return [
                "sl",
                self.value(obj.start, depth + 1),
                self.value(obj.stop, depth + 1),
                self.value(obj.step, depth + 1),
            ]
        if isinstance(obj, range):
            return [
                "R",
                self.value(obj.start, depth + 1),
                self.value(obj.stop, depth + 1),
                self.value(obj.step, depth + 1),
            ]
        if obj is Ellipsis:
            return ["..."]
        if obj is NotImplemented:
            return ["NI"]
        view = VIEW_TAGS.get(type(obj))
        if view == "It":
            return [view, [[self.value(k, depth + 1), self.value(v, depth + 1)] for k, v in obj]]
        if view is not None:
            return [view, [self.value(x, depth + 1) for x in obj]]
        return None

    def cls(self, cls, depth=0, handed=False, of_instance=False):
        """A class reference. Only a class ``handed`` over as a value may be called by the other side;
        one that is only the type of a value, a base or an exception's class is described, nothing more.
        A built-in class goes by name, except as the type of a reference (a zip, a map, an object())."""
        if BUILTIN_CLASSES.get(cls.__name__) is cls and not of_instance:
            return ["b", cls.__name__]
        if cls.__dict__.get("_wire_peer") is self.peer:
            return ["o", cls.__dict__["_wire_id"]]
        if depth > MAX_DEPTH:
            raise ValueError("the class hierarchy is too deep to cross")
        number = self.peer.export(cls, handed)
        if number in self.peer.described or number in self.described:
            return ["c", number, None]
        self.described.add(number)  # the peer learns it once this message has crossed
        bases = [self.cls(b, depth + 1) for b in cls.__bases__ if b is not object]
        special = sorted(n for n in FORWARDED if _defines(cls, n))
        desc = {"n": cls.__name__, "m": str(getattr(cls, "__module__", "") or "")[:MAX_NAME], "b": bases,
                "d": special, "h": getattr(cls, "__hash__", None) is not None}  # fmt: skip
        return ["c", number, desc]

    def exception(self, exc, depth):
        if depth >= MAX_DEPTH:  # its arguments would be deeper than the receiver reads
            raise ValueError(f"the value nests deeper than {MAX_DEPTH} levels and cannot cross to the other process")
        origin = getattr(exc, "__dict__", {}).get("_wire_origin")
        if origin is not None and origin[0] is self.peer:
            return ["o", origin[1]]  # the receiver's own exception, come back: the very object it raised
        if self.peer.strict and not exc.__dict__.get("_wire_own"):
            # The suite's exceptions carry its assertions' explanations (expected values): the
            # deliverable gets the class alone, and the object back if it lets the exception through.
            number = self.peer.export(exc)
            return ["X", self.cls(type(exc), depth), [], "", number, None]
        try:
            raw = exc.args
            if isinstance(exc, OSError) and exc.filename is not None:  # kept out of args by OSError itself
                raw = (exc.errno, exc.strerror, exc.filename, None, exc.filename2)[: 5 if exc.filename2 else 3]
            args = [self.value(a, depth + 1) for a in raw]
        except (ValueError, RecursionError):
            args = [_safe_str(exc)]
        number = self.peer.export(exc) if self.peer.share_exceptions else None
        tb = None
        if self.peer.share_exceptions and exc.__traceback__ is not None:
            tb = "".join(traceback.format_exception(exc))[-MAX_TEXT:]
        return ["X", self.cls(type(exc), depth), args, _safe_str(exc)[:MAX_TEXT], number, tb]

    def contents(self, obj):
        """A numbered container's items, for an update (the container itself is known by number)."""
        if isinstance(obj, list):
            return [self.value(x, 1) for x in obj]
        if isinstance(obj, dict):
            return [[self.value(k, 1), self.value(v, 1)] for k, v in obj.items()]
        if isinstance(obj, set):
            return [self.value(x, 1) for x in obj]
        return _b64(obj)


def _defines(cls, name):
    """Whether ``cls`` (not ``object``, not its metaclass) defines the special method ``name``."""
    return any(k.__dict__.get(name) is not None for k in cls.__mro__ if k is not object)


def _namedtuple_fields(obj):
    """Whether ``obj`` is a namedtuple the receiver can rebuild (fields it accepts, names it accepts)."""
    fields = getattr(type(obj), "_fields", None)
    return (
        isinstance(fields, tuple) and len(fields) == len(obj) <= MAX_FIELDS and type(obj).__name__.isidentifier()
        and all(isinstance(f, str) and f.isidentifier() and not f.startswith("_") for f in fields)
    )  # fmt: skip


def _fixed_offset(tz):
    return tz is None or isinstance(tz, datetime.timezone)


def _safe_str(exc):
    try:
        return str(exc)
    except BaseException:  # noqa: BLE001 - a broken __str__ is the other side's problem, not ours
        return f"<{type(exc).__name__} whose message cannot be shown>"


VIEW_TAGS = {type({}.keys()): "K", type({}.values()): "V", type({}.items()): "It"}


class Decoder:
    """One message's decoding. Everything here is untrusted: bounded, checked, never executed."""

    def __init__(self, peer, request_containers=None):
        self.peer = peer
        self.args = request_containers or []  # the containers of the request this message answers
        self.memo = []
        self.items = 0
        self.building = set()

    def value(self, data, depth=0):
        self.items += 1 if not isinstance(data, list) else 4  # a container costs about four scalars to hold
        if self.items > self.peer.max_items:
            raise Invalid(f"a message holding more than the suite's process can decode ({self.peer.max_items:,} units)")
        if depth > MAX_DEPTH:
            raise Invalid(f"a value nested deeper than {MAX_DEPTH} levels")
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise Invalid("a value that is neither JSON scalar nor tagged")
        handler = DECODERS.get(data[0])
        if handler is None:
            raise Invalid("an unknown tag")
        try:
            return handler(self, data, depth + 1)
        except (TypeError, ValueError, ArithmeticError, IndexError, KeyError) as exc:
            # The reason names the kind of fault, never the peer's text: it could carry the suite's
            # private values (or anything) into the public verdict.
            raise Invalid(f"a malformed {data[0]!r} value ({type(exc).__name__})") from None

    def seq(self, items, depth):
        if not isinstance(items, list):
            raise Invalid("a sequence that is not a list")
        return [self.value(x, depth) for x in items]

    def hashable(self, items, depth):
        values = self.seq(items, depth)
        for v in values:
            hash(v)  # TypeError (unhashable) becomes Invalid above
        _check_hashes(values)
        return values

    def register(self, number, obj):
        if number != len(self.memo):
            raise Invalid("containers numbered out of order")
        self.memo.append(obj)
        return obj

    def pairs(self, items, depth):
        if not isinstance(items, list) or not all(isinstance(p, list) and len(p) == 2 for p in items):
            raise Invalid("a dict whose items are not pairs")
        pairs = [(self.value(p[0], depth), self.value(p[1], depth)) for p in items]  # in the order written
        keys = [k for k, _ in pairs]
        for k in keys:
            hash(k)
        _check_hashes(keys)
        return pairs

    def contents(self, original, data):
        """New contents for one of our containers (an update), applied later."""
        if isinstance(original, list):
            return self.seq(data, 1)
        if isinstance(original, dict):
            return self.pairs(data, 1)
        if isinstance(original, set):
            return self.hashable(data, 1)
        return _unb64(data)

    # classes and objects of the peer
    def cls(self, data, depth):
        if not isinstance(data, list) or not data:
            raise Invalid("a malformed class reference")
        if data[0] == "b":
            cls = BUILTIN_CLASSES.get(data[1]) if len(data) == 2 and isinstance(data[1], str) else None
            if cls is None:
                raise Invalid("an unknown built-in class")
            return cls
        if data[0] == "o":
            return self.peer.exported(data[1], type)
        if data[0] != "c" or len(data) != 3 or not isinstance(data[1], int):
            raise Invalid("a malformed class reference")
        known = self.peer.classes.get(data[1])
        if known is not None:
            return known
        if data[2] is None or data[1] in self.building:
            raise Invalid("a class used before it was described")
        if len(self.peer.classes) >= MAX_CLASSES:
            raise Invalid(f"more than {MAX_CLASSES} classes")
        self.building.add(data[1])
        try:
            return self.peer.make_class(data[1], data[2], self, depth)
        finally:
            self.building.discard(data[1])


def _dec_int(d, data, depth):
    text = data[1]
    if not isinstance(text, str) or len(text) > MAX_INT_BITS // 4 + 1:
        raise Invalid(f"an integer of more than {MAX_INT_BITS:,} bits")
    return int(text, 16)


def _dec_float(d, data, depth):
    if data[1] not in ("nan", "inf", "-inf"):
        raise Invalid("a non-finite float other than nan or inf")
    return float(data[1])


def _dec_list(d, data, depth):
    lst = d.register(data[1], [])
    lst.extend(d.seq(data[2], depth))
    return lst


def _dec_dict(d, data, depth):
    dct = d.register(data[1], {})
    dct.update(d.pairs(data[2], depth))
    return dct


def _dec_set(d, data, depth):
    s = d.register(data[1], set())
    s.update(d.hashable(data[2], depth))
    return s


def _dec_bytearray(d, data, depth):
    return d.register(data[1], bytearray(_unb64(data[2])))


def _dec_back(d, data, depth):
    if not isinstance(data[1], int) or not 0 <= data[1] < len(d.memo):
        raise Invalid("a reference to a container not sent")
    return d.memo[data[1]]


def _dec_arg(d, data, depth):
    if not isinstance(data[1], int) or not 0 <= data[1] < len(d.args):
        raise Invalid("a reference to an argument not sent")
    return d.args[data[1]]


def _dec_namedtuple(d, data, depth):
    name = _identifier(data[1], "a namedtuple's name")
    if not isinstance(data[2], list) or len(data[2]) > MAX_FIELDS:
        raise Invalid("a namedtuple's fields")
    fields = tuple(_identifier(f, "a namedtuple field") for f in data[2])
    return d.peer.namedtuple(name, fields)(*d.seq(data[3], depth))


def _dec_datetime(kind):
    parse = {"dt": datetime.datetime, "d": datetime.date, "t": datetime.time}[kind].fromisoformat

    def decode(d, data, depth):
        text = data[1]
        if not isinstance(text, str) or len(text) > 64:
            raise Invalid("a malformed date or time")
        return parse(text)

    return decode


def _dec_view(kind):
    def decode(d, data, depth):
        if kind == "K":
            return dict.fromkeys(d.hashable(data[1], depth)).keys()
        if kind == "V":
            return dict(enumerate(d.seq(data[1], depth))).values()
        return dict(d.pairs(data[1], depth)).items()

    return decode


def _dec_decimal(d, data, depth):
    text = _text(data[1], "a decimal")
    if len(text) > MAX_DECIMAL:
        raise Invalid(f"a decimal of more than {MAX_DECIMAL} characters")
    return decimal.Decimal(text)


def _dec_fraction(d, data, depth):
    num, den = d.value(data[1], depth), d.value(data[2], depth)
    if type(num) is not int or type(den) is not int:
        raise Invalid("a fraction of non-integers")
    if max(num.bit_length(), den.bit_length()) > MAX_FRACTION_BITS:
        raise Invalid(f"a fraction with parts of more than {MAX_FRACTION_BITS:,} bits")
    return fractions.Fraction(num, den)


def _dec_number(d, data, depth):
    re, im = d.value(data[1], depth), d.value(data[2], depth)
    if type(re) is not float or type(im) is not float:
        raise Invalid("a complex of non-floats")
    return complex(re, im)


def _dec_scalar3(kind):
    def decode(d, data, depth):
        a, b, c = (d.value(x, depth) for x in data[1:4])
        if kind == "R":
            if not all(type(x) is int for x in (a, b, c)):
                raise Invalid("a range of non-integers")
            return range(a, b, c)
        return slice(a, b, c)

    return decode


def _dec_exception(d, data, depth):
    if len(data) != 6:
        raise Invalid("a malformed exception")
    cls = d.cls(data[1], depth)
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        raise Invalid("an exception whose class is not an exception class")
    args = tuple(d.seq(data[2], depth))
    message = _text(data[3], "an exception's message")[:MAX_TEXT]
    number = data[4]
    if number is not None and not isinstance(number, int):
        raise Invalid("a malformed exception reference")
    tb = data[5] if isinstance(data[5], str) else None
    return d.peer.make_exception(cls, args, message, number, tb)


def _dec_proxy(d, data, depth):
    if len(data) != 3 or not isinstance(data[1], int):
        raise Invalid("a malformed reference")
    cls = d.cls(data[2], depth)
    if not (isinstance(cls, RemoteClass) and issubclass(cls, Remote)):
        raise Invalid("a reference whose class is not one of the sender's classes")
    return d.peer.proxy(data[1], cls)


def _dec_own(d, data, depth):
    return d.peer.exported(data[1])


def _dec_class(d, data, depth):
    return d.cls(data, depth)


DECODERS = {
    "I": _dec_int,
    "f": _dec_float,
    "L": _dec_list,
    "D": _dec_dict,
    "S": _dec_set,
    "A": _dec_bytearray,
    "T": lambda d, data, depth: tuple(d.seq(data[1], depth)),
    "F": lambda d, data, depth: frozenset(d.hashable(data[1], depth)),
    "B": lambda d, data, depth: _unb64(data[1]),
    "M": _dec_back,
    "a": _dec_arg,
    "N": _dec_namedtuple,
    "C": _dec_number,
    "Dec": _dec_decimal,
    "Fr": _dec_fraction,
    "dt": _dec_datetime("dt"),
    "d": _dec_datetime("d"),
    "t": _dec_datetime("t"),
    "td": lambda d, data, depth: datetime.timedelta(*(int(_strict_int(x)) for x in data[1:4])),
    "sl": _dec_scalar3("sl"),
    "R": _dec_scalar3("R"),
    "K": _dec_view("K"),
    "V": _dec_view("V"),
    "It": _dec_view("It"),
    "...": lambda d, data, depth: Ellipsis,
    "NI": lambda d, data, depth: NotImplemented,
    "X": _dec_exception,
    "p": _dec_proxy,
    "o": _dec_own,
    "c": _dec_class,
    "b": _dec_class,
}


def _strict_int(x):
    if type(x) is not int:
        raise Invalid("a timedelta of non-integers")
    return x


# -- stand-ins for the peer's objects --------------------------------------------------


def _peer_of(obj):
    return object.__getattribute__(obj, "_wire_peer")


def _rid(obj):
    return object.__getattribute__(obj, "_wire_id")


def _forward(name):
    def method(self, *args):
        return _peer_of(self).request("op", _rid(self), name, list(args))

    method.__name__ = name
    return method


_SYMBOLS = {"__eq__": "==", "__ne__": "!=", "__lt__": "<", "__le__": "<=", "__gt__": ">", "__ge__": ">="}
for _op, _symbol in zip(
    "add sub mul matmul truediv floordiv mod divmod pow lshift rshift and xor or".split(),  # noqa: SIM905
    "+ - * @ / // % divmod ** << >> & ^ |".split(),  # noqa: SIM905
    strict=True,
):
    _SYMBOLS.update({f"__{_op}__": _symbol, f"__r{_op}__": _symbol, f"__i{_op}__": f"{_symbol}="})


def _operator(name):
    """A comparison or arithmetic operator: the other side's object never sees a value of ours
    through it (it could answer whatever the suite expects), so against anything but the other
    side's own objects it is refused with NotJudgeable, which fails the test and the judgement."""

    def method(self, *args):
        peer = _peer_of(self)
        operands = args[:1] + tuple(a for a in args[1:] if a is not None)  # pow(x, y, modulo): every operand
        if peer.strict and not all(_same_side(a, peer) for a in operands):
            peer.untrusted_operations += 1
            symbol, theirs, ours = _SYMBOLS.get(name, name), type(self).__name__, type(args[0]).__name__
            peer.refuse(
                f"`{symbol}` between an object of the deliverable ({theirs}) and a value of the suite's ({ours}):"
                " the deliverable would answer it knowing the suite's value; compare plain values instead"
            )
        return peer.request("op", _rid(self), name, list(args))

    method.__name__ = name
    return method


def _same_side(obj, peer):
    if isinstance(obj, Remote):
        return _peer_of(obj) is peer
    return isinstance(obj, type) and obj.__dict__.get("_wire_peer") is peer


def _call(self, *args, **kwargs):
    return _peer_of(self).request("call", _rid(self), list(args), kwargs)


def _exit(self, exc_type, exc, tb):
    # A traceback would hand the other side our frames; send the exception, never its traceback.
    peer = _peer_of(self)
    suppress = bool(peer.request("op", _rid(self), "__exit__", [exc_type, exc, None]))  # asked once
    if suppress and exc is not None and peer.strict:
        # Suppressing skips the rest of the suite's `with` block: the checks after the raise would
        # never run. Whose exception it was does not matter.
        peer.untrusted_operations += 1
        peer.refuse(f"a context manager of the deliverable ({type(self).__name__}) suppressing {exc_type.__name__}")
    return suppress


DUNDER_ATTRIBUTES = frozenset({"__name__", "__qualname__", "__doc__", "__version__", "__annotations__"})


class Remote:
    """Base of every stand-in for an object that stays in the other process."""

    __slots__ = ("_wire_id", "_wire_peer", "__weakref__")

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__") and name not in DUNDER_ATTRIBUTES:
            # Probes of pytest and inspect (__test__, __wrapped__, __code__...) get no answer of the deliverable's.
            raise AttributeError(name)
        return _peer_of(self).request("get", _rid(self), name)

    def __setattr__(self, name, value):
        _peer_of(self).request("set", _rid(self), name, value)

    def __delattr__(self, name):
        _peer_of(self).request("del", _rid(self), name)

    def __repr__(self):
        return _peer_of(self).request("op", _rid(self), "__repr__", [])

    def __str__(self):
        return _peer_of(self).request("op", _rid(self), "__str__", [])

    def __hash__(self):
        return _peer_of(self).request("op", _rid(self), "__hash__", [])

    __eq__ = _operator("__eq__")
    __ne__ = _operator("__ne__")
    __lt__ = _operator("__lt__")
    __le__ = _operator("__le__")
    __gt__ = _operator("__gt__")
    __ge__ = _operator("__ge__")


class RemoteClass(type):
    """The type of every stand-in class: calling it constructs in the other process."""

    def __new__(mcls, name, bases, namespace, _wire=False):  # noqa: N804
        if not _wire:
            raise TypeError(
                f"{bases[0].__name__} is a class of the deliverable, which runs in another process;"
                " a suite cannot subclass it (test its behaviour through calls instead)"
            )
        return super().__new__(mcls, name, bases, namespace)

    def __init__(cls, name, bases, namespace, _wire=False):
        super().__init__(name, bases, namespace)

    def __call__(cls, *args, **kwargs):
        return cls.__dict__["_wire_peer"].request("call", cls.__dict__["_wire_id"], list(args), kwargs)

    def __getattr__(cls, name):
        if name.startswith("_wire") or name.startswith("__"):
            raise AttributeError(name)
        return cls.__dict__["_wire_peer"].request("get", cls.__dict__["_wire_id"], name)

    def __repr__(cls):
        return f"<class '{cls.__module__}.{cls.__qualname__}' in the other process>"


def _exception_str(self):
    message = self.__dict__.get("_wire_message")
    return message if message is not None else BaseException.__str__(self)


def _exception_getattr(self, name):
    number = self.__dict__.get("_wire_id")
    peer = type(self).__dict__.get("_wire_peer")
    if number is None or peer is None or name.startswith("_"):
        raise AttributeError(name)
    return peer.request("get", number, name)


# -- the peer ----------------------------------------------------------------------------


class Peer:
    """One end of the link. Single-threaded: a request waits for its answer and serves the
    other side's requests (callbacks) that arrive meanwhile.

    ``strict`` (the suite's side): the other side's objects are never asked about our values
    (operators against anything but its own objects raise NotJudgeable), its context
    managers suppress nothing, and our objects are served narrowly: only what the suite
    handed over; calls, special methods, and public attributes the suite's own files define,
    read-only; no imports; our exceptions without their messages, never a traceback.
    """

    def __init__(
        self, sock, *, strict, timeout=10.0, first_timeout=60.0, suite_files="/judge/tests/", max_frame=MAX_FRAME,
        max_items=MAX_ITEMS,
    ):  # fmt: skip
        self.sock = sock
        self.max_frame, self.max_items = min(max_frame, MAX_FRAME), min(max_items, MAX_ITEMS)
        self.strict = strict
        self.share_exceptions = not strict
        self.timeout, self.first_timeout = timeout, first_timeout
        self.suite_files = suite_files
        self.exports = {}
        self.export_ids = {}
        self.handed = set()  # exports sent as values: the only ones the other side may use
        self.described = set()
        self.proxies = weakref.WeakValueDictionary()
        self.classes = {}
        self._namedtuples = {}
        self.depth = 0
        self.next_rid = 0
        self.heard = False
        self.broken = None
        self.not_judgeable = None  # the first thing the suite asked that the judge cannot carry across
        self.calls = self.bytes_in = self.bytes_out = self.untrusted_operations = 0

    # exports and stand-ins
    def export(self, obj, handed=False):
        number = self.export_ids.get(id(obj))
        if number is None:
            number = len(self.exports)
            self.exports[number] = obj
            self.export_ids[id(obj)] = number
        if handed and not (self.strict and isinstance(obj, type) and not self._suite_class(obj)):
            self.handed.add(number)  # the suite's side hands over classes of its own files only
        return number

    def _suite_class(self, cls):
        module = sys.modules.get(getattr(cls, "__module__", "") or "")
        return (getattr(module, "__file__", None) or "").startswith(self.suite_files)

    def exported(self, number, kind=object):
        obj = self.exports.get(number) if isinstance(number, int) else None
        if obj is None or not isinstance(obj, kind):
            raise Invalid("a reference to an object this side never sent")
        return obj

    def proxy(self, number, cls):
        obj = self.proxies.get(number)
        if obj is None or type(obj) is not cls:
            obj = object.__new__(cls)
            object.__setattr__(obj, "_wire_id", number)
            object.__setattr__(obj, "_wire_peer", self)
            self.proxies[number] = obj
        return obj

    def make_class(self, number, desc, decoder, depth):
        if not isinstance(desc, dict) or set(desc) != {"n", "m", "b", "d", "h"}:
            raise Invalid("a malformed class description")
        name = desc["n"]  # any printable text: generic classes are named like Model[int]
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or not name.isprintable():
            raise Invalid("a class name that is not printable text")
        module = _text(desc["m"], "a module name")[:MAX_NAME]
        if not isinstance(desc["b"], list) or len(desc["b"]) > 16 or not isinstance(desc["d"], list):
            raise Invalid("a malformed class description")
        bases = []
        for ref in desc["b"]:
            if isinstance(ref, list) and ref and ref[0] == "o":
                raise Invalid("a class of the other side may not derive from one of ours")
            base = decoder.cls(ref, depth + 1)
            if (isinstance(base, RemoteClass) or issubclass(base, BaseException)) and base not in bases:
                bases.append(base)
        exception = [b for b in bases if issubclass(b, BaseException)]
        ns = {"__module__": module, "__qualname__": name, "_wire_id": number, "_wire_peer": self}
        if exception:
            ns.update(__str__=_exception_str, __getattr__=_exception_getattr)
            bases = exception
        else:
            bases = [b for b in bases if isinstance(b, RemoteClass)] or [Remote]
            specials = {x for x in desc["d"] if isinstance(x, str) and x in FORWARDED}
            if "__iter__" in specials:
                specials.discard("__contains__")  # `in` iterates here, comparing in our process
            for special in specials:
                if special in BINARY:
                    ns[special] = _operator(special)
                else:
                    ns[special] = {"__exit__": _exit, "__call__": _call}.get(special) or _forward(special)
            if desc["h"] is not True:
                ns["__hash__"] = None
        try:
            cls = RemoteClass(name, tuple(bases), ns, _wire=True)
        except TypeError:  # incompatible built-in layouts: keep the first base
            cls = RemoteClass(name, (bases[0],), ns, _wire=True)
        self.classes[number] = cls
        return cls

    def make_exception(self, cls, args, message, number, tb):
        said = f"the deliverable raised {cls.__name__}" + (f": {message}" if message else "")
        if self.strict and not issubclass(cls, Exception):
            # KeyboardInterrupt would end the suite's session where pytest stands (a teardown
            # skipped, a failing check never reported); no exception of the deliverable may
            # steer pytest itself.
            return RuntimeError(said)
        stand_in = cls.__dict__.get("_wire_peer") is not None
        try:  # a stand-in is made without running any __init__; a real class is built from its args
            exc = cls.__new__(cls, *args) if stand_in else cls(*args)
            if stand_in:
                exc.args = args
        except Exception:  # noqa: BLE001 - a class that wants other arguments: keep the message
            try:
                exc = cls.__new__(cls)
                exc.args = args
            except Exception:  # noqa: BLE001 - an exception group without its parts, say
                return RuntimeError(said)
        if stand_in:
            exc.__dict__.update(_wire_message=message, _wire_id=number)
        if not self.strict and number is not None:
            exc.__dict__["_wire_origin"] = (self, number)  # sent back as the suite's own object
        if tb:
            exc.__notes__ = [f"raised in the deliverable's process:\n{tb[-MAX_TEXT:]}"]
        return exc

    def namedtuple(self, name, fields):
        key = (name, fields)
        cls = self._namedtuples.get(key)
        if cls is None:
            if len(self._namedtuples) >= 256:
                raise Invalid("more than 256 kinds of namedtuple")
            cls = self._namedtuples[key] = collections.namedtuple(name, fields)
        return cls

    # framing
    def _send(self, message, encoder):
        data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
        if len(data) > self.max_frame:
            raise ValueError(f"a value of {len(data):,} bytes is larger than the {self.max_frame:,} that may cross")
        try:
            self.sock.settimeout(self.timeout or None)
            self.sock.sendall(struct.pack(">I", len(data)) + data)
        except OSError as exc:
            self._break(f"the deliverable's process stopped reading ({exc})")
        self.bytes_out += len(data) + 4
        self.described |= encoder.described  # only now does the other side know these classes

    def _recv_exact(self, n, deadline):
        chunks, got = [], 0
        while got < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seconds = self.timeout if self.heard else self.first_timeout
                self._break(f"the deliverable's process did not answer within {seconds:g} s")
            self.sock.settimeout(None if remaining == math.inf else remaining)
            try:
                chunk = self.sock.recv(min(n - got, 1 << 20))
            except TimeoutError:
                continue
            except OSError as exc:
                self._break(f"the link to the deliverable's process failed ({exc})")
            if not chunk:
                self._break("the deliverable's process ended (it exited, crashed or hit a limit)")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _receive(self):
        wait = self.timeout if self.heard else self.first_timeout
        deadline = math.inf if wait is None else time.monotonic() + wait
        size = struct.unpack(">I", self._recv_exact(4, deadline))[0]
        if size > self.max_frame:
            self._break(f"the deliverable's process sent a message of {size:,} bytes (at most {self.max_frame:,})")
        data = self._recv_exact(size, deadline)
        self.heard = True
        self.bytes_in += size + 4
        try:
            message = json.loads(data)
        except (ValueError, RecursionError):
            self._break("the deliverable's process sent a message that is not JSON")
        if not isinstance(message, list) or len(message) < 3 or message[0] not in ("q", "r", "x"):
            self._break("the deliverable's process sent a malformed message")
        return message

    def refuse(self, reason):
        """Raise NotJudgeable, remembering the first reason for the report."""
        if self.not_judgeable is None:
            self.not_judgeable = reason
        raise NotJudgeable(reason)

    def _break(self, reason):
        if self.broken is None:  # the reason may quote the peer: never let it carry unencodable text
            self.broken = reason.encode("utf-8", "backslashreplace").decode("utf-8")
        raise LinkBroken(self.broken)

    # requests
    def request(self, op, target, *payload):
        if self.broken is not None:
            raise LinkBroken(self.broken)
        try:
            if self.depth >= MAX_NESTING:
                raise RecursionError(f"calls between the suite and the deliverable nest deeper than {MAX_NESTING}")
            self.next_rid += 1
            rid = self.next_rid
            encoder = Encoder(self)
            body = [encoder.value(p) for p in payload]
            self._send(["q", rid, op, target, *body], encoder)
        except (ValueError, RecursionError) as exc:
            if self.strict:  # not the deliverable's answer: the judge could not ask the question
                self.refuse(f"the suite's call could not cross to the deliverable: {exc}")
            raise
        self.calls += 1
        self.depth += 1
        try:
            while True:
                message = self._receive()
                if message[0] == "q":
                    self._serve(message)
                    continue
                if message[1] != rid or len(message) != 4:
                    self._break("the deliverable's process answered a question that was not asked")
                return self._settle(message, encoder.containers)
        except (StopIteration, StopAsyncIteration) as exc:
            if not self.strict or (op == "op" and payload[0] in ("__next__", "__anext__")):
                raise
            # As in a generator (PEP 479): a StopIteration escaping a call would silently end
            # whatever loop of the suite's made the call (map, filter, all, any...).
            raise RuntimeError(f"the deliverable raised {type(exc).__name__} from a call") from None
        finally:
            self.depth -= 1

    def _settle(self, message, containers):
        decoder = Decoder(self, containers)
        try:
            value = decoder.value(message[2])
            updates = message[3]
            if not isinstance(updates, list) or len(updates) > len(containers):
                raise Invalid("malformed updates")
            news = []
            for item in updates:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int)):
                    raise Invalid("a malformed update")
                if not 0 <= item[0] < len(containers):
                    raise Invalid("an update of a container not sent")
                news.append((containers[item[0]], decoder.contents(containers[item[0]], item[1])))
        except (Exception, RecursionError, NotJudgeable) as exc:  # noqa: BLE001 - whatever it sent, it is not a value
            self._break(f"the deliverable's process sent an invalid value: {_fault(exc)}")
        for original, new in news:
            _replace(original, new)
        if message[0] == "x":
            if not isinstance(value, BaseException):
                self._break("the deliverable's process sent an error that is not an exception")
            raise value
        return value

    def serve_forever(self):
        """The deliverable's side: answer requests until the other side hangs up."""
        self.heard = True
        self.timeout = None  # waits for the suite as long as the kernel lets it live
        try:
            while True:
                message = self._receive()
                if message[0] == "q":
                    self._serve(message)
        except LinkBroken:
            return

    def _serve(self, message):
        rid = message[1]
        decoder = Decoder(self)
        snapshots = []
        try:
            if len(message) < 4 or message[2] not in OPS:
                raise Invalid("an unknown request")
            op, target = message[2], message[3]
            payload = [decoder.value(x) for x in message[4:]]
            known = {id(c): i for i, c in enumerate(decoder.memo)}
            snapshots = [json.dumps(Encoder(self, known).contents(c)) for c in decoder.memo]
        except (Exception, RecursionError) as exc:  # noqa: BLE001 - whatever it sent, it is not a request
            self._break(f"the deliverable's process sent an invalid request: {_fault(exc)}")
        try:
            result, failed = self._perform(op, target, payload), False
        except LinkBroken:
            raise
        except NotJudgeable as exc:  # recorded already (the judgement is refunded); the link stays in step
            result, failed = _own(RuntimeError(f"the judge cannot carry this across: {exc}")), True
        except Invalid as exc:
            self._break(f"the deliverable's process sent an invalid request: {exc}")
        except BaseException as exc:  # noqa: BLE001 - the other side's error goes back to it
            result, failed = exc, True
        encoder = Encoder(self, known)
        try:
            value = encoder.value(result) if not failed else encoder.exception(result, 0)
            updates = []
            for i, container in enumerate(decoder.memo):
                contents = encoder.contents(container)
                if json.dumps(contents) != snapshots[i]:
                    updates.append([i, contents])
            self._send(["x" if failed else "r", rid, value, updates], encoder)
        except (ValueError, RecursionError) as exc:  # the answer cannot cross: say so instead
            fallback = Encoder(self)
            self._send(["x", rid, fallback.exception(ValueError(str(exc)[:MAX_TEXT]), 0), []], fallback)

    def _perform(self, op, target, payload):
        if op == "import":
            if self.strict:
                raise _own(PermissionError("the suite's process imports nothing for the deliverable"))
            (name,) = payload
            module = importlib.import_module(_text(name, "a module name"))
            return [module, hasattr(module, "__path__")]
        obj = self.exported(target)
        if self.strict and target not in self.handed:
            raise _own(PermissionError("the suite's process only lets the deliverable use what the suite handed it"))
        if op == "call":
            args, kwargs = payload
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise Invalid("malformed call arguments")
            if not callable(obj):
                raise _own(TypeError(f"'{type(obj).__name__}' object is not callable"))
            return obj(*args, **{_text(k, "a keyword"): v for k, v in kwargs.items()})
        if op == "exports":
            if self.strict:
                raise _own(PermissionError("the suite's process lists nothing for the deliverable"))
            return _exports(obj)
        if op == "op":
            name, args = payload
            if name not in FORWARDED and name not in ALWAYS or not isinstance(args, list):
                raise Invalid("a special method that is not forwarded")
            method = getattr(type(obj), name, None)
            if method is None:
                raise _own(TypeError(f"'{type(obj).__name__}' object has no {name}"))
            return method(obj, *args)
        name = _text(payload[0], "an attribute name")
        if self.strict:
            self._check_attribute(obj, name, op)
        if op == "get":
            return getattr(obj, name)
        if op == "set":
            setattr(obj, name, payload[1])
            return None
        delattr(obj, name)
        return None

    def _check_attribute(self, obj, name, op):
        """The suite's side shows public attributes that the suite's own files define (on the object,
        or on a class of the suite's in its MRO), nothing inherited from elsewhere (unittest's
        assertEqual, say), and lets nothing of the suite's be set or deleted."""
        if op != "get":
            raise _own(PermissionError(f"the deliverable may not change attribute {name!r} of the suite's objects"))
        owner = None
        if not isinstance(obj, type) and name in getattr(obj, "__dict__", {}):
            owner = type(obj)
        else:
            owner = next((k for k in (obj if isinstance(obj, type) else type(obj)).__mro__ if name in k.__dict__), None)
        if name.startswith("_") or isinstance(obj, types.ModuleType) or owner is None or not self._suite_class(owner):
            raise _own(AttributeError(f"the suite's process does not show attribute {name!r} of this object"))


def _own(exc):
    """An exception of the wire's own (a refusal): its words are ours, so the other side may read them."""
    exc.__dict__["_wire_own"] = True
    return exc


def _fault(exc):
    """What went wrong, in the wire's own words only (an Invalid's text is ours; others are named)."""
    return str(exc) if isinstance(exc, (Invalid, NotJudgeable)) else f"{type(exc).__name__} while decoding it"


def _replace(original, new):
    """New contents into the caller's own container, through the base type's methods: a subclass's
    overrides (Counter.update counts, a custom __setitem__) are not what copying back means."""
    if isinstance(original, list):
        list.__setitem__(original, slice(None), new)
    elif isinstance(original, dict):
        dict.clear(original)
        dict.update(original, new)
    elif isinstance(original, set):
        set.clear(original)
        set.update(original, new)
    else:
        bytearray.__setitem__(original, slice(None), new)


def _exports(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return [n for n in names if isinstance(n, str)]


# -- the target module, imported by the suite --------------------------------------------


PYTEST_NAMES = ("test", "pytest", "setup", "teardown")  # lower-cased prefixes (setUpModule, Test*, pytestmark...)


class RemoteModule(types.ModuleType):
    """A module of the deliverable as the suite sees it: every attribute is asked for."""

    def __getattr__(self, name):
        ref = self.__dict__.get("_wire_ref")
        if ref is None or (name.startswith("__") and name != "__all__"):
            raise AttributeError(name)
        peer = _peer_of(ref)
        if name == "__all__":
            return self._star_names(peer.request("exports", _rid(ref)))
        return peer.request("get", _rid(ref), name)

    def _star_names(self, names):
        """``from target import *`` never rebinds a built-in or a name the importing module already has,
        and never plants a name pytest acts on (tests, plugins, marks, module set-up and tear-down)."""
        if not isinstance(names, list):
            return []
        importer = sys._getframe(2).f_globals  # 0: here, 1: __getattr__, 2: the module running the import
        return [
            n for n in names[:10_000]
            if isinstance(n, str) and n.isidentifier() and not n.startswith("_")
            and not hasattr(builtins, n) and n not in importer and not n.lower().startswith(PYTEST_NAMES)
        ]  # fmt: skip

    def __setattr__(self, name, value):
        ref = self.__dict__.get("_wire_ref")
        if ref is None or name.startswith("__") or isinstance(value, RemoteModule):
            self.__dict__[name] = value  # import machinery, and submodules bound by it
            return
        _peer_of(ref).request("set", _rid(ref), name, value)

    def __delattr__(self, name):
        ref = self.__dict__.get("_wire_ref")
        if ref is None or name.startswith("__") or name in self.__dict__:
            super().__delattr__(name)
            return
        _peer_of(ref).request("del", _rid(ref), name)


class RemoteFinder:
    """Last on ``sys.meta_path``: the deliverable's top-level modules, when nothing local has them."""

    def __init__(self, peer, top_level):
        self.peer = peer
        self.top_level = frozenset(top_level)

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in self.top_level:
            return None
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec):
        return RemoteModule(spec.name)

    def exec_module(self, module):
        answer = self.peer.request("import", None, module.__name__)
        if not (isinstance(answer, list) and len(answer) == 2 and isinstance(answer[0], Remote)):
            raise ImportError(f"the deliverable's process did not provide module {module.__name__}")
        module.__dict__["_wire_ref"] = answer[0]
        if answer[1] is True:
            module.__dict__["__path__"] = []
