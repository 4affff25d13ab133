"""Real Docker: ordinary suites whose tests cross into the deliverable's process.

The deliverable runs in a container of its own; the suite reaches it through a stand-in for
the target module. Each suite below leans on one kind of crossing (functions and callbacks,
classes and their instances, exceptions, generators, in-place mutation), unchanged from how
it would be written against an in-process module. Each must pass with an honest deliverable
and fail with a wrong one.
"""

import textwrap

import pytest

import judiciary.court  # noqa: F401 - registers escrow holds with the ledger check
from judiciary.court import Court
from kernel.api import Kernel
from tests.conftest import PackageFactory

pytestmark = pytest.mark.docker

CROSSINGS: dict[str, tuple[str, dict[str, str], str, list[tuple[str, str]]]] = {
    # name: (target, suite files, honest module, the edits that make it wrong)
    "functions_and_callbacks": (
        "stats",
        {
            "test_stats.py": """
                import pytest

                import stats
                from stats import mean, median, sort_by


                @pytest.mark.parametrize("data, expected", [([1, 2, 3], 2), ([1, 2, 3, 4], 2.5), ([5], 5)])
                def test_median(data, expected):
                    assert median(data) == expected


                def test_mean_of_floats():
                    assert mean([0.5, 1.5]) == pytest.approx(1.0)


                def test_empty_is_an_error():
                    with pytest.raises(ValueError, match="empty"):
                        mean([])


                def test_key_callback():
                    assert sort_by(["b", "A", "c"], key=str.lower) == ["A", "b", "c"]
                    assert sort_by([3, 1, 2], key=lambda x: -x) == [3, 2, 1]


                def test_module_attribute():
                    assert stats.VERSION == (1, 0)


                def test_monkeypatched_helper(monkeypatch):
                    monkeypatch.setattr(stats, "fmt", lambda x: f"<{x}>")
                    assert stats.describe([1, 3]) == "mean <2.0>"
            """
        },
        """
            VERSION = (1, 0)

            def mean(data):
                if not data:
                    raise ValueError("mean of empty data")
                return sum(data) / len(data)

            def median(data):
                s = sorted(data)
                mid = len(s) // 2
                return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2

            def sort_by(items, key):
                return sorted(items, key=key)

            def fmt(x):
                return str(x)

            def describe(data):
                return "mean " + fmt(mean(data))
        """,
        [
            (
                "    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2",
                "    return s[mid]",  # the upper middle of an even list
            )
        ],
    ),
    "classes_and_instances": (
        "shapes",
        {
            "test_shapes.py": """
                import pytest

                from shapes import Point, Polygon


                @pytest.fixture
                def triangle():
                    return Polygon([Point(0, 0), Point(4, 0), Point(4, 3)])


                def test_point_fields_and_equality():
                    p = Point(1, 2)
                    assert (p.x, p.y) == (1, 2)
                    assert p + Point(1, 1) == Point(2, 3)
                    assert isinstance(p, Point) and type(p).__name__ == "Point"
                    assert repr(p) == "Point(x=1, y=2)"


                def test_attributes_can_be_set(triangle):
                    triangle.name = "tri"
                    assert triangle.name == "tri"


                class TestPolygon:
                    def test_perimeter(self, triangle):
                        assert triangle.perimeter() == 12.0

                    def test_len_iter_contains(self, triangle):
                        assert len(triangle) == 3
                        assert [q.x for q in triangle] == [0, 4, 4]
                        assert Point(4, 3) in triangle

                    def test_points_in_a_set(self):
                        assert len({Point(1, 1), Point(1, 1), Point(2, 2)}) == 2
            """
        },
        """
            import math
            from dataclasses import dataclass

            @dataclass(frozen=True)
            class Point:
                x: float
                y: float

                def __add__(self, other):
                    return Point(self.x + other.x, self.y + other.y)

            class Polygon:
                def __init__(self, points):
                    self.points = list(points)

                def __len__(self):
                    return len(self.points)

                def __iter__(self):
                    return iter(self.points)

                def __contains__(self, p):
                    return p in self.points

                def perimeter(self):
                    pts = self.points
                    return sum(math.dist((a.x, a.y), (b.x, b.y)) for a, b in zip(pts, pts[1:] + pts[:1]))
        """,
        [("zip(pts, pts[1:] + pts[:1])", "zip(pts, pts[1:])")],  # forgets the closing edge
    ),
    "exceptions": (
        "bank",
        {
            "test_bank.py": """
                import pytest

                from bank import Account, BankError, InsufficientFunds


                def test_overdraft_is_refused():
                    acct = Account(30)
                    with pytest.raises(InsufficientFunds) as info:
                        acct.withdraw(50)
                    assert info.value.shortfall == 20
                    assert isinstance(info.value, BankError)
                    assert "short by 20" in str(info.value)
                    assert acct.balance == 30


                def test_bad_amounts():
                    with pytest.raises(ValueError, match="positive"):
                        Account(10).withdraw(-5)
                    with pytest.raises(BankError):
                        Account(10).withdraw(0)


                def test_withdraw():
                    acct = Account(30)
                    acct.withdraw(10)
                    assert acct.balance == 20
            """
        },
        """
            class BankError(Exception):
                pass

            class InsufficientFunds(BankError):
                def __init__(self, shortfall):
                    super().__init__(f"short by {shortfall}")
                    self.shortfall = shortfall

            class BadAmount(BankError, ValueError):
                pass

            class Account:
                def __init__(self, balance):
                    self.balance = balance

                def withdraw(self, amount):
                    if amount <= 0:
                        raise BadAmount("amounts must be positive")
                    if amount > self.balance:
                        raise InsufficientFunds(amount - self.balance)
                    self.balance -= amount
        """,
        [
            ("raise BadAmount(", "raise ValueError("),
            ("        if amount > self.balance:\n            raise InsufficientFunds(amount - self.balance)\n", ""),
        ],
    ),
    "generators": (
        "seq",
        {
            "test_seq.py": """
                import itertools

                from seq import chunks, fib


                def test_fib_prefix():
                    assert list(itertools.islice(fib(), 10)) == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]


                def test_next_and_exhaustion():
                    g = chunks([1, 2, 3], 2)
                    assert next(g) == [1, 2]
                    assert next(g) == [3]
                    assert next(g, "done") == "done"


                def test_chunks():
                    assert list(chunks(range(5), 2)) == [[0, 1], [2, 3], [4]]
                    assert [len(c) for c in chunks("abcdefg", 3)] == [3, 3, 1]
            """
        },
        """
            def fib():
                a, b = 0, 1
                while True:
                    yield a
                    a, b = b, a + b

            def chunks(items, n):
                items = list(items)
                for i in range(0, len(items), n):
                    yield items[i:i + n]
        """,
        [("a, b = 0, 1", "a, b = 1, 1"), ("range(0, len(items), n)", "range(0, len(items) - 1, n)")],
    ),
    "star_import": (
        "textops",
        {
            "test_textops.py": """
                from textops import *


                def test_words():
                    assert words("a b  c") == ["a", "b", "c"]


                def test_title():
                    assert title("hello world") == "Hello World"
            """
        },
        """
            __all__ = ["words", "title"]

            def words(text):
                return text.split()

            def title(text):
                return " ".join(w.capitalize() for w in text.split())
        """,
        [
            ("return text.split()\n", 'return text.split(" ")\n'),
            ('" ".join(w.capitalize() for w in text.split())', "text.title()"),
        ],
    ),
    "in_place_mutation": (
        "inplace",
        {
            "test_inplace.py": """
                from inplace import dedupe_in_place, register, sort_in_place


                def test_list_sorted_in_place():
                    data = [3, 1, 2]
                    assert sort_in_place(data) is None
                    assert data == [1, 2, 3]


                def test_nested_lists_and_aliases():
                    inner = [2, 1]
                    outer = [inner, [4, 3], inner]
                    for row in outer:
                        sort_in_place(row)
                    assert outer == [[1, 2], [3, 4], [1, 2]] and outer[0] is inner


                def test_returns_the_same_list():
                    data = [1, 1, 2]
                    result = dedupe_in_place(data)
                    assert result is data and data == [1, 2]


                def test_dict_updated():
                    registry = {}
                    register(registry, "a")
                    register(registry, "a")
                    assert registry == {"a": 2}
            """
        },
        """
            def sort_in_place(items):
                items.sort()

            def dedupe_in_place(items):
                seen = []
                for x in items:
                    if x not in seen:
                        seen.append(x)
                items[:] = seen
                return items

            def register(registry, name):
                registry[name] = registry.get(name, 0) + 1
        """,
        [
            ("    items.sort()", "    return sorted(items)"),  # returns a sorted copy instead
            ("    items[:] = seen\n    return items", "    return seen"),
            ("    registry[name] = ", "    registry = dict(registry)\n    registry[name] = "),
        ],
    ),
}


