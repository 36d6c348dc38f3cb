"""Vulture whitelist: names only a framework, a settings string or a test uses (see [tool.vulture])."""
# ruff: noqa

# Named by dotted path in settings.py (apps, middleware, backends, caches, DRF and axes hooks).
ManagementKeyScheme  # accounts/api/authentication.py
AccountsConfig  # accounts/apps.py
LoginThrottleBackend  # accounts/auth_backends.py
axes_username  # accounts/signals.py
Pagination  # apiyi_admin/api_common.py
default_limit  # apiyi_admin/api_common.py
max_limit  # apiyi_admin/api_common.py
api_exception_handler  # apiyi_admin/api_common.py
add_error_responses  # apiyi_admin/api_common.py
SharedFileCache  # apiyi_admin/cache.py
PermissionsPolicyMiddleware  # apiyi_admin/security_headers.py
BillingConfig  # billing/apps.py
GroupsConfig  # groups/apps.py
RelayConfig  # relay/apps.py
TokensConfig  # tokens/apps.py
public_base_url_set  # tokens/checks.py (system check, registered)
app_configs  # tokens/checks.py (system check signature)

# Overrides and attributes that Django, DRF, drf-spectacular, urllib3, requests or aiohttp call or read.
target_class  # accounts/api/authentication.py
auto_schema  # accounts/api/authentication.py
_.auto_id  # accounts/console.py
default_error_messages  # apiyi_admin/api_common.py
generator  # apiyi_admin/api_common.py
public  # apiyi_admin/api_common.py
_.resolver_match  # apiyi_admin/lean_asgi.py
_.balance_after_micro  # billing/api/views.py
_.pool_classes_by_scheme  # groups/urlsafety.py
_.trust_env  # groups/urlsafety.py
_.content_length  # relay/simulator/app.py
_.disabled  # tokens/admin.py

# Model choices and declarative fields (models, serializers, filters, forms, admin forms).
email  # accounts/api/serializers.py
balance_cny  # accounts/api/serializers.py
held_cny  # accounts/api/serializers.py
total_recharged_cny  # accounts/api/serializers.py
object_type  # accounts/filters.py
date_from  # accounts/filters.py
date_to  # accounts/filters.py
object_id  # accounts/models.py
hold_cny  # billing/api/serializers.py
cost_cny  # billing/api/serializers.py
uncollected_cny  # billing/api/serializers.py
price_breakdown  # billing/api/serializers.py
amount_cny  # billing/api/serializers.py
balance_after_cny  # billing/api/serializers.py
min_amount_cny  # billing/api/serializers.py
usd_equivalent  # billing/api/serializers.py
bonus_tiers  # billing/api/serializers.py
bonus_cny  # billing/api/serializers.py
_.patch  # billing/api/views.py
min_amount  # billing/forms.py
updated_at  # billing/models.py
balance_after_micro  # billing/models.py
created_by  # billing/models.py
bonus_micro  # billing/models.py
SUCCESS  # billing/models.py
PARTIAL  # billing/models.py
usage_estimated  # billing/models.py
METERED  # billing/pricing.py
cache_read_usd_per_mtok  # billing/pricing.py
cache_write_usd_per_mtok  # billing/pricing.py
routing_verdict  # groups/api/filters.py
available  # groups/api/serializers.py
official  # groups/api/serializers.py
validators  # groups/api/serializers.py
has_api_key  # groups/api/serializers.py
cooldown_remaining_s  # groups/api/serializers.py
verdict_at  # groups/api/serializers.py
last_probe  # groups/api/serializers.py
PREMIUM  # groups/models.py
ENTERPRISE  # groups/models.py
IMAGE  # groups/models.py
OPENAI  # groups/models.py
BLOCKING  # groups/saturation.py
_._new_conn  # groups/urlsafety.py
IN_PROGRESS  # relay/models.py
polled_at  # relay/models.py
_.pending_tasks  # relay/simulator/testing.py
fallback_group_names  # tokens/admin.py
model_allowlist_text  # tokens/admin.py
ip_allowlist_text  # tokens/admin.py
_._post_clean  # tokens/admin.py
quota_cny  # tokens/api/serializers.py
spent_cny  # tokens/api/serializers.py
spent_micro  # tokens/models.py

# Test hooks: reset process-wide state between tests.
clear_memos  # apiyi_admin/cache.py
reset_cache  # groups/crypto.py

# Refund: a ledger kind in DESIGN.md, exercised by tests/foundation; no caller until the ledger module.
wallet_refund  # billing/services.py


# Named by dotted path in settings.py, or class attributes Django's auth views read.
console_locale  # accounts/context_processors.py
TimeZoneMiddleware  # accounts/middleware.py
email_template_name  # accounts/views.py
subject_template_name  # accounts/views.py
success_url  # accounts/views.py
deleted_at  # relay/models.py (filtered on by selectors)

# Read only by templates.
_.value_micro  # billing/charts.py (templates/billing/spend.html)
_.show_label  # billing/charts.py
_.cx  # billing/charts.py
cooldown_remaining  # groups/saturation.py (tests/worker read the cool-down directly)
_.help_text  # groups/forms.py (set per request so it is translated; read by templates/includes/field.html)
batch_stats  # billing/ledger.py (counters for bench/: calls per batch, round trips per call)
