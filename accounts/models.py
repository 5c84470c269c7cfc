"""The user model: Django's, with a UUID primary key.

User ids are written into DynamoDB (``MEMBER#<user_id>``, ``USER#<user_id>``),
so they must never be reused, even if the relational database is recreated:
a random UUID guarantees that where an auto-increment integer would not.
"""

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
