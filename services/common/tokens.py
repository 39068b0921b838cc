"""Access tokens (signed JWT) and refresh tokens (opaque), as pure functions.

Access tokens are JWTs signed with Ed25519 (JOSE ``alg`` "EdDSA") and nothing else: the
verifier never takes the algorithm from the token, it refuses every ``alg`` but "EdDSA" and
verifies with an Ed25519 public key object, so ``alg: none`` and HMAC key confusion cannot
work. The panel service holds the private key and issues; the gateway holds only public keys
and verifies locally (no call per request). A token's type is both its ``typ`` header and its
``typ`` claim (RFC 8725 §3.11), so a staff token is never accepted where a resident token is
expected, or the reverse. ``kid`` names the signing key: during a rotation the verifier gets
a dict kid → public key holding the old and the new key.

Refresh tokens are opaque random strings (not JWT); the database stores only their SHA-256.
Rotation with reuse detection — the panel service backs it with a table of RefreshRecord:

- login starts a family: ``new_refresh_token()``; store the hash with a new family_id;
- refresh: look the record up by ``hash_refresh_token(presented)`` and act on
  ``rotation_decision(record, now)``:
  "rotate": in one transaction mark it used (``UPDATE … SET used_at = now WHERE token_hash = …
  AND used_at IS NULL AND revoked_at IS NULL``; zero rows means a concurrent refresh won, so
  treat it as "reuse_detected"), insert the successor in the same family, issue an access token;
  "reuse_detected": a rotated token came back, so one of its holders is a thief — revoke the
  whole family (every record: revoked_at = now) and answer 401; the resident logs in again;
  "expired", "revoked", "unknown": answer 401.
- logout revokes the family; a resident who leaves loses all families.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.api_jws import PyJWS

ALGORITHM = "EdDSA"

RESIDENT_ACCESS = "resident+access"
STAFF_ACCESS = "staff+access"
EMAIL_VERIFY = "verify+email"
# The personal link in an invitation e-mail: one poll, one participant, until the poll closes.
# Signed by notify with a key of its own (not the panel's), verified by the gateway.
POLL_LINK = "poll+link"
TOKEN_TYPES = (RESIDENT_ACCESS, STAFF_ACCESS, EMAIL_VERIFY, POLL_LINK)

RESIDENT_ACCESS_TTL = 900  # seconds; the most a resident access token may live
STAFF_ACCESS_TTL = 900  # seconds; the most a staff access token may live (refresh rotates)
DEFAULT_LEEWAY = 30  # seconds of clock skew tolerated between issuer and verifier
# How long a revoked session must stay on the gateways' list: until no access token of it can
# still be valid (the longest lifetime, the verifier's leeway, a minute of clock skew).
REVOCATION_KEEP = max(RESIDENT_ACCESS_TTL, STAFF_ACCESS_TTL) + DEFAULT_LEEWAY + 60

# Reasons of TokenError: short codes for logs and metrics, never shown with the token.
MALFORMED = "malformed"
WRONG_ALGORITHM = "wrong_algorithm"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
MISSING_CLAIM = "missing_claim"
WRONG_TYPE = "wrong_type"
WRONG_ISSUER = "wrong_issuer"
WRONG_AUDIENCE = "wrong_audience"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
REASONS = (
    MALFORMED,
    WRONG_ALGORITHM,
    UNKNOWN_KEY,
    BAD_SIGNATURE,
    MISSING_CLAIM,
    WRONG_TYPE,
    WRONG_ISSUER,
    WRONG_AUDIENCE,
    EXPIRED,
    NOT_YET_VALID,
)

MAX_TOKEN_LENGTH = 8192  # characters; longer input is refused before any decoding
_RESERVED_CLAIMS = frozenset({"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "typ"})
_REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "typ")
_ALLOWED_HEADERS = frozenset({"alg", "typ", "kid"})  # no crit, b64, jku, jwk, x5u…
_B64URL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

# Issuing goes through PyJWT (only EdDSA registered). Verifying does not: PyJWT's decode checks
# time claims against the wall clock only (no ``now``), and its per-character base64 check costs
# as much as the signature; the JWS framing is three base64url segments and one Ed25519
# verification with cryptography, done below with the algorithm fixed in code.
_JWS = PyJWS(algorithms=[ALGORITHM])

PublicKeys = Ed25519PublicKey | Mapping[str, Ed25519PublicKey]
Now = float | int | datetime | None


class TokenError(Exception):
    """A token was refused; ``reason`` is one of REASONS. The message never holds the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"token refused: {self.reason}"


