"""A service that is not running is a 503 with Retry-After, never a 500."""

from __future__ import annotations

import requests

from gateway.service import GatewayService
from tests.support.gateway import Api, free_port


def test_a_service_that_is_not_running_answers_503(container_factory, service_config, jwt_keys):
    port = free_port()
    config = service_config("gateway", WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", RPC_TIMEOUT=5)
    container_factory(GatewayService, config).start()  # and nothing behind it
    api = Api(f"http://127.0.0.1:{port}", jwt_keys["private_key"], requests.Session())
    token = api.staff_token("GM0344", "viewer")
    for path in ("/admin/v1/feedback", "/admin/v1/polls", "/admin/v1/feedback/figures"):
        response = api.request("GET", path, token=token)
        assert response.status_code == 503, (path, response.text)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.headers["Retry-After"] == "5"
        assert "not running" in response.json()["detail"]
