"""Is a portal replica up? `python deploy/bin/portal_health.py [--wait S] URL` exits 0 when URL
(a replica's http://127.0.0.1:PORT/_stcore/health) answers 200, else 1 with one line on stderr.

--wait S keeps asking for up to S seconds (systemd's ExecStartPost: `systemctl start` returns once
the replica serves); without it, one try with a 5 s timeout (the health timer). Standard library
only, so any Python 3 on the machine runs it."""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request


def healthy(url: str, timeout_s: float) -> str | None:
    """None when `url` answers 200; else what went wrong, in a few words."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310 - an operator's own URL
            return None if answer.status == 200 else f"HTTP {answer.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return type(getattr(error, "reason", error)).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="exit 0 when a portal replica's health URL answers 200")
    parser.add_argument("url")
    parser.add_argument("--wait", type=float, default=0.0, metavar="S", help="keep asking for up to S seconds")
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        parser.error("URL must be http(s)")
    deadline = time.monotonic() + args.wait
    while True:
        problem = healthy(args.url, timeout_s=5.0)
        if problem is None:
            return 0
        if time.monotonic() >= deadline:
            print(f"{args.url}: not healthy ({problem})", file=sys.stderr)
            return 1
        time.sleep(0.25)


if __name__ == "__main__":
    sys.exit(main())
