"""Web Push building blocks as pure functions: the application server's side.

- Message encryption, RFC 8291 on the RFC 8188 "aes128gcm" content coding: ``encrypt``.
  ``generate_subscription_keys`` makes what a browser would (p256dh and auth), for tests,
  benchmarks and seeds.
- Voluntary Application Server Identification, RFC 8292: ``Vapid`` signs the ES256 JWT and
  builds the ``Authorization: vapid t=…, k=…`` header, cached per push-service origin and
  renewed before it expires.
- ``topic_for``: an RFC 8030 §5.4 Topic, so that a resend replaces rather than duplicates.

The receiving side (decryption as a user agent does it, the push service's VAPID check) is
only ever run by the fake push service and the tests: it lives with them, in
tests/fakes/webpush_receiver.py, and builds on ``_derive`` and the sizes here.

Only ``cryptography`` is used; the JWS framing is a few lines, with the algorithm fixed in code.

Encryption, step by step (RFC 8291 §3.3–3.4, RFC 8188 §2.2–2.3), with HKDF-SHA-256 written as
its two HMAC steps (every output here is at most one hash long, so Expand is one HMAC):

    ecdh_secret = ECDH(as_private, ua_public)
    PRK_key     = HMAC(auth_secret, ecdh_secret)
    IKM         = HMAC(PRK_key, "WebPush: info" || 0x00 || ua_public || as_public || 0x01)
    PRK         = HMAC(salt, IKM)
    CEK         = HMAC(PRK, "Content-Encoding: aes128gcm" || 0x00 || 0x01)[0:16]
    NONCE       = HMAC(PRK, "Content-Encoding: nonce" || 0x00 || 0x01)[0:12]
    body        = salt(16) || rs(uint32) || idlen(1) = 65 || as_public(65)
                  || AES-128-GCM(CEK, NONCE, plaintext || 0x02)

One record only (RFC 8291 §4: "An application server MUST encrypt a push message with a single
record"), so the record sequence number is 0 and NONCE is used as derived.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "MAX_PAYLOAD",
    "RECORD_SIZE",
    "Vapid",
    "encrypt",
    "generate_subscription_keys",
    "generate_vapid_key",
    "origin_of",
    "topic_for",
    "vapid_public_key_b64",
]

# --- sizes (RFC 8291 §4, RFC 8188 §2.1) -------------------------------------------------------

SALT_LENGTH = 16
AUTH_SECRET_LENGTH = 16  # RFC 8291 §3.2: "a hard-to-guess sequence of 16 octets"
POINT_LENGTH = 65  # uncompressed P-256 point: 0x04 || x(32) || y(32)
HEADER_LENGTH = SALT_LENGTH + 4 + 1 + POINT_LENGTH  # 86
TAG_LENGTH = 16
RECORD_SIZE = 4096
# "A push service is not required to support more than 4096 octets of payload body. Absent
# header (86 octets), padding (minimum 1 octet), and expansion for AEAD_AES_128_GCM (16
# octets), this equates to, at most, 3993 octets of plaintext." (RFC 8291 §4)
MAX_BODY = 4096
MAX_PAYLOAD = MAX_BODY - HEADER_LENGTH - 1 - TAG_LENGTH  # 3993

_KEY_INFO = b"WebPush: info\x00"
_CEK_INFO = b"Content-Encoding: aes128gcm\x00\x01"  # with HKDF-Expand's counter octet
_NONCE_INFO = b"Content-Encoding: nonce\x00\x01"
_LAST_RECORD = b"\x02"  # padding delimiter of the last (here: only) record

_CURVE = ec.SECP256R1()
_ECDH = ec.ECDH()
_ES256 = ec.ECDSA(hashes.SHA256())

# --- VAPID (RFC 8292) -------------------------------------------------------------------------

VAPID_TOKEN_TTL = 12 * 3600  # seconds; what we sign (the RFC allows at most 24 h)
VAPID_RENEW_BEFORE = 3600  # renew a cached token when less than this much validity is left
VAPID_MAX_TTL = 24 * 3600  # RFC 8292 §2: exp "MUST NOT be more than 24 hours from" the request
_VAPID_CACHE_SIZE = 256  # origins; real deployments see a handful of push services

# --- Topic (RFC 8030 §5.4) --------------------------------------------------------------------

TOPIC_MAX_LENGTH = 32
TOPIC_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")  # use with fullmatch

Now = float | int | datetime | None

# --- message encryption -----------------------------------------------------------------------


def encrypt(payload: bytes, *, p256dh: str, auth: str, record_size: int = RECORD_SIZE) -> bytes:
    """The aes128gcm body of a push message for one subscription (RFC 8291, one record).

    ``p256dh`` and ``auth`` are the subscription's keys as the browser gives them (base64url,
    padding tolerated): the user agent's uncompressed P-256 point and its 16-octet secret.
    ValueError for a payload over MAX_PAYLOAD (3993) octets, bad subscription keys, or a
    ``record_size`` that does not exceed the payload + delimiter + tag (RFC 8291 §4).

    Every call makes a fresh ephemeral ECDH key pair and a random salt, and there is no way to
    pass either in. RFC 8291 §3.1: "When sending a push message, the application server also
    generates a new ECDH key pair"; §2: "The ECDH key pair can be discarded after encrypting
    the message." (The RFC says it as a description, not as a capitalised MUST; we follow it.)
    Reusing the key pair would save only the key generation, ~30 µs of the 170–250 µs a
    message costs here: the ECDH, the main cost, depends on the subscription's key and is
    needed anyway. It would make the messages to a subscription linkable by their keyid, and
    a leaked long-lived key (with the auth secrets the server holds) would open every message
    encrypted under it instead of one.
    """
    plaintext = bytes(payload)
    ua_public = _subscription_point(p256dh)
    auth_secret = _subscription_auth(auth)
    return _encrypt(
        plaintext,
        ua_public,
        auth_secret,
        salt=os.urandom(SALT_LENGTH),
        server_key=ec.generate_private_key(_CURVE),
        record_size=record_size,
    )


def _encrypt(
    plaintext: bytes,
    ua_public: bytes,
    auth_secret: bytes,
    *,
    salt: bytes,
    server_key: ec.EllipticCurvePrivateKey,
    record_size: int = RECORD_SIZE,
) -> bytes:
    """``encrypt`` with the salt and the ephemeral key given: for test vectors only.

    Calling this twice with the same salt and key reuses an AES-GCM key and nonce, which gives
    away the plaintexts; production code calls ``encrypt``.
    """
    if len(plaintext) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(plaintext)} octets exceeds {MAX_PAYLOAD}")
    if isinstance(record_size, bool) or not isinstance(record_size, int):
        raise ValueError("record_size must be an integer")
    if not len(plaintext) + 1 + TAG_LENGTH < record_size <= 0xFFFFFFFF:
        raise ValueError("record_size must exceed payload + delimiter (1) + tag (16) octets")
    if len(salt) != SALT_LENGTH:
        raise ValueError(f"salt must be {SALT_LENGTH} octets")
    try:
        ua_key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, ua_public)  # on the curve?
    except ValueError:
        raise ValueError("p256dh is not a point on P-256") from None
    as_public = server_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    ecdh_secret = server_key.exchange(_ECDH, ua_key)
    cek, nonce = _derive(ecdh_secret, auth_secret, ua_public, as_public, salt)
    ciphertext = AESGCM(cek).encrypt(nonce, plaintext + _LAST_RECORD, None)
    return b"".join(
        (salt, record_size.to_bytes(4, "big"), bytes((POINT_LENGTH,)), as_public, ciphertext)
    )


def _derive(
    ecdh_secret: bytes, auth_secret: bytes, ua_public: bytes, as_public: bytes, salt: bytes
) -> tuple[bytes, bytes]:
    """(CEK, NONCE) per RFC 8291 §3.4 and RFC 8188 §2.2–2.3 (see the module docstring)."""
    prk_key = hmac.digest(auth_secret, ecdh_secret, "sha256")
    ikm = hmac.digest(prk_key, _KEY_INFO + ua_public + as_public + b"\x01", "sha256")
    prk = hmac.digest(salt, ikm, "sha256")
    cek = hmac.digest(prk, _CEK_INFO, "sha256")[:16]
    nonce = hmac.digest(prk, _NONCE_INFO, "sha256")[:12]
    return cek, nonce


def generate_subscription_keys() -> tuple[ec.EllipticCurvePrivateKey, str, str]:
    """What a browser makes for a push subscription: (private key, p256dh, auth) with the
    public point and the 16-octet secret in unpadded base64url. For tests, benchmarks, seeds."""
    private_key = ec.generate_private_key(_CURVE)
    return private_key, _public_point_b64(private_key), _b64encode(os.urandom(AUTH_SECRET_LENGTH))


def _subscription_point(p256dh: str) -> bytes:
    try:
        point = _b64decode_lenient(p256dh)
        if len(point) != POINT_LENGTH or point[0] != 0x04:
            raise ValueError
    except (ValueError, TypeError):
        raise ValueError("p256dh is not an uncompressed P-256 point in base64url") from None
    return point


def _subscription_auth(auth: str) -> bytes:
    try:
        secret = _b64decode_lenient(auth)
    except (ValueError, TypeError):
        raise ValueError("auth is not base64url") from None
    if len(secret) != AUTH_SECRET_LENGTH:
        raise ValueError(f"auth must decode to {AUTH_SECRET_LENGTH} octets")
    return secret


# --- VAPID (RFC 8292) -------------------------------------------------------------------------


def generate_vapid_key() -> str:
    """A new P-256 private key as unencrypted PKCS#8 PEM: the application server's VAPID key."""
    return (
        ec.generate_private_key(_CURVE)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )


def vapid_public_key_b64(private_key: ec.EllipticCurvePrivateKey | str | bytes) -> str:
    """The applicationServerKey the app subscribes with: the uncompressed public point in
    unpadded base64url. Takes the key object or its PEM."""
    return _public_point_b64(_load_vapid_key(private_key))


def origin_of(url: str) -> str:
    """The serialisation of a URL's origin, as RFC 8292 §2 wants it in ``aud`` (RFC 6454 §6.1):
    scheme://host[:port], lower case, the port only when not the scheme's default. (Push
    services have ASCII host names, for which the Unicode and ASCII forms agree.) ValueError
    for anything but an http(s) URL with a host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("not a URL") from None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host:
        raise ValueError("an endpoint must be an http(s) URL with a host")
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


class Vapid:
    """An application server's VAPID identity: P-256 key + contact ``subject``.

    ``headers(endpoint)`` gives ``{"Authorization": "vapid t=<jwt>, k=<key>"}`` for a push
    resource. The JWT (ES256; aud = the endpoint's origin, exp = now + 12 h, sub) is cached per
    origin and signed anew when less than an hour of validity is left, so a fan-out to one push
    service signs about twice a day instead of once per message (RFC 8292 §5 encourages the
    reuse: it lets the push service cache its signature check too).

    Safe to share between threads: the cache is a dict whose reads and writes are atomic; two
    threads that miss at once both sign, and either token is valid.
    """

    def __init__(
        self,
        private_key: str | bytes | ec.EllipticCurvePrivateKey,
        subject: str,
        *,
        token_ttl: int = VAPID_TOKEN_TTL,
        renew_before: int = VAPID_RENEW_BEFORE,
    ) -> None:
        if not isinstance(subject, str) or not subject.startswith(("mailto:", "https:")):
            raise ValueError("subject must be a mailto: or https: URI (RFC 8292 §2.1)")
        if not 0 < token_ttl <= VAPID_MAX_TTL:
            raise ValueError(f"token_ttl must be in (0, {VAPID_MAX_TTL}] seconds")
        if not 0 <= renew_before < token_ttl:
            raise ValueError("renew_before must be below token_ttl")
        self._key = _load_vapid_key(private_key)
        self.subject = subject
        self.public_key_b64 = _public_point_b64(self._key)
        self.token_ttl = token_ttl
        self.renew_before = renew_before
        self._cache: dict[str, tuple[str, int]] = {}  # origin → (header value, exp)
        self.signed = 0  # number of tokens signed: observable for tests and metrics

    def headers(self, endpoint: str, now: Now = None) -> dict[str, str]:
        """The Authorization header for a push to ``endpoint`` (ValueError if not http(s))."""
        audience = origin_of(endpoint)
        current = _timestamp(now)
        cached = self._cache.get(audience)
        if cached is None or cached[1] - current < self.renew_before:
            exp = int(current) + self.token_ttl
            token = self._sign(audience, exp)
            cached = (f"vapid t={token}, k={self.public_key_b64}", exp)
            self._remember(audience, cached, current)
        return {"Authorization": cached[0]}

    def _sign(self, audience: str, exp: int) -> str:
        claims = {"aud": audience, "exp": exp, "sub": self.subject}
        signing_input = _JWT_HEADER + "." + _b64encode(_compact_json(claims))
        r, s = decode_dss_signature(self._key.sign(signing_input.encode("ascii"), _ES256))
        self.signed += 1
        # JWS ES256 (RFC 7518 §3.4) is r || s as two 32-octet big-endian integers, not DER.
        return signing_input + "." + _b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def _remember(self, audience: str, entry: tuple[str, int], current: float) -> None:
        if audience not in self._cache and len(self._cache) >= _VAPID_CACHE_SIZE:
            for origin, (_, exp) in list(self._cache.items()):
                if exp - current < self.renew_before:
                    self._cache.pop(origin, None)
            while len(self._cache) >= _VAPID_CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)), None)  # the oldest entry
        self._cache[audience] = entry


def _load_vapid_key(key: str | bytes | ec.EllipticCurvePrivateKey) -> ec.EllipticCurvePrivateKey:
    if isinstance(key, str | bytes):
        data = key.encode("ascii") if isinstance(key, str) else key
        key = serialization.load_pem_private_key(data, password=None)  # type: ignore[assignment]
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("a VAPID key must be a P-256 (prime256v1) private key")
    return key


def _public_point_b64(private_key: ec.EllipticCurvePrivateKey) -> str:
    return _b64encode(
        private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


def _compact_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_JWT_HEADER = (
    base64.urlsafe_b64encode(_compact_json({"typ": "JWT", "alg": "ES256"}))
    .rstrip(b"=")
    .decode("ascii")
)


# --- Topic (RFC 8030 §5.4) --------------------------------------------------------------------


def topic_for(poll_id: str, kind: str) -> str:
    """A Topic for the notification ``kind`` about ``poll_id``: 32 characters of the URL-safe
    base64 alphabet (base64url of the first 24 octets of SHA-256 of "kind:poll_id").

    The same notification always gets the same Topic, so a resend replaces a copy the push
    service still holds instead of reaching the phone twice. The hash also keeps poll ids out
    of the push service's sight.
    """
    if not isinstance(poll_id, str) or not isinstance(kind, str) or not poll_id or not kind:
        raise ValueError("poll_id and kind must be non-empty strings")
    return _b64encode(hashlib.sha256(f"{kind}:{poll_id}".encode()).digest()[:24])


# --- helpers ----------------------------------------------------------------------------------

_B64URL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict unpadded base64url (RFC 7515 §2), as JWS and the VAPID ``k`` use."""
    raw = text.encode("ascii") if isinstance(text, str) and text.isascii() else b"!"
    if not _B64URL.issuperset(raw) or len(raw) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


def _b64decode_lenient(text: str) -> bytes:
    """base64url from a browser's PushSubscription: trailing '=' padding is tolerated."""
    if not isinstance(text, str):
        raise TypeError("expected a base64url string")
    return _b64decode(text.rstrip("="))


def _timestamp(now: Now) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.timestamp()
    if isinstance(now, int | float) and not isinstance(now, bool):
        return float(now)
    raise TypeError("now must be a datetime, a number of seconds or None")
