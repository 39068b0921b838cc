import base64
import hashlib
import hmac
import json
import re
import stat
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common import tokens
from services.common.tokens import (
    EMAIL_VERIFY,
    RESIDENT_ACCESS,
    RESIDENT_ACCESS_TTL,
    STAFF_ACCESS,
    RefreshRecord,
    TokenError,
    generate_keypair,
    hash_refresh_token,
    issue_token,
    key_id,
    load_private_key,
    load_public_key,
    new_refresh_token,
    rotation_decision,
    verify_token,
)

ISSUER = "https://panel.buurtpeil.test"
AUDIENCE = "buurtpeil-app"
NOW = 1_800_000_000  # a fixed clock for every test

PRIVATE_PEM, PUBLIC_PEM = generate_keypair()
PRIVATE = load_private_key(PRIVATE_PEM)
PUBLIC = load_public_key(PUBLIC_PEM)
KID = key_id(PUBLIC)
OTHER_PRIVATE = Ed25519PrivateKey.generate()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: dict) -> str:
    return b64(json.dumps(value).encode())


def claims(**changes) -> dict:
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "resident-1",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 600,
        "jti": "j1",
        "typ": RESIDENT_ACCESS,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict | bytes, key=PRIVATE, **headers) -> str:
    """A token signed with a real Ed25519 key but with content the issuer would never make."""
    headers.setdefault("typ", RESIDENT_ACCESS)
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return jwt.api_jws.PyJWS().encode(body, key, algorithm="EdDSA", headers=headers)


def issue(typ=RESIDENT_ACCESS, *, key=PRIVATE, ttl=600, **kwargs) -> str:
    kwargs.setdefault("now", NOW)
    return issue_token(
        key,
        typ=typ,
        subject="resident-1",
        issuer=ISSUER,
        audience=AUDIENCE,
        ttl_seconds=ttl,
        **kwargs,
    )


def verify(token, typ=RESIDENT_ACCESS, *, keys=PUBLIC, **kwargs) -> dict:
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("issuer", ISSUER)
    kwargs.setdefault("audience", AUDIENCE)
    return verify_token(keys, token, typ=typ, **kwargs)


def refused(token, typ=RESIDENT_ACCESS, **kwargs) -> str:
    with pytest.raises(TokenError) as caught:
        verify(token, typ, **kwargs)
    error = caught.value
    assert error.reason in tokens.REASONS
    if isinstance(token, str) and len(token) > 8:
        assert token not in str(error) and token not in repr(error)
        assert all(token not in str(arg) for arg in error.args)
    return error.reason


# --- valid tokens -----------------------------------------------------------------------------


def test_round_trip_with_claims_and_kid():
    token = issue(claims={"gm": "GM0344", "area": "BU03440001"}, key_id=KID)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": RESIDENT_ACCESS, "kid": KID}
    payload = verify(token, keys={KID: PUBLIC})
    assert payload["gm"] == "GM0344" and payload["area"] == "BU03440001"
    assert payload["iss"] == ISSUER and payload["aud"] == AUDIENCE
    assert payload["sub"] == "resident-1" and payload["typ"] == RESIDENT_ACCESS
    assert payload["iat"] == payload["nbf"] == NOW and payload["exp"] == NOW + 600
    assert len(base64.urlsafe_b64decode(payload["jti"] + "==")) == 16


def test_every_token_gets_its_own_jti():
    assert len({verify(issue())["jti"] for _ in range(20)}) == 20


def test_each_type_verifies_as_itself():
    for typ in (RESIDENT_ACCESS, STAFF_ACCESS, EMAIL_VERIFY):
        assert verify(issue(typ), typ)["typ"] == typ


def test_now_may_be_an_aware_datetime():
    moment = datetime.fromtimestamp(NOW, tz=UTC)
    token = issue(now=moment)
    assert verify(token, now=moment + timedelta(minutes=5))["iat"] == NOW
    with pytest.raises(ValueError, match="timezone"):
        issue(now=datetime(2027, 1, 1))


def test_a_single_key_accepts_any_kid_or_none():
    assert verify(issue(key_id="whatever"))["sub"] == "resident-1"
    assert verify(issue())["sub"] == "resident-1"


