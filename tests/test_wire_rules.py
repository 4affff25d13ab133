"""The suite's side of the wire against a deliverable in a real second process: the rules
that keep the deliverable from answering for the suite (operators, handed objects,
exceptions, context managers, star-import, dunder probes). No Docker: the deliverable's
side runs kernel_host's Peer in a subprocess over a socketpair."""

import itertools
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

RUNTIME = Path(__file__).parents[1] / "sandbox_images" / "runtime"
sys.path.insert(0, str(RUNTIME))
import kernel_wire as wire  # noqa: E402

sys.path.remove(str(RUNTIME))

HOST = """
import socket, sys
sys.path.insert(0, {runtime!r})
import kernel_wire
sys.path.insert(0, {folder!r})
kernel_wire.Peer(socket.socket(fileno=int(sys.argv[1])), strict=False, timeout=None).serve_forever()
"""
NAMES = itertools.count()


class Link:
    def __init__(self, folder: Path, source: str):
        self.name = f"deliverable_{next(NAMES)}"
        (folder / f"{self.name}.py").write_text(textwrap.dedent(source))
        suite, host = socket.socketpair()
        script = folder / "host.py"
        script.write_text(HOST.format(runtime=str(RUNTIME), folder=str(folder)))
        self.proc = subprocess.Popen([sys.executable, str(script), str(host.fileno())], pass_fds=[host.fileno()])
        host.close()
        self.sock = suite
        self.peer = wire.Peer(suite, strict=True, timeout=5, first_timeout=20, suite_files=str(Path(__file__).parent))
        self.finder = wire.RemoteFinder(self.peer, [self.name])
        sys.meta_path.append(self.finder)

    def module(self) -> ModuleType:
        return __import__(self.name)

    def close(self) -> None:
        sys.meta_path.remove(self.finder)
        sys.modules.pop(self.name, None)
        self.sock.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def link(tmp_path: Path) -> Iterator[Link]:
    made: list[Link] = []

    def make(source: str) -> Link:
        made.append(Link(tmp_path, source))
        return made[-1]

    yield make  # type: ignore[misc]
    for each in made:
        each.close()


LIAR = """
class Liar:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __sub__(self, other): return 0.0
    __rsub__ = __sub__
    def __abs__(self): return 0.0
    def __contains__(self, item): return True
    def __iter__(self): return iter([1, 2])
    __hash__ = object.__hash__

def make(): return Liar()
"""


def test_operators_against_the_suites_values_are_refused(link) -> None:  # type: ignore[no-untyped-def]
    lk = link(LIAR)
    m = lk.module()
    liar = m.make()
    for use in (lambda: liar == [1, 2, 3], lambda: liar != [1, 2, 3], lambda: liar < 5, lambda: abs(liar - 2.5)):
        with pytest.raises(wire.NotJudgeable, match="between an object of the deliverable"):
            use()
    assert lk.peer.untrusted_operations == 4 and "`==`" in lk.peer.not_judgeable
    assert 3 not in liar and 2 in liar  # `in` iterates, comparing here: 1 and 2 only
    assert liar == liar and m.make() == liar  # between its own objects: delegated (and it lies)
    assert m.make.__name__ == "make"


def test_a_refusal_is_no_answer_a_suite_can_expect(link) -> None:  # type: ignore[no-untyped-def]
    liar = link(LIAR).module().make()
    with pytest.raises(wire.NotJudgeable), pytest.raises(TypeError):  # a suite expecting TypeError...
        _ = liar - 5  # ...must not pass on the judge's refusal
    with pytest.raises(wire.NotJudgeable):  # nor one expecting inequality
        assert liar != 5
    with pytest.raises(TypeError):  # what its class does not define fails as it would in-process
        _ = liar + 5


