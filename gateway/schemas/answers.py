"""Answers of the routes that had none declared: the gateway's own public contract, like the
answers in ``gateway.schemas``. The route dispatcher sends a JSON answer through its route's
schema (``gateway.routing.project``): a field a service adds is not sent until it is declared
here, and the OpenAPI document is generated from these same classes, so the two cannot drift.
Values are passed as the services give them (ISO 8601 text for times), not converted: a value
of another type than declared fails the conformance test (tests/service/test_openapi_conformance.py)
instead of being coerced.

The two large documents (``ResultsOut``, ``TrendOut``) are described here but not projected per
request (docs/benchmarks.md: ~1 MB at a million responses); the conformance test validates them.
"""

from __future__ import annotations

from marshmallow import Schema, fields

# --- operations ------------------------------------------------------------------------------


class HealthOut(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


class ReadinessOut(Schema):
    status = fields.String(required=True, metadata={"description": "ready or not ready"})
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.Boolean(),
        required=True,
        metadata={"description": "per part (broker, each service, the caches): answers"},
    )


class OpenAPIOut(Schema):
    """This document (OpenAPI 3.1)."""

    openapi = fields.String(required=True)
    info = fields.Dict(required=True)
    servers = fields.List(fields.Dict())
    paths = fields.Dict(required=True)
    components = fields.Dict()


# --- residents -------------------------------------------------------------------------------


class ContactOut(Schema):
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    url = fields.String(allow_none=True)


class BrandingOut(Schema):
    app_name = fields.String()
    primary_color = fields.String()
    accent_color = fields.String()
    text_on_primary = fields.String(
        metadata={"description": "white or black unless chosen: WCAG AA on primary_color"}
    )
    contrast_ratio = fields.Float(metadata={"description": "of text_on_primary on primary"})
    logo_url = fields.String(allow_none=True)
    welcome_text = fields.String()
    privacy_url = fields.String(allow_none=True)
    contact = fields.Nested(ContactOut)


class MunicipalityBrandingOut(BrandingOut):
    municipality_code = fields.String()
    name = fields.String()


class LocatedOut(Schema):
    buurt_code = fields.String()
    buurt_name = fields.String()
    wijk_code = fields.String(allow_none=True)
    approximate = fields.Boolean(
        metadata={"description": "generalised boundaries: a suggestion near borders"}
    )


class SignupStartedOut(Schema):
    sent = fields.Boolean()
    expires_in = fields.Integer(metadata={"description": "seconds the code stays valid"})


class VapidKeyOut(Schema):
    application_server_key = fields.String(metadata={"description": "base64url"})


class DeviceOut(Schema):
    device_id = fields.UUID()
    channel = fields.String(metadata={"description": "webpush or fcm"})
    created_at = fields.DateTime()
    last_success_at = fields.DateTime(allow_none=True)
    registered_by = fields.String(
        metadata={
            "description": "me (the caller's own), colleague (another contact of the business "
            "or organisation) or unknown (registered before contacts were told apart)"
        }
    )
    contact_id = fields.UUID(
        allow_none=True,
        metadata={"description": "the contact who registered it (GET /api/v1/me/contacts)"},
    )


class QuietHoursOut(Schema):
    start = fields.String(metadata={"example": "21:00"})
    end = fields.String(metadata={"example": "08:00"})


class PreferencesOut(Schema):
    channel_order = fields.List(fields.String())
    quiet_hours = fields.Nested(QuietHoursOut, allow_none=True)


class UnsubscribedOut(Schema):
    unsubscribed = fields.Boolean()


class SubmissionAcceptedOut(Schema):
    receipt_id = fields.String(metadata={"description": "read it at /api/v1/receipts/{id}"})
    status = fields.String(metadata={"example": "accepted"})
    poll_id = fields.UUID()


class ReceiptOut(Schema):
    receipt_id = fields.String()
    status = fields.String(metadata={"description": "accepted, recorded or rejected"})
    poll_id = fields.UUID(metadata={"description": "once recorded or rejected"})
    reason = fields.String(allow_none=True, metadata={"description": "why it was rejected"})
    updated_at = fields.DateTime()


