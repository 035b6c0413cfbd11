"""Sign-in and sign-out: Entra ID (AUTH_MODE=entra) or local Django accounts (AUTH_MODE=local)."""

from django.urls import path

from accounts import profile, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_page, name="login"),
    path("signin/", views.signin, name="signin"),
    path("callback/", views.callback, name="callback"),
    path("logout/", views.logout_view, name="logout"),
    path("signed-out/", views.signed_out, name="signed_out"),
    path("directory/", views.directory_search, name="directory_search"),
    path("profile/", profile.profile, name="profile"),
    path("profile/tokens/<int:pk>/revoke/", profile.token_revoke, name="token_revoke"),
]
