"""Token pages: list, create/edit dialog, key shown once, roll, toggle, delete, examples."""

import re

import pytest
from django.test import Client


@pytest.fixture
def c(customer):
    client = Client()
    client.force_login(customer)
    return client


def _form(groups, **extra):
    data = {"name": "laptop", "select_group": groups["ClaudeCode"].pk, "billing_mode": "usage_first"}
    data.update(extra)
    return data


def test_list_shows_only_own_tokens_with_route(c, cc_token, outsider, groups):
    from tokens.services import token_create

    token_create(user=outsider, name="not-mine", select_group=groups["Default"])
    page = c.get("/tokens/").content.decode()
    assert "cc" in page and cc_token.key_prefix in page
    assert "1. Default" in page
    assert "not-mine" not in page


def test_list_filters_with_the_shared_filterset(c, customer, cc_token, groups):
    from tokens.services import token_create

    token_create(user=customer, name="video", select_group=groups["Sora2Official"])
    page = c.get("/tokens/?select_group=Sora2Official").content.decode()
    assert "video" in page and f'href="/tokens/{cc_token.pk}/"' not in page
    page = c.get("/tokens/?q=vid").content.decode()
    assert "video" in page and f'href="/tokens/{cc_token.pk}/"' not in page


def test_htmx_filter_returns_only_the_results_partial(c, cc_token):
    page = c.get("/tokens/?q=cc", headers={"HX-Request": "true", "HX-Target": "results"}).content.decode()
    assert page.lstrip().startswith('<div id="results">')
    assert "<html" not in page


def test_create_form_offers_only_permitted_groups_with_their_multiplier(c, groups):
    page = c.get("/tokens/new/").content.decode()
    assert "ClaudeCode — 0.95×" in page
    assert "Default — 1×" in page
    assert "Claude_Enterprise" not in page  # enterprise fallback group, not for the default user group
    for help_text in ("Only models metered by tokens", "Only models with a per-call price"):
        assert help_text in page


def test_create_dialog_is_an_htmx_partial(c):
    page = c.get("/tokens/new/", headers={"HX-Request": "true", "HX-Target": "dialog"}).content.decode()
    assert 'class="dialog-body"' in page and "<html" not in page


def test_fallback_list_flags_groups_without_the_select_groups_models(c, groups):
    page = c.get(f"/tokens/form/groups/?select_group={groups['ClaudeCode'].pk}").content.decode()
    wan = page.split('data-group="Wan"')[1].split("</li>")[0]
    default = page.split('data-group="Default"')[1].split("</li>")[0]
    assert "offers none of ClaudeCode's models" in wan
    assert "offers none" not in default and "shares" in default
    assert 'data-group="ClaudeCode"' not in page  # the select group is not its own fallback


def test_create_keeps_fallback_order_and_shows_the_key_once(c, customer, groups):
    data = _form(groups)
    response = c.post("/tokens/new/", {**data, "fallback_groups": [groups["Wan"].pk, groups["Default"].pk]})
    token = customer.tokens.get()
    assert response.status_code == 302 and response["Location"] == f"/tokens/{token.pk}/"
    assert [f.group.name for f in token.fallbacks.all()] == ["Wan", "Default"]
    first = c.get(f"/tokens/{token.pk}/").content.decode()
    assert 'id="raw-key"' in first
    raw = first.split('id="raw-key" value="')[1].split('"')[0]
    from core.keys import hash_key

    assert hash_key(raw) == token.key_hash
    assert f"Bearer {raw}" in first  # the examples carry the real key while it is visible
    second = c.get(f"/tokens/{token.pk}/").content.decode()
    assert raw not in second and 'id="raw-key"' not in second


def test_htmx_create_redirects_the_browser(c, customer, groups):
    response = c.post("/tokens/new/", _form(groups), headers={"HX-Request": "true", "HX-Target": "dialog"})
    token = customer.tokens.get()
    assert response["HX-Redirect"] == f"/tokens/{token.pk}/"


