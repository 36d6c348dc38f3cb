from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("management-keys", views.ManagementKeyViewSet, basename="management-key")
router.register("operator/users", views.OperatorUserViewSet, basename="operator-user")
router.register("operator/audit-log", views.OperatorAuditLogViewSet, basename="operator-audit-log")

urlpatterns = [path("me/", views.MeView.as_view(), name="me"), *router.urls]
