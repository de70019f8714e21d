# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian package versions: parsing, dpkg ordering and the contract's minor/major rule.

A Debian version reads ``[epoch:]upstream[-revision]``. :func:`compare_versions`
orders two of them exactly as ``dpkg --compare-versions`` does. :func:`classify_update`
applies the contract (§4.1.3): an update is *minor* when the software's version number
changes "at the 3rd digit only", *major* when the change is at the 1st or 2nd digit.

How the contract's "digits" map onto a Debian version:

* a different epoch is a major change (the packager declared a new numbering);
* the upstream version is cut at its first ``~`` or ``+``: what follows is Debian's
  way of marking pre-releases (``1.2~rc1``), repacks (``+dfsg``), stable and security
  updates (``+deb12u1``, ``~deb12u1``), binNMUs (``+b1``) and snapshots (``+git2024...``),
  not the software's version number;
* what remains is split on dots; its 1st and 2nd components are the contract's 1st
  and 2nd digits, compared with dpkg's ordering (so ``1.02`` and ``1.2`` are the same),
  a missing component counting as empty (``1`` to ``1.1`` is major);
* the Debian revision never makes an update major.

Only the Python standard library is used: this file also runs on managed hosts.
"""

from __future__ import annotations

import re
from typing import NamedTuple

MAJOR = "major"
MINOR = "minor"
UNCHANGED = "unchanged"

_EPOCH_MAX = 2**31 - 1  # dpkg keeps the epoch in a C int
_UPSTREAM_CHARS = re.compile(r"[A-Za-z0-9.+~:-]*")
_REVISION_CHARS = re.compile(r"[A-Za-z0-9.+~]*")
_SUFFIX_START = re.compile(r"[~+]")


class DebianVersion(NamedTuple):
    """A parsed ``[epoch:]upstream[-revision]``; an absent epoch is 0, an absent revision ''."""

    epoch: int
    upstream: str
    revision: str

    def __str__(self) -> str:
        text = f"{self.epoch}:{self.upstream}" if self.epoch else self.upstream
        return f"{text}-{self.revision}" if self.revision else text


def _invalid(text: str, problem: str) -> ValueError:
    return ValueError(f"{text!r} is not a Debian version: {problem}")


def parse_version(text: str) -> DebianVersion:
    """Split a Debian version into epoch, upstream version and revision.

    Follows dpkg's ``parseversion()``: leading and trailing blanks are ignored; the
    epoch is what precedes the first colon, the revision what follows the last hyphen.
    What dpkg only warns about (an upstream version not starting with a digit, a
    character Debian policy does not allow) is an error here.

    Raises:
        ValueError: ``'<text>' is not a Debian version: <problem>``.
    """
    version = text.strip()
    if not version:
        raise _invalid(text, "version string is empty")
    if any(char.isspace() for char in version):
        raise _invalid(text, "version string has embedded spaces")

    epoch = 0
    epoch_text, colon, rest = version.partition(":")
    if colon:
        if not epoch_text:
            raise _invalid(text, "epoch in version is empty")
        if not (epoch_text.isascii() and epoch_text.isdigit()):
            raise _invalid(text, "epoch in version is not a number")
        epoch = int(epoch_text)
        if epoch > _EPOCH_MAX:
            raise _invalid(text, "epoch in version is too big")
        if not rest:
            raise _invalid(text, "nothing after colon in version number")
        version = rest

    upstream, hyphen, revision = version.rpartition("-")
    if not hyphen:
        upstream, revision = version, ""
    elif not revision:
        raise _invalid(text, "revision number is empty")

    if not upstream:
        raise _invalid(text, "version number is empty")
    if not ("0" <= upstream[0] <= "9"):
        raise _invalid(text, "version number does not start with a digit")
    if not _UPSTREAM_CHARS.fullmatch(upstream):
        raise _invalid(text, "invalid character in version number")
    if not _REVISION_CHARS.fullmatch(revision):
        raise _invalid(text, "invalid character in revision number")
    return DebianVersion(epoch, upstream, revision)


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _order(char: str) -> int:
    """dpkg's weight of one character of a non-digit run: ``~``, end, letters, the rest."""
    if char == "~":
        return -1
    if not char or _is_digit(char):
        return 0
    if "A" <= char <= "Z" or "a" <= char <= "z":
        return ord(char)
    return ord(char) + 256


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _compare_numbers(left: str, right: str) -> int:
    """Compare two runs of digits as numbers, however long they are."""
    left, right = left.lstrip("0"), right.lstrip("0")
    if len(left) != len(right):
        return _sign(len(left) - len(right))
    return (left > right) - (left < right)


