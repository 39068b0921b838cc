"""Every route the gateway serves: importing the API modules registers them in the table."""

from gateway import ops_api, resident_api, staff_api  # noqa: F401 - registration

# isort: split
from gateway import feedback_api, map_api, paper_api  # noqa: F401 - after the poll routes, in the table too
from gateway.routing import ROUTES

__all__ = ["ROUTES"]
