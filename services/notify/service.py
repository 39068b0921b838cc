"""notify: reaching residents — invitations to polls, reminders, feedback and measure updates —
by Web Push, FCM and e-mail.

Events in: resident_joined / resident_updated / resident_left (the audience projection),
poll_published (fan-out), poll_closed (cancel what is pending), response_recorded (answered: no
reminders), feedback_published and measure_updated (tell those who answered).
Events out: invitations_sent.
Work queue: ``notify.deliveries`` — batches of delivery ids, consumed by ``send_deliveries``.
RPC (from the gateway): register_device, list_devices, remove_device, set_preferences,
vapid_public_key, unsubscribe; for staff: delivery_summary, list_dead_deliveries,
replay_dead_deliveries.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy
from prometheus_client import Histogram

from services.common.amqp import ConfirmingPublisher
from services.common.cache import StaleTolerantCache
from services.common.consumers import event_handler, work_consumer
from services.common.db import Database, make_engine
from services.common.deadletter import publish_delayed
from services.common.errors import EXPECTED, NotFound, Unauthorized
from services.common.logs import LoggingContext
from services.common.mail import Mailer
from services.common.metrics import Metrics
from services.common.outbox import Outbox, claim_event
from services.common.timers import timer
from services.common.validation import load
from services.notify import audience, channels, dispatch, projection, schemas, webpush
from services.notify.models import Delivery, Invitation, Notice, Poll
from services.notify.senders import EmailSender, WebPushSender
from services.panel.tenants import DEFAULT_SETTINGS, default_branding

log = logging.getLogger(__name__)
FANOUT_SECONDS = Histogram(
    "buurtpeil_fanout_write_seconds",
    "Writing the invitations and deliveries of one published poll.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def now() -> datetime:
    return datetime.now(UTC)


def valid_batch(body: Any) -> str | None:
    ids = body.get("delivery_ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        return 'expected {"delivery_ids": [int, ...]}'
    return None


class Municipalities:
    """Settings and branding from panel, cached for a minute; panel's defaults if it is down
    (a fan-out must not fail because panel is restarting)."""

    def __init__(self, config: dict[str, Any], ttl: float = 60):
        self.config = {"AMQP_URI": config["AMQP_URI"]}
        self._cache = StaleTolerantCache(ttl)

    def _get(self, kind: str, code: str) -> dict[str, Any]:
        def fetch() -> dict[str, Any]:
            with ClusterRpcProxy(self.config, timeout=5) as cluster:
                return getattr(cluster.panel, f"get_{kind}")(code)

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
        config = self.container.config
        self.municipalities = Municipalities(config)
        vapid_key = Path(config["VAPID_PRIVATE_KEY_FILE"]).read_text()
        self.vapid = webpush.Vapid(vapid_key, config["VAPID_SUBJECT"])
        concurrency = int(config.get("DELIVERY_CONCURRENCY", 64))
        self.concurrency = concurrency
        self.max_attempts = int(config.get("DELIVERY_MAX_ATTEMPTS", 6))
        self.delays = [
            float(d) for d in config.get("DELIVERY_RETRY_DELAYS", [5, 30, 120, 600, 3600])
        ]
        mailer = Mailer(
            config["SMTP_URL"],
            config["MAIL_FROM"],
            config.get("SMTP_USER"),
            config.get("SMTP_PASSWORD"),
        )
        self.email = EmailSender(
            mailer,
            branding=self.municipalities.branding,
            app_url=config["APP_URL"],
            unsubscribe_secret=config["UNSUBSCRIBE_SECRET"],
        )
        self.senders: dict[str, channels.Sender] = {
            "webpush": WebPushSender(
                self.vapid, pool_size=concurrency, proxy=config.get("PUSH_PROXY") or None
            ),
            "email": self.email,
        }
        fcm = make_fcm_sender(config)
        if fcm is not None:
            self.senders["fcm"] = fcm
        self.retry_publisher = ConfirmingPublisher(config["AMQP_URI"])
        if str(config.get("DISPATCHER", True)).lower() not in ("false", "0", "no"):
            self.dispatcher = dispatch.Dispatcher(
                make_engine(config["DATABASE_URL"], pool_size=2),
                config["AMQP_URI"],
                poll_interval=float(config.get("DISPATCH_POLL_INTERVAL", 1.0)),
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
            publish_delayed(
                self.retry_publisher,
                queue=dispatch.WORK_QUEUE,
                body={"delivery_ids": ids},
                headers={},
                seconds=delay,
                level=level,
            )


def make_fcm_sender(config: dict[str, Any]) -> Any:
    if not config.get("FCM_PROJECT_ID"):
        return None
    from services.notify import fcm

    if config.get("FCM_CREDENTIALS_FILE"):
        source: Any = fcm.ServiceAccountToken(
            json.loads(Path(config["FCM_CREDENTIALS_FILE"]).read_text()),
            session=fcm.make_session(),
        )
    else:
        source = fcm.StaticToken(config["FCM_STATIC_TOKEN"])
    sender = fcm.FcmSender(
        config["FCM_BASE_URL"],
        config["FCM_PROJECT_ID"],
        source,
        session=fcm.make_session(int(config.get("DELIVERY_CONCURRENCY", 50))),
    )

    def send(job: channels.Job) -> channels.Outcome:
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
    config = Config()
    metrics = Metrics()
    log_context = LoggingContext()

    # --- the audience projection ---------------------------------------------------------

    @event_handler("panel", "resident_joined")
    def on_resident_joined(self, event: Any) -> None:
        self._upsert_resident(event, "notify.resident_joined")

    @event_handler("panel", "resident_updated")
    def on_resident_updated(self, event: Any) -> None:
        self._upsert_resident(event, "notify.resident_updated")

    def _upsert_resident(self, event: Any, handler: str) -> None:
        def apply(s: Any) -> None:
            if claim_event(s, event, handler):
                projection.upsert_resident(s, event.payload, now())

        self.db.run(apply)

    @event_handler("panel", "resident_left")
    def on_resident_left(self, event: Any) -> None:
        def apply(s: Any) -> None:
            if claim_event(s, event, "notify.resident_left"):
                projection.drop_resident(s, event.payload["resident_id"])

        self.db.run(apply)

    # --- polls ---------------------------------------------------------------------------

    @event_handler("polls", "poll_published")
    def on_poll_published(self, event: Any) -> None:
        payload = event.payload
        cap = int(
            self.notifier.municipalities.settings(payload["municipality_code"]).get(
                "max_invitations_per_month", DEFAULT_SETTINGS["max_invitations_per_month"]
            )
        )
        started = time.perf_counter()

        def fan_out(s: Any) -> tuple[int, int] | None:
            if not claim_event(s, event, "notify.poll_published"):
                return None
            poll = audience.store_poll(s, payload)
            at = now()
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
            return invited, queued

        result = self.db.run(fan_out)
        if result is not None:
            FANOUT_SECONDS.observe(time.perf_counter() - started)
            log.info("poll %s: %d invited, %d deliveries queued", payload["poll_id"], *result)
            self.notifier.wake()

    @event_handler("polls", "poll_closed")
    def on_poll_closed(self, event: Any) -> None:
        poll_id = uuid.UUID(event.payload["poll_id"])

        def apply(s: Any) -> None:
            if not claim_event(s, event, "notify.poll_closed"):
                return
            s.execute(
                sa.update(Poll)
                .where(Poll.id == poll_id)
                .values(closed_at=datetime.fromisoformat(event.payload["closed_at"]))
            )
            s.execute(
                sa.update(Delivery)
                .where(
                    Delivery.poll_id == poll_id,
                    Delivery.kind.in_(["invitation", "reminder"]),
                    Delivery.status.in_(["queued", "deferred", "retrying"]),
                )
                .values(status="cancelled", updated_at=now())
            )

        self.db.run(apply)

    @event_handler("responses", "response_recorded")
    def on_response_recorded(self, event: Any) -> None:
        payload = event.payload

        def apply(s: Any) -> None:
            if not claim_event(s, event, "notify.response_recorded"):
                return
            key = (uuid.UUID(payload["poll_id"]), uuid.UUID(payload["resident_id"]))
            s.execute(
                sa.update(Invitation)
                .where(
                    Invitation.poll_id == key[0],
                    Invitation.resident_id == key[1],
                    Invitation.answered_at.is_(None),
                )
                .values(answered_at=datetime.fromisoformat(payload["recorded_at"]))
            )
            s.execute(
                sa.update(Delivery)
                .where(
                    Delivery.poll_id == key[0],
                    Delivery.resident_id == key[1],
                    Delivery.kind == "reminder",
                    Delivery.status.in_(["queued", "deferred", "retrying"]),
                )
                .values(status="cancelled", updated_at=now())
            )

        self.db.run(apply)

    @timer("REMINDER_INTERVAL", 60.0)
    def send_reminders(self) -> int:
        """Queue each reminder once its offset after opening has passed, for invitees who
        have not answered, while the poll is open."""
        at = now()

        def queue(s: Any) -> int:
            polls = s.scalars(
                sa.select(Poll).where(
                    Poll.closed_at.is_(None),
                    sa.or_(Poll.closes_at.is_(None), Poll.closes_at > at),
                    sa.func.jsonb_array_length(Poll.reminder_after_hours) > 0,
                )
            ).all()
            queued = 0
            for poll in polls:
                for seq, hours in enumerate(sorted(poll.reminder_after_hours), start=1):
                    if poll.opens_at + timedelta(hours=hours) <= at:
                        queued += audience.queue_deliveries(
                            s,
                            kind="reminder",
                            ref_id=poll.id,
                            poll_id=poll.id,
                            now=at,
                            who="not_answered",
                            seq=seq,
                        )
            return queued

        queued = self.db.run(queue)
        if queued:
            self.notifier.wake()
        return queued

    # --- feedback ------------------------------------------------------------------------

    @event_handler("feedback", "feedback_published")
    def on_feedback_published(self, event: Any) -> None:
        payload = event.payload
        self._notice(
            event,
            "feedback",
            uuid.UUID(payload["feedback_id"]),
            payload["title"],
            None,
            who="everyone" if payload.get("notify_all_invitees") else "answered",
        )

    @event_handler("feedback", "measure_updated")
    def on_measure_updated(self, event: Any) -> None:
        payload = event.payload
        seq = int(datetime.fromisoformat(payload["updated_at"]).timestamp())
        self._notice(
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
        event: Any,
        kind: str,
        ref_id: uuid.UUID,
        title: str,
        status: str | None,
        *,
        who: str,
        seq: int = 0,
    ) -> None:
        poll_id = uuid.UUID(event.payload["poll_id"])

        def apply(s: Any) -> int:
            if not claim_event(s, event, f"notify.{event.name}"):
                return 0
            s.merge(Notice(ref_id=ref_id, kind=kind, poll_id=poll_id, title=title, status=status))
            s.flush()
            return audience.queue_deliveries(
                s, kind=kind, ref_id=ref_id, poll_id=poll_id, now=now(), who=who, seq=seq
            )

        if self.db.run(apply):
            self.notifier.wake()

    # --- the channel workers -------------------------------------------------------------

    @work_consumer(dispatch.work_queue(), validate=valid_batch)
    def send_deliveries(self, body: dict[str, Any]) -> dict[str, int]:
        n = self.notifier
        result = channels.process_batch(
            self.db.session_factory,
            body["delivery_ids"],
            senders=n.senders,
            now=now,
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
    def register_device(self, resident_id: str, data: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.DeviceIn(), data)
        return self.db.run(
            lambda s: projection.serialize_device(
                projection.register_device(s, resident_id=resident_id, data=fields, now=now())
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_devices(self, resident_id: str) -> list[dict[str, Any]]:
        return self.db.run(lambda s: projection.list_devices(s, resident_id))

    @rpc(expected_exceptions=EXPECTED)
    def remove_device(self, resident_id: str, device_id: str) -> None:
        self.db.run(
            lambda s: projection.remove_device(s, resident_id=resident_id, device_id=device_id)
        )

    @rpc(expected_exceptions=EXPECTED)
    def set_preferences(self, resident_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.PreferencesIn(), changes)
        return self.db.run(
            lambda s: projection.set_preferences(
                s, resident_id=resident_id, changes=fields, now=now()
            )
        )

    @rpc
    def vapid_public_key(self) -> str:
        return self.notifier.vapid.public_key_b64

    @rpc(expected_exceptions=EXPECTED)
    def unsubscribe(self, token: str) -> dict[str, bool]:
        """The e-mail footer's one-click link: stop e-mail for this resident."""
        resident_id = str(token).split(".", 1)[0]
        if self.notifier.email.unsubscribe_token(resident_id) != token:
            raise Unauthorized(
                "this unsubscribe link is not valid",
                [{"field": "token", "code": "invalid", "message": "unknown link"}],
            )
        self.db.run(
            lambda s: s.execute(
                sa.text("DELETE FROM endpoints WHERE resident_id = :r AND channel = 'email'"),
                {"r": uuid.UUID(resident_id)},
            )
        )
        return {"unsubscribed": True}

    # --- for staff and operations --------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def delivery_summary(self, municipality_code: str, poll_id: str) -> dict[str, Any]:
        def read(s: Any) -> dict[str, Any]:
            poll = s.get(Poll, _uuid(poll_id))
            if poll is None:  # not published (yet): nothing sent
                return {"poll_id": poll_id, "invited": 0, "deliveries": []}
            if poll.municipality_code != municipality_code:
                raise NotFound("no such poll")
            rows = s.execute(
                sa.select(Delivery.kind, Delivery.channel, Delivery.status, sa.func.count())
                .where(Delivery.poll_id == poll.id)
                .group_by(Delivery.kind, Delivery.channel, Delivery.status)
            ).all()
            invited = s.scalar(
                sa.select(sa.func.count())
                .select_from(Invitation)
                .where(Invitation.poll_id == poll.id)
            )
            return {
                "poll_id": poll_id,
                "invited": invited,
                "deliveries": [
                    {"kind": k, "channel": c, "status": st, "count": n} for k, c, st, n in rows
                ],
            }

        return self.db.run(read)

    @rpc(expected_exceptions=EXPECTED)
    def list_dead_deliveries(self, municipality_code: str, limit: int = 100) -> list[dict]:
        def read(s: Any) -> list[dict[str, Any]]:
            rows = s.execute(
                sa.select(Delivery)
                .join(Poll, Poll.id == Delivery.poll_id)
                .where(Poll.municipality_code == municipality_code, Delivery.status == "dead")
                .order_by(Delivery.updated_at.desc())
                .limit(min(limit, 1000))
            ).scalars()
            return [
                {
                    "delivery_id": d.id,
                    "kind": d.kind,
                    "poll_id": str(d.poll_id),
                    "channel": d.channel,
                    "attempts": d.attempts,
                    "last_error": d.last_error,
                    "updated_at": d.updated_at.isoformat(),
                }
                for d in rows
            ]

        return self.db.run(read)

    @rpc(expected_exceptions=EXPECTED)
    def replay_dead_deliveries(
        self, municipality_code: str, data: dict[str, Any] | None = None
    ) -> dict[str, int]:
        """Queue dead deliveries again (all of this municipality's, or the ids given)."""
        fields = load(schemas.ReplayIn(), data or {})

        def replay(s: Any) -> int:
            query = (
                sa.update(Delivery)
                .where(
                    Delivery.status == "dead",
                    Delivery.poll_id.in_(
                        sa.select(Poll.id).where(Poll.municipality_code == municipality_code)
                    ),
                )
                .values(
                    status="queued",
                    attempts=0,
                    dispatched_at=None,
                    queued_at=now(),
                    updated_at=now(),
                )
                .execution_options(synchronize_session=False)
            )
            if fields.get("delivery_ids"):
                query = query.where(Delivery.id.in_(fields["delivery_ids"]))
            return s.execute(query).rowcount

        replayed = self.db.run(replay)
        self.notifier.wake()
        return {"replayed": replayed}


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("no such poll") from None
