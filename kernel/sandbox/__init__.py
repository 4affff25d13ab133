"""Container backends behind one interface (``base.Sandbox``)."""

from kernel.sandbox.base import Mount, Sandbox, SandboxOutcome, SandboxSpec

__all__ = ["Mount", "Sandbox", "SandboxOutcome", "SandboxSpec"]
