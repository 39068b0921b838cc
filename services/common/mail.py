"""E-mail over SMTP, as a nameko dependency: ``self.mail.send(to, subject, text, html=None)``.

Every message of the system is built here, so header values are made safe here: one line each
(:func:`header_value`), whatever a title or a name contains.

Config: ``SMTP_URL`` (``smtp://host:port``; ``smtps://`` for implicit TLS, ``?starttls=1`` to
upgrade), ``SMTP_USER``, ``SMTP_PASSWORD``, ``MAIL_FROM``.
"""

from __future__ import annotations

import re
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import parse_qs, urlparse

from nameko.extensions import DependencyProvider

from services.common.settings import MailSettings, Secret, settings_of

# Line breaks and other control characters have no place in a header value: a title typed with
# a newline would make every e-mail of it fail (or, unfolded, inject a header).
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def header_value(value: str) -> str:
    """One line of text for a header: control characters (CR, LF, tab, …) become one space."""
    return " ".join(_CONTROL.sub(" ", str(value)).split())


class Mailer:
    def __init__(
        self, url: str, sender: str, user: str | None = None, password: Secret | None = None
    ):
        self.url = urlparse(url)
        self.sender = sender
        self.user, self.password = user, password

    @classmethod
    def from_settings(cls, settings: MailSettings) -> Mailer:
        return cls(
            settings.smtp_url, settings.mail_from, settings.smtp_user, settings.smtp_password
        )

    def send(
        self,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        message = EmailMessage()
        message["From"] = header_value(self.sender)
        message["To"] = header_value(to)
        message["Subject"] = header_value(subject)
        message["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[-1].strip(">"))
        for key, value in (headers or {}).items():
            message[key] = header_value(value)
        message.set_content(text)
        if html:
            message.add_alternative(html, subtype="html")
        smtp_cls = smtplib.SMTP_SSL if self.url.scheme == "smtps" else smtplib.SMTP
        with smtp_cls(self.url.hostname or "", self.url.port or 25, timeout=10) as smtp:
            if parse_qs(self.url.query).get("starttls") == ["1"]:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password.reveal() if self.password else "")
            smtp.send_message(message)
        return str(message["Message-ID"])


class Mail(DependencyProvider):
    def setup(self) -> None:
        self.mailer = Mailer.from_settings(settings_of(self.container, MailSettings.load))

    def get_dependency(self, worker_ctx: Any) -> Mailer:
        return self.mailer
