"""panel: municipalities (tenants, branding, settings), CBS areas, residents, invitation codes,
staff accounts, and the tokens both carry.

RPC (called by the gateway; a staff ``municipality_code`` always comes from the verified token):
municipalities — create_municipality, list_municipalities, get_branding, update_branding,
get_settings, update_settings; areas — import_areas, list_areas, locate; regions —
list_regions, get_region, create_region, update_region, archive_region, propose_regions,
regions_for_poll;
paper forms — create_paper_run, list_paper_runs, get_paper_run, paper_code, key_paper_code,
release_paper_code, paper_keyed_count;
residents — join_with_code, start_signup, finish_signup, refresh, get_resident, resident_claims
(what an access token says of a resident, for the personal links in e-mails),
update_resident, leave, contact_code, list_contacts; invitation codes —
create_invitation_batch, list_invitation_batches;
panel_composition; staff — staff_login, staff_refresh, invite_staff, accept_staff_invite,
list_staff, change_staff; sessions — revoked_sessions.
Events out (through the outbox): resident_joined, resident_updated, resident_left,
contact_left, areas_imported, sessions_revoked, municipality_changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nameko.extensions import DependencyProvider

from services.common import tokens
from services.common.clock import Clock
from services.common.db import Database
from services.common.environment import DevelopmentDefaults
from services.common.errors import EXPECTED, Unauthorized
from services.common.logs import LoggingContext
from services.common.mail import Mail
from services.common.metrics import Metrics
from services.common.outbox import Outbox
from services.common.rpc import rpc
from services.common.settings import Settings, settings_of
from services.common.validation import load
from services.panel import (
    accounts,
    area_store,
    invitations,
    members,
    paper,
    regions,
    schemas,
    tenants,
    texts,
)
from services.panel.settings import PanelSettings


def commit_then_refuse(db: Any, work: Any) -> Any:
    """Run ``work`` in a transaction that commits even when it refuses with Unauthorized (or a
    ``members.CountedRefusal``, whose error is then raised) — for refusals that must leave a
    trace (failed-login count, a revoked token family, a wrong sign-up code counted)."""
    outcome: dict[str, Any] = {}

    def attempt(session: Any) -> None:
        try:
            outcome["value"] = work(session)
        except Unauthorized as exc:
            outcome["refused"] = exc
        except members.CountedRefusal as exc:
            outcome["refused"] = exc.error

    db.run(attempt)
    if "refused" in outcome:
        raise outcome["refused"]
    return outcome["value"]


class TokenIssuer(DependencyProvider):
    """Signs access tokens with the panel's private Ed25519 key (``JWT_PRIVATE_KEY_FILE``)."""

    def setup(self) -> None:
        settings = settings_of(self.container, PanelSettings.load)
        key = tokens.load_private_key(Path(settings.jwt_private_key_file).read_text())
        self.key = key
        self.key_id = tokens.key_id(key.public_key())
        self.issuer = settings.jwt_issuer
        self.resident_audience = settings.jwt_resident_audience
        self.staff_audience = settings.jwt_staff_audience
        self.staff_ttl = settings.staff_token_ttl

    def get_dependency(self, worker_ctx: Any) -> TokenIssuer:
        return self

    def resident(
        self, resident: Any, refresh_token: str, sid: str, contact_id: Any = None
    ) -> dict[str, Any]:
        # A contact of a business or organisation: its tokens name the contact (``cid``), so
        # it can leave alone and its devices are told from its colleagues'.
        contact = {"cid": str(contact_id)} if contact_id else {}
        access = tokens.issue_token(
            self.key,
            typ=tokens.RESIDENT_ACCESS,
            subject=str(resident.id),
            issuer=self.issuer,
            audience=self.resident_audience,
            ttl_seconds=tokens.RESIDENT_ACCESS_TTL,
            key_id=self.key_id,
            claims={
                "sid": sid,  # the session (refresh-token family): what revocation names
                **members.access_claims(resident, datetime.now(UTC)),
                **contact,
            },
        )
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": tokens.RESIDENT_ACCESS_TTL,
            "refresh_token": refresh_token,
        }

    def staff(self, staff: Any, refresh_token: str, sid: str) -> dict[str, Any]:
        access = tokens.issue_token(
            self.key,
            typ=tokens.STAFF_ACCESS,
            subject=str(staff.id),
            issuer=self.issuer,
            audience=self.staff_audience,
            ttl_seconds=self.staff_ttl,
            key_id=self.key_id,
            claims={
                "sid": sid,
                "mun": staff.municipality_code,
                "role": staff.role,
                "email": staff.email,
            },
        )
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.staff_ttl,
            "refresh_token": refresh_token,
            "staff": accounts.serialize_staff(staff),
        }


