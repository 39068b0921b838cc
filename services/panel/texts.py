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
