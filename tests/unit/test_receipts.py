"""Receipts fail verification when anything about them changes: every field of what they say,
their header, their signature, the key that signed them, or the key set they are checked
against. The receipt under test is a real one: a two-part recovery paid through the sandbox
partners on an in-memory database, signed by a ReceiptService."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import RSAKey

from core.domain.recovery import RecoveryState
from core.reference_data import load_catalog
from core.services.receipts import ReceiptInvalid, ReceiptService, VerifiedReceipt, verify_receipt
from core.services.recovery.views import RecoveryRequest
from core.simulation.rig import SimClock, build_rig, memory_engine

ISSUER = "http://portal.test"
KID = "receipts-unit"
Path = tuple[str | int, ...]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def encode_payload(claims: dict[str, Any]) -> str:
    """The payload segment exactly as ReceiptService writes it."""
    return b64(json.dumps(claims, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode())


@pytest.fixture(scope="module")
def issued() -> tuple[str, dict[str, Any], RSAKey]:
    """(a receipt of a paid two-part recovery, the published key set, the signing key)."""
    clock = SimClock()
    rig = build_rig(memory_engine(), load_catalog(), clock=clock, seconds=clock.seconds)
    phone = "13800138000"
    alice = rig.consumer(phone)
    rig.carrier.balances[phone] = 100_000
    view = rig.recoveries.submit(alice, "receipt-key-01", RecoveryRequest("alipay", phone, 80_000, "a@example.com"))
    rig.worker().run_until_idle()
    assert {p.state for p in rig.recoveries.get(alice, view.id).parts} == {RecoveryState.PAID}
    key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
    receipts = ReceiptService(rig.engine, rig.recoveries, key, ISSUER, clock=clock)
    return receipts.issue(alice, view.id), receipts.jwks(), key


@pytest.fixture(scope="module")
def token(issued) -> str:
    return issued[0]


@pytest.fixture(scope="module")
def jwks(issued) -> dict[str, Any]:
    return issued[1]


def segments(token: str) -> tuple[str, str, str]:
    header, payload, signature = token.split(".")
    return header, payload, signature


def claims_of(token: str) -> dict[str, Any]:
    return json.loads(unb64(segments(token)[1]))


def leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every scalar in a decoded JSON document, with the path to it."""
    if isinstance(value, dict):
        for name, inner in value.items():
            yield from leaves(inner, (*path, name))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from leaves(inner, (*path, index))
    else:
        yield path, value


