"""Web Push encryption (RFC 8291 / RFC 8188 aes128gcm), VAPID (RFC 8292) and Topic (RFC 8030)."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from services.notify import webpush
from tests.fakes import webpush_receiver as receiver
from tests.fakes.webpush_receiver import WebPushError


def b64(text: str) -> bytes:
    """base64url as printed in the RFCs: whitespace removed, padding optional."""
    text = re.sub(r"\s+", "", text)
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def enc(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def private_key_from(d_b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64(d_b64), "big"), ec.SECP256R1())


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


# --- RFC 8291 Appendix A (the example of §5), values as printed there -----------------------

RFC = {
    "plaintext": "V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24",
    "as_public": """BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIg
                    Dll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8""",
    "as_private": "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
    "ua_public": """BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-
                    JvLexhqUzORcx aOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4""",
    "ua_private": "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
    "salt": "DGv6ra1nlYgDCS1FRnbzlw",
    "auth_secret": "BTBZMqHH6r4Tts7J_aSIgg",
    "ecdh_secret": "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs",
    "cek": "oIhVW04MRdy2XN9CiKLxTg",
    "nonce": "4h_95klXJ5E_qnoN",
    "header": """DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z 9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml
                 mlMoZIIgDll6e3vCYLocInmYWAmS6Tlz AC8wEqKK6PBru3jl7A8""",
    "ciphertext": """8pfeW0KbunFT06SuDKoJH9Ql87S1QUrd irN6GcG7sFz1y1sqLgVi1VhjVkHsUoEs
                     bI_0LpXMuGvnzQ""",
}
RFC_BODY = b64(RFC["header"]) + b64(RFC["ciphertext"])


def test_rfc8291_vector_keys_are_consistent() -> None:
    assert point(private_key_from(RFC["as_private"])) == b64(RFC["as_public"])
    assert point(private_key_from(RFC["ua_private"])) == b64(RFC["ua_public"])
    ecdh = private_key_from(RFC["as_private"]).exchange(
        ec.ECDH(),
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64(RFC["ua_public"])),
    )
    assert ecdh == b64(RFC["ecdh_secret"])


def test_rfc8291_vector_key_derivation() -> None:
    cek, nonce = webpush._derive(
        b64(RFC["ecdh_secret"]),
        b64(RFC["auth_secret"]),
        b64(RFC["ua_public"]),
        b64(RFC["as_public"]),
        b64(RFC["salt"]),
    )
    assert cek == b64(RFC["cek"])
    assert nonce == b64(RFC["nonce"])


def test_rfc8291_vector_encrypts_byte_for_byte() -> None:
    body = webpush._encrypt(
        b64(RFC["plaintext"]),
        b64(RFC["ua_public"]),
        b64(RFC["auth_secret"]),
        salt=b64(RFC["salt"]),
        server_key=private_key_from(RFC["as_private"]),
    )
    assert body == RFC_BODY
    assert len(body) == 86 + len(b64(RFC["plaintext"])) + 1 + 16
    assert enc(body) == (
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"
        "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"
        "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
    )  # RFC 8291 §5, the message body


def test_rfc8291_vector_decrypts() -> None:
    plaintext = receiver.decrypt(
        RFC_BODY, private_key=private_key_from(RFC["ua_private"]), auth=b64(RFC["auth_secret"])
    )
    assert plaintext == b"When I grow up, I want to be a watermelon"


# --- encryption round trips and refusals ------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> tuple[ec.EllipticCurvePrivateKey, str, str]:
    return webpush.generate_subscription_keys()


def test_subscription_keys_look_like_a_browsers(browser) -> None:
    private_key, p256dh, auth = browser
    assert re.fullmatch(r"[A-Za-z0-9_-]{87}", p256dh) and b64(p256dh)[0] == 4
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", auth) and len(b64(auth)) == 16
    assert b64(p256dh) == point(private_key)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 200, 1000, 3992, 3993])
def test_round_trip(browser, size: int) -> None:
    private_key, p256dh, auth = browser
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    body = webpush.encrypt(payload, p256dh=p256dh, auth=auth)
    assert len(body) == 86 + size + 17 <= 4096
    assert int.from_bytes(body[16:20], "big") == 4096 and body[20] == 65
    assert receiver.decrypt(body, private_key=private_key, auth=b64(auth)) == payload


def test_round_trip_every_size(browser) -> None:
    private_key, p256dh, auth = browser
    for size in range(webpush.MAX_PAYLOAD + 1):  # every size, 0…3993
        payload = b"\x00" * size  # zeros: the padding strip must stop at the delimiter
        body = webpush.encrypt(payload, p256dh=p256dh, auth=auth)
        assert receiver.decrypt(body, private_key=private_key, auth=b64(auth)) == payload


def test_each_message_has_a_fresh_key_and_salt(browser) -> None:
    _, p256dh, auth = browser
    bodies = [webpush.encrypt(b"same", p256dh=p256dh, auth=auth) for _ in range(20)]
    assert len({b[:16] for b in bodies}) == 20  # salts
    assert len({b[21:86] for b in bodies}) == 20  # ephemeral public keys (keyid)


def test_padded_browser_keys_accepted(browser) -> None:
    private_key, p256dh, auth = browser
    body = webpush.encrypt(b"x", p256dh=p256dh + "=", auth=auth + "==")
    assert receiver.decrypt(body, private_key=private_key, auth=b64(auth)) == b"x"


def test_payload_limit(browser) -> None:
    _, p256dh, auth = browser
    assert webpush.MAX_PAYLOAD == 3993
    with pytest.raises(ValueError, match="3993"):
        webpush.encrypt(b"x" * 3994, p256dh=p256dh, auth=auth)


def test_record_size_must_hold_the_record(browser) -> None:
    private_key, p256dh, auth = browser
    body = webpush.encrypt(b"x" * 100, p256dh=p256dh, auth=auth, record_size=118)
    assert receiver.decrypt(body, private_key=private_key, auth=b64(auth)) == b"x" * 100
    with pytest.raises(ValueError, match="record_size"):
        webpush.encrypt(b"x" * 100, p256dh=p256dh, auth=auth, record_size=117)


@pytest.mark.parametrize(
    "p256dh, auth",
    [
        ("not base64!", None),
        (enc(b"\x04" + b"\x01" * 64), None),  # not on the curve
        (enc(b"\x02" + b"\x01" * 32), None),  # compressed point
        (None, enc(b"x" * 15)),
        (None, "%%%"),
    ],
)
def test_bad_subscription_keys_refused(browser, p256dh, auth) -> None:
    _, good_p256dh, good_auth = browser
    with pytest.raises(ValueError):
        webpush.encrypt(b"x", p256dh=p256dh or good_p256dh, auth=auth or good_auth)


def test_tampered_ciphertext_refused(browser) -> None:
    private_key, p256dh, auth = browser
    body = bytearray(webpush.encrypt(b"hello", p256dh=p256dh, auth=auth))
    for position in (0, 86, len(body) - 1):  # salt, ciphertext, tag
        tampered = bytearray(body)
        tampered[position] ^= 0x01
        with pytest.raises(WebPushError) as refused:
            receiver.decrypt(bytes(tampered), private_key=private_key, auth=b64(auth))
        assert refused.value.reason == receiver.DECRYPTION_FAILED


def test_tampered_keyid_refused(browser) -> None:
    private_key, p256dh, auth = browser
    body = bytearray(webpush.encrypt(b"hello", p256dh=p256dh, auth=auth))
    body[40] ^= 0x01  # inside the keyid: no longer a point on the curve (or another one)
    with pytest.raises(WebPushError) as refused:
        receiver.decrypt(bytes(body), private_key=private_key, auth=b64(auth))
    assert refused.value.reason in (receiver.BAD_KEY, receiver.DECRYPTION_FAILED)


def test_wrong_auth_or_key_refused(browser) -> None:
    private_key, p256dh, auth = browser
    body = webpush.encrypt(b"hello", p256dh=p256dh, auth=auth)
    with pytest.raises(WebPushError, match=receiver.DECRYPTION_FAILED):
        receiver.decrypt(body, private_key=private_key, auth=b"\x00" * 16)
    other, _, _ = webpush.generate_subscription_keys()
    with pytest.raises(WebPushError, match=receiver.DECRYPTION_FAILED):
        receiver.decrypt(body, private_key=other, auth=b64(auth))


@pytest.mark.parametrize("length", [0, 10, 20, 21, 85, 86, 102])
def test_truncated_refused(browser, length: int) -> None:
    private_key, p256dh, auth = browser
    body = webpush.encrypt(b"", p256dh=p256dh, auth=auth)
    assert len(body) == 103
    with pytest.raises(WebPushError) as refused:
        receiver.decrypt(body[:length], private_key=private_key, auth=b64(auth))
    assert refused.value.reason == receiver.TRUNCATED


def test_malformed_header_refused(browser) -> None:
    private_key, p256dh, auth = browser
    body = webpush.encrypt(b"hello", p256dh=p256dh, auth=auth)
    wrong_idlen = body[:20] + b"\x20" + body[21:]  # 32: a compressed point
    with pytest.raises(WebPushError, match=receiver.BAD_HEADER):
        receiver.decrypt(wrong_idlen, private_key=private_key, auth=b64(auth))
    tiny_rs = body[:16] + (17).to_bytes(4, "big") + body[20:]
    with pytest.raises(WebPushError, match=receiver.BAD_RECORD_SIZE):
        receiver.decrypt(tiny_rs, private_key=private_key, auth=b64(auth))
    two_records = body[:16] + (18).to_bytes(4, "big") + body[20:]  # 22 octets > rs 18
    with pytest.raises(WebPushError, match=receiver.MULTIPLE_RECORDS):
        receiver.decrypt(two_records, private_key=private_key, auth=b64(auth))


def test_padding_delimiter_checked(browser) -> None:
    """RFC 8291 §4: a delimiter other than 0x02 MUST cause the message to be discarded."""
    private_key, p256dh, auth = browser
    server_key = ec.generate_private_key(ec.SECP256R1())
    salt = b"s" * 16
    ua_public = b64(p256dh)
    body = webpush._encrypt(b"hello", ua_public, b64(auth), salt=salt, server_key=server_key)
    # Re-encrypt by hand with delimiter 0x01 (a non-last record) and with no delimiter at all.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ecdh = server_key.exchange(
        ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public)
    )
    cek, nonce = webpush._derive(ecdh, b64(auth), ua_public, point(server_key), salt)
    for record in (b"hello\x01", b"hello", b"\x00\x00\x00"):
        forged = body[:86] + AESGCM(cek).encrypt(nonce, record, None)
        with pytest.raises(WebPushError, match=receiver.BAD_PADDING):
            receiver.decrypt(forged, private_key=private_key, auth=b64(auth))
    padded = body[:86] + AESGCM(cek).encrypt(nonce, b"hello\x02\x00\x00\x00", None)
    assert receiver.decrypt(padded, private_key=private_key, auth=b64(auth)) == b"hello"


# --- VAPID ------------------------------------------------------------------------------------

ENDPOINT = "https://push.example.net/p/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV"
AUDIENCE = "https://push.example.net"
NOW = 1_700_000_000


@pytest.fixture(scope="module")
def vapid_pem() -> str:
    return webpush.generate_vapid_key()


@pytest.fixture
def vapid(vapid_pem: str) -> webpush.Vapid:
    return webpush.Vapid(vapid_pem, "mailto:push@buurtpeil.example")


def split_header(value: str) -> tuple[str, str]:
    match = re.fullmatch(r"vapid t=([A-Za-z0-9_.-]+), k=([A-Za-z0-9_-]+)", value)
    assert match, value
    return match.group(1), match.group(2)


def test_vapid_header_shape_and_claims(vapid: webpush.Vapid, vapid_pem: str) -> None:
    headers = vapid.headers(ENDPOINT, now=NOW)
    assert list(headers) == ["Authorization"]
    token, key = split_header(headers["Authorization"])
    assert key == webpush.vapid_public_key_b64(vapid_pem) == vapid.public_key_b64
    assert len(b64(key)) == 65 and b64(key)[0] == 4
    header_segment, claims_segment, signature_segment = token.split(".")
    assert json.loads(b64(header_segment)) == {"typ": "JWT", "alg": "ES256"}
    assert json.loads(b64(claims_segment)) == {
        "aud": AUDIENCE,
        "exp": NOW + 12 * 3600,
        "sub": "mailto:push@buurtpeil.example",
    }
    signature = b64(signature_segment)
    assert len(signature) == 64  # raw r || s, not DER
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64(key))
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public_key.verify(der, f"{header_segment}.{claims_segment}".encode(), ec.ECDSA(hashes.SHA256()))


def test_vapid_verifies(vapid: webpush.Vapid) -> None:
    header = vapid.headers(ENDPOINT, now=NOW)["Authorization"]
    key = receiver.verify_vapid(header, expected_audience=AUDIENCE, now=NOW)
    assert key == vapid.public_key_b64
    assert receiver.verify_vapid(header, expected_audience=AUDIENCE, now=NOW + 12 * 3600 - 1)
    assert receiver.vapid_expiry(header) == NOW + 12 * 3600


def test_vapid_verifies_pyjwt_token(vapid_pem: str) -> None:
    """Interoperability: a token PyJWT makes (independent ES256 code) verifies too."""
    import jwt

    key = serialization.load_pem_private_key(vapid_pem.encode(), None)
    token = jwt.encode(
        {"aud": AUDIENCE, "exp": NOW + 600, "sub": "https://buurtpeil.example"},
        key,
        algorithm="ES256",
    )
    k = webpush.vapid_public_key_b64(vapid_pem)
    assert receiver.verify_vapid(f"vapid t={token}, k={k}", expected_audience=AUDIENCE, now=NOW)
    assert receiver.verify_vapid(f'Vapid t="{token}",k="{k}"', expected_audience=AUDIENCE, now=NOW)


def test_rfc8292_example_token_is_parsed_and_checked() -> None:
    """RFC 8292 §2.4, Figure 1: verifies with its key; aud and exp are as Figure 2 says."""
    token = re.sub(
        r"\s+",
        "",
        """eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3
        B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1ha
        Wx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_H
        LGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA""",
    )
    key = re.sub(
        r"\s+",
        "",
        """BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dR
        uU_RCPCfA5aq9ojSwk5Y2EmClBPs""",
    )
    header = f"vapid t={token}, k={key}"
    valid_at = 1453523768 - 3600
    assert receiver.verify_vapid(header, expected_audience=AUDIENCE, now=valid_at) == key
    with pytest.raises(WebPushError, match=receiver.EXPIRED):
        receiver.verify_vapid(header, expected_audience=AUDIENCE, now=1453523768)


@pytest.mark.parametrize(
    "audience", ["https://push.example.net:8443", "http://push.example.net", "https://evil.example"]
)
def test_vapid_wrong_audience_refused(vapid: webpush.Vapid, audience: str) -> None:
    header = vapid.headers(ENDPOINT, now=NOW)["Authorization"]
    with pytest.raises(WebPushError) as refused:
        receiver.verify_vapid(header, expected_audience=audience, now=NOW)
    assert refused.value.reason == receiver.WRONG_AUDIENCE


def test_vapid_expired_refused(vapid: webpush.Vapid) -> None:
    header = vapid.headers(ENDPOINT, now=NOW)["Authorization"]
    for later in (NOW + 12 * 3600, NOW + 30 * 86400):
        with pytest.raises(WebPushError, match=receiver.EXPIRED):
            receiver.verify_vapid(header, expected_audience=AUDIENCE, now=later)


def test_vapid_expiry_more_than_24h_ahead_refused(vapid_pem: str) -> None:
    header = webpush.Vapid(vapid_pem, "mailto:a@b.example", token_ttl=24 * 3600).headers(
        ENDPOINT, now=NOW
    )["Authorization"]
    assert receiver.verify_vapid(header, expected_audience=AUDIENCE, now=NOW)
    with pytest.raises(WebPushError, match=receiver.EXPIRY_TOO_FAR):
        receiver.verify_vapid(header, expected_audience=AUDIENCE, now=NOW - 1)


def test_vapid_signed_by_another_key_refused(vapid: webpush.Vapid) -> None:
    token, _ = split_header(vapid.headers(ENDPOINT, now=NOW)["Authorization"])
    other = webpush.vapid_public_key_b64(webpush.generate_vapid_key())
    with pytest.raises(WebPushError, match=receiver.BAD_SIGNATURE):
        receiver.verify_vapid(f"vapid t={token}, k={other}", expected_audience=AUDIENCE, now=NOW)


def test_vapid_tampered_claims_refused(vapid: webpush.Vapid) -> None:
    token, key = split_header(vapid.headers(ENDPOINT, now=NOW)["Authorization"])
    header_segment, _, signature_segment = token.split(".")
    claims = enc(json.dumps({"aud": AUDIENCE, "exp": NOW + 999, "sub": "mailto:x@y"}).encode())
    forged = f"vapid t={header_segment}.{claims}.{signature_segment}, k={key}"
    with pytest.raises(WebPushError, match=receiver.BAD_SIGNATURE):
        receiver.verify_vapid(forged, expected_audience=AUDIENCE, now=NOW)


def test_vapid_der_signature_refused(vapid_pem: str) -> None:
    key = serialization.load_pem_private_key(vapid_pem.encode(), None)
    header_segment = enc(b'{"typ":"JWT","alg":"ES256"}')
    claims = enc(json.dumps({"aud": AUDIENCE, "exp": NOW + 60, "sub": "mailto:a@b"}).encode())
    der = key.sign(f"{header_segment}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    k = webpush.vapid_public_key_b64(vapid_pem)
    with pytest.raises(WebPushError, match=receiver.BAD_SIGNATURE):
        receiver.verify_vapid(
            f"vapid t={header_segment}.{claims}.{enc(der)}, k={k}",
            expected_audience=AUDIENCE,
            now=NOW,
        )
    r, s = decode_dss_signature(der)  # the same signature as r || s is fine
    raw = enc(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    assert receiver.verify_vapid(
        f"vapid t={header_segment}.{claims}.{raw}, k={k}", expected_audience=AUDIENCE, now=NOW
    )


def test_vapid_other_algorithms_refused(vapid: webpush.Vapid) -> None:
    token, key = split_header(vapid.headers(ENDPOINT, now=NOW)["Authorization"])
    _, claims, signature = token.split(".")
    for alg in ("none", "HS256", "ES384", "EdDSA"):
        header_segment = enc(json.dumps({"typ": "JWT", "alg": alg}).encode())
        with pytest.raises(WebPushError, match=receiver.WRONG_ALGORITHM):
            receiver.verify_vapid(
                f"vapid t={header_segment}.{claims}.{signature}, k={key}",
                expected_audience=AUDIENCE,
                now=NOW,
            )


def test_vapid_missing_subject_refused(vapid_pem: str) -> None:
    key = serialization.load_pem_private_key(vapid_pem.encode(), None)
    k = webpush.vapid_public_key_b64(vapid_pem)
    import jwt

    for claims in (
        {"aud": AUDIENCE, "exp": NOW + 60},
        {"aud": AUDIENCE, "exp": NOW + 60, "sub": "x"},
    ):
        token = jwt.encode(claims, key, algorithm="ES256")
        with pytest.raises(WebPushError, match=receiver.MISSING_SUBJECT):
            receiver.verify_vapid(f"vapid t={token}, k={k}", expected_audience=AUDIENCE, now=NOW)


@pytest.mark.parametrize(
    "value, reason",
    [
        (None, receiver.MISSING_AUTHORIZATION),
        ("", receiver.MISSING_AUTHORIZATION),
        ("Bearer abc.def.ghi", receiver.MISSING_AUTHORIZATION),
        ("WebPush abc.def.ghi", receiver.MISSING_AUTHORIZATION),  # the pre-RFC draft scheme
        ("vapid", receiver.MALFORMED_AUTHORIZATION),
        ("vapid t=abc.def.ghi", receiver.MALFORMED_AUTHORIZATION),
        ("vapid k=BA1H", receiver.MALFORMED_AUTHORIZATION),
        ("vapid t=a, t=b, k=c", receiver.MALFORMED_AUTHORIZATION),
        ("vapid t=x" + "y" * 5000, receiver.MALFORMED_AUTHORIZATION),
        ("vapid t=a.b.c, k=not!base64", receiver.BAD_KEY),
        ("vapid t=a.b.c, k=" + enc(b"\x04" + b"\x01" * 64), receiver.BAD_KEY),
        ("vapid t=a.b, k={k}", receiver.MALFORMED_AUTHORIZATION),
        ("vapid t=%%%.b.c, k={k}", receiver.MALFORMED_AUTHORIZATION),
        ("vapid t=" + enc(b"[1]") + ".b.c, k={k}", receiver.MALFORMED_AUTHORIZATION),
    ],
)
def test_vapid_malformed_refused(vapid: webpush.Vapid, value: str | None, reason: str) -> None:
    if value is not None:
        value = value.replace("{k}", vapid.public_key_b64)
    with pytest.raises(WebPushError) as refused:
        receiver.verify_vapid(value, expected_audience=AUDIENCE, now=NOW)
    assert refused.value.reason == reason


def test_vapid_token_cached_per_origin_and_renewed(vapid: webpush.Vapid) -> None:
    first = vapid.headers(ENDPOINT, now=NOW)
    assert vapid.signed == 1
    # Another push resource on the same push service: the same token.
    assert vapid.headers("https://push.example.net/p/other", now=NOW + 60) == first
    # Still more than an hour left (11 h in): cached.
    assert vapid.headers(ENDPOINT, now=NOW + 11 * 3600) == first
    assert vapid.signed == 1
    # Another push service origin: its own token.
    other = vapid.headers("https://fcm.googleapis.com/fcm/send/abc", now=NOW)
    assert other != first and vapid.signed == 2
    token, _ = split_header(other["Authorization"])
    assert json.loads(b64(token.split(".")[1]))["aud"] == "https://fcm.googleapis.com"
    # Less than an hour left: renewed, with a new expiry.
    renewed = vapid.headers(ENDPOINT, now=NOW + 11 * 3600 + 1)
    assert renewed != first and vapid.signed == 3
    token, _ = split_header(renewed["Authorization"])
    assert json.loads(b64(token.split(".")[1]))["exp"] == NOW + 23 * 3600 + 1
    assert receiver.verify_vapid(
        renewed["Authorization"], expected_audience=AUDIENCE, now=NOW + 12 * 3600 + 10
    )


def test_vapid_cache_is_bounded(vapid: webpush.Vapid) -> None:
    for i in range(webpush._VAPID_CACHE_SIZE + 50):
        vapid.headers(f"https://push{i}.example/p/x", now=NOW)
    assert len(vapid._cache) <= webpush._VAPID_CACHE_SIZE


@pytest.mark.parametrize(
    "endpoint, origin",
    [
        ("https://push.example.net/p/x", "https://push.example.net"),
        ("https://PUSH.Example.net:443/p/x", "https://push.example.net"),
        ("https://push.example.net:8443/p/x?q=1", "https://push.example.net:8443"),
        ("http://127.0.0.1:8089/push/abc", "http://127.0.0.1:8089"),
        ("http://localhost:80/push/abc", "http://localhost"),
        ("https://[::1]:9000/push/abc", "https://[::1]:9000"),
    ],
)
def test_origin_of(endpoint: str, origin: str) -> None:
    assert webpush.origin_of(endpoint) == origin


@pytest.mark.parametrize("endpoint", ["ftp://x/y", "/push/abc", "https:///x", "http://x:99999/"])
def test_origin_of_refuses_non_http(endpoint: str) -> None:
    with pytest.raises(ValueError):
        webpush.origin_of(endpoint)


def test_vapid_construction_checks(vapid_pem: str) -> None:
    with pytest.raises(ValueError, match="subject"):
        webpush.Vapid(vapid_pem, "push@buurtpeil.example")
    with pytest.raises(ValueError, match="token_ttl"):
        webpush.Vapid(vapid_pem, "mailto:a@b", token_ttl=25 * 3600)
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="P-256"):
        webpush.Vapid(p384, "mailto:a@b")
    key = serialization.load_pem_private_key(vapid_pem.encode(), None)
    assert webpush.Vapid(key, "https://buurtpeil.example").public_key_b64 == (
        webpush.vapid_public_key_b64(key)
    )


# --- Topic ------------------------------------------------------------------------------------


def test_topic_is_deterministic_and_valid() -> None:
    topic = webpush.topic_for("poll-123", "invitation")
    assert topic == webpush.topic_for("poll-123", "invitation")
    assert len(topic) == 32 and webpush.TOPIC_PATTERN.fullmatch(topic)
    assert topic == enc(hashlib.sha256(b"invitation:poll-123").digest()[:24])
    assert topic != webpush.topic_for("poll-123", "feedback")
    assert topic != webpush.topic_for("poll-124", "invitation")
    assert "poll" not in topic


def test_topic_format_for_many_inputs() -> None:
    topics = {webpush.topic_for(f"{i:08d}-ÿ/é", "reminder") for i in range(2000)}
    assert len(topics) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", t) for t in topics)


def test_topic_refuses_empty() -> None:
    with pytest.raises(ValueError):
        webpush.topic_for("", "invitation")
