"""The personal link in e-mails (issue 14) without broker or database: notify's sender puts
the same link in an invitation and its reminders, none once revoked, and the gateway's verifier
takes only notify's links — never an access token, never a link where an access token goes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.auth import Authenticator
from services.common import tokens
from services.notify.channels import Job
from services.notify.links import LinkSigner
from services.notify.senders import EmailSender

NOW = datetime.now(UTC)


class Outbox:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, to: str, subject: str, text: str, html: str, headers: dict[str, str]) -> str:
        self.sent.append({"to": to, "subject": subject, "text": text, "html": html})
        return "id"


def job(kind: str, *, revoked: bool = False, language: str = "nl", **context: Any) -> Job:
    return Job(
        id=1,
        kind=kind,
        ref_id=uuid.UUID(int=7),
        poll_id=uuid.UUID(int=7),
        resident_id=uuid.UUID(int=9),
        channel="email",
        endpoint_id=uuid.uuid4(),
        address="bewoner@example.nl",
        p256dh=None,
        auth=None,
        attempts=0,
        queued_at=NOW,
        language=language,
        quiet_hours=None,
        municipality_code="GM0344",
        context={
            "title": "Veilig in de buurt",
            "minutes": 5,
            "opens_at": NOW - timedelta(days=1),
            "closes_at": NOW + timedelta(days=13),
            "link_revoked": revoked,
            **context,
        },
    )


@pytest.fixture
def keys():
    private_pem, public_pem = tokens.generate_keypair()
    return private_pem, tokens.load_public_key(public_pem)


@pytest.fixture
def sender(keys):
    outbox = Outbox()
    signer = LinkSigner(
        keys[0], issuer="buurtpeil", audience="buurtpeil-link", app_url="https://peil.example/"
    )
    email = EmailSender(
        outbox,  # type: ignore[arg-type]
        branding=lambda code: {"app_name": "Utrecht peilt"},
        app_url="https://peil.example",
        unsubscribe_secret="s",
        links=signer,
    )
    return email, outbox


def link_of(text: str) -> str:
    return next(w for w in text.split() if "/link?t=" in w)


def test_the_invitation_and_its_reminders_carry_the_same_link(sender):
    email, outbox = sender
    email(job("invitation"))
    email(job("reminder"))
    invitation, reminder = outbox.sent
    assert link_of(invitation["text"]).startswith("https://peil.example/app/GM0344/link?t=")
    assert link_of(invitation["text"]) == link_of(reminder["text"])
    assert "/app/GM0344/link/intrekken?t=" in invitation["text"]


def test_the_e_mail_says_what_forwarding_does_and_how_to_revoke(sender):
    email, outbox = sender
    email(job("invitation"))
    text = outbox.sent[0]["text"]
    assert "Stuurt u deze e-mail door, dan kan iemand anders met de link één keer namens u" in text
    assert "Trek de link dan in" in text
    email(job("invitation", language="en"))
    assert "someone else can use the link to answer once in your name" in outbox.sent[1]["text"]


def test_a_revoked_link_is_not_sent_again_and_feedback_has_none(sender):
    email, outbox = sender
    email(job("reminder", revoked=True))
    email(job("feedback"))
    assert all("/link?t=" not in m["text"] for m in outbox.sent)


def test_the_link_expires_when_the_poll_closes_and_names_one_poll(sender, keys):
    email, outbox = sender
    email(job("invitation"))
    token = link_of(outbox.sent[0]["text"]).split("t=", 1)[1]
    authenticator = Authenticator(
        {"panel": tokens.load_public_key(tokens.generate_keypair()[1])},
        issuer="buurtpeil",
        resident_audience="buurtpeil-app",
        staff_audience="buurtpeil-admin",
        link_keys={tokens.key_id(keys[1]): keys[1]},
    )
    claims = authenticator.verify_link(token)
    assert claims["poll"] == str(uuid.UUID(int=7)) and claims["sub"] == str(uuid.UUID(int=9))
    assert claims["exp"] == int((NOW + timedelta(days=13)).timestamp())
    with pytest.raises(tokens.TokenError) as expired:
        authenticator.verify_link(token, now=NOW + timedelta(days=14))
    assert expired.value.reason == tokens.EXPIRED
    # Not an access token: the resident routes refuse it.
    with pytest.raises(Exception) as refused:
        authenticator.authenticate(f"Bearer {token}", "resident")
    assert "refused" in str(refused.value)


def test_an_access_token_is_no_link(keys):
    private = tokens.load_private_key(keys[0])
    access = tokens.issue_token(
        private,
        typ=tokens.RESIDENT_ACCESS,
        subject="r",
        issuer="buurtpeil",
        audience="buurtpeil-link",
        ttl_seconds=60,
        claims={"poll": "p", "mun": "GM0344"},
        key_id=tokens.key_id(keys[1]),  # even signed with notify's own key
    )
    authenticator = Authenticator(
        {},
        issuer="buurtpeil",
        resident_audience="buurtpeil-app",
        staff_audience="buurtpeil-admin",
        link_keys={tokens.key_id(keys[1]): keys[1]},
    )
    with pytest.raises(tokens.TokenError) as refused:
        authenticator.verify_link(access)
    assert refused.value.reason == tokens.WRONG_TYPE


def test_without_link_keys_every_link_is_refused(keys):
    authenticator = Authenticator({}, issuer="buurtpeil", resident_audience="a", staff_audience="b")
    with pytest.raises(tokens.TokenError):
        authenticator.verify_link("a.b.c")


def _verifier(keys) -> Authenticator:
    return Authenticator(
        {},
        issuer="buurtpeil",
        resident_audience="buurtpeil-app",
        staff_audience="buurtpeil-admin",
        link_keys={tokens.key_id(keys[1]): keys[1]},
    )


def test_a_reissued_link_is_a_new_token_that_reminders_carry_from_then_on(sender, keys):
    email, outbox = sender
    email(job("invitation"))
    email(job("reminder"))  # before the link was reissued
    email(job("link", link_generation=1))  # the new link, asked for after revoking
    email(job("reminder", link_generation=1))  # a reminder after it
    first, reminder, new, later = (link_of(m["text"]) for m in outbox.sent)
    assert first == reminder and new == later and new != first
    verifier = _verifier(keys)
    assert verifier.verify_link(first.split("t=", 1)[1])["gen"] == 0  # no claim: the first
    assert verifier.verify_link(new.split("t=", 1)[1])["gen"] == 1
    assert "Uw nieuwe link: Veilig in de buurt" == outbox.sent[2]["subject"]
    assert "/app/GM0344/link/intrekken?t=" in outbox.sent[2]["text"]  # revocable in turn


def test_a_new_link_revoked_again_before_it_went_out_is_not_sent(sender):
    email, outbox = sender
    outcome = email(job("link", revoked=True, link_generation=1))
    assert outcome.status == "failed" and not outbox.sent


def test_no_link_is_signed_with_a_negative_generation(keys):
    private = tokens.load_private_key(keys[0])
    with pytest.raises(ValueError):
        tokens.issue_link_token(
            private,
            resident="r",
            poll="p",
            municipality="GM0344",
            issued_at=NOW,
            expires_at=NOW + timedelta(days=1),
            issuer="buurtpeil",
            audience="buurtpeil-link",
            generation=-1,
        )


@pytest.mark.parametrize("gen", ["1", -1, True, 1.5])
def test_a_link_whose_generation_is_no_whole_number_is_refused(keys, gen):
    import json

    private = tokens.load_private_key(keys[0])
    start = int(NOW.timestamp())
    claims = {
        "poll": "p",
        "mun": "GM0344",
        "iss": "buurtpeil",
        "aud": "buurtpeil-link",
        "sub": "r",
        "iat": start,
        "nbf": start,
        "exp": start + 3600,
        "jti": "j",
        "typ": tokens.POLL_LINK,
        "gen": gen,
    }
    token = tokens._JWS.encode(
        json.dumps(claims).encode(),
        private,
        algorithm=tokens.ALGORITHM,
        headers={"typ": tokens.POLL_LINK, "kid": tokens.key_id(keys[1])},
    )
    with pytest.raises(tokens.TokenError) as refused:
        _verifier(keys).verify_link(token)
    assert refused.value.reason == tokens.MALFORMED
