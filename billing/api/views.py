"""Usage, wallet, ledger, recharge and price quotes for the signed-in user; billing for operators."""

from uuid import uuid4

from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import OPERATOR_PERMISSIONS
from accounts.models import User
from billing.filters import LedgerEntryFilter, UsageRecordFilter
from billing.models import LedgerEntry, Recharge, RechargeBonusTier, UsageRecord
from billing.selectors import (
    USD_CNY_RATE_KEY,
    balance_summary,
    best_bonus_percent,
    ledger_for_user,
    usage_failure_advice,
    usage_for_user,
    usd_cny_rate,
)
from billing.services import bonus_tier_delete, bonus_tier_save, setting_set, wallet_adjust, wallet_recharge
from core.api import ServiceSaveMixin
from core.pricing import Usage
from groups.quotes import quote_usage
from groups.selectors import fallback_token_groups, offering_token_groups, serving_token_groups
from tokens.models import BillingMode, Token

from .serializers import (
    AdjustBalanceSerializer,
    BonusTierSerializer,
    LedgerEntrySerializer,
    OperatorUsageRecordSerializer,
    PriceQuoteRequestSerializer,
    PriceQuoteSerializer,
    RechargeRequestSerializer,
    RechargeSerializer,
    SettingsSerializer,
    UsageRecordSerializer,
    UsageWhySerializer,
    WalletSerializer,
)


class UsageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your calls: route taken (trace), usage, price breakdown and cost. Filter by token, model,
    group, status, date range or request id."""

    serializer_class = UsageRecordSerializer
    filterset_class = UsageRecordFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return UsageRecord.objects.none()
        return usage_for_user(user=self.request.user)

    @extend_schema(responses=UsageWhySerializer)
    @action(detail=True, methods=["get"])
    def why(self, request, pk=None):
        """ "Why did my call fail?": the console's explanation for this record."""
        record = self.get_object()
        data = {
            "request_id": record.request_id,
            "status": record.status,
            "http_status": record.http_status,
            "advice": usage_failure_advice(record=record),
        }
        return Response(UsageWhySerializer(data).data)


class WalletView(APIView):
    """Balance, amount held by calls in flight, total recharged, and the recharge bonus tiers."""

    @extend_schema(responses=WalletSerializer)
    def get(self, request):
        summary = balance_summary(user=request.user)
        summary["bonus_tiers"] = RechargeBonusTier.objects.all()
        return Response(WalletSerializer(summary).data)


class LedgerView(generics.ListAPIView):
    """Your wallet's append-only ledger, newest first."""

    serializer_class = LedgerEntrySerializer
    filterset_class = LedgerEntryFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return LedgerEntry.objects.none()
        return ledger_for_user(user=self.request.user)


class RechargeView(generics.ListAPIView):
    """Your recharges; POST recharges (simulated payment) and credits the bonus of its tier."""

    serializer_class = RechargeSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Recharge.objects.none()
        return Recharge.objects.filter(user=self.request.user)

    @extend_schema(request=RechargeRequestSerializer, responses={201: RechargeSerializer})
    def post(self, request):
        body = RechargeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        recharge = wallet_recharge(
            user=request.user,
            amount_micro=body.validated_data["amount_cny"],
            payment_ref=f"api-{uuid4().hex}",
            actor=request.user,
        )
        recharge.balance_after_micro = balance_summary(user=request.user)["balance_micro"]
        return Response(RechargeSerializer(recharge).data, status=status.HTTP_201_CREATED)


class BonusTierListView(generics.ListAPIView):
    """Recharge bonus tiers on offer."""

    serializer_class = BonusTierSerializer
    queryset = RechargeBonusTier.objects.all()
    pagination_class = None


