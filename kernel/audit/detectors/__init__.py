"""Black-market detectors, each a plugin with a name.

Built-in: ``unpaid_flow``, ``dead_drop``, ``laundering``, ``reverse_payment``. Other
packages add detectors through the ``kernel.audit_detectors`` entry-point group: an
object (or a class, instantiated without arguments) with ``name``, ``description`` and
``detect(ctx) -> list[Finding]``.
"""

from importlib.metadata import entry_points

from kernel.audit.detectors.base import Context, Detector, Evidence, Finding
from kernel.audit.detectors.deaddrop import DeadDrop
from kernel.audit.detectors.laundering import Laundering
from kernel.audit.detectors.reverse import ReversePayment
from kernel.audit.detectors.unpaid import UnpaidFlow

BUILTIN: list[Detector] = [UnpaidFlow(), DeadDrop(), Laundering(), ReversePayment()]
GROUP = "kernel.audit_detectors"


def detectors() -> list[Detector]:
    """The built-in detectors, then those installed as plugins (a plugin may not reuse a name)."""
    found = list(BUILTIN)
    names = {d.name for d in found}
    for ep in entry_points(group=GROUP):
        plugin = ep.load()
        detector = plugin() if isinstance(plugin, type) else plugin
        if detector.name not in names:
            names.add(detector.name)
            found.append(detector)
    return found


__all__ = ["BUILTIN", "Context", "Detector", "Evidence", "Finding", "detectors"]
