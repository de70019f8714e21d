"""debsecan's data format, and the lab's offline data built from Debian's own changelogs.

debsecan (Debian's package) downloads ``<source>/<suite>`` (by default from
``https://security-tracker.debian.org/tracker/debsecan/release/1/``): a zlib-compressed
text whose first line is ``VERSION 1``, then three sections each ended by an empty line:

1. the vulnerabilities: ``NAME,FLAGS,DESCRIPTION`` (FLAGS unused by debsecan);
2. the affected packages: ``PACKAGE,INDEX,FLAGS,FIXED_VERSION,OTHER_FIXED_VERSIONS``,
   INDEX into section 1, FLAGS four characters: ``S`` (source package) or ``B``
   (binary), the urgency ``L``/``M``/``H``/space, remote ``R``/space/``?``, and ``F``
   when the suite has a fix (else space); a package older than FIXED_VERSION (and none
   of OTHER_FIXED_VERSIONS, space-separated) is vulnerable;
3. ``SOURCE,BINARY BINARY...``: the binary packages a source builds.

debsecan reads that URL with Python's urllib, so a ``file://`` URL reads a copy on the
server: that is how lab hosts, which have no route out, get their data. The lab's copy
is made here from facts the lab can know: the Debian changelog of a package's newer
version in the archive names the CVEs each upload fixed (``Fix CVE-2025-9714: ...``);
every CVE an entry newer than the version installed says it fixes (a bullet that starts
with it, or with 'Fix CVE-...') is one that version has, fixed in the first such upload.
The urgency is that upload's own (``urgency=high`` in its changelog header): the
tracker's assessment is not known offline. Nothing is made up: each line comes from
Debian's changelog of the package.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from hostops.module_utils.versions import compare_versions

_HEADER = re.compile(
    r"^(?P<source>[a-z0-9][a-z0-9.+-]+) \((?P<version>[^)\s]+)\) [^;]+;.*\burgency=(?P<urgency>\w+)"
)
# A bullet that says it fixes a CVE: 'Fix CVE-2026-0989: ...', 'CVE-2025-7425: ...',
# 'Fixes CVE-...', 'Fix for CVE-...'; a CVE merely mentioned further on is not taken.
_FIXED = re.compile(
    r"^(?:(?:Fix(?:es)?|Fixed|Fix for|Security fix for) )?(?P<cve>CVE-[0-9]{4}-[0-9]{4,})\b"
)
_URGENCY_FLAG = {"low": "L", "medium": "M", "high": "H", "emergency": "H", "critical": "H"}


@dataclass(frozen=True)
class Fix:
    """A CVE fixed by an upload of a source package."""

    cve: str
    source: str
    version: str  # the first version with the fix
    urgency: str  # the upload's: low, medium, high, emergency, critical
    description: str


def changelog_fixes(changelog: str, since: str) -> list[Fix]:
    """The CVEs fixed in the changelog's entries newer than version SINCE, each with the
    oldest such upload that names it, in the changelog's order."""
    entries: list[tuple[str, str, str, list[str]]] = []  # source, version, urgency, lines
    for line in changelog.splitlines():
        header = _HEADER.match(line)
        if header:
            entries.append((header["source"], header["version"], header["urgency"].lower(), []))
        elif entries and line.startswith("  "):
            entries[-1][3].append(line.strip())
    fixes: dict[str, Fix] = {}
    for source, version, urgency, lines in entries:
        if compare_versions(version, since) <= 0:
            continue
        for item in _items(lines):
            fixed = _FIXED.match(item)
            if fixed is None:
                continue  # 'Fix unit tests for CVE-...', 'Amend the patch of CVE-...'
            cve = fixed["cve"]
            known = fixes.get(cve)
            if known is None or compare_versions(version, known.version) < 0:
                fixes[cve] = Fix(cve, source, version, urgency, _describe(item, cve))
    return list(fixes.values())


def _items(lines: Iterable[str]) -> list[str]:
    """A changelog entry's bullets ('* ...', '- ...', '+ ...'), each as one line."""
    items: list[str] = []
    for line in lines:
        if line.startswith(("* ", "- ", "+ ")) or not items:
            items.append(line.lstrip("*-+ "))
        elif not line.startswith("--"):
            items[-1] += " " + line
    return items


def _describe(item: str, cve: str) -> str:
    text = re.sub(rf"^(Fix(es)? )?{cve}:?\s*", "", item).replace(",", ";")
    return (text[:117] + "...") if len(text) > 120 else text


def render(fixes: Iterable[Fix], binaries: dict[str, list[str]] | None = None) -> bytes:
    """debsecan's data file for these fixes (zlib-compressed, as debsecan downloads it)."""
    fixes = list(fixes)
    lines = ["VERSION 1"]
    lines += [f"{fix.cve},,{fix.description}" for fix in fixes]
    lines.append("")
    for index, fix in enumerate(fixes):
        flags = "S" + _URGENCY_FLAG.get(fix.urgency, " ") + "?F"
        lines.append(f"{fix.source},{index},{flags},{fix.version},")
    lines.append("")
    lines += [f"{source},{' '.join(names)}" for source, names in sorted((binaries or {}).items())]
    lines.append("")
    return zlib.compress(("\n".join(lines) + "\n").encode())
