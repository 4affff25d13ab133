"""Runs a buyer's pytest suite for the judiciary inside the suite's sandbox. Executed by the kernel.

No code of the deliverable ever runs in this process, and none of its files is in this
container. In ``judge`` mode the target module is a stand-in (kernel_wire.RemoteModule):
the suite's calls cross a link the kernel relays to the deliverable's own container, and
only plain data and references come back, decoded without running anything. In
``collect`` mode (at escrow open) there is no deliverable: a placeholder module stands in
so that test ids can be listed.

The outcome goes to the kernel over /kernel/sock/report.sock, connected before anything of the
suite is imported; the deliverable's process has no way to that socket, and the kernel
reads what arrived only after every process of the deliverable is dead. Assertion
messages and output are not reported: they could carry the suite's private source to the
worker, or the worker's to the buyer. Usage: kernel_judge.py collect|judge
"""

import json
import os
import socket
import sys

KERNEL_DIR = "/opt/kernel"
SPEC = "/kernel/in/judge.json"
REPORT = "/kernel/sock/report.sock"
LINK = "/kernel/sock/link.sock"


WORSE = ["failed", "skipped", "passed"]


class Reporter:
    """A pytest plugin: every phase of every test, collection errors, and the link's state."""

    def __init__(self, peer):
        self.peer = peer
        self.phases = {}
        self.order = []
        self.collected = []
        self.collect_errors = []
        self.current = None
        self.calls_at_start = 0
        self.calls = {}  # requests to the deliverable made while each test ran
        self.broken_during = None
        self.refused_during = None

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_errors.append({"nodeid": report.nodeid, "error": str(report.longrepr)[-4000:]})
        self.note_break(report.nodeid or "collection")

    def pytest_collection_finish(self, session):
        self.collected = [item.nodeid for item in session.items]

    def pytest_runtest_logstart(self, nodeid, location):
        self.current = nodeid
        self.calls_at_start = self.peer.calls if self.peer is not None else 0

    def pytest_runtest_logreport(self, report):
        if report.nodeid not in self.phases:
            self.phases[report.nodeid] = {}
            self.order.append(report.nodeid)
        entry = {"outcome": report.outcome, "duration": round(report.duration, 6)}
        if hasattr(report, "wasxfail"):
            entry["xfail"] = True
        earlier = self.phases[report.nodeid].get(report.when)
        if earlier is None or WORSE.index(entry["outcome"]) <= WORSE.index(earlier["outcome"]):
            self.phases[report.nodeid][report.when] = entry  # a phase reported twice (subtests) keeps its worst
        if self.peer is not None:
            self.calls[report.nodeid] = self.peer.calls - self.calls_at_start
        self.note_break(report.nodeid)

    def note_break(self, where):
        if self.peer is None:
            return
        if self.peer.broken is not None and self.broken_during is None:
            self.broken_during = where
        if self.peer.not_judgeable is not None and self.refused_during is None:
            self.refused_during = where

    def link(self):
        if self.peer is None:
            return None
        p = self.peer
        return {
            "broken": p.broken,
            "broken_during": self.broken_during,
            "calls": p.calls,
            "bytes_in": p.bytes_in,
            "bytes_out": p.bytes_out,
            "untrusted_operations": p.untrusted_operations,
            "not_judgeable": p.not_judgeable,
            "not_judgeable_during": self.refused_during,
            "calls_by_test": self.calls,
        }


def resolved(target, remote):
    """What the suite's `import target` found: the deliverable's module, something else, or nothing."""
    module = sys.modules.get(target)
    if module is None:
        return "never imported"
    if isinstance(module, remote):
        return "deliverable"
    return getattr(module, "__file__", None) or "a built-in module"


def shadowed(target):
    """Where a module of the target's top-level name already exists for the suite, if it does."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(target.partition(".")[0])
    except (ImportError, ValueError):
        return None
    return None if spec is None else (spec.origin or "a namespace package")


def connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return sock


def main():
    mode = sys.argv[1]
    report = connect(REPORT)  # first: before anything of the suite (or the deliverable's answers) is in here
    with open(SPEC, encoding="utf-8") as fh:
        spec = json.load(fh)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"

    import pytest

    peer = found = None
    if mode == "judge":
        sys.path.insert(0, KERNEL_DIR)
        import kernel_wire

        sys.path.remove(KERNEL_DIR)
        peer = kernel_wire.Peer(
            connect(LINK),
            strict=True,
            timeout=spec["call_seconds"],
            first_timeout=spec["first_call_seconds"],
            max_frame=spec["max_frame"],
            max_items=spec["max_items"],
        )
        sys.meta_path.append(kernel_wire.RemoteFinder(peer, spec["modules"]))
    else:
        found = shadowed(spec["target"])  # before the placeholder: would the real target be found first?
        sys.path.extend(spec["sys_path"])  # the placeholder stand-in, after everything real
    reporter = Reporter(peer)
    args = list(spec["args"]) + (["--collect-only"] if mode == "collect" else [])
    exit_code = int(pytest.main(args, plugins=[reporter]))
    target = None
    if mode == "judge":
        target = resolved(spec["target"], kernel_wire.RemoteModule)
    body = {
        "mode": mode,
        "exit_code": exit_code,
        "collected": reporter.collected,
        "collect_errors": reporter.collect_errors,
        "tests": {nodeid: reporter.phases[nodeid] for nodeid in reporter.order},
        "link": reporter.link(),
        "target": target,
        "shadowed": found if mode == "collect" else None,
    }
    report.sendall(json.dumps(body).encode())
    report.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


if __name__ == "__main__":
    main()
