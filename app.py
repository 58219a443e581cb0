"""The portal's server: Streamlit (`streamlit_app.py`, the router and frame) plus the portal's
own routes: the built-in OpenID provider under /idp, payout partners' notifications under
/partners, the receipt key under /receipts/jwks, and a health check. In the embedded default
the recovery worker (and the sandbox partners' notification sender) run inside this process:
started with the server, stopped with it (EMBEDDED_WORKER=0 leaves the work to `python -m core worker` processes).

    streamlit run app.py      (what `make run` does)

The services are built once here, before the server starts: the embedded SQLite database is
created and migrated, development keys are generated on first run (outside git), and
`st.login` is given the `[auth]` section that points at the built-in provider. With
PORTAL_AUTH=external it points at the provider named by AUTH_SERVER_METADATA_URL,
AUTH_CLIENT_ID and AUTH_CLIENT_SECRET, or, without those, `[auth]` comes from
.streamlit/secrets.toml (Keycloak, Authing, Entra ID ...).
"""

import contextlib
import logging
import os

import streamlit as st
from starlette.responses import JSONResponse
from starlette.routing import Route
from streamlit import config as streamlit_config
from streamlit.runtime.pages_manager import PagesManager

from core.bootstrap import shared
from core.config import ConfigError
from core.i18n import Translator
from core.web.auth_routes import auth_routes
from core.web.partner_routes import partner_routes
from core.web.receipt_routes import receipt_routes

services = shared()  # also sets up the process's logging (core.bootstrap.configure_logging)
# The portal's pages are routed by `st.navigation` in streamlit_app.py (the frame: who is signed
# in, the menu by role). Streamlit treats a `pages/` folder beside the main script as the older
# file-per-page routing until the first `st.navigation` call, so the very first request after a
# start would run a page such as pages/recover.py directly, without the frame. Say so up front.
PagesManager.uses_pages_directory = False


def refuse_to_start(error: ConfigError) -> None:
    """One line saying why, and out: the server has not started anything yet."""
    logging.getLogger("portal").error("not starting: %s", Translator("en").error(error))
    logging.shutdown()
    os._exit(2)  # a SystemExit here would be printed by the server with a traceback


async def health(request):
    return JSONResponse({"status": "ok"})


@contextlib.asynccontextmanager
async def lifespan(app):
    try:
        services.start_background()
    except ConfigError as error:  # e.g. another process runs its own in-process sandbox on this database
        refuse_to_start(error)
    try:
        yield None
    finally:
        services.stop_background()


# Streamlit signs its session cookie (which carries a sign-in's OpenID state from /auth/login to
# /oauth2callback) with server.cookieSecret, random per process unless set: derived here from the
# portal's cookie secret, so a sign-in begun on one replica finishes on any other that shares the
# keys. An operator's own STREAMLIT_SERVER_COOKIE_SECRET still wins.
if not os.environ.get("STREAMLIT_SERVER_COOKIE_SECRET"):
    streamlit_config.set_option("server.cookieSecret", services.keys.cookie_secret)

auth = services.streamlit_auth_secrets()
secrets = {"auth": auth} if auth else {}
routes = [
    *auth_routes(shared),
    *partner_routes(lambda: shared().notices),
    *receipt_routes(lambda: shared().receipts),
    Route("/healthz", health),
]
app = st.App("streamlit_app.py", routes=routes, secrets=secrets, lifespan=lifespan)