def test_key_rotation_with_two_keys():
    new_private = Ed25519PrivateKey.generate()
    new_kid = key_id(new_private.public_key())
    old_token = issue(key_id=KID)
    new_token = issue(key=new_private, key_id=new_kid)
    both = {KID: PUBLIC, new_kid: new_private.public_key()}
    assert verify(old_token, keys=both)["sub"] == verify(new_token, keys=both)["sub"]
    # the old key retired: its tokens are refused, the new ones still work
    assert refused(old_token, keys={new_kid: new_private.public_key()}) == "unknown_key"
    assert verify(new_token, keys={new_kid: new_private.public_key()})
    # a token naming one kid but signed by the other key
    forged = issue(key=new_private, key_id=KID)
    assert refused(forged, keys=both) == "bad_signature"


def test_an_audience_list_that_names_us_is_accepted():
    token = sign(claims(aud=["other", AUDIENCE]))
    assert verify(token)["aud"] == ["other", AUDIENCE]


def test_leeway_tolerates_small_clock_skew_only():
    token = issue(ttl=600)
    assert verify(token, now=NOW + 600 + 29)
    assert refused(token, now=NOW + 600 + 30) == "expired"
    assert verify(token, now=NOW - 30)
    assert refused(token, now=NOW - 31) == "not_yet_valid"
    assert refused(token, now=NOW + 600, leeway=0) == "expired"


# --- attacks and faults, each with its reason -------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(alg):
    unsigned = f"{b64json({'alg': alg, 'typ': RESIDENT_ACCESS})}.{b64json(claims())}."
    assert refused(unsigned) == "wrong_algorithm"
    assert refused(unsigned, keys={KID: PUBLIC}) == "wrong_algorithm"
    # a valid EdDSA signature glued on does not help either
    signature = issue().rsplit(".", 1)[1]
    assert refused(unsigned + signature) == "wrong_algorithm"


