"""Copy-paste code examples for a token: curl, Python openai, Python anthropic, Claude Code."""

from __future__ import annotations

from django.conf import settings

from groups.models import Model
from groups.selectors import models_by_group, token_callable_models

KEY_PLACEHOLDER = "sk-your-key"


def public_base_url(request) -> str:
    """PUBLIC_BASE_URL when configured, else the origin this console was reached at."""
    return settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")


def code_examples(*, base: str, key: str | None, model: str, anthropic_model: str | None) -> list[dict]:
    """Snippets that call the gateway with this token; `key` is the raw key when just revealed."""
    key = key or KEY_PLACEHOLDER
    out = [
        {
            "id": "curl",
            "label": "curl",
            "code": (
                f"curl {base}/v1/chat/completions \\\n"
                f'  -H "Authorization: Bearer {key}" \\\n'
                '  -H "Content-Type: application/json" \\\n'
                f'  -d \'{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}\' -i'
            ),
        },
        {
            "id": "openai",
            "label": "Python openai",
            "code": (
                "from openai import OpenAI\n\n"
                f'client = OpenAI(base_url="{base}/v1", api_key="{key}")\n'
                "reply = client.chat.completions.create(\n"
                f'    model="{model}",\n'
                '    messages=[{"role": "user", "content": "Hello!"}],\n'
                ")\n"
                "print(reply.choices[0].message.content)"
            ),
        },
    ]
    if anthropic_model:
        out += [
            {
                "id": "anthropic",
                "label": "Python anthropic",
                "code": (
                    "import anthropic\n\n"
                    f'client = anthropic.Anthropic(base_url="{base}", api_key="{key}")\n'
                    "message = client.messages.create(\n"
                    f'    model="{anthropic_model}",\n'
                    "    max_tokens=1024,\n"
                    '    messages=[{"role": "user", "content": "Hello!"}],\n'
                    ")\n"
                    "print(message.content[0].text)"
                ),
            },
            {
                "id": "claude-code",
                "label": "Claude Code",
                "code": (
                    f"export ANTHROPIC_BASE_URL={base}\n"
                    f"export ANTHROPIC_AUTH_TOKEN={key}\n"
                    f"export ANTHROPIC_MODEL={anthropic_model}\n"
                    "claude"
                ),
            },
        ]
    return out


def example_models(*, token) -> tuple[str | None, str | None]:
    """A model the token can really call for the OpenAI-style examples, and one for the
    Anthropic-style examples (None when the select group does not accept that format)."""
    callable_names = token_callable_models(token=token)
    if not callable_names:
        return None, None
    in_select = set(models_by_group(group_ids=[token.select_group_id]).get(token.select_group_id, []))
    rows = list(Model.objects.filter(name__in=callable_names).values_list("name", "kind", "tier"))
    # Prefer the select group's own text models, standard tier first (the cheaper everyday choice).
    rows.sort(key=lambda r: (r[0] not in in_select, r[1] != "text", r[2] != "standard", r[0]))
    openai_model = rows[0][0]
    anthropic_model = None
    if "anthropic" in (token.select_group.api_formats or []):
        text = [name for name, kind, _ in rows if kind == "text"]
        claude = [name for name in text if name.startswith("claude")]
        anthropic_model = (claude or text or [None])[0]
    return openai_model, anthropic_model
