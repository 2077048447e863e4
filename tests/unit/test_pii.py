"""PII scrubbing: what must go, and the near misses that must stay."""

from __future__ import annotations

import pytest

from shadowtutor.export import pii


@pytest.mark.parametrize(
    ("text", "expected", "counts"),
    [
        # e-mail
        ("mail anna@example.com now", "mail [EMAIL] now", {"email": 1}),
        ("john.doe+tag@mail.co.uk.", "[EMAIL].", {"email": 1}),
        ("Grüße an jörg@beispiel.de", "Grüße an [EMAIL]", {"email": 1}),
        # phone numbers, international
        ("call +39 333 123 4567", "call [PHONE]", {"phone": 1}),
        ("+44 20 7946 0958 (office)", "[PHONE] (office)", {"phone": 1}),
        ("+1 (555) 123-4567", "[PHONE]", {"phone": 1}),
        ("Telepon +62 812-3456-7890", "Telepon [PHONE]", {"phone": 1}),
        ("ring 0046 70 123 45 67", "ring [PHONE]", {"phone": 1}),
        ("+4915112345678", "[PHONE]", {"phone": 1}),
        # phone numbers, local
        ("(555) 123-4567", "[PHONE]", {"phone": 1}),
        ("555-123-4567 or 555.123.4567", "[PHONE] or [PHONE]", {"phone": 2}),
        ("020 7946 0958", "[PHONE]", {"phone": 1}),
        ("06 12345678", "[PHONE]", {"phone": 1}),
        ("mobil 070-123 45 67", "mobil [PHONE]", {"phone": 1}),
        ("hp 0812-3456-7890", "hp [PHONE]", {"phone": 1}),
        ("cell 0612345678", "cell [PHONE]", {"phone": 1}),
        # payment cards (Luhn-valid)
        ("card 4111 1111 1111 1111", "card [CARD]", {"card": 1}),
        ("4111-1111-1111-1111", "[CARD]", {"card": 1}),
        ("visa 4012888888881881.", "visa [CARD].", {"card": 1}),
        ("amex 3782 822463 10005", "amex [CARD]", {"card": 1}),
        ("ref 12 4111 1111 1111 1111", "ref 12 [CARD]", {"card": 1}),
        ("4111 1111 1111 1111 exp 12/27", "[CARD] exp 12/27", {"card": 1}),
        # IBANs (mod-97)
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN [IBAN]", {"iban": 1}),
        ("GB82WEST12345698765432", "[IBAN]", {"iban": 1}),
        ("to IT60 X054 2811 1010 0000 0123 456, thanks", "to [IBAN], thanks", {"iban": 1}),
        ("NL91ABNA0417164300", "[IBAN]", {"iban": 1}),
        # IP addresses
        ("from 192.168.1.10 and 10.0.0.1.", "from [IP] and [IP].", {"ip": 2}),
        ("host 2001:db8::8a2e:370:7334", "host [IP]", {"ip": 1}),
        ("link-local fe80::1ff:fe23:4567:890a", "link-local [IP]", {"ip": 1}),
        ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[IP]", {"ip": 1}),
        # several kinds at once
        (
            "I'm ana@x.io, +39 333 123 4567, card 4111111111111111, 8.8.8.8",
            "I'm [EMAIL], [PHONE], card [CARD], [IP]",
            {"email": 1, "phone": 1, "card": 1, "ip": 1},
        ),
    ],
)
def test_personal_data_is_replaced(text: str, expected: str, counts: dict) -> None:
    result = pii.scrub(text)
    assert result.text == expected
    assert result.counts == counts


@pytest.mark.parametrize(
    "text",
    [
        # numbers that fail the Luhn check stay
        "order 4111 1111 1111 1112",
        "4111111111111112",
        "tracking 1234567890123",
        # IBAN-shaped but the mod-97 check fails
        "DE89 3704 0044 0532 0130 01",
        "GB82WEST12345698765433",
        # dates, times, amounts, versions
        "on 2024-01-15, 15/01/2024 or 01.02.2024",
        "from 2024-01-15 10:30 to 12.03.2024 - 13.03.2024",
        "open 09:00-17:30, meeting at 10:30:45",
        "price 1.250.000 IDR, or 1,250,000.00, or EUR 650",
        "version 1.2.3, build 10.0.19045",
        "v1.2.3.4 and 1.2.3.4.5",
        "999.1.1.1 is not an address",
        "pi is 3.14159265358979",
        # order, invoice and ticket numbers
        "order 123456789",
        "Order number: 555-123-4567",
        "invoice #4567 8901 23",
        "ordine n. 0612345678",
        "ISBN 978-3-16-148410-0",
        "tracking 1Z999AA10123456784",
        "booking ref T-000123",
        # short numbers
        "call 112 or 911",
        "room 1234, floor 5",
        "23 kg bags cost 45 euros",
        # not e-mail addresses
        "user@localhost and @handle and a@b",
        "email me at name at example dot com",
        # not IPv6
        "::1 and std::vector and a::b",
        "ratio 3:4:5",
    ],
)
def test_near_misses_stay(text: str) -> None:
    result = pii.scrub(text)
    assert result.text == text
    assert result.counts == {}


@pytest.mark.parametrize(
    ("digits", "ok"),
    [
        ("4111111111111111", True),
        ("4012888888881881", True),
        ("378282246310005", True),
        ("6011111111111117", True),
        ("4111111111111112", False),
        ("1234567890123", False),
    ],
)
def test_luhn(digits: str, ok: bool) -> None:
    assert pii.luhn_ok(digits) is ok


@pytest.mark.parametrize(
    ("iban", "ok"),
    [
        ("DE89370400440532013000", True),
        ("GB82 WEST 1234 5698 7654 32", True),
        ("FR1420041010050500013M02606", True),
        ("DE89370400440532013001", False),
        ("DE8937040044", False),
        ("1289370400440532013000", False),
    ],
)
def test_iban(iban: str, ok: bool) -> None:
    assert pii.iban_ok(iban) is ok


def test_empty_and_none() -> None:
    assert pii.scrub("") == pii.ScrubResult("", {})
    assert pii.scrub(None) == pii.ScrubResult("", {})


def test_placeholders_are_not_scrubbed_again() -> None:
    once = pii.scrub("card 4111 1111 1111 1111 call +39 333 123 4567").text
    assert pii.scrub(once).text == once and pii.scrub(once).counts == {}