# --- keys -------------------------------------------------------------------------------------


def load_private_key(pem: str) -> Ed25519PrivateKey:
    """An unencrypted PKCS#8 PEM Ed25519 private key; ValueError for anything else."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def load_public_key(pem: str) -> Ed25519PublicKey:
    """A SubjectPublicKeyInfo PEM Ed25519 public key; ValueError for anything else."""
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def generate_keypair() -> tuple[str, str]:
    """(private PEM, public PEM) of a new Ed25519 key."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return private_pem, public_pem


def key_id(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): a stable ``kid`` derived from the key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64encode(raw)}, separators=(",", ":"))
    return _b64encode(hashlib.sha256(jwk.encode("ascii")).digest())


# --- access tokens ----------------------------------------------------------------------------


def issue_token(
    private_key: Ed25519PrivateKey,
    *,
    typ: str,
    subject: str,
    issuer: str,
    audience: str,
    ttl_seconds: int,
    claims: Mapping[str, Any] | None = None,
    now: Now = None,
    key_id: str | None = None,
) -> str:
    """A signed JWT with iss, aud, sub, iat, nbf, exp, a random jti and typ (header and claim).

    ``claims`` adds application claims (e.g. municipality, roles, the session id ``sid``) but
    may not replace a registered one. ValueError for an unknown typ, a bad ttl (an access token
    lives at most RESIDENT_ACCESS_TTL / STAFF_ACCESS_TTL seconds) or a reserved claim;
    TypeError for a key that is not an Ed25519 private key.
    """
    if not isinstance(private_key, Ed25519PrivateKey):
        raise TypeError("private_key must be an Ed25519PrivateKey")
    if typ not in TOKEN_TYPES:
        raise ValueError(f"unknown token type {typ!r}")
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be a positive integer")
    if typ == RESIDENT_ACCESS and ttl_seconds > RESIDENT_ACCESS_TTL:
        raise ValueError(f"a resident access token lives at most {RESIDENT_ACCESS_TTL} seconds")
    if typ == STAFF_ACCESS and ttl_seconds > STAFF_ACCESS_TTL:
        raise ValueError(f"a staff access token lives at most {STAFF_ACCESS_TTL} seconds")
    for name, value in (("subject", subject), ("issuer", issuer), ("audience", audience)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    extra = dict(claims or {})
    reserved = _RESERVED_CLAIMS.intersection(extra)
    if reserved:
        raise ValueError(f"claims may not set {', '.join(sorted(reserved))}")
    issued_at = int(_timestamp(now))
    payload = {
        **extra,
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + ttl_seconds,
        "jti": secrets.token_urlsafe(16),
        "typ": typ,
    }
    headers: dict[str, Any] = {"typ": typ}
    if key_id is not None:
        headers["kid"] = key_id
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return _JWS.encode(body, private_key, algorithm=ALGORITHM, headers=headers)


def issue_link_token(
    private_key: Ed25519PrivateKey,
    *,
    resident: str,
    poll: str,
    municipality: str,
    issued_at: datetime,
    expires_at: datetime,
    issuer: str,
    audience: str,
    key_id: str | None = None,
    generation: int = 0,
) -> str:
    """The token of a poll's personal link (typ ``poll+link``): subject the participant,
    ``poll`` and ``mun`` the one poll it answers, valid from ``issued_at`` (the poll's opening)
    until ``expires_at`` (its close).

    Deterministic: every claim comes from the arguments (``jti`` is a digest of poll,
    participant and generation) and Ed25519 signatures are deterministic, so the invitation and
    each reminder carry the same link, and revoking it revokes it in every e-mail.

    ``generation`` counts the links reissued after a revocation (claim ``gen``; absent for the
    first link, 0, so links sent before reissuing existed read the same): a new generation is a
    new token, and only the invitation's current generation answers. ValueError for an
    ``expires_at`` not after ``issued_at`` or a negative generation.
    """
    if not isinstance(private_key, Ed25519PrivateKey):
        raise TypeError("private_key must be an Ed25519PrivateKey")
    start, end = int(_timestamp(issued_at)), int(_timestamp(expires_at))
    if end <= start:
        raise ValueError("a link must expire after it was issued")
    for name, value in (("resident", resident), ("poll", poll), ("municipality", municipality)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise ValueError("generation must be a non-negative integer")
    seed = f"{poll}|{resident}" + (f"|{generation}" if generation else "")
    jti = _b64encode(hashlib.sha256(seed.encode()).digest()[:16])
    payload: dict[str, Any] = {
        "poll": poll,
        "mun": municipality,
        "iss": issuer,
        "aud": audience,
        "sub": resident,
        "iat": start,
        "nbf": start,
        "exp": end,
        "jti": jti,
        "typ": POLL_LINK,
    }
    if generation:
        payload["gen"] = generation
    headers: dict[str, Any] = {"typ": POLL_LINK}
    if key_id is not None:
        headers["kid"] = key_id
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return _JWS.encode(body, private_key, algorithm=ALGORITHM, headers=headers)


def verify_token(
    public_keys: PublicKeys,
    token: str,
    *,
    typ: str,
    issuer: str,
    audience: str,
    now: Now = None,
    leeway: int = DEFAULT_LEEWAY,
) -> dict[str, Any]:
    """The claims of a valid token, or TokenError(reason).

    ``public_keys`` is one Ed25519 public key (any kid, or none, is then accepted) or a dict
    kid → key, in which case the token must name one of them. The signature is checked before
    anything the token says is believed: a forged token is reported as malformed,
    wrong_algorithm, unknown_key or bad_signature, never by what its claims say.
    """
    if typ not in TOKEN_TYPES:
        raise ValueError(f"unknown token type {typ!r}")
    header_segment, payload_segment, signature_segment = _segments(token)
    header = _decode_json(header_segment)
    if "alg" not in header:
        raise TokenError(MALFORMED)
    if header["alg"] != ALGORITHM:
        raise TokenError(WRONG_ALGORITHM)
    if not _ALLOWED_HEADERS.issuperset(header):
        raise TokenError(MALFORMED)
    key = _choose_key(public_keys, header)
    try:
        signature = _b64decode(signature_segment)
    except ValueError:
        raise TokenError(MALFORMED) from None
    try:
        # The algorithm is fixed here, whatever the header said: Ed25519 with this key.
        key.verify(signature, f"{header_segment}.{payload_segment}".encode("ascii"))
    except InvalidSignature:
        raise TokenError(BAD_SIGNATURE) from None
    payload = _decode_json(payload_segment)  # only now: it is authentic
    _check_claims(
        payload, header, typ=typ, issuer=issuer, audience=audience, now=now, leeway=leeway
    )
    return payload


def _segments(token: Any) -> list[str]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise TokenError(MALFORMED)
    segments = token.split(".")
    if len(segments) != 3:
        raise TokenError(MALFORMED)
    return segments


def _decode_json(segment: str) -> dict[str, Any]:
    try:
        return _json_object(_b64decode(segment))
    except (ValueError, RecursionError):
        raise TokenError(MALFORMED) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


def _json_object(data: bytes) -> dict[str, Any]:
    """A JSON object in UTF-8; ValueError for anything else, including NaN and Infinity."""
    value = _JSON.decode(data.decode("utf-8"))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _choose_key(public_keys: PublicKeys, header: dict[str, Any]) -> Ed25519PublicKey:
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise TokenError(MALFORMED)
    if isinstance(public_keys, Ed25519PublicKey):
        return public_keys
    if not isinstance(public_keys, Mapping):
        raise TypeError("public_keys must be an Ed25519PublicKey or a dict kid → key")
    key = public_keys.get(kid) if kid is not None else None
    if key is None:
        raise TokenError(UNKNOWN_KEY)
    if not isinstance(key, Ed25519PublicKey):
        raise TypeError("public_keys must map key ids to Ed25519PublicKey objects")
    return key


def _check_claims(
    payload: dict[str, Any],
    header: dict[str, Any],
    *,
    typ: str,
    issuer: str,
    audience: str,
    now: Now,
    leeway: int,
) -> None:
    for name in _REQUIRED_CLAIMS:
        if name not in payload:
            raise TokenError(MISSING_CLAIM)
    for name in ("exp", "iat", "nbf"):
        if name in payload and not _is_number(payload[name]):
            raise TokenError(MALFORMED)
    for name in ("iss", "sub", "typ", "jti"):
        if name in payload and (not isinstance(payload[name], str) or not payload[name]):
            raise TokenError(MALFORMED)
    aud = payload["aud"]
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise TokenError(MALFORMED)

    if header.get("typ") != typ or payload["typ"] != typ:
        raise TokenError(WRONG_TYPE)
    if payload["iss"] != issuer:
        raise TokenError(WRONG_ISSUER)
    if audience not in audiences:
        raise TokenError(WRONG_AUDIENCE)
    current = _timestamp(now)
    if payload["exp"] <= current - leeway:
        raise TokenError(EXPIRED)
    if max(payload["iat"], payload.get("nbf", 0)) > current + leeway:
        raise TokenError(NOT_YET_VALID)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timestamp(now: Now) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.timestamp()
    if _is_number(now):
        return float(now)
    raise TypeError("now must be a datetime, a number of seconds or None")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(segment: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): canonical encodings only."""
    raw = segment.encode("ascii") if segment.isascii() else b"!"
    if not _B64URL.issuperset(raw) or len(raw) % 4 == 1:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None
    if _b64encode(data) != segment:
        raise ValueError("not canonical base64url")
    return data


# --- refresh tokens ---------------------------------------------------------------------------

REFRESH_TOKEN_BYTES = 32  # 256 bits from the OS CSPRNG

RotationDecision = Literal["rotate", "reuse_detected", "expired", "revoked", "unknown"]


def new_refresh_token() -> tuple[str, str]:
    """(token for the app, SHA-256 hex to store): 256 random bits, base64url (43 characters)."""
    token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    """SHA-256 hex. A fast hash suffices: the token is 256 random bits, not a password."""
    if not isinstance(token, str):
        raise TypeError("a refresh token is a string")
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RefreshRecord:
    """One row of the panel service's refresh token table."""

    token_hash: str
    family_id: str
    resident_id: str
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


def rotation_decision(record: RefreshRecord | None, now: datetime) -> RotationDecision:
    """What to do with a presented refresh token (see the protocol at the top).

    A revoked family stays revoked whatever else is true; a token used before is reuse even
    after it expired (an old token in a thief's hands is still a sign to end the family).
    """
    if record is None:
        return "unknown"
    if record.revoked_at is not None:
        return "revoked"
    if record.used_at is not None:
        return "reuse_detected"
    if now >= record.expires_at:
        return "expired"
    return "rotate"


# --- command line -----------------------------------------------------------------------------


def _write(path: Path, text: str, mode: int, force: bool) -> None:
    if force:
        path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.tokens")
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser(
        "generate-keys", help="write jwt_private.pem (0600) and jwt_public.pem to a directory"
    )
    generate.add_argument("--out", required=True, type=Path, help="directory to write to")
    generate.add_argument(
        "--name",
        default="jwt",
        choices=("jwt", "link"),
        help="jwt: panel's access-token pair; link: notify's pair for personal e-mail links",
    )
    generate.add_argument("--force", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / f"{args.name}_private.pem", out / f"{args.name}_public.pem"
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing and not args.force:
        print(f"refusing to overwrite {', '.join(existing)} (use --force)", file=sys.stderr)
        return 1
    private_pem, public_pem = generate_keypair()
    _write(private_path, private_pem, 0o600, args.force)
    _write(public_path, public_pem, 0o644, args.force)
    print(f"wrote {private_path} (0600) and {public_path}")
    print(f"kid: {key_id(load_public_key(public_pem))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
