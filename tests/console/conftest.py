import pytest


@pytest.fixture
def customer(demo, user_groups, make_user):
    """A default-group customer with money in the wallet."""
    from billing.services import wallet_recharge

    user = make_user(user_group=user_groups["default"])
    wallet_recharge(user=user, amount_micro=1000 * 1_000_000, payment_ref=f"test-{user.pk}")
    user.refresh_from_db()
    return user


@pytest.fixture
def outsider(demo, user_groups, make_user):
    return make_user(user_group=user_groups["default"])


@pytest.fixture
def operator(demo, user_groups, make_user):
    return make_user(user_group=user_groups["enterprise"], is_staff=True)


@pytest.fixture
def client_for(client):
    """A CSRF-enforcing test client logged in as the given user."""
    from django.test import Client

    def make(user):
        c = Client(enforce_csrf_checks=True)
        c.force_login(user)
        return c

    return make
