"""File-level event capture: the batched audit writer, workspace watching, queries."""

from kernel.audit.log import AuditWriter, export, list_events

__all__ = ["AuditWriter", "export", "list_events"]