# --- the municipality ------------------------------------------------------------------------


class SettingsOut(Schema):
    min_cell_size = fields.Integer()
    default_channels = fields.List(fields.String())
    quiet_hours = fields.Nested(QuietHoursOut, allow_none=True)
    max_invitations_per_month = fields.Integer()
    feedback_due_days = fields.Integer()


class MunicipalityOut(Schema):
    code = fields.String()
    name = fields.String()
    branding = fields.Nested(BrandingOut)
    settings = fields.Nested(SettingsOut)
    area_year = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ImportWarningOut(Schema):
    field = fields.String()
    code = fields.String()
    message = fields.String()
    expected = fields.Integer(allow_none=True)
    actual = fields.Integer(allow_none=True)
    tolerance = fields.Integer(allow_none=True)


class AreaImportOut(Schema):
    municipality_code = fields.String()
    year = fields.Integer()
    changed = fields.Boolean(metadata={"description": "false: the same files as before"})
    replaced_rows = fields.Integer()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    current_year = fields.Integer(allow_none=True)
    warnings = fields.List(fields.Nested(ImportWarningOut))


class InvitationBatchOut(Schema):
    batch_id = fields.UUID()
    kind = fields.String(metadata={"description": "who the codes are for"})
    size = fields.Integer()
    per_wijk = fields.Dict(keys=fields.String(), values=fields.Integer())
    csv = fields.String(metadata={"description": "code,wijk_code,batch_id — shown this once"})


class InvitationBatchSummaryOut(Schema):
    batch_id = fields.UUID()
    kind = fields.String()
    size = fields.Integer()
    used = fields.Integer()
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()


class PaperRunOut(Schema):
    run_id = fields.UUID()
    poll_id = fields.UUID()
    wijk_code = fields.String()
    buurt_code = fields.String(metadata={"description": "where the forms' answers count"})
    size = fields.Integer(metadata={"description": "forms in the run"})
    keyed = fields.Integer(metadata={"description": "forms keyed in so far"})
    created_by = fields.String(allow_none=True)
    created_at = fields.DateTime()


class PaperFormOut(Schema):
    code = fields.String(metadata={"example": "7KQ4-M2XD-9HBT"})
    keyed_at = fields.DateTime(allow_none=True, metadata={"description": "null: not yet"})


class PaperRunDetailOut(PaperRunOut):
    forms = fields.List(fields.Nested(PaperFormOut), metadata={"description": "in print order"})


class PaperCodeOut(Schema):
    code = fields.String()
    poll_id = fields.UUID()
    run_id = fields.UUID()
    wijk_code = fields.String()
    buurt_code = fields.String()
    keyed_at = fields.DateTime(
        allow_none=True, metadata={"description": "when the form was keyed in; null: not yet"}
    )
    keyed_by = fields.String(allow_none=True)
    receipt_id = fields.UUID(allow_none=True, metadata={"description": "its answer's submission"})
    answer_status = fields.String(
        allow_none=True,
        metadata={"description": "accepted (queued), recorded or rejected; null: not keyed in"},
    )
    answer_reason = fields.String(
        allow_none=True, metadata={"description": "why it was rejected (e.g. poll_closed)"}
    )


class PaperEntryOut(Schema):
    receipt_id = fields.UUID(metadata={"description": "the submission's id (for support)"})
    status = fields.String(metadata={"example": "accepted"})
    poll_id = fields.UUID()
    code = fields.String()
    buurt_code = fields.String()
    keyed_at = fields.DateTime()


class CompositionGroupOut(Schema):
    kind = fields.String(metadata={"description": "age_band or sex"})
    group = fields.String()
    members = fields.Integer(allow_none=True, metadata={"description": "null: hidden"})
    hidden = fields.Boolean()
    share = fields.Float(allow_none=True)
    cbs_share = fields.Float(allow_none=True)
    gap = fields.Float(allow_none=True, metadata={"description": "percentage points"})


