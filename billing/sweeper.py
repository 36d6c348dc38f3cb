"""The hold sweeper: gives back holds whose relay process died before settling them."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from groups.models import Model, ModelKind
from tokens.models import Token

from .ledger import usage_claim, wallet_move
from .models import LedgerEntry, LedgerKind, UsageRecord, UsageStatus, Wallet

logger = logging.getLogger(__name__)


ABANDONED = "abandoned"


def holds_release_stale(
    *, older_than_s: int, video_older_than_s: int | None = None, limit: int = 1000
) -> int:
    """Release holds that nothing released after `older_than_s`: the process that took them died.

    Each hold gets its own transaction that first claims the request's usage record (as a
    settlement does), so concurrent sweepers (or a late settlement) release it exactly once;
    the unique (request_id, kind) ledger constraint backs that up. The usage record says
    status error / "abandoned" at zero cost, and a settlement arriving later changes
    nothing, except one replayed from the settlement spool (billing/spool.py), which charges
    the call then. Holds of video jobs, which the worker settles when the job ends, wait
    `video_older_than_s` instead. Returns how many holds were released.
    """
    now = timezone.now()
    released = LedgerEntry.objects.filter(kind=LedgerKind.RELEASE, request_id=OuterRef("request_id"))
    candidates = list(
        LedgerEntry.objects.filter(
            kind=LedgerKind.HOLD,
            request_id__isnull=False,
            created_at__lt=now - timedelta(seconds=older_than_s),
        )
        .exclude(Exists(released))
        .order_by("id")
        .values_list("pk", "request_id", "created_at")[:limit]
    )
    video_cutoff = now - timedelta(seconds=max(video_older_than_s or 0, older_than_s))
    video_requests = set(
        UsageRecord.objects.filter(request_id__in=[c[1] for c in candidates])
        .filter(
            Q(endpoint__startswith="/v1/videos")
            | Q(model_name__in=Model.objects.filter(kind=ModelKind.VIDEO).values("name"))
        )
        .values_list("request_id", flat=True)
    )
    count = 0
    for hold_id, request_id, created_at in candidates:
        if request_id in video_requests and created_at >= video_cutoff:
            continue
        try:
            count += _hold_release_abandoned(hold_id=hold_id)
        except IntegrityError:
            continue
    return count


@transaction.atomic
def _hold_release_abandoned(*, hold_id: int) -> bool:
    hold = LedgerEntry.objects.get(pk=hold_id)
    if hold.request_id is None:  # candidates all carry one; a hold without a request has no record
        return False
    amount = -hold.amount_micro
    outcome = {
        "status": UsageStatus.ERROR,
        "error_code": ABANDONED,
        "error_message": "The call was abandoned (the gateway process stopped); its hold was released.",
        "hold_micro": amount,
        "cost_micro": 0,
        "uncollected_micro": 0,
        "settled_at": timezone.now(),
    }
    user_id = Wallet.objects.filter(pk=hold.wallet_id).values_list("user_id", flat=True).get()
    claimed = usage_claim(
        request_id=hold.request_id,
        fields=outcome,
        create_fields={**outcome, "user_id": user_id, "token_id": hold.token_id},
    )
    if not claimed:
        return False
    if hold.token_id is not None and amount:
        Token.objects.filter(pk=hold.token_id).update(held_micro=Greatest(F("held_micro") - amount, 0))
    moved = wallet_move(id=hold.wallet_id, balance_delta=amount, held_delta=-amount)
    LedgerEntry.objects.create(
        wallet_id=hold.wallet_id,
        kind=LedgerKind.RELEASE,
        amount_micro=amount,
        balance_after_micro=moved[1],
        request_id=hold.request_id,
        memo=ABANDONED,
    )
    logger.warning("released abandoned hold %s of %s micro-yuan", hold.request_id, amount)
    return True
