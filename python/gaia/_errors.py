"""The exceptions the client raises: every failed call is a ``GaiaError``."""
from __future__ import annotations

from typing import Optional


class GaiaError(Exception):
    """Anything the client could not do (the base of every error it raises)."""


class ConfigError(GaiaError):
    """The client is not set up to reach a server: no token, a malformed server URL."""


class ConnectionFailed(GaiaError):
    """The server could not be reached, or the connection broke mid-answer."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the GAIA server at {url}: {reason}")
        self.url = url
        self.reason = reason


class ApiError(GaiaError):
    """The server refused a request: ``status`` is the HTTP status, ``message`` the server's
    own words (its JSON ``{"error": ...}``)."""

    def __init__(self, status: int, message: str, method: str = "", path: str = "") -> None:
        where = f" ({method} {path})" if method else ""
        super().__init__(f"{status}: {message}{where}")
        self.status = status
        self.message = message
        self.method = method
        self.path = path


class BadRequest(ApiError):
    """400: malformed JSON, an unknown field, an invalid value or name."""


class Unauthorized(ApiError):
    """401: no token, or one the server does not know (revoked, mistyped)."""


class Forbidden(ApiError):
    """403: the token's scope does not allow the call (a ``read`` token cannot submit)."""


class NotFound(ApiError):
    """404: no such job, study, worker, file or route."""


class Conflict(ApiError):
    """409: the call conflicts with the state (a job that has ended, a study submitted twice)."""


class JobFailed(GaiaError):
    """A job that was waited on with ``check=True`` did not succeed."""

    def __init__(self, job_id: int, state: str, error: Optional[str]) -> None:
        detail = f": {error}" if error else ""
        super().__init__(f"job {job_id} ended {state}{detail}")
        self.job_id = job_id
        self.state = state
        self.error = error


_BY_STATUS = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict}


def api_error(status: int, message: str, method: str = "", path: str = "") -> ApiError:
    """The exception for an error answer, of the class its status names."""
    cls = _BY_STATUS.get(status, ApiError)
    return cls(status, message, method, path)
