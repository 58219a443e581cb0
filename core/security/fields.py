"""Encryption at rest for personal fields (PIPL art. 51), and blind indexes to find them.

- `FieldCipher`: AES-256-GCM; each value is bound to its row by associated data
  (`table:column:row_id`), so a ciphertext copied into another row does not decrypt.
- `BlindIndex`: keyed HMAC-SHA256 of a normalised value: equality lookup without the value.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import PortalError

VERSION = b"\x01"


class DecryptionFailed(PortalError):
    key = "error.generic"


class FieldCipher:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @staticmethod
    def binding(table: str, column: str, row_id: str) -> bytes:
        return f"{table}:{column}:{row_id}".encode()

    def encrypt(self, plaintext: str, *, table: str, column: str, row_id: str) -> bytes:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), self.binding(table, column, row_id))
        return VERSION + nonce + sealed

    def decrypt(self, token: bytes, *, table: str, column: str, row_id: str) -> str:
        if not token or token[:1] != VERSION:
            raise DecryptionFailed("unknown ciphertext format")
        try:
            plain = self._aead.decrypt(token[1:13], token[13:], self.binding(table, column, row_id))
        except InvalidTag:
            raise DecryptionFailed("ciphertext does not belong to this row or was altered") from None
        return plain.decode()


#: The blind index of mobile numbers: one purpose, so every service finds the same rows.
MOBILE_NUMBER = "mobile-number"


class BlindIndex:
    def __init__(self, key: bytes, purpose: str) -> None:
        self._key = hmac.new(key, purpose.encode(), hashlib.sha256).digest()  # one sub-key per purpose

    def __call__(self, normalised_value: str) -> str:
        return hmac.new(self._key, normalised_value.encode(), hashlib.sha256).hexdigest()
