"""Scrub personal data from text before it leaves ShadowTutor (training data export).

:func:`scrub` replaces e-mail addresses, phone numbers, payment card numbers, IBANs and IP
addresses with typed placeholders (``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[IBAN]``, ``[IP]``)
and returns the new text with a count per kind.

Numbers are only replaced when they really are what they look like, so training text keeps
its dates, order numbers, prices and version strings:

- cards: 13 to 19 digits (spaces or dashes allowed) that pass the Luhn check;
- IBANs: country code, check digits and account that pass the ISO 7064 mod-97 check;
- IP addresses: every octet 0-255 (IPv4); IPv6 as parsed by :mod:`ipaddress`;
- phones: an international number (``+`` or ``00``, 8 to 15 digits) or a local one written in
  the usual groups (``(555) 123-4567``, ``555-123-4567``, ``020 7946 0958``, ``06 12345678``),
  but not a date and not a number right after "order", "invoice", "ticket", "#" and the like.

The passes run in a fixed order (e-mail, IBAN, card, IPv6, IPv4, phone); placeholders hold no
digits, so a later pass never re-reads an earlier replacement.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

KINDS = ("email", "phone", "card", "iban", "ip")
PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in KINDS}


@dataclass(frozen=True)
class ScrubResult:
    text: str
    counts: dict[str, int] = field(default_factory=dict)  # only kinds that were found

    @property
    def changed(self) -> bool:
        return bool(self.counts)


# --- checks ----------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of digits (payment cards)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """ISO 13616 IBAN: 15-34 characters, country letters, check digits, mod-97 == 1."""
    s = iban.replace(" ", "").upper()
    if not (15 <= len(s) <= 34) or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    if not s.isalnum() or not s.isascii():
        return False
    moved = s[4:] + s[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


# --- patterns --------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])[\w.%+-]+@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}(?![\w-])")

# Compact IBAN, or printed in groups of four separated by single spaces.
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}"
    r"(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)"
    r"(?![A-Za-z0-9])"
)

# A run of 13+ digits, groups joined by single spaces or dashes; windows of it are Luhn-checked.
_CARD_RUN = re.compile(r"(?<![\w+])\d(?:[ -]?\d){12,}(?!\d)")
_CARD_SEP = re.compile(r"([ -])")

_IBAN_HEAD = re.compile(r"[A-Z]{2}\d{2} ?$")

_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
    r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)"
)

_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?"
    r"(?![\w:])"
)

_PHONE = re.compile(
    r"(?<![\w+#/.-])(?:"
    # international: +CC or 00CC, then groups
    r"(?:\+|00)[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,6}"
    r"|"
    # local with area code in parentheses: (555) 123-4567, (020) 7946 0958
    r"\(\d{2,5}\)[ .-]?\d{2,4}(?:[ .-]?\d{2,4}){1,2}"
    r"|"
    # local in groups: 555-123-4567, 020 7946 0958, 06 12345678, 070-123 45 67
    r"\d{2,4}(?:[ .-]\d{2,8}){1,4}"
    r"|"
    # local written solid with a trunk zero: 0612345678, 02079460958
    r"0\d{8,10}"
    r")(?![\w-]|[.,]\d)"
)

_DATE = re.compile(
    r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})(?:[ T]\d{1,2}(?::\d\d)*)?$"
)
_TIME_RANGE = re.compile(r"^\d{1,2}[.:]\d{2}\s*-\s*\d{1,2}[.:]\d{2}$")
_NOT_PHONE_BEFORE = re.compile(
    r"(?:order|invoice|ticket|ref|reference|tracking|case|id|no|nr|number|n\.|"
    r"ordine|fattura|ordernummer|faktura|pesanan|nomor|bestellung|"
    r"ISBN|SKU|EAN|art|#)[\s.:#-]*(?:n[or]\.?\s*)?$",
    re.IGNORECASE,
)


# --- passes ----------------------------------------------------------------------------
# Each pass gets the match and the running counts and returns the replacement text (the
# match itself when it is kept).


def _email(m: re.Match[str], counts: Counter[str]) -> str:
    counts["email"] += 1
    return PLACEHOLDERS["email"]


def _iban(m: re.Match[str], counts: Counter[str]) -> str:
    s = m.group(0)
    if iban_ok(s):
        counts["iban"] += 1
        return PLACEHOLDERS["iban"]
    # a printed IBAN followed by an unrelated short group ("... 0130 00 12"): drop that group
    head, _, tail = s.rpartition(" ")
    if head and len(tail) < 4 and iban_ok(head):
        counts["iban"] += 1
        return PLACEHOLDERS["iban"] + s[len(head) :]
    return s


def _card_layout(groups: list[str]) -> bool:
    """How cards are printed: solid, in fours (the last group shorter), or 4-6-5 / 4-6-4."""
    if len(groups) == 1:
        return True
    sizes = [len(g) for g in groups]
    if sizes in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(n == 4 for n in sizes[:-1]) and 1 <= sizes[-1] <= 4


def _card_run(m: re.Match[str], counts: Counter[str]) -> str:
    """Replace every Luhn-valid window of 13-19 digits (whole groups) inside a digit run,
    so a card next to another number ("ref 12 4111 1111 1111 1111") is still found."""
    run = m.group(0)
    if _IBAN_HEAD.search(m.string, max(0, m.start() - 5), m.start()):
        return run  # the account part of an IBAN that failed its own check
    parts = _CARD_SEP.split(run)
    groups, seps = parts[0::2], parts[1::2]
    if sum(len(g) for g in groups) < 13:
        return run
    out: list[str] = []
    i, n = 0, len(groups)
    while i < n:
        found = None
        for j in range(n, i, -1):  # longest window first
            digits = "".join(groups[i:j])
            if 13 <= len(digits) <= 19 and _card_layout(groups[i:j]) and luhn_ok(digits):
                found = j
                break
        if found is None:
            out.append(groups[i])
            if i < n - 1:
                out.append(seps[i])
            i += 1
            continue
        counts["card"] += 1
        out.append(PLACEHOLDERS["card"])
        if found < n:
            out.append(seps[found - 1])
        i = found
    return "".join(out)


def _ipv4(m: re.Match[str], counts: Counter[str]) -> str:
    counts["ip"] += 1
    return PLACEHOLDERS["ip"]


def _ipv6(m: re.Match[str], counts: Counter[str]) -> str:
    s = m.group(0)
    groups = [g for g in s.split(":") if g]
    if len(groups) < 2 or max(len(g) for g in groups) < 3:
        return s  # "::1", "a::b" and the like: valid, but no one's address
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return s  # clock times such as 10:30:45
    counts["ip"] += 1
    return PLACEHOLDERS["ip"]


def _is_phone(m: re.Match[str]) -> bool:
    s = m.group(0)
    digits = sum(ch.isdigit() for ch in s)
    if s.startswith(("+", "00")):
        national = digits - (0 if s.startswith("+") else 2)
        if not 8 <= national <= 15:
            return False
    else:
        if not 9 <= digits <= 12 or _DATE.match(s) or _TIME_RANGE.match(s):
            return False
        # "1.250.000" is an amount: local numbers use spaces or dashes, dots only in the
        # North American 3-3-4 layout
        if "." in s and not re.fullmatch(r"\(?\d{3}\)?[.]\d{3}[.]\d{4}", s):
            return False
    before = m.string[max(0, m.start() - 24) : m.start()]
    return not _NOT_PHONE_BEFORE.search(before)


def _phone(m: re.Match[str], counts: Counter[str]) -> str:
    if not _is_phone(m):
        return m.group(0)
    counts["phone"] += 1
    return PLACEHOLDERS["phone"]


# Cheap hints, checked before the full patterns: most text has none of them, and a 100,000-pair
# export must not run six full scans over every answer. Each full pattern can only match
# where its hint does: a phone, card or IBAN has seven digits or more with at most two
# separator characters between them; an IPv4 address has "d.d.d"; an IPv6 address "h:h:".
_HINT_DIGITS = re.compile(r"\d(?:[ ()./-]{0,2}\d){6}")
_HINT_IPV4 = re.compile(r"\d\.\d{1,3}\.\d")
_HINT_IPV6 = re.compile(r"[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:")


def scrub(text: str | None) -> ScrubResult:
    """Replace personal data in ``text``; return the new text and the count per kind."""
    if not text:
        return ScrubResult(text or "", {})
    return _scrub_cached(text)


@lru_cache(maxsize=8192)
def _scrub_cached(text: str) -> ScrubResult:
    # Cached because system prompts and canned answers repeat across thousands of pairs.
    email = "@" in text
    digits = _HINT_DIGITS.search(text) is not None
    ipv4 = "." in text and _HINT_IPV4.search(text) is not None
    ipv6 = ":" in text and _HINT_IPV6.search(text) is not None
    if not (email or digits or ipv4 or ipv6):
        return ScrubResult(text, {})
    counts: Counter[str] = Counter()

    def run(pattern: re.Pattern[str], fn: Callable[[re.Match[str], Counter[str]], str]) -> str:
        return pattern.sub(lambda m: fn(m, counts), text)

    if email:
        text = run(_EMAIL, _email)
    if digits:
        text = run(_IBAN, _iban)
        text = run(_CARD_RUN, _card_run)
    if ipv6:
        text = run(_IPV6, _ipv6)
    if ipv4:
        text = run(_IPV4, _ipv4)
    if digits:
        text = run(_PHONE, _phone)
    return ScrubResult(text, {k: v for k, v in sorted(counts.items()) if v})


def add_counts(total: Counter[str], counts: dict[str, int]) -> None:
    """Add one result's counts to a running total."""
    for kind, n in counts.items():
        total[kind] += n
