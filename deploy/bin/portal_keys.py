"""Make the portal's keys, once for every replica and worker:

    /opt/portal/.venv/bin/python deploy/bin/portal_keys.py /etc/portal/keys.env

writes the file (mode 0600; refused if it exists: new keys would make what is encrypted unreadable
and sign everyone out) as a systemd EnvironmentFile the units read beside portal.env:
PORTAL_DATA_KEY, PORTAL_INDEX_KEY, PORTAL_COOKIE_SECRET (32 random bytes each, base64; the
portal derives Streamlit's own cookie secret from the last), PORTAL_OIDC_SIGNING_KEY and
PORTAL_RECEIPT_SIGNING_KEY (private RSA JWKs, in single quotes so that systemd keeps their double
quotes). It never prints a key."""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys


def random_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def signing_key() -> str:
    from joserfc.jwk import RSAKey  # the portal's own dependency: run this with its .venv

    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256", "kid": secrets.token_hex(8)})
    return json.dumps(key.as_dict(private=True))


def keys() -> dict[str, str]:
    return {
        "PORTAL_DATA_KEY": random_key(),
        "PORTAL_INDEX_KEY": random_key(),
        "PORTAL_COOKIE_SECRET": random_key(),
        "PORTAL_OIDC_SIGNING_KEY": signing_key(),
        "PORTAL_RECEIPT_SIGNING_KEY": signing_key(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write the portal's keys to a new EnvironmentFile (mode 0600)")
    parser.add_argument("out", help="the file to write, e.g. /etc/portal/keys.env")
    args = parser.parse_args(argv)
    lines = [
        "# The portal's keys (deploy/bin/portal_keys.py): the same file for every replica and worker.\n",
        *(f"{name}='{value}'\n" for name, value in keys().items()),
    ]
    try:
        descriptor = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"{args.out} exists: keep it (new keys would lock out what the old ones protect)", file=sys.stderr)
        return 1
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.writelines(lines)
    print(f"wrote {args.out} (mode 0600)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
