"""Kinds of participant (issue 14) as plain functions: the KvK number's format, what a business
or organisation must give, which polls a participant of a kind may see, and the composition per
kind with small groups hidden."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gateway.poll_cache import eligible
from services.common.errors import InvalidInput
from services.common.events import audience_kinds, validate_payload
from services.panel.members import check_kvk, composition_by_kind, organisation_fields


def codes_of(exc: pytest.ExceptionInfo[InvalidInput]) -> set[tuple[str, str]]:
    return {(e["field"], e["code"]) for e in exc.value.errors}


@pytest.mark.parametrize("good", ["12345678", " 00000001 ", "90000001"])
def test_a_kvk_number_is_exactly_eight_digits(good):
    assert check_kvk(good) == good.strip()


@pytest.mark.parametrize(
    "bad, code",
    [
        (None, "required"),
        ("", "required"),
        ("1234567", "invalid_kvk"),
        ("123456789", "invalid_kvk"),
        ("1234 5678", "invalid_kvk"),
        ("1234567a", "invalid_kvk"),
        ("١٢٣٤٥٦٧٨", "invalid_kvk"),  # Arabic-Indic digits are digits to Python, not to KvK
    ],
)
def test_anything_else_is_refused_on_the_kvk_field(bad, code):
    with pytest.raises(InvalidInput) as exc:
        check_kvk(bad)
    assert codes_of(exc) == {("kvk_number", code)}


def test_a_business_needs_its_name_and_a_resident_gives_no_kvk_number():
    assert organisation_fields(
        "ondernemer", {"kvk_number": "12345678", "organisation_name": " A  B "}
    ) == {
        "kvk_number": "12345678",
        "organisation_name": "A B",
    }
    with pytest.raises(InvalidInput) as exc:
        organisation_fields("organisatie", {"kvk_number": "12345678"})
    assert codes_of(exc) == {("organisation_name", "required")}
    assert organisation_fields("resident", {"kvk_number": " "}) == {
        "kvk_number": None,
        "organisation_name": None,
    }
    with pytest.raises(InvalidInput) as exc:
        organisation_fields("resident", {"kvk_number": "12345678"})
    assert codes_of(exc) == {("kvk_number", "not_an_organisation")}


def test_an_audience_without_kinds_is_for_residents_as_before():
    assert audience_kinds({"kind": "municipality"}) == ("resident",)
    assert audience_kinds({"kind": "areas", "kinds": ["ondernemer"]}) == ("ondernemer",)


def poll(**audience):
    return {"poll_id": "p", "municipality_code": "GM0344", "audience": audience}


def test_a_poll_for_ondernemers_in_an_area_is_eligible_for_them_only():
    shops = poll(kind="areas", area_codes=["WK034406"], kinds=["ondernemer"])
    assert eligible(shops, "GM0344", "WK034406", "BU03440613", {}, "ondernemer")
    assert not eligible(shops, "GM0344", "WK034406", "BU03440613", {}, "resident")
    assert not eligible(shops, "GM0344", "WK034406", "BU03440613", {}, "organisatie")
    assert not eligible(shops, "GM0344", "WK034401", "BU03440111", {}, "ondernemer")
    # Invited or not: a kind the poll is not for does not see it.
    assert not eligible(shops, "GM0344", "WK034406", "BU03440613", {"p": {}}, "resident")
    old = poll(kind="municipality")  # published before kinds: residents only
    assert eligible(old, "GM0344", "WK034401", "BU03440111")
    assert not eligible(old, "GM0344", "WK034401", "BU03440111", {}, "ondernemer")


def test_events_without_kind_fields_stay_valid_and_unknown_kinds_are_refused():
    member = {
        "resident_id": "6f1c1c5e-9a55-4c52-9a4e-6c3ad1e0b3b1",
        "municipality_code": "GM0344",
        "buurt_code": "BU03440613",
        "wijk_code": "WK034406",
        "age_band": None,
        "sex": None,
        "language": "nl",
        "self_selected": False,
        "consent": True,
        "email": None,
        "joined_at": "2026-12-06T08:00:00+00:00",
    }
    validate_payload("resident_joined", member)
    validate_payload("resident_joined", {**member, "kind": "organisatie"})
    with pytest.raises(ValueError):
        validate_payload("resident_joined", {**member, "kind": "bedrijf"})


@dataclass
class Area:
    code: str
    level: str
    parent_code: str | None
    name: str


def test_the_composition_per_kind_hides_two_shops_in_a_buurt():
    wijken = [
        Area("WK034406", "wijk", "GM0344", "Binnenstad"),
        Area("WK034401", "wijk", "GM0344", "West"),
    ]
    buurten = [
        Area("BU03440613", "buurt", "WK034406", "Hoog-Catharijne"),
        Area("BU03440621", "buurt", "WK034406", "Wijk C"),
        Area("BU03440111", "buurt", "WK034401", "Oudwijk"),
    ]
    members = (
        [("WK034406", "BU03440613", "resident")] * 30
        + [("WK034406", "BU03440621", "resident")] * 20
        + [("WK034401", "BU03440111", "resident")] * 40
        + [("WK034406", "BU03440613", "ondernemer")] * 10
        + [("WK034406", "BU03440621", "ondernemer")] * 2
    )
    rows = {r["code"]: r for r in composition_by_kind("GM0344", wijken, buurten, members, 5)}
    assert [r["level"] for r in rows.values()] == [
        "gemeente",
        "wijk",
        "wijk",
        "buurt",
        "buurt",
        "buurt",
    ]
    kinds = {code: {g["kind"]: g["members"] for g in r["kinds"]} for code, r in rows.items()}
    assert kinds["GM0344"] == {"resident": 90, "ondernemer": 12, "organisatie": 0}
    assert kinds["BU03440621"]["ondernemer"] is None
    # The wijk shows 12 ondernemers: the other buurt's 10 would give the 2 away, so it hides too.
    assert kinds["WK034406"]["ondernemer"] == 12
    assert kinds["BU03440613"]["ondernemer"] is None
    assert kinds["BU03440111"] == {"resident": 40, "ondernemer": 0, "organisatie": 0}
