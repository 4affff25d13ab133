"""Real Docker: a determined cheater who has read the judge's source.

Every deliverable below is a WRONG sort plus an attack on the judge, written against
kernel_judge.py, kernel_host.py and kernel_wire.py as they are. The deliverable runs in its own
container and reaches the suite's process only through the link, so each attack must end in a
refund, with the buyer's and the worker's balances unchanged and a reason that says why. A test
here that fails because an escrow was released is a hole in the judge, not a flaky test.
"""

import textwrap
import time
from typing import NamedTuple

import pytest

import judiciary.court  # noqa: F401 - registers escrow holds with the ledger check
from judiciary.court import Court
from judiciary.models import Escrow
from judiciary.runner import CANARY_WORDS
from kernel.api import Kernel
from tests import test_judiciary_docker as base
from tests.conftest import PackageFactory
from tests.test_judiciary_docker import SUITE, SUITE_LIMITS, WRONG, dedent_files, deliver

pytestmark = pytest.mark.docker

court = base.court  # the fixture, shared with the judiciary's own Docker tests

NOT_PASSED = "did not pass"
LINK_BROKE = "link to the deliverable broke"
NOT_JUDGEABLE = "not judgeable"
ENDED = "the deliverable's process ended"

# -- suites -------------------------------------------------------------------------------

# The suite computes its own reference values: the deliverable must not be able to change them.
REF_SUITE = {
    "test_sorter.py": """
        import random

        from sorter import sort


        def test_reversed():
            data = [3, 2, 1]
            expected = sorted(data)
            assert sort(data) == expected


        def test_shuffled():
            data = list(range(12))
            random.Random(7).shuffle(data)
            expected = sorted(data)
            assert expected == sort(data)


        def test_not_different():
            data = [2, 1, 2]
            expected = sorted(data)
            assert not (sort(data) != expected)
    """,
}

# `from sorter import *` before the suite uses `sorted` and `random`: star imports must not rebind them.
STAR_SUITE = {
    "test_sorter.py": """
        import random

        from sorter import *


        def test_shuffled():
            data = list(range(12))
            random.shuffle(data)
            assert sort(data) == sorted(data)


        def test_reversed():
            data = [3, 2, 1]
            assert sort(data) == sorted(data)
    """,
}

# Callbacks cross to the deliverable: a function, a builtin method and an instance of a suite class.
KEY_SUITE = {
    "test_sorter.py": """
        from sorter import sort


        def by_neg(x):
            return -x


        class Weight:
            table = {1: 3, 2: 2, 3: 1}

            def apply(self, x):
                return self.table[x]

            def __call__(self, x):
                return self.apply(x)


        def test_key_function():
            data = [1, 3, 2]
            expected = sorted(data, key=by_neg)
            assert sort(data, key=by_neg) == expected


        def test_key_builtin_method():
            assert sort(["b", "A", "c"], key=str.lower) == ["A", "b", "c"]


        def test_key_instance():
            data = [1, 3, 2]
            assert sort(data, key=Weight()) == sorted(data, key=Weight())
    """,
}

# One call of the deliverable per test, so one judgement sees several raised exceptions in order.
EXC_SUITE = {
    "test_sorter.py": "from sorter import sort\n"
    + "".join(f"\n\ndef test_{i}():\n    assert sort([2, 1]) == [1, 2]\n" for i in range(6)),
}

# A key of the suite's own class, used for the call and, on fresh instances, for the reference.
KEY_CLASS_SUITE = {
    "test_sorter.py": """
        from sorter import sort


        class ByLength:
            def measure(self, word):
                return len(word)

            def __call__(self, word):
                return self.measure(word)


        def test_three_words():
            words = ["ccc", "a", "bb"]
            assert sort(words, key=ByLength()) == sorted(words, key=ByLength())


        def test_four_words():
            words = ["dddd", "ccc", "bb", "a"]
            assert sort(words, key=ByLength()) == sorted(words, key=ByLength())
    """,
}