def _compare_fragments(left: str, right: str) -> int:
    """Compare two upstream versions or two revisions as dpkg's ``verrevcmp()`` does.

    Both are read as alternating runs of non-digits, compared character by character
    with :func:`_order`, and runs of digits, compared as numbers.
    """
    i = j = 0
    while i < len(left) or j < len(right):
        while (i < len(left) and not _is_digit(left[i])) or (
            j < len(right) and not _is_digit(right[j])
        ):
            left_weight = _order(left[i] if i < len(left) else "")
            right_weight = _order(right[j] if j < len(right) else "")
            if left_weight != right_weight:
                return _sign(left_weight - right_weight)
            i += 1
            j += 1
        left_start, right_start = i, j
        while i < len(left) and _is_digit(left[i]):
            i += 1
        while j < len(right) and _is_digit(right[j]):
            j += 1
        difference = _compare_numbers(left[left_start:i], right[right_start:j])
        if difference:
            return difference
    return 0


def _compare_parsed(a: DebianVersion, b: DebianVersion) -> int:
    if a.epoch != b.epoch:
        return _sign(a.epoch - b.epoch)
    return _compare_fragments(a.upstream, b.upstream) or _compare_fragments(a.revision, b.revision)


def compare_versions(left: str, right: str) -> int:
    """Order two Debian versions like ``dpkg --compare-versions``: -1, 0 or 1.

    Epochs compare as numbers, then upstream versions, then revisions, each with
    dpkg's rules: ``~`` sorts before anything, even the end of the string, letters
    before other characters, digit runs as numbers (``1.02`` equals ``1.2``), and an
    absent revision equals ``0``. Raises ValueError on an invalid version.
    """
    return _compare_parsed(parse_version(left), parse_version(right))


def _version_number(upstream: str) -> list[str]:
    """The contract's digits: the upstream version cut at its first ``~``/``+``, split on dots.

    ``1.26.3`` gives ``['1', '26', '3']``; ``12.4+deb12u7`` gives ``['12', '4']``.
    """
    return _SUFFIX_START.split(upstream, maxsplit=1)[0].split(".")


def classify_update(old: str, new: str) -> str:
    """Classify the move from version ``old`` to ``new``: "major", "minor" or "unchanged".

    "unchanged" when dpkg finds the versions equal (``1.0`` and ``1.0-0`` too);
    "major" when the epoch or the 1st or 2nd component of the version number
    (see :func:`_version_number`) differs; "minor" otherwise. The direction is not
    looked at: a downgrade is classified by the same rule, so ``1.3`` to ``1.2`` is
    major and ``1.2.5`` to ``1.2.4`` minor; callers that must refuse downgrades
    check ``compare_versions(old, new) > 0`` themselves.

    Raises ValueError on an invalid version.
    """
    a, b = parse_version(old), parse_version(new)
    if _compare_parsed(a, b) == 0:
        return UNCHANGED
    if a.epoch != b.epoch:
        return MAJOR
    old_digits, new_digits = _version_number(a.upstream), _version_number(b.upstream)
    for position in range(2):
        old_digit = old_digits[position] if position < len(old_digits) else ""
        new_digit = new_digits[position] if position < len(new_digits) else ""
        if _compare_fragments(old_digit, new_digit) != 0:
            return MAJOR
    return MINOR
