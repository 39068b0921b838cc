"""Defect 15.15d: outside development mode a service refuses to start on development defaults
(secrets anyone can read in this repository, the keys `make run` makes, a local push service),
and says which; in development mode (make run, the tests) it starts. Issue 12.4: a secret left
unset has no default outside development either, and a value of the wrong kind stops the start
naming its key (services/common/settings.py)."""

from __future__ import annotations

import pytest

from services.common.config import ConfigError
from services.feedback.service import FeedbackService
from services.notify.service import NotifyService
from services.polls.service import PollsService
from services.responses.service import ResponsesService


def test_development_secrets_are_refused_at_start_outside_development(
    container_factory, service_config
):
    config = service_config("notify", ENVIRONMENT="production")
    with pytest.raises(ConfigError) as refused:
        container_factory(NotifyService, config).start()
    message = str(refused.value)
    assert message.startswith("notify refuses to start with development defaults")
    assert "UNSUBSCRIBE_SECRET is the development default" in message
    assert "PUSH_DEVELOPMENT_ORIGINS is set" in message
    assert "BUURTPEIL_ENV=development" in message  # how to run on them on purpose

    config = service_config(
        "responses", ENVIRONMENT="production", RESPONDENT_KEY_SECRET="development-only-change-me"
    )
    with pytest.raises(ConfigError, match="RESPONDENT_KEY_SECRET"):
        container_factory(ResponsesService, config).start()

    config = service_config(
        "polls", ENVIRONMENT="production", JWT_PRIVATE_KEY_FILE=".keys/jwt_private.pem"
    )
    with pytest.raises(ConfigError, match=r"JWT_PRIVATE_KEY_FILE is a development key in \.keys/"):
        container_factory(PollsService, config).start()


def test_real_secrets_start_outside_development_and_defaults_in_development(
    container_factory, service_config
):
    container_factory(
        ResponsesService,
        service_config(
            "responses", ENVIRONMENT="production", RESPONDENT_KEY_SECRET="k3Jx9-a-real-secret"
        ),
    ).start()
    container_factory(NotifyService, service_config("notify", ENVIRONMENT="development")).start()


def test_an_unset_secret_or_a_wrong_value_is_refused_at_start_naming_the_key(
    container_factory, service_config
):
    config = service_config("feedback", ENVIRONMENT="production", REACTION_KEY_SECRET="")
    with pytest.raises(ConfigError) as refused:
        container_factory(FeedbackService, config).start()
    assert "REACTION_KEY_SECRET is not set" in str(refused.value)

    config = service_config("polls", OUTBOX_POLL_INTERVAL="often")
    with pytest.raises(ConfigError, match="OUTBOX_POLL_INTERVAL must be a number, not 'often'"):
        container_factory(PollsService, config).start()


def test_an_unset_secret_has_the_development_default_in_development(
    container_factory, service_config
):
    container_factory(
        ResponsesService,
        service_config("responses", ENVIRONMENT="development", RESPONDENT_KEY_SECRET=""),
    ).start()
