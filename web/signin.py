"""Signing in and out for the join page: Django's own views, our templates, the guarded form.

:class:`~accounts.forms.GuardedAuthenticationForm` refuses to check passwords
while the username or the address is locked out after failed sign-ins. After
signing in, the visitor goes back to ``next`` when Django's
``url_has_allowed_host_and_scheme`` finds it safe (this host only), and to the
code form otherwise.
"""

from __future__ import annotations

from django.contrib.auth.views import LoginView, LogoutView

from accounts.forms import GuardedAuthenticationForm


class SignInView(LoginView):
    template_name = "web/sign_in.html"
    authentication_form = GuardedAuthenticationForm
    next_page = "web:enter"


class SignOutView(LogoutView):
    template_name = "web/signed_out.html"
