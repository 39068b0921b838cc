"""Every e-mail of the system is built by one Mailer (services/common/mail.py), so one rule
keeps its headers on one line, whatever a poll or feedback title contains (defect 15.15a)."""

from __future__ import annotations

import pytest

from services.common.mail import Mailer, header_value
from tests.fakes.smtp_sink import SmtpSink


@pytest.fixture
def sink():
    found = SmtpSink().start()
    yield found
    found.stop()


@pytest.mark.parametrize(
    "title",
    ["Wat we\r\nhoorden", "Wat we\nhoorden", "Wat we\rhoorden", "Wat we\u2028hoorden\x00"],
)
def test_a_line_break_in_a_feedback_title_leaves_one_subject_line(sink, title):
    mailer = Mailer(sink.url, "Gemeente Utrecht <peil@utrecht.example>")
    mailer.send(
        "bewoner@example.nl",
        f"Terugkoppeling: {title}",
        "tekst",
        headers={"List-Unsubscribe": "<https://example.nl/afmelden?t=1>\r\nBcc: x@y"},
    )
    (message,) = sink.to("bewoner@example.nl")
    assert message["Subject"] == "Terugkoppeling: Wat we hoorden"
    assert message["Bcc"] is None  # nothing injected through a header value
    assert message["List-Unsubscribe"] == "<https://example.nl/afmelden?t=1> Bcc: x@y"


def test_a_header_value_is_one_line_of_single_spaces():
    assert header_value("  a\t\tb \r\n c\x7f") == "a b c"