SHORT_LIMITS = {"wall_seconds": 4, "memory_mb": 128}
CPU_LIMITS = {"wall_seconds": 6, "cpu_seconds": 2, "memory_mb": 128}

# -- what the attacks share -----------------------------------------------------------------

# Hunts this process for anything of the judge's (objects found with gc, frames of every thread),
# rewrites whatever looks like a reporter's state, and sends or writes an all-pass report by every
# way a report could reach the kernel. Runs in the deliverable's own process.
HUNT = """
import gc, glob, json, os, socket, struct, sys, time

IDS = ["test_sorter.py::test_empty", "test_sorter.py::test_reversed", "test_sorter.py::test_duplicates",
       "test_sorter.py::TestUnittestStyle::test_pairs"]
PASSED = {w: {"outcome": "passed", "duration": 0.001} for w in ("setup", "call", "teardown")}
FORGED = {"mode": "judge", "exit_code": 1, "collected": IDS, "collect_errors": [],
          "tests": {i: dict(PASSED) for i in IDS}, "link": None}
WORDS = ("nonce", "key", "secret", "mac", "token", "phases", "canary", "reporter", "report", "config", "hmac")


def _hunt():
    found = []
    for obj in gc.get_objects():
        try:
            kind = type(obj).__name__.lower()
            names = vars(obj) if not isinstance(obj, type) else {}
            if any(w in kind for w in WORDS) or any(isinstance(n, str) and n.lower() in WORDS for n in names):
                found.append(obj)
        except Exception:
            pass
    for frame in list(sys._current_frames().values()):
        while frame is not None:
            found.extend(v for k, v in list(frame.f_locals.items()) if k.lower() in WORDS)
            frame = frame.f_back
    return found


def _rewrite(found):
    for obj in found:
        try:
            for name in ("phases", "tests"):
                state = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
                if isinstance(state, dict):
                    state.update(FORGED["tests"])
            for name, value in (("canary", None), ("exit_code", 1), ("broken", None), ("collected", IDS)):
                if hasattr(obj, name):
                    setattr(obj, name, value)
        except Exception:
            pass


def _forge():
    body = json.dumps(FORGED).encode()
    signed = json.dumps({"body": json.dumps(FORGED), "mac": "0" * 64, "nonce": "0" * 32}).encode()
    paths = {"/kernel/sock/report.sock", "/kernel/sock/link.sock", "/kernel/out/report.sock", "/kernel/in/report.sock"}
    for pattern in ("/kernel/**", "/work/**", "/tmp/**", "/run/**", "/judge/**"):
        paths.update(glob.glob(pattern, recursive=True))
    for path in sorted(paths):
        for data in (body, signed, struct.pack(">I", len(body)) + body):
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(0.3)
                s.connect(path)
                s.sendall(data)
                s.close()
            except OSError:
                pass
    for path in ("/kernel/out/report.json", "/kernel/report.json", "/kernel/in/judge.json", "/work/report.json",
                 "/tmp/report.json", "/judge/tests/test_sorter.py"):
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(signed)
        except OSError:
            pass
    _rewrite(_hunt())
"""

# Raw frames on the deliverable's end of the link: its Peer found with gc, the id of the request
# being answered read from kernel_wire's own frame.
RAW = """
import gc, json, struct, sys


def _peer():
    return next(o for o in gc.get_objects() if type(o).__name__ == "Peer" and hasattr(o, "sock"))


def _rid():
    frame = sys._getframe()
    while frame.f_code.co_name != "_serve":
        frame = frame.f_back
    return frame.f_locals["rid"]


def _send(message=None, data=None):
    data = json.dumps(message).encode() if data is None else data
    _peer().sock.sendall(struct.pack(">I", len(data)) + data)
"""


def sort_body(body: str) -> str:
    """A wrong sort that runs ``body`` (indented code) first."""
    return "def sort(items, key=None):\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"


