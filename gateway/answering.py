"""The one path from answers to the responses intake queue, whatever the channel: the resident
app and the browser (``resident_api.submit``) and paper forms keyed in by staff
(``paper_api.key_in_form``). Each route decides who answers and where the answer counts; the
validation against the poll (``pollspec.validate_answers``, with the municipality's location
check), the receipt, the submission (``services/common/intake.py``) and the publish with its
publisher confirm are here, once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.errors import ServiceUnavailable
from gateway.routing import RequestContext
from services.common import intake as intake_contract
from services.common.errors import InvalidInput
from services.common.pollspec import PollSpecError, validate_answers


def checked_answers(ctx: RequestContext, poll: dict[str, Any], answers: Any) -> dict[str, Any]:
    """The answers as the poll accepts them (docs/pollspec.md), or InvalidInput (422) naming
    each answer at fault as ``answers.<question id>``."""
    try:
        return validate_answers(
            poll["definition"], answers, location_check=location_check(ctx, poll)
        )
    except PollSpecError as exc:
        raise InvalidInput("the answers are not valid", [e.as_dict() for e in exc.errors]) from None


def location_check(ctx: RequestContext, poll: dict[str, Any]) -> Any:
    """Inside the municipality (any of its buurten). The boundaries are fetched only when an
    answer actually holds a location."""

    def inside(lat: float, lon: float) -> bool:
        return ctx.gateway.boundaries.locator(poll["municipality_code"], ctx.rpc).covers(lat, lon)

    return inside


def queue_submission(
    ctx: RequestContext,
    poll: dict[str, Any],
    answers: dict[str, Any],
    *,
    resident: dict[str, Any],
    holder: str,
    channel: str = "app",
    receipt: str | None = None,
) -> tuple[str, str]:
    """Publish checked ``answers`` (``checked_answers``) as a submission; the receipt id (a new
    one, or ``receipt``) and the token ``holder`` may read it with. ServiceUnavailable (503)
    when the broker did not confirm it: nothing was accepted."""
    if receipt is None:
        receipt, token = ctx.gateway.receipts.issue(holder)
    else:
        token = ctx.gateway.receipts.token_for(receipt, holder)
    submission = intake_contract.submission(
        receipt_id=receipt,
        poll_id=poll["poll_id"],
        answers=answers,
        submitted_at=datetime.now(UTC),
        resident=resident,
        channel=channel,
    )
    try:
        ctx.gateway.intake.publish(submission)
    except Exception as exc:  # noqa: BLE001 - not accepted: say so, nothing is lost
        raise ServiceUnavailable("the submission could not be queued; try again") from exc
    return receipt, token
