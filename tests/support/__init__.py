"""Helpers the tests share, one home each: import them from here (`from tests.support.db import
count`), never from another test module or a conftest. Fixtures several files use live in the
nearest conftest.py, as pytest intends; what is here is plain functions and classes.

    db          fresh migrated databases, row counts, table snapshots, the ledger, an engine's URL
    outbox      the outbox's next due message, and draining it until the recoveries settle
    people      test mobile numbers and the sandbox SMS gateway's last code
    quotes      quote requests at an ordinary moment
    portal      the consumer journey's portal under test (in-process, on a simulated clock)
    console     the deny list, audit trail and staff services over that portal
    processes   free ports, waiting for a server, the portal and the worker as real processes
    browser     Chromium's flags, a warmed-up portal, the menu's text, the sandbox SMS page's code
    apptest     the portal under AppTest, anonymous or signed in; its pages opened, run alone or
                read back; recoveries on the shared services for them to show
    cli         the command line's own portal, its verified consumers, `python -m core` in-process
    oidc        driving the built-in OpenID provider over HTTP (PKCE, the authorize query, CSRF)
    keys        RSA signing keys, made once a session
"""

from pathlib import Path

#: The repository's root.
ROOT = Path(__file__).resolve().parents[2]
