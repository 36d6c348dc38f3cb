from django.contrib import admin

from accounts.admin_audit import AuditedModelAdmin

from .models import LedgerEntry, Recharge, RechargeBonusTier, Setting, UsageRecord, Wallet


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ("user", "balance_micro", "held_micro", "total_recharged_micro", "updated_at")
    search_fields = ("user__username",)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "wallet",
        "kind",
        "amount_micro",
        "balance_after_micro",
        "request_id",
        "memo",
    )
    list_filter = ("kind",)
    search_fields = ("request_id", "wallet__user__username")


@admin.register(Recharge)
class RechargeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "amount_micro", "bonus_percent", "bonus_micro", "payment_ref")


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "request_id",
        "user",
        "model_name",
        "group_name",
        "channel_name",
        "status",
        "cost_micro",
    )
    list_filter = ("status", "group_name", "fallback_used")
    search_fields = ("request_id", "model_name", "user__username")


@admin.register(RechargeBonusTier)
class RechargeBonusTierAdmin(AuditedModelAdmin):
    list_display = ("min_amount_micro", "bonus_percent")


@admin.register(Setting)
class SettingAdmin(AuditedModelAdmin):
    list_display = ("key", "value", "updated_at")
