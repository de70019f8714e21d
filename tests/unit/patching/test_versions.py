"""Debian version parsing, dpkg ordering and the contract's minor/major rule (§4.1.3)."""

from __future__ import annotations

import itertools
import shutil
import subprocess

import pytest

from hostops.module_utils.versions import (
    DebianVersion,
    classify_update,
    compare_versions,
    parse_version,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.0", (0, "1.0", "")),
        ("7", (0, "7", "")),
        ("1.0-1", (0, "1.0", "1")),
        ("1:10.11.18-0+deb12u1", (1, "10.11.18", "0+deb12u1")),
        ("0:1.0", (0, "1.0", "")),
        ("2.4.68-1~deb12u1", (0, "2.4.68", "1~deb12u1")),
        ("2025b-0+deb12u1", (0, "2025b", "0+deb12u1")),
        ("12.4+deb12u7", (0, "12.4+deb12u7", "")),
        ("1.2-3-4", (0, "1.2-3", "4")),  # the revision follows the last hyphen
        ("3:1.0:2-1", (3, "1.0:2", "1")),  # the epoch precedes the first colon
        ("  9.2p1-2+deb12u5\n", (0, "9.2p1", "2+deb12u5")),
    ],
)
def test_parse_version(text: str, expected: tuple[int, str, str]) -> None:
    assert parse_version(text) == DebianVersion(*expected)


