"""Input shapes of the panel service's RPC API (the gateway reuses them for HTTP bodies and
the OpenAPI document)."""

from __future__ import annotations

from datetime import date

from marshmallow import Schema, fields, validate

from services.common.intake import PARTICIPANT_KINDS
from services.common.municipal import QuietHoursIn
from services.common.validation import MULTILINE
from services.panel.accounts import ROLES

CODE = validate.Regexp(r"^GM\d{4}$", error="must be a CBS municipality code like GM0344")
SEX_CHOICES = ("man", "vrouw", "anders", "zeg_ik_liever_niet")
THIS_YEAR = date.today().year


class LocationIn(Schema):
    lat = fields.Float(required=True, validate=validate.Range(min=-90, max=90))
    lon = fields.Float(required=True, validate=validate.Range(min=-180, max=180))


class ContactIn(Schema):
    email = fields.Email(allow_none=True)
    phone = fields.String(allow_none=True, validate=validate.Length(max=40))
    url = fields.Url(allow_none=True)


class BrandingIn(Schema):
    app_name = fields.String(validate=validate.Length(min=2, max=60))
    primary_color = fields.String()
    accent_color = fields.String()
    text_on_primary = fields.String(allow_none=True)
    logo_url = fields.Url(allow_none=True, schemes={"https"})
    welcome_text = fields.String(validate=validate.Length(max=1000), metadata=MULTILINE)
    privacy_url = fields.Url(allow_none=True, schemes={"https"})
    contact = fields.Nested(ContactIn)


class SettingsIn(Schema):
    min_cell_size = fields.Integer(validate=validate.Range(min=1, max=1000))
    default_channels = fields.List(
        fields.String(validate=validate.OneOf(["webpush", "fcm", "email"])),
        validate=validate.Length(min=1),
    )
    quiet_hours = fields.Nested(QuietHoursIn, allow_none=True)
    max_invitations_per_month = fields.Integer(validate=validate.Range(min=1, max=31))
    feedback_due_days = fields.Integer(validate=validate.Range(min=1, max=365))


class MunicipalityIn(Schema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(min=2, max=200))
    branding = fields.Nested(BrandingIn, load_default=None)
    settings = fields.Nested(SettingsIn, load_default=None)


class ProfileIn(Schema):
    buurt_code = fields.String(allow_none=True, validate=validate.Regexp(r"^BU\d{8}$"))
    location = fields.Nested(LocationIn)
    birth_year = fields.Integer(
        allow_none=True, validate=validate.Range(min=THIS_YEAR - 110, max=THIS_YEAR - 15)
    )
    sex = fields.String(allow_none=True, validate=validate.OneOf(SEX_CHOICES))
    language = fields.String(load_default="nl", validate=validate.OneOf(["nl", "en"]))
    consent = fields.Boolean(required=True)
    consent_version = fields.String(validate=validate.Length(max=40))


class OrganisationIn(Schema):
    """A business or organisation joining: its kind (a letter's code carries it; given, it
    must match), its KvK number (8 digits: checked by the panel with a field-level 422) and
    its name. A resident leaves them out."""

    kind = fields.String(load_default=None, validate=validate.OneOf(PARTICIPANT_KINDS))
    kvk_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    organisation_name = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=200)
    )


class JoinIn(ProfileIn, OrganisationIn):
    invitation_code = fields.String(required=True, validate=validate.Length(min=10, max=20))


class SignupStartIn(Schema):
    municipality_code = fields.String(required=True, validate=CODE)
    email = fields.Email(required=True)
    language = fields.String(load_default="nl", validate=validate.OneOf(["nl", "en"]))


class SignupFinishIn(ProfileIn, OrganisationIn):
    municipality_code = fields.String(required=True, validate=CODE)
    email = fields.Email(required=True)
    code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))


class ProfileUpdateIn(Schema):
    buurt_code = fields.String(validate=validate.Regexp(r"^BU\d{8}$"))
    location = fields.Nested(LocationIn)
    birth_year = fields.Integer(
        allow_none=True, validate=validate.Range(min=THIS_YEAR - 110, max=THIS_YEAR - 15)
    )
    sex = fields.String(allow_none=True, validate=validate.OneOf(SEX_CHOICES))
    language = fields.String(validate=validate.OneOf(["nl", "en"]))


class RefreshIn(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=20, max=200))


class LoginIn(Schema):
    email = fields.Email(required=True)
    password = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class InviteStaffIn(Schema):
    email = fields.Email(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    name = fields.String(load_default=None, validate=validate.Length(max=200))


class AcceptInviteIn(Schema):
    token = fields.String(required=True, validate=validate.Length(min=20, max=200))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class StaffChangeIn(Schema):
    role = fields.String(validate=validate.OneOf(ROLES))
    status = fields.String(validate=validate.OneOf(["active", "disabled"]))


class AreaImportIn(Schema):
    kwb_csv = fields.String(
        required=True, validate=validate.Length(min=1, max=5_000_000), metadata=MULTILINE
    )
    buurt_geojson = fields.String(
        required=True, validate=validate.Length(min=1, max=20_000_000), metadata=MULTILINE
    )


class InvitationBatchIn(Schema):
    kind = fields.String(load_default="resident", validate=validate.OneOf(PARTICIPANT_KINDS))
    total = fields.Integer(validate=validate.Range(min=1, max=100_000))
    per_wijk = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^WK\d{6}$")),
        values=fields.Integer(validate=validate.Range(min=0, max=100_000)),
    )


class ContactCodeIn(Schema):
    """A contact code for another person of the business or organisation; with an e-mail
    address the panel mails it there too."""

    email = fields.Email(load_default=None, allow_none=True)
    language = fields.String(load_default="nl", validate=validate.OneOf(["nl", "en"]))


class PaperRunIn(Schema):
    buurt_code = fields.String(
        required=True, validate=validate.Regexp(r"^BU\d{8}$", error="must be a CBS buurt code")
    )
    count = fields.Integer(required=True, validate=validate.Range(min=1, max=500))


BUURT = validate.Regexp(r"^BU\d{8}$", error="must be a CBS buurt code (BU…)")


class RegionIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=2, max=200))
    buurt_codes = fields.List(
        fields.String(validate=BUURT), required=True, validate=validate.Length(min=1, max=1000)
    )


class RegionUpdate(Schema):
    name = fields.String(validate=validate.Length(min=2, max=200))
    buurt_codes = fields.List(
        fields.String(validate=BUURT), validate=validate.Length(min=1, max=1000)
    )


class RegionImportIn(Schema):
    geojson = fields.String(required=True, validate=validate.Length(min=2, max=20_000_000))