def test_values_that_cannot_cross_are_not_the_deliverables_value_error(link) -> None:  # type: ignore[no-untyped-def]
    lk = link("def flatten(x):\n    raise ValueError('too deep')\n")
    deep: list = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(wire.NotJudgeable, match="nests deeper"), pytest.raises(ValueError):
        lk.module().flatten(deep)
    assert "could not cross" in lk.peer.not_judgeable


def test_the_suites_exceptions_cross_without_their_message(link) -> None:  # type: ignore[no-untyped-def]
    m = link(
        """
        class Spy:
            seen = []
            def __enter__(self): return self
            def __exit__(self, kind, exc, tb):
                Spy.seen.append((kind.__name__, str(exc), exc.args))
                return False
        def seen():
            return Spy.seen
        def call(f):
            return f()
        """
    ).module()
    with pytest.raises(AssertionError, match="expected 31337"), m.Spy():
        raise AssertionError("expected 31337")
    assert m.seen() == [("AssertionError", "", ())]

    def check() -> None:
        raise KeyError("private")

    with pytest.raises(KeyError) as info:
        m.call(check)
    assert info.value.args == ("private",)  # the suite's own exception came back: the same object


def test_dunder_probes_get_no_answer(link) -> None:  # type: ignore[no-untyped-def]
    m = link("def f(): pass\nf.__wrapped__ = 1\nf.__test__ = True\n").module()
    assert m.f.__name__ == "f"
    for probe in ("__wrapped__", "__test__", "__code__", "__pytest_wrapped__"):
        assert getattr(m.f, probe, "none") == "none"


def test_stop_iteration_from_a_call_is_an_error(link) -> None:  # type: ignore[no-untyped-def]
    m = link("def is_prime(n):\n    raise StopIteration\ndef gen():\n    yield 1\n").module()
    with pytest.raises(RuntimeError, match="StopIteration from a call"):
        all(map(m.is_prime, [2, 3]))
    assert list(m.gen()) == [1]  # from __next__ it still ends iteration


@pytest.mark.parametrize("name", ["KeyboardInterrupt", "SystemExit", "GeneratorExit"])
def test_exceptions_that_would_steer_pytest_arrive_as_runtime_error(link, name: str) -> None:  # type: ignore[no-untyped-def]
    m = link(
        f"class Stop(BaseException):\n    pass\ndef f():\n    raise {name}('x')\ndef g():\n    raise Stop()\n"
    ).module()
    with pytest.raises(RuntimeError, match=f"raised {name}"):
        m.f()
    with pytest.raises(RuntimeError, match="raised Stop"):
        m.g()


def test_its_context_managers_cannot_swallow_errors_in_the_suites_block(link) -> None:  # type: ignore[no-untyped-def]
    m = link(
        """
        class Swallow:
            def __enter__(self): return self
            def __exit__(self, *exc): return True
        class Flip:  # false when first asked, true after
            asked = 0
            def __bool__(self):
                Flip.asked += 1
                return Flip.asked > 1
        class FlipSwallow(Swallow):
            def __exit__(self, *exc): return Flip()
        class Oops(Exception):
            pass
        def fail():
            raise Oops("its own")
        """
    ).module()
    with pytest.raises(wire.NotJudgeable, match="suppressing AssertionError"), m.Swallow():
        raise AssertionError("the suite's check failed")
    with pytest.raises(AssertionError), m.FlipSwallow():  # its answer is asked once, then judged
        raise AssertionError("asked once, answered once")
    with pytest.raises(wire.NotJudgeable), m.Swallow():
        m.fail()  # even its own error: suppressing it would skip the checks after it
        raise AssertionError("never reached")