class CompositionAreaOut(Schema):
    code = fields.String()
    level = fields.String()
    name = fields.String(allow_none=True)
    members = fields.Integer(allow_none=True)
    hidden = fields.Boolean()
    population_15_plus = fields.Integer(allow_none=True)
    groups = fields.List(fields.Nested(CompositionGroupOut))


class CompositionWijkOut(Schema):
    wijk_code = fields.String()
    name = fields.String()
    members = fields.Integer()
    self_selected = fields.Integer()
    population_15_plus = fields.Integer(allow_none=True)
    gap = fields.Float(allow_none=True)


class CompositionAgeOut(Schema):
    age_band = fields.String()
    members = fields.Integer()
    population = fields.Integer(allow_none=True)
    gap = fields.Float(allow_none=True)


class CompositionSexOut(Schema):
    sex = fields.String()
    members = fields.Integer()
    population = fields.Integer(allow_none=True)
    gap = fields.Float(allow_none=True)


class AttritionOut(Schema):
    month = fields.String(metadata={"example": "2026-11"})
    joined = fields.Integer()
    left = fields.Integer()


class CompositionKindOut(Schema):
    kind = fields.String(metadata={"description": "resident, ondernemer or organisatie"})
    members = fields.Integer(allow_none=True, metadata={"description": "null: hidden"})
    hidden = fields.Boolean()


class CompositionKindAreaOut(Schema):
    code = fields.String()
    level = fields.String(metadata={"description": "gemeente, wijk or buurt"})
    name = fields.String(allow_none=True)
    parent_code = fields.String(allow_none=True)
    members = fields.Integer(allow_none=True, metadata={"description": "null: hidden"})
    hidden = fields.Boolean()
    kinds = fields.List(fields.Nested(CompositionKindOut))


class ContactCodeOut(Schema):
    code = fields.String(metadata={"description": "single use; shown this once"})
    expires_at = fields.DateTime()
    organisation_name = fields.String(allow_none=True)
    emailed = fields.Boolean()


class OrganisationContactOut(Schema):
    contact_id = fields.UUID()
    email = fields.String(allow_none=True)
    created_at = fields.DateTime()
    me = fields.Boolean(metadata={"description": "the contact this token was issued to"})


class CompositionOut(Schema):
    municipality_code = fields.String()
    year = fields.Integer(allow_none=True)
    k = fields.Integer()
    by_wijk = fields.List(
        fields.Nested(CompositionAreaOut),
        metadata={
            "description": "residents: the gemeente first, then each wijk; small groups hidden"
        },
    )
    by_kind = fields.List(
        fields.Nested(CompositionKindAreaOut),
        metadata={
            "description": "every kind of participant per area: the gemeente, each wijk, each "
            "buurt; small groups hidden"
        },
    )
    members = fields.Integer(metadata={"description": "residents"})
    unknown_age = fields.Integer()
    unknown_sex = fields.Integer()
    wijken = fields.List(fields.Nested(CompositionWijkOut))
    age_bands = fields.List(fields.Nested(CompositionAgeOut))
    sexes = fields.List(fields.Nested(CompositionSexOut))
    attrition = fields.List(fields.Nested(AttritionOut))


# --- notifications ---------------------------------------------------------------------------


class DeliveryCountOut(Schema):
    kind = fields.String()
    channel = fields.String()
    status = fields.String()
    count = fields.Integer()


class DeliverySummaryOut(Schema):
    poll_id = fields.String()
    invited = fields.Integer()
    deliveries = fields.List(fields.Nested(DeliveryCountOut))


class DeadDeliveryOut(Schema):
    delivery_id = fields.Integer()
    kind = fields.String()
    poll_id = fields.UUID()
    channel = fields.String()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    updated_at = fields.DateTime()


class ReplayedOut(Schema):
    replayed = fields.Integer()


# --- results (described, not projected: see the module's docstring) -------------------------


class OptionFiguresOut(Schema):
    option = fields.String()
    count = fields.Integer(allow_none=True, metadata={"description": "null: suppressed"})
    percent = fields.Float(allow_none=True)
    weighted_percent = fields.Float(allow_none=True)
    ci_low = fields.Float(allow_none=True)
    ci_high = fields.Float(allow_none=True)


