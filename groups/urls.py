from django.urls import path

from . import views

app_name = "groups"

urlpatterns = [
    path("ops/token-groups/", views.token_groups, name="token_groups"),
    path("ops/token-groups/new/", views.token_group_edit, name="token_group_new"),
    path("ops/token-groups/<int:pk>/", views.token_group_edit, name="token_group"),
    path("ops/token-groups/<int:pk>/access/", views.token_group_access, name="token_group_access"),
    path("ops/user-groups/", views.user_groups, name="user_groups"),
    path("ops/user-groups/new/", views.user_group_edit, name="user_group_new"),
    path("ops/user-groups/<int:pk>/", views.user_group_edit, name="user_group"),
    path("ops/channels/", views.channels, name="channels"),
    path("ops/channels/new/", views.channel_edit, name="channel_new"),
    path("ops/channels/<int:pk>/", views.channel_edit, name="channel"),
    path("ops/channels/<int:pk>/toggle/", views.channel_toggle, name="channel_toggle"),
    path("ops/channels/<int:pk>/probe/", views.channel_probe_now, name="channel_probe"),
    path("ops/models/", views.models_list, name="models"),
    path("ops/models/new/", views.model_edit, name="model_new"),
    path("ops/models/preview/", views.model_preview, name="model_preview_new"),
    path("ops/models/<int:pk>/", views.model_edit, name="model"),
    path("ops/models/<int:pk>/preview/", views.model_preview, name="model_preview"),
]
