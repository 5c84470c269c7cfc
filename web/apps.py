from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.urls import reverse


class WebConfig(AppConfig):
    """The server-rendered pages people use (not the admin): the join page and its sign-in."""

    name = "web"
    verbose_name = "Web pages"


@register(Tags.urls)
def invite_links_reach_the_join_page(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """System check: ``INVITE_URL_BASE`` (relative or absolute) must end in the join page's path, ``/join/``."""
    join_prefix = reverse("web:enter")
    if urlsplit(settings.INVITE_URL_BASE).path == join_prefix:
        return []
    warning = Warning(
        f"INVITE_URL_BASE is {settings.INVITE_URL_BASE!r}: its links do not lead to this site's join page "
        f"({join_prefix}<code>).",
        hint=f"Use '{join_prefix}' or an absolute URL ending in it "
        f"(e.g. 'https://spaces.example.com{join_prefix}'), unless another application serves the links.",
        id="web.W001",
    )
    return [warning]
