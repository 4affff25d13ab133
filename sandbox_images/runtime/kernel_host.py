"""Serves a deliverable's modules to the judge's suite. Executed by the kernel, in the
deliverable's own container, never in the suite's.

It connects to the link the kernel mounted at /kernel/sock/link.sock and answers the suite's
requests (import a module, get an attribute, call, ...) until the suite's side hangs up.
Nothing here is trusted by the judge: the deliverable may rewrite all of it, and the suite's
side checks everything that arrives (see kernel_wire.py).
"""

import os
import socket
import sys

KERNEL_DIR = "/opt/kernel"
PKG_DIR = "/kernel/pkg"
LINK = "/kernel/sock/link.sock"


def main():
    sys.path.insert(0, KERNEL_DIR)
    import kernel_wire

    sys.path.remove(KERNEL_DIR)
    for root in (os.path.join(PKG_DIR, "src"), PKG_DIR):
        if os.path.isdir(root):
            sys.path.insert(0, root)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(LINK)
    quiet = os.open(os.devnull, os.O_WRONLY)  # nobody reads its output: it must not fill the sandbox's cap
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    os.close(quiet)
    kernel_wire.Peer(sock, strict=False, timeout=None).serve_forever()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