@pytest.mark.parametrize("text", ["1.0", "1:2.3-4", "2.4.68-1~deb12u1", "1.2-3-4", "3:1.0:2-1"])
def test_str_gives_the_version_back(text: str) -> None:
    assert str(parse_version(text)) == text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "version string is empty"),
        ("   ", "version string is empty"),
        ("1.0 beta", "version string has embedded spaces"),
        (":1.0", "epoch in version is empty"),
        ("a:1.0", "epoch in version is not a number"),
        ("-1:1.0", "epoch in version is not a number"),
        ("99999999999:1.0", "epoch in version is too big"),
        ("1:", "nothing after colon in version number"),
        ("1.0-", "revision number is empty"),
        ("-1", "version number is empty"),
        ("1:-1", "version number is empty"),
        ("xx", "version number does not start with a digit"),
        ("v1.2.3", "version number does not start with a digit"),
        ("1.0_1", "invalid character in version number"),
        ("1.0-1_2", "invalid character in revision number"),
        ("1:1.0-1:2", "invalid character in revision number"),
    ],
)
def test_parse_version_rejects(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_version(text)
    assert str(caught.value) == f"{text!r} is not a Debian version: {problem}"


# (smaller, larger): orderings dpkg documents or that Debian relies on.
ORDERED = [
    ("1.0~rc1", "1.0"),  # ~ sorts before the end of the string
    ("1.0~~", "1.0~"),
    ("1.0~~", "1.0~~a"),
    ("1.0~", "1.0"),
    ("1.0", "1.0a"),  # the end sorts before a letter
    ("1.0a", "1.0+"),  # letters sort before non-letters
    ("1.0+", "1.0."),  # non-letters by ASCII value
    ("1.0Z", "1.0a"),
    ("1.0", "1.0+b1"),  # binNMU of a native package
    ("1.0-1", "1.0-1+b1"),  # binNMU
    ("1.0-1~bpo12+1", "1.0-1"),  # backport
    ("2.4.68-1~deb12u1", "2.4.68-1"),
    ("1.26.3-3+deb13u10", "1.26.3-3+deb13u11"),  # numbers, not strings: 10 < 11
    ("1.2", "1.10"),
    ("1.9", "1.10"),
    ("1.0-9", "1.0-10"),
    ("9.9", "1:0.1"),  # the epoch wins
    ("1:9.9", "2:0"),
    ("1.0", "1.0-1"),  # an absent revision is 0
    ("2.4.68-1~deb12u1", "2.4.71-1~deb12u1"),
    ("3.0.17-1~deb12u2", "3.0.20-1~deb12u1"),  # the upstream version decides first
    ("18446744073709551616", "18446744073709551617"),  # longer than 64 bits
    ("2025b-0+deb12u1", "2026b-0+deb12u1"),
    ("9.2p1-2+deb12u5", "9.2p1-2+deb12u6"),
]

EQUAL = [
    ("1.0", "1.0"),
    ("1.0", "0:1.0"),
    ("1.0", "1.0-0"),
    ("1.02", "1.2"),  # digit runs compare as numbers
    ("1.0-01", "1.0-1"),
]


@pytest.mark.parametrize(("smaller", "larger"), ORDERED)
def test_compare_versions_orders(smaller: str, larger: str) -> None:
    assert compare_versions(smaller, larger) == -1
    assert compare_versions(larger, smaller) == 1


@pytest.mark.parametrize(("left", "right"), EQUAL)
def test_compare_versions_equal(left: str, right: str) -> None:
    assert compare_versions(left, right) == 0
    assert compare_versions(right, left) == 0


def test_compare_versions_rejects_invalid() -> None:
    with pytest.raises(ValueError, match="is not a Debian version"):
        compare_versions("1.0", "xx")


DPKG_SAMPLE = sorted(
    {version for pair in ORDERED + EQUAL for version in pair}
    | {"0", "0.1", "1.0~rc1-1", "1.0.", "1.0+dfsg", "1.00", "1.0-1.1", "1.0-1a", "3:1.0:2-1"}
)


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed here")
def test_compare_versions_agrees_with_dpkg() -> None:
    """Every pair of the sample, both relations checked against dpkg itself."""
    dpkg = shutil.which("dpkg")
    assert dpkg is not None
    disagreements = []
    for left, right in itertools.combinations(DPKG_SAMPLE, 2):
        ours = compare_versions(left, right)
        for relation, holds in (("lt", ours < 0), ("eq", ours == 0)):
            result = subprocess.run(
                [dpkg, "--compare-versions", left, relation, right], check=False
            )
            if (result.returncode == 0) != holds:
                disagreements.append(f"{left} {relation} {right}: ours {ours}")
    assert disagreements == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # The lab's pairs (lab-notes.md), as the contract reads them.
        ("1.26.3-3+deb13u10", "1.26.3-3+deb13u11", "minor"),  # +debNuM security update
        ("1.22.1-9+deb12u9", "1.22.1-9+deb12u11", "minor"),
        ("2.4.68-1~deb12u1", "2.4.71-1~deb12u1", "minor"),  # 3rd component
        ("8.4.27-1", "8.4.28-1", "minor"),
        ("8.2.32-1~deb12u1", "8.2.36-1~deb12u1", "minor"),
        ("1:10.11.18-0+deb12u1", "1:10.11.19-0+deb12u1", "minor"),  # same epoch
        ("3.0.17-1~deb12u2", "3.0.20-1~deb12u1", "minor"),
        ("6.1.176-1", "6.1.192-1", "minor"),
        ("15.18-0+deb12u1", "15.20-0+deb12u1", "major"),  # two-part: the 2nd digit
        ("252.38-1~deb12u1", "252.39-1~deb12u1", "major"),
        ("2025b-0+deb12u1", "2026b-0+deb12u1", "major"),  # one component: the 1st digit
        # Epochs.
        ("1:10.11.18-0+deb12u1", "2:10.11.18-0+deb12u1", "major"),
        ("10.11.18-1", "1:10.11.18-1", "major"),
        ("0:1.2.3-1", "1.2.3-1", "unchanged"),
        # Revisions only, binNMUs, backports.
        ("9.2p1-2+deb12u5", "9.2p1-2+deb12u6", "minor"),
        ("1.2.3-1", "1.2.3-2", "minor"),
        ("1.2-1", "1.2-1+b1", "minor"),
        ("1.2-1", "1.2-1~bpo12+1", "minor"),
        ("1.2", "1.2-1", "minor"),
        # Suffixes of the upstream version are not the version number.
        ("12.4+deb12u7", "12.4+deb12u8", "minor"),  # native package's stable update
        ("1.2+b1", "1.2+b2", "minor"),  # native package's binNMU
        ("1.2~rc1-1", "1.2-1", "minor"),  # pre-release to release
        ("1.2+dfsg-1", "1.2+dfsg1-1", "minor"),  # repack
        ("1.2~rc1-1", "1.3-1", "major"),
        ("2.36.1+dfsg-1", "2.37.0+dfsg-1", "major"),
        # Components: 1st and 2nd major, 3rd and later minor.
        ("1.2.3.4", "1.2.3.5", "minor"),
        ("1.2.3", "1.2.4", "minor"),
        ("1.2", "1.2.1", "minor"),  # a new 3rd component
        ("1.2.1", "1.2", "minor"),
        ("1", "1.1", "major"),  # a new 2nd component
        ("1.9", "1.10", "major"),
        ("1.2", "2.0", "major"),
        ("7", "8", "major"),
        ("7-1", "7-2", "minor"),
        ("1.02.3", "1.2.4", "minor"),  # 02 and 2 are the same digit for dpkg
        # Identical versions.
        ("9.2p1", "9.2p1", "unchanged"),
        ("1.26.3-3+deb13u11", "1.26.3-3+deb13u11", "unchanged"),
        ("1.0", "1.0-0", "unchanged"),
        # Downgrades follow the same rule.
        ("1.26.3-3+deb13u11", "1.26.3-3+deb13u10", "minor"),
        ("1.2.5", "1.2.4", "minor"),
        ("1.3", "1.2", "major"),
        ("1:1.0", "5.0", "major"),
    ],
)
def test_classify_update(old: str, new: str, expected: str) -> None:
    assert classify_update(old, new) == expected


@pytest.mark.parametrize(("old", "new"), [("xx", "1.0"), ("1.0", ""), ("1.0-", "1.0-1")])
def test_classify_update_rejects_invalid(old: str, new: str) -> None:
    with pytest.raises(ValueError, match="is not a Debian version"):
        classify_update(old, new)
