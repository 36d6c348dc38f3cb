"""Celery app: reads CELERY_* from Django settings and autodiscovers tasks.py modules."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apiyi_admin.settings")

app = Celery("apiyi_admin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