def test_service_errors_are_shown_on_the_form(c, customer, groups):
    response = c.post(
        "/tokens/new/",
        _form(groups, ip_allowlist="10.0.0.0/8 not-an-ip", model_allowlist="no-such-model", quota="-1"),
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0" in page
    response = c.post(
        "/tokens/new/", _form(groups, ip_allowlist="not-an-ip", model_allowlist="no-such-model")
    )
    page = response.content.decode()
    assert "is not an IP address or CIDR range" in page
    assert not customer.tokens.exists()
    response = c.post("/tokens/new/", _form(groups, model_allowlist="no-such-model"))
    assert "Unknown models: no-such-model" in response.content.decode()
    response = c.post("/tokens/new/", _form(groups, fallback_groups=[groups["ClaudeCode"].pk]))
    assert "a fallback group must be a different group" in response.content.decode()
    assert not customer.tokens.exists()


def test_a_group_the_user_may_not_select_is_refused(c, customer, groups):
    response = c.post("/tokens/new/", _form(groups, select_group=groups["Claude_Enterprise"].pk))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    response = c.post("/tokens/new/", _form(groups, fallback_groups=[groups["Claude_Enterprise"].pk]))
    assert "Select a valid choice" in response.content.decode()
    assert not customer.tokens.exists()


def test_edit_changes_route_and_settings(c, cc_token, groups):
    response = c.post(
        f"/tokens/{cc_token.pk}/edit/",
        _form(
            groups,
            name="renamed",
            fallback_groups=[groups["Default"].pk, groups["Wan"].pk],
            quota="12.5",
            billing_mode="call_first",
            ip_allowlist="203.0.113.7",
        ),
    )
    assert response.status_code == 302
    cc_token.refresh_from_db()
    assert cc_token.name == "renamed" and cc_token.quota_micro == 12_500_000
    assert cc_token.billing_mode == "call_first" and cc_token.ip_allowlist == ["203.0.113.7/32"]
    assert [f.group.name for f in cc_token.fallbacks.all()] == ["Default", "Wan"]


def test_edit_form_is_prefilled(c, cc_token):
    page = c.get(f"/tokens/{cc_token.pk}/edit/").content.decode()
    assert 'value="cc"' in page
    default = page.split('data-group="Default"')[1].split("</li>")[0]
    assert "checked" in default


def test_roll_key_replaces_the_key(c, cc_token):
    old = cc_token.key_hash
    response = c.post(f"/tokens/{cc_token.pk}/roll/")
    assert response.status_code == 302
    cc_token.refresh_from_db()
    assert cc_token.key_hash != old
    assert 'id="raw-key"' in c.get(f"/tokens/{cc_token.pk}/").content.decode()


def test_toggle_and_delete(c, cc_token, customer):
    c.post(f"/tokens/{cc_token.pk}/toggle/")
    cc_token.refresh_from_db()
    assert not cc_token.enabled
    page = c.post(f"/tokens/{cc_token.pk}/delete/").content.decode()  # one POST only asks
    assert 'data-testid="confirm"' in page and customer.tokens.exists()
    c.post(f"/tokens/{cc_token.pk}/delete/", {"confirm": "1"})
    assert not customer.tokens.exists()


def test_writes_need_post(c, cc_token):
    assert c.get(f"/tokens/{cc_token.pk}/roll/").status_code == 405
    assert c.get(f"/tokens/{cc_token.pk}/delete/").status_code == 405


def test_another_users_token_is_404_everywhere(cc_token, outsider):
    c = Client()
    c.force_login(outsider)
    for url in ["", "edit/"]:
        assert c.get(f"/tokens/{cc_token.pk}/{url}").status_code == 404
    for url in ["edit/", "roll/", "toggle/", "delete/"]:
        assert c.post(f"/tokens/{cc_token.pk}/{url}", {"name": "x"}).status_code == 404
    cc_token.refresh_from_db()
    assert cc_token.enabled and cc_token.name == "cc"
    assert c.get("/tokens/999999/").status_code == 404


def test_examples_use_the_public_base_url_and_a_callable_model(c, cc_token, settings):
    settings.PUBLIC_BASE_URL = "https://gw.example.com"
    page = c.get(f"/tokens/{cc_token.pk}/").content.decode()
    assert "curl https://gw.example.com/v1/chat/completions" in page
    assert "OpenAI(base_url=&quot;https://gw.example.com/v1&quot;" in page
    assert "anthropic.Anthropic(base_url=&quot;https://gw.example.com&quot;" in page
    assert "export ANTHROPIC_BASE_URL=https://gw.example.com" in page
    # a standard-tier Claude model of the select group, which the user may call
    assert "export ANTHROPIC_MODEL=claude-sonnet-4-5" in page
    callable_section = page.split("Models this token can call")[1].split("</section>")[0]
    assert "claude-sonnet-4-5" in callable_section and "deepseek-v4" in callable_section
    assert "sora-2" not in callable_section  # neither ClaudeCode nor Default offers it


def test_examples_without_public_base_url_use_the_origin_of_the_request(c, cc_token, settings):
    settings.PUBLIC_BASE_URL = ""
    page = c.get(f"/tokens/{cc_token.pk}/", HTTP_HOST="127.0.0.1:8765").content.decode()
    assert "curl http://127.0.0.1:8765/v1/chat/completions" in page
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:8765" in page
    assert "127.0.0.1:8000" not in page


def test_callable_models_respect_tiers_and_allowlist(groups, user_groups, make_user):
    from tokens.services import token_create

    user = make_user(user_group=user_groups["default"])  # standard tier only
    token, _ = token_create(
        user=user,
        name="t",
        select_group=groups["ClaudeCode"],
        model_allowlist=["claude-opus-4-6", "deepseek-v4"],
    )
    c = Client()
    c.force_login(user)
    page = c.get(f"/tokens/{token.pk}/").content.decode()
    callable_section = page.split("Models this token can call")[1].split("</section>")[0]
    assert "deepseek-v4" in callable_section
    assert "claude-opus-4-6" not in callable_section  # premium tier
    assert "claude-sonnet-4-5" not in callable_section  # not in the allowlist


def test_openai_only_group_has_no_anthropic_examples(c, customer, groups):
    from tokens.services import token_create

    token, _ = token_create(user=customer, name="video", select_group=groups["Sora2Official"])
    page = c.get(f"/tokens/{token.pk}/").content.decode()
    assert "Example model: <code>sora-2</code>" in page
    assert "{&quot;model&quot;: &quot;sora-2&quot;" in page  # the curl example's body
    assert "ANTHROPIC_BASE_URL" not in page
    assert "does not accept the Anthropic format" in page


def test_fallback_cap_in_the_form(c, customer, groups, settings):
    settings.TOKEN_MAX_FALLBACK_GROUPS = 2
    three = [groups[n].pk for n in ("Default", "Sora2Official", "Wan")]
    response = c.post("/tokens/new/", _form(groups, fallback_groups=three))
    assert response.status_code == 200
    assert "Choose at most 2 fallback groups." in response.content.decode()
    assert not customer.tokens.exists()
    response = c.post("/tokens/new/", _form(groups, fallback_groups=three[:2]))
    assert response.status_code == 302 and customer.tokens.count() == 1


def test_fallback_cap_in_the_service_is_configurable(customer, groups, settings):
    from django.core.exceptions import ValidationError

    from tokens.services import token_create

    fallbacks = [groups["Default"], groups["Sora2Official"]]
    settings.TOKEN_MAX_FALLBACK_GROUPS = 1
    with pytest.raises(ValidationError) as exc:
        token_create(user=customer, name="x", select_group=groups["ClaudeCode"], fallback_groups=fallbacks)
    assert "At most 1 fallback group" in str(exc.value.message_dict["fallback_groups"])
    settings.TOKEN_MAX_FALLBACK_GROUPS = 2
    token, _ = token_create(
        user=customer, name="x", select_group=groups["ClaudeCode"], fallback_groups=fallbacks
    )
    assert token.fallbacks.count() == 2


def test_reorder_without_javascript_moves_a_group_and_saves_nothing(c, customer, groups):
    order = [groups[n].pk for n in ("Default", "Sora2Official", "Wan")]
    data = _form(groups, fallback_groups=[order[0], order[1]], fallback_order=order)
    response = c.post("/tokens/new/", {**data, "move": f"down:{order[0]}"})
    assert response.status_code == 200 and not customer.tokens.exists()
    html = response.content.decode()
    positions = [html.index(f'name="fallback_order" value="{pk}"') for pk in order]
    assert positions[1] < positions[0] < positions[2]  # Sora2Official, Default, Wan
    assert 'value="laptop"' in html  # what was typed is kept
    checked = re.findall(r'name="fallback_groups" value="(\d+)"[^>]*checked', html)
    assert checked == [str(order[1]), str(order[0])]
    # Saving the reordered form keeps the new order.
    response = c.post("/tokens/new/", _form(groups, fallback_groups=[order[1], order[0]]))
    token = customer.tokens.get()
    assert [f.group.name for f in token.fallbacks.order_by("position")] == ["Sora2Official", "Default"]


def test_reorder_without_javascript_on_edit(c, cc_token, groups):
    order = [groups["Default"].pk, groups["Wan"].pk]
    data = _form(groups, name="cc", fallback_groups=order, fallback_order=order)
    response = c.post(f"/tokens/{cc_token.pk}/edit/", {**data, "move": f"up:{order[1]}"})
    html = response.content.decode()
    at = [html.index(f'name="fallback_order" value="{pk}"') for pk in order]
    assert at[1] < at[0]
    assert [f.group.name for f in cc_token.fallbacks.all()] == ["Default"]  # unchanged until saved


def test_groups_without_models_or_channels_are_not_offered(c, customer, groups, user_groups):
    from groups.models import GroupAccess, TokenGroup

    empty = TokenGroup.objects.create(name="EmptyGroup")
    GroupAccess.objects.create(user_group=user_groups["default"], token_group=empty)
    html = c.get("/tokens/new/").content.decode()
    assert "EmptyGroup" not in html
    assert "Default" in html
