"""No raw sk-/mk- key or upstream key in logs, audit entries, error bodies or admin pages.

Representative flows run with every logger at DEBUG and SQL logging forced on; then the
captured log text, every audit entry and every response body is searched for the secrets.
"""

import json
import logging
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from accounts.models import AuditLog, User
from groups.models import Channel, TokenGroup
from groups.services import channel_save
from tokens.services import token_create, token_roll_key

UPSTREAM_KEY = "sk-proj-UPSTREAM-very-secret-0123456789"


@pytest.fixture
def capture(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("django", "django.db.backends", "relay", "celery"):
        caplog.set_level(logging.DEBUG, logger=name)
    connection.force_debug_cursor = True  # log every SQL statement with its parameters
    yield caplog
    connection.force_debug_cursor = False


def _audit_text() -> str:
    return json.dumps(
        list(AuditLog.objects.values("action", "object_repr", "before", "after", "actor_name")), default=str
    )


def _assert_absent(secrets, *texts):
    for secret in secrets:
        assert len(secret) > 12
        for text in texts:
            assert secret not in text


def test_token_channel_and_command_flows_leak_no_key(capture, demo, client):
    admin = User.objects.get(username="admin")
    demo_user = User.objects.get(username="demo")
    default = TokenGroup.objects.get(name="Default")
    secrets = [UPSTREAM_KEY, demo["demo_key"]]

    token, raw = token_create(user=demo_user, name="hygiene", select_group=default)
    rolled = token_roll_key(token=token)
    secrets += [raw, rolled]

    channel = channel_save(
        actor=admin,
        name="hygiene-upstream",
        kind="openai",
        base_url="http://127.0.0.1:9/v1",
        allow_private_network=True,
        api_key=UPSTREAM_KEY,
    )
    channel_save(actor=admin, channel=channel, api_key=UPSTREAM_KEY + "-2", priority=3)
    secrets.append(UPSTREAM_KEY + "-2")
    errors = []
    with pytest.raises(ValidationError) as exc:
        channel_save(
            actor=admin, name="bad", kind="openai", base_url="http://169.254.169.254/", api_key=UPSTREAM_KEY
        )
    errors.append(str(exc.value.message_dict))

    out = StringIO()
    call_command("rotate_keys", stdout=out, stderr=out)
    call_command("createtoken", "demo", "--group", "Default", stdout=StringIO())
    errors.append(out.getvalue())

    client.force_login(admin)
    pages = [
        client.get(reverse("admin:groups_channel_change", args=[channel.pk])),
        client.get(reverse("admin:groups_channel_changelist")),
        client.get(reverse("admin:tokens_token_changelist")),
        client.get(reverse("admin:tokens_token_change", args=[token.pk])),
        client.get(reverse("admin:accounts_auditlog_changelist")),
    ]
    assert all(page.status_code == 200 for page in pages)
    bodies = [page.content.decode() for page in pages]

    assert "(changed)" in _audit_text()  # the key change is audited, without the key
    assert '"api_key_encrypted"' in capture.text  # SQL was captured, so the search means something
    _assert_absent(secrets, capture.text, _audit_text(), *errors, *bodies)
    assert Channel.objects.get(pk=channel.pk).api_key == UPSTREAM_KEY + "-2"


def test_relay_errors_and_logs_do_not_echo_keys(capture, demo, client):
    bogus = "sk-" + "Z" * 48
    body = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
    responses = [
        client.post(
            "/v1/chat/completions",
            json.dumps(body),
            content_type="application/json",
            headers={"authorization": f"Bearer {bogus}"},
        ),
        client.post(
            "/v1/messages",
            json.dumps({**body, "max_tokens": 10}),
            content_type="application/json",
            headers={"x-api-key": bogus},
        ),
        client.post(
            "/v1/chat/completions",
            json.dumps(body),
            content_type="application/json",
            headers={"authorization": f"Bearer {demo['demo_key']}"},
        ),
        client.get("/v1/models", headers={"authorization": f"Bearer {demo['demo_key']}"}),
    ]
    assert [r.status_code for r in responses[:3]] == [401, 401, 404]
    texts = [r.content.decode() for r in responses]
    _assert_absent([bogus, demo["demo_key"]], capture.text, _audit_text(), *texts)


def test_a_key_typed_into_the_login_form_is_not_kept(caplog, demo, client):
    """Audit entries, lockout records and app logs keep no key typed as a username or password.

    (Only Django's own SQL debug log, never on in production, would show the lookup.)
    """
    from axes.models import AccessAttempt

    caplog.set_level(logging.DEBUG)
    client.post("/admin/login/", {"username": "admin", "password": UPSTREAM_KEY})
    client.post("/login/", {"username": UPSTREAM_KEY, "password": UPSTREAM_KEY})
    assert AuditLog.objects.filter(action="auth.login_failed").count() == 2
    lockout_rows = json.dumps(list(AccessAttempt.objects.values()), default=str)
    assert AccessAttempt.objects.count() == 2
    _assert_absent([UPSTREAM_KEY], caplog.text, _audit_text(), lockout_rows)


def test_the_whole_run_guard_spots_key_material():
    from core.keys import generate_key
    from tests.security.keyleak import KeyLeakHandler

    handler = KeyLeakHandler()
    log = logging.getLogger("tests.keyleak")
    log.addHandler(handler)
    log.propagate = False  # these planted keys must not trip the real whole-run guard
    try:
        log.warning("token %s… created", generate_key()[:10])
        assert handler.leaks == []
        log.warning("auth failed for %s", generate_key())
        try:
            raise ValueError(generate_key(prefix="mk-"))
        except ValueError:
            log.exception("boom")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    assert len(handler.leaks) == 2
