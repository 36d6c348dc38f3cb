"""Reads about who may use which token group, at which multiplier."""

from decimal import Decimal

from django.db.models import QuerySet

from .models import GroupAccess, TokenGroup, UserGroup


def access_for(*, user_group_id: int | None, token_group: TokenGroup) -> GroupAccess | None:
    if user_group_id is None:
        return None
    return GroupAccess.objects.filter(user_group_id=user_group_id, token_group=token_group).first()


def selectable_token_groups(*, user_group: UserGroup | None) -> QuerySet[TokenGroup]:
    """Groups a user of this user group may pick as a token's select group."""
    if user_group is None:
        return TokenGroup.objects.none()
    return TokenGroup.objects.filter(
        enabled=True,
        fallback_only=False,
        accesses__user_group=user_group,
        accesses__fallback_only=False,
    )


def fallback_token_groups(*, user_group: UserGroup | None) -> QuerySet[TokenGroup]:
    """Groups a user of this user group may attach as fallback groups."""
    if user_group is None:
        return TokenGroup.objects.none()
    return TokenGroup.objects.filter(enabled=True, accesses__user_group=user_group)


def effective_multiplier(*, token_group: TokenGroup, user_group_id: int | None) -> Decimal:
    """The token group's multiplier, or this user group's override of it."""
    access = access_for(user_group_id=user_group_id, token_group=token_group)
    if access is not None and access.multiplier_override is not None:
        return access.multiplier_override
    return token_group.multiplier
