"""Every key format of the single table, in one place (the README's item layout lists them). ``SPACE#``,
``MEMBER#`` and ``INVITE#`` are the earlier system's (the guide): tables it wrote must keep working, so they never
change. ``BLOCK#``, ``CODE#`` and ``TABLEFLAG#`` are ours."""

SPACE_PREFIX = "SPACE#"
MEMBER_PREFIX = "MEMBER#"
BLOCK_PREFIX = "BLOCK#"
USER_PREFIX = "USER#"
INVITE_PREFIX = "INVITE#"
CODE_PREFIX = "CODE#"
TABLE_FLAG_PREFIX = "TABLEFLAG#"

SPACE_METADATA_SK = "METADATA"
CODE_CLAIM_SK = "CLAIM"
TABLE_FLAG_SK = "FLAG"

GSI1_NAME = "GSI1"

# The table flag set once every code on the table has a claim (the invite engine reads it).
LEGACY_CODES_RECORDED_FLAG = "legacy-codes-recorded"


def space_pk(space_id: str) -> str:
    return f"{SPACE_PREFIX}{space_id}"


def member_sk(user_id: str) -> str:
    return f"{MEMBER_PREFIX}{user_id}"


def block_sk(user_id: str) -> str:
    return f"{BLOCK_PREFIX}{user_id}"


def user_gsi1pk(user_id: str) -> str:
    return f"{USER_PREFIX}{user_id}"


def invite_pk(code: str) -> str:
    return f"{INVITE_PREFIX}{code}"


def invite_sk(space_id: str) -> str:
    return f"{SPACE_PREFIX}{space_id}"


def code_claim_pk(code: str) -> str:
    # Claims are case-folded: codes are compared without regard to case, so a
    # legacy "a3f9c2d4" and a new "A3F9C2D4" are the same code.
    return f"{CODE_PREFIX}{code.upper()}"


def table_flag_pk(name: str) -> str:
    return f"{TABLE_FLAG_PREFIX}{name}"


def strip_prefix(value: str, prefix: str) -> str:
    if not value.startswith(prefix):
        raise ValueError(f"{value!r} does not start with {prefix!r}")
    return value[len(prefix) :]
