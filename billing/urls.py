from django.urls import path

from . import ops, users, views

app_name = "billing"

urlpatterns = [
    path("", users.dashboard, name="dashboard"),
    path("ops/users/", users.ops_users, name="ops_users"),
    path("ops/users/<int:pk>/", users.ops_user_detail, name="ops_user"),
    path("prices/", views.prices, name="prices"),
    path("models/", views.models_catalog, name="models"),
    path("usage/", views.usage_list, name="usage"),
    path("usage/spend/", views.spend, name="spend"),
    path("usage/export.csv", views.usage_export, name="usage_export"),
    path("usage/<str:request_id>/", views.usage_detail, name="usage_detail"),
    path("why/", views.why, name="why"),
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/recharge/", views.recharge, name="recharge"),
    path("ops/bonus-tiers/", views.ops_bonus_tiers, name="ops_bonus_tiers"),
    path("ops/bonus-tiers/<int:pk>/delete/", views.ops_bonus_tier_delete, name="ops_bonus_tier_delete"),
    path("ops/usage/", ops.ops_usage, name="ops_usage"),
    path("ops/lookup/", ops.ops_lookup, name="ops_lookup"),
    path("ops/spend/", ops.ops_spend, name="ops_spend"),
    path("ops/settings/", views.ops_settings, name="ops_settings"),
]
