"""The receiving side of Web Push, for the fake push service, the tests and the benchmarks:
what a user agent and a push service do with what notify sends.

- ``decrypt``: the user agent's side of RFC 8291 (aes128gcm, one record), refusing what the
  RFC says "MUST be discarded";
- ``verify_vapid``: the push service's check of an RFC 8292 ``Authorization: vapid t=…, k=…``
  header; ``vapid_expiry`` for a push service that caches the credentials it verified.

Production code only sends, so this lives with the fakes that use it; the key derivation and
the sizes are the sender's (services/notify/webpush.py), so both sides cannot drift apart.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.notify.webpush import (
    _CURVE,
    _ECDH,
    _ES256,
    _LAST_RECORD,
    AUTH_SECRET_LENGTH,
    HEADER_LENGTH,
    POINT_LENGTH,
    SALT_LENGTH,
    TAG_LENGTH,
    VAPID_MAX_TTL,
    Now,
    _b64decode,
    _derive,
    _timestamp,
)

__all__ = [
    "REASONS",
    "WebPushError",
    "decrypt",
    "vapid_expiry",
    "verify_vapid",
]

MIN_RECORD_SIZE = 18  # RFC 8188 §2.1: rs below 18 is invalid (a delimiter and the tag)
MAX_AUTHORIZATION_LENGTH = 4096

# --- errors -----------------------------------------------------------------------------------

# Reasons of WebPushError: short codes for logs, metrics and the fake push service's answers.
TRUNCATED = "truncated"
BAD_HEADER = "bad_header"
BAD_RECORD_SIZE = "bad_record_size"
BAD_KEY = "bad_key"
MULTIPLE_RECORDS = "multiple_records"
DECRYPTION_FAILED = "decryption_failed"
BAD_PADDING = "bad_padding"
MISSING_AUTHORIZATION = "missing_authorization"  # no header, or another scheme: 401
MALFORMED_AUTHORIZATION = "malformed_authorization"
WRONG_ALGORITHM = "wrong_algorithm"
BAD_SIGNATURE = "bad_signature"
WRONG_AUDIENCE = "wrong_audience"
EXPIRED = "expired"
EXPIRY_TOO_FAR = "expiry_too_far"
MISSING_SUBJECT = "missing_subject"
REASONS = (
    TRUNCATED,
    BAD_HEADER,
    BAD_RECORD_SIZE,
    BAD_KEY,
    MULTIPLE_RECORDS,
    DECRYPTION_FAILED,
    BAD_PADDING,
    MISSING_AUTHORIZATION,
    MALFORMED_AUTHORIZATION,
    WRONG_ALGORITHM,
    BAD_SIGNATURE,
    WRONG_AUDIENCE,
    EXPIRED,
    EXPIRY_TOO_FAR,
    MISSING_SUBJECT,
)


class WebPushError(Exception):
    """A push message or a VAPID credential was refused; ``reason`` is one of REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"web push refused: {self.reason}"


# --- message decryption ---------------------------------------------------------------------


def decrypt(body: bytes, *, private_key: ec.EllipticCurvePrivateKey, auth: bytes) -> bytes:
    """The user agent's side: the plaintext of an aes128gcm push message body.

    ``private_key`` is the subscription's P-256 key and ``auth`` its 16-octet secret (raw
    bytes). WebPushError for a truncated or malformed header, a keyid that is not a P-256
    point, more than one record, a failed authentication tag, or a padding delimiter other
    than 0x02 (RFC 8291 §4: such a message "MUST be discarded").
    """
    body = bytes(body)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP256R1
    ):
        raise TypeError("private_key must be a P-256 EllipticCurvePrivateKey")
    auth_secret = bytes(auth)
    if len(auth_secret) != AUTH_SECRET_LENGTH:
        raise ValueError(f"auth must be {AUTH_SECRET_LENGTH} octets")
    if len(body) < SALT_LENGTH + 5:
        raise WebPushError(TRUNCATED)
    salt = body[:SALT_LENGTH]
    record_size = int.from_bytes(body[16:20], "big")
    idlen = body[20]
    if idlen != POINT_LENGTH:  # RFC 8291 §4: the keyid is the 65-octet point, nothing else
        raise WebPushError(BAD_HEADER)
    if record_size < MIN_RECORD_SIZE:
        raise WebPushError(BAD_RECORD_SIZE)
    if len(body) < HEADER_LENGTH + 1 + TAG_LENGTH:
        raise WebPushError(TRUNCATED)
    as_public = body[21:HEADER_LENGTH]
    ciphertext = body[HEADER_LENGTH:]
    if len(ciphertext) > record_size:  # would be a second record: not in Web Push
        raise WebPushError(MULTIPLE_RECORDS)
    try:
        as_key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, as_public)
    except ValueError:
        raise WebPushError(BAD_KEY) from None
    ua_public = private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    ecdh_secret = private_key.exchange(_ECDH, as_key)
    cek, nonce = _derive(ecdh_secret, auth_secret, ua_public, as_public, salt)
    try:
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
    except InvalidTag:
        raise WebPushError(DECRYPTION_FAILED) from None
    unpadded = padded.rstrip(b"\x00")
    if not unpadded.endswith(_LAST_RECORD):
        raise WebPushError(BAD_PADDING)
    return unpadded[:-1]


