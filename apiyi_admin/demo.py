"""Demo data from the groups guide, named so that docs and tests can rely on them."""

from __future__ import annotations

import os
from decimal import Decimal as D

from django.conf import settings
from django.db import transaction

from accounts.models import User
from billing.models import RechargeBonusTier, Setting
from billing.services import wallet_get_or_create, wallet_recharge
from core.keys import hash_key
from groups.models import (
    Channel,
    ChannelModel,
    GroupAccess,
    Model,
    TokenGroup,
    UserGroup,
    UserGroupUpgradeRule,
)
from tokens.models import Token
from tokens.services import token_create

USER_GROUPS = {
    "default": ("Everyone starts here.", ["standard"]),
    "vip": ("Cumulative recharge ≥ ¥100.", ["standard", "premium"]),
    "svip": ("Cumulative recharge ≥ ¥2,000.", ["standard", "premium"]),
    "enterprise": (
        "Contracted accounts; unlocks enterprise fallback groups.",
        ["standard", "premium", "enterprise"],
    ),
}
UPGRADE_RULES = {"vip": 100, "svip": 2000}
# apiyi's published numbers: a fixed 1 USD = 7 RMB, bonus tiers at 100 / 700 / 1,500 / 3,000 USD.
USD_CNY_RATE = 7
BONUS_TIERS_USD = {100: D("10"), 700: D("12"), 1500: D("15"), 3000: D("20")}
BONUS_TIERS = {usd * USD_CNY_RATE: percent for usd, percent in BONUS_TIERS_USD.items()}

TOKEN_GROUPS = {
    # name: (multiplier, formats, fallback_only, description)
    "Default": (
        D("1.0"),
        ["openai", "anthropic"],
        False,
        "Text, multimodal, NanoBanana, Veo 3.1 and most models.",
    ),
    "ClaudeCode": (
        D("0.95"),
        ["openai", "anthropic"],
        False,
        "Claude + domestic coding models in /v1/messages format for Claude Code; 5% off.",
    ),
    "Sora2Official": (D("1.0"), ["openai"], False, "Sora 2 official video, billed per second."),
    "Wan": (D("1.0"), ["openai"], False, "Alibaba Wan video series."),
    "Seedance2": (D("1.0"), ["openai"], False, "Seedance 2 video."),
    "Claude_Enterprise": (
        D("1.0"),
        ["openai", "anthropic"],
        True,
        "Enterprise fallback capacity for Claude.",
    ),
}
PUBLIC_GROUPS = ["Default", "ClaudeCode", "Sora2Official", "Wan", "Seedance2"]

