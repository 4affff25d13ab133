"""Runs a buyer's pytest suite for the judiciary inside the sandbox. Executed by the kernel.

Order matters: before the deliverable's folder is even on sys.path, this reads and
deletes the per-judgement nonce, imports pytest and unittest, and records the identity of
the internals a cheat would replace. The deliverable's folder is then appended to
sys.path, so it cannot shadow the standard library, pytest or its plugins. pytest runs
with an explicit rootdir and config, no plugin autoloading and no cache; the
deliverable's own conftest.py is never on a collected path. While the suite runs, every
test report re-checks the watched internals and the registered plugins (only the suite's
own conftest modules may join). The report (per-test outcomes, pytest's exit status, any
replaced internal or foreign plugin) is sealed with an HMAC under the nonce, so a report
the deliverable writes itself is rejected by the kernel. Assertion messages are not
reported: they could carry the suite's private source to the worker, or the worker's to
the buyer. Usage: kernel_judge.py collect|judge
"""

import hashlib
import hmac
import json
import os
import sys

OUT = "/kernel/out"
SPEC = "/kernel/in/judge.json"


def watched_objects():
    """Things a cheat would patch to turn failures into passes, by dotted name."""
    import unittest

    import _pytest.python
    import _pytest.reports
    import _pytest.runner
    import pytest

    names = [
        "_pytest.runner.call_and_report",
        "_pytest.runner.runtestprotocol",
        "_pytest.runner.call_runtest_hook",  # absent in newer pytest: skipped there
        "_pytest.runner.CallInfo.from_call",
        "_pytest.runner.pytest_runtest_makereport",
        "_pytest.reports.TestReport.from_item_and_call",
        "_pytest.reports.TestReport.__init__",
        "_pytest.reports.BaseReport.passed",
        "_pytest.reports.BaseReport.failed",
        "_pytest.python.Function.runtest",
        "_pytest.python.pytest_pyfunc_call",
        "_pytest.skipping.pytest_runtest_makereport",
        "pytest.main",
        "pytest.skip",
        "unittest.TestCase.run",
        "unittest.TestCase.fail",
    ]
    names += [f"unittest.TestCase.{n}" for n in dir(unittest.TestCase) if n.startswith("assert")]
    found = {}
    for name in names:
        try:
            module, attrs = split(name)
            found[name] = (module, attrs, identity(lookup(module, attrs)))
        except (ImportError, AttributeError):
            continue
    del pytest, _pytest  # imported for their side effect of loading the modules
    return found


def identity(obj):
    """What stays the same across lookups: a bound classmethod is new each time, its function is not."""
    return getattr(obj, "__func__", obj)


def split(dotted):
    """('module', ['attr', ...]) for a dotted name, resolved once, at snapshot time."""
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        return ".".join(parts[:i]), parts[i:]
    raise ImportError(dotted)


def lookup(module, attrs):
    """Walk the attributes from the module object pytest and the suite actually use."""
    obj = sys.modules[module]
    for attr in attrs:
        obj = getattr(obj, attr)
    return obj


class Reporter:
    """A pytest plugin object: gathers every phase of every test and collection errors,
    and checks at each report that nothing watched was replaced and no foreign plugin joined."""

    def __init__(self, watched):
        self.watched = watched
        self.phases = {}
        self.order = []
        self.collected = []
        self.collect_errors = []
        self.replaced = set()
        self.foreign = set()
        self.plugins = None
        self.manager = None

    def pytest_collection(self, session):
        # pytest's own plugins are all registered by now; no test module, so no
        # deliverable code, has been imported yet.
        self.manager = session.config.pluginmanager
        self.plugins = {id(p) for p in self.manager.get_plugins()}

    def check(self):
        for name, (module, attrs, obj) in self.watched.items():
            if _safe_lookup(module, attrs) is not obj:
                self.replaced.add(name)
        if self.manager is None or self.plugins is None:
            return
        conftests = {id(m) for m in getattr(self.manager, "_conftest_plugins", ())}
        for plugin in self.manager.get_plugins():
            if id(plugin) in self.plugins or id(plugin) in conftests:
                continue
            where = getattr(plugin, "__file__", None) or type(plugin).__module__
            self.foreign.add(f"{getattr(plugin, '__name__', type(plugin).__name__)} ({where})")

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_errors.append({"nodeid": report.nodeid, "error": str(report.longrepr)[-4000:]})

    def pytest_collection_finish(self, session):
        self.collected = [item.nodeid for item in session.items]
        self.check()

    def pytest_runtest_logreport(self, report):
        self.check()
        if report.nodeid not in self.phases:
            self.phases[report.nodeid] = {}
            self.order.append(report.nodeid)
        entry = {"outcome": report.outcome, "duration": round(report.duration, 6)}
        if hasattr(report, "wasxfail"):
            entry["xfail"] = True
        self.phases[report.nodeid][report.when] = entry


def seal(nonce, body):
    text = json.dumps(body, sort_keys=True)
    mac = hmac.new(nonce, text.encode(), hashlib.sha256).hexdigest()
    tmp = os.path.join(OUT, "report.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"body": text, "mac": mac}))
    os.replace(tmp, os.path.join(OUT, "report.json"))


def main():
    mode = sys.argv[1]
    nonce_path = os.path.join(OUT, "nonce")
    with open(nonce_path, "rb") as fh:
        nonce = fh.read()
    os.unlink(nonce_path)
    with open(SPEC, encoding="utf-8") as fh:
        spec = json.load(fh)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"

    import pytest

    reporter = Reporter(watched_objects())
    sys.path.extend(spec["sys_path"])  # after the standard library and pytest: nothing can be shadowed
    args = list(spec["args"]) + (["--collect-only"] if mode == "collect" else [])
    exit_code = int(pytest.main(args, plugins=[reporter]))
    reporter.check()
    seal(
        nonce,
        {
            "mode": mode,
            "exit_code": exit_code,
            "collected": reporter.collected,
            "collect_errors": reporter.collect_errors,
            "tests": {nodeid: reporter.phases[nodeid] for nodeid in reporter.order},
            "replaced": sorted(reporter.replaced),
            "foreign_plugins": sorted(reporter.foreign),
        },
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


def _safe_lookup(module, attrs):
    try:
        return identity(lookup(module, attrs))
    except Exception:  # removed or broken (even from sys.modules): that is a replacement too
        return None


if __name__ == "__main__":
    main()