def test_hs256_signed_with_the_public_key_pem_is_refused():
    # The classic key confusion: a verifier that takes alg from the header would use the
    # public PEM it holds as an HMAC secret. PyJWT refuses to make this token, so by hand.
    for headers in (
        {"alg": "HS256", "typ": RESIDENT_ACCESS},
        {"alg": "HS256", "typ": RESIDENT_ACCESS, "kid": KID},
    ):
        signing_input = f"{b64json(headers)}.{b64json(claims())}"
        mac = hmac.new(PUBLIC_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
        forged = f"{signing_input}.{b64(mac)}"
        assert refused(forged) == "wrong_algorithm"
        assert refused(forged, keys={KID: PUBLIC}) == "wrong_algorithm"
    # the same MAC under a header that claims EdDSA is simply a bad signature
    signing_input = f"{b64json({'alg': 'EdDSA', 'typ': RESIDENT_ACCESS})}.{b64json(claims())}"
    mac = hmac.new(PUBLIC_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
    assert refused(f"{signing_input}.{b64(mac)}") == "bad_signature"


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS512", "Ed25519", "eddsa", ""])
def test_any_other_algorithm_is_refused(alg):
    token = f"{b64json({'alg': alg, 'typ': RESIDENT_ACCESS})}.{b64json(claims())}.c2ln"
    assert refused(token) == "wrong_algorithm"


def test_a_header_without_alg_is_refused():
    token = f"{b64json({'typ': RESIDENT_ACCESS})}.{b64json(claims())}.c2ln"
    assert refused(token) == "malformed"


def test_a_token_signed_by_another_key_is_refused():
    assert refused(issue(key=OTHER_PRIVATE)) == "bad_signature"
    assert refused(issue(key=OTHER_PRIVATE, key_id=KID), keys={KID: PUBLIC}) == "bad_signature"


def test_a_tampered_payload_is_refused():
    header, payload, signature = issue(claims={"gm": "GM0344"}).split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    for change in ({"sub": "resident-2"}, {"gm": "GM0363"}, {"exp": NOW + 86400}):
        tampered = f"{header}.{b64json({**body, **change})}.{signature}"
        assert refused(tampered) == "bad_signature"


def test_a_tampered_header_is_refused():
    header, payload, signature = issue(STAFF_ACCESS).split(".")
    swapped = b64json({"alg": "EdDSA", "typ": RESIDENT_ACCESS})
    assert refused(f"{swapped}.{payload}.{signature}") == "bad_signature"


def test_a_truncated_or_empty_signature_is_refused():
    header, payload, signature = issue().split(".")
    assert refused(f"{header}.{payload}.") == "bad_signature"
    assert refused(f"{header}.{payload}.{signature[:-2]}") == "bad_signature"


def test_wrong_audience():
    assert refused(issue(), audience="buurtpeil-admin") == "wrong_audience"
    assert refused(sign(claims(aud=["a", "b"]))) == "wrong_audience"


def test_wrong_issuer():
    assert refused(issue(), issuer="https://evil.test") == "wrong_issuer"


def test_expired():
    token = issue(ttl=600)
    assert refused(token, now=NOW + 3600) == "expired"
    moment = datetime.fromtimestamp(NOW, tz=UTC) + timedelta(hours=1)
    assert refused(token, now=moment) == "expired"


def test_not_yet_valid():
    assert refused(issue(), now=NOW - 3600) == "not_yet_valid"
    assert refused(sign(claims(nbf=NOW + 3600, exp=NOW + 7200))) == "not_yet_valid"
    assert refused(sign(claims(iat=NOW + 3600, nbf=None, exp=NOW + 7200))) == "not_yet_valid"


def test_a_staff_token_is_no_resident_token_and_vice_versa():
    assert refused(issue(STAFF_ACCESS), RESIDENT_ACCESS) == "wrong_type"
    assert refused(issue(RESIDENT_ACCESS), STAFF_ACCESS) == "wrong_type"
    assert refused(issue(EMAIL_VERIFY), RESIDENT_ACCESS) == "wrong_type"
    assert refused(issue(RESIDENT_ACCESS), EMAIL_VERIFY) == "wrong_type"


def test_type_header_and_claim_must_both_match():
    staff_claim = claims(typ=STAFF_ACCESS)
    assert refused(sign(staff_claim, typ=RESIDENT_ACCESS)) == "wrong_type"
    assert refused(sign(staff_claim, typ=RESIDENT_ACCESS), STAFF_ACCESS) == "wrong_type"
    assert refused(sign(claims(), typ="JWT")) == "wrong_type"


@pytest.mark.parametrize("name", ["exp", "iat", "iss", "aud", "sub", "typ"])
def test_missing_claims_are_refused(name):
    assert refused(sign(claims(**{name: None}))) == "missing_claim"


@pytest.mark.parametrize(
    "change",
    [
        {"exp": "1900000000"},
        {"exp": True},
        {"exp": [1]},
        {"sub": ""},
        {"sub": 42},
        {"iss": ["x"]},
        {"aud": 7},
        {"aud": [AUDIENCE, 7]},
        {"jti": 5},
    ],
)
def test_claims_of_the_wrong_kind_are_malformed(change):
    assert refused(sign(claims(**change))) == "malformed"


def test_non_finite_numbers_are_malformed():
    body = json.dumps(claims(exp=None)).encode()[:-1] + b', "exp": NaN}'
    assert refused(sign(body)) == "malformed"
    body = json.dumps(claims(exp=None)).encode()[:-1] + b', "exp": Infinity}'
    assert refused(sign(body)) == "malformed"


@pytest.mark.parametrize(
    "extra",
    [{"crit": ["exp"]}, {"b64": False, "crit": ["b64"]}, {"jku": "https://evil.test/k"}],
)
def test_unexpected_header_parameters_are_malformed(extra):
    token = sign(claims(), **extra) if "b64" not in extra else None
    if token is None:  # PyJWT would detach the payload; build the header by hand
        header = b64json({"alg": "EdDSA", "typ": RESIDENT_ACCESS, **extra})
        token = f"{header}.{b64json(claims())}.c2ln"
    assert refused(token) == "malformed"


def test_unknown_kid_with_a_key_dict():
    assert refused(issue(key_id="retired-2024"), keys={KID: PUBLIC}) == "unknown_key"
    assert refused(issue(), keys={KID: PUBLIC}) == "unknown_key"  # no kid at all
    assert refused(issue(key_id="x"), keys={}) == "unknown_key"


def test_a_kid_that_is_not_a_string_is_malformed():
    header = b64json({"alg": "EdDSA", "typ": RESIDENT_ACCESS, "kid": 1})
    assert refused(f"{header}.{b64json(claims())}.c2ln", keys={"1": PUBLIC}) == "malformed"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "...",
        "Bearer x.y.z",
        "eyJ.eyJ.sig",
        "e30.e30.e30",  # {} . {} . {}
        "W10.W10.",  # [] . [] .
        b64json({"alg": "EdDSA"}) + "=.e30.",  # padding is not base64url
        "e30+." + "e30.",
        "\u00e9\u00e9.e30.x",
        "x" * 10_000,
        "a." * 5000,
        "a." * 100,
    ],
)
def test_garbage_is_malformed(garbage):
    assert refused(garbage) == "malformed"


