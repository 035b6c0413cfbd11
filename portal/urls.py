"""URL configuration: accounts (sign-in), the portal's pages, and the Django admin for policy."""

from django.contrib import admin
from django.urls import include, path

from accounts.views import admin_login, admin_logout
from provisioning.views import home

urlpatterns = [
    path("", home.home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include("provisioning.api.urls")),
    path("", include("provisioning.urls")),
    # Before the admin's own: with Entra ID, the admin signs in and out through the portal.
    # The queues' dashboard (django-rq), for admins with the Django admin's rights; linked from the menu.
    path("admin/queues/", include("django_rq.urls")),
    path("admin/login/", admin_login),
    path("admin/logout/", admin_logout),
    path("admin/", admin.site.urls),
]

handler403 = "provisioning.views.errors.permission_denied"
handler404 = "provisioning.views.errors.page_not_found"
handler500 = "provisioning.views.errors.server_error"
