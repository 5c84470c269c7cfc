"""Sign-in and sign-out for the join page (``LOGIN_URL``): Django's views, our templates, the guarded form."""

from django.contrib.auth.views import LoginView, LogoutView
from django.urls import path

from accounts.forms import GuardedAuthenticationForm

app_name = "account"

sign_in = LoginView.as_view(
    template_name="web/sign_in.html", authentication_form=GuardedAuthenticationForm, next_page="web:enter"
)
urlpatterns = [
    path("login/", sign_in, name="login"),
    path("logout/", LogoutView.as_view(template_name="web/signed_out.html"), name="logout"),
]
