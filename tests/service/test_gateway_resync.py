"""The gateway's in-memory copies survive a lost broker connection (issue 15, item 6).

The gateway's broadcast queues are exclusive: they vanish with the connection, and events
published meanwhile are never delivered. Its AMQP connections go through a TCP proxy here,
which is cut and restored; the cache must be read again from polls after the reconnection.
"""

from __future__ import annotations

import uuid

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from tests.conftest import wait_for
from tests.support.answers import minimal_answers
from tests.support.gateway import Api, free_port, resident_token
from tests.support.infra import AMQP_HOST
from tests.support.panel import UTRECHT
from tests.support.tcp_proxy import ProxyProcess


@pytest.fixture
def amqp_proxy(amqp_uri):
    host, port = AMQP_HOST.rsplit(":", 1)
    proxy = ProxyProcess((host, int(port)))
    yield proxy
    proxy.stop()


@pytest.fixture
def behind_proxy(amqp_proxy, container_factory, service_config, jwt_keys):
    """polls and panel on the broker directly; the gateway's every AMQP connection (consumers,
    RPC, intake) through the proxy. Resyncs only at start and on reconnection (an hour's
    interval), so what is tested is the reconnection."""
    from gateway.service import GatewayService
    from services.panel.service import PanelService
    from services.polls.service import PollsService

    containers = {
        "polls": container_factory(PollsService, service_config("polls", OUTBOX_POLL_INTERVAL=0.1)),
        "panel": container_factory(PanelService, service_config("panel", OUTBOX_POLL_INTERVAL=0.1)),
    }
    for container in containers.values():
        container.start()
    port = free_port()
    config = service_config(
        "gateway",
        WEB_SERVER_ADDRESS=f"127.0.0.1:{port}",
        RPC_TIMEOUT=5,
        CACHE_RESYNC_INTERVAL=3600,
    )
    config["AMQP_URI"] = amqp_proxy.url(config["AMQP_URI"])
    gateway = container_factory(GatewayService, config)
    gateway.start()
    api = Api(f"http://127.0.0.1:{port}", jwt_keys["private_key"], requests.Session())
    wait_for(lambda: checks(api).get("poll_cache"), timeout=30, message="the poll cache")
    yield {"api": api, "rpc_config": service_config("polls"), "containers": containers}
    # Stopped while the proxy still forwards: a consumer killed while it cannot reach the
    # broker would retry for ever.
    gateway.stop()


def checks(api):
    try:
        return api.request("GET", "/readyz").json()["checks"]
    except (requests.RequestException, ValueError, KeyError):
        return {}


def publish(rpc, template):
    poll = rpc.polls.create_poll(
        UTRECHT, {"template_id": template, "audience": {"kind": "municipality"}}
    )
    assert rpc.polls.publish_poll(UTRECHT, poll["id"])["status"] == "open"
    return poll["id"]


def answer(api, token, poll_id):
    found = api.request("GET", f"/api/v1/polls/{poll_id}", token=token)
    if found.status_code != 200:
        return found.status_code
    return api.request(
        "POST",
        f"/api/v1/polls/{poll_id}/responses",
        token=token,
        json={"answers": minimal_answers(found.json()["definition"])},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    ).status_code


def test_poll_cache_goes_stale_after_broker_reconnect_no_more(amqp_proxy, behind_proxy):
    api = behind_proxy["api"]
    token = resident_token(api, municipality=UTRECHT, buurt="BU03440111")
    with ClusterRpcProxy(behind_proxy["rpc_config"]) as rpc:
        before = publish(rpc, "verlichting")
        wait_for(lambda: answer(api, token, before) == 202, message="the first poll answerable")

        severed = amqp_proxy.cut()
        assert severed["severed"] > 0  # the gateway's connections were really cut
        during = publish(rpc, "afval")
        rpc.polls.close_poll(UTRECHT, before)
        assert during in {p["id"] for p in rpc.polls.list_open_polls()}

        amqp_proxy.restore()
        wait_for(
            lambda: answer(api, token, during) == 202,
            timeout=60,
            message="the poll published while the connection was down answerable",
        )
        assert answer(api, token, before) == 404  # closed meanwhile: gone from the cache
        wait_for(lambda: checks(api).get("poll_cache"), message="readiness after the resync")


