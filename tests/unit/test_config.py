import pytest

from core.config import ConfigError, Settings


def test_development_defaults_use_the_in_process_sandbox():
    settings = Settings.from_env({})
    assert settings.terms_feed_url == "sandbox" and not settings.production


@pytest.mark.parametrize(
    "env",
    [
        {"PORTAL_ENV": "production"},
        {"PORTAL_ENV": "production", "TERMS_FEED_URL": "http://feed.example"},
        {"PORTAL_ENV": "staging"},
        {"TERMS_FEED_URL": "ftp://feed"},
        {"TERMS_REFRESH_S": "often"},
        {"TERMS_STALE_AFTER_H": "-1"},
        {"PORTAL_DATA_DIR": "/nonexistent"},
    ],
)
def test_unsafe_or_invalid_settings_are_refused(env):
    with pytest.raises(ConfigError):
        Settings.from_env(env)


PRODUCTION = {
    "PORTAL_ENV": "production",
    "TERMS_FEED_URL": "https://feed.example/terms",
    "SMS_GATEWAY_URL": "https://sms.example/",
    "PORTAL_URL": "https://portal.example",
    "CARRIER_API_URL": "https://carrier.example/api",
    "PAYOUT_API_URL": "https://payouts.example/api",
}


def test_production_accepts_real_partners():
    assert Settings.from_env(PRODUCTION).production


@pytest.mark.parametrize("name", ["CARRIER_API_URL", "PAYOUT_API_URL"])
def test_production_refuses_sandbox_money_partners(name):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**PRODUCTION, name: "sandbox"})
    with pytest.raises(ConfigError, match="https"):
        Settings.from_env({**PRODUCTION, name: "http://partner.example"})


def test_production_refuses_the_sandbox_sms_gateway():
    with pytest.raises(ConfigError):
        Settings.from_env({**PRODUCTION, "SMS_GATEWAY_URL": "sandbox"})


def test_production_refuses_to_start_with_generated_development_keys(tmp_path):
    from core.security.keys import SecretsError, load_keys

    with pytest.raises(SecretsError):
        load_keys({}, tmp_path / "secrets.json", production=True)
    assert not (tmp_path / "secrets.json").exists()


def test_keys_given_in_part_are_refused_not_replaced_by_development_ones(tmp_path):
    """PORTAL_DATA_KEY alone (or with a typo in another key's name) fell back to the development
    keys without a word: data would then be encrypted with keys nobody configured."""
    from core.security.keys import SecretsError, load_keys

    with pytest.raises(SecretsError, match="PORTAL_INDEX_KEY"):
        load_keys({"PORTAL_DATA_KEY": "not-base64-S3CRETKEY"}, tmp_path / "secrets.json", production=False)
    assert not (tmp_path / "secrets.json").exists()


@pytest.mark.parametrize("name", ["PORTAL_OIDC_SIGNING_KEY", "PORTAL_RECEIPT_SIGNING_KEY"])
def test_production_names_the_signing_key_it_misses(tmp_path, name):
    from core.security.keys import SecretsError, load_signing_key

    with pytest.raises(SecretsError, match=name):
        load_signing_key({}, name, tmp_path / "key.json", production=True)
    assert not (tmp_path / "key.json").exists()


def test_development_keys_are_generated_once_outside_git_and_kept(tmp_path):
    import stat

    from core.security.keys import load_keys

    first = load_keys({}, tmp_path / "secrets.json", production=False)
    again = load_keys({}, tmp_path / "secrets.json", production=False)
    assert first.generated and first.data_key == again.data_key
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    assert "data_key" not in repr(first) and str(first.data_key) not in repr(first)


def test_configured_keys_are_used_in_production(tmp_path):
    import base64
    import secrets

    from core.security.keys import load_keys

    env = {
        f"PORTAL_{n.upper()}": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        for n in ("data_key", "index_key", "cookie_secret")
    }
    assert not load_keys(env, tmp_path / "secrets.json", production=True).generated


def test_production_refuses_a_plain_http_sms_gateway():
    with pytest.raises(ConfigError):
        Settings.from_env({**PRODUCTION, "SMS_GATEWAY_URL": "http://sms.example/"})


def test_weak_or_repeated_keys_are_refused(tmp_path):
    import base64
    import secrets

    from core.security.keys import SecretsError, load_keys

    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    weak = {
        "PORTAL_DATA_KEY": key,
        "PORTAL_INDEX_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "PORTAL_COOKIE_SECRET": "x",
    }
    with pytest.raises(SecretsError):
        load_keys(weak, tmp_path / "s.json", production=True)
    same = {**weak, "PORTAL_INDEX_KEY": key, "PORTAL_COOKIE_SECRET": "y" * 40}
    with pytest.raises(SecretsError):
        load_keys(same, tmp_path / "s.json", production=True)