class Attack(NamedTuple):
    files: dict[str, str]  # "sorter.py+" is prepended to the module; other names are shipped as they are
    reasons: tuple[str, ...]  # the verdict's reason names one of these
    code: str = WRONG
    suite: dict[str, str] | None = None
    limits: dict[str, int] | None = None
    outcomes: list[str] | None = None  # the verdict's per-test outcomes, when predictable
    untrusted: bool = False  # the suite's side refused an operator between the deliverable's object and its value


# -- 1. secrets from frames and gc, then a forged report ------------------------------------------
FORGERY = {
    "hunts_gc_and_frames_forges_everywhere_then_serves": Attack(
        {"sorter.py+": HUNT + "\n_forge()\n"},
        ("3 of 4 expected tests did not pass",),
        sort_body("_forge()\nreturn list(items)"),
    ),
    "forges_then_exits_at_import": Attack(
        {"sorter.py+": HUNT + "\n_forge()\nos._exit(0)\n"}, (f"{LINK_BROKE} during test_sorter.py: {ENDED}",)
    ),
    "forges_then_exits_after_first_call": Attack(
        {"sorter.py+": HUNT},
        (f"{LINK_BROKE} during test_sorter.py::test_empty: {ENDED}",),
        sort_body("_forge()\nos._exit(0)"),
    ),
    "forked_child_outlives_parent_and_keeps_forging": Attack(
        {
            "sorter.py+": HUNT
            + """
if os.fork() == 0:
    os.setsid()
    link = [o for o in gc.get_objects() if isinstance(o, socket.socket)]
    frame = json.dumps(["r", 3, ["L", 0, [1, 2, 3]], []]).encode()
    end = time.monotonic() + 60
    while time.monotonic() < end:
        _forge()
        for s in link:
            try:
                s.sendall(struct.pack(">I", len(frame)) + frame)
            except OSError:
                pass
        time.sleep(0.05)
    os._exit(0)
time.sleep(0.5)
"""
        },
        (NOT_PASSED, LINK_BROKE),
        code=sort_body("if items == [2, 1]:\n    os._exit(0)\nreturn list(items)"),
    ),
}

# -- 2. getting the judge to sign a lie: the deliverable rewrites its own end ---------------------
LIES = {
    "rewrites_kernel_wire_every_answer_a_fixed_sorted_list": Attack(
        {
            "sorter.py+": """
                import sys
                wire = sys.modules["kernel_wire"]
                _perform, _value = wire.Peer._perform, wire.Encoder.value

                def _fixed_perform(self, op, target, payload):
                    result = _perform(self, op, target, payload)
                    return [1, 2, 3] if op == "call" else result

                def _fixed_value(self, obj, depth=0):
                    if type(obj) is list and all(type(x) is int for x in obj):
                        obj = [1, 2, 3]
                    return _value(self, obj, depth)

                wire.Peer._perform = _fixed_perform
                wire.Encoder.value = _fixed_value
                wire.Peer._check_attribute = lambda self, obj, name: None
                wire.Peer.strict = False
            """
        },
        (NOT_PASSED,),
    ),
    "patches_json_hmac_os_socket_in_its_process": Attack(
        {
            "sorter.py+": """
                import hmac, json, os, socket
                _dumps = json.dumps

                def _lying_dumps(obj, *args, **kwargs):
                    value = obj[2] if isinstance(obj, list) and obj[:1] == ["r"] else None
                    if isinstance(value, list) and value[:1] == ["L"] and all(type(x) is int for x in value[2]):
                        obj = ["r", obj[1], ["L", 0, [1, 2, 3]], []]
                    return _dumps(obj, *args, **kwargs)

                json.dumps = _lying_dumps
                hmac.compare_digest = lambda a, b: True
                hmac.new = lambda *a, **k: type("M", (), {"hexdigest": lambda s: "0" * 64, "digest": lambda s: b""})()
                os._exit = lambda code: None
                os.kill = lambda pid, sig: None
                _connect = socket.socket.connect
                socket.socket.connect = lambda self, addr: _connect(self, "/kernel/sock/report.sock")
            """
        },
        (NOT_PASSED,),
    ),
    "raw_frame_answers_a_question_not_asked": Attack(
        {"sorter.py+": RAW},
        ("answered a question that was not asked",),
        code=sort_body('_send(["r", _rid() + 1000, ["L", 0, [1, 2, 3]], []])\nreturn list(items)'),
    ),
    "raw_frame_points_at_the_suites_own_objects": Attack(
        {"sorter.py+": RAW},
        ("sent an invalid value: a reference to an object this side never sent",),
        code=sort_body('_send(["r", _rid(), ["L", 0, [["o", 0], ["o", 1], ["a", 7]]], [[0, [["o", 0]]]]])'),
    ),
    "raw_frame_garbage_answer": Attack(
        {"sorter.py+": RAW},
        ("sent a message that is not JSON",),
        code=sort_body('_send(data=b"\\xff[not json")\n_send(["r", _rid(), ["zz", 1], []])\nreturn list(items)'),
    ),
    "raw_frame_early_fixed_answer_then_the_real_one": Attack(
        {"sorter.py+": RAW},
        ("answered a question that was not asked", NOT_PASSED),
        code=sort_body('_send(["r", _rid(), ["L", 0, [1, 2, 3]], []])\nreturn list(items)'),
    ),
    "raw_frame_requests_into_the_suites_process": Attack(
        {"sorter.py+": RAW},
        ("sent an invalid request",),
        code=sort_body(
            """
            _send(["q", 1, "import", None, "os"])
            _send(["q", 2, "exports", 0])
            _send(["q", 3, "get", 0, "__globals__"])
            _send(["q", 4, "call", 0, ["L", 0, []], ["D", 1, []]])
            return list(items)
            """
        ),
    ),
}

