"""The security watch's pure logic: the lab's debsecan data built from a Debian changelog,
the watch's reading of debsecan's output and its metrics, and the report's flag on
majors (the lab story in tests/integration/test_order_monitoring.py runs debsecan itself
on a host put behind on purpose)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hostops.cli import main
from hostops.security import watch as weekly
from hostops.security.debsecan import changelog_fixes, render

ROOT = Path(__file__).resolve().parents[3]
OLD = "2.12.7+dfsg+really2.9.14-2.1+deb13u1"
U2 = "2.12.7+dfsg+really2.9.14-2.1+deb13u2"
U3 = "2.12.7+dfsg+really2.9.14-2.1+deb13u3"
# Excerpt of Debian's changelog of libxml2 (trixie, 2026), the entries kept whole but
# shortened; the lab reads the full one from the archive's package.
CHANGELOG = f"""\
libxml2 ({U3}) trixie; urgency=high

  * Non-maintainer upload.
  * Fix CVE-2026-0989: Specially crafted or overly complex schemas can cause
    excessive recursion during parsing. (Closes: #1125691)
  * Fix CVE-2026-0990: `xmlCatalogXMLResolveURI()` will recurse infinitely if
    a catalog has a URI delegate referencing itself, eventually resulting in a
    call stack overflow. (Closes: #1125695)
  * Fix unit tests for CVE-2025-49794 and -49796.

 -- Guilhem Moulin <guilhem@debian.org>  Sun, 07 Jun 2026 19:02:23 +0200

libxml2 ({U2}) trixie; urgency=high

  * Non-maintainer upload.
  * Fix CVE-2025-9714: Denial of service vulnerability via uncontrolled
    recursion in XPath evaluation.
  * Amend d/p/CVE-2025-7425.patch to better reflect the original fix.

 -- Guilhem Moulin <guilhem@debian.org>  Sat, 11 Oct 2025 14:55:59 +0200

libxml2 ({OLD}) trixie-security; urgency=high

  * CVE-2025-7425: heap-use-after-free in xmlFreeID caused by `atype`
    corruption (Closes: #1109122)

 -- Aron Xu <aron@debian.org>  Mon, 25 Aug 2025 19:38:04 +0800

libxml2 (2.12.7+dfsg+really2.9.14-2) unstable; urgency=medium

  * Security fixes:
    - CVE-2025-6021: integer overflow in xmlBuildQName()

 -- Aron Xu <aron@debian.org>  Mon, 16 Jun 2025 00:00:00 +0800
"""

# debsecan --format detail on a lab host with libxml2 OLD and the data above
DETAIL = f"""\
CVE-2026-0989 (fixed, high urgency)
  Specially crafted or overly complex schemas can cause excessive recursion during parsing.
  installed: libxml2 {OLD}
             (built from libxml2 {OLD})
  fixed in unstable: libxml2 {U3} (source package)
  fix is available for the selected suite (trixie)

CVE-2025-9714 (fixed, remotely exploitable, medium urgency)
  Denial of service vulnerability via uncontrolled recursion in XPath evaluation.
  installed: libxml2-utils {OLD}
             (built from libxml2 {OLD})
  fixed in unstable: libxml2 {U2} (source package)
  fix is available for the selected suite (trixie)

CVE-2025-9714 (fixed, remotely exploitable, medium urgency)
  Denial of service vulnerability via uncontrolled recursion in XPath evaluation.
  installed: libxml2 {OLD}
             (built from libxml2 {OLD})
  fixed in unstable: libxml2 {U2} (source package)
  fix is available for the selected suite (trixie)

CVE-2024-0001
  Something without a fix.
  installed: bash 5.2.37-2
             (built from bash 5.2.37-2)

"""


def watch() -> ModuleType:
    path = ROOT / "roles" / "security_watch" / "files" / "hostops-security-watch"
    loader = importlib.machinery.SourceFileLoader("hostops_security_watch", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_fixes_newer_than_the_installed_version_each_with_its_first_fixed_upload() -> None:
    fixes = {fix.cve: fix for fix in changelog_fixes(CHANGELOG, OLD)}
    assert sorted(fixes) == ["CVE-2025-9714", "CVE-2026-0989", "CVE-2026-0990"]
    assert fixes["CVE-2025-9714"].version == U2
    assert fixes["CVE-2026-0989"].version == U3
    assert fixes["CVE-2026-0989"].urgency == "high"
    assert fixes["CVE-2026-0989"].description.startswith("Specially crafted")
    # a CVE merely mentioned ('Fix unit tests for', 'Amend the patch of') is not a fix,
    # and what the installed version already has is not open; from an older version,
    # the sub-bullets of 'Security fixes:' count too
    older = {fix.cve for fix in changelog_fixes(CHANGELOG, "2.12.7+dfsg+really2.9.14-1")}
    assert older == {"CVE-2025-6021", "CVE-2025-7425", "CVE-2025-9714"} | {
        "CVE-2026-0989",
        "CVE-2026-0990",
    }
    assert changelog_fixes(CHANGELOG, U3) == []


def test_the_data_file_is_in_debsecans_format() -> None:
    fixes = changelog_fixes(CHANGELOG, OLD)
    text = zlib.decompress(render(fixes, {"libxml2": ["libxml2", "libxml2-utils"]})).decode()
    lines = text.split("\n")
    assert lines[0] == "VERSION 1"
    names, packages, binaries = "\n".join(lines[1:]).split("\n\n")[:3]
    assert [line.split(",")[0] for line in names.splitlines()] == [f.cve for f in fixes]
    assert all(line.count(",") >= 2 for line in names.splitlines())
    rows = [line.split(",") for line in packages.splitlines()]
    assert rows[0] == ["libxml2", "0", "SH?F", U3, ""]
    assert {row[3] for row in rows} == {U2, U3}
    assert binaries == "libxml2,libxml2 libxml2-utils"


def test_the_watch_reads_debsecans_detail_output() -> None:
    found = watch().parse_detail(DETAIL)
    assert [(v["cve"], v["package"], v["urgency"], v["fixed"]) for v in found] == [
        ("CVE-2026-0989", "libxml2", "high", True),
        ("CVE-2025-9714", "libxml2-utils", "medium", True),
        ("CVE-2025-9714", "libxml2", "medium", True),
        ("CVE-2024-0001", "bash", "unknown", False),
    ]
    assert found[1]["remote"] is True
    assert found[1]["source"] == "libxml2"
    assert found[0]["installed"] == OLD
    with pytest.raises(ValueError, match="unexpected debsecan line"):
        watch().parse_detail("  indented first line\n")


def test_the_metrics_count_vulnerability_and_source_pairs() -> None:
    module = watch()
    report = {"scanned_at": 1796448343, "vulnerabilities": module.parse_detail(DETAIL)}
    text = module.metrics(report, 1796448400.5, False)
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if not line.startswith("#")
    }
    assert values['hostops_vulnerabilities{urgency="high",fixed="true"}'] == 1
    # one flaw of one source package, whatever the number of its binaries installed
    assert values['hostops_vulnerabilities{urgency="medium",fixed="true"}'] == 1
    assert values['hostops_vulnerabilities{urgency="unknown",fixed="false"}'] == 1
    assert values['hostops_vulnerabilities{urgency="low",fixed="true"}'] == 0
    assert len([k for k in values if k.startswith("hostops_vulnerabilities")]) == 8
    assert values["hostops_security_watch_last_run_failed"] == 0
    assert values["hostops_security_watch_last_success_timestamp_seconds"] == 1796448343
    failed = module.metrics(None, 1796448400, True)
    assert "hostops_security_watch_last_run_failed 1" in failed
    assert "hostops_vulnerabilities{" not in failed  # nothing known: no counts made up


def vulnerability(**fields: Any) -> dict[str, Any]:
    base = {
        "cve": "CVE-2026-0001",
        "urgency": "high",
        "fixed": True,
        "package": "postgresql-15",
        "source": "postgresql-15",
        "installed": "15.8-0+deb12u1",
        "candidate": "15.14-0+deb12u1",
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    ("fields", "update", "flagged"),
    [
        ({}, "major", True),  # 15.8 -> 15.14: the contract's 2nd digit
        ({"urgency": "medium"}, "major", False),
        ({"candidate": "15.8-0+deb12u2"}, "minor", False),
        ({"fixed": False, "candidate": None}, None, False),
        ({"candidate": "15.8-0+deb12u1"}, None, False),  # apt has nothing newer yet
    ],
)
def test_a_major_fix_of_a_high_urgency_flaw_needs_the_clients_approval(
    fields: dict[str, Any], update: str | None, flagged: bool
) -> None:
    entry = weekly.qualify(vulnerability(**fields))
    assert entry["update"] == update
    assert entry["needs_approval"] is flagged


def test_the_report_flags_it_per_server_and_customer() -> None:
    collected = {
        "db1": {
            "fqdn": "db1.vidal.example",
            "watched": True,
            "order": {"customer": "Vidal Transports", "order": "BDC-2027-0193"},
            "report": {
                "scanned_at": 1,
                "vulnerabilities": [vulnerability()],
                "last_run": {"at": 1, "failed": False, "error": ""},
            },
        },
        "db2": {
            "fqdn": "db2.vidal.example",
            "watched": True,
            "order": {"customer": "Vidal Transports", "order": "BDC-2027-0193"},
            "report": {
                "scanned_at": None,
                "vulnerabilities": [],
                "last_run": {"at": 1, "failed": True, "error": "error: while downloading"},
            },
        },
        "web1": {"fqdn": "web1.vidal.example", "watched": False, "order": {}},
    }
    report = weekly.build_report(["db1", "db2", "web1", "gone"], collected, customer=None)
    rows = {row["host"]: row for row in report["hosts"]}
    assert rows["db1"]["needs_approval"] == [("postgresql-15", "15.14-0+deb12u1")]
    assert rows["db1"]["counts"]["high"] == {"open": 1, "fixed": 1}
    assert rows["db2"]["status"] == "watch failed"
    assert rows["web1"]["status"] == "not watched"
    assert rows["gone"]["status"] == "unreachable"
    text = weekly.render_text(report)
    assert "customer Vidal Transports" in text
    assert "db2.vidal.example (order BDC-2027-0193): watch failed: error: while downloading" in text
    assert "db1.vidal.example (order BDC-2027-0193): 1 open vulnerability: high 1 (1 fixed)" in text
    assert (
        "major update postgresql-15 15.14-0+deb12u1: needs the client's approval "
        "(hostops patch approve)" in text
    )
    json.dumps(report)  # the --json document


def test_bad_arguments_are_refused_before_any_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path))
    assert main(["security", "report", "--inventory", "x.yml", "--customer", "Nobody"]) == 2
    assert "--customer: 'Nobody' is not a customer of a delivered order" in capsys.readouterr().err
    missing = tmp_path / "missing.yml"
    assert main(["security", "report", "--inventory", str(missing), "--host", "a"]) == 2
    assert f"--inventory: {missing} does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["security", "report", "--lab", "--host", "a", "--customer", "B"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "security-reports").exists()


def _delivered(state: Path, order: str, customer: str, email: str, server: str) -> None:
    folder = state / "orders" / order
    folder.mkdir(parents=True)
    (folder / "order.json").write_text(
        json.dumps(
            {
                "hostops_order": order,
                "hostops_customer": {"name": customer, "contact": {"name": "x", "email": email}},
                "hostops_managed_level": "supervision",
                "hostops_servers": [{"hostname": server}],
            }
        )
    )
    (folder / "delivery-note.json").write_text(
        json.dumps({"order": order, "delivered_at": "2027-01-04T10:00:00+01:00"})
    )


def _row(host: str, order: str, customer: str, cve: str) -> dict[str, Any]:
    vulnerability = {
        "cve": cve,
        "package": "libxml2",
        "installed": "2.9.14+dfsg-1.3~deb12u1",
        "candidate": "2.9.14+dfsg-1.3~deb12u2",
        "urgency": "high",
        "fixed": True,
        "update": "minor",
        "needs_approval": False,
    }
    return {
        "host": host,
        "server": host,
        "customer": customer,
        "order": order,
        "managed_level": "supervision",
        "status": "ok",
        "vulnerabilities": [vulnerability],
        "counts": weekly.counts([vulnerability]),
        "needs_approval": [],
    }


def test_the_weekly_mail_gives_each_customer_its_own_servers_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--mail: one message per delivered order, to its contact, listing its servers'
    flaws and no other customer's; a server of no delivered order is not mailed."""
    state = tmp_path / "state"
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(state))
    monkeypatch.delenv("HOSTOPS_SMTP_HOST", raising=False)
    _delivered(state, "BDC-2027-0001", "Vidal", "luc@vidal.example", "app1.vidal.example")
    _delivered(state, "BDC-2027-0002", "Martin", "eve@martin.example", "web01.martin.example")
    report = {
        "generated_at": "2027-01-04T07:00:00+00:00",
        "customer": None,
        "hosts": [
            _row("app1.vidal.example", "BDC-2027-0001", "Vidal", "CVE-2027-1111"),
            _row("web01.martin.example", "BDC-2027-0002", "Martin", "CVE-2027-2222"),
            _row("lost.example", "", "", "CVE-2027-3333"),
        ],
    }
    run_dir = tmp_path / "run"
    lines = weekly.mail_reports(report, run_dir)
    assert lines[0] == "security report of lost.example: not mailed (no delivered order's contact)"
    vidal = (run_dir / "security-report-BDC-2027-0001.eml").read_text()
    martin = (run_dir / "security-report-BDC-2027-0002.eml").read_text()
    assert "To: luc@vidal.example" in vidal and "To: eve@martin.example" in martin
    assert "CVE-2027-1111" in vidal and "CVE-2027-2222" not in vidal
    assert "CVE-2027-2222" in martin and "CVE-2027-1111" not in martin
    assert "CVE-2027-3333" not in vidal + martin
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "security-report-BDC-2027-0001.eml",
        "security-report-BDC-2027-0002.eml",
    ]
