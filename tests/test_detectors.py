"""Each detector on hand-built audit logs, and the scan around them: incremental, idempotent,
honest about gaps, quiet on boilerplate and on paid trade."""

import base64
import gzip
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel.api import Kernel
from kernel.audit import detectors as registry
from kernel.audit.detectors.deaddrop import dotfile, hidden, meaningless
from kernel.audit.provenance import Cursors, Ingest, fingerprinter_for
from kernel.errors import InvalidInput, NotFound
from kernel.models import Alert
from tests.audit_log import Log, module
from tests.conftest import PackageFactory


@pytest.fixture
def log(fake_kernel: Kernel, tmp_path: Path) -> Iterator[Log]:
    yield Log(fake_kernel, tmp_path / "log")


def of_kind(alerts: list[Alert], kind: str) -> list[Alert]:
    return [a for a in alerts if a.kind == kind]


def world(log: Log, *, name: str = "engine-notes", drop: bytes | None = None, price: int = 10,
          pay: int = 0, customers: int = 1, secret: bytes | None = None) -> dict[str, Any]:  # fmt: skip
    """ann sells a private module; she drops it in a public data artifact; ben reads it."""
    ann, ben, cat = log.principal("ann"), log.principal("ben"), log.principal("cat")
    secret = module(1) if secret is None else secret
    product = log.package(ann, {"engine.py": secret}, price=price, public=False)
    for _ in range(customers):
        log.run(cat, product, output={"ok": 1})  # an honest customer pays ann's price
    tool_a, tool_b = log.package(ann, {}), log.package(ben, {})
    run_a = log.run(ann, tool_a)
    dropped = log.write_data(run_a, ann, name, {"blob": secret if drop is None else drop})
    run_b = log.run(ben, tool_b)
    read = log.read(run_b, ben, dropped, "blob")
    if pay:
        log.transfer(ben, ann, pay)
    return {"product": product, "drop": dropped, "run_b": run_b, "read": read, "secret": secret}


# -- unpaid content flow --------------------------------------------------------------------
def test_unpaid_flow_names_both_principals_with_the_events_as_evidence(fake_kernel: Kernel, log: Log) -> None:
    w = world(log)
    report = fake_kernel.audit_scan()
    [alert] = of_kind(fake_kernel.audit_alerts(), "unpaid_flow")
    assert (alert.from_principal, alert.to_principal, alert.paid) == ("ann", "ben", 0)
    assert alert.id in report.new_alerts and 0.5 < alert.score <= 1
    assert alert.bytes >= len(w["secret"]) * 0.8 and 0 < alert.value <= 10
    assert w["read"] in alert.evidence.events and {w["drop"], w["product"]} <= set(alert.evidence.artifacts)
    assert alert.thresholds["paid_ratio"] == 0.5 and alert.thresholds["min_bytes"] == 256
    story = "\n".join(fake_kernel.explain_alert(alert.id[:8]))
    assert f"event #{w['read']}" in story and "ann submitted artifact" in story and "Unpaid: 0 < 0.5" in story


def test_a_matching_payment_is_recorded_as_paid_trade_not_an_alert(fake_kernel: Kernel, log: Log) -> None:
    world(log, pay=10)
    fake_kernel.audit_scan()
    assert not of_kind(fake_kernel.audit_alerts(), "unpaid_flow")
    [paid] = of_kind(fake_kernel.audit_alerts(everything=True), "reverse_payment")
    assert not paid.alert and (paid.from_principal, paid.to_principal, paid.paid) == ("ann", "ben", 10)
    [flow] = [f for f in fake_kernel.audit_flows() if (f.from_principal, f.to_principal) == ("ann", "ben")]
    assert flow.paid == 10 and flow.paid_by == {"transfer": 10} and flow.side_payments == 10 and not flow.alerts


def test_content_that_earned_nothing_is_not_unpaid_trade(fake_kernel: Kernel, log: Log) -> None:
    world(log, price=0, customers=0)
    fake_kernel.audit_scan()
    assert fake_kernel.audit_alerts() == []
    assert any(f.from_principal == "ann" and f.to_principal == "ben" for f in fake_kernel.audit_flows())


