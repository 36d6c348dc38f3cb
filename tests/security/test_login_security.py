"""Console and admin login: throttling and lockout, audit entries, CSP and security headers."""

import re

import pytest
from django.test import Client, override_settings

from accounts.models import AuditLog

PASSWORD = "pw-123456-xyz"  # what the make_user fixture sets


@pytest.fixture
def user(make_user):
    return make_user()


def _login(client, username, password, url="/login/", ip="203.0.113.7"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_successful_and_failed_logins_are_audited(client, user):
    response = _login(client, user.username, "wrong password")
    assert response.status_code == 200
    failed = AuditLog.objects.get(action="auth.login_failed")
    assert failed.ip == "203.0.113.7" and failed.object_id == str(user.pk)
    assert failed.after == {"username": user.username}
    assert "wrong password" not in str(failed.before) + str(failed.after) + failed.object_repr

    response = _login(client, user.username, PASSWORD)
    assert response.status_code == 302
    ok = AuditLog.objects.get(action="auth.login")
    assert ok.actor == user and ok.ip == "203.0.113.7"

    client.post("/logout/", REMOTE_ADDR="203.0.113.7")
    assert AuditLog.objects.filter(action="auth.logout", actor=user).exists()


def test_a_key_pasted_as_username_is_not_stored(client, db):
    _login(client, "sk-" + "x" * 40, "whatever")
    entry = AuditLog.objects.get(action="auth.login_failed")
    assert "sk-" not in entry.object_repr + str(entry.after)


def test_repeated_failures_lock_out_that_username_from_that_address(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, user.username, "nope").status_code == 200
    assert _login(client, user.username, "nope").status_code == 429  # the limit-th failure locks
    locked = _login(client, user.username, PASSWORD)
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AuditLog.objects.filter(action="auth.login", actor=user).count() == 0

    # Another address is not locked out by someone else's guesses (combination lockout).
    other = Client()
    assert _login(other, user.username, PASSWORD, ip="198.51.100.9").status_code == 302


def test_the_admin_login_is_throttled_too(client, user, settings):
    user.is_staff = True
    user.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, user.username, "nope", url="/admin/login/")
    assert _login(client, user.username, PASSWORD, url="/admin/login/").status_code == 429


def test_a_success_resets_the_failure_count(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, user.username, "nope")
    assert _login(client, user.username, PASSWORD).status_code == 302
    client.post("/logout/", REMOTE_ADDR="203.0.113.7")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, user.username, "nope")
    assert _login(client, user.username, PASSWORD).status_code == 302


def test_login_without_a_request_still_works_for_tests_and_shells(client, user):
    assert client.login(username=user.username, password=PASSWORD)


def test_login_needs_a_csrf_token(user):
    strict = Client(enforce_csrf_checks=True)
    assert _login(strict, user.username, PASSWORD).status_code == 403
    assert _login(strict, user.username, PASSWORD, url="/admin/login/").status_code == 403


def test_pages_carry_csp_and_security_headers(client, db):
    response = client.get("/login/")
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'"  # no nonce requested, none added
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    csrf_cookie = client.cookies.get("csrftoken")
    assert csrf_cookie is not None and csrf_cookie["samesite"] == "Lax"


@override_settings(ROOT_URLCONF="tests.security.urls_nonce")
def test_inline_scripts_run_only_with_the_request_nonce(client, db):
    response = client.get("/nonce/")
    nonce = re.search(r'nonce="([^"]+)"', response.content.decode()).group(1)
    assert f"'nonce-{nonce}'" in response["Content-Security-Policy"]
    assert nonce not in client.get("/nonce/")["Content-Security-Policy"]  # fresh per request


def test_production_settings_harden_cookies(tmp_path):
    import subprocess
    import sys

    code = (
        "import django;django.setup();from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_NAME, s.CSRF_COOKIE_NAME, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
        " s.SECURE_HSTS_SECONDS > 0, s.SESSION_COOKIE_HTTPONLY)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "apiyi_admin.settings",
        "PRODUCTION": "1",
        "SECRET_KEY": "x" * 60,
        "VAR_DIR": str(tmp_path),
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["__Host-sessionid", "__Host-csrftoken", "True", "True", "True", "True"]
