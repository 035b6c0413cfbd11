"""``/api/v1/``: the resources, the OpenAPI 3 schema and its documentation page (served from static/)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from provisioning.api import requests, resources

app_name = "api"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False  # JSON only
router.register("requests", requests.RequestViewSet, basename="request")
router.register("workspaces", resources.WorkspaceViewSet, basename="workspace")
router.register("audit", resources.AuditViewSet, basename="audit")

urlpatterns = [
    path("", include(router.urls)),
    path("capacity/", resources.capacity, name="capacity"),
    path("me/access/", resources.my_access, name="my_access"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]