def altered(value: Any) -> Any:
    """Another value of the same kind (what a forger would write)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "0" if value else "x"
    if value is None:
        return 0
    raise AssertionError(f"unexpected leaf {value!r}")


def set_at(document: Any, path: Path, value: Any) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def with_payload(token: str, claims: dict[str, Any]) -> str:
    header, _, signature = segments(token)
    return f"{header}.{encode_payload(claims)}.{signature}"


def with_header(token: str, header: dict[str, Any]) -> str:
    _, payload, signature = segments(token)
    return f"{b64(json.dumps(header, separators=(',', ':')).encode())}.{payload}.{signature}"


# --- the unaltered receipt -----------------------------------------------------------------------------


def test_the_unaltered_receipt_verifies_and_says_what_was_signed(token, jwks):
    receipt = verify_receipt(token, jwks, issuer=ISSUER)
    assert isinstance(receipt, VerifiedReceipt)
    assert (receipt.key_id, receipt.issuer) == (KID, ISSUER)
    assert receipt.issued_at == dt.datetime.fromtimestamp(claims_of(token)["iat"], dt.UTC)
    assert receipt.recovery == claims_of(token)["recovery"]
    assert (receipt.recovery["state"], receipt.recovery["asked"]["amount_fen"]) == ("paid", 80_000)
    assert receipt.recovery["outcome"]["received_fen"] == 80_000 - receipt.recovery["outcome"]["fee_fen"]
    assert [p["debit_fen"] for p in receipt.recovery["parts"]] == [50_000, 30_000]


def test_a_receipt_broken_over_lines_or_padded_with_spaces_still_verifies(token, jwks):
    wrapped = "\n".join(token[i : i + 64] for i in range(0, len(token), 64))
    assert verify_receipt(f"  {wrapped}\n", jwks).recovery["id"] == claims_of(token)["recovery"]["id"]


@pytest.mark.parametrize(
    "dressed",
    [
        "\ufeff{}",  # saved by an editor as UTF-8 with a byte-order mark
        "\ufeff{}\r\n",
        "{}\u200b",  # a zero-width space a chat app added
        "\u2060{}\u200d\u00a0",  # a word joiner, a zero-width joiner, a no-break space
        "\ufeff\ufeff{}",
    ],
)
def test_a_receipt_with_invisible_characters_around_it_still_verifies(token, jwks, dressed):
    assert verify_receipt(dressed.format(token), jwks).recovery == verify_receipt(token, jwks).recovery


def test_a_receipt_saved_with_a_byte_order_mark_verifies_as_uploaded(token, jwks):
    """The page decodes an uploaded file as UTF-8: a byte-order mark stays in the text."""
    uploaded = ("\ufeff" + token + "\n").encode("utf-8")
    assert verify_receipt(uploaded.decode("utf-8", errors="replace"), jwks).issuer == ISSUER


def test_re_encoding_the_decoded_payload_gives_back_the_same_segment(token):
    """So the tampering below changes exactly one field and nothing else."""
    assert encode_payload(claims_of(token)) == segments(token)[1]
    assert with_payload(token, claims_of(token)) == token


# --- the payload: every field ----------------------------------------------------------------------------


def test_changing_any_single_field_of_the_payload_makes_the_receipt_invalid(token, jwks):
    claims = claims_of(token)
    paths = list(leaves(claims))
    assert len(paths) > 40  # iss, iat, the recovery, two parts, ten timeline steps, the audit hash
    assert {p[0] for p, _ in paths} == {"iss", "iat", "recovery"}
    for path, value in paths:
        forged = with_payload(token, set_at(claims, path, altered(value)))
        with pytest.raises(ReceiptInvalid):
            verify_receipt(forged, jwks)
        assert forged != token, path


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: c["recovery"].pop("outcome"), id="field-removed"),
        pytest.param(lambda c: c["recovery"].__setitem__("bonus_fen", 1), id="field-added"),
        pytest.param(lambda c: c["recovery"]["parts"].pop(), id="part-removed"),
        pytest.param(lambda c: c["recovery"]["timeline"].reverse(), id="timeline-reordered"),
        pytest.param(
            lambda c: c["recovery"]["outcome"].__setitem__("received_fen", c["recovery"]["asked"]["amount_fen"]),
            id="fee-waived",
        ),
        pytest.param(lambda c: c.pop("iss"), id="issuer-removed"),
    ],
)
def test_changing_the_shape_of_the_payload_makes_the_receipt_invalid(token, jwks, change):
    claims = claims_of(token)
    change(claims)
    with pytest.raises(ReceiptInvalid):
        verify_receipt(with_payload(token, claims), jwks)


def test_the_payload_reformatted_with_the_same_content_is_invalid(token, jwks):
    header, _, signature = segments(token)
    pretty = b64(json.dumps(claims_of(token), indent=2).encode())
    with pytest.raises(ReceiptInvalid):
        verify_receipt(f"{header}.{pretty}.{signature}", jwks)


# --- the header and the signature --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("kid", "another-key"),
        ("kid", None),
        ("alg", "RS512"),
        ("alg", "HS256"),
        ("alg", "none"),
        ("alg", None),
        ("typ", "JWT"),
        ("typ", None),
        ("cty", "json"),
    ],
)
def test_an_altered_header_makes_the_receipt_invalid(token, jwks, field, value):
    header = json.loads(unb64(segments(token)[0]))
    assert header == {"alg": "RS256", "kid": KID, "typ": "receipt+jws"}
    if value is None:
        header.pop(field)
    else:
        header[field] = value
    with pytest.raises(ReceiptInvalid):
        verify_receipt(with_header(token, header), jwks)


@pytest.mark.parametrize("cut", [1, 2, 10, 100, None])
def test_a_truncated_signature_makes_the_receipt_invalid(token, jwks, cut):
    header, payload, signature = segments(token)
    shorter = signature[:-cut] if cut is not None else ""
    with pytest.raises(ReceiptInvalid):
        verify_receipt(f"{header}.{payload}.{shorter}", jwks)


def test_a_signature_with_one_bit_flipped_makes_the_receipt_invalid(token, jwks):
    header, payload, signature = segments(token)
    raw = bytearray(unb64(signature))
    for position in (0, len(raw) // 2, len(raw) - 1):
        flipped = bytearray(raw)
        flipped[position] ^= 0x01
        with pytest.raises(ReceiptInvalid):
            verify_receipt(f"{header}.{payload}.{b64(bytes(flipped))}", jwks)


def test_a_receipt_signed_by_another_rsa_key_is_invalid_even_with_the_portals_key_id(token, jwks):
    other = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
    header = {"alg": "RS256", "typ": "receipt+jws", "kid": KID}
    forged = jws.serialize_compact(header, unb64(segments(token)[1]), other, algorithms=["RS256"])
    assert verify_receipt(forged, {"keys": [other.as_dict(private=False)]}).recovery  # good under its own key
    with pytest.raises(ReceiptInvalid):
        verify_receipt(forged, jwks)


def test_a_token_signed_by_the_portals_key_but_not_a_receipt_is_invalid(issued, jwks):
    _, _, key = issued
    for header, payload in (
        ({"alg": "RS256", "typ": "JWT", "kid": KID}, json.dumps({"iss": ISSUER, "iat": 1, "recovery": {"id": "x"}})),
        ({"alg": "RS256", "typ": "receipt+jws", "kid": KID}, json.dumps({"iss": ISSUER, "iat": 1})),
        ({"alg": "RS256", "typ": "receipt+jws", "kid": KID}, json.dumps({"iss": ISSUER, "recovery": {"id": "x"}})),
        ({"alg": "RS256", "typ": "receipt+jws", "kid": KID}, "not json"),
    ):
        signed = jws.serialize_compact(header, payload.encode(), key, algorithms=["RS256"])
        with pytest.raises(ReceiptInvalid):
            verify_receipt(signed, jwks)


def test_a_receipt_for_another_issuer_is_invalid_when_the_issuer_is_named(token, jwks):
    with pytest.raises(ReceiptInvalid):
        verify_receipt(token, jwks, issuer="https://another-portal.example")


# --- garbage and key sets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "   ",
        "receipt",
        "a.b",
        "a.b.c",
        "..",
        "a.b.c.d",
        "回执.回执.回执",
        "eyJhbGciOiJub25lIn0.e30.",
        "x" * 70_000,
        "a." + "b" * 70_000 + ".c",
    ],
)
def test_garbage_is_not_a_receipt(jwks, garbage):
    with pytest.raises(ReceiptInvalid):
        verify_receipt(garbage, jwks)


@pytest.mark.parametrize(
    "key_set",
    [
        pytest.param({"keys": []}, id="empty"),
        pytest.param({}, id="no-keys"),
        pytest.param({"keys": [{"kty": "RSA"}]}, id="incomplete-key"),
        pytest.param({"keys": "not a list"}, id="not-a-list"),
        pytest.param({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, id="symmetric-key"),
    ],
)
def test_a_receipt_checked_against_an_empty_or_unusable_key_set_is_invalid(token, key_set):
    with pytest.raises(ReceiptInvalid):
        verify_receipt(token, key_set)


def test_the_published_key_set_holds_the_public_half_only(jwks):
    (published,) = jwks["keys"]
    assert published["kid"] == KID and published["kty"] == "RSA"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(published)