class AreaFiguresOut(Schema):
    """One question in one area: ``{"suppressed": true}`` alone when hidden; an open question
    has ``respondents`` and, per wijk, ``texts``."""

    suppressed = fields.Boolean()
    respondents = fields.Integer(allow_none=True)
    effective_n = fields.Float(allow_none=True)
    options = fields.List(fields.Nested(OptionFiguresOut))
    weighting_notes = fields.List(fields.String())
    mean = fields.Float(allow_none=True)
    texts = fields.List(fields.String())


class SplitOptionOut(Schema):
    """An unweighted share: count, percentage, 95% Wilson interval on n (docs/methods.md)."""

    option = fields.String()
    count = fields.Integer(allow_none=True, metadata={"description": "null: suppressed"})
    percent = fields.Float(allow_none=True)
    ci_low = fields.Float(allow_none=True)
    ci_high = fields.Float(allow_none=True)


class SplitFiguresOut(Schema):
    """One question in one area for one kind of participant or channel: ``{"suppressed":
    true}`` alone when hidden; an open question has ``respondents`` and (businesses and
    organisations, per wijk) ``texts``."""

    suppressed = fields.Boolean()
    respondents = fields.Integer(allow_none=True)
    options = fields.List(fields.Nested(SplitOptionOut))
    mean = fields.Float(allow_none=True)
    texts = fields.List(fields.String())


def _split(description: str) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Nested(SplitFiguresOut)),
        metadata={"description": description},
    )


class QuestionResultsOut(Schema):
    id = fields.String()
    type = fields.String()
    text = fields.String()
    options = fields.List(fields.String())
    areas = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(AreaFiguresOut),
        metadata={"description": "area code → the residents' figures, weighted"},
    )
    by_kind = _split(
        "kind of participant (resident, ondernemer, organisatie, all) → area code (gemeente, "
        "wijk, region; no buurt) → unweighted figures"
    )
    by_channel = _split(
        "channel (app, link, paper) → area code (gemeente, wijk, region; no buurt) → "
        "unweighted figures"
    )


class ResultsAreaOut(Schema):
    code = fields.String()
    level = fields.String()
    parent_code = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    respondents = fields.Integer(allow_none=True)
    self_selected = fields.Integer(allow_none=True)
    recently_moved = fields.Integer(allow_none=True)
    kinds = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(allow_none=True),
        metadata={"description": "respondents per kind of participant; null: suppressed"},
    )
    channels = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(allow_none=True),
        metadata={"description": "respondents per channel (app, link, paper); null: suppressed"},
    )
    invited = fields.Integer(allow_none=True)
    response_rate = fields.Float(allow_none=True)
    suppressed = fields.Boolean(
        metadata={
            "description": "the area's main (residents') figures are hidden; respondents "
            "(all participants) may be null when this is false"
        }
    )


class WeightingOut(Schema):
    method = fields.String()
    converged = fields.Boolean()
    iterations = fields.Integer()
    max_margin_error = fields.Float()
    trimmed = fields.Boolean()
    effective_n = fields.Float()
    dimensions = fields.List(fields.String())
    population_15_plus = fields.Integer(allow_none=True)
    notes = fields.List(fields.String())


class ResultsVersionOut(Schema):
    seq = fields.Integer()
    final = fields.Boolean(metadata={"description": "true once the poll has closed"})


class ResultsOut(Schema):
    """The released results document (docs/methods.md, docs/suppression.md)."""

    poll_id = fields.UUID()
    k = fields.Integer()
    respondents = fields.String(metadata={"description": "the view: all or panel"})
    areas = fields.List(fields.Nested(ResultsAreaOut))
    questions = fields.List(fields.Nested(QuestionResultsOut))
    weighting = fields.Dict(keys=fields.String(), values=fields.Nested(WeightingOut))
    margins_year = fields.Integer(allow_none=True)
    version = fields.Nested(ResultsVersionOut)


class TrendOptionOut(Schema):
    option = fields.String()
    weighted_percent = fields.Float(allow_none=True)
    ci_low = fields.Float(allow_none=True)
    ci_high = fields.Float(allow_none=True)


