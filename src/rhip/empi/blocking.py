"""Blocking: the few keys under which a record's candidates are found (never a scan of the whole index).

Each key is a rule's value for the record ("same ID number", "same pinyin and birth date" …). Two records
are compared when they share at least one key, so recall is the union of the rules: a record with a
mistyped ID number is still found by its name and birth date, one with a homophone name by its pinyin,
one with no ID number by its phone or its birth date and township. Keys are stored hashed to 63 bits
(``empi_block.key``); a collision costs one extra comparison, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from hashlib import blake2b

from rhip.empi.features import Features

# A key shared by more records than this (a phone written on every newborn of a ward, a placeholder birth
# date) finds too many to compare one by one; it is left out of candidate searches.
MAX_BLOCK = 400


def rule_values(f: Features) -> Iterator[str]:
    """Every blocking-rule value of a record, each prefixed by its rule."""
    if f.id_number:
        yield "i:" + f.id_number
    for phone in f.phones:
        yield "p:" + phone
    for kind, value in f.cards:
        yield f"c:{kind}:{value}"
    birth = f.birth_date
    place = f.village or f.township or f.county or f.postcode
    if f.pinyin:
        if birth:
            yield f"nb:{f.pinyin}:{birth}"
        if place:
            yield f"np:{f.pinyin}:{place}"
    if f.family and birth:
        yield f"fb:{f.family}:{birth}"  # a given name mistyped beyond a homophone
    if f.family and f.given and not f.county:
        # Latin names: either order, by birth year; the given name with the birth date (a surname typo).
        first, second = sorted((f.family, f.given))
        yield f"ns:{first}:{second}:{birth[:4]}"
        if birth:
            yield f"gb:{f.given}:{birth}"
    if f.family and f.given and not f.county:
        # Latin data sets corrupt every field somewhere: each name with the locality, and the street.
        local = f.postcode or f.city
        if local:
            yield f"fl:{f.family}:{local}"
            yield f"gl:{f.given}:{local}"
        if f.street:
            yield f"st:{f.street}:{f.house or f.given}"
    if f.placeholder:
        yield f"ph:{f.placeholder}:{birth[:7]}"
    if birth and (f.township or f.postcode):
        yield f"bp:{birth}:{f.township or f.postcode}"
    if f.street and f.house and f.postcode:
        yield f"ad:{f.postcode}:{f.house}:{f.street}"


def hash_key(value: str) -> int:
    """A rule value as a signed 63-bit integer (what ``empi_block.key`` stores)."""
    return int.from_bytes(blake2b(value.encode(), digest_size=8).digest(), "big") >> 1


def identifier_value(system: str, value: str) -> str:
    """The lookup key of an identifier (PIX)."""
    return f"x:{system}|{value.strip()}"


def pinyin_value(pinyin: str) -> str:
    """The lookup key of a full-name pinyin (PDQ), spaces and case ignored."""
    return "py:" + "".join(pinyin.split()).lower()


def candidate_keys(f: Features) -> list[int]:
    """The keys whose records are candidates: the blocking rules and the identifiers (not the pinyin alone)."""
    values = [*rule_values(f), *(identifier_value(s, v) for s, v in f.identifiers)]
    return list(dict.fromkeys(hash_key(v) for v in values))


def keys(f: Features, candidates: list[int] | None = None) -> list[int]:
    """Every key stored for a record: its candidate keys (``candidates`` when already computed) and its pinyin.

    The pinyin alone only finds a record again (PDQ): a common name would bring hundreds of candidates.
    """
    found = candidate_keys(f) if candidates is None else candidates
    if not f.pinyin:
        return found
    return list(dict.fromkeys([*found, hash_key(pinyin_value(f.pinyin))]))
