"""The panel service in a real container: tenants, areas, joining, sessions, leaving, staff."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy

from services.common import tokens
from services.common.errors import Conflict, InvalidInput, NotFound, Unauthorized
from services.panel.service import PanelService
from tests.conftest import wait_for
from tests.support import infra
from tests.support.listeners import recorder
from tests.support.panel import UTRECHT, profile, seed_utrecht, utrecht_files


@pytest.fixture
def panel(container_factory, service_config):
    config = service_config("panel", OUTBOX_POLL_INTERVAL=0.1)
    container_factory(PanelService, config).start()
    with ServiceRpcProxy("panel", config) as proxy:
        yield proxy


@pytest.fixture
def events(container_factory, service_config):
    cls, received = recorder(
        "panel", "resident_joined", "resident_updated", "resident_left", "areas_imported"
    )
    container_factory(cls, service_config("panel")).start()
    return received


def test_branding_must_be_legible(panel):
    with pytest.raises(InvalidInput) as err:
        panel.create_municipality(
            {
                "code": UTRECHT,
                "name": "Utrecht",
                "branding": {"primary_color": "#FFD700", "text_on_primary": "#FFFFFF"},
            }
        )  # white on gold
    assert err.value.errors[0] == {
        "field": "branding.text_on_primary",
        "code": "low_contrast",
        "message": "this text colour on the primary colour reaches 1.40:1; WCAG AA needs "
        "4.5:1 (#000000 would reach 14.97:1)",
    }
    with pytest.raises(InvalidInput) as err:
        panel.create_municipality(
            {"code": UTRECHT, "name": "Utrecht", "branding": {"accent_color": "orange"}}
        )
    assert err.value.errors[0]["field"] == "branding.accent_color"
    created = panel.create_municipality(
        {"code": UTRECHT, "name": "Utrecht", "branding": {"primary_color": "#C8102E"}}
    )
    assert created["branding"]["text_on_primary"] == "#FFFFFF"
    assert created["branding"]["contrast_ratio"] >= 4.5
    with pytest.raises(InvalidInput) as err:
        panel.update_settings(UTRECHT, {"min_cell_size": 3})
    assert err.value.errors[0]["field"] == "settings.min_cell_size"
    with pytest.raises(Conflict):
        panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})


def test_area_import_is_idempotent_and_emits_margins(panel, events):
    panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
    first = panel.import_areas(UTRECHT, utrecht_files())
    assert first["counts"] == {"gemeente": 1, "wijk": 10, "buurt": 111}
    assert first["changed"] is True and first["warnings"] == []
    again = panel.import_areas(UTRECHT, utrecht_files())
    assert again["changed"] is False
    wait_for(lambda: events, message="areas_imported")
    import time

    time.sleep(0.3)
    assert [e.name for e in events] == ["areas_imported"]  # the repeat emitted nothing
    margins = events[0].payload
    gemeente = next(a for a in margins["areas"] if a["level"] == "gemeente")
    assert gemeente["population"] == 374238 and gemeente["sex"]["vrouw"] == 191439
    assert len(panel.list_areas(UTRECHT, "wijk")) == 10
    domtoren = panel.locate(UTRECHT, 52.0907, 5.1214)
    assert domtoren["buurt_code"] == "BU03440611" and domtoren["approximate"] is True
    assert panel.locate(UTRECHT, 52.37, 4.90) is None  # Amsterdam

    bad = {**utrecht_files(), "kwb_csv": "year,level\n2024,gemeente\n"}
    with pytest.raises(InvalidInput) as err:
        panel.import_areas(UTRECHT, bad)
    assert any(e["code"] == "missing_column" for e in err.value.errors)


def test_a_newer_year_becomes_current_and_the_older_one_stays(panel):
    from services.panel.areas import DATA_DIR

    panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
    older = {
        **utrecht_files(),
        "kwb_csv": (DATA_DIR / "utrecht_GM0344_kwb2023_areas.csv").read_text(encoding="utf-8"),
    }
    assert panel.import_areas(UTRECHT, older)["current_year"] == 2023
    assert panel.import_areas(UTRECHT, utrecht_files())["current_year"] == 2024
    assert panel.import_areas(UTRECHT, older)["current_year"] == 2024  # no step back
    gemeente_2023 = panel.list_areas(UTRECHT, "gemeente", 2023)[0]
    gemeente_2024 = panel.list_areas(UTRECHT, "gemeente")[0]
    assert (gemeente_2023["population"], gemeente_2024["population"]) == (367947, 374238)


def test_join_refresh_move_and_leave(panel, events, engines):
    seed_utrecht(panel)
    batch = panel.create_invitation_batch(UTRECHT, {"total": 50}, "test")
    assert batch["size"] == 50 and sum(batch["per_wijk"].values()) == 50
    codes = [line.split(",")[0] for line in batch["csv"].splitlines()[1:]]
    assert len(set(codes)) == 50

    joined = panel.join_with_code(
        {"invitation_code": codes[0].lower().replace("-", " "), **profile()}
    )
    resident = joined["resident"]
    assert resident["wijk_code"] == "WK034401" and resident["age_band"] == "45_64"
    with pytest.raises(InvalidInput) as err:  # single use
        panel.join_with_code({"invitation_code": codes[0], **profile()})
    assert err.value.errors[0]["code"] == "used"

    # Refresh tokens rotate; presenting a rotated one again ends the whole family.
    second = panel.refresh({"refresh_token": joined["refresh_token"]})
    third = panel.refresh({"refresh_token": second["refresh_token"]})
    with pytest.raises(Unauthorized):
        panel.refresh({"refresh_token": second["refresh_token"]})
    with pytest.raises(Unauthorized):  # the family is revoked, the newest token too
        panel.refresh({"refresh_token": third["refresh_token"]})

    moved = panel.update_resident(resident["resident_id"], {"buurt_code": "BU03440611"})
    assert (moved["buurt_code"], moved["wijk_code"]) == ("BU03440611", "WK034406")
    composition = panel.panel_composition(UTRECHT)
    assert composition["members"] == 1
    assert {w["wijk_code"]: w["members"] for w in composition["wijken"]}["WK034406"] == 1

    panel.leave(resident["resident_id"])
    with pytest.raises(NotFound):
        panel.get_resident(resident["resident_id"])
    wait_for(lambda: any(e.name == "resident_left" for e in events), message="resident_left")
    assert [e.name for e in events if e.name.startswith("resident")] == [
        "resident_joined",
        "resident_updated",
        "resident_left",
    ]
    assert "birth_year" not in events[1].payload  # never leaves the panel
    assert_no_trace(engines["panel"], resident["resident_id"])


def assert_no_trace(engine, *needles):
    """No column of any panel table holds a needle — the outbox included, once resident_left
    is published (its row goes then; the resident's earlier events went at once)."""

    def unpublished():
        with engine.connect() as conn:
            return conn.execute(
                # (the outbox publishes mandatory: ``events`` binds queues, as notify's and
                # feedback's are bound in production)
                sa.text(
                    "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND event = 'resident_left'"
                )
            ).scalar()

    wait_for(lambda: unpublished() == 0, message="resident_left published")
    for needle in needles:
        tables = infra.tables_holding(engine, needle)
        assert tables == [], f"{', '.join(tables)} still hold {needle}"


def test_a_letter_code_joins_a_buurt_of_its_own_wijk_only(panel, engines):
    seed_utrecht(panel)
    batch = panel.create_invitation_batch(UTRECHT, {"per_wijk": {"WK034403": 1}})
    code = batch["csv"].splitlines()[1].split(",")[0]
    with pytest.raises(InvalidInput) as err:  # BU03440111 lies in WK034401
        panel.join_with_code({"invitation_code": code, **profile()})
    assert err.value.errors[0]["field"] == "buurt_code"
    assert err.value.errors[0]["code"] == "outside_invited_wijk"
    joined = panel.join_with_code({"invitation_code": code, **profile(buurt_code="BU03440311")})
    assert joined["resident"]["wijk_code"] == "WK034403"  # the code was not spent by the refusal


def test_open_signup_by_email_is_self_selected_and_erasable(panel, smtp_sink, engines, events):
    seed_utrecht(panel)
    email = f"inwoner-{uuid.uuid4().hex[:6]}@example.nl"
    panel.start_signup({"municipality_code": UTRECHT, "email": email, "language": "en"})
    wait_for(lambda: smtp_sink.to(email), message="the verification e-mail")
    message = smtp_sink.to(email)[0]
    assert message["Subject"] == "Your code for the Utrecht residents' panel"
    code = next(w for w in message.get_content().split() if w.isdigit() and len(w) == 6)

    with pytest.raises(InvalidInput) as err:
        panel.finish_signup(
            {
                "municipality_code": UTRECHT,
                "email": email,
                "code": "000000" if code != "000000" else "111111",
                **profile(),
            }
        )
    assert err.value.errors[0]["code"] == "wrong_code"
    with pytest.raises(InvalidInput) as err:  # consent is required
        panel.finish_signup(
            {"municipality_code": UTRECHT, "email": email, "code": code, **profile(consent=False)}
        )
    assert err.value.errors[0]["field"] == "consent"
    joined = panel.finish_signup(
        {
            "municipality_code": UTRECHT,
            "email": email,
            "code": code,
            **profile(buurt_code=None, location={"lat": 52.0907, "lon": 5.1214}),
        }
    )
    resident = joined["resident"]
    assert resident["self_selected"] is True and resident["buurt_code"] == "BU03440611"
    panel.leave(resident["resident_id"])
    assert_no_trace(engines["panel"], resident["resident_id"], email)


def test_tokens_carry_what_the_gateway_needs(panel, jwt_keys):
    seed_utrecht(panel)
    code = (
        panel.create_invitation_batch(UTRECHT, {"per_wijk": {"WK034403": 1}})["csv"]
        .splitlines()[1]
        .split(",")[0]
    )
    joined = panel.join_with_code({"invitation_code": code, **profile(buurt_code="BU03440311")})
    public = tokens.load_public_key(open(jwt_keys["public"]).read())
    claims = tokens.verify_token(
        public,
        joined["access_token"],
        typ=tokens.RESIDENT_ACCESS,
        issuer="buurtpeil",
        audience="buurtpeil-app",
    )
    assert claims["sub"] == joined["resident"]["resident_id"]
    assert (claims["mun"], claims["wijk"]) == (UTRECHT, "WK034403")
    assert claims["exp"] - claims["iat"] <= 900


def test_staff_invite_login_lockout_and_roles(panel, smtp_sink, engines):
    seed_utrecht(panel)
    invited = panel.invite_staff(UTRECHT, {"email": "redacteur@utrecht.nl", "role": "editor"})
    assert invited["status"] == "invited"
    wait_for(lambda: smtp_sink.to("redacteur@utrecht.nl"), message="the invitation e-mail")
    body = smtp_sink.to("redacteur@utrecht.nl")[0].get_content()
    token = body.split("#token=")[1].split()[0]
    with pytest.raises(InvalidInput) as err:
        panel.accept_staff_invite({"token": token, "password": "wachtwoord123"})
    assert {e["code"] for e in err.value.errors} >= {"common"}
    session = panel.accept_staff_invite({"token": token, "password": "Zes lange woorden hier"})
    assert session["staff"]["role"] == "editor"

    ok = panel.staff_login({"email": "REDACTEUR@utrecht.nl", "password": "Zes lange woorden hier"})
    assert ok["staff"]["municipality_code"] == UTRECHT
    for _ in range(5):
        with pytest.raises(Unauthorized):
            panel.staff_login({"email": "redacteur@utrecht.nl", "password": "fout"})
    with pytest.raises(Unauthorized) as err:  # locked now, even with the right password
        panel.staff_login({"email": "redacteur@utrecht.nl", "password": "Zes lange woorden hier"})
    assert err.value.errors[0]["code"] == "locked"
    with pytest.raises(Unauthorized) as err:  # an unknown account answers like a wrong password
        panel.staff_login({"email": "niemand@utrecht.nl", "password": "whatever it is"})
    assert err.value.errors[0]["code"] == "invalid_credentials"

    staff_id = invited["id"]
    with pytest.raises(NotFound):  # another municipality cannot touch this account
        panel.change_staff("GM0363", staff_id, {"role": "admin"}, str(uuid.uuid4()))
    changed = panel.change_staff(UTRECHT, staff_id, {"role": "viewer"}, str(uuid.uuid4()))
    assert changed["role"] == "viewer"
    with pytest.raises(Conflict):
        panel.change_staff(UTRECHT, staff_id, {"status": "disabled"}, staff_id)


def test_wrong_signup_codes_are_counted_and_spend_the_code(panel, smtp_sink, engines):
    """Defect 15.9: the wrong-attempt count was rolled back with the refusal, so the e-mailed
    code could be guessed without limit. Five wrong tries spend it, even for the right code."""
    from services.panel.members import VERIFY_ATTEMPTS

    seed_utrecht(panel)
    email = f"raden-{uuid.uuid4().hex[:6]}@example.nl"
    panel.start_signup({"municipality_code": UTRECHT, "email": email, "language": "nl"})
    wait_for(lambda: smtp_sink.to(email), message="the verification e-mail")
    code = next(
        w for w in smtp_sink.to(email)[0].get_content().split() if w.isdigit() and len(w) == 6
    )
    wrong = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, VERIFY_ATTEMPTS + 1)]
    for guess in wrong:
        with pytest.raises(InvalidInput) as err:
            panel.finish_signup(
                {"municipality_code": UTRECHT, "email": email, "code": guess, **profile()}
            )
        assert err.value.errors[0]["code"] == "wrong_code"
    with engines["panel"].connect() as conn:
        attempts = conn.execute(
            sa.text("SELECT attempts FROM email_verifications WHERE email = :e"), {"e": email}
        ).scalar()
    assert attempts == VERIFY_ATTEMPTS

    with pytest.raises(InvalidInput) as err:  # the right code, too late
        panel.finish_signup(
            {"municipality_code": UTRECHT, "email": email, "code": code, **profile()}
        )
    assert err.value.errors[0]["code"] == "expired"
