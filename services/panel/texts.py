"""Resident- and staff-facing e-mail texts of the panel service (Dutch; English where the
resident chose it)."""

from __future__ import annotations

SIGNUP_CODE = {
    "nl": (
        "Uw code voor het inwonerpanel van {municipality}",
        "Hallo,\n\nU wilt meedoen met het inwonerpanel van {municipality}. Vul deze code in de "
        "app in om uw e-mailadres te bevestigen:\n\n    {code}\n\nDe code is 30 minuten geldig. "
        "Heeft u dit niet zelf aangevraagd? Dan kunt u deze e-mail negeren; er gebeurt niets.\n\n"
        "Met vriendelijke groet,\n{app_name}\n",
    ),
    "en": (
        "Your code for the {municipality} residents' panel",
        "Hello,\n\nYou asked to join the {municipality} residents' panel. Enter this code in the "
        "app to confirm your e-mail address:\n\n    {code}\n\nThe code is valid for 30 minutes. "
        "If you did not ask for it, ignore this e-mail; nothing will happen.\n\n"
        "Kind regards,\n{app_name}\n",
    ),
}

STAFF_INVITE = (
    "Uitnodiging: beheer van {app_name}",
    "Hallo{name},\n\nU bent uitgenodigd als {role} voor {app_name} ({municipality}). "
    "Kies via deze link binnen 7 dagen een wachtwoord:\n\n    {link}\n\n"
    "Verwachtte u deze uitnodiging niet? Neem dan contact op met de beheerder van uw gemeente.\n",
)

CONTACT_CODE = {
    "nl": (
        "Doe mee namens {organisation} in het panel",
        "Hallo,\n\nEen collega nodigt u uit om namens {organisation} mee te doen met het panel "
        "van {municipality}. Kies in de app van {app_name} voor 'Meedoen met een code' en vul "
        "deze code in:\n\n    {code}\n\nDe code is 14 dagen geldig en werkt één keer. "
        "{organisation} geeft per peiling één antwoord, ook als meer mensen namens de "
        "organisatie meedoen.\n\nVerwachtte u deze uitnodiging niet? Dan kunt u deze e-mail "
        "negeren.\n\nMet vriendelijke groet,\n{app_name}\n",
    ),
    "en": (
        "Join the panel for {organisation}",
        "Hello,\n\nA colleague invites you to take part in the {municipality} panel for "
        "{organisation}. In the {app_name} app choose 'Join with a code' and enter this code:"
        "\n\n    {code}\n\nThe code is valid for 14 days and works once. {organisation} gives "
        "one answer per poll, however many people take part for it.\n\nIf you did not expect "
        "this invitation, ignore this e-mail.\n\nKind regards,\n{app_name}\n",
    ),
}