@pytest.mark.parametrize("value", [None, 42, b"x.y.z", ["x"]])
def test_non_strings_are_malformed(value):
    assert refused(value) == "malformed"


def test_a_valid_signature_over_a_non_object_payload_is_malformed():
    assert refused(sign(b"[1, 2, 3]")) == "malformed"
    assert refused(sign(b"not json")) == "malformed"
    assert refused(sign(b'{"sub": "\xff"}')) == "malformed"  # not UTF-8


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | st.lists(st.text(max_size=60), max_size=4).map(".".join))
def test_verify_raises_only_token_error_for_any_text(text):
    with pytest.raises(TokenError):
        verify(text)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(max_size=5), st.none() | st.integers() | st.text(max_size=5)),
    st.dictionaries(st.text(max_size=5), st.none() | st.integers() | st.text(max_size=5)),
)
def test_verify_raises_only_token_error_for_any_json(header, payload):
    with pytest.raises(TokenError):
        verify(f"{b64json(header)}.{b64json(payload)}.{b64(b'x' * 64)}")


# --- issuing rules ----------------------------------------------------------------------------


def test_resident_access_tokens_live_at_most_15_minutes():
    assert RESIDENT_ACCESS_TTL == 900
    assert verify(issue(ttl=900))["exp"] == NOW + 900
    with pytest.raises(ValueError, match="900"):
        issue(ttl=901)
    assert verify(issue(STAFF_ACCESS, ttl=900), STAFF_ACCESS)["exp"] == NOW + 900
    with pytest.raises(ValueError, match="at most 900"):
        issue(STAFF_ACCESS, ttl=8 * 3600)  # staff tokens are short too: refresh rotates


@pytest.mark.parametrize("ttl", [0, -5, 1.5, True, "600"])
def test_ttl_must_be_a_positive_integer(ttl):
    with pytest.raises(ValueError, match="ttl"):
        issue(ttl=ttl)


def test_issuing_refuses_unknown_types_reserved_claims_and_other_keys():
    with pytest.raises(ValueError, match="unknown token type"):
        issue("JWT")
    for name in ("exp", "aud", "typ", "sub", "iss"):
        with pytest.raises(ValueError, match=name):
            issue(claims={name: "x"})
    with pytest.raises(TypeError):
        issue(key=PRIVATE_PEM)
    with pytest.raises(TypeError):
        issue(key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ValueError, match="subject"):
        issue_token(
            PRIVATE,
            typ=STAFF_ACCESS,
            subject="",
            issuer=ISSUER,
            audience=AUDIENCE,
            ttl_seconds=60,
        )


def test_verify_refuses_an_unknown_expected_type_and_wrong_key_objects():
    token = issue()
    with pytest.raises(ValueError):
        verify(token, "JWT")
    with pytest.raises(TypeError):
        verify(token, keys=PUBLIC_PEM)
    with pytest.raises(TypeError):
        verify(issue(key_id="k"), keys={"k": PUBLIC_PEM})


# --- keys -------------------------------------------------------------------------------------


def test_keys_load_only_as_ed25519():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_private = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    ec_public = (
        ec_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ValueError):
        load_private_key(ec_private)
    with pytest.raises(ValueError):
        load_public_key(ec_public)
    with pytest.raises(ValueError):
        load_private_key(PUBLIC_PEM)
    with pytest.raises(ValueError):
        load_public_key("not a pem")


