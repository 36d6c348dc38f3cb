"""Every console page: anonymous users are sent to the login page, customers never see
operator pages, and nobody sees another user's objects."""

USER_PAGES = [
    "/",
    "/tokens/",
    "/tokens/new/",
    "/prices/",
    "/usage/",
    "/usage/export.csv",
    "/why/",
    "/wallet/",
    "/wallet/recharge/",
]
OPS_PAGES = [
    "/ops/token-groups/",
    "/ops/token-groups/new/",
    "/ops/user-groups/",
    "/ops/user-groups/new/",
    "/ops/channels/",
    "/ops/channels/new/",
    "/ops/models/",
    "/ops/models/new/",
    "/ops/users/",
    "/ops/audit/",
    "/ops/bonus-tiers/",
    "/ops/settings/",
]


def test_anonymous_is_sent_to_login(client, demo):
    for url in USER_PAGES + OPS_PAGES:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"/login/?next={url}"), url


def test_customer_pages_render(client_for, customer):
    c = client_for(customer)
    for url in USER_PAGES:
        assert c.get(url).status_code == 200, url


def test_customer_gets_403_on_operator_pages(client_for, customer):
    c = client_for(customer)
    for url in OPS_PAGES:
        assert c.get(url).status_code == 403, url


def test_operator_pages_render(client_for, operator):
    c = client_for(operator)
    for url in OPS_PAGES:
        assert c.get(url).status_code == 200, url


def test_operator_detail_pages_render(client_for, operator, customer):
    from groups.models import Channel, Model, TokenGroup, UserGroup

    c = client_for(operator)
    for url in [
        f"/ops/token-groups/{TokenGroup.objects.get(name='ClaudeCode').pk}/",
        f"/ops/user-groups/{UserGroup.objects.get(name='vip').pk}/",
        f"/ops/channels/{Channel.objects.get(name='claude-aws').pk}/",
        f"/ops/models/{Model.objects.get(name='sora-2').pk}/",
        f"/ops/users/{customer.pk}/",
    ]:
        assert c.get(url).status_code == 200, url


def test_operator_object_pages_refuse_customers(client_for, customer, operator):
    from groups.models import Channel, TokenGroup

    c = client_for(customer)
    assert c.get(f"/ops/users/{operator.pk}/").status_code == 403
    channel = Channel.objects.first()
    assert c.post(f"/ops/channels/{channel.pk}/toggle/").status_code in (403,)
    group = TokenGroup.objects.get(name="Default")
    assert c.get(f"/ops/token-groups/{group.pk}/").status_code == 403


def test_sidebar_shows_operator_links_only_to_staff(client_for, customer, operator):
    assert b"/ops/channels/" not in client_for(customer).get("/").content
    assert b"/ops/channels/" in client_for(operator).get("/").content


def test_login_and_logout(client, customer):
    from django.test import Client

    c = Client(enforce_csrf_checks=False)
    page = c.get("/login/")
    assert page.status_code == 200 and b'name="username"' in page.content
    response = c.post("/login/", {"username": customer.username, "password": "pw-123456-xyz"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert c.get("/").status_code == 200
    c.post("/logout/")
    assert c.get("/").status_code == 302


def test_wrong_password_shows_an_error(client, customer):
    response = client.post("/login/", {"username": customer.username, "password": "nope"})
    assert response.status_code == 200
    assert b"enter a correct username and password" in response.content.lower()


def test_csrf_is_enforced(client_for, customer, groups):
    c = client_for(customer)
    response = c.post(
        "/tokens/new/", {"name": "x", "select_group": groups["Default"].pk, "billing_mode": "usage_first"}
    )
    assert response.status_code == 403
    assert not customer.tokens.exists()
