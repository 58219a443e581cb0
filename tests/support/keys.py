"""Signing keys for tests, made once a session (an RSA key takes about 50 ms to make)."""

from __future__ import annotations

import functools

from joserfc.jwk import RSAKey


@functools.cache
def rsa_key(kid: str) -> RSAKey:
    """The session's 2048-bit RS256 signing key named `kid`."""
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
