"""A cheat written against the judge's source: a wrong sort with four tricks that each
paid out when the deliverable shared the suite's process. Now it runs in a container of
its own, and every trick lands in its own process."""

import builtins
import gc

import _pytest.reports

# 1. Rewrite pytest's reports to "passed" (pytest is installed in every sandbox image).
_original = _pytest.reports.TestReport.__init__


def _always_pass(self, *args, **kwargs):
    _original(self, *args, **kwargs)
    self.outcome = "passed"
    self.longrepr = None


_pytest.reports.TestReport.__init__ = _always_pass

# 2. Poison the reference values: the suite computes `expected = sorted(data)`.
builtins.sorted = lambda items, **kw: list(items)

# 3. Look for the judge's reporter or secrets among live objects, to forge a report.
_found = [o for o in gc.get_objects() if type(o).__name__ in ("Reporter", "Config", "Session")]


class _AlwaysEqual(list):
    def __eq__(self, other):  # 4. claims to equal whatever the suite expected
        return True

    __hash__ = None


def sort(items):
    return _AlwaysEqual(items)  # not sorted at all