class PriceQuoteView(APIView):
    """What a call would cost, explained exactly as the console explains prices.

    With a token, the first of its groups (select, then fallbacks) that offers the model and
    its billing mode apply; with a group, that group and `usage_first` unless told otherwise.
    """

    read_only_safe = True

    @extend_schema(request=PriceQuoteRequestSerializer, responses=PriceQuoteSerializer)
    def post(self, request):
        body = PriceQuoteRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        user = request.user
        model = data["model"]
        usable = fallback_token_groups(user_group=user.user_group, user=user)
        if "token" in data:
            token = Token.objects.filter(user=user, pk=data["token"]).select_related("select_group").first()
            if token is None:
                return _invalid("token", "Unknown token.")
            candidates = [token.select_group, *[f.group for f in token.fallbacks.select_related("group")]]
            mode = data.get("billing_mode", token.billing_mode)
        else:
            if not usable.filter(pk=data["group"].pk).exists():
                return _invalid("group", f"Your user group may not use the {data['group'].name} group.")
            candidates = [data["group"]]
            mode = data.get("billing_mode", BillingMode.USAGE_FIRST)
        offering = {g.pk for g in serving_token_groups(model_name=model.name)}
        group = next((g for g in candidates if g.pk in offering), None)
        if group is None:
            offering = offering_token_groups(model_name=model.name, user_group=user.user_group, user=user)
            names = ", ".join(g.name for g in offering) or "none"
            tried = ", ".join(g.name for g in candidates)
            return _invalid(
                "model", f"{model.name} is not offered by {tried}; groups you may use that do: {names}."
            )
        usage = Usage(
            input_tokens=data["input_tokens"],
            output_tokens=data["output_tokens"],
            cache_read_tokens=data["cache_read_tokens"],
            cache_write_tokens=data["cache_write_tokens"],
            seconds=data["seconds"],
            images=data["images"],
            calls=data["calls"],
        )
        quote = quote_usage(
            model=model,
            group=group,
            user_group_id=user.user_group_id,
            billing_mode=mode,
            usage=usage,
            bonus_percent=best_bonus_percent(),
        )
        return Response(PriceQuoteSerializer({**quote, "billing_mode": mode}).data)


def _invalid(field: str, message: str) -> Response:
    return Response(
        {"detail": message, "code": "invalid", "errors": {field: [message]}},
        status=status.HTTP_400_BAD_REQUEST,
    )


# ---- operator resources -----------------------------------------------------------------------


class OperatorUsageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Every user's calls (operators)."""

    permission_classes = OPERATOR_PERMISSIONS
    serializer_class = OperatorUsageRecordSerializer
    filterset_class = UsageRecordFilter
    queryset = UsageRecord.objects.select_related("user")


class OperatorUserBalanceViewSet(viewsets.GenericViewSet):
    """A user's wallet, for operators (the rest of the user is accounts' OperatorUserViewSet)."""

    permission_classes = OPERATOR_PERMISSIONS
    queryset = User.objects.order_by("id")

    @extend_schema(request=AdjustBalanceSerializer, responses={201: LedgerEntrySerializer})
    @action(detail=True, methods=["post"], url_path="adjust-balance")
    def adjust_balance(self, request, pk=None):
        """Credit (+) or debit (−) the user's wallet with a reason; never below zero. Audited."""
        user = self.get_object()
        body = AdjustBalanceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        entry = wallet_adjust(
            user=user,
            amount_micro=body.validated_data["amount_cny"],
            reason=body.validated_data["reason"],
            actor=request.user,
        )
        return Response(LedgerEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class OperatorBonusTierViewSet(ServiceSaveMixin, viewsets.ModelViewSet):
    """Recharge bonus tiers (operators)."""

    permission_classes = OPERATOR_PERMISSIONS
    serializer_class = BonusTierSerializer
    queryset = RechargeBonusTier.objects.all()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    error_field_map = {"min_amount_micro": "min_amount_cny"}

    def service_save(self, instance, data):
        return bonus_tier_save(
            actor=self.request.user,
            tier=instance,
            min_amount_micro=data.get("min_amount_micro"),
            bonus_percent=data.get("bonus_percent"),
        )

    def perform_destroy(self, instance):
        bonus_tier_delete(actor=self.request.user, tier=instance)


class OperatorSettingsView(APIView):
    """Operator settings: the USD→CNY rate every price uses."""

    permission_classes = OPERATOR_PERMISSIONS

    @extend_schema(responses=SettingsSerializer)
    def get(self, request):
        return Response(SettingsSerializer({"usd_cny_rate": usd_cny_rate()}).data)

    @extend_schema(request=SettingsSerializer, responses=SettingsSerializer)
    def patch(self, request):
        body = SettingsSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        if "usd_cny_rate" in body.validated_data:
            setting_set(
                actor=request.user, key=USD_CNY_RATE_KEY, value=str(body.validated_data["usd_cny_rate"])
            )
        return Response(SettingsSerializer({"usd_cny_rate": usd_cny_rate()}).data)