def test_readyz_names_a_poll_cache_that_could_not_resync(
    amqp_proxy, behind_proxy, container_factory, service_config
):
    from services.polls.service import PollsService

    api = behind_proxy["api"]
    behind_proxy["containers"]["polls"].stop()
    amqp_proxy.cut()
    amqp_proxy.restore()

    def not_ready():
        found = api.request("GET", "/readyz")
        return found.status_code == 503 and found.json()["checks"]["poll_cache"] is False

    wait_for(not_ready, timeout=60, message="/readyz naming the poll cache")
    container_factory(PollsService, service_config("polls", OUTBOX_POLL_INTERVAL=0.1)).start()
    wait_for(
        lambda: checks(api).get("poll_cache") is True,
        timeout=60,
        message="the poll cache resynchronised once polls is back",
    )


def test_revocations_missed_while_disconnected_are_read_again(amqp_proxy, behind_proxy, engines):
    """The revoked-session list is the other in-memory copy: a staff account disabled while
    the gateway's connection was down is refused once it is back."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from services.panel import accounts

    api = behind_proxy["api"]
    with ClusterRpcProxy(behind_proxy["rpc_config"]) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
    with Session(engines["panel"]) as session, session.begin():
        editor = accounts.create_staff(
            session,
            municipality_code=UTRECHT,
            email="redacteur@utrecht.nl",
            role="editor",
            password="Zes lange woorden hier",
            now=datetime.now(UTC),
        )
        editor_id = str(editor.id)
    signed_in = api.request(
        "POST",
        "/admin/v1/login",
        json={"email": "redacteur@utrecht.nl", "password": "Zes lange woorden hier"},
    )
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["access_token"]
    assert api.request("GET", "/admin/v1/settings", token=token).status_code == 200

    amqp_proxy.cut()
    with ClusterRpcProxy(behind_proxy["rpc_config"]) as rpc:
        rpc.panel.change_staff(UTRECHT, editor_id, {"status": "disabled"}, str(uuid.uuid4()))
    amqp_proxy.restore()
    wait_for(
        lambda: api.request("GET", "/admin/v1/settings", token=token).status_code == 401,
        timeout=60,
        message="the session revoked while the gateway was disconnected refused",
    )
    wait_for(lambda: checks(api).get("revocations"), message="readiness after the resync")


@pytest.fixture
def gateway_overrides():
    """For the ``api`` world below: a resync every second."""
    return {"CACHE_RESYNC_INTERVAL": 1}


def test_a_poll_whose_event_never_came_is_found_by_the_periodic_resync(
    api, service_config, engines
):
    """The resync also runs every ``CACHE_RESYNC_INTERVAL`` seconds, not only on reconnection:
    a ``poll_published`` the gateway never got (no reconnection it could notice) leaves the
    poll unanswerable only until the next one. The poll is published here in the polls
    database without its event, as if the broadcast were lost."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from services.polls import lifecycle

    token = resident_token(api, municipality=UTRECHT, buurt="BU03440111")
    with ClusterRpcProxy(service_config("polls")) as rpc:
        poll = rpc.polls.create_poll(
            UTRECHT, {"template_id": "afval", "audience": {"kind": "municipality"}}
        )
    with Session(engines["polls"]) as session, session.begin():
        published = lifecycle.publish_poll(
            session,
            municipality_code=UTRECHT,
            poll_id=poll["id"],
            now=datetime.now(UTC),
            emit=lambda *_: None,  # the event lost
        )
        assert published.status == "open"
    wait_for(
        lambda: answer(api, token, poll["id"]) == 202,
        timeout=30,
        message="the poll without its event answerable after a periodic resync",
    )
