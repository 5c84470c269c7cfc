"""Helpers for the admin tests: URLs, logged-in clients, reading rows and forms out of the HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse


def url(name: str, *args: str) -> str:
    return reverse(f"admin:invites_dynamospace_{name}", args=args)


def client_for(user: Any, *, enforce_csrf_checks: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf_checks)
    client.force_login(user)
    return client


def message_texts(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@dataclass
class Form:
    id: str | None
    action: str | None
    method: str
    inputs: dict[str, str] = field(default_factory=dict)


@dataclass
class Page:
    forms: list[Form] = field(default_factory=list)
    # (form attribute, text) of every <button>, and the space id of the row it sits in.
    buttons: list[tuple[str | None, str, str | None]] = field(default_factory=list)
    row_ids: list[str] = field(default_factory=list)

    @property
    def row_buttons(self) -> list[tuple[str | None, str]]:
        """(form attribute, row's space id) of every row's button ("Regenerate", or "Add code")."""
        return [(form, row) for form, _text, row in self.buttons if row is not None]

    @property
    def row_button_texts(self) -> dict[str, str]:
        """The row's space id -> the text of its button."""
        return {row: text for _form, text, row in self.buttons if row is not None}

    def form(self, form_id: str | None) -> Form:
        (found,) = [form for form in self.forms if form.id == form_id]
        return found


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self._form: Form | None = None
        self._row: str | None = None
        self._button: tuple[str | None, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self._form = Form(attributes.get("id"), attributes.get("action"), (attributes.get("method") or "get"))
            self.page.forms.append(self._form)
        elif tag == "input" and self._form is not None and attributes.get("name"):
            self._form.inputs.setdefault(attributes["name"] or "", attributes.get("value") or "")
        elif tag == "tr" and attributes.get("data-space-id"):
            self._row = attributes["data-space-id"]
            self.page.row_ids.append(self._row or "")
        elif tag == "button":
            self._button = (attributes.get("form"), [])

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "tr":
            self._row = None
        elif tag == "button" and self._button is not None:
            self.page.buttons.append((self._button[0], "".join(self._button[1]).strip(), self._row))
            self._button = None


def parse(response: Any) -> Page:
    parser = _PageParser()
    parser.feed(response.content.decode())
    return parser.page