class TrendMeanOut(Schema):
    mean = fields.Float()
    ci_low = fields.Float()
    ci_high = fields.Float()
    effective_n = fields.Float()


class TrendWaveFiguresOut(Schema):
    wave = fields.Integer()
    poll_id = fields.UUID()
    suppressed = fields.Boolean()
    respondents = fields.Integer(allow_none=True)
    effective_n = fields.Float(allow_none=True)
    options = fields.List(fields.Nested(TrendOptionOut))
    mean = fields.Nested(
        TrendMeanOut, allow_none=True, metadata={"description": "scale questions: weighted"}
    )
    weighting_notes = fields.List(
        fields.String(),
        metadata={"description": "the notes about this wave's weights, as in its results"},
    )


class ChangeOptionOut(Schema):
    option = fields.String()
    change = fields.Float(allow_none=True, metadata={"description": "percentage points"})
    ci_low = fields.Float(allow_none=True)
    ci_high = fields.Float(allow_none=True)
    significant = fields.Boolean(allow_none=True)


class MeanChangeOut(Schema):
    change = fields.Float(allow_none=True)
    ci_low = fields.Float(allow_none=True)
    ci_high = fields.Float(allow_none=True)
    significant = fields.Boolean(allow_none=True)


class ChangeOut(Schema):
    from_wave = fields.Integer()
    to_wave = fields.Integer()
    comparable = fields.Boolean()
    options = fields.List(fields.Nested(ChangeOptionOut))
    mean = fields.Nested(
        MeanChangeOut, allow_none=True, metadata={"description": "scale questions"}
    )


class TrendAreaOut(Schema):
    waves = fields.List(fields.Nested(TrendWaveFiguresOut))
    changes = fields.List(fields.Nested(ChangeOut))


class TrendQuestionOut(Schema):
    id = fields.String()
    type = fields.String()
    text = fields.String()
    options = fields.List(fields.String())
    areas = fields.Dict(keys=fields.String(), values=fields.Nested(TrendAreaOut))


class WaveOut(Schema):
    wave = fields.Integer()
    poll_id = fields.UUID()
    title = fields.String(allow_none=True)


class TrendOut(Schema):
    waves = fields.List(fields.Nested(WaveOut))
    questions = fields.List(fields.Nested(TrendQuestionOut))


class SeriesWaveOut(Schema):
    """One poll of a series. No figures: those are in the poll's results and the trend,
    released through suppression there."""

    poll_id = fields.UUID()
    title = fields.String(allow_none=True)
    wave = fields.Integer(metadata={"description": "1 for the first poll, then 2, 3, …"})
    previous_poll_id = fields.UUID(
        allow_none=True, metadata={"description": "the wave this one follows (null: the first)"}
    )
    status = fields.String(metadata={"description": "draft, scheduled, open, closed or archived"})
    opens_at = fields.DateTime(allow_none=True)
    closes_at = fields.DateTime(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)


class SeriesOut(Schema):
    waves = fields.List(
        fields.Nested(SeriesWaveOut),
        metadata={"description": "first to last: by wave, then opening, then creation"},
    )


class OverviewValueOut(Schema):
    """One answer's weighted share (``option``), or a scale's weighted mean (``option`` null),
    with the change from the previous wave; ``trend`` only when that change is significant."""

    option = fields.String(allow_none=True)
    label = fields.String(allow_none=True)
    value = fields.Float(allow_none=True)
    ci_low = fields.Float(allow_none=True)
    ci_high = fields.Float(allow_none=True)
    change = fields.Float(allow_none=True)
    significant = fields.Boolean(allow_none=True)
    trend = fields.String(allow_none=True, metadata={"description": "up, down or null"})


