"""Staff passwords: argon2id at OWASP's minimum or above, length 8-128, common ones refused."""

from __future__ import annotations

import functools
import json
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import InputError
from core.reference_data import DATA_DIR

#: OWASP Password Storage Cheat Sheet: argon2id with m=19 MiB, t=2, p=1 at least.
MEMORY_KIB = 19_456
TIME_COST = 2
PARALLELISM = 1
MIN_LENGTH, MAX_LENGTH = 8, 128


class WeakPassword(InputError):
    key = "error.password.weak"


HASHER = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM)


@functools.cache
def common_passwords() -> frozenset[str]:
    """zxcvbn's 30,000 most common passwords plus common Chinese ones shipped in data/."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    extra = json.loads((DATA_DIR / "common_passwords_zh.json").read_text(encoding="utf-8"))
    return frozenset(p.lower() for p in [*FREQUENCY_LISTS["passwords"], *extra])


def check_strength(password: str, *, username: str = "") -> None:
    password = unicodedata.normalize("NFKC", password)
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise WeakPassword(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters", key="error.password.length")
    if any(unicodedata.category(ch) == "Cc" for ch in password):  # nobody types one into a form
        raise WeakPassword("a password has no control characters", key="error.password.control")
    lowered = password.lower()
    if lowered in common_passwords() or (username and username.lower() in lowered):
        raise WeakPassword("this password is too common or contains the user name", key="error.password.common")


def hash_password(password: str) -> str:
    return HASHER.hash(unicodedata.normalize("NFKC", password))


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(stored_hash, unicodedata.normalize("NFKC", password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