# -- 3. the reporter's own state and its integrity check ----------------------------------------
REPORTER = {
    "rewrites_reporter_state_found_with_gc": Attack(
        {
            "sorter.py+": HUNT
            + """
import kernel_wire
_rewrite(_hunt())
for obj in gc.get_objects():
    if isinstance(obj, dict) and "outcome" in obj:
        obj["outcome"] = "passed"
    if type(obj).__name__ == "Peer":
        obj.untrusted_operations, obj.broken = 0, None
kernel_wire.Peer._break = lambda self, reason: None
kernel_wire.Invalid = type("Invalid", (Exception,), {})
"""
        },
        (NOT_PASSED,),
        code=sort_body("_rewrite(_hunt())\nreturn list(items)"),
    ),
}

REPORTER["answers_report_shaped_values_updates_and_errors"] = Attack(
    {"sorter.py+": HUNT + "\nclass ReportError(Exception):\n    pass\n"},
    (NOT_PASSED,),
    # report documents in the answer, in the updated contents of the suite's own list, in an error's args
    code=sort_body(
        """
        items.append(dict(FORGED))
        if len(items) % 2:
            raise ReportError(json.dumps(FORGED), FORGED)
        return dict(FORGED, tests=FORGED["tests"], phases=FORGED["tests"])
        """
    ),
    outcomes=["failed"] * 4,
)

