"""Typed settings (issue 12, item 4): each service reads its configuration once into a frozen
dataclass with its defaults in one place; wrong values and missing secrets stop it at start
naming the key; a secret shows in no repr."""

from __future__ import annotations

import pytest

from gateway.settings import GatewaySettings
from services.common.config import ConfigError, load_service_config
from services.common.settings import (
    DEVELOPMENT_SECRET,
    CommonSettings,
    MailSettings,
    Secret,
    build_settings,
)
from services.feedback.settings import FeedbackSettings
from services.notify.settings import NotifySettings
from services.panel.settings import PanelSettings
from services.responses.settings import ResponsesSettings

LOADERS = {
    "polls": [CommonSettings.load],
    "panel": [CommonSettings.load, PanelSettings.load, MailSettings.load],
    "notify": [CommonSettings.load, NotifySettings.load],
    "responses": [CommonSettings.load, ResponsesSettings.load],
    "feedback": [CommonSettings.load, FeedbackSettings.load, MailSettings.load],
    "gateway": [CommonSettings.load, GatewaySettings.load],
}


def development_config(service: str, **overrides: object) -> dict[str, object]:
    config = load_service_config(service, {"BUURTPEIL_ENV": "development"})
    config.update(overrides)
    return config


def test_a_secret_shows_in_no_repr_or_str_and_reveal_gives_it():
    secret = Secret("k3Jx9-a-real-secret")
    assert secret.reveal() == "k3Jx9-a-real-secret"
    for shown in (repr(secret), str(secret), f"{secret}", repr({"s": secret})):
        assert "k3Jx9" not in shown
    assert secret == Secret("k3Jx9-a-real-secret") and secret != Secret("other")


@pytest.mark.parametrize("service", sorted(LOADERS))
def test_every_config_yml_builds_its_settings_in_development(service):
    config = development_config(service)
    for load in LOADERS[service]:
        build_settings(config, service, load)


def test_a_settings_repr_hides_the_secrets_it_holds():
    config = development_config("gateway", RECEIPT_SECRET="receipt-k3Jx9", WEB_SECRET="web-k3Jx9")
    settings = build_settings(config, "gateway", GatewaySettings.load)
    assert settings.receipt_secret.reveal() == "receipt-k3Jx9"
    assert settings.web_secret.reveal() == "web-k3Jx9"
    assert "k3Jx9" not in repr(settings)


def test_values_are_typed_and_defaults_apply_once():
    config = development_config("notify", DELIVERY_CONCURRENCY=None, PUSH_REQUEST_DEADLINE="7.5")
    settings = build_settings(config, "notify", NotifySettings.load)
    # DELIVERY_CONCURRENCY had two defaults in one file (64 for Web Push, 50 for FCM).
    assert settings.delivery_concurrency == 64
    assert settings.push_request_deadline == 7.5
    assert settings.delivery_retry_delays == (5.0, 30.0, 120.0, 600.0, 3600.0)
    common = build_settings(config, "notify", CommonSettings.load)
    assert common.metrics_port == 9103 and common.outbox_relay is True


def test_a_wrong_value_stops_the_service_naming_every_wrong_key():
    config = development_config(
        "gateway", MAX_BODY_BYTES="lots", REDIS_TIMEOUT="soon", RATE_LIMITS=["5/min"]
    )
    with pytest.raises(ConfigError) as wrong:
        build_settings(config, "gateway", GatewaySettings.load)
    message = str(wrong.value)
    assert message.startswith("gateway cannot start, its configuration is wrong")
    assert "MAX_BODY_BYTES must be a whole number, not 'lots'" in message
    assert "REDIS_TIMEOUT must be a number, not 'soon'" in message
    assert "RATE_LIMITS must be a mapping" in message


def test_a_required_value_that_is_missing_is_named():
    config = development_config("panel", JWT_ISSUER=None)
    with pytest.raises(ConfigError, match="JWT_ISSUER is required"):
        build_settings(config, "panel", PanelSettings.load)


def test_an_unset_secret_has_the_development_default_in_development_only():
    config = development_config("feedback", REACTION_KEY_SECRET=None)
    settings = build_settings(config, "feedback", FeedbackSettings.load)
    assert settings.reaction_key_secret.reveal() == DEVELOPMENT_SECRET

    config["ENVIRONMENT"] = "production"
    with pytest.raises(ConfigError) as refused:
        build_settings(config, "feedback", FeedbackSettings.load)
    assert str(refused.value).startswith("feedback refuses to start with development defaults")
    assert "REACTION_KEY_SECRET is not set" in str(refused.value)


def test_outside_development_the_web_secret_falls_back_to_the_receipt_secret():
    config = load_service_config("gateway", {"BUURTPEIL_ENV": "production"})
    config.update(
        RECEIPT_SECRET="receipt-k3Jx9",
        WEB_SECRET=None,
        JWT_PUBLIC_KEY_FILE="/etc/keys/jwt.pem",
        LINK_PUBLIC_KEY_FILE="/etc/keys/link.pem",  # .keys/ is refused outside development
    )
    settings = build_settings(config, "gateway", GatewaySettings.load)
    assert settings.web_secret.reveal() == "receipt-k3Jx9"
    assert settings.jwt_public_key_files == ("/etc/keys/jwt.pem",)


def test_development_push_origins_are_ignored_outside_development():
    config = development_config("notify", PUSH_DEVELOPMENT_ORIGINS="http://127.0.0.1:8089")
    assert build_settings(config, "notify", NotifySettings.load).push_development_origins == (
        "http://127.0.0.1:8089",
    )
