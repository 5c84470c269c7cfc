"""Routes of the spaces API; every path works with and without a trailing slash."""

from rest_framework.routers import SimpleRouter

from spaces.api.views import SpaceViewSet


class OptionalSlashRouter(SimpleRouter):
    """``/api/spaces`` and ``/api/spaces/`` alike: the guide's examples have no slash.

    DRF 3.16 turns any true ``trailing_slash`` argument into "/", so the
    optional slash is set after construction.
    """

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("spaces", SpaceViewSet, basename="space")

urlpatterns = router.urls
