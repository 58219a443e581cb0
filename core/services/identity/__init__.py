"""Accounts and sign-in: consumers by mobile number and SMS code, staff by password (+ TOTP).

    sms_sign_in.py    consumers sign in, sign up and add numbers with a code sent by SMS
    staff_sign_in.py  staff accounts, passwords, TOTP (good once), known sign-in addresses
    sessions.py       the portal's own limits on a sign-in; accounts vouched for by an external provider
    accounts.py       an account's numbers; deleting an account (erasing the person)
    throttles.py      the guessing limits and the record of every attempt every path shares

The built-in OpenID provider calls this service to authenticate people; Streamlit's `st.login`
then receives signed ID tokens. Every success and failure is recorded in `auth_events`, without
secrets; phone numbers are stored encrypted with a blind index. Who may do what is
`core.domain.access`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.engine import Engine

from core.adapters.sms import SmsGateway
from core.security.fields import MOBILE_NUMBER, BlindIndex, FieldCipher
from core.security.keys import PortalKeys
from core.services.identity.accounts import Accounts
from core.services.identity.sessions import Sessions
from core.services.identity.sms_sign_in import SmsSignIn
from core.services.identity.staff_sign_in import StaffSignIn


class IdentityService(SmsSignIn, StaffSignIn, Sessions, Accounts):
    def __init__(
        self,
        engine: Engine,
        keys: PortalKeys,
        sms: SmsGateway,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        require_totp_for_staff: bool = False,
    ) -> None:
        self._engine = engine
        self._sms = sms
        self._clock = clock
        self.require_totp_for_staff = require_totp_for_staff
        self._cipher = FieldCipher(keys.data_key)
        self._number_index = BlindIndex(keys.index_key, MOBILE_NUMBER)
        self._subject_index = BlindIndex(keys.index_key, "username")
        self._client_index = BlindIndex(keys.index_key, "client-address")
        self._code_hash = BlindIndex(keys.index_key, "sms-code")
