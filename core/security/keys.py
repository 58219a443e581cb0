"""The portal's own secrets: from configuration, or generated once for development.

Production must be given its keys (environment or a secrets manager); the portal refuses to
start there with generated development keys. Generated keys live in `var/secrets.json`
(mode 0600, ignored by git) so that a restart can still read what was encrypted before.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import RSAKey

from core.errors import PortalError


class SecretsError(PortalError):
    key = "error.config"


KEY_NAMES = ("data_key", "index_key", "cookie_secret")


@dataclass(frozen=True, repr=False)
class PortalKeys:
    data_key: bytes  # AES-256-GCM for fields encrypted at rest
    index_key: bytes  # HMAC-SHA256 for blind indexes
    cookie_secret: str  # signs Streamlit's login cookie
    generated: bool  # True: development keys made on first run

    def __repr__(self) -> str:  # never print key material
        return f"PortalKeys(generated={self.generated})"


def _decode(name: str, value: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        raise SecretsError(f"{name} is not base64") from None
    if len(raw) != 32:
        raise SecretsError(f"{name} must be 32 bytes (base64)")
    return raw


def _new() -> dict[str, str]:
    return {name: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=") for name in KEY_NAMES}


def load_keys(env: Mapping[str, str], secrets_file: Path, *, production: bool) -> PortalKeys:
    given = {name: env.get(f"PORTAL_{name.upper()}") for name in KEY_NAMES}
    if all(given.values()):
        values = {k: v for k, v in given.items() if v}
        generated = False
    elif production or any(given.values()):  # some set and some not: a mistake, never a silent fallback
        missing = ", ".join(f"PORTAL_{k.upper()}" for k, v in given.items() if not v)
        if production:
            raise SecretsError(f"production mode needs its keys from configuration: set {missing}")
        raise SecretsError(f"the keys given by configuration are incomplete: set {missing} too (or none of them)")
    else:
        if secrets_file.exists():
            values = json.loads(secrets_file.read_text(encoding="utf-8"))
        else:
            values = _new()
            secrets_file.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(values, handle)
        generated = True
    keys = PortalKeys(
        _decode("data_key", values["data_key"]),
        _decode("index_key", values["index_key"]),
        values["cookie_secret"],
        generated,
    )
    if len(keys.cookie_secret) < 32:
        raise SecretsError("PORTAL_COOKIE_SECRET must be at least 32 random characters (it signs sign-in cookies)")
    if keys.data_key == keys.index_key:
        raise SecretsError("PORTAL_DATA_KEY and PORTAL_INDEX_KEY must differ")
    return keys


def load_signing_key(env: Mapping[str, str], name: str, key_file: Path, *, production: bool) -> RSAKey:
    """An RSA signing key (the provider's ID tokens, receipts): configured as a private JWK in
    the variable `name`, or made once for development in `key_file` (mode 0600)."""
    if env.get(name):
        return RSAKey.import_key(json.loads(env[name]))
    if production:
        raise SecretsError(f"production mode needs {name} (a private RSA JWK)")
    if key_file.exists():
        return RSAKey.import_key(json.loads(key_file.read_text(encoding="utf-8")))
    key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"})
    key_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(key.as_dict(private=True), handle)
    return key
