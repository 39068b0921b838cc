"""Ten businesses in Utrecht's city centre (issue 14), for the loop ``make run`` shows: they join
with letter codes made for businesses (``kind: ondernemer``) and their KvK numbers, a poll for
the ondernemers of the Binnenstad reaches them and no one else, and they answer it — through
the gateway's public API only, as the shops' staff would in the app."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from deploy import demo_panel

CENTRE = "WK034406"  # Wijk 06 Binnenstad (CBS 2024)
SHOPS = (
    "Bakkerij Dom",
    "Boekhandel Oudegracht",
    "Fietsenmaker Neude",
    "Koffiebar Lijnmarkt",
    "Kaashandel Vismarkt",
    "Bloemist Janskerkhof",
    "Opticien Steenweg",
    "Drogist Voorstraat",
    "Schoenmaker Zadelstraat",
    "Slagerij Twijnstraat",
)
# The synthetic feeling of safety of shopkeepers in the centre (1–5): late evenings are rougher.
FEELING = {CENTRE: 3.1}


def businesses_in_the_centre(
    http: Any,
    admin: str,
    buurten: list[dict[str, Any]],
    rng: random.Random,
    say: Callable[[str], None],
    *,
    residents: list[demo_panel.Member],
) -> dict[str, Any]:
    """Join the ten businesses, publish a poll for the centre's ondernemers, check who sees it,
    let every business answer; return the poll and how many answered."""
    centre = sorted(b["code"] for b in buurten if b.get("parent_code") == CENTRE)
    batch = http(
        "POST",
        "/admin/v1/invitation-batches",
        admin,
        expect=201,
        json={"per_wijk": {CENTRE: len(SHOPS)}, "kind": "ondernemer"},
    )
    codes = [line.split(",")[0] for line in batch["csv"].splitlines()[1:]]
    shops = []
    for name, code in zip(SHOPS, codes, strict=True):
        buurt = rng.choice(centre)
        session = http(
            "POST",
            "/api/v1/join",
            expect=201,
            json={
                "invitation_code": code,
                # Format only (8 digits): no register is asked. Random, so a rerun on the same
                # databases does not meet its own numbers.
                "kvk_number": f"{uuid.uuid4().int % 10**8:08d}",
                "organisation_name": name,
                "buurt_code": buurt,
                "consent": True,
                "language": "nl",
            },
        )
        shops.append(
            demo_panel.Member(
                buurt_code=buurt,
                wijk_code=CENTRE,
                age_band="25_44",  # only for the synthetic answers: a business has no age
                birth_year=0,
                sex="onbekend",
                channel="app",
                token=session["access_token"],
            )
        )
    say(f"businesses: {len(shops)} ondernemers of the Binnenstad joined with KvK numbers")

    poll = http(
        "POST",
        "/admin/v1/polls",
        admin,
        expect=201,
        json={
            "template_id": "veiligheidsgevoel",
            "audience": {"kind": "areas", "area_codes": [CENTRE], "kinds": ["ondernemer"]},
        },
    )
    http("POST", f"/admin/v1/polls/{poll['id']}/publish", admin)
    shown = _wait(
        lambda: sum(
            poll["id"] in {p["poll_id"] for p in http("GET", "/api/v1/polls", s.token)}
            for s in shops
        ),
        len(shops),
    )
    # A poll for ondernemers: no resident sees it (a handful checked, each one call).
    seen_by_residents = sum(poll["id"] in _listed(http, m.token) for m in residents[:20] if m.token)
    if shown != len(shops) or seen_by_residents:
        raise RuntimeError(
            f"the ondernemers' poll: {shown} of {len(shops)} businesses see it, "
            f"{seen_by_residents} residents do"
        )
    definition = http("GET", f"/api/v1/polls/{poll['id']}", shops[0].token)["definition"]
    receipts = []
    for shop in shops:
        accepted = http(
            "POST",
            f"/api/v1/polls/{poll['id']}/responses",
            shop.token,
            expect=202,
            json={"answers": demo_panel.answers_for(definition, shop, FEELING, rng)},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        receipts.append((accepted["receipt_id"], shop))
    answered = _wait(
        lambda: sum(
            http("GET", f"/api/v1/receipts/{r}", s.token)["status"] == "recorded"
            for r, s in receipts
        ),
        len(receipts),
    )
    say(
        f"published {poll['title']!r} to the ondernemers of the Binnenstad: seen by all "
        f"{len(shops)} businesses and by none of the residents checked; {answered} answered"
    )
    return {"poll": poll, "businesses": len(shops), "answered": answered}


def _listed(http: Any, token: str) -> set[str]:
    """The polls a resident's app lists; none when the token has expired meanwhile (the loop
    may have run longer than an access token lives)."""
    reply = http.session.get(
        http.base + "/api/v1/polls", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return {p["poll_id"] for p in reply.json()} if reply.status_code == 200 else set()


def _wait(probe: Callable[[], int], wanted: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    found = probe()
    while found < wanted and time.monotonic() < deadline:
        time.sleep(0.5)
        found = probe()
    return found
