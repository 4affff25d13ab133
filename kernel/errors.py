"""The kernel's exceptions: one base, small subclasses, each message a sentence for users."""


class KernelError(Exception):
    """Base of every error the kernel reports to a user."""


class NotFound(KernelError):
    """An id or name that matches nothing."""


class Ambiguous(KernelError):
    """An id prefix that matches more than one thing."""


class InvalidInput(KernelError):
    """A value given by the user that the kernel cannot accept."""


class PackageError(KernelError):
    """An artifact package that cannot be stored."""


class ManifestError(PackageError):
    """A pyproject.toml that is missing, unreadable or invalid."""


class LedgerError(KernelError):
    """A ledger operation that would break an invariant."""


class InsufficientFunds(LedgerError):
    """A debit larger than the account's balance."""


class EngineUnavailable(KernelError):
    """No Docker engine answers."""


class ImageError(KernelError):
    """The sandbox image is missing or could not be built."""


class SandboxError(KernelError):
    """The container engine failed while running an artifact."""

    def __init__(self, message: str, *, run_id: str | None = None, image: str | None = None):
        super().__init__(message)
        self.run_id = run_id
        self.image = image


class HomeError(KernelError):
    """A home (state directory) the kernel cannot use: not a folder, or a damaged database."""


class ReadOnlyHome(HomeError):
    """A write asked of a home that cannot be written."""