# --- VAPID verification ---------------------------------------------------------------------


def verify_vapid(authorization: str | None, *, expected_audience: str, now: Now = None) -> str:
    """The push service's check of ``Authorization: vapid t=…, k=…``; returns ``k``.

    Refused (WebPushError) per RFC 8292 §4.2 when the token or key is missing, the ES256
    signature does not verify with ``k``, the time is past ``exp`` or ``exp`` lies more than
    24 hours ahead, or ``aud`` is not ``expected_audience`` (the push resource's origin); and
    when ``sub`` is missing (the RFC says SHOULD; we, and some push services, require it).
    Reason MISSING_AUTHORIZATION (no header, or another scheme) maps to 401; the rest to 403.
    """
    if not authorization or not isinstance(authorization, str):
        raise WebPushError(MISSING_AUTHORIZATION)
    if len(authorization) > MAX_AUTHORIZATION_LENGTH or not authorization.isascii():
        raise WebPushError(MALFORMED_AUTHORIZATION)
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "vapid":  # auth-scheme is case-insensitive (RFC 7235 §2.1)
        raise WebPushError(MISSING_AUTHORIZATION)
    params = _auth_params(rest)
    token, key_b64 = params.get("t"), params.get("k")
    if not token or not key_b64:
        raise WebPushError(MALFORMED_AUTHORIZATION)
    try:
        point = _b64decode(key_b64)
        if len(point) != POINT_LENGTH or point[0] != 0x04:
            raise ValueError
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, point)
    except ValueError:
        raise WebPushError(BAD_KEY) from None

    segments = token.split(".")
    if len(segments) != 3:
        raise WebPushError(MALFORMED_AUTHORIZATION)
    header_segment, claims_segment, signature_segment = segments
    header = _json_segment(header_segment)
    if header.get("alg") != "ES256":
        raise WebPushError(WRONG_ALGORITHM)
    if str(header.get("typ", "JWT")).upper() != "JWT" or "crit" in header:
        raise WebPushError(MALFORMED_AUTHORIZATION)
    try:
        signature = _b64decode(signature_segment)
    except ValueError:
        raise WebPushError(MALFORMED_AUTHORIZATION) from None
    if len(signature) != 64:  # raw r || s; a DER signature is refused
        raise WebPushError(BAD_SIGNATURE)
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public_key.verify(der, f"{header_segment}.{claims_segment}".encode("ascii"), _ES256)
    except InvalidSignature:
        raise WebPushError(BAD_SIGNATURE) from None

    claims = _json_segment(claims_segment)  # only now: it is authentic
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or expected_audience not in audiences:
        raise WebPushError(WRONG_AUDIENCE)
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise WebPushError(MALFORMED_AUTHORIZATION)
    current = _timestamp(now)
    if current >= exp:
        raise WebPushError(EXPIRED)
    if exp - current > VAPID_MAX_TTL:
        raise WebPushError(EXPIRY_TOO_FAR)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.startswith(("mailto:", "https:")):
        raise WebPushError(MISSING_SUBJECT)
    return key_b64


def vapid_expiry(authorization: str) -> float | None:
    """The ``exp`` of the token in an Authorization value, unverified, or None.

    For a push service that caches verified credentials (RFC 8292 §5): look the value up, and
    re-check only the time against this. Never use it to decide anything without verifying.
    """
    try:
        _, _, rest = authorization.strip().partition(" ")
        claims = _json_segment(_auth_params(rest)["t"].split(".")[1])
        exp = claims["exp"]
    except (WebPushError, KeyError, IndexError, AttributeError):
        return None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def _auth_params(rest: str) -> dict[str, str]:
    """auth-param list (RFC 7235 §2.1): name=value pairs, values a token or quoted-string.
    Unknown parameters are kept (and ignored by the caller); a repeated name is malformed."""
    params: dict[str, str] = {}
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not sep or not name or name in params:
            raise WebPushError(MALFORMED_AUTHORIZATION)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[name] = value
    return params


def _json_segment(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(segment).decode("utf-8"))
    except (ValueError, RecursionError):
        raise WebPushError(MALFORMED_AUTHORIZATION) from None
    if not isinstance(value, dict):
        raise WebPushError(MALFORMED_AUTHORIZATION)
    return value
