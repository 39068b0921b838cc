"""The gateway verifies each access token once (a small LRU), without caching away expiry or
revocation."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from gateway import auth
from gateway.errors import AuthenticationRequired
from services.common import tokens


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch):
    private_key = tokens.load_private_key(tokens.generate_keypair()[0])
    authenticator = auth.Authenticator(
        private_key.public_key(),
        issuer="buurtpeil",
        resident_audience="buurtpeil-app",
        staff_audience="buurtpeil-admin",
    )
    calls = []
    verify = tokens.verify_token

    def counting(*args, **kwargs):
        calls.append(1)
        return verify(*args, **kwargs)

    monkeypatch.setattr(tokens, "verify_token", counting)

    def token(ttl: int = 900, sid: str = "s1") -> str:
        return tokens.issue_token(
            private_key,
            typ=tokens.RESIDENT_ACCESS,
            subject="r1",
            issuer="buurtpeil",
            audience="buurtpeil-app",
            ttl_seconds=ttl,
            claims={"sid": sid, "mun": "GM0344"},
        )

    return authenticator, token, calls


def test_a_token_is_verified_once_and_its_claims_are_copies(setup) -> None:
    authenticator, token, calls = setup
    bearer = f"Bearer {token()}"
    first = authenticator.authenticate(bearer, "resident")
    first.claims["mun"] = "changed"
    second = authenticator.authenticate(bearer, "resident")
    assert len(calls) == 1
    assert second.claims["mun"] == "GM0344" and second.subject == "r1"


def test_a_kept_token_is_refused_once_it_expires(setup, monkeypatch) -> None:
    authenticator, token, calls = setup
    bearer = f"Bearer {token(ttl=60)}"
    authenticator.authenticate(bearer, "resident")
    later = time.time() + 60 + tokens.DEFAULT_LEEWAY + 1
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(AuthenticationRequired, match="expired"):
        authenticator.authenticate(bearer, "resident")


def test_a_kept_token_of_a_revoked_session_is_refused(setup) -> None:
    authenticator, token, _ = setup
    bearer = f"Bearer {token(sid='gone')}"
    authenticator.authenticate(bearer, "resident")
    authenticator.revoked.add(["gone"], datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(AuthenticationRequired, match="revoked"):
        authenticator.authenticate(bearer, "resident")


def test_a_token_kept_for_one_kind_is_checked_again_for_another(setup) -> None:
    authenticator, token, calls = setup
    bearer = f"Bearer {token()}"
    authenticator.authenticate(bearer, "resident")
    with pytest.raises(AuthenticationRequired, match="wrong_audience|wrong_type"):
        authenticator.authenticate(bearer, "staff")
    assert len(calls) == 2


def test_the_cache_is_bounded(setup, monkeypatch) -> None:
    authenticator, token, _ = setup
    monkeypatch.setattr(auth.Authenticator, "VERIFIED_MAX", 3)
    for i in range(5):
        authenticator.authenticate(f"Bearer {token(sid=f's{i}')}", "resident")
    assert len(authenticator._verified) == 3
