class UserDeletionBlocked(Exception):
    """The user's data elsewhere (their memberships in DynamoDB) could not be removed: the user stays."""