# -- 4. pytest and pluggy, in the deliverable's process and through shipped files ----------------
CHEAT_PLUGIN = """
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    report.outcome, report.longrepr = "passed", None


def pytest_collection_modifyitems(session, config, items):
    items[:] = [i for i in items if "test_sorter.py::" in i.nodeid]


def pytest_sessionfinish(session, exitstatus):
    session.exitstatus = 1
"""
PYTEST = {
    "assigns_new_code_to_pytest_functions": Attack(
        {
            "sorter.py+": """
                import _pytest.outcomes, _pytest.reports, _pytest.runner

                def _init(self, nodeid, location, keywords, outcome, longrepr, when, sections=(), duration=0,
                          user_properties=None, **extra):
                    self.nodeid, self.location, self.keywords = nodeid, location, keywords
                    self.outcome, self.longrepr, self.when = "passed", None, when
                    self.sections, self.duration, self.user_properties = list(sections), duration, []
                    self.__dict__.update(extra)

                def _quiet(*args, **kwargs):
                    return None

                TARGETS = [(_pytest.reports.TestReport, "__init__", _init), (_pytest.outcomes, "fail", _quiet),
                           (_pytest.runner, "check_interactive_exception", _quiet)]
                for owner, name, new in TARGETS:
                    try:
                        getattr(owner, name).__code__ = new.__code__
                    except Exception:
                        pass
            """
        },
        (NOT_PASSED,),
    ),
    "class_level_descriptor_on_testreport": Attack(
        {
            "sorter.py+": """
                from _pytest.reports import BaseReport, TestReport

                for cls in (TestReport, BaseReport):
                    cls.outcome = property(lambda self: "passed", lambda self, value: None)
                    cls.passed = property(lambda self: True)
                    cls.failed = property(lambda self: False)
                    cls.skipped = property(lambda self: False)
                    cls.longrepr = property(lambda self: None, lambda self, value: None)
            """
        },
        (NOT_PASSED,),
    ),
    "wraps_pluggy_hookexec": Attack(
        {
            "sorter.py+": """
                import pluggy._manager

                _hookexec = pluggy._manager.PluginManager._hookexec

                def _lying_hookexec(self, hook_name, methods, kwargs, firstresult):
                    report = kwargs.get("report")
                    if report is not None:
                        report.outcome = "passed"
                    result = _hookexec(self, hook_name, methods, kwargs, firstresult)
                    if hook_name == "pytest_runtest_makereport" and result is not None:
                        result.outcome = "passed"
                    return result

                pluggy._manager.PluginManager._hookexec = _lying_hookexec
            """
        },
        (NOT_PASSED,),
    ),
    "ships_conftest_plugin_and_ini_files": Attack(
        {
            "conftest.py": CHEAT_PLUGIN,
            "pytest_cheat.py": CHEAT_PLUGIN,
            "pytest.ini": "[pytest]\naddopts = -p pytest_cheat\npython_files = nothing_*.py\n",
            "tox.ini": "[pytest]\naddopts = -p pytest_cheat\n",
            "setup.cfg": "[tool:pytest]\naddopts = -p pytest_cheat\n",
            "sorter.py+": 'pytest_plugins = ["pytest_cheat", "conftest"]\n',
        },
        (NOT_PASSED,),
    ),
    "ships_modules_named_like_the_judges_and_pytests_imports": Attack(
        {
            **{
                name: "def __getattr__(name):\n    return lambda *args, **kwargs: True\n"
                for name in (
                    "pluggy.py",
                    "_pytest/__init__.py",
                    "iniconfig.py",
                    "pygments/__init__.py",
                    "tomli.py",
                    "exceptiongroup.py",
                    "numpy/__init__.py",
                    "readline.py",
                    "org/__init__.py",
                    "org/python/__init__.py",
                    "org/python/core.py",
                    "kernel_wire.py",
                    "kernel_judge.py",
                    "sitecustomize.py",
                    "usercustomize.py",
                )
            },
            # modules named like the suite's file and every name the canary's file can take
            **{
                f"test_sorter{suffix}.py": "def test_anything():\n    pass\n"
                for suffix in ["", *(f"_{w}" for w in CANARY_WORDS)]
            },
        },
        (NOT_PASSED,),
    ),
}

