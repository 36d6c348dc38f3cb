"""Plan a call through the routing policy (`groups.policy`) and word its refusals for the client.

The rules live in the policy; this module only turns a `Refusal` into the error contract's
`RelayError`, carrying the policy's reason code to the usage record.
"""

from __future__ import annotations

from groups.policy import Plan, PlanStep, Reason, Refusal, plan
from groups.routing import RoutingSnapshot

from .auth import TokenInfo
from .errors import RelayError

__all__ = ["Plan", "PlanStep", "plan_route"]


def _not_found(refusal: Refusal) -> RelayError:
    mine = ", ".join(refusal.token_groups) or "none"
    if refusal.offered_by:
        hint = (
            f" It is offered by: {', '.join(refusal.offered_by)}. Set one of these as the token's "
            "select group or add it as a fallback group."
        )
    else:
        hint = " No group available to your account offers it."
    return RelayError(
        "model_not_found",
        f"The model '{refusal.model_name}' is not available in this token's groups ({mine}).{hint}",
        param="model",
        reason=refusal.reason,
    )


def refusal_error(refusal: Refusal) -> RelayError:
    """The client-facing error for a policy refusal, in the error contract's kinds."""
    name = refusal.model_name
    if refusal.reason in (Reason.UNKNOWN_MODEL, Reason.NOT_OFFERED):
        return _not_found(refusal)
    if refusal.reason == Reason.WRONG_ENDPOINT:
        where = "POST /v1/videos" if refusal.model_kind == "video" else "the chat or messages endpoints"
        message = f"'{name}' is a {refusal.model_kind} model; call it through {where}."
        return RelayError("invalid_request", message, param="model", reason=refusal.reason)
    if refusal.reason == Reason.ACCESS:
        message = (
            f"Your account may not use the groups of this token that offer '{name}' "
            f"({', '.join(refusal.token_groups)})."
        )
    elif refusal.reason == Reason.ALLOWLIST:
        message = f"This key may not call '{name}' (model allowlist)."
    elif refusal.reason == Reason.TIER:
        message = (
            f"'{name}' is a {refusal.model_tier} model; your user group may call: "
            f"{', '.join(refusal.allowed_tiers) or 'none'}."
        )
    else:
        message = f"'{name}' has no price for this key's billing mode ({refusal.billing_mode})."
    return RelayError("permission", message, param="model", reason=refusal.reason)


def plan_route(
    *, snapshot: RoutingSnapshot, token: TokenInfo, model_name: str, family: str, api_format: str
) -> Plan:
    """The ordered groups that may serve this call, or the refusal the client should see."""
    result = plan(snapshot, token, model_name, family=family, api_format=api_format)
    if isinstance(result, Refusal):
        raise refusal_error(result)
    return result
