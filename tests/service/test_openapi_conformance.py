"""The OpenAPI document tells the truth about the responses: schemathesis generates requests
for every operation from the document the gateway serves (a bounded, derandomized number per
operation, valid inputs and invalid ones) against the gateway and the real services, and
checks every response: never a 5xx, its status is
documented for the operation, its content type is the documented one, and its body matches
the documented schema (closed schemas: a field the route returns but the document does not
declare fails — the dispatcher drops such fields from most answers, so this bites on the two it
passes on as built, the results and the trend, and anywhere on a value of another type than
declared). Path parameters name real objects (Utrecht's poll, staff member, measure), so
the success answers are checked too, not only the errors."""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.routes import ROUTES
from tests.service.test_gateway import world  # noqa: F401 - the fixture
from tests.support.panel import UTRECHT, profile

EXAMPLES = 10  # per operation and mode: ~70 operations, about a minute in all
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
BY_NAME = {r.name: r for r in ROUTES}


@pytest.fixture
def gateway_overrides():
    """Limits out of the way: every answer should be about the request, not 429."""
    rules = ("login", "login_ip", "join", "signup", "verify", "refresh", "locate", "token")
    return {"RATE_LIMITS": {name: "100000/min" for name in rules}}


def resident_of_oost(api, admin: str) -> str:
    """A resident who joined with a letter code (panel knows them: /api/v1/me answers 200),
    living in Oost, where Utrecht's poll is open."""
    batch = api.request(
        "POST", "/admin/v1/invitation-batches", token=admin, json={"per_wijk": {"WK034403": 1}}
    ).json()
    code = batch["csv"].splitlines()[1].split(",")[0]
    joined = api.request(
        "POST",
        "/api/v1/join",
        json={"invitation_code": code, **profile(buurt_code="BU03440311")},
    )
    assert joined.status_code == 201, joined.text
    return joined.json()["access_token"]


def headers_for(api, route, resident: str) -> dict[str, str]:
    if route.auth == "resident":
        token = resident
    elif route.auth == "staff" and route.role == "platform_admin":
        token = api.staff_token(None, "platform_admin")
    elif route.auth == "staff":
        token = api.staff_token(UTRECHT, "admin")
    else:
        return {}
    return {"Authorization": f"Bearer {token}"}


# About a minute on a quiet machine, seven under load: more than the suite's 300 s default.
@pytest.mark.timeout(900)
def test_every_response_conforms_to_the_openapi_document(api, world):  # noqa: F811
    document = api.request("GET", "/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    objects = world["objects"][UTRECHT]
    real = {
        "poll_id": objects["poll"],
        "staff_id": objects["staff"],
        "measure_id": objects["measure"],
        "template_id": objects["template"],
        "municipality_code": UTRECHT,
    }
    resident = resident_of_oost(api, world["admin"][UTRECHT])
    failures: dict[tuple[str, GenerationMode], str] = {}
    operations = 0

    def run(operation, route, headers, mode):
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            if case.path_parameters:
                case.path_parameters = {
                    name: real.get(name, str(uuid.uuid4())) for name in case.path_parameters
                }
            if (route.name, mode) in failures:
                return
            try:
                response = case.call(base_url=api.base, headers=headers, timeout=30)
                case.validate_response(response, checks=CHECKS)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - one per operation
                failures[(route.name, mode)] = (
                    f"{route.method} {route.path} ({mode.value}): {str(exc)[:1500]}"
                )

        try:
            check()
        except Unsatisfiable:  # negative: nothing in this operation's input to get wrong
            assert mode is GenerationMode.NEGATIVE

    for result in schema.get_all_operations():
        operation = result.ok()
        route = BY_NAME[operation.definition.raw["operationId"]]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run(operation, route, headers_for(api, route, resident), mode)
        operations += 1
    assert operations == len(ROUTES)
    assert not failures, "\n\n".join(failures.values())