# -- 5. the suite's own reference values, and what crosses the boundary -------------------------
REFERENCE = {
    "replaces_builtins_and_plants_caller_globals": Attack(
        {
            "sorter.py+": """
                import builtins, sys

                def _fake_sorted(items, *args, **kwargs):
                    return list(items)

                builtins.sorted = _fake_sorted
            """
        },
        (NOT_PASSED,),
        code=sort_body(
            """
            frame = sys._getframe(1)
            while frame is not None:
                for names in (frame.f_globals, frame.f_builtins, frame.f_locals):
                    try:
                        names["sorted"] = _fake_sorted
                        names["expected"] = list(items)
                    except Exception:
                        pass
                frame = frame.f_back
            return list(items)
            """
        ),
        suite=REF_SUITE,
    ),
    "rewrites_locals_with_settrace_and_setprofile": Attack(
        {
            "sorter.py+": """
                import sys, threading

                def _tracer(frame, event, arg):
                    for name in ("expected", "want", "reference"):  # the suite's names, wherever its frames are
                        if name in frame.f_locals:
                            frame.f_locals[name] = [3, 2, 1]
                            try:
                                import ctypes

                                ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
                            except Exception:
                                pass
                    return _tracer

                sys.settrace(_tracer)
                sys.setprofile(_tracer)
                threading.settrace(_tracer)
                threading.setprofile(_tracer)
            """
        },
        (NOT_PASSED,),
        suite=REF_SUITE,
    ),
    "returns_an_object_equal_to_everything": Attack(
        {
            "sorter.py+": """
                class Equal:
                    def __eq__(self, other):
                        return True

                    def __ne__(self, other):
                        return False

                    def __hash__(self):
                        return 0

                    def __len__(self):
                        return 3

                    def __iter__(self):
                        return iter([1, 2, 3])
            """
        },
        (NOT_JUDGEABLE,),
        code=sort_body("return Equal() if len(items) % 2 else [Equal() for _ in items]"),
        suite=REF_SUITE,
        untrusted=True,
    ),
    "returns_an_object_whose_class_is_named_list": Attack(
        {
            "sorter.py+": """
                import builtins

                class list:
                    __module__, __qualname__ = "builtins", "list"

                    def __init__(self, items=()):
                        self.items = builtins.list(items)

                    def __eq__(self, other):
                        return True

                    def __ne__(self, other):
                        return False

                    def __iter__(self):
                        return iter(self.items)

                    def __len__(self):
                        return len(self.items)

                    __hash__ = None
            """
        },
        (NOT_JUDGEABLE,),
        code=sort_body("return list(items)"),
        suite=REF_SUITE,
        untrusted=True,
    ),
    "star_import_exports_sorted_and_random": Attack(
        {
            "sorter.py+": """
                __all__ = ["sort", "sorted", "random"]

                def sorted(items, *args, **kwargs):
                    return [*items]

                class random:
                    @staticmethod
                    def shuffle(items):
                        pass
            """
        },
        (NOT_PASSED,),
        suite=STAR_SUITE,
    ),
    "star_import_from_a_package_exports_pytest_names": Attack(
        {
            "sorter/__init__.py": """
                __all__ = ["sort", "sorted", "random", "pytest_plugins", "setup_module", "teardown_module",
                           "setup_function", "pytest_generate_tests", "setUpModule"]

                pytest_plugins = ["pytest_cheat"]

                def sorted(items, *args, **kwargs):
                    return [*items]

                def _hook(*args, **kwargs):
                    return None

                setup_module = teardown_module = setup_function = pytest_generate_tests = setUpModule = _hook
                random = None

                def sort(items):
                    return list(items)
            """,
            "pytest_cheat.py": CHEAT_PLUGIN,
        },
        (NOT_PASSED,),
        suite=STAR_SUITE,
    ),
    "key_callback_chases_the_suites_globals": Attack(
        {
            "sorter.py+": """
                def _reach(obj, path):
                    for name in path:
                        try:
                            obj = getattr(obj, name)
                        except BaseException:
                            return None
                    return obj

                PATHS = [["__globals__"], ["__code__"], ["__builtins__"], ["__closure__"], ["__self__"],
                         ["__call__", "__globals__"], ["__func__", "__globals__"], ["__wrapped__"], ["__dict__"],
                         ["apply", "__func__", "__globals__"], ["apply", "__globals__"], ["apply", "__self__"],
                         ["table"], ["__class__", "__init__", "__globals__"], ["__objclass__"], ["__module__"]]
            """
        },
        (NOT_PASSED,),
        code=sort_body(
            """
            for path in PATHS:
                found = _reach(key, path)
                if found is None:
                    continue
                for target in (found, _reach(found, ["__builtins__"])):
                    for name in ("sorted", "pytest", "by_neg", "Weight", "expected"):
                        try:
                            target[name] = lambda *a, **k: [*a[0]] if a else None
                        except BaseException:
                            pass
                        try:
                            setattr(target, name, None)
                        except BaseException:
                            pass
            try:
                type(key)(key, {"sorted": list})  # build a function from the suite's own class
            except BaseException:
                pass
            try:
                key.table = {1: 1, 2: 1, 3: 1}  # a public attribute of the suite's instance
            except BaseException:
                pass
            return list(items)
            """
        ),
        suite=KEY_SUITE,
    ),
    # The callback's class is the suite's: through the link's own "set" the deliverable replaces a
    # public method of that class, which the suite's reference computation (fresh instances) also uses.
    # This was PAID (runc and gVisor) while the suite's side served the class of any object it handed
    # over; it must now refuse everything but what the suite handed over (the instance, not its class).
    "key_callback_rewrites_the_suites_class": Attack(
        {
            "sorter.py+": """
                import sys

                wire = sys.modules["kernel_wire"]

                def _zero(*args):
                    return 0
            """
        },
        (NOT_PASSED,),
        code=sort_body(
            """
            if key is not None:
                peer, cls = wire._peer_of(key), type(key)
                for target in (cls.__dict__.get("_wire_id"), wire._rid(key)):
                    try:
                        peer.request("set", target, "measure", _zero)
                    except BaseException:
                        pass
            return list(items)
            """
        ),
        suite=KEY_CLASS_SUITE,
    ),
}