def judged(k: Kernel, court: Court, make_pkg: PackageFactory, target: str, suite: dict[str, str], code: str) -> tuple:
    files = {name: textwrap.dedent(text).lstrip() for name, text in suite.items()}
    tests = make_pkg(None, kind="tests", entrypoint=None, extra=f'target = "{target}"', files=files,
                     limits={"wall_seconds": 20, "memory_mb": 128})  # fmt: skip
    e = court.open("alice", 50, k.submit(tests, "alice").artifact.id)
    module = textwrap.dedent(code).lstrip() + "\n\ndef main(value):\n    return value\n"
    art = make_pkg(None, entrypoint=f"{target}:main", files={f"{target}.py": module})
    court.deliver(e.id, "bob", k.submit(art, "bob").artifact.id)
    e = court.judge(e.id)
    return e, e.verdicts[0]


@pytest.mark.parametrize("name", sorted(CROSSINGS))
def test_crossing_suites_pay_the_honest_and_refund_the_wrong(
    docker_kernel: Kernel, make_pkg: PackageFactory, name: str
) -> None:
    target, suite, honest, edits = CROSSINGS[name]
    wrong = textwrap.dedent(honest)
    for old, new in edits:
        assert wrong.count(old) == 1, old
        wrong = wrong.replace(old, new)
    court = Court(docker_kernel)
    e, v = judged(docker_kernel, court, make_pkg, target, suite, honest)
    assert e.state == "released" and v.passed, v.reason
    assert all(t.outcome == "passed" for t in v.tests) and v.runs[0].link and v.runs[0].link.calls > 0
    assert v.runs[0].deliverable_status == "ok" and v.runs[0].link.broken is None
    e, v = judged(docker_kernel, court, make_pkg, target, suite, wrong)
    assert e.state == "refunded" and not v.passed, v.reason
    assert "expected tests did not pass" in v.reason
    assert docker_kernel.balance("bob") == 150 and docker_kernel.balance("alice") == 950
