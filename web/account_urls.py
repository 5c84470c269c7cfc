"""Sign-in and sign-out for the join page, included at ``accounts/`` (``LOGIN_URL``)."""

from django.urls import path

from web.signin import SignInView, SignOutView

app_name = "account"

urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", SignOutView.as_view(), name="logout"),
]
