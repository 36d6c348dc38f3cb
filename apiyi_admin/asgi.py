"""ASGI entry point: relay views take the lean path (`lean_asgi`), the rest Django's full stack."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apiyi_admin.settings")
django_application = get_asgi_application()

from billing.ledger import close_batched_ledger  # noqa: E402
from core.lean_asgi import LeanASGIHandler  # noqa: E402 (needs the app registry ready)
from relay.upstream import close_sessions  # noqa: E402

application = LeanASGIHandler(django_application, on_shutdown=[close_sessions, close_batched_ledger])