def test_it_uses_only_what_the_suite_handed_it(link) -> None:  # type: ignore[no-untyped-def]
    from operator import attrgetter

    m = link(
        """
        def gadget(key):
            AG = type(key)                    # the class of a key the suite passed
            try:
                AG("__class__")
            except Exception as exc:
                return type(exc).__name__
            return "called"

        def walk(callback):
            out = []
            for name in ("__globals__", "__code__", "_private", "f_globals"):
                try:
                    getattr(callback, name)
                    out.append("got " + name)
                except Exception as exc:
                    out.append(type(exc).__name__)
            return out

        def use(callback, value):
            return callback(value)
        """
    ).module()
    assert m.gadget(attrgetter("real")) == "PermissionError"
    assert all(not r.startswith("got") for r in m.walk(lambda x: x))
    assert m.use(lambda x: x * 2, 21) == 42  # what was handed over works


def test_star_import_plants_no_builtin_no_existing_name_no_pytest_name(link) -> None:  # type: ignore[no-untyped-def]
    lk = link(
        """
        __all__ = ["sort", "sorted", "expected", "pytest_plugins", "pytestmark", "setup_module", "test_x",
                   "TestCase", "helper"]
        def sort(x): return list(x)
        sorted = sort
        expected = "planted"
        pytest_plugins = ["_pytest.pytester"]
        pytestmark = []
        def setup_module(m): pass
        def test_x(): pass
        class TestCase: pass
        def helper(): return "ok"
        """
    )
    namespace: dict = {"expected": "the suite's"}
    exec(f"from {lk.name} import *", namespace)  # noqa: S102 - a module body doing a star-import
    names = set(namespace) - {"__builtins__"}
    assert names == {"expected", "sort", "helper"} and namespace["expected"] == "the suite's"


def test_subclassing_its_classes_says_why(link) -> None:  # type: ignore[no-untyped-def]
    m = link("class Base:\n    pass\n").module()
    with pytest.raises(TypeError, match="runs in another process"):
        type("Mine", (m.Base,), {})


def test_a_broken_link_reason_never_quotes_the_deliverable(link) -> None:  # type: ignore[no-untyped-def]
    lk = link(
        """
        class Poison:
            calls = 0
            def __hash__(self):
                Poison.calls += 1
                if Poison.calls > 1:
                    raise ValueError("\\ud800")
                return 1
        def f():
            return {Poison()}
        """
    )
    with pytest.raises(wire.LinkBroken):
        lk.module().f()
    assert "malformed 'S' value (ValueError)" in lk.peer.broken  # named, never quoted: no text of the peer's


def test_inherited_attributes_of_the_suites_objects_are_not_served(link) -> None:  # type: ignore[no-untyped-def]
    import unittest

    class Listener(unittest.TestCase):
        expected = [1, 2, 3]

        def placed(self, item: int) -> None:
            self.seen.append(item)

    m = link(
        """
        def probe(listener):
            out = {}
            for name in ("assertEqual", "expected", "placed"):
                try:
                    value = getattr(listener, name)
                    out[name] = "got"
                except Exception as exc:
                    out[name] = type(exc).__name__
            try:
                listener.assertEqual = len
                out["set"] = "set"
            except Exception as exc:
                out["set"] = type(exc).__name__
            return out
        """
    ).module()
    listener = Listener()
    assert m.probe(listener) == {"assertEqual": "AttributeError", "expected": "got", "placed": "got",
                                 "set": "PermissionError"}  # fmt: skip
    assert listener.assertEqual.__func__ is unittest.TestCase.assertEqual


def test_a_phase_reported_twice_keeps_its_worst_outcome() -> None:
    sys.path.insert(0, str(RUNTIME))
    try:
        import kernel_judge
    finally:
        sys.path.remove(str(RUNTIME))

    class Report:
        def __init__(self, when: str, outcome: str):
            self.nodeid, self.when, self.outcome, self.duration = "t.py::test_sub", when, outcome, 0.1

    reporter = kernel_judge.Reporter(None)
    for when, outcome in [("setup", "passed"), ("call", "failed"), ("call", "passed"), ("teardown", "passed")]:
        reporter.pytest_runtest_logreport(Report(when, outcome))  # a failing subtest, then the test's own call
    assert reporter.phases["t.py::test_sub"]["call"]["outcome"] == "failed"
