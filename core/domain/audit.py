"""A tamper-evident audit trail: each record carries the hash of the one before it.

    hash(n) = sha256(hash(n-1) + canonical JSON of record n)

Changing, removing or reordering any record breaks every hash after it; `first_broken`
names the first record whose stored hash no longer matches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

GENESIS = "0" * 64


def canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def chain_hash(previous: str, record: Mapping[str, Any]) -> str:
    return hashlib.sha256(previous.encode() + canonical(record)).hexdigest()


def first_broken(records: Sequence[tuple[Mapping[str, Any], str, str]]) -> int | None:
    """`records` as (record, stored previous hash, stored hash), in order. Returns the index
    of the first record that does not verify, or None when the chain holds."""
    expected_previous = GENESIS
    for index, (record, previous, stored) in enumerate(records):
        if previous != expected_previous or chain_hash(previous, record) != stored:
            return index
        expected_previous = stored
    return None
