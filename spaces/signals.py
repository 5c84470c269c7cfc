"""A deleted user's memberships go with them (before the row is deleted: an outage refuses the deletion); spaces
they owned keep existing without an owner membership, reported at WARNING for an operator to hand over."""

import logging
from typing import Any

from accounts.exceptions import UserDeletionBlocked
from spaces.exceptions import DynamoUnavailable
from spaces.models import ROLE_OWNER
from spaces.selectors import memberships_of_user
from spaces.services import space_membership_remove

logger = logging.getLogger("spaces")


def remove_memberships_of_deleted_user(sender: Any, instance: Any, **_: Any) -> None:
    user_id = str(instance.pk)
    try:
        memberships = memberships_of_user(user_id=user_id)
        for membership in memberships:
            space_membership_remove(space_id=membership.space_id, user_id=user_id)
    except DynamoUnavailable as exc:
        raise UserDeletionBlocked(f"The memberships of user {user_id} could not be removed: {exc}") from exc
    if owned := sorted(m.space_id for m in memberships if m.role == ROLE_OWNER):
        logger.warning(
            "User %s was deleted; %d space(s) they owned have no owner now: %s", user_id, len(owned), ", ".join(owned)
        )
    logger.info("Removed the %d membership(s) of deleted user %s", len(memberships), user_id)
