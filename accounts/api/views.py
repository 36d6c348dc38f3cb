"""Your account and management keys; users and the audit log for operators."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import OPERATOR_PERMISSIONS
from accounts.filters import AuditLogFilter, UserFilter
from accounts.models import AuditLog, ManagementKey, User
from accounts.services import management_key_create, management_key_revoke, user_operator_update
from core.api import ServiceSaveMixin
from core.http import client_ip

from .serializers import (
    AuditLogSerializer,
    ManagementKeyCreatedSerializer,
    ManagementKeySerializer,
    MeSerializer,
    OperatorUserSerializer,
)


class MeView(APIView):
    """Who this request is authenticated as, and how."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(MeSerializer(request.user, context={"auth": request.auth}).data)


class ManagementKeyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Your mk- management keys. POST shows the new key once; DELETE revokes a key."""

    serializer_class = ManagementKeySerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ManagementKey.objects.none()
        return ManagementKey.objects.filter(user=self.request.user)

    @extend_schema(request=ManagementKeySerializer, responses={201: ManagementKeyCreatedSerializer})
    def create(self, request):
        body = ManagementKeySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        key, raw = management_key_create(user=request.user, name=data.pop("name", ""), **data)
        key.key = raw
        return Response(ManagementKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        management_key_revoke(key=instance, actor=self.request.user)


class OperatorUserViewSet(
    ServiceSaveMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Users: user group, pin, rate limit, active flag, balance. Staff flags are not settable."""

    # Adjusting the balance is billing's: billing.api.views.OperatorUserBalanceViewSet.

    permission_classes = OPERATOR_PERMISSIONS
    serializer_class = OperatorUserSerializer
    filterset_class = UserFilter
    queryset = User.objects.select_related("user_group", "wallet").order_by("id")
    http_method_names = ["get", "post", "patch", "head", "options"]

    def service_save(self, instance, data):
        return user_operator_update(
            actor=self.request.user, user=instance, ip=client_ip(self.request), **data
        )


class OperatorAuditLogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Who changed what, with before and after. Append-only."""

    permission_classes = OPERATOR_PERMISSIONS
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilter
    queryset = AuditLog.objects.all()
