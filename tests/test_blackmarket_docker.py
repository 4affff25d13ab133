"""Real Docker: a secret handed over through a public data artifact and sold through an
escrow is an alert naming both principals, with the audit events as evidence; the same
flow with a matching payment is recorded trade, not an alert."""

import secrets
import textwrap
from pathlib import Path

import pytest

import judiciary.court  # noqa: F401 - registers escrow purchases with the auditor
from judiciary.court import Court
from kernel.api import Kernel
from tests.conftest import PackageFactory

pytestmark = pytest.mark.docker
EXAMPLES = Path(__file__).parent.parent / "examples"


def secret_text() -> str:
    return "".join(f"formula-{i}: {secrets.token_hex(12)} * {secrets.randbelow(10**6)}\n" for i in range(16))


def test_a_dropped_secret_sold_through_escrow_is_an_alert(docker_kernel: Kernel, make_pkg: PackageFactory) -> None:
    k = docker_kernel
    for p in ("carol", "dave"):
        k.create_principal(p, grant=500)
    k.settings.audit_common_corpus = []
    drop = k.submit(EXAMPLES / "drop", "alice").artifact.id
    fetch = {p: k.submit(EXAMPLES / "fetch", p).artifact.id for p in ("bob", "dave")}
    suite = k.submit(EXAMPLES / "sorter-tests", "carol").artifact.id
    court = Court(k)
    reads = {}
    for taker, pay in (("bob", None), ("dave", {"to": "alice", "amount": 40})):
        secret = secret_text()
        dropped = k.invoke(drop, "alice", {"text": secret, "name": ".cache"})
        assert dropped.status.value == "ok", dropped.reason
        got = k.invoke(fetch[taker], taker, {"artifact": dropped.output, "path": "notes.txt", "pay": pay})
        assert got.status.value == "ok" and got.output == secret, got.reason
        reads[taker] = (dropped, got)
        code = textwrap.dedent('''
            FORMULAS = """{secret}"""


            def sort(items):
                return sorted(items)
        ''').format(secret=secret)  # fmt: skip
        deliverable = k.submit(make_pkg(None, files={"sorter.py": code}, entrypoint="sorter:sort"), taker).artifact
        escrow = court.open("carol", 50, suite)
        court.deliver(escrow.id, taker, deliverable.id)
        assert court.judge(escrow.id).state == "released"

    report = k.audit_scan()
    assert report.new_alerts and k.audit_scan().new_alerts == []
    alerts = k.audit_alerts()
    assert {(a.kind, a.from_principal, a.to_principal) for a in alerts} == {
        ("unpaid_flow", "alice", "bob"),
        ("dead_drop", "alice", "bob"),
    }, [a.summary for a in alerts]
    [unpaid] = [a for a in alerts if a.kind == "unpaid_flow"]
    dropped, got = reads["bob"]
    read_event = [e.id for e in k.events(run_id=got.id) if e.op == "read_artifact"]
    write_event = [e.id for e in k.events(run_id=dropped.id) if e.op == "write_artifact"]
    story = "\n".join(k.explain_alert(unpaid.id))
    assert set(read_event + write_event) <= set(unpaid.evidence.events), story
    assert {dropped.id, got.id} <= set(unpaid.evidence.runs) and dropped.output in unpaid.evidence.artifacts
    assert unpaid.paid == 0 and unpaid.value > 0 and unpaid.bytes > 300
    assert "alice stored data artifact" in story and "bob's run" in story and "escrow" in story
    paid = [a for a in k.audit_alerts(everything=True) if not a.alert]
    assert [(a.kind, a.from_principal, a.to_principal, a.paid) for a in paid] == [
        ("reverse_payment", "alice", "dave", 40)
    ]
    [dave] = [f for f in k.audit_flows() if (f.from_principal, f.to_principal) == ("alice", "dave")]
    assert dave.paid == 40 and dave.paid_by == {"transfer": 40} and dave.alerts == []
