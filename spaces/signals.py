"""When a user is deleted, their memberships go with them, through the same transactions as every removal.

Connected in ``SpacesConfig.ready``, before the user's row is deleted: when
DynamoDB cannot be reached the deletion is refused (``UserDeletionBlocked``),
so no membership is left behind for a user who no longer exists. Spaces the
user owned keep existing without an owner membership; they are reported at
WARNING for an operator to hand over (nobody is made owner automatically).
"""

from __future__ import annotations

import logging
from typing import Any

from accounts.exceptions import UserDeletionBlocked
from spaces.dynamodb import DynamoUnavailable
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
    owned = sorted(m.space_id for m in memberships if m.role == ROLE_OWNER)
    if owned:
        logger.warning(
            "User %s was deleted; %d space(s) they owned have no owner now: %s",
            user_id,
            len(owned),
            ", ".join(owned),
        )
    logger.info("Removed the %d membership(s) of deleted user %s", len(memberships), user_id)
