"""Space ids: UUIDv7 (RFC 9562), so GSI1's ``SPACE#<id>`` sort keys list a user's spaces in creation order."""

import re
import secrets
import time
import uuid

# Ids the earlier system wrote are opaque strings: anything we build a key from is held to this shape first.
SPACE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_space_id() -> str:
    unix_ms = time.time_ns() // 1_000_000
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= secrets.randbits(12) << 64
    value |= 0b10 << 62  # RFC 9562 variant
    value |= secrets.randbits(62)
    return str(uuid.UUID(int=value))


def is_valid_space_id(space_id: object) -> bool:
    return isinstance(space_id, str) and SPACE_ID_RE.fullmatch(space_id) is not None