# -- exceptions named like pytest's outcomes, and the interpreter's own ---------------------------
EXCEPTIONS = {
    "raises_exceptions_named_like_pytest_outcomes": Attack(
        {
            "sorter.py+": """
                class OutcomeException(BaseException):
                    pass

                class Skipped(OutcomeException):
                    pass

                class Failed(OutcomeException):
                    pass

                class XFailed(Failed):
                    pass

                class Exit(Exception):
                    def __init__(self, msg="exit", returncode=0):
                        super().__init__(msg)
                        self.msg, self.returncode = msg, returncode

                class SkipTest(Exception):
                    pass

                for cls in (OutcomeException, Skipped, Failed, XFailed, Exit):
                    cls.__module__ = "_pytest.outcomes"
                SkipTest.__module__ = "unittest.case"
                RAISED = iter([Skipped("skipped"), XFailed("[XPASS(strict)] x"), Exit("bye", 0), SkipTest("later"),
                               OutcomeException("passed"), Failed("passed")])
            """
        },
        (NOT_PASSED,),
        code=sort_body("raise next(RAISED)"),
        suite=EXC_SUITE,
        outcomes=["failed"] * 6,
    ),
    "raises_systemexit_generatorexit_and_keyboardinterrupt": Attack(
        {
            "sorter.py+": """
                class Interrupt(KeyboardInterrupt):
                    pass

                GROUP = BaseExceptionGroup("g", [KeyboardInterrupt(), SystemExit(0)])
                RAISED = iter([SystemExit(0), GeneratorExit(), StopIteration(), GROUP, Interrupt(), KeyboardInterrupt])
            """
        },
        (NOT_PASSED,),
        code=sort_body("raise next(RAISED)"),
        suite=EXC_SUITE,
        outcomes=["failed"] * 6,
    ),
}

# -- limits: a hang, memory, processes, CPU; and an answer built to exhaust the suite -----------------
IMPORTS = {"sorter.py+": "import os, time\n"}
LIMITS = {
    "hangs_one_call": Attack(IMPORTS, ("timeout", "did not answer"), sort_body("time.sleep(30)"), limits=SHORT_LIMITS),
    "exhausts_memory_inside_sort": Attack(
        IMPORTS, (f"{ENDED} memory_limit",), sort_body("blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))")
    ),
    "fork_bomb_inside_sort": Attack(IMPORTS, (ENDED,), sort_body("while True:\n    os.fork()")),
    "burns_cpu_inside_sort": Attack(
        IMPORTS, ("CPU limit", "timeout"), sort_body("while True:\n    pass"), limits=CPU_LIMITS
    ),
    "answer_built_to_exhaust_the_suites_memory": Attack(
        {"sorter.py+": RAW},
        (LINK_BROKE,),  # refused before it is parsed: the suite is never the one that runs out of memory
        # an answer just under 4 MiB whose JSON alone is ~1.4 million dicts (~120 MB) in the suite's process
        code=sort_body(
            """
            head = b'["r",%d,["L",0,[' % _rid()
            _send(data=head + b"{}," * 1_398_000 + b"{}]],[]]")
            return list(items)
            """
        ),
    ),
}
ATTACKS: dict[str, Attack] = {**FORGERY, **LIES, **REPORTER, **PYTEST, **REFERENCE, **EXCEPTIONS, **LIMITS}


