"""The exception hierarchy of forumlive's domain code, and the one place it maps to HTTP.

    ForumliveError
     ├── InvalidInput        (422)  a field has a bad value; names the field(s) and the reason
     ├── NotSignedIn         (401)
     ├── Forbidden           (403)  signed in, but the role does not allow it
     ├── NotFound            (404)  an unknown id
     ├── Conflict            (409)  duplicate email, already accepted invitation, ...
     ├── Gone                (410)  an expired invitation
     ├── PayloadTooLarge     (413)
     └── TooManyRequests     (429)  a rate limit; says when to retry

Domain code raises these and knows no status codes; ``server.app`` turns them into JSON errors
(``{"error": {"code", "message", "fields": [{"field", "reason"}]}}``) or error pages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str


class ForumliveError(Exception):
    """Base of every error forumlive reports to a user."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []

    def to_json(self) -> dict[str, object]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "fields": [{"field": f.field, "reason": f.reason} for f in self.fields],
            }
        }


class InvalidInput(ForumliveError):
    status = 422
    code = "invalid_input"

    @classmethod
    def field(cls, field: str, reason: str) -> InvalidInput:
        return cls(f"{field}: {reason}", [FieldError(field, reason)])


class NotSignedIn(ForumliveError):
    status = 401
    code = "not_signed_in"


class Forbidden(ForumliveError):
    status = 403
    code = "forbidden"


class NotFound(ForumliveError):
    status = 404
    code = "not_found"


class Conflict(ForumliveError):
    status = 409
    code = "conflict"


class Gone(ForumliveError):
    status = 410
    code = "gone"


class PayloadTooLarge(ForumliveError):
    status = 413
    code = "payload_too_large"


class TooManyRequests(ForumliveError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
