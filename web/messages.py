"""What to tell a person about a field error: the service says which field and which code (in
English, for developers); the page says what to fix, in the person's language."""

from __future__ import annotations

from collections.abc import Callable


def N_(message: str) -> str:  # noqa: N802 - the gettext marker Babel extracts
    return message


# (field, code) first, then the field alone, then the code alone.
BY_FIELD_AND_CODE = {
    ("invitation_code", "invalid"): N_(
        "We do not know this letter code. Check the code in your letter; it has 12 characters."
    ),
    ("invitation_code", "used"): N_(
        "This letter code has been used already. Each code works once."
    ),
    ("code", "expired"): N_("This code has expired. Ask for a new code."),
    ("code", "wrong_code"): N_("This code is not right. Check the 6 digits in the e-mail."),
    ("buurt_code", "not_a_buurt"): N_("Choose your buurt, not a wijk."),
    ("buurt_code", "outside_invited_wijk"): N_(
        "Your letter code is for another wijk. Choose a buurt in the wijk of your letter."
    ),
    ("location", "outside_invited_wijk"): N_(
        "This location is outside the wijk of your letter code. Choose a buurt in that wijk."
    ),
    ("location", "outside_area"): N_("This location is not in the municipality."),
    ("invitation_code", "expired"): N_(
        "This contact code has expired. Ask your colleague for a new code."
    ),
    ("kvk_number", "required"): N_("Enter the KvK number of your business or organisation."),
    ("kvk_number", "invalid_kvk"): N_(
        "A KvK number has exactly 8 digits, for example 12345678. Leave out spaces and dots."
    ),
    ("kvk_number", "not_an_organisation"): N_(
        "A resident gives no KvK number. Choose business or organisation, or leave the KvK "
        "number empty."
    ),
    ("kvk_number", "taken"): N_(
        "This KvK number is in the panel already. Ask your colleague who joined for a contact code."
    ),
    ("organisation_name", "required"): N_("Enter the name of your business or organisation."),
    ("kind", "code_for_other_kind"): N_(
        "Your code is for another kind of participant. Choose what your letter says: resident, "
        "business or organisation."
    ),
    ("buurt_code", "not_in_audience"): N_("Choose a buurt the poll is for."),
    ("paper_code", "unknown_code"): N_(
        "This code is not on any of our paper forms. Check the 12 characters at the top of the "
        "form."
    ),
    ("paper_code", "other_poll"): N_(
        "This code is on a form of another poll. Go back to Data entry and choose the poll "
        "printed at the top of the form."
    ),
    ("paper_code", "missing"): N_("Enter the code at the top of the form."),
    ("password", "invalid_credentials"): N_("The e-mail address or the password is not right."),
    ("device_id", "colleague_s_device"): N_(
        "This device belongs to a colleague: only they can stop its messages. You can stop "
        "messages to your own devices."
    ),
    ("contact", "contact_unknown"): N_(
        "We cannot tell which contact you are on this device, so you cannot leave on your own "
        "here. Ask a colleague for a contact code, sign in with it and leave from there."
    ),
    ("password", "locked"): N_(
        "Too many failed attempts: this account is locked for a while. Try again later."
    ),
}
BY_FIELD = {
    "invitation_code": N_("Enter the letter code from your letter (12 characters)."),
    "buurt_code": N_("Choose your buurt."),
    "consent": N_("Tick the box to agree, or you cannot join."),
    "birth_year": N_("Choose your year of birth, or leave it empty."),
    "sex": N_("Choose one of the answers, or leave it empty."),
    "email": N_("Enter an e-mail address like name@example.nl."),
    "kind": N_("Choose resident, business or organisation."),
    "kvk_number": N_("Enter the KvK number: 8 digits."),
    "organisation_name": N_(
        "Enter the name of your business or organisation (at most 200 characters)."
    ),
    "code": N_("Enter the 6 digits from the e-mail."),
    "useful": N_("Choose yes or no."),
    "comment": N_("Your comment can be at most 500 characters."),
    "quiet_hours": N_("Enter the times as hh:mm, for example 21:00."),
    "channel_order": N_("Choose at least one way to be told."),
    "confirm": N_("Tick the box to confirm that your data may be erased."),
    # staff
    "paper_code": N_("Enter the 12 characters of the code at the top of the form."),
    "count": N_("Enter a number of forms from 1 to 500."),
    "age_band": N_("Choose one of the ages, or leave it empty."),
    "password": N_("Enter your password."),
    "title": N_("Enter a title of at most 120 characters."),
    "heard": N_("Write what you heard (at most 5000 characters)."),
    "plan": N_("Write what you will do (at most 5000 characters)."),
    "not_followed": N_("At most 5000 characters."),
    "description": N_("At most 2000 characters."),
    "owner": N_("Enter who is responsible (at most 120 characters)."),
    "expected_date": N_("Enter a date as dd-mm-yyyy, or leave it empty."),
    "note": N_("At most 1000 characters."),
    "status": N_("Choose a status this measure can move to."),
    "template_id": N_("Choose a template."),
    "audience": N_("Choose who receives the poll: wijken, buurten or the whole municipality."),
    "kinds": N_("Choose at least one kind of participant: residents, businesses or organisations."),
    "closes_at": N_("Enter a closing date after today, or leave it empty."),
    "definition": N_("A question is not filled in correctly."),
    "key_figures": N_("Choose at most 10 key figures."),
}
ANSWER_CODES = {
    "required": N_("Answer this question."),
    "too_few": N_("Choose as many answers as the question asks."),
    "too_many": N_("Choose no more answers than the question asks."),
    "exclusive": N_("This answer cannot be combined with other answers."),
    "outside_area": N_("This place is outside the municipality. Choose a place inside it."),
    "too_long": N_("Your answer is too long."),
    "empty": N_("Write an answer, or leave the question empty if you may skip it."),
    "duplicate_place": N_("Give every place only once: 1, 2, 3."),
    "duplicate": N_("Give every place only once: 1, 2, 3."),
    "hidden": N_("This question does not apply after your earlier answer; leave it empty."),
    "out_of_range": N_("Choose one of the answers shown."),
    "invalid_type": N_("Fill this in as shown, for example 52.09 and 5.12 for a location."),
}
GENERAL = N_("This is not filled in correctly.")


def error_text(error: dict[str, str], gettext: Callable[[str], str]) -> str:
    if error.get("text"):  # already in the reader's language (made by the page)
        return str(error["text"])
    field, code = str(error.get("field", "")), str(error.get("code", ""))
    if field.startswith("answers."):
        return gettext(ANSWER_CODES.get(code, GENERAL))
    name = field.split(".")[0].split("[")[0]
    message = BY_FIELD_AND_CODE.get((name, code)) or BY_FIELD.get(name) or GENERAL
    return gettext(message)
