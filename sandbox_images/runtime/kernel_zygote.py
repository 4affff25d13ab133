"""The first process of every sandbox: started with the container, it waits for one job.

A container is made (and, in a daemon, made ahead of time in a warm pool) with this as
its command. It connects to the control socket the kernel put in /kernel/sock, says it
is ready, and waits. The kernel then hands it exactly one job (a command, or the
artifact runner, which is already imported), which it passes to a child process it
forked before saying it was ready (no fork on the job's path), and forwards the child's
standard output and error to the kernel; when the child ends it reports the
exit code, then waits for the kernel to hang up and ends, and the container with it.
It never runs a second job.

Nothing here is trusted by the kernel: everything it sends is treated as the run's own
data (bounded, parsed, never executed). Frames on the control socket use the Docker
stream framing: one byte kind, three zero bytes, a four-byte big-endian length, then the
payload. Kinds: 1 stdout, 2 stderr, 9 a JSON control message ({"ready": pid} or
{"exit": code}).
"""

import json
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, "/opt/kernel")

import kernel_client  # noqa: E402,F401 - imported ahead of the job: the job starts warm
import kernel_runner  # noqa: E402

CONTROL = "/kernel/sock/ctl.sock"
MAX_JOB = 60_000  # a command line and its environment: well within a pipe's buffer
CHUNK = 65536


def _frame(kind, payload):
    return struct.pack(">BxxxL", kind, len(payload)) + payload


def _connect():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(200):
        try:
            sock.connect(CONTROL)
            return sock
        except OSError:
            time.sleep(0.05)
    os._exit(3)


def _read_job(sock):
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(CHUNK)
        if not chunk or len(data) > MAX_JOB:
            os._exit(4)  # the kernel went away: nothing to do
        data += chunk
    return json.loads(data)


def _child(job_r, out_w, err_w, ctl):
    """Made before the job arrives (so that no fork is on the job's path): waits for it, then runs it."""
    ctl.close()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in (devnull, out_w, err_w):
        if fd > 2:
            os.close(fd)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    data = b""
    while chunk := os.read(job_r, CHUNK):
        data += chunk
    os.close(job_r)
    if not data:
        os._exit(0)  # the zygote went away without a job
    job = json.loads(data)
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    if job.get("inline") == "runner":
        kernel_runner.main()  # ends the process itself
    else:
        os.execvpe(job["argv"][0], job["argv"], job["env"])
    os._exit(127)


def _exit_code(status):
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _not_dumpable():
    """No process of the run (same user) may ptrace the zygote or write its memory to speak for it."""
    import ctypes

    PR_SET_DUMPABLE = 4
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        os._exit(5)


def main():
    _not_dumpable()
    ctl = _connect()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    job_r, job_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(job_w)
        _child(job_r, out_w, err_w, ctl)
    for fd in (out_w, err_w, job_r):
        os.close(fd)
    ctl.sendall(_frame(9, json.dumps({"ready": os.getpid()}).encode()))
    job = _read_job(ctl)
    payload = json.dumps(job).encode()
    while payload:
        payload = payload[os.write(job_w, payload) :]
    os.close(job_w)
    _forward(ctl, pid, {out_r: 1, err_r: 2}, wake_r)


def _forward(ctl, pid, streams, wake_r):
    import select

    status = None
    while status is None:
        ready, _, _ = select.select([*streams, wake_r], [], [], 1.0)
        for fd in ready:
            if fd == wake_r:
                os.read(wake_r, 512)
                continue
            data = os.read(fd, CHUNK)
            if data:
                ctl.sendall(_frame(streams[fd], data))
            else:
                del streams[fd]
        done, status = os.waitpid(pid, os.WNOHANG)
        status = status if done else None
    for fd, kind in streams.items():  # what the child left in the pipes; a descendant may hold them open
        os.set_blocking(fd, False)
        try:
            while data := os.read(fd, CHUNK):
                ctl.sendall(_frame(kind, data))
        except BlockingIOError:
            pass
    ctl.sendall(_frame(9, json.dumps({"exit": _exit_code(status)}).encode()))
    while ctl.recv(CHUNK):  # until the kernel has read the container's cgroup and hangs up
        pass
    os._exit(0)  # the first process ends: every process of the container ends with it


if __name__ == "__main__":
    main()
