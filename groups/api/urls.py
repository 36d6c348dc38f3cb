from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("operator/user-groups", views.OperatorUserGroupViewSet, basename="operator-user-group")
router.register("operator/group-access", views.OperatorGroupAccessViewSet, basename="operator-group-access")
router.register("operator/token-groups", views.OperatorTokenGroupViewSet, basename="operator-token-group")
router.register("operator/models", views.OperatorModelViewSet, basename="operator-model")
router.register("operator/channels", views.OperatorChannelViewSet, basename="operator-channel")
router.register(
    "operator/channel-health", views.OperatorChannelHealthViewSet, basename="operator-channel-health"
)
router.register(
    "operator/channel-probes", views.OperatorChannelProbeViewSet, basename="operator-channel-probe"
)

urlpatterns = router.urls
