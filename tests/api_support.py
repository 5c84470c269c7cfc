"""Helpers of the API tests: users as tokens, spaces with people in every role."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from rest_framework_simplejwt.tokens import AccessToken

from invites.services import space_create
from spaces.models import ROLE_ADMIN, ROLE_MEMBER, ROLE_VIEWER, Space
from spaces.services import space_membership_add


def new_user_id() -> str:
    """A user as the API sees one: the UUID in a token's ``user_id`` claim."""
    return str(uuid.uuid4())


def access_token(user_id: str) -> str:
    token = AccessToken()
    token["user_id"] = user_id
    return str(token)


def as_user(client: Any, user_id: str | None) -> Any:
    """Send the client's next requests as ``user_id`` (None: anonymous)."""
    if user_id is None:
        client.credentials()
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user_id)}")
    return client


def add_member(space_id: str, user_id: str, role: str) -> None:
    space_membership_add(space_id=space_id, user_id=user_id, role=role)


@dataclass(frozen=True)
class SpacePeople:
    space: Space
    owner: str
    admin: str
    member: str
    viewer: str
    outsider: str

    def user(self, who: str) -> str | None:
        return None if who == "anonymous" else getattr(self, who)

    @property
    def code(self) -> str:
        return current_code(self.space.id)


def current_code(space_id: str) -> str:
    code = Space.get(*Space.key(space_id), consistent_read=True).invite_code
    assert code
    return code


def people_in_a_space(*, is_public: bool = False, name: str = "Book club") -> SpacePeople:
    owner = new_user_id()
    space = space_create(owner_id=owner, name=name, is_public=is_public)
    people = SpacePeople(space, owner, new_user_id(), new_user_id(), new_user_id(), new_user_id())
    add_member(space.id, people.admin, ROLE_ADMIN)
    add_member(space.id, people.member, ROLE_MEMBER)
    add_member(space.id, people.viewer, ROLE_VIEWER)
    return people
