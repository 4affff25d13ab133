"""Real Docker: kernel_client calls from inside runc and gVisor sandboxes, audited.

Each test ends with the docker_kernel fixture's checks: ledger balanced, no run folder,
no container left.
"""

import hashlib
import json
import textwrap

import pytest

from kernel.api import Kernel
from kernel.models import AuditEvent, RunStatus
from kernel.settings import Settings
from tests.conftest import PackageFactory

pytestmark = pytest.mark.docker

LIMITS = {"wall_seconds": 60}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def events(k: Kernel, run_id: str, source: str | None = None) -> list[AuditEvent]:
    return [e for e in k.events(run_id=run_id, limit=None) if source is None or e.source == source]


def test_every_client_call_round_trips(docker_kernel: Kernel, make_pkg: PackageFactory) -> None:
    k = docker_kernel
    public = k.submit(
        make_pkg(None, kind="data", entrypoint=None, files={"table.csv": "a,b\n1,2\n"}), "alice", public=True
    )
    code = f"""
        import kernel_client as kc

        def main(v):
            start = kc.balance()
            note = kc.write_artifact("note", {{"n.txt": b"bob's note", "raw.bin": bytes(range(256))}})
            back = kc.read_artifact(note)
            one = kc.read_artifact(note, "n.txt")
            table = kc.read_artifact("{public.artifact.id}", "table.csv")
            left = kc.transfer("alice", 5, "thanks")
            with open("report.txt", "w") as fh:
                fh.write("report " * 100)
            return {{"start": start, "note": note, "files": sorted(back), "one": one.decode(),
                     "raw_ok": back["raw.bin"] == bytes(range(256)), "table": table.decode(),
                     "left": left, "end": kc.balance()}}
    """
    art = k.submit(make_pkg(code, price=2, limits=LIMITS), "alice").artifact
    r = k.invoke(art.id, "bob", None)
    assert r.status is RunStatus.OK, (r.reason, r.stderr)
    out = r.output
    assert out["start"] == 98 and out["left"] == 93 and out["end"] == 93  # price held, then tip
    assert out["files"] == ["n.txt", "raw.bin"] and out["one"] == "bob's note" and out["raw_ok"]
    assert out["table"] == "a,b\n1,2\n"
    assert k.balance("bob") == 93 and k.balance("alice") == 1007
    note = k.artifact(out["note"])
    assert note.kind == "data" and note.owner == "bob" and not note.public
    assert r.usage.proxy_calls == 8 and r.usage.proxy_bytes_in > 0 and r.usage.proxy_bytes_out > 0

    proxy = events(k, r.id, "proxy")
    assert [e.op for e in proxy] == [
        "balance", "write_artifact", "write_artifact", "read_artifact", "read_artifact",
        "read_artifact", "read_artifact", "transfer", "balance",
    ]  # fmt: skip
    reads = {(e.artifact_id, e.path): (e.bytes, e.digest) for e in proxy if e.op == "read_artifact"}
    assert reads[(note.id, "raw.bin")] == (256, sha(bytes(range(256))))
    assert reads[(note.id, "n.txt")] == (10, sha(b"bob's note"))
    assert reads[(public.artifact.id, "table.csv")] == (8, sha(b"a,b\n1,2\n"))
    writes = {e.path: (e.artifact_id, e.bytes, e.digest) for e in proxy if e.op == "write_artifact"}
    assert writes == {
        "n.txt": (note.id, 10, sha(b"bob's note")),
        "raw.bin": (note.id, 256, sha(bytes(range(256)))),
    }
    assert all(e.principal == "bob" and e.ok for e in proxy)

    kernel = events(k, r.id, "kernel")
    assert ("copy_in", art.id, art.size) in {(e.op, e.artifact_id, e.bytes) for e in kernel}
    assert any(e.op == "store" and e.artifact_id == note.id for e in kernel)
    result_event = next(e for e in kernel if e.op == "copy_out")
    assert result_event.bytes and result_event.digest

    files = events(k, r.id, "file")
    written = [e for e in files if e.op == "written"]
    assert [(e.path, e.bytes, e.digest) for e in written] == [("report.txt", 700, sha(b"report " * 100))]
    assert {"created", "modified", "closed"} <= {e.op for e in files if e.path == "report.txt"}
    assert not r.audit_incomplete


def test_nested_invoke_three_levels_and_the_graph(docker_kernel: Kernel, make_pkg: PackageFactory) -> None:
    k = docker_kernel
    leaf = k.submit(make_pkg("def main(v):\n    return v * 2\n", price=1, name="leaf"), "alice").artifact
    mid_code = f"import kernel_client as kc\ndef main(v):\n    return kc.invoke('{leaf.id}', v) + 1\n"
    mid = k.submit(make_pkg(mid_code, price=1, name="mid", extra=f'depends = ["{leaf.id}"]', limits=LIMITS), "alice")
    top_code = (
        f"import kernel_client as kc\ndef main(v):\n    return [kc.invoke('{mid.artifact.id}', v), kc.balance()]\n"
    )
    top = k.submit(
        make_pkg(top_code, price=1, name="top", extra=f'depends = ["{mid.artifact.id}"]', limits=LIMITS), "alice"
    ).artifact
    r = k.invoke(top.id, "bob", 20)
    assert r.status is RunStatus.OK, (r.reason, r.stderr)
    assert r.output == [41, 97]  # 3 prices held: top's before it started, mid's and leaf's paid
    assert k.balance("bob") == 97 and k.balance("alice") == 1003
    runs = {x.artifact_id: x for x in k.runs()}
    assert runs[leaf.id].depth == 3 and runs[leaf.id].parent_run_id == runs[mid.artifact.id].id
    assert runs[mid.artifact.id].root_run_id == r.id == runs[leaf.id].root_run_id
    g = k.graph()
    assert g.depth == 3
    assert {(e.parent, e.child, e.invocations) for e in g.edges} == {
        (top.id, mid.artifact.id, 1),
        (mid.artifact.id, leaf.id, 1),
    }


