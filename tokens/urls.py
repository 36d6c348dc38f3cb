from django.urls import path

from . import views

app_name = "tokens"

urlpatterns = [
    path("", views.token_list, name="list"),
    path("new/", views.token_create_view, name="create"),
    path("form/groups/", views.token_form_groups, name="form_groups"),
    path("<int:pk>/", views.token_detail, name="detail"),
    path("<int:pk>/edit/", views.token_edit, name="edit"),
    path("<int:pk>/roll/", views.token_roll, name="roll"),
    path("<int:pk>/toggle/", views.token_toggle, name="toggle"),
    path("<int:pk>/delete/", views.token_delete_view, name="delete"),
]