MODELS = {
    # name: kind, tier, prices
    "claude-sonnet-4-5": (
        "text",
        "standard",
        dict(
            input_usd_per_mtok=D("3"),
            output_usd_per_mtok=D("15"),
            cache_read_usd_per_mtok=D("0.3"),
            cache_write_usd_per_mtok=D("3.75"),
        ),
    ),
    "claude-opus-4-6": (
        "text",
        "premium",
        dict(
            input_usd_per_mtok=D("5"),
            output_usd_per_mtok=D("25"),
            cache_read_usd_per_mtok=D("0.5"),
            cache_write_usd_per_mtok=D("6.25"),
        ),
    ),
    "qwen3.5-max": ("text", "standard", dict(input_usd_per_mtok=D("1.2"), output_usd_per_mtok=D("6"))),
    "glm-5.1": (
        "text",
        "standard",
        dict(input_usd_per_mtok=D("1"), output_usd_per_mtok=D("3.2"), cache_read_usd_per_mtok=D("0.2")),
    ),
    "deepseek-v4": (
        "text",
        "standard",
        dict(input_usd_per_mtok=D("0.28"), output_usd_per_mtok=D("1.1"), cache_read_usd_per_mtok=D("0.028")),
    ),
    "gpt-5.1": (
        "text",
        "standard",
        dict(input_usd_per_mtok=D("1.25"), output_usd_per_mtok=D("10"), cache_read_usd_per_mtok=D("0.125")),
    ),
    # Gemini text models on a Gemini API channel (their price is Google's list price).
    "gemini-2.5-flash": (
        "text",
        "standard",
        dict(input_usd_per_mtok=D("0.3"), output_usd_per_mtok=D("2.5"), cache_read_usd_per_mtok=D("0.03")),
    ),
    "gemini-3-pro-preview": (
        "text",
        "standard",
        dict(input_usd_per_mtok=D("2"), output_usd_per_mtok=D("12"), cache_read_usd_per_mtok=D("0.2")),
    ),
    "text-embedding-3-small": ("text", "standard", dict(input_usd_per_mtok=D("0.02"))),
    "nano-banana-pro": ("image", "standard", dict(usd_per_call=D("0.134"))),
    # Nano Banana under Google's names, for Gemini-native clients (/v1beta/models/...:generateContent).
    "gemini-2.5-flash-image": ("image", "standard", dict(usd_per_call=D("0.039"))),
    "gemini-3-pro-image-preview": ("image", "standard", dict(usd_per_call=D("0.134"))),
    "bge-reranker-v2-m3": ("text", "standard", dict(usd_per_call=D("0.002"))),  # POST /v1/rerank
    "tts-1": ("text", "standard", dict(usd_per_call=D("0.015"))),  # POST /v1/audio/speech
    "whisper-1": ("text", "standard", dict(usd_per_call=D("0.006"))),  # POST /v1/audio/transcriptions
    "veo-3.1": ("video", "standard", dict(usd_per_call=D("3.2"))),
    "sora-2": ("video", "standard", dict(usd_per_second=D("0.1"))),
    "wan-2.5": ("video", "standard", dict(usd_per_second=D("0.05"))),
    "seedance-2": ("video", "standard", dict(usd_per_second=D("0.08"))),
}
CLAUDE = ["claude-sonnet-4-5", "claude-opus-4-6"]
DOMESTIC = ["qwen3.5-max", "glm-5.1", "deepseek-v4"]

CHANNELS = {
    # name: kind, models, groups, priority
    "claude-official": ("anthropic", CLAUDE, ["ClaudeCode"], 10),
    "claude-aws": ("anthropic", CLAUDE, ["ClaudeCode"], 5),
    "claude-default": ("anthropic", CLAUDE, ["Default"], 0),
    "claude-enterprise": ("anthropic", CLAUDE, ["Claude_Enterprise"], 0),
    "domestic": ("openai", DOMESTIC, ["ClaudeCode", "Default"], 0),
    "openai-official": (
        "openai",
        [
            "gpt-5.1",
            "text-embedding-3-small",
            "nano-banana-pro",
            "gemini-2.5-flash-image",
            "gemini-3-pro-image-preview",
            "bge-reranker-v2-m3",
            "tts-1",
            "whisper-1",
        ],
        ["Default"],
        0,
    ),
    "gemini-official": ("gemini", ["gemini-2.5-flash", "gemini-3-pro-preview"], ["Default"], 0),
    "sora": ("video", ["sora-2"], ["Sora2Official"], 0),
    "wan": ("video", ["wan-2.5"], ["Wan"], 0),
    "seedance": ("video", ["seedance-2"], ["Seedance2"], 0),
    "veo": ("video", ["veo-3.1"], ["Default"], 0),  # Veo 3.1 through POST /v1/videos
}

DEMO_KEY_FILE = "demo_key"


def sim_base_url(upstream: str, kind: str = "openai") -> str:
    """The simulator's URL for a channel: `/v1` for OpenAI and Anthropic, the host root for Gemini."""
    port = os.environ.get("SIM_PORT", "8100")
    return f"http://127.0.0.1:{port}/u/{upstream}" + ("" if kind == "gemini" else "/v1")


