"""The `kernel` command: help with examples, --json documents, one-line errors, exit codes."""

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kernel.cli import main
from tests.conftest import PackageFactory


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path, the lazily loaded ones included."""
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        if isinstance(cmd, click.Group):
            found += commands(cmd, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def call(*args: str, code: int = 0) -> click.testing.Result:
        result = runner.invoke(main, ["--home", str(tmp_path / "home"), *args])
        assert result.exit_code == code, (args, result.output, result.stderr)
        assert "Traceback" not in result.output + result.stderr
        return result

    return call


@pytest.mark.parametrize("path", commands(main), ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and f"kernel {' '.join(path)}" in result.output


# `audit export` and `telemetry export` write a file format (JSON lines or CSV) chosen by --format
# instead; `browse` prints no data: it becomes Datasette, whose pages and .json URLs are the data.
NO_JSON = {("audit", "export"), ("telemetry", "export"), ("browse",)}


@pytest.mark.parametrize("path", [p for p in commands(main) if p not in NO_JSON], ids=" ".join)
def test_every_data_command_takes_json(path: tuple[str, ...]) -> None:
    assert "--json" in CliRunner().invoke(main, [*path, "--help"]).output


def test_principals_and_balances(cli) -> None:  # type: ignore[no-untyped-def]
    assert json.loads(cli("principal", "create", "alice", "--grant", "50", "--json").stdout) == {
        "name": "alice",
        "balance": 50,
    }
    assert "alice: 50 scrip" in cli("balance", "alice").stdout
    listed = json.loads(cli("principal", "list", "--json").stdout)
    assert [(p["name"], p["balance"]) for p in listed] == [("alice", 50)]
    assert json.loads(cli("ledger", "check", "--json").stdout)["ok"] is True


def test_submit_and_list(cli, make_pkg: PackageFactory) -> None:  # type: ignore[no-untyped-def]
    cli("principal", "create", "alice")
    doc = json.loads(
        cli("submit", str(make_pkg("def main(v):\n    return 1\n", price=2)), "--as", "alice", "--json").stdout
    )
    assert doc["created"] is True and doc["artifact"]["price"] == 2
    listed = json.loads(cli("artifacts", "--json").stdout)
    assert [a["id"] for a in listed] == [doc["artifact"]["id"]]
    shown = json.loads(cli("artifact", doc["artifact"]["id"][:8], "--json").stdout)
    assert shown["owner"] == "alice"


@pytest.mark.parametrize(
    "args, message",
    [
        (("balance", "nobody"), "no principal named 'nobody'"),
        (("principal", "create", "Bad Name"), "not a valid principal name"),
        (("submit", "/nonexistent", "--as", "alice"), "does not exist"),
        (("show", "abcdef12"), "no run with id"),
        (("artifact", "xyz"), "not an artifact id"),
        (("invoke", "abcdef12", "--as", "alice", "--input", "{bad"), "--input is not valid JSON"),
    ],
)
def test_errors_are_one_line_exit_1(cli, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    cli("principal", "create", "alice")
    result = cli(*args, code=1)
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_usage_errors_exit_2(cli) -> None:  # type: ignore[no-untyped-def]
    assert "No such command" in cli("frobnicate", code=2).stderr
    assert "Missing option '--as'" in cli("submit", ".", code=2).stderr


def test_ledger_check_fails_when_broken(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    cli("principal", "create", "alice", "--grant", "5")
    conn = sqlite3.connect(tmp_path / "home" / "kernel.db")
    conn.execute("UPDATE accounts SET balance = 9 WHERE id = 'principal:alice'")
    conn.commit()
    conn.close()
    assert "BROKEN" in cli("ledger", "check", code=1).stdout


def test_home_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERNEL_HOME", str(tmp_path / "envhome"))
    result = CliRunner().invoke(main, ["principal", "create", "zed"])
    assert result.exit_code == 0
    assert (tmp_path / "envhome" / "kernel.db").exists()


def test_audit_scan_flows_and_alerts(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from kernel.api import Kernel
    from kernel.sandbox.fake import FakeSandbox
    from kernel.settings import Settings
    from tests.audit_log import Log, module

    monkeypatch.setenv("KERNEL_AUDIT_COMMON_CORPUS", "[]")
    assert "no alerts" in cli("audit", "alerts").stdout  # an empty world
    k = Kernel(Settings(home=tmp_path / "home", audit_common_corpus=[]), sandbox=FakeSandbox(), image="fake:1")
    log = Log(k, tmp_path / "log")
    ann, ben, cat = log.principal("ann"), log.principal("ben"), log.principal("cat")
    product = log.package(ann, {"engine.py": module(8)}, price=6, public=False)
    log.run(cat, product, output={"ok": 1})
    drop = log.write_data(log.run(ann, log.package(ann, {})), ann, ".x", {"blob": module(8)})
    log.read(log.run(ben, log.package(ben, {})), ben, drop, "blob")
    k.close()

    assert "not scanned yet" in cli("audit", "alerts").stderr
    report = json.loads(cli("audit", "scan", "--json").stdout)
    assert len(report["new_alerts"]) == 2 and report["sightings"] > 0
    assert json.loads(cli("audit", "scan", "--json").stdout)["new_alerts"] == []
    flows = json.loads(cli("audit", "flows", "--json").stdout)
    [flow] = [f for f in flows if (f["from_principal"], f["to_principal"]) == ("ann", "ben")]
    assert flow["paid"] == 0 and flow["value"] > 0 and sorted(flow["alerts"]) == sorted(report["new_alerts"])
    alerts = json.loads(cli("audit", "alerts", "--json").stdout)
    assert {(a["kind"], a["from_principal"], a["to_principal"]) for a in alerts} == {
        ("unpaid_flow", "ann", "ben"),
        ("dead_drop", "ann", "ben"),
    }
    assert all(a["evidence"]["events"] and a["thresholds"] and 0 < a["score"] <= 1 for a in alerts)
    unpaid = next(a for a in alerts if a["kind"] == "unpaid_flow")
    story = cli("audit", "alerts", "--explain", unpaid["id"][:8]).stdout
    assert "Content first written by ann" in story and "Thresholds:" in story
    explained = json.loads(cli("audit", "alerts", "--explain", unpaid["id"], "--json").stdout)
    assert explained["alert"]["id"] == unpaid["id"] and explained["story"][0].startswith("Alert")
    assert "unpaid_flow" in cli("audit", "alerts", "--kind", "unpaid_flow").stdout
    assert "ann" in cli("audit", "flows").stdout
    assert "no alert with id" in cli("audit", "alerts", "--explain", "abcdef0", code=1).stderr
    assert "no detector named" in cli("audit", "alerts", "--kind", "x", code=1).stderr


def test_a_bad_setting_is_one_sentence(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KERNEL_AUDIT_MAX_FINGERPRINTS", "0")
    err = cli("audit", "alerts", code=1).stderr
    assert "KERNEL_AUDIT_MAX_FINGERPRINTS: Input should be greater than or equal to 64" in err
    assert len(err.strip().splitlines()) == 1


def test_readme_limits_section_lists_every_setting() -> None:
    from kernel.settings import Settings

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    limits = readme.split("\n## Limits\n", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in Settings.model_fields if f"KERNEL_{name.upper()}" not in limits]
    assert missing == []


def test_lazy_commands_list_the_help_they_have() -> None:
    """`kernel --help` lists lazily loaded commands from stored text: it must be theirs."""
    import click

    from kernel.cli import audit

    ctx = click.Context(main)
    for group in (main, audit):
        for name, (_, short) in group.lazy.items():
            command = group.get_command(ctx, name)
            assert command is not None and command.help is not None
            assert " ".join(command.help.split()).startswith(short), name
