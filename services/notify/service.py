"""notify: reaching residents — invitations to polls, reminders, feedback and measure updates —
by Web Push, FCM and e-mail.

Events in: resident_joined / resident_updated / resident_left / contact_left (the audience
projection; contact_left: one contact's devices),
poll_published (fan-out), poll_closed (cancel what is pending), response_recorded (answered: no
reminders), feedback_published and measure_updated (tell those who answered).
Events out: invitations_sent.
Work queue: ``notify.deliveries`` — batches of delivery ids, consumed by ``send_deliveries``.
RPC (from the gateway): register_device, list_devices, remove_device, set_preferences,
vapid_public_key, unsubscribe, link_status, revoke_link and reissue_link (personal links,
links.py); for
staff: delivery_summary, list_dead_deliveries, replay_dead_deliveries.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Histogram
from sqlalchemy.orm import Session

from services.common.amqp import ConfirmingPublisher
from services.common.cache import StaleTolerantCache
from services.common.clock import Clock
from services.common.consumers import idempotent_handler, work_consumer
from services.common.db import Database, after_commit, make_engine
from services.common.deadletter import publish_delayed
from services.common.environment import DevelopmentDefaults
from services.common.errors import EXPECTED, NotFound, Unauthorized, invalid
from services.common.events import DomainEvent
from services.common.logs import LoggingContext
from services.common.mail import Mailer
from services.common.metrics import Metrics
from services.common.municipal import DEFAULT_SETTINGS, default_branding
from services.common.outbox import Outbox
from services.common.rpc import RpcCaller, ServiceRpc, rpc
from services.common.settings import common_settings, settings_of
from services.common.timers import timer
from services.common.validation import load
from services.notify import (
    audience,
    channels,
    deliveries,
    dispatch,
    links,
    projection,
    schemas,
    webpush,
)
from services.notify.links import LinkSigner
from services.notify.push_endpoints import PushEndpointPolicy
from services.notify.senders import EmailSender, WebPushSender
from services.notify.settings import NotifySettings

log = logging.getLogger(__name__)
FANOUT_SECONDS = Histogram(
    "buurtpeil_fanout_write_seconds",
    "Writing the invitations and deliveries of one published poll.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LINK_REISSUES = Counter(
    "buurtpeil_link_reissue_requests_total",
    "Requests for a new personal link after a revocation, by what they did (links.py).",
    ["outcome"],
)


def valid_batch(body: Any) -> str | None:
    ids = body.get("delivery_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        return 'expected {"delivery_ids": [int, ...]}'
    return None


class Municipalities:
    """Settings and branding from panel, cached for a minute; panel's defaults if it is down
    (a fan-out must not fail because panel is restarting). ``caller``: how to reach panel,
    given when first needed (the service's ServiceRpc, set up after this)."""

    def __init__(self, caller: Callable[[], RpcCaller], ttl: float = 60):
        self._caller = caller
        self._cache = StaleTolerantCache(ttl)

    def _get(self, kind: str, code: str) -> dict[str, Any]:
        def fetch() -> dict[str, Any]:
            return self._caller().call("panel", f"get_{kind}", code)

        return self._cache.get(
            (kind, code),
            fetch,
            fallback=lambda: DEFAULT_SETTINGS if kind == "settings" else default_branding(code),
        )

    def settings(self, code: str) -> dict[str, Any]:
        return self._get("settings", code)

    def branding(self, code: str) -> dict[str, Any]:
        return self._get("branding", code)


class Notifier(DependencyProvider):
    """Per process: the senders, the dispatcher loop, the retry publisher, municipality data."""

    def __init__(self) -> None:
        self.dispatcher: dispatch.Dispatcher | None = None
        self.retry_publisher: ConfirmingPublisher | None = None

    def setup(self) -> None:
        settings = settings_of(self.container, NotifySettings.load)
        amqp_uri = common_settings(self.container).amqp_uri
        remote = ServiceRpc.of(self.container)
        self.municipalities = Municipalities(remote.outside_worker)
        vapid_key = Path(settings.vapid_private_key_file).read_text()
        self.vapid = webpush.Vapid(vapid_key, settings.vapid_subject)
        self.concurrency = settings.delivery_concurrency
        self.max_attempts = settings.delivery_max_attempts
        self.max_devices = settings.max_devices
        self.delays = list(settings.delivery_retry_delays)
        self.email = EmailSender(
            Mailer.from_settings(settings.mail),
            branding=self.municipalities.branding,
            app_url=settings.app_url,
            unsubscribe_secret=settings.unsubscribe_secret.reveal(),
            links=LinkSigner.from_file(
                settings.link_private_key_file,
                development=settings.development,
                issuer=settings.link_issuer,
                audience=settings.link_audience,
                app_url=settings.app_url,
            ),
        )
        self.push_policy = PushEndpointPolicy(
            settings.push_endpoint_hosts, settings.push_development_origins
        )
        self.senders: dict[str, channels.Sender] = {
            "webpush": WebPushSender(
                self.vapid,
                pool_size=self.concurrency,
                proxy=settings.push_proxy,
                policy=self.push_policy,
                deadline=settings.push_request_deadline,
                max_reply=settings.push_max_reply_bytes,
            ),
            "email": self.email,
        }
        fcm = make_fcm_sender(settings)
        if fcm is not None:
            self.senders["fcm"] = fcm
        self.retry_publisher = ConfirmingPublisher(amqp_uri)
        if settings.dispatcher:
            self.dispatcher = dispatch.Dispatcher(
                make_engine(settings.database_url, pool_size=2),
                amqp_uri,
                poll_interval=settings.dispatch_poll_interval,
                sweep_interval=settings.delivery_sweep_interval,
                stale_after=settings.delivery_stale_after,
                max_attempts=self.max_attempts,
            )

    def start(self) -> None:
        if self.dispatcher is not None:
            self.container.spawn_managed_thread(self.dispatcher.run, identifier="dispatcher")

    def stop(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self.retry_publisher is not None:
            self.retry_publisher.close()

    kill = stop

    def wake(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def get_dependency(self, worker_ctx: Any) -> Notifier:
        return self

    def retry_delay(self, attempt: int, retry_after: float | None) -> float:
        return dispatch.retry_delay(attempt, retry_after, self.delays)

    def publish_retries(self, retries: dict[float, list[int]]) -> None:
        for delay, ids in retries.items():
            level = max([d for d in self.delays if d <= delay] or [self.delays[0]])
            assert self.retry_publisher is not None  # made at setup
            publish_delayed(
                self.retry_publisher,
                queue=dispatch.WORK_QUEUE,
                body={"delivery_ids": ids},
                headers={},
                seconds=delay,
                level=level,
            )


def make_fcm_sender(settings: NotifySettings) -> Any:
    if not settings.fcm_project_id:
        return None
    from services.notify import fcm

    if settings.fcm_credentials_file:
        source: Any = fcm.ServiceAccountToken(
            json.loads(Path(settings.fcm_credentials_file).read_text()),
            session=fcm.make_session(),
        )
    else:
        token = settings.fcm_static_token
        source = fcm.StaticToken(token.reveal() if token else "")
    sender = fcm.FcmSender(
        settings.fcm_base_url,
        settings.fcm_project_id,
        source,
        session=fcm.make_session(settings.delivery_concurrency),
    )

    def send(job: channels.Job) -> channels.Outcome:
        assert job.address is not None  # channels._send answers a job without one itself
        content = job.content()
        result = sender.send(
            job.address,
            title=content["title"],
            body=content["body"],
            data={k: str(v) for k, v in content.items() if k not in ("title", "body")},
            collapse_key=webpush.topic_for(f"{job.ref_id}:{job.resident_id}", job.kind),
            ttl_seconds=7 * 24 * 3600,
            urgency="normal" if job.kind != "reminder" else "low",
        )
        return channels.Outcome(result.status, result.retry_after, result.error)

    return send


class NotifyService:
    name = "notify"

    db = Database()
    emit = Outbox()
    notifier = Notifier()
    # panel's settings and branding (Municipalities): a fan-out waits at most this long for them.
    remote = ServiceRpc(default_timeout=5)
    clock = Clock()
    metrics = Metrics()
    log_context = LoggingContext()
    development_defaults = DevelopmentDefaults()  # refused at start outside development

    # --- the audience projection ---------------------------------------------------------

    @idempotent_handler("panel", "resident_joined")
    def on_resident_joined(self, s: Session, event: DomainEvent) -> None:
        projection.upsert_resident(s, event.payload, self.clock())

    @idempotent_handler("panel", "resident_updated")
    def on_resident_updated(self, s: Session, event: DomainEvent) -> None:
        projection.upsert_resident(s, event.payload, self.clock())

    @idempotent_handler("panel", "contact_left")
    def on_contact_left(self, s: Session, event: DomainEvent) -> None:
        payload = event.payload
        projection.drop_contact(
            s,
            payload["resident_id"],
            payload["contact_id"],
            datetime.fromisoformat(payload["left_at"]),
        )

    @idempotent_handler("panel", "resident_left")
    def on_resident_left(self, s: Session, event: DomainEvent) -> None:
        projection.drop_resident(
            s, event.payload["resident_id"], datetime.fromisoformat(event.payload["left_at"])
        )

    # --- polls ---------------------------------------------------------------------------

    @idempotent_handler("polls", "poll_published")
    def on_poll_published(self, s: Session, event: DomainEvent) -> None:
        payload = event.payload
        cap = int(
            self.notifier.municipalities.settings(payload["municipality_code"]).get(
                "max_invitations_per_month", DEFAULT_SETTINGS["max_invitations_per_month"]
            )
        )
        started = time.perf_counter()
        poll = audience.store_poll(s, payload)
        at = self.clock()
        invited = audience.invite(s, poll=poll, now=at, monthly_cap=cap)
        queued = audience.queue_deliveries(
            s, kind="invitation", ref_id=poll.id, poll_id=poll.id, now=at
        )
        self.emit(
            s,
            "invitations_sent",
            {
                "poll_id": str(poll.id),
                "municipality_code": poll.municipality_code,
                "total": invited,
                "per_area": audience.invited_per_area(s, poll.id),
            },
        )

        def done() -> None:
            FANOUT_SECONDS.observe(time.perf_counter() - started)
            log.info("poll %s: %d invited, %d deliveries queued", poll.id, invited, queued)
            self.notifier.wake()

        after_commit(s, done)

    @idempotent_handler("polls", "poll_closed")
    def on_poll_closed(self, s: Session, event: DomainEvent) -> None:
        audience.close_poll(  # raises while the poll is not known here yet
            s,
            poll_id=uuid.UUID(event.payload["poll_id"]),
            closed_at=datetime.fromisoformat(event.payload["closed_at"]),
            now=self.clock(),
        )

    @idempotent_handler("responses", "response_recorded")
    def on_response_recorded(self, s: Session, event: DomainEvent) -> None:
        audience.mark_answered(
            s,
            poll_id=uuid.UUID(event.payload["poll_id"]),
            resident_id=uuid.UUID(event.payload["resident_id"]),
            now=self.clock(),
        )

    @timer("REMINDER_INTERVAL", 60.0)
    def send_reminders(self) -> int:
        """Queue each reminder once its offset after opening has passed, for invitees who
        have not answered, while the poll is open."""
        at = self.clock()
        queued = self.db.run(lambda s: audience.queue_reminders(s, now=at))
        if queued:
            self.notifier.wake()
        return queued

    # --- feedback ------------------------------------------------------------------------

    @idempotent_handler("feedback", "feedback_published")
    def on_feedback_published(self, s: Session, event: DomainEvent) -> None:
        payload = event.payload
        self._notice(
            s,
            event,
            "feedback",
            uuid.UUID(payload["feedback_id"]),
            payload["title"],
            None,
            who="everyone" if payload.get("notify_all_invitees") else "answered",
        )

    @idempotent_handler("feedback", "measure_updated")
    def on_measure_updated(self, s: Session, event: DomainEvent) -> None:
        payload = event.payload
        seq = int(datetime.fromisoformat(payload["updated_at"]).timestamp())
        self._notice(
            s,
            event,
            "measure",
            uuid.UUID(payload["measure_id"]),
            payload["title"],
            payload["status"],
            who="answered",
            seq=seq,
        )

    def _notice(
        self,
        s: Session,
        event: DomainEvent,
        kind: str,
        ref_id: uuid.UUID,
        title: str,
        status: str | None,
        *,
        who: str,
        seq: int = 0,
    ) -> None:
        queued = audience.queue_notice(
            s,
            kind=kind,
            ref_id=ref_id,
            poll_id=uuid.UUID(event.payload["poll_id"]),
            title=title,
            status=status,
            who=who,
            now=self.clock(),
            seq=seq,
        )
        if queued:
            after_commit(s, self.notifier.wake)

    # --- the channel workers -------------------------------------------------------------

    @work_consumer(dispatch.work_queue(), validate=valid_batch)
    def send_deliveries(self, body: dict[str, Any]) -> dict[str, int]:
        n = self.notifier
        result = channels.process_batch(
            self.db.session_factory,
            body["delivery_ids"],
            senders=n.senders,
            now=self.clock,
            municipality_quiet_hours=lambda code: n.municipalities.settings(code).get(
                "quiet_hours"
            ),
            retry_delay=n.retry_delay,
            max_attempts=n.max_attempts,
            concurrency=n.concurrency,
        )
        n.publish_retries(result.retry)
        return {
            "sent": result.sent,
            "deferred": result.deferred,
            "gone": result.gone,
            "dead": result.dead,
            "retrying": sum(len(v) for v in result.retry.values()),
        }

    # --- devices and preferences (for the residents' app, through the gateway) ------------

    @rpc(expected_exceptions=EXPECTED)
    def register_device(
        self, resident_id: str, data: dict[str, Any], contact_id: str | None = None
    ) -> dict[str, Any]:
        fields = load(schemas.DeviceIn(), data)
        if fields["channel"] == "webpush":
            refused = self.notifier.push_policy.problem(fields["endpoint"])
            if refused:
                raise invalid("endpoint", "push_service_not_allowed", refused)
        return self.db.run(
            lambda s: projection.serialize_device(
                projection.register_device(
                    s,
                    resident_id=resident_id,
                    data=fields,
                    now=self.clock(),
                    max_devices=self.notifier.max_devices,
                    contact_id=contact_id,
                ),
                contact_id,
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_devices(self, resident_id: str, contact_id: str | None = None) -> list[dict[str, Any]]:
        return self.db.run(lambda s: projection.list_devices(s, resident_id, contact_id))

    @rpc(expected_exceptions=EXPECTED)
    def remove_device(
        self, resident_id: str, device_id: str, contact_id: str | None = None
    ) -> None:
        self.db.run(
            lambda s: projection.remove_device(
                s, resident_id=resident_id, device_id=device_id, contact_id=contact_id
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def set_preferences(self, resident_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.PreferencesIn(), changes)
        return self.db.run(
            lambda s: projection.set_preferences(
                s, resident_id=resident_id, changes=fields, now=self.clock()
            )
        )

    @rpc
    def vapid_public_key(self) -> str:
        return self.notifier.vapid.public_key_b64

    @rpc(expected_exceptions=EXPECTED)
    def unsubscribe(self, token: str) -> dict[str, bool]:
        """The e-mail footer's one-click link: stop e-mail for this resident."""
        resident_id = self.notifier.email.resident_of(token)
        if resident_id is None:
            raise Unauthorized(
                "this unsubscribe link is not valid",
                [{"field": "token", "code": "invalid", "message": "unknown link"}],
            )
        self.db.run(lambda s: projection.unsubscribe_email(s, uuid.UUID(resident_id)))
        return {"unsubscribed": True}

    @rpc(expected_exceptions=EXPECTED)
    def link_status(self, poll_id: str, resident_id: str, generation: int = 0) -> str:
        """For the gateway, on every use of a personal link (links.py): open, answered, revoked
        or unknown (no such invitation) — of the link of this generation."""
        poll, resident, gen = _uuid(poll_id), _uuid(resident_id), _generation(generation)
        return self.db.run(
            lambda s: links.link_status(s, poll_id=poll, resident_id=resident, generation=gen)
        )

    @rpc(expected_exceptions=EXPECTED)
    def revoke_link(self, poll_id: str, resident_id: str, generation: int = 0) -> str:
        """The participant revokes their personal link to a poll (idempotent); its status
        after: revoked (or answered, or unknown: nothing to revoke)."""
        poll, resident, gen = _uuid(poll_id), _uuid(resident_id), _generation(generation)
        now = self.clock()
        return self.db.run(
            lambda s: links.revoke_link(
                s, poll_id=poll, resident_id=resident, now=now, generation=gen
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def reissue_link(self, poll_id: str, resident_id: str, generation: int) -> str:
        """The holder of a revoked link (of this generation) asks for a new one: an e-mail
        with the invitation's current link to the participant's own address, if they have not
        answered, the poll is open and fewer than links.REISSUE_LIMIT requests were made. What
        it did (links.reissue_link); the gateway shows the asker one answer for all but
        "limited"."""
        if self.notifier.email.links is None:  # no link key: e-mails carry no link at all
            return links.UNKNOWN
        poll, resident, gen = _uuid(poll_id), _uuid(resident_id), _generation(generation)
        now = self.clock()
        outcome = self.db.run(
            lambda s: links.reissue_link(
                s, poll_id=poll, resident_id=resident, generation=gen, now=now
            )
        )
        LINK_REISSUES.labels(outcome).inc()
        log.info("poll %s: a new personal link asked for: %s", poll, outcome)
        if outcome == links.SENT:
            self.notifier.wake()
        return outcome

    # --- for staff and operations --------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def invitation_areas(self, resident_id: str, poll_ids: list[str]) -> dict[str, Any]:
        """For the gateway: of these polls, those the resident was invited to, each with the
        area they were invited in (None once answered) — a sample poll is open to its drawn
        residents only, and an answer counts where its resident was invited."""
        ids = [_uuid(p) for p in poll_ids]
        if not ids:
            return {}
        resident = _uuid(resident_id)
        return self.db.run(
            lambda s: audience.invitation_areas(s, resident_id=resident, poll_ids=ids)
        )

    @rpc(expected_exceptions=EXPECTED)
    def audience_reach(self, municipality_code: str, audience_spec: dict[str, Any]) -> int:
        """For staff choosing an audience: how many residents it would invite now (the same
        eligibility and monthly cap as the fan-out; the gateway hides a count below k)."""
        cap = int(
            self.notifier.municipalities.settings(municipality_code).get(
                "max_invitations_per_month", DEFAULT_SETTINGS["max_invitations_per_month"]
            )
        )
        return self.db.run(
            lambda s: audience.reach(
                s,
                municipality_code=municipality_code,
                audience=audience_spec,
                now=self.clock(),
                monthly_cap=cap,
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def delivery_summary(self, municipality_code: str, poll_id: str) -> dict[str, Any]:
        return self.db.run(
            lambda s: deliveries.delivery_summary(
                s, municipality_code=municipality_code, poll_id=poll_id
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_dead_deliveries(self, municipality_code: str, limit: int = 100) -> list[dict]:
        return self.db.run(
            lambda s: deliveries.list_dead(s, municipality_code=municipality_code, limit=limit)
        )

    @rpc(expected_exceptions=EXPECTED)
    def replay_dead_deliveries(
        self, municipality_code: str, data: dict[str, Any] | None = None
    ) -> dict[str, int]:
        """Queue dead deliveries again (all of this municipality's, or the ids given)."""
        fields = load(schemas.ReplayIn(), data or {})
        replayed = self.db.run(
            lambda s: deliveries.replay_dead(
                s,
                municipality_code=municipality_code,
                delivery_ids=fields.get("delivery_ids"),
                now=self.clock(),
            )
        )
        self.notifier.wake()
        return {"replayed": replayed}


def _generation(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid("generation", "invalid", "a link's generation is a whole number, 0 or more")
    return value


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("no such poll") from None
