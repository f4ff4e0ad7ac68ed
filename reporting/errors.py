"""The reporting error tree: every refusal of a report or overview request, with its HTTP status.

Reporting errors travel over HTTP (and the command line) only, so the tree stands beside signaling's
rather than under it; the body has the same shape (``{"code", "message"}``). Token and session
refusals reuse signaling's errors (401, 403, 404 ``unknown_session``) as every other route does.

Tree::

    ReportingError                  reporting_error          400
    ├── UnknownFormat               unknown_format           400  not json, csv or html
    └── InvalidQuery                invalid_query            400  a query parameter of the wrong shape
"""

from __future__ import annotations


class ReportingError(Exception):
    """Base of every reporting refusal."""

    code = "reporting_error"
    http_status = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code.replace("_", " "))
        self.message = message or self.code.replace("_", " ")


class UnknownFormat(ReportingError):
    """The report was asked for in a format podium does not write."""

    code = "unknown_format"


class InvalidQuery(ReportingError):
    """A query parameter that is not one of the values the route takes."""

    code = "invalid_query"
