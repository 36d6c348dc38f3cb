from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("ops/users/", views.ops_users, name="ops_users"),
    path("ops/users/<int:pk>/", views.ops_user_detail, name="ops_user"),
    path("ops/audit/", views.ops_audit, name="ops_audit"),
]
