"""Routing configuration for operators: user groups, access, token groups, models, channels.

The users' catalog with final prices is billing's (billing/api/catalog.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from accounts.api.permissions import OPERATOR_PERMISSIONS
from core.api import ServiceSaveMixin
from groups.filters import ChannelFilter, ModelFilter, TokenGroupFilter, UserGroupFilter
from groups.models import Channel, ChannelHealth, GroupAccess, Model, TokenGroup, UserGroup
from groups.probes import channel_probe
from groups.saturation import channel_state, channel_states
from groups.services import (
    channel_save,
    channel_set_enabled,
    group_access_remove,
    group_access_set,
    model_save,
    token_group_save,
    user_group_save,
)

from .filters import ChannelHealthFilter
from .serializers import (
    ChannelEnableSerializer,
    ChannelHealthSerializer,
    ChannelSerializer,
    ChannelStateSerializer,
    GroupAccessSerializer,
    OperatorModelSerializer,
    ProbeOutcomeSerializer,
    TokenGroupSerializer,
    UserGroupSerializer,
)

# ---- operator resources -----------------------------------------------------------------------


class OperatorViewSet(viewsets.GenericViewSet):
    permission_classes = OPERATOR_PERMISSIONS
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]


class _ListCreateUpdate(
    ServiceSaveMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
):
    """Writes go through `service_save` (ServiceSaveMixin comes first in the MRO)."""


class OperatorUserGroupViewSet(_ListCreateUpdate, OperatorViewSet):
    """User groups: permission scope (model tiers) and which token groups they may use."""

    serializer_class = UserGroupSerializer
    filterset_class = UserGroupFilter
    queryset = UserGroup.objects.prefetch_related(
        Prefetch("accesses", queryset=GroupAccess.objects.select_related("token_group"))
    )

    def service_save(self, instance, data):
        return user_group_save(actor=self.request.user, user_group=instance, **data)


class OperatorGroupAccessViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OperatorViewSet
):
    """Which user group may use which token group (fallback only, multiplier override)."""

    serializer_class = GroupAccessSerializer
    queryset = GroupAccess.objects.select_related("user_group", "token_group").order_by(
        "user_group", "token_group"
    )
    filterset_fields = {"user_group__name": ["exact"], "token_group__name": ["exact"]}

    @extend_schema(responses={200: GroupAccessSerializer, 201: GroupAccessSerializer})
    def create(self, request):
        """Set access (creates it, or changes the existing one for this pair)."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        existed = GroupAccess.objects.filter(
            user_group=data["user_group"], token_group=data["token_group"]
        ).exists()
        access = group_access_set(
            actor=request.user,
            user_group=data["user_group"],
            token_group=data["token_group"],
            fallback_only=data.get("fallback_only", False),
            multiplier_override=data.get("multiplier_override"),
        )
        code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        return Response(self.get_serializer(access).data, status=code)

    def perform_destroy(self, instance):
        group_access_remove(
            actor=self.request.user, user_group=instance.user_group, token_group=instance.token_group
        )


class OperatorTokenGroupViewSet(_ListCreateUpdate, OperatorViewSet):
    """Token groups: multiplier, API formats, fallback-only, enabled."""

    serializer_class = TokenGroupSerializer
    filterset_class = TokenGroupFilter
    queryset = TokenGroup.objects.prefetch_related("channels")

    def service_save(self, instance, data):
        return token_group_save(actor=self.request.user, token_group=instance, **data)


class OperatorModelViewSet(_ListCreateUpdate, OperatorViewSet):
    """Model catalog with official USD list prices."""

    serializer_class = OperatorModelSerializer
    filterset_class = ModelFilter
    queryset = Model.objects.all()

    def service_save(self, instance, data):
        return model_save(actor=self.request.user, model=instance, **data)


class OperatorChannelViewSet(_ListCreateUpdate, OperatorViewSet):
    """Upstream channels. The upstream key is write-only and never returned."""

    serializer_class = ChannelSerializer
    filterset_class = ChannelFilter
    queryset = Channel.objects.prefetch_related("token_groups").distinct()

    def service_save(self, instance, data):
        served = data.pop("served_models", None)
        models = None if served is None else {row["model"]: row.get("upstream_name", "") for row in served}
        return channel_save(
            actor=self.request.user,
            channel=instance,
            api_key=data.pop("api_key", None),
            token_groups=data.pop("token_groups", None),
            models=models,
            **data,
        )

    def _set_enabled(self, request, enabled: bool):
        channel = self.get_object()
        body = ChannelEnableSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        channel_set_enabled(
            actor=request.user, channel=channel, enabled=enabled, reason=body.validated_data["reason"]
        )
        return Response(self.get_serializer(channel).data)

    @extend_schema(request=ChannelEnableSerializer, responses=ChannelSerializer)
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        """Enable the channel; also clears an automatic disable."""
        return self._set_enabled(request, True)

    @extend_schema(request=ChannelEnableSerializer, responses=ChannelSerializer)
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        return self._set_enabled(request, False)

    @extend_schema(request=None, responses=ProbeOutcomeSerializer)
    @action(detail=True, methods=["post"])
    def probe(self, request, pk=None):
        """Probe the channel now (as the worker does) and apply the verdict."""
        outcome = channel_probe(channel_id=self.get_object().pk)
        if outcome is None:
            raise NotFound()
        return Response(ProbeOutcomeSerializer(outcome).data)


def _state(channel: Channel, state: dict, now: float) -> dict:
    at = (state.get("verdict") or {}).get("at")
    return {
        **channel_state(channel, state, now),
        "channel_id": channel.pk,
        "channel": channel.name,
        "kind": channel.kind,
        "enabled": channel.enabled,
        "auto_disabled": channel.auto_disabled,
        "auto_disabled_reason": channel.auto_disabled_reason,
        "max_concurrency": channel.max_concurrency,
        "verdict_at": datetime.fromtimestamp(at, tz=UTC) if at else None,
        "last_probe": ChannelHealth.objects.filter(channel=channel).select_related("channel").first(),
    }


class OperatorChannelHealthViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OperatorViewSet):
    """Live saturation state of each channel (in-flight, cool-down, probe verdict) and its last probe."""

    serializer_class = ChannelStateSerializer
    filterset_class = ChannelFilter
    queryset = Channel.objects.all().distinct()

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        states = channel_states([c.pk for c in page])
        now = time.time()
        data = [_state(c, states[c.pk], now) for c in page]
        return self.get_paginated_response(self.get_serializer(data, many=True).data)

    def retrieve(self, request, pk=None):
        channel = self.get_object()
        return Response(
            self.get_serializer(_state(channel, channel_states([channel.pk])[channel.pk], time.time())).data
        )


class OperatorChannelProbeViewSet(mixins.ListModelMixin, OperatorViewSet):
    """Probe history per channel (time series), newest first."""

    serializer_class = ChannelHealthSerializer
    filterset_class = ChannelHealthFilter
    queryset = ChannelHealth.objects.select_related("channel")
