"""Escrow disputes settled by running a buyer's pytest suite on a worker's deliverable.

A client of the kernel's public functions (sandbox and ledger), never of its tables.
The court, runner, report parser and verdict model arrive with the escrow issue.
"""
