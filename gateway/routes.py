"""Every route the gateway serves: importing the API modules registers them in the table."""

from gateway import ops_api, resident_api, staff_api  # noqa: F401 - registration
from gateway.routing import ROUTES

__all__ = ["ROUTES"]