class PanelService:
    name = "panel"

    db = Database()
    emit = Outbox()
    issuer = TokenIssuer()
    mail = Mail()
    settings: Settings[PanelSettings] = Settings(PanelSettings.load)
    metrics = Metrics()
    log_context = LoggingContext()
    development_defaults = DevelopmentDefaults()  # refused at start outside development
    clock = Clock()

    # --- municipalities ------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def create_municipality(self, data: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.MunicipalityIn(), data)
        return self.db.run(
            lambda s: tenants.serialize_municipality(
                tenants.create_municipality(
                    s,
                    code=fields["code"],
                    name=fields["name"],
                    now=self.clock(),
                    branding=fields["branding"],
                    settings=fields["settings"],
                    emit=self.emit,
                )
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_municipalities(self) -> list[dict[str, Any]]:
        return self.db.run(
            lambda s: [tenants.serialize_municipality(m) for m in tenants.list_municipalities(s)]
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_branding(self, municipality_code: str) -> dict[str, Any]:
        def read(s: Any) -> dict[str, Any]:
            m = tenants.get_municipality(s, municipality_code)
            return {
                "municipality_code": m.code,
                "name": m.name,
                **m.branding,
                "etag": tenants.branding_etag(m.branding),
            }

        return self.db.run(read)

    @rpc(expected_exceptions=EXPECTED)
    def update_branding(self, municipality_code: str, changes: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.BrandingIn(), changes)
        return self.db.run(
            lambda s: tenants.serialize_municipality(
                tenants.update_branding(s, code=municipality_code, changes=fields, now=self.clock())
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_settings(self, municipality_code: str) -> dict[str, Any]:
        return self.db.run(lambda s: tenants.get_municipality(s, municipality_code).settings)

    @rpc(expected_exceptions=EXPECTED)
    def update_settings(self, municipality_code: str, changes: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.SettingsIn(), changes)
        return self.db.run(
            lambda s: (
                tenants.update_settings(
                    s, code=municipality_code, changes=fields, now=self.clock(), emit=self.emit
                ).settings
            )
        )

    # --- areas ---------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def import_areas(self, municipality_code: str, data: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.AreaImportIn(), data)
        return self.db.run(
            lambda s: area_store.import_areas(
                s,
                municipality_code=municipality_code,
                kwb_csv=fields["kwb_csv"],
                buurt_geojson=fields["buurt_geojson"],
                now=self.clock(),
                emit=self.emit,
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_areas(
        self, municipality_code: str, level: str | None = None, year: int | None = None
    ) -> list[dict[str, Any]]:
        return self.db.run(
            lambda s: area_store.list_areas(
                s, municipality_code=municipality_code, level=level, year=year
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def locate(self, municipality_code: str, lat: float, lon: float) -> dict[str, Any] | None:
        fields = load(schemas.LocationIn(), {"lat": lat, "lon": lon})
        return self.db.run(
            lambda s: area_store.locate(s, municipality_code=municipality_code, **fields)
        )

    @rpc(expected_exceptions=EXPECTED)
    def buurt_boundaries(self, municipality_code: str) -> dict[str, Any]:
        return self.db.run(
            lambda s: area_store.buurt_boundaries(s, municipality_code=municipality_code)
        )

    # --- regions (issue 13) ---------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def list_regions(self, municipality_code: str, archived: bool = False) -> list[dict[str, Any]]:
        return self.db.run(
            lambda s: regions.list_regions(
                s, municipality_code=municipality_code, archived=archived
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_region(
        self, municipality_code: str, code: str, version: int | None = None
    ) -> dict[str, Any]:
        return self.db.run(
            lambda s: regions.get_region(
                s, municipality_code=municipality_code, code=code, version=version
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def create_region(
        self, municipality_code: str, data: dict[str, Any], created_by: str | None = None
    ) -> dict[str, Any]:
        fields = load(schemas.RegionIn(), data)
        return self.db.run(
            lambda s: regions.create_region(
                s,
                municipality_code=municipality_code,
                data=fields,
                now=self.clock(),
                created_by=created_by,
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def update_region(
        self,
        municipality_code: str,
        code: str,
        changes: dict[str, Any],
        created_by: str | None = None,
    ) -> dict[str, Any]:
        fields = load(schemas.RegionUpdate(), changes)
        return self.db.run(
            lambda s: regions.update_region(
                s,
                municipality_code=municipality_code,
                code=code,
                changes=fields,
                now=self.clock(),
                created_by=created_by,
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def archive_region(self, municipality_code: str, code: str) -> dict[str, Any]:
        return self.db.run(
            lambda s: regions.archive_region(
                s, municipality_code=municipality_code, code=code, now=self.clock()
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def propose_regions(self, municipality_code: str, data: dict[str, Any]) -> list[dict]:
        fields = load(schemas.RegionImportIn(), data)
        return self.db.run(
            lambda s: regions.propose_from_geojson(
                s, municipality_code=municipality_code, geojson=fields["geojson"]
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def regions_for_poll(self, municipality_code: str, codes: list[str]) -> list[dict[str, Any]]:
        return self.db.run(
            lambda s: regions.for_poll(s, municipality_code=municipality_code, codes=codes)
        )

    # --- residents -----------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def join_with_code(self, data: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.JoinIn(), data)
        code = fields.pop("invitation_code")

        def join(s: Any) -> dict[str, Any]:
            resident, contact = members.join_with_code(
                s, code=code, profile=fields, now=self.clock(), emit=self.emit
            )
            refresh, sid = accounts.start_session(
                s, resident=resident, now=self.clock(), contact_id=contact
            )
            return {
                "resident": members.serialize_resident(resident, self.clock()),
                **self.issuer.resident(resident, refresh, sid, contact),
            }

        return self.db.run(join)

    @rpc(expected_exceptions=EXPECTED)
    def start_signup(self, data: dict[str, Any]) -> dict[str, Any]:
        """E-mail a verification code. The answer is the same whether or not the address is
        already in the panel, so the endpoint cannot be used to find out who is."""
        fields = load(schemas.SignupStartIn(), data)

        def start(s: Any) -> tuple[str, Any, str]:
            code = members.start_signup(
                s,
                municipality_code=fields["municipality_code"],
                email=fields["email"],
                now=self.clock(),
            )
            m = tenants.get_municipality(s, fields["municipality_code"])
            return code, m, m.branding["app_name"]

        code, municipality, app_name = self.db.run(start)
        subject, body = texts.SIGNUP_CODE[fields["language"]]
        self.mail.send(
            fields["email"],
            subject.format(municipality=municipality.name),
            body.format(municipality=municipality.name, code=code, app_name=app_name),
        )
        return {"sent": True, "expires_in": int(members.VERIFY_TTL.total_seconds())}

    @rpc(expected_exceptions=EXPECTED)
    def finish_signup(self, data: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.SignupFinishIn(), data)
        municipality_code, email = fields.pop("municipality_code"), fields.pop("email")
        code = fields.pop("code")

        def finish(s: Any) -> dict[str, Any]:
            resident, contact = members.finish_signup(
                s,
                municipality_code=municipality_code,
                email=email,
                code=code,
                profile=fields,
                now=self.clock(),
                emit=self.emit,
            )
            refresh, sid = accounts.start_session(
                s, resident=resident, now=self.clock(), contact_id=contact
            )
            return {
                "resident": members.serialize_resident(resident, self.clock()),
                **self.issuer.resident(resident, refresh, sid, contact),
            }

        # A wrong code is counted (at most VERIFY_ATTEMPTS per code) although refused.
        return commit_then_refuse(self.db, finish)

    @rpc(expected_exceptions=EXPECTED)
    def refresh(self, data: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.RefreshIn(), data)

        def rotate(s: Any) -> dict[str, Any]:
            resident, successor, sid, contact = accounts.rotate(
                s, refresh_token=fields["refresh_token"], now=self.clock(), emit=self.emit
            )
            return self.issuer.resident(resident, successor, sid, contact)

        # A detected reuse revokes the family although the call is refused.
        return commit_then_refuse(self.db, rotate)

    @rpc(expected_exceptions=EXPECTED)
    def get_resident(self, resident_id: str) -> dict[str, Any]:
        return self.db.run(
            lambda s: members.serialize_resident(members.get_resident(s, resident_id), self.clock())
        )

    @rpc(expected_exceptions=EXPECTED)
    def resident_claims(self, resident_id: str) -> dict[str, Any]:
        """For the gateway's personal links (no access token there): what a resident access
        token says of its resident — municipality, area, language, the weighting stratum."""
        return self.db.run(
            lambda s: members.access_claims(members.get_resident(s, resident_id), self.clock())
        )

    @rpc(expected_exceptions=EXPECTED)
    def update_resident(self, resident_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.ProfileUpdateIn(), changes)
        return self.db.run(
            lambda s: members.serialize_resident(
                members.update_resident(
                    s, resident_id=resident_id, changes=fields, now=self.clock(), emit=self.emit
                ),
                self.clock(),
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def leave(self, resident_id: str, contact_id: str | None = None) -> dict[str, Any]:
        """Leave the panel. ``contact_id`` (the token's ``cid``): a contact of a business or
        organisation with other contacts leaves alone (``participant_left`` false); otherwise
        the participant is erased. Every gateway refuses the sessions that ended."""
        participant_left = self.db.run(
            lambda s: members.leave(
                s,
                resident_id=resident_id,
                contact_id=contact_id,
                now=self.clock(),
                emit=self.emit,
            )
        )
        return {"left": True, "participant_left": participant_left}

    @rpc(expected_exceptions=EXPECTED)
    def contact_code(self, resident_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """A contact code for another person of the caller's business or organisation;
        e-mailed to ``email`` when given (an invitation by the first contact)."""
        fields = load(schemas.ContactCodeIn(), data)

        def issue(s: Any) -> tuple[dict[str, Any], Any]:
            found = invitations.contact_code(s, resident_id=resident_id, now=self.clock())
            participant = members.get_resident(s, resident_id)
            return found, tenants.get_municipality(s, participant.municipality_code)

        found, municipality = self.db.run(issue)
        if fields["email"]:
            subject, body = texts.CONTACT_CODE[fields["language"]]
            self.mail.send(
                fields["email"],
                subject.format(organisation=found["organisation_name"]),
                body.format(
                    organisation=found["organisation_name"],
                    municipality=municipality.name,
                    app_name=municipality.branding["app_name"],
                    code=found["code"],
                ),
            )
        return {**found, "emailed": bool(fields["email"])}

    @rpc(expected_exceptions=EXPECTED)
    def list_contacts(
        self, resident_id: str, contact_id: str | None = None
    ) -> list[dict[str, Any]]:
        return self.db.run(
            lambda s: members.contacts_of(s, resident_id=resident_id, contact_id=contact_id)
        )

    @rpc(expected_exceptions=EXPECTED)
    def revoked_sessions(self) -> list[dict[str, Any]]:
        """Sessions every gateway must refuse (``session_id``, ``expires_at``): the gateway
        reads it at start, after a reconnection and periodically (sessions_revoked events in
        between)."""
        return self.db.run(lambda s: accounts.revoked_sessions(s, now=self.clock()))

    # --- recruitment and composition -----------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def create_invitation_batch(
        self, municipality_code: str, data: dict[str, Any], created_by: str | None = None
    ) -> dict[str, Any]:
        fields = load(schemas.InvitationBatchIn(), data)
        return self.db.run(
            lambda s: invitations.create_batch(
                s,
                municipality_code=municipality_code,
                now=self.clock(),
                created_by=created_by,
                total=fields.get("total"),
                per_wijk=fields.get("per_wijk"),
                kind=fields["kind"],
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_invitation_batches(self, municipality_code: str) -> list[dict[str, Any]]:
        return self.db.run(
            lambda s: invitations.list_batches(s, municipality_code=municipality_code)
        )

    @rpc(expected_exceptions=EXPECTED)
    def panel_composition(self, municipality_code: str) -> dict[str, Any]:
        return self.db.run(
            lambda s: members.composition(s, municipality_code=municipality_code, now=self.clock())
        )

    # --- paper questionnaires (paper.py) ---------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def create_paper_run(
        self,
        municipality_code: str,
        poll_id: str,
        data: dict[str, Any],
        created_by: str | None = None,
    ) -> dict[str, Any]:
        fields = load(schemas.PaperRunIn(), data)
        return self.db.run(
            lambda s: paper.create_run(
                s,
                municipality_code=municipality_code,
                poll_id=poll_id,
                buurt_code=fields["buurt_code"],
                size=fields["count"],
                now=self.clock(),
                created_by=created_by,
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_paper_runs(self, municipality_code: str, poll_id: str) -> list[dict[str, Any]]:
        return self.db.run(
            lambda s: paper.list_runs(s, municipality_code=municipality_code, poll_id=poll_id)
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_paper_run(self, municipality_code: str, poll_id: str, run_id: str) -> dict[str, Any]:
        return self.db.run(
            lambda s: paper.get_run(
                s, municipality_code=municipality_code, poll_id=poll_id, run_id=run_id
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def paper_code(
        self, municipality_code: str, poll_id: str, code: str, refuse_keyed: bool = False
    ) -> dict[str, Any]:
        return self.db.run(
            lambda s: paper.look_up(
                s,
                municipality_code=municipality_code,
                poll_id=poll_id,
                code=code,
                refuse_keyed=bool(refuse_keyed),
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def key_paper_code(
        self,
        municipality_code: str,
        poll_id: str,
        code: str,
        keyed_by: str | None = None,
        receipt_id: str | None = None,
    ) -> dict[str, Any]:
        return self.db.run(
            lambda s: paper.key_in(
                s,
                municipality_code=municipality_code,
                poll_id=poll_id,
                code=code,
                now=self.clock(),
                keyed_by=keyed_by,
                receipt_id=receipt_id,
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def release_paper_code(self, municipality_code: str, poll_id: str, code: str) -> None:
        self.db.run(
            lambda s: paper.release(
                s, municipality_code=municipality_code, poll_id=poll_id, code=code
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def paper_keyed_count(self, municipality_code: str) -> int:
        return self.db.run(lambda s: paper.keyed_count(s, municipality_code=municipality_code))

    # --- staff ---------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def staff_login(self, data: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.LoginIn(), data)
        # A failed attempt is counted (lock-out) although the call is refused.
        return commit_then_refuse(
            self.db, lambda s: self._staff_session(s, accounts.login(s, now=self.clock(), **fields))
        )

    def _staff_session(self, s: Any, staff: Any) -> dict[str, Any]:
        refresh, sid = accounts.start_staff_session(s, staff=staff, now=self.clock())
        return self.issuer.staff(staff, refresh, sid)

    @rpc(expected_exceptions=EXPECTED)
    def staff_refresh(self, data: dict[str, Any]) -> dict[str, Any]:
        """Rotate a staff refresh token (reuse revokes the session; a disabled account or a
        changed role has no session left to refresh)."""
        fields = load(schemas.RefreshIn(), data)

        def rotate(s: Any) -> dict[str, Any]:
            staff, successor, sid = accounts.rotate_staff(
                s, refresh_token=fields["refresh_token"], now=self.clock(), emit=self.emit
            )
            return self.issuer.staff(staff, successor, sid)

        return commit_then_refuse(self.db, rotate)

    @rpc(expected_exceptions=EXPECTED)
    def invite_staff(self, municipality_code: str, data: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.InviteStaffIn(), data)

        def invite(s: Any) -> tuple[dict[str, Any], str, Any]:
            staff, token = accounts.invite_staff(
                s, municipality_code=municipality_code, now=self.clock(), **fields
            )
            return (
                accounts.serialize_staff(staff),
                token,
                tenants.get_municipality(s, municipality_code),
            )

        staff, token, municipality = self.db.run(invite)
        subject, body = texts.STAFF_INVITE
        base = self.settings.admin_app_url
        app_name = municipality.branding["app_name"]
        self.mail.send(
            staff["email"],
            subject.format(app_name=app_name),
            body.format(
                name=f" {staff['name']}" if staff["name"] else "",
                role=staff["role"],
                app_name=app_name,
                municipality=municipality.name,
                link=f"{base}/accept-invite#token={token}",
            ),
        )
        return staff

    @rpc(expected_exceptions=EXPECTED)
    def accept_staff_invite(self, data: dict[str, Any]) -> dict[str, Any]:
        fields = load(schemas.AcceptInviteIn(), data)
        return self.db.run(
            lambda s: self._staff_session(
                s,
                accounts.accept_invite(
                    s, token=fields["token"], password=fields["password"], now=self.clock()
                ),
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_staff(self, municipality_code: str) -> list[dict[str, Any]]:
        return self.db.run(
            lambda s: [
                accounts.serialize_staff(x)
                for x in accounts.list_staff(s, municipality_code=municipality_code)
            ]
        )

    @rpc(expected_exceptions=EXPECTED)
    def change_staff(
        self, municipality_code: str, staff_id: str, changes: dict[str, Any], actor_id: str
    ) -> dict[str, Any]:
        fields = load(schemas.StaffChangeIn(), changes)
        return self.db.run(
            lambda s: accounts.serialize_staff(
                accounts.change_staff(
                    s,
                    municipality_code=municipality_code,
                    staff_id=staff_id,
                    changes=fields,
                    actor_id=actor_id,
                    now=self.clock(),
                    emit=self.emit,
                )
            )
        )
