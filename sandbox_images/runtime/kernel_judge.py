"""Runs a buyer's pytest suite for the judiciary inside the sandbox. Executed by the kernel.

Order matters: before any deliverable code is imported, this reads and deletes the
per-judgement nonce, and records the identity of the pytest and unittest internals a
cheat would replace. pytest then runs with an explicit rootdir and config, no plugin
autoloading and no cache; the deliverable's own conftest.py is never on a collected
path. The report (per-test outcomes, pytest's exit status, any replaced internals) is
sealed with an HMAC under the nonce, so a report the deliverable writes itself, without
the nonce, is rejected by the kernel. Usage: kernel_judge.py collect|judge
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

    objs = {
        "_pytest.runner.call_and_report": _pytest.runner.call_and_report,
        "_pytest.runner.runtestprotocol": _pytest.runner.runtestprotocol,
        "_pytest.runner.call_runtest_hook": _pytest.runner.call_runtest_hook,
        "_pytest.runner.CallInfo.from_call": _pytest.runner.CallInfo.from_call,
        "_pytest.reports.TestReport.from_item_and_call": _pytest.reports.TestReport.from_item_and_call,
        "_pytest.reports.TestReport.__init__": _pytest.reports.TestReport.__init__,
        "_pytest.python.Function.runtest": _pytest.python.Function.runtest,
        "_pytest.python.pytest_pyfunc_call": _pytest.python.pytest_pyfunc_call,
        "pytest.main": pytest.main,
        "pytest.skip": pytest.skip,
        "unittest.TestCase.run": unittest.TestCase.run,
        "unittest.TestCase.fail": unittest.TestCase.fail,
    }
    for name in dir(unittest.TestCase):
        if name.startswith("assert"):
            objs[f"unittest.TestCase.{name}"] = getattr(unittest.TestCase, name)
    return {name: identity(obj) for name, obj in objs.items()}


def identity(obj):
    """What stays the same across lookups: a bound classmethod is new each time, its function is not."""
    return getattr(obj, "__func__", obj)


def resolve(dotted):
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


class Reporter:
    """A pytest plugin object: gathers every phase of every test and collection errors."""

    def __init__(self):
        self.phases = {}
        self.order = []
        self.collected = []
        self.collect_errors = []

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_errors.append({"nodeid": report.nodeid, "error": str(report.longrepr)[-4000:]})

    def pytest_collection_finish(self, session):
        self.collected = [item.nodeid for item in session.items]

    def pytest_runtest_logreport(self, report):
        if report.nodeid not in self.phases:
            self.phases[report.nodeid] = {}
            self.order.append(report.nodeid)
        entry = {"outcome": report.outcome, "duration": round(report.duration, 6)}
        if hasattr(report, "wasxfail"):
            entry["xfail"] = True
        if report.failed:
            entry["error"] = str(report.longrepr)[-2000:]
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
    for path in reversed(spec["sys_path"]):
        sys.path.insert(0, path)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"

    import pytest

    before = watched_objects()
    reporter = Reporter()
    args = list(spec["args"]) + (["--collect-only"] if mode == "collect" else [])
    exit_code = int(pytest.main(args, plugins=[reporter]))
    replaced = sorted(name for name, obj in before.items() if _safe_resolve(name) is not obj)
    seal(
        nonce,
        {
            "mode": mode,
            "exit_code": exit_code,
            "collected": reporter.collected,
            "collect_errors": reporter.collect_errors,
            "tests": {nodeid: reporter.phases[nodeid] for nodeid in reporter.order},
            "replaced": replaced,
        },
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


def _safe_resolve(name):
    try:
        return identity(resolve(name))
    except Exception:  # removed or broken: that is a replacement too
        return None


if __name__ == "__main__":
    main()
