"""Domain errors that cross service boundaries.

Registered with nameko so an RPC caller gets the same class back (not a bare RemoteError);
the gateway maps each class to an HTTP status and a problem+json ``type`` in one table.
"""

from __future__ import annotations

from typing import Any

from nameko.exceptions import deserialize_to_instance


class BuurtpeilError(Exception):
    code = "error"

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message, errors or [])
        self.message = message
        self.errors = errors or []

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "errors": self.errors}


@deserialize_to_instance
class InvalidInput(BuurtpeilError):
    """Input that fails validation; ``errors`` lists ``{field, code, message}``."""

    code = "invalid_input"


@deserialize_to_instance
class NotFound(BuurtpeilError):
    """No such object — or one of another municipality, which must look the same."""

    code = "not_found"


@deserialize_to_instance
class Conflict(BuurtpeilError):
    """The object is in a state that does not allow the operation (e.g. editing a published
    poll), or was changed meanwhile (version mismatch)."""

    code = "conflict"


@deserialize_to_instance
class Unauthorized(BuurtpeilError):
    """Credentials or a session that are not (or no longer) valid."""

    code = "unauthorized"


@deserialize_to_instance
class NotPermitted(BuurtpeilError):
    """The caller is known but may not do this to this object (a contact removing a
    colleague's device)."""

    code = "forbidden"


@deserialize_to_instance
class Unavailable(BuurtpeilError):
    """A service this one needs did not answer (not running, or not in time): try again."""

    code = "unavailable"


@deserialize_to_instance
class BeingComputed(Unavailable):
    """What was asked for is being computed (results of a poll): ask again in a few seconds."""

    code = "being_computed"


EXPECTED = (InvalidInput, NotFound, Conflict, Unauthorized, NotPermitted, Unavailable)


def invalid(field: str, code: str, message: str) -> InvalidInput:
    return InvalidInput(message, [{"field": field, "code": code, "message": message}])
