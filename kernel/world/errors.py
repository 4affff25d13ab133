"""The economy's refusals: subclasses of the kernel's, each message one sentence."""

from kernel.errors import InvalidInput, KernelError


class WorldError(KernelError):
    """A world operation that cannot be carried out as asked."""


class NotOwner(InvalidInput):
    """An order about an agent from someone who does not own its config."""


class NotMember(InvalidInput):
    """A pool read or write by a principal who is not one of its members."""


class NoModel(WorldError):
    """reason() asked with no language model configured, or the model failed."""
