"""`createtoken USER --group …`: prints only the key, refuses clearly."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.keys import hash_key
from tokens.models import Token


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_createtoken_prints_only_the_key(demo):
    out = run("createtoken", "demo", "--group", "ClaudeCode", "--fallback", "Default", "--quota-cny", "12.5")
    assert out.startswith("sk-") and "\n" not in out
    token = Token.objects.get(key_hash=hash_key(out))
    assert token.quota_micro == 12_500_000
    assert [f.group.name for f in token.fallbacks.all()] == ["Default"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "--group", "Default"], "unknown user"),
        (["demo", "--group", "Nope"], "unknown token group"),
        (["demo", "--group", "Claude_Enterprise"], "may not select"),
        (["demo", "--group", "Default", "--fallback", "Default"], "different group"),
        (["demo", "--group", "Default", "--quota-cny", "lots"], "not a number"),
    ],
)
def test_createtoken_errors_are_clear(demo, args, message):
    with pytest.raises(CommandError, match=message):
        run("createtoken", *args)
