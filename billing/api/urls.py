from django.urls import path
from rest_framework.routers import SimpleRouter

from . import catalog, views

router = SimpleRouter()
router.register("groups", catalog.GroupViewSet, basename="group")
router.register("models", catalog.ModelCatalogViewSet, basename="model")
router.register("usage", views.UsageViewSet, basename="usage")
router.register("operator/usage", views.OperatorUsageViewSet, basename="operator-usage")
router.register("operator/users", views.OperatorUserBalanceViewSet, basename="operator-user")
router.register("operator/bonus-tiers", views.OperatorBonusTierViewSet, basename="operator-bonus-tier")

urlpatterns = [
    path("wallet/", views.WalletView.as_view(), name="wallet"),
    path("wallet/ledger/", views.LedgerView.as_view(), name="wallet-ledger"),
    path("wallet/recharges/", views.RechargeView.as_view(), name="wallet-recharges"),
    path("bonus-tiers/", views.BonusTierListView.as_view(), name="bonus-tiers"),
    path("price-quote/", views.PriceQuoteView.as_view(), name="price-quote"),
    path("operator/settings/", views.OperatorSettingsView.as_view(), name="operator-settings"),
    *router.urls,
]
