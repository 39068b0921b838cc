"""The staff dashboard's administrative pages over real HTTP, every service behind the gateway:
an admin invites a colleague, changes the role and disables the account; the house style with
its preview and contrast check (a text colour below 4.5:1 is refused, as the route refuses it);
letter codes made and downloaded once (the second download is a page saying so); failed
notifications tried again. A viewer or editor cannot use them, and another municipality's
account or batch is an HTML 404."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
import requests
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from tests.conftest import wait_for
from tests.support.panel import UTRECHT, utrecht_files

AMERSFOORT = "GM0307"


@pytest.fixture
def town(api, service_config):
    """Utrecht (with its wijken and buurten) and Amersfoort."""
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.create_municipality(
            {"code": AMERSFOORT, "name": "Amersfoort", "branding": {"primary_color": "#00594F"}}
        )
        rpc.panel.import_areas(UTRECHT, utrecht_files())


def signed_in(api, role="admin", municipality=UTRECHT) -> tuple[requests.Session, str]:
    session = requests.Session()
    session.cookies.set("bp_staff_access", api.staff_token(municipality, role))
    page = session.get(api.url("/staff/"), timeout=30)
    return session, re.search(r'data-csrf="([^"]+)"', page.text).group(1)


def post(session, api, path, data, csrf):
    return session.post(
        api.url(path), data={"csrf_token": csrf, **data}, timeout=30, allow_redirects=False
    )


def test_an_admin_invites_a_colleague_changes_the_role_and_disables_the_account(api, town):
    session, csrf = signed_in(api)
    home = session.get(api.url("/staff/beheer"), timeout=30)
    assert home.status_code == 200 and "Medewerkers" in home.text
    assert 'href="/staff/beheer"' in home.text  # in the menu, for an admin
    path = "/staff/beheer/medewerkers"

    wrong = post(session, api, path, {"email": "geen-adres", "role": "editor"}, csrf)
    assert wrong.status_code == 422
    assert "Er is een probleem" in wrong.text and 'href="#f-email"' in wrong.text

    made = post(session, api, path, {"email": "Analist@Utrecht.nl", "role": "viewer"}, csrf)
    assert made.status_code == 303
    listed = session.get(api.url(made.headers["Location"]), timeout=30).text
    assert "analist@utrecht.nl is uitgenodigd" in listed and "Uitgenodigd" in listed
    again = post(session, api, path, {"email": "analist@utrecht.nl", "role": "viewer"}, csrf)
    assert again.status_code == 422 and "Er is al een account" in again.text

    account = api.request("GET", "/admin/v1/staff", token=api.staff_token(UTRECHT, "admin")).json()[
        0
    ]
    own = f"{path}/{account['id']}"
    changed = post(session, api, own, {"action": "role", "role": "editor"}, csrf)
    assert changed.headers["Location"] == f"{own}?klaar=role"
    disabled = post(session, api, own, {"action": "disable"}, csrf)
    assert disabled.headers["Location"] == f"{own}?klaar=disable"
    shown = session.get(api.url(disabled.headers["Location"]), timeout=30).text
    assert "Het account is uitgeschakeld" in shown and "Redacteur" in shown
    after = api.request("GET", "/admin/v1/staff", token=api.staff_token(UTRECHT, "admin")).json()
    assert (after[0]["role"], after[0]["status"]) == ("editor", "disabled")

    # One's own account: the route refuses; the page says why.
    me, my_csrf = requests.Session(), None
    me.cookies.set("bp_staff_access", api.staff_token(UTRECHT, "admin", subject=account["id"]))
    my_csrf = re.search(r'data-csrf="([^"]+)"', me.get(api.url("/staff/")).text).group(1)
    mine = me.get(api.url(own), timeout=30)
    assert "Dit is uw eigen account" in mine.text and 'value="disable"' not in mine.text
    refused = post(me, api, own, {"action": "role", "role": "viewer"}, my_csrf)
    assert refused.status_code == 409 and "uw eigen rol" in refused.text

    # Another municipality's admin: an HTML 404 for this account, nothing changed.
    theirs, their_csrf = signed_in(api, "admin", AMERSFOORT)
    assert theirs.get(api.url(own), timeout=30).status_code == 404
    assert post(theirs, api, own, {"action": "enable"}, their_csrf).status_code == 404


def test_lesser_roles_see_no_administration_and_cannot_post_its_forms(api, town):
    editor, csrf = signed_in(api, "editor")
    assert 'href="/staff/beheer"' not in editor.get(api.url("/staff/peilingen")).text
    # The house style and the batches are theirs to read (the routes' role), not to change.
    style = editor.get(api.url("/staff/beheer/huisstijl"), timeout=30)
    assert style.status_code == 200 and 'id="branding-form"' not in style.text
    assert "Contrastcontrole" in style.text
    batches = editor.get(api.url("/staff/beheer/uitnodigingen"), timeout=30)
    assert batches.status_code == 200 and "<form method" not in batches.text.split("<main")[1]
    for path in (
        "/staff/beheer/medewerkers",
        "/staff/beheer/huisstijl",
        "/staff/beheer/uitnodigingen",
        "/staff/beheer/meldingen",
    ):
        if not path.endswith(("huisstijl", "uitnodigingen")):
            assert editor.get(api.url(path), timeout=30).status_code == 403, path
        refused = post(editor, api, path, {"email": "x@utrecht.nl", "role": "admin"}, csrf)
        assert refused.status_code == 403, path
        assert "Dit mag niet" in refused.text
    assert (
        api.request("GET", "/admin/v1/staff", token=api.staff_token(UTRECHT, "admin")).json() == []
    )


def test_the_house_style_with_its_preview_and_the_contrast_check(api, town):
    session, csrf = signed_in(api)
    path = "/staff/beheer/huisstijl"
    page = session.get(api.url(path), timeout=30)
    assert page.status_code == 200
    assert "Contrastcontrole" in page.text and "#1F4E79" in page.text
    css = re.search(r'href="(/staff/beheer/huisstijl/voorbeeld\.css\?[^"]+)"', page.text).group(1)
    sheet = session.get(api.url(css.replace("&amp;", "&")), timeout=30)
    assert sheet.headers["Content-Type"].startswith("text/css")
    assert ".bp-theme.bp-preview" in sheet.text and "#1F4E79" in sheet.text

    form = {
        "app_name": "Buurtpeil Utrecht",
        "primary_color": "#FFD700",
        "text_on_primary": "#FFFFFF",
        "accent_color": "#F2A900",
        "welcome_text": "Welkom.",
    }
    preview = post(session, api, path, {**form, "action": "preview"}, csrf)
    assert preview.status_code == 200
    assert "saving is refused" not in preview.text  # in Dutch:
    assert "opslaan wordt geweigerd" in preview.text and "1,40:1" in preview.text
    refused = post(session, api, path, {**form, "action": "save"}, csrf)
    assert refused.status_code == 422 and 'href="#f-text_on_primary"' in refused.text
    assert "1,40:1" in refused.text
    branding = api.request("GET", "/admin/v1/branding", token=api.staff_token(UTRECHT, "viewer"))
    assert branding.json()["primary_color"] == "#1F4E79"  # nothing saved

    # The live preview (htmx) for a light colour: text automatic (black), links darker.
    fragment = session.get(
        api.url("/staff/beheer/huisstijl/voorbeeld"),
        params={"primary_color": "#FFD700", "text_on_primary": ""},
        timeout=30,
    )
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "#000000" in fragment.text and "automatisch" in fragment.text
    assert "minder dan 3:1" in fragment.text

    saved = post(
        session,
        api,
        path,
        {**form, "primary_color": "#00594F", "text_on_primary": "", "action": "save"},
        csrf,
    )
    assert saved.headers["Location"] == f"{path}?klaar=opgeslagen"
    after = api.request("GET", "/admin/v1/branding", token=api.staff_token(UTRECHT, "viewer"))
    assert (after.json()["primary_color"], after.json()["text_on_primary"]) == (
        "#00594F",
        "#FFFFFF",
    )
    # This process shows the new theme at once.
    shown = session.get(api.url(path), timeout=30).text
    theme = re.search(r'href="(/theme/GM0344/[^"]+)"', shown).group(1)
    assert "#00594F" in requests.get(api.url(theme), timeout=30).text


def test_letter_codes_are_downloaded_once(api, town):
    session, csrf = signed_in(api)
    path = "/staff/beheer/uitnodigingen"
    listed = session.get(api.url(path), timeout=30)
    assert listed.status_code == 200 and "Oost" in listed.text  # the wijken to spread over
    wrong = post(session, api, path, {"spread": "total", "total": "nul"}, csrf)
    assert wrong.status_code == 422 and 'href="#f-total"' in wrong.text

    made = post(session, api, path, {"spread": "total", "total": "7"}, csrf)
    assert made.status_code == 303
    batch = made.headers["Location"].split("?")[0]
    shown = session.get(api.url(batch), timeout=30)
    assert "Download de codes" in shown.text

    # Another municipality: a 404 page, and its download does not use up the one copy.
    theirs, their_csrf = signed_in(api, "admin", AMERSFOORT)
    assert theirs.get(api.url(batch), timeout=30).status_code == 404
    assert post(theirs, api, batch, {}, their_csrf).status_code == 404
    viewer, viewer_csrf = signed_in(api, "viewer")
    assert post(viewer, api, batch, {}, viewer_csrf).status_code == 403

    first = post(session, api, batch, {}, csrf)
    assert first.status_code == 200
    assert first.headers["Content-Type"].startswith("text/csv")
    assert first.headers["Cache-Control"] == "no-store"
    lines = first.text.strip().splitlines()
    assert lines[0] == "code,wijk_code,batch_id" and len(lines) == 8
    code = lines[1].split(",")[0]
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", code)

    second = post(session, api, batch, {}, csrf)
    assert second.status_code == 410
    assert second.headers["Content-Type"].startswith("text/html")
    assert "Deze codes zijn al gedownload" in second.text and code not in second.text
    later = session.get(api.url(batch), timeout=30).text
    assert "Download de codes" not in later
    assert "7" in session.get(api.url(path), timeout=30).text

    # Per wijk.
    per_wijk = post(
        session, api, path, {"spread": "per_wijk", "wijk-WK034401": "2", "wijk-WK034403": "1"}, csrf
    )
    assert per_wijk.status_code == 303
    rows = post(session, api, per_wijk.headers["Location"].split("?")[0], {}, csrf).text
    assert sorted(r.split(",")[1] for r in rows.strip().splitlines()[1:]) == [
        "WK034401",
        "WK034401",
        "WK034403",
    ]


def test_failed_notifications_are_listed_and_sent_again(api, town, engines):
    admin = api.staff_token(UTRECHT, "admin")
    poll = api.request(
        "POST", "/admin/v1/polls", token=admin, json={"template_id": "veiligheidsgevoel"}
    ).json()
    api.request("POST", f"/admin/v1/polls/{poll['id']}/publish", token=admin)
    notify = engines["notify"]

    def known():
        with notify.connect() as conn:
            return conn.execute(
                sa.text("SELECT 1 FROM polls WHERE id = :p"), {"p": poll["id"]}
            ).scalar()

    wait_for(known, message="notify knowing the poll")
    now = datetime.now(UTC)
    with notify.begin() as conn:  # as the dispatcher leaves one after its last attempt
        conn.execute(
            sa.text(
                "INSERT INTO deliveries (kind, ref_id, seq, poll_id, resident_id, channel, "
                "status, attempts, last_error, queued_at, updated_at) VALUES ('invitation', :p, "
                "0, :p, :r, 'email', 'dead', 3, 'SMTP 451 try later', :now, :now)"
            ),
            {"p": poll["id"], "r": str(uuid.uuid4()), "now": now},
        )
    session, csrf = signed_in(api)
    path = "/staff/beheer/meldingen"
    page = session.get(api.url(path), timeout=30)
    assert page.status_code == 200
    assert "SMTP 451 try later" in page.text and poll["title"] in page.text
    assert "E-mail" in page.text

    none_chosen = post(session, api, path, {"action": "chosen"}, csrf)
    assert none_chosen.status_code == 422 and "Kies ten minste één melding" in none_chosen.text
    theirs, their_csrf = signed_in(api, "admin", AMERSFOORT)
    assert (
        post(theirs, api, path, {"action": "all"}, their_csrf)
        .headers["Location"]
        .endswith("?opnieuw=0")
    )  # theirs are theirs: Utrecht's stays dead
    replayed = post(session, api, path, {"action": "all"}, csrf)
    assert replayed.headers["Location"] == f"{path}?opnieuw=1"
    told = session.get(api.url(replayed.headers["Location"]), timeout=30).text
    assert "1 melding wordt opnieuw verstuurd" in told