HOSTILE_CLIENT = r"""
import json, os, socket
import kernel_client as kc

SOCK = os.environ["KERNEL_SOCKET"]

def raw(payload):
    s = socket.socket(socket.AF_UNIX)
    s.connect(SOCK)
    f = s.makefile("rwb")
    f.write(payload)
    f.flush()
    answer = f.readline()
    closed = f.readline() == b""
    s.close()
    return json.loads(answer)["code"] if answer else None, closed

def refused(fn):
    try:
        fn()
        return "allowed"
    except kc.KernelCallError as exc:
        return exc.code

def huge():
    s = socket.socket(socket.AF_UNIX)
    s.connect(SOCK)
    sent = 0
    try:
        while sent < 2**30:
            s.sendall(b"x" * 2**20)
            sent += 2**20
    except OSError:
        pass
    s.close()
    return sent

def main(v):
    return {
        "garbage": raw(b"\x00\xff garbage {{{\n"),
        "forged": raw(b'{"op": "balance", "args": {}, "principal": "alice"}\n'),
        "forged_arg": raw(b'{"op": "transfer", "args": {"to": "bob", "amount": 1, "from": "alice"}}\n'),
        "huge_sent": huge(),
        "overdraft": refused(lambda: kc.transfer("alice", 10**9)),
        "negative": refused(lambda: kc.transfer("alice", -5)),
        "nobody": refused(lambda: kc.transfer("nobody", 1)),
        "private": refused(lambda: kc.read_artifact(v["private"])),
        "undeclared": refused(lambda: kc.invoke(v["private"])),
        "still_works": kc.balance(),
    }
"""


def test_bad_input_is_refused_and_recorded(docker_kernel: Kernel, make_pkg: PackageFactory) -> None:
    k = docker_kernel
    secret = k.submit(make_pkg("def main(v):\n    return 'alice secret'\n", name="secret"), "alice").artifact
    art = k.submit(make_pkg(textwrap.dedent(HOSTILE_CLIENT), limits=LIMITS), "bob").artifact
    r = k.invoke(art.id, "bob", {"private": secret.id})
    assert r.status is RunStatus.OK, (r.reason, r.stderr)
    out = r.output
    assert out["garbage"] == ["invalid", True] and out["forged"] == ["invalid", True]
    assert out["forged_arg"] == ["invalid", True]
    assert out["huge_sent"] < 2**30
    assert out["overdraft"] == "insufficient_funds" and out["negative"] == "invalid"
    assert out["nobody"] == "not_found" and out["private"] == "forbidden" and out["undeclared"] == "forbidden"
    assert out["still_works"] == 100
    assert k.balance("alice") == 1000 and k.balance("bob") == 100  # nothing moved
    refusals = [e for e in events(k, r.id, "proxy") if not e.ok]
    codes = sorted((e.detail or "").split(":")[0] for e in refusals)
    assert codes == sorted(
        ["invalid", "invalid", "invalid", "too_large", "insufficient_funds", "invalid", "not_found", "forbidden",
         "forbidden"]
    )  # fmt: skip
    assert all(e.principal == "bob" for e in refusals)


def test_recursion_bomb_is_rejected_with_the_budget_intact(tmp_path, make_pkg: PackageFactory, runtime: str) -> None:  # type: ignore[no-untyped-def]
    k = Kernel(Settings(home=tmp_path / "home", runtime=runtime, max_depth=4))
    k.create_principal("alice", grant=1000)
    k.create_principal("bob", grant=100)
    code = """
        import kernel_client as kc
        def main(v):
            return kc.invoke(v["self"], v)  # an artifact may always invoke itself
    """
    art = k.submit(make_pkg(code, price=1, limits=LIMITS), "alice").artifact
    r = k.invoke(art.id, "bob", {"self": art.id})
    assert r.status is RunStatus.ERROR and "rejected" in (r.reason or "")
    runs = k.runs()
    assert len(runs) == 5 and max(x.depth for x in runs) == 5
    deepest = next(x for x in runs if x.depth == 5)
    assert deepest.status is RunStatus.REJECTED and "nesting deeper than 4" in (deepest.reason or "")
    assert k.balance("bob") == 100 and k.balance("alice") == 1000  # every hold refunded
    assert k.ledger_check().ok
    k.close()


def test_flooding_the_socket_ends_that_connection_only(tmp_path, make_pkg: PackageFactory, runtime: str) -> None:  # type: ignore[no-untyped-def]
    k = Kernel(Settings(home=tmp_path / "home", runtime=runtime, max_calls_per_run=50))
    k.create_principal("bob", grant=10)
    code = """
        import kernel_client as kc
        def main(v):
            n = 0
            try:
                while True:
                    kc.balance()
                    n += 1
            except kc.KernelCallError as exc:
                return [n, exc.code]
    """
    art = k.submit(make_pkg(code, limits=LIMITS), "bob").artifact
    r = k.invoke(art.id, "bob", None)
    assert r.status is RunStatus.OK and r.output == [49, "limit"]  # 50 calls: the connection and 49 balances
    again = k.invoke(art.id, "bob", None)  # the kernel and the next run are unaffected
    assert again.output == [49, "limit"]
    assert json.dumps(k.balance("bob")) == "10"
    k.close()
