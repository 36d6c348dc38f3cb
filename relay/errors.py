"""The relay's error contract (DESIGN.md): one error, rendered in the client's own format."""

from __future__ import annotations

import orjson
from django.http import HttpResponse

from .convert.gemini import gemini_error

SATURATED_MESSAGE = "Current group's upstream is saturated, please try again later"

# kind: (status, OpenAI type, OpenAI code, Anthropic type)
KINDS = {
    "invalid_api_key": (401, "invalid_request_error", "invalid_api_key", "authentication_error"),
    "model_not_found": (404, "invalid_request_error", "model_not_found", "not_found_error"),
    "not_found": (404, "invalid_request_error", "not_found", "not_found_error"),
    "permission": (403, "permission_error", "permission_error", "permission_error"),
    "insufficient_quota": (402, "insufficient_quota", "insufficient_quota", "billing_error"),
    "saturated": (429, "upstream_saturated", "upstream_saturated", "rate_limit_error"),
    "rate_limited": (429, "rate_limit_error", "rate_limit_exceeded", "rate_limit_error"),
    "upstream": (502, "upstream_error", "upstream_error", "api_error"),
    "unavailable": (503, "upstream_error", "upstream_unavailable", "overloaded_error"),
    "invalid_request": (400, "invalid_request_error", "invalid_request", "invalid_request_error"),
    "too_large": (413, "invalid_request_error", "request_too_large", "invalid_request_error"),
    "method_not_allowed": (405, "invalid_request_error", "method_not_allowed", "invalid_request_error"),
}


class RelayError(Exception):
    """A refusal or failure the client should see, with its status and a clear message."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        retry_after: int | None = None,
        status: int | None = None,
        param: str | None = None,
        reason: str = "",
    ):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.param = param
        self.reason = reason  # the routing policy's reason code (groups.policy.Reason), if any
        self.status = status or KINDS[kind][0]

    @property
    def code(self) -> str:
        return KINDS[self.kind][2]

    def body(self, api_format: str, request_id: str = "") -> dict:
        return error_body(
            api_format, self.kind, self.message, request_id=request_id, param=self.param, status=self.status
        )

    def response(self, api_format: str, request_id: str) -> HttpResponse:
        resp = json_response(self.body(api_format, request_id), status=self.status)
        if self.retry_after is not None:
            resp["Retry-After"] = str(max(int(self.retry_after), 1))
        return resp


def error_body(
    api_format: str,
    kind: str,
    message: str,
    *,
    request_id: str = "",
    param: str | None = None,
    status: int | None = None,
) -> dict:
    kind_status, openai_type, openai_code, anthropic_type = KINDS[kind]
    if api_format == "gemini":
        return gemini_error(status or kind_status, message)
    if api_format == "anthropic":
        body = {"type": "error", "error": {"type": anthropic_type, "message": message}}
        if request_id:
            body["request_id"] = request_id
        return body
    return {"error": {"message": message, "type": openai_type, "param": param, "code": openai_code}}


def json_response(data, *, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")