def test_key_id_is_the_rfc_7638_thumbprint():
    # RFC 8037 appendix A.1 and A.3: the example Ed25519 key and its thumbprint
    x = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    assert key_id(Ed25519PublicKey.from_public_bytes(x)) == (
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    )


def test_generate_keys_command(tmp_path, capsys):
    out = tmp_path / "secrets"
    assert tokens.main(["generate-keys", "--out", str(out)]) == 0
    private_file, public_file = out / "jwt_private.pem", out / "jwt_public.pem"
    assert stat.S_IMODE(private_file.stat().st_mode) == 0o600
    private = load_private_key(private_file.read_text())
    public = load_public_key(public_file.read_text())
    assert verify(issue(key=private), keys=public)
    assert key_id(public) in capsys.readouterr().out

    before = private_file.read_text()
    assert tokens.main(["generate-keys", "--out", str(out)]) == 1
    assert private_file.read_text() == before
    private_file.chmod(0o644)
    assert tokens.main(["generate-keys", "--out", str(out), "--force"]) == 0
    assert private_file.read_text() != before
    assert stat.S_IMODE(private_file.stat().st_mode) == 0o600


# --- refresh tokens ---------------------------------------------------------------------------


def test_refresh_tokens_are_256_random_bits_url_safe_and_unique():
    pairs = [new_refresh_token() for _ in range(500)]
    assert len({token for token, _ in pairs}) == 500
    raw = []
    for token, token_hash in pairs:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
        raw.append(base64.urlsafe_b64decode(token + "="))
        assert len(raw[-1]) == 32
        assert token_hash == hashlib.sha256(token.encode()).hexdigest()
    # every one of the 256 bit positions takes both values across the sample
    as_ints = [int.from_bytes(r, "big") for r in raw]
    ones = 0
    zeros = 0
    for value in as_ints:
        ones |= value
        zeros |= ~value
    assert ones == zeros & (2**256 - 1) == 2**256 - 1


def test_refresh_token_hash_is_sha256_hex_and_stable():
    token, token_hash = new_refresh_token()
    assert hash_refresh_token(token) == token_hash
    assert re.fullmatch(r"[0-9a-f]{64}", token_hash)
    assert token not in token_hash
    assert hash_refresh_token(token + "x") != token_hash
    with pytest.raises(TypeError):
        hash_refresh_token(token.encode())


T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def record(**changes) -> RefreshRecord:
    base = {
        "token_hash": "h",
        "family_id": "f",
        "resident_id": "r",
        "expires_at": T0 + timedelta(days=30),
    }
    return RefreshRecord(**{**base, **changes})


def test_rotation_of_a_fresh_token():
    assert rotation_decision(record(), T0) == "rotate"
    assert rotation_decision(record(), T0 + timedelta(days=30) - timedelta(seconds=1)) == "rotate"


def test_rotation_unknown_token():
    assert rotation_decision(None, T0) == "unknown"


def test_rotation_expired_token():
    assert rotation_decision(record(), T0 + timedelta(days=30)) == "expired"
    assert rotation_decision(record(), T0 + timedelta(days=31)) == "expired"


def test_rotation_reuse_of_a_rotated_token_is_detected():
    used = record(used_at=T0)
    assert rotation_decision(used, T0 + timedelta(seconds=1)) == "reuse_detected"
    # still reuse after its expiry: the family (its newer tokens) may be alive
    assert rotation_decision(used, T0 + timedelta(days=60)) == "reuse_detected"


def test_rotation_revoked_token():
    assert rotation_decision(record(revoked_at=T0), T0) == "revoked"
    # a family revoked after reuse stays "revoked" (nothing more to do)
    assert rotation_decision(record(used_at=T0, revoked_at=T0), T0) == "revoked"
    assert rotation_decision(record(revoked_at=T0), T0 + timedelta(days=60)) == "revoked"


def test_refresh_records_are_immutable():
    with pytest.raises(AttributeError):
        record().used_at = T0  # type: ignore[misc]