@transaction.atomic
def seed_demo(*, admin_password: str = "admin", demo_password: str = "demo") -> dict:  # noqa: S107 (demo only)
    """Create or refresh the demo data; running it twice changes nothing."""
    Setting.objects.update_or_create(key="usd_cny_rate", defaults={"value": str(USD_CNY_RATE)})
    user_groups = {}
    for i, (name, (desc, tiers)) in enumerate(USER_GROUPS.items()):
        user_groups[name], _ = UserGroup.objects.update_or_create(
            name=name, defaults={"description": desc, "model_tiers": tiers, "sort_order": i}
        )
    for name, yuan in UPGRADE_RULES.items():
        UserGroupUpgradeRule.objects.update_or_create(
            user_group=user_groups[name], defaults={"min_total_recharge_micro": yuan * 1_000_000}
        )
    RechargeBonusTier.objects.exclude(min_amount_micro__in=[y * 1_000_000 for y in BONUS_TIERS]).delete()
    for yuan, percent in BONUS_TIERS.items():
        RechargeBonusTier.objects.update_or_create(
            min_amount_micro=yuan * 1_000_000, defaults={"bonus_percent": percent}
        )
    token_groups = {}
    for i, (name, (mult, formats, fb_only, desc)) in enumerate(TOKEN_GROUPS.items()):
        token_groups[name], _ = TokenGroup.objects.update_or_create(
            name=name,
            defaults={
                "multiplier": mult,
                "api_formats": formats,
                "fallback_only": fb_only,
                "description": desc,
                "sort_order": i,
            },
        )
    for ug in user_groups.values():
        for tg in PUBLIC_GROUPS:
            GroupAccess.objects.get_or_create(user_group=ug, token_group=token_groups[tg])
    GroupAccess.objects.get_or_create(
        user_group=user_groups["enterprise"],
        token_group=token_groups["Claude_Enterprise"],
        defaults={"fallback_only": True},
    )
    models = {}
    for name, (kind, tier, prices) in MODELS.items():
        models[name], _ = Model.objects.update_or_create(
            name=name, defaults={"kind": kind, "tier": tier, **prices}
        )
    for name, (kind, served, groups, priority) in CHANNELS.items():
        channel = Channel.objects.filter(name=name).first() or Channel(name=name)
        channel.kind = kind
        channel.base_url = sim_base_url(name, kind)
        channel.priority = priority
        channel.allow_private_network = True
        channel.auto_reenable = True
        channel.probe_interval_s = 15
        if not channel.api_key_encrypted:
            channel.api_key = f"sim-{name}-key"
        channel.save()
        channel.token_groups.set([token_groups[g] for g in groups])
        for model_name in served:
            ChannelModel.objects.get_or_create(channel=channel, model=models[model_name])
    admin = _user("admin", admin_password, user_groups["enterprise"], is_staff=True, is_superuser=True)
    demo = _user("demo", demo_password, user_groups["default"])
    wallet = wallet_get_or_create(user=demo)
    if not wallet.total_recharged_micro:
        wallet_recharge(user=demo, amount_micro=1000 * 1_000_000, payment_ref="demo-seed")
    wallet_get_or_create(user=admin)
    return {"demo_key": _demo_token(demo, token_groups)}


def _user(username, password, user_group, **flags) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username, user_group=user_group, **flags)
        user.set_password(password)
        user.save()
    return user


def _demo_token(user, token_groups) -> str:
    """The demo token's raw key is kept in var/ so `make demo` can print examples every run."""
    path = settings.VAR_DIR / DEMO_KEY_FILE
    if path.exists():
        raw = path.read_text().strip()
        if Token.objects.filter(key_hash=hash_key(raw)).exists():
            return raw
    user.refresh_from_db()
    _, raw = token_create(
        user=user,
        name="demo ClaudeCode",
        select_group=token_groups["ClaudeCode"],
        fallback_groups=[token_groups["Default"]],
    )
    path.write_text(raw)
    path.chmod(0o600)
    return raw
