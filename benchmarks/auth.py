"""Sign-in cost on this machine: argon2id verification at the portal's parameters, and whole
password sign-ins per second through IdentityService on SQLite (throttle checks, audit row,
commit), beside the ceiling that verification alone allows on the cores used.

The last line is one JSON object: verify_ms, signins_per_s.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from core.adapters.sandbox.sms import SandboxSmsGateway
from core.adapters.sms import SmsGateway
from core.persistence import migrate
from core.persistence.db import engine_for
from core.security.keys import PortalKeys
from core.security.passwords import MEMORY_KIB, PARALLELISM, TIME_COST, hash_password, verify_password
from core.services.identity import IdentityService

PASSWORD = "correct horse battery staple"
THREADS = min(2, os.cpu_count() or 1)


def main() -> None:
    stored = hash_password(PASSWORD)
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        assert verify_password(stored, PASSWORD)
        timings.append(time.perf_counter() - start)
    verify_ms = statistics.median(timings) * 1000

    with tempfile.TemporaryDirectory() as folder:
        engine = engine_for(f"sqlite:///{folder}/bench.sqlite3")
        migrate.upgrade(engine)
        keys = PortalKeys(secrets.token_bytes(32), secrets.token_bytes(32), "x" * 32, generated=True)
        sms = SmsGateway(httpx.Client(transport=httpx.MockTransport(SandboxSmsGateway()), base_url="http://sms/"))
        identity = IdentityService(engine, keys, sms, clock=lambda: dt.datetime.now(dt.UTC))
        names = [f"staff{i:03d}" for i in range(THREADS * 4)]
        for name in names:
            identity.create_staff("operator", name, PASSWORD)

        def sign_in(i: int) -> None:
            identity.sign_in_with_password(names[i % len(names)], PASSWORD, f"10.0.{i % 250}.1")

        count = 60
        start = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(sign_in, range(count)))
        signins_per_s = count / (time.perf_counter() - start)
        engine.dispose()

    ceiling = THREADS * 1000 / verify_ms
    print(f"argon2id m={MEMORY_KIB} KiB, t={TIME_COST}, p={PARALLELISM}: verify {verify_ms:.1f} ms (median of 30)")
    print(f"password sign-ins through the service, {THREADS} threads, SQLite: {signins_per_s:.1f}/s")
    print(
        f"  ceiling from verification alone on {THREADS} cores: {ceiling:.1f}/s "
        f"(ratio {signins_per_s / ceiling:.2f}; the rest is throttle checks, the audit row and the commit)"
    )
    print(json.dumps({"verify_ms": round(verify_ms, 2), "signins_per_s": round(signins_per_s, 1)}))


if __name__ == "__main__":
    main()
