"""/v1beta/* (Google's Gemini API); anything else under /v1beta gets a Gemini-shaped 404."""

from django.urls import re_path

from . import gemini

app_name = "gemini"

urlpatterns = [
    re_path(r"^models$", gemini.models, name="models"),
    re_path(r"^models/(?P<model>[^/:]+):(?P<action>[A-Za-z]+)$", gemini.model_action, name="model_action"),
    re_path(r"^models/(?P<model>[^/:]+)$", gemini.model_detail, name="model_detail"),
    re_path(r"^(?P<rest>.*)$", gemini.unknown, name="unknown"),
]