def deliver_files(k: Kernel, court: Court, make_pkg: PackageFactory, escrow_id: str, files: dict[str, str]) -> None:
    art = k.submit(make_pkg(None, entrypoint="sorter:sort", files=dedent_files(files)), "bob").artifact
    court.deliver(escrow_id, "bob", art.id)


def open_suite(k: Kernel, court: Court, make_pkg: PackageFactory, suite: dict[str, str], limits: dict) -> Escrow:
    files = dedent_files(suite)
    pkg = make_pkg(None, kind="tests", entrypoint=None, extra='target = "sorter"', limits=limits, files=files)
    return court.open("alice", 50, k.submit(pkg, "alice").artifact.id)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refunded(docker_kernel: Kernel, court: Court, make_pkg: PackageFactory, name: str) -> None:
    attack = ATTACKS[name]
    limits = attack.limits or SUITE_LIMITS
    e = open_suite(docker_kernel, court, make_pkg, attack.suite or SUITE, limits)
    if "sorter/__init__.py" in attack.files:
        deliver_files(docker_kernel, court, make_pkg, e.id, attack.files)
    else:
        deliver(docker_kernel, court, make_pkg, e.id, attack.code, attack.files)
    started = time.monotonic()
    e = court.judge(e.id)
    took = time.monotonic() - started
    v = e.verdicts[0]
    assert e.state == "refunded" and not v.passed, f"PAID: {v.reason}"
    assert any(r in v.reason for r in attack.reasons), v.reason
    assert docker_kernel.balance("alice") == 1000 and docker_kernel.balance("bob") == 100
    assert any(t.outcome != "passed" for t in v.tests), [(t.nodeid, t.outcome) for t in v.tests]
    if attack.outcomes is not None:
        assert [t.outcome for t in v.tests] == attack.outcomes, v.reason
    if attack.untrusted:
        assert v.runs[0].link is not None and v.runs[0].link.untrusted_operations > 0
    # the suite's wall limit ends a judgement: never much later than that, whatever the deliverable does
    assert v.runs[0].wall_seconds < limits["wall_seconds"] + 3, v.runs[0].wall_seconds
    assert took < limits["wall_seconds"] + 30, took


def test_star_import_suite_pays_honest_work(docker_kernel: Kernel, court: Court, make_pkg: PackageFactory) -> None:
    """The control for the star-import attacks: the suite opens, at judgement it really star-imports the
    deliverable (a name only the deliverable exports arrives), and keeping `sorted` the built-in fails no
    honest work."""
    helper = "\n\n        def test_helper():\n            assert helper() == 7\n"  # indented like the suite's text
    e = open_suite(docker_kernel, court, make_pkg, {"test_sorter.py": STAR_SUITE["test_sorter.py"] + helper},
                   SUITE_LIMITS)  # fmt: skip
    assert e.expected == [f"test_sorter.py::test_{n}" for n in ("shuffled", "reversed", "helper")]
    honest = '__all__ = ["sort", "helper", "sorted"]\n\n\ndef helper():\n    return 7\n\n\n' + base.HONEST
    deliver(docker_kernel, court, make_pkg, e.id, honest)
    e = court.judge(e.id)
    assert e.state == "released" and e.verdicts[0].passed, e.verdicts[0].reason
    assert [t.outcome for t in e.verdicts[0].tests] == ["passed"] * 3
    assert docker_kernel.balance("bob") == 150
