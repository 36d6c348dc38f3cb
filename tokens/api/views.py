"""Tokens of the signed-in user. Others' tokens do not exist here (404)."""

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from tokens.filters import TokenFilter
from tokens.models import Token, TokenFallback
from tokens.services import token_create, token_delete, token_roll_key, token_update

from .serializers import TokenCreatedSerializer, TokenKeySerializer, TokenSerializer, TokenWriteSerializer


class TokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = TokenSerializer
    filterset_class = TokenFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    error_field_map = {"quota_micro": "quota_cny"}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Token.objects.none()
        return (
            Token.objects.filter(user=self.request.user)
            .select_related("select_group")
            .prefetch_related(
                Prefetch(
                    "fallbacks", queryset=TokenFallback.objects.select_related("group").order_by("position")
                )
            )
        )

    def _refetch(self, token: Token) -> Token:
        return self.get_queryset().get(pk=token.pk)

    @extend_schema(request=TokenWriteSerializer, responses={201: TokenCreatedSerializer})
    def create(self, request):
        data = TokenWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        enabled = fields.pop("enabled", True)
        token, raw = token_create(user=request.user, name=fields.pop("name", ""), **fields)
        if not enabled:
            token = token_update(token=token, enabled=False)
        token = self._refetch(token)
        token.key = raw
        return Response(TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TokenWriteSerializer, responses={200: TokenSerializer})
    def partial_update(self, request, pk=None):
        token = self.get_object()
        data = TokenWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        token_update(token=token, **data.validated_data)
        return Response(TokenSerializer(self._refetch(token)).data)

    def perform_destroy(self, instance):
        token_delete(token=instance)

    @extend_schema(request=None, responses={200: TokenKeySerializer})
    @action(detail=True, methods=["post"])
    def roll(self, request, pk=None):
        """Replace the key; the old one stops working at once. The new key is shown only here."""
        token = self.get_object()
        raw = token_roll_key(token=token)
        token.refresh_from_db(fields=["key_prefix"])
        return Response(TokenKeySerializer({"key": raw, "key_prefix": token.key_prefix}).data)
