"""The economy: agents with configs, a world clock, pools, messages, the Mint and its tasks.

The world is a client of the kernel: every agent action is a real run (held, metered,
paid, audited) through ``Kernel.invoke``; it adds tables of its own, never writes the
kernel's except through the kernel's functions.
"""