def test_partial_and_encoded_copies_are_found(fake_kernel: Kernel, log: Log) -> None:
    secret = module(1)
    w = world(log, drop=base64.b64encode(gzip.compress(b"# header\n" + secret[len(secret) // 3 :])))
    fake_kernel.audit_scan()
    [alert] = of_kind(fake_kernel.audit_alerts(), "unpaid_flow")
    assert alert.from_principal == "ann" and len(secret) * 0.5 < alert.bytes < len(w["secret"])


def test_flows_below_the_minimum_are_not_alerts(fake_kernel: Kernel, log: Log) -> None:
    world(log, drop=module(1)[200:400])
    fake_kernel.audit_scan()
    assert not of_kind(fake_kernel.audit_alerts(), "unpaid_flow")


# -- dead drop ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "drop", "signal"),
    [
        (".cache", None, "a hidden name"),
        ("k3j9x2a7q", None, "a meaningless name"),
        ("engine-notes", random.Random(5).randbytes(4096), "opaque content"),
    ],
)
def test_dead_drop_by_name_or_opaque_content(fake_kernel: Kernel, log: Log, name: str, drop: bytes | None,
                                             signal: str) -> None:  # fmt: skip
    w = world(log, name=name, drop=drop, price=0, customers=0)
    fake_kernel.audit_scan()
    [alert] = of_kind(fake_kernel.audit_alerts(), "dead_drop")
    assert (alert.from_principal, alert.to_principal, alert.subject) == ("ann", "ben", w["drop"])
    assert signal in alert.summary and w["read"] in alert.evidence.events


def test_no_dead_drop_for_plain_names_decodable_content_many_readers_or_payment(fake_kernel: Kernel, log: Log) -> None:
    text = "\n".join(f"city-{i},{i * 37 % 1000}" for i in range(400)).encode()
    w = world(log, name="city-populations-2024", drop=gzip.compress(text), price=0, customers=0)
    fake_kernel.audit_scan()
    assert not of_kind(fake_kernel.audit_alerts(), "dead_drop"), "gzip is dense but readable: not opaque"
    hidden_drop = log.write_data(log.run("ann", log.package("ann", {})), "ann", ".x", {"blob": random.randbytes(999)})
    for reader in ("ben", "cat"):
        log.read(log.run(reader, log.package(reader, {})), reader, hidden_drop, "blob")
    fake_kernel.audit_scan()
    assert not of_kind(fake_kernel.audit_alerts(), "dead_drop"), "two readers is publishing, not a drop"
    package = log.package("ann", {".gitignore": b"__pycache__/\n*.pyc\n", "tools.py": module(12)})
    reader_run = log.run("cat", log.package("cat", {}))
    for path in ("pyproject.toml", "main.py", ".gitignore", "tools.py"):
        log.read(reader_run, "cat", package, path)
    fake_kernel.audit_scan()
    assert not of_kind(fake_kernel.audit_alerts(), "dead_drop"), "a package's .gitignore is no hiding place"
    paid_drop = log.write_data(log.run("ann", log.package("ann", {})), "ann", ".y", {"blob": random.randbytes(999)})
    log.read(w["run_b"], "ben", paid_drop, "blob")
    log.transfer("ben", "ann", 5)
    fake_kernel.audit_scan()
    assert not of_kind(fake_kernel.audit_alerts(), "dead_drop"), "a paid drop is trade"


def test_names_that_read_as_noise() -> None:
    for noise in ("k3j9x2a7q", "7f3a9c01e2", "qzxwvtkp", "x9_f3_k2"):
        assert meaningless(noise), noise
    for word in ("weather-2024.csv", "CityPopulations", "engine-notes", "data.csv.gz", "README.md", "v2"):
        assert not meaningless(word), word
    assert hidden(".cache/blob") and hidden("a/.b") and not hidden("a/b.c")
    assert dotfile(".gitignore", 40) and not dotfile(".gitignore", 50_000) and not dotfile(".secret", 40)


# -- laundering ---------------------------------------------------------------------------------
def test_laundering_names_the_relay(fake_kernel: Kernel, log: Log) -> None:
    ann, ben, cid, cat = (log.principal(p) for p in ("ann", "ben", "cid", "cat"))
    secret = module(2)
    product = log.package(ann, {"engine.py": secret}, price=8, public=False)
    log.run(cat, product, output={"ok": 1})
    dropped = log.write_data(log.run(ann, log.package(ann, {})), ann, "notes", {"engine.py": secret})
    relay_run = log.run(cid, log.package(cid, {}))
    log.read(relay_run, cid, dropped, "engine.py")
    mirror = log.write_data(relay_run, cid, "mirror", {"copy/engine.py": secret})
    log.read(log.run(ben, log.package(ben, {})), ben, mirror, "copy/engine.py")
    fake_kernel.audit_scan()
    [alert] = of_kind(fake_kernel.audit_alerts(), "laundering")
    assert (alert.from_principal, alert.to_principal, alert.via, alert.subject) == ("ann", "ben", "cid", mirror)
    assert "cid passed it on: 100%" in "\n".join(fake_kernel.explain_alert(alert.id))
    assert {("ann", "ben"), ("ann", "cid")} <= {(a.from_principal, a.to_principal) for a in fake_kernel.audit_alerts()}
    assert not [a for a in fake_kernel.audit_alerts() if a.from_principal == "cid"], "the content is ann's, not cid's"


# -- boilerplate ----------------------------------------------------------------------------------
def test_content_written_independently_by_several_principals_is_boilerplate(fake_kernel: Kernel, log: Log) -> None:
    shared = module(3)
    authors = [log.principal(p) for p in ("ann", "ben", "cid", "dot")]
    for who in authors[:3]:
        log.package(who, {"helpers.py": shared}, price=5)
    run = log.run("dot", log.package("dot", {}))
    for art in fake_kernel.artifacts(owner="ann"):
        if art.price:
            log.read(run, "dot", art.id, "helpers.py")
    fake_kernel.audit_scan()
    assert not [f for f in fake_kernel.audit_flows() if f.bytes >= 256], "written by three: boilerplate"


@pytest.mark.parametrize("in_corpus", [True, False])
def test_the_common_corpus_is_boilerplate(fake_kernel: Kernel, log: Log, tmp_path: Path, in_corpus: bool) -> None:
    corpus = tmp_path / "corpus" / "lib.py"
    corpus.parent.mkdir()
    corpus.write_bytes(module(4))
    fake_kernel.settings.audit_common_corpus = [corpus.parent] if in_corpus else []
    world(log, secret=module(4))
    report = fake_kernel.audit_scan()
    assert bool(report.corpus_fingerprints) == in_corpus
    assert bool(of_kind(fake_kernel.audit_alerts(), "unpaid_flow")) != in_corpus
    assert fake_kernel.audit_scan().corpus_fingerprints is None, "seeded once"


# -- the scan ------------------------------------------------------------------------------------
def test_scans_are_incremental_and_idempotent(fake_kernel: Kernel, log: Log) -> None:
    w = world(log)
    first = fake_kernel.audit_scan()
    again = fake_kernel.audit_scan()
    assert first.new_alerts and again.new_alerts == [] and again.updated_alerts == [] and again.sightings == 0
    assert again.events_to == first.events_to and fake_kernel.audit_pending() == {"artifacts": 0, "events": 0,
                                                                                  "ledger": 0}  # fmt: skip
    dan = log.principal("dan")
    log.read(log.run(dan, log.package(dan, {})), dan, w["drop"], "blob")
    third = fake_kernel.audit_scan()
    assert third.events_to > first.events_to and third.sightings > 0
    assert {fake_kernel.audit_alert(a).to_principal for a in third.new_alerts} == {"dan"}
    assert len(fake_kernel.audit_alerts()) == len(first.new_alerts) + len(third.new_alerts)


def test_a_scan_that_died_half_way_is_simply_repeated(fake_kernel: Kernel, log: Log) -> None:
    """The first pass recorded every sighting but died before judging: the next scan judges them."""
    w = world(log, name=".cache", price=0, customers=0)  # nothing paid: no payment marks the pair again
    Ingest(fake_kernel.db, fake_kernel.settings, fingerprinter_for(fake_kernel.settings))(Cursors())
    report = fake_kernel.audit_scan()
    assert report.sightings == 0 and report.pairs > 0, "everything was seen, and still judged"
    [drop] = of_kind(fake_kernel.audit_alerts(), "dead_drop")
    assert drop.subject == w["drop"] and fake_kernel.audit_scan().new_alerts == []


def test_a_late_payment_resolves_the_alert(fake_kernel: Kernel, log: Log) -> None:
    world(log)
    fake_kernel.audit_scan()
    [alert] = of_kind(fake_kernel.audit_alerts(), "unpaid_flow")
    log.transfer("ben", "ann", 10)
    report = fake_kernel.audit_scan()
    assert report.resolved_alerts == [alert.id] and not of_kind(fake_kernel.audit_alerts(), "unpaid_flow")
    [resolved] = [a for a in fake_kernel.audit_alerts(everything=True) if a.id == alert.id]
    assert not resolved.alert and resolved.summary.endswith("(resolved)")
    assert any(line.startswith("Resolved by scan") for line in fake_kernel.explain_alert(alert.id))


def test_a_drop_paid_for_later_is_resolved(fake_kernel: Kernel, log: Log) -> None:
    world(log, name=".cache", price=0, customers=0)
    fake_kernel.audit_scan()
    [drop] = of_kind(fake_kernel.audit_alerts(), "dead_drop")
    log.transfer("ben", "ann", 3)
    assert fake_kernel.audit_scan().resolved_alerts == [drop.id] and fake_kernel.audit_alerts() == []


def test_copies_made_while_other_runs_are_in_flight_are_still_copies(fake_kernel: Kernel, log: Log) -> None:
    """Three principals read ann's module and store copies; a scan while their runs are going
    must not take them for independent authors (which would make the module boilerplate)."""
    ann, cat = log.principal("ann"), log.principal("cat")
    secret = module(7)
    product = log.package(ann, {"engine.py": secret}, price=10)
    log.run(cat, product, output={"ok": 1})
    runs = []
    for p in ("ben", "cid", "dot"):
        log.principal(p)
        run = log.run(p, log.package(p, {}))
        log.read(run, p, product, "engine.py")
        log.write_data(run, p, f"copy-{p}", {"engine.py": secret})
        runs.append(run)
    for run in runs:
        fake_kernel.db.conn.execute("UPDATE runs SET state = 'running' WHERE id = ?", (run,))
    fake_kernel.audit_scan()
    for run in runs:
        fake_kernel.db.conn.execute("UPDATE runs SET state = 'done' WHERE id = ?", (run,))
    fake_kernel.audit_scan()
    alerted = {a.to_principal for a in of_kind(fake_kernel.audit_alerts(), "unpaid_flow")}
    assert alerted == {"ben", "cid", "dot"}
    common = fake_kernel.db.one(
        "SELECT COUNT(k.fp) AS common, COUNT(*) AS total FROM prov_artifacts pa"
        " JOIN prov_chunks c ON c.digest = pa.digest LEFT JOIN prov_common k ON k.fp = c.fp"
        " WHERE pa.artifact_id = ? AND pa.path = 'engine.py'",
        (product,),
    )
    assert common and common["common"] <= 2 < common["total"], "only the shared `def main` head may be boilerplate"


def test_what_someone_elses_code_writes_for_the_caller_reaches_the_caller(fake_kernel: Kernel, log: Log) -> None:
    ann, cat, eve = log.principal("ann"), log.principal("cat"), log.principal("eve")
    secret = module(9)
    product = log.package(ann, {"engine.py": secret}, price=10, public=False)
    log.run(cat, product, output={"ok": 1})
    leak = log.package(ann, {"leak.py": b"def leak():\n    pass\n"})  # free: writes ann's module for the caller
    for p in ("ben", "cid", "dot"):
        log.principal(p)
        log.write_data(log.run(p, leak), p, f"for-{p}", {"engine.py": secret})
    drop = log.write_data(log.run(ann, log.package(ann, {})), ann, "notes", {"engine.py": secret})
    log.read(log.run(eve, log.package(eve, {})), eve, drop, "engine.py")
    fake_kernel.audit_scan()
    alerted = {a.to_principal for a in of_kind(fake_kernel.audit_alerts(), "unpaid_flow")}
    assert alerted == {"ben", "cid", "dot", "eve"}, "callers received ann's content; it is not boilerplate"
    [flow] = [f for f in fake_kernel.audit_flows() if (f.from_principal, f.to_principal) == ("ann", "ben")]
    assert flow.channels == {"data": flow.fingerprints}


def test_what_someone_elses_code_reads_is_not_the_callers(fake_kernel: Kernel, log: Log) -> None:
    ann, ben, cat = log.principal("ann"), log.principal("ben"), log.principal("cat")
    product = log.package(ann, {"engine.py": module(13)}, price=10)
    log.run(cat, product, output={"ok": 1})
    tool = log.package(ann, {})  # free; reads ann's engine for ben and returns a count
    run = log.run(ben, tool, output={"lines": 12})
    log.read(run, ben, product, "engine.py")
    fake_kernel.audit_scan()
    assert fake_kernel.audit_alerts() == [] and not [f for f in fake_kernel.audit_flows() if f.to_principal == ben]


def test_content_found_to_be_boilerplate_resolves_its_alert(fake_kernel: Kernel, log: Log) -> None:
    w = world(log)
    fake_kernel.audit_scan()
    [alert] = of_kind(fake_kernel.audit_alerts(), "unpaid_flow")
    for p in ("dot", "eve"):  # two more principals write the same module, never having read it
        log.package(log.principal(p), {"engine.py": w["secret"]})
    assert alert.id in fake_kernel.audit_scan().resolved_alerts


def test_an_alert_raised_again_is_new_again(fake_kernel: Kernel, log: Log) -> None:
    world(log, name=".cache", price=0, customers=0)
    fake_kernel.audit_scan()
    [drop] = fake_kernel.audit_alerts()
    fake_kernel.settings.audit_dead_drop_seconds = 0  # nobody reads within 0 s: no drop
    assert fake_kernel.audit_scan(rescore=True).resolved_alerts == [drop.id]
    fake_kernel.settings.audit_dead_drop_seconds = 3600
    assert fake_kernel.audit_scan(rescore=True).new_alerts == [drop.id]


def test_escrow_payments_read_before_the_judiciary_was_loaded_are_explained_later(
    fake_kernel: Kernel, log: Log, make_pkg: PackageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from judiciary.court import Court
    from kernel.audit.provenance import PURCHASES
    from tests.test_court import ScriptedRunner

    ben, cat = log.principal("ben"), log.principal("cat")
    deliverable = log.package(ben, {"sorter.py": module(11)})
    suite = make_pkg(None, kind="tests", entrypoint=None, extra='target = "sorter"',
                     files={"test_s.py": "def test_a():\n    pass\n"})  # fmt: skip
    runner = ScriptedRunner([["passed"]], collect=["test_s.py::test_a"])
    court = Court(fake_kernel, runner=lambda: runner)  # type: ignore[arg-type,return-value]
    escrow = court.open(cat, 30, fake_kernel.submit(suite, cat).artifact.id)
    court.deliver(escrow.id, ben, deliverable)
    resolver = PURCHASES.pop("escrow")  # as if only the kernel were imported
    try:
        assert court.judge(escrow.id).state == "released"
        fake_kernel.audit_scan()
        assert not [f for f in fake_kernel.audit_flows() if f.to_principal == cat]
    finally:
        PURCHASES["escrow"] = resolver
    with monkeypatch.context() as m:  # the scan that explains it dies half-way: nothing of it may stick
        m.setattr(Ingest, "_events", lambda *a: (_ for _ in ()).throw(RuntimeError("killed")))
        with pytest.raises(RuntimeError):
            fake_kernel.audit_scan()
    fake_kernel.audit_scan()
    [flow] = [f for f in fake_kernel.audit_flows() if (f.from_principal, f.to_principal) == (ben, cat)]
    assert flow.channels == {"delivery": flow.fingerprints} and flow.paid == 30


def test_runs_in_flight_wait_for_the_next_scan(fake_kernel: Kernel, log: Log) -> None:
    w = world(log)
    fake_kernel.db.conn.execute("UPDATE runs SET state = 'running' WHERE id = ?", (w["run_b"],))
    fake_kernel.audit_scan()
    assert not [a for a in fake_kernel.audit_alerts() if a.to_principal == "ben"]
    assert fake_kernel.audit_pending()["events"] > 0
    fake_kernel.db.conn.execute("UPDATE runs SET state = 'done' WHERE id = ?", (w["run_b"],))
    fake_kernel.audit_scan()
    assert [a for a in fake_kernel.audit_alerts() if a.to_principal == "ben"]


def test_alerts_over_an_incomplete_audit_say_so(fake_kernel: Kernel, log: Log) -> None:
    w = world(log)
    elsewhere = log.run("ben", log.package("ben", {}))  # incomplete too, but not in the evidence
    fake_kernel.db.conn.execute("UPDATE runs SET audit_incomplete = 1 WHERE id IN (?, ?)", (w["run_b"], elsewhere))
    fake_kernel.audit_scan()
    [alert] = of_kind(fake_kernel.audit_alerts(), "unpaid_flow")
    assert alert.audit_incomplete == [w["run_b"]]
    assert any("is incomplete" in line for line in fake_kernel.explain_alert(alert.id))


def test_workspace_files_and_outputs_carry_content(fake_kernel: Kernel, log: Log) -> None:
    """ben's run reads nothing, but a run of ann's free artifact returns the secret to him."""
    ann, ben, cat = log.principal("ann"), log.principal("ben"), log.principal("cat")
    secret = module(6)
    product = log.package(ann, {"engine.py": secret}, price=9)
    log.run(cat, product, output={"ok": 1})
    leak = log.package(ann, {"leak.py": b"def leak():\n    pass\n"})
    run = log.run(ben, leak, output={"source": secret.decode()})
    log.workspace(run, ben, "copy.py", secret)
    fake_kernel.audit_scan()
    [alert] = of_kind(fake_kernel.audit_alerts(), "unpaid_flow")
    assert (alert.from_principal, alert.to_principal) == ("ann", "ben") and run in alert.evidence.runs
    assert "received it as the value of run" in "\n".join(fake_kernel.explain_alert(alert.id))


def test_empty_worlds_unknown_ids_and_binary_content(fake_kernel: Kernel, log: Log) -> None:
    report = fake_kernel.audit_scan()
    assert report.sightings == 0 and fake_kernel.audit_flows() == [] and fake_kernel.audit_alerts() == []
    with pytest.raises(NotFound, match="kernel audit alerts"):
        fake_kernel.explain_alert("abcdef12")
    with pytest.raises(InvalidInput, match="6 hex digits"):
        fake_kernel.audit_alert("xyz")
    with pytest.raises(InvalidInput, match="no detector named"):
        fake_kernel.audit_alerts(kind="nope")
    with pytest.raises(NotFound):
        fake_kernel.audit_alerts(principal="nobody")
    world(log, drop=b"\xff\xfe\x00\x81" * 3000 + "é".encode("latin-1") * 500 + module(1))
    fake_kernel.audit_scan()  # binary, non-UTF-8: fingerprinted like anything else
    [flow] = [f for f in fake_kernel.audit_flows() if (f.from_principal, f.to_principal) == ("ann", "ben")]
    assert flow.bytes >= len(module(1)) * 0.8 and of_kind(fake_kernel.audit_alerts(), "unpaid_flow")


def test_detectors_are_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    class Extra:
        name, description = "extra", "a test plugin"

        def detect(self, ctx: object) -> list[object]:
            return []

    class EntryPoint:
        def load(self) -> type:
            return Extra

    monkeypatch.setattr(registry, "entry_points", lambda group: [EntryPoint()] if group == registry.GROUP else [])
    names = [d.name for d in registry.detectors()]
    assert names == ["unpaid_flow", "dead_drop", "laundering", "reverse_payment", "extra"]


def test_a_stored_package_that_cannot_be_read_is_a_note_not_a_crash(fake_kernel: Kernel, log: Log) -> None:
    from kernel import store

    w = world(log)
    store.blob_path(fake_kernel.settings, w["product"]).unlink()
    report = fake_kernel.audit_scan()
    assert any(w["product"][:12] in note and "could not be read" in note for note in report.notes)
    assert of_kind(fake_kernel.audit_alerts(), "dead_drop") == [] and report.sightings > 0