class OverviewQuestionOut(Schema):
    key = fields.String(metadata={"description": "theme.question_id"})
    theme = fields.String()
    question_id = fields.String()
    type = fields.String()
    text = fields.String()
    measure = fields.String(metadata={"description": "share or mean"})
    poll_id = fields.UUID()
    poll_title = fields.String(allow_none=True)
    wave = fields.Integer(allow_none=True)
    k = fields.Integer(allow_none=True)
    polled = fields.DateTime()
    position = fields.Integer()
    suppressed = fields.Boolean()
    reason = fields.String(
        allow_none=True, metadata={"description": "suppressed, not_weighted or no_respondents"}
    )
    respondents = fields.Integer(allow_none=True)
    effective_n = fields.Float(allow_none=True)
    weighting_notes = fields.List(
        fields.String(),
        metadata={"description": "the notes about the weights behind these figures (results)"},
    )
    values = fields.List(fields.Nested(OverviewValueOut))


class OverviewAreaOut(Schema):
    code = fields.String()
    level = fields.String()
    parent_code = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    last_polled = fields.DateTime(allow_none=True)
    last_poll_id = fields.UUID(allow_none=True)
    open_measures = fields.Integer()
    questions = fields.List(fields.Nested(OverviewQuestionOut))


class OverviewOut(Schema):
    municipality_code = fields.String()
    themes = fields.List(fields.String())
    areas = fields.List(fields.Nested(OverviewAreaOut))


# --- feedback --------------------------------------------------------------------------------


class KeyFigureOptionOut(Schema):
    option = fields.String()
    suppressed = fields.Boolean()
    percent = fields.Float(allow_none=True)
    weighted_percent = fields.Float(allow_none=True)
    ci_low = fields.Float(allow_none=True)
    ci_high = fields.Float(allow_none=True)


class KeyFigureOut(Schema):
    """A figure from the results, frozen at publication (suppressed like the results)."""

    question_id = fields.String()
    question = fields.String()
    type = fields.String()
    area_code = fields.String()
    level = fields.String()
    suppressed = fields.Boolean()
    n = fields.Integer()
    options = fields.List(fields.Nested(KeyFigureOptionOut))
    weighting_notes = fields.List(
        fields.String(),
        metadata={
            "description": "the notes about the weights behind the figures, frozen with them "
            "(absent in figures frozen before they were kept)"
        },
    )


class MeasureNoteOut(Schema):
    status = fields.String()
    note = fields.String(allow_none=True)
    at = fields.DateTime()


class PublicMeasureOut(Schema):
    title = fields.String()
    description = fields.String(allow_none=True)
    area_codes = fields.List(fields.String())
    owner = fields.String()
    expected_date = fields.Date(allow_none=True)
    status = fields.String(metadata={"description": "planned, in_progress, done or dropped"})
    history = fields.List(fields.Nested(MeasureNoteOut))


class ResidentMeasureOut(PublicMeasureOut):
    measure_id = fields.UUID()
    feedback_id = fields.UUID()


class MeasureOut(ResidentMeasureOut):
    updated_by = fields.String(allow_none=True)


class ResidentFeedbackOut(Schema):
    feedback_id = fields.UUID()
    poll_id = fields.UUID()
    poll_title = fields.String(allow_none=True)
    municipality_code = fields.String()
    status = fields.String(metadata={"description": "draft or published"})
    title = fields.String()
    heard = fields.String()
    plan = fields.String()
    not_followed = fields.String(allow_none=True)
    key_figures = fields.List(fields.Nested(KeyFigureOut))
    notify_all_invitees = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)
    measures = fields.List(fields.Nested(ResidentMeasureOut))


class FeedbackOut(ResidentFeedbackOut):
    measures = fields.List(fields.Nested(MeasureOut))
    updated_by = fields.String(allow_none=True)


class ReactionOut(Schema):
    useful = fields.Boolean()
    comment = fields.String(allow_none=True)


class FeedbackDetailOut(ResidentFeedbackOut):
    my_reaction = fields.Nested(ReactionOut, allow_none=True)


