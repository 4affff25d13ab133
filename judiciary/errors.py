"""The judiciary's exceptions (under KernelError, so the CLI reports them as one line)."""

from kernel.errors import KernelError


class JudiciaryError(KernelError):
    """Base of every error the judiciary reports to a user."""


class EscrowStateError(JudiciaryError):
    """An action the escrow's current state does not allow."""


class SuiteError(JudiciaryError):
    """A tests artifact that cannot serve as a suite (no tests, cannot be collected)."""


class Busy(JudiciaryError):
    """Another kernel process is judging this escrow right now."""
