"""The web apps the gateway serves: the resident app (``/app/<municipality>/``) and the staff
dashboard. Server-rendered pages that call the gateway's route functions (``pages.py``); see
docs/web.md."""