class FeedbackStatusOut(Schema):
    poll_id = fields.UUID()
    poll_title = fields.String(allow_none=True)
    poll_closed_at = fields.DateTime(allow_none=True)
    status = fields.String(metadata={"description": "none, draft or published"})
    feedback_id = fields.UUID(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    overdue = fields.Boolean()


class OverdueOut(Schema):
    poll_id = fields.UUID()
    poll_title = fields.String(allow_none=True)
    closed_at = fields.DateTime()
    due_at = fields.DateTime()
    days_overdue = fields.Integer()


class LoopFiguresOut(Schema):
    closed_polls = fields.Integer()
    with_feedback = fields.Integer()
    share_with_feedback = fields.Float(allow_none=True)
    median_days_to_feedback = fields.Float(allow_none=True)
    reactions = fields.Integer(
        metadata={
            "description": "residents' reactions as the feedback's released reaction versions "
            "show them: the sum of each feedback's gemeente-level total in its latest released "
            "version, those with hidden figures left out (docs/suppression.md, 'Reactions over "
            "time'); it changes only when a version is released"
        }
    )
    share_useful = fields.Float(
        allow_none=True,
        metadata={"description": "share of those reactions that found the feedback useful"},
    )
    reactions_feedbacks_counted = fields.Integer(
        metadata={"description": "feedback items whose released reaction figures are counted"}
    )
    reactions_feedbacks_hidden = fields.Integer(
        metadata={
            "description": "feedback items whose released reaction figures are hidden (fewer "
            "than k): left out of reactions and share_useful"
        }
    )


class ReactionAreaOut(Schema):
    area_code = fields.String()
    level = fields.String()
    suppressed = fields.Boolean()
    n = fields.Integer()
    useful = fields.Integer(allow_none=True)
    not_useful = fields.Integer(allow_none=True)
    share_useful = fields.Float(allow_none=True)


class ReactionCommentOut(Schema):
    area_code = fields.String()
    text = fields.String()


class ReactionsVersionOut(Schema):
    seq = fields.Integer(
        metadata={
            "description": "the released version served: a new one only when the reactions "
            "since pass the suppression test (docs/suppression.md, 'Reactions over time')"
        }
    )


class ReactionsOut(Schema):
    """The released version of the reaction figures (docs/suppression.md)."""

    n = fields.Integer(allow_none=True)
    suppressed = fields.Boolean()
    useful = fields.Integer(allow_none=True)
    not_useful = fields.Integer(allow_none=True)
    share_useful = fields.Float(allow_none=True)
    per_area = fields.List(fields.Nested(ReactionAreaOut))
    comments = fields.List(fields.Nested(ReactionCommentOut))
    version = fields.Nested(ReactionsVersionOut)


class FeedItemOut(Schema):
    feedback_id = fields.UUID()
    poll_id = fields.UUID()
    title = fields.String()
    summary = fields.String(metadata={"description": "the start of what we heard"})
    published_at = fields.DateTime()
    measures_total = fields.Integer()
    measures_done = fields.Integer()
    concerns_my_area = fields.Boolean()


class TimelineItemOut(Schema):
    feedback_id = fields.UUID()
    poll_title = fields.String(allow_none=True)
    title = fields.String()
    heard = fields.String()
    plan = fields.String()
    not_followed = fields.String(allow_none=True)
    key_figures = fields.List(fields.Nested(KeyFigureOut))
    published_at = fields.DateTime()
    measures = fields.List(fields.Nested(PublicMeasureOut))


class TimelineOut(Schema):
    municipality_code = fields.String()
    items = fields.List(fields.Nested(TimelineItemOut))
    updated_at = fields.DateTime(allow_none=True)


# --- the map ---------------------------------------------------------------------------------


class BuurtPropertiesOut(Schema):
    code = fields.String()
    name = fields.String()
    wijk = fields.String(allow_none=True)


class GeometryOut(Schema):
    type = fields.String(metadata={"example": "MultiPolygon"})
    coordinates = fields.List(
        fields.Raw(), metadata={"description": "polygons of rings of [lon, lat] (RFC 7946)"}
    )


class BuurtFeatureOut(Schema):
    type = fields.String(metadata={"example": "Feature"})
    properties = fields.Nested(BuurtPropertiesOut)
    geometry = fields.Nested(GeometryOut)


class BuurtenOut(Schema):
    type = fields.String(metadata={"example": "FeatureCollection"})
    features = fields.List(fields.Nested(BuurtFeatureOut))
