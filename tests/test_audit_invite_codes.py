"""``audit_invite_codes``: each kind of finding found, reported and repaired."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from invites import audit, joining
from invites import services as engine
from invites.audit import KINDS, Kind, audit_invite_codes
from invites.services import Status, space_create
from spaces import dynamodb
from spaces.models import CodeClaim, InviteMapping, Space, utc_now_iso
from tests.invariants import invariant_violations, resolves_to, stored_code
from tests.legacy import put_legacy_mapping, put_legacy_space

pytestmark = pytest.mark.django_db

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - ")


def run_audit(*args: str) -> tuple[int, list[str]]:
    """The command's exit status and its output lines without their timestamps."""
    out = io.StringIO()
    try:
        call_command("audit_invite_codes", "--grace-seconds", "0", *args, stdout=out)
        status = 0
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    except CommandError as error:
        status = error.returncode
    return status, [TIMESTAMP.sub("", line) for line in out.getvalue().splitlines()]


def found(kind: Kind, grace_seconds: float = 0) -> list[str]:
    return [finding.describe() for finding in audit_invite_codes(repair=False, grace_seconds=grace_seconds).of(kind)]


def claim(code: str, space_id: str) -> None:
    CodeClaim.build(code, space_id, "2024-01-15T10:30:00").save()


# --- finding -------------------------------------------------------------------------------


def test_a_consistent_table_passes_with_status_zero(dynamo_table: object) -> None:
    space_create(owner_id="o", name="Fine")

    status, lines = run_audit()

    assert status == 0
    assert "INFO - No problems found" in lines
    assert "INFO - Scanned 5 items: 1 spaces" in lines  # the space, its claim, mapping and owner, the table flag


def test_each_kind_is_found_and_named_by_space_name_and_id(legacy_table: object) -> None:
    ids = make_every_finding()
    first, second, moved = ids["first"], ids["second"], ids["moved"]

    assert found(Kind.SPACES_WITHOUT_CODE) == [f"space 'Bare' (ID: {ids['bare']})"]
    assert found(Kind.CODES_WITHOUT_MAPPING) == [f"space 'Unmapped' (ID: {ids['unmapped']}) code 'ABCD2345'"]
    assert found(Kind.DUPLICATE_CODES) == [f"space 'Second' (ID: {second}) code 'DUPE2345', also held by space {first}"]
    assert found(Kind.MAPPINGS_WITH_MISSING_SPACE) == ["mapping 'GONE2345' -> missing space (ID: deleted)"]
    assert found(Kind.STALE_MAPPINGS) == [
        f"mapping 'OLDC2345' -> space 'Moved on' (ID: {moved}), which holds '{stored_code(moved)}'"
    ]
    assert found(Kind.MISSING_CLAIMS) == [f"space 'Unclaimed' (ID: {ids['unclaimed']}) code 'a3f9c2d4'"]
    assert sorted(found(Kind.LEGACY_FORMAT_CODES)) == sorted(
        [f"space 'Unclaimed' (ID: {ids['unclaimed']}) code 'a3f9c2d4'", f"space 'First' (ID: {first}) code 'dupe2345'"]
    )


def test_only_harmful_findings_are_problems() -> None:
    assert [kind for kind in Kind if KINDS[kind].harmful] == [
        Kind.SPACES_WITHOUT_CODE,
        Kind.POLICIES_WITHOUT_CODE,
        Kind.CODES_WITHOUT_MAPPING,
        Kind.DUPLICATE_CODES,
    ]
    for info in KINDS.values():
        assert info.label and info.meaning and info.repair


def test_a_code_whose_claim_belongs_to_another_space_is_a_duplicate(dynamo_table: object) -> None:
    holder = put_legacy_space(invite_code="LONE2345", name="Holder")
    claim("LONE2345", "gone")

    assert found(Kind.DUPLICATE_CODES) == [f"space 'Holder' (ID: {holder}) code 'LONE2345', claimed by space gone"]


def test_a_guide_layout_regeneration_in_flight_is_not_a_finding(dynamo_table: object) -> None:
    """Another writer switched the space and has not yet moved the mappings."""
    space_id = put_legacy_space(invite_code="OLDC2345", name="Switching")
    Space(*Space.key(space_id)).update(actions=[Space.invite_code.set("NEWC2345"), Space.updated_at.set(utc_now_iso())])

    assert found(Kind.STALE_MAPPINGS, grace_seconds=60) == found(Kind.CODES_WITHOUT_MAPPING, grace_seconds=60) == []
    assert found(Kind.STALE_MAPPINGS) == [
        f"mapping 'OLDC2345' -> space 'Switching' (ID: {space_id}), which holds 'NEWC2345'"
    ]
    assert found(Kind.CODES_WITHOUT_MAPPING) == [f"space 'Switching' (ID: {space_id}) code 'NEWC2345'"]


def test_a_regeneration_leaves_nothing_in_flight_for_the_audit(dynamo_table: object) -> None:
    space = space_create(owner_id="o", name="Just regenerated")

    engine.invite_code_regenerate(space_id=space.id)

    assert audit_invite_codes(repair=False, grace_seconds=0).clean


def test_the_command_lists_problems_then_warnings_and_exits_one(legacy_table: object) -> None:
    ids = make_every_finding()

    status, lines = run_audit()

    assert status == 1
    start = lines.index("INFO - Spaces without an invite code: 1")
    assert lines[start : start + 4] == [
        "INFO - Spaces without an invite code: 1",
        f"INFO -   - space 'Bare' (ID: {ids['bare']})",
        "INFO - Invite policies on spaces without a code: 0",
        "INFO - Codes without an INVITE# mapping: 1",
    ]
    assert "INFO - Mappings whose space is missing (warning): 1" in lines
    assert "INFO - Problems found: 3" in lines
    stale = "WARNING - Stale mappings (the space holds another code): 1, not counted as problems; --repair deletes"
    assert any(line.startswith(stale) for line in lines)
    assert lines[-1] == "WARNING - 3 problems found; run audit_invite_codes --repair to fix them"


def test_harmless_findings_alone_are_warnings_with_status_zero(dynamo_table: object) -> None:
    put_legacy_mapping(code="GONE2345", space_id="deleted")

    status, lines = run_audit()

    assert status == 0
    assert "INFO - No problems found" in lines
    assert "INFO -   - mapping 'GONE2345' -> missing space (ID: deleted)" in lines
    assert lines[-1].startswith("WARNING - Mappings whose space is missing: 1, not counted as problems")


def test_one_problem_is_said_in_the_singular(dynamo_table: object) -> None:
    put_legacy_space(name="Bare")

    status, lines = run_audit()

    assert status == 1
    assert lines[-1] == "WARNING - 1 problem found; run audit_invite_codes --repair to fix them"


@pytest.mark.parametrize(("verbosity", "listed"), [("0", 0), ("1", 20), ("2", 21)])
def test_the_verbosity_sets_how_many_findings_are_listed(dynamo_table: object, verbosity: str, listed: int) -> None:
    for _ in range(21):
        put_legacy_space(name="Bare")

    _status, lines = run_audit("-v", verbosity)

    assert sum(line.startswith("INFO -   - space 'Bare'") for line in lines) == listed
    assert ("INFO -   ... and 1 more (-v 2 lists all)" in lines) is (verbosity == "1")


# --- repairing -----------------------------------------------------------------------------------


def make_every_finding() -> dict[str, str]:
    ids = {"bare": put_legacy_space(name="Bare")}
    ids["unmapped"] = put_legacy_space(name="Unmapped", invite_code="ABCD2345", with_mapping=False)
    claim("ABCD2345", ids["unmapped"])
    put_legacy_mapping(code="GONE2345", space_id="deleted")
    ids["moved"] = space_create(owner_id="o", name="Moved on").id
    put_legacy_mapping(code="OLDC2345", space_id=ids["moved"])
    ids["first"] = put_legacy_space(name="First", invite_code="dupe2345")
    ids["second"] = put_legacy_space(name="Second", invite_code="DUPE2345")
    claim("dupe2345", ids["first"])
    ids["unclaimed"] = put_legacy_space(name="Unclaimed", invite_code="a3f9c2d4")
    return ids


def test_repair_fixes_every_kind_and_the_next_audit_is_clean(legacy_table: object) -> None:
    ids = make_every_finding()
    assert invariant_violations() != []

    status, lines = run_audit("--repair")

    assert status == 0
    assert "INFO - *** REPAIR COMPLETE ***" in lines
    assert "INFO - Every existing invite code is now recorded" in lines
    assert invariant_violations(require_codes=True) == []
    after = audit_invite_codes(repair=False, grace_seconds=0)
    assert after.clean and {finding.kind for finding in after.findings} == {Kind.LEGACY_FORMAT_CODES}
    # The rightful holder keeps its code, the other holder got a new one.
    assert (stored_code(ids["first"]), resolves_to("dupe2345")) == ("dupe2345", ids["first"])
    assert stored_code(ids["second"]) != "DUPE2345"
    assert (stored_code(ids["unclaimed"]), resolves_to("a3f9c2d4")) == ("a3f9c2d4", ids["unclaimed"])
    assert stored_code(ids["bare"]) is not None
    assert engine.legacy_codes_recorded() is True


def test_repair_reports_what_it_fixed_and_each_code_it_changed(dynamo_table: object) -> None:
    ids = make_every_finding()

    report = audit_invite_codes(repair=True, grace_seconds=0)

    assert report.repaired == {
        Kind.MISSING_CLAIMS: 1,
        Kind.DUPLICATE_CODES: 1,
        Kind.SPACES_WITHOUT_CODE: 1,
        Kind.CODES_WITHOUT_MAPPING: 1,
        Kind.MAPPINGS_WITH_MISSING_SPACE: 1,
        Kind.STALE_MAPPINGS: 1,
    }
    assert report.repair_failures == []
    changed = {(c.space_id, c.name, c.status, c.old_code, c.new_code) for c in report.changes}
    assert changed == {
        (ids["second"], "Second", Status.UPDATED, "DUPE2345", stored_code(ids["second"])),
        (ids["bare"], "Bare", Status.UPDATED, None, stored_code(ids["bare"])),
    }


def test_repair_of_a_code_two_spaces_hold_unclaimed_leaves_one_holder(legacy_table: object) -> None:
    holders = {put_legacy_space(name="A", invite_code="SAME2345"), put_legacy_space(name="B", invite_code="SAME2345")}
    assert len(found(Kind.DUPLICATE_CODES)) == 1 and len(found(Kind.MISSING_CLAIMS)) == 2

    report = audit_invite_codes(repair=True, grace_seconds=0)

    (changed,) = report.changes
    assert changed.space_id in holders and changed.old_code == "SAME2345"
    assert [stored_code(space_id) == "SAME2345" for space_id in sorted(holders)].count(True) == 1
    assert audit_invite_codes(repair=False, grace_seconds=0).findings == []


def test_repair_never_deletes_a_mapping_that_became_current_after_the_scan(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = space_create(owner_id="o", name="Live")
    put_legacy_mapping(code="NEXT2345", space_id=space.id)
    after_the_scan(
        monkeypatch, lambda: Space.get(*Space.key(space.id)).update(actions=[Space.invite_code.set("NEXT2345")])
    )

    audit_invite_codes(repair=True, grace_seconds=0)

    assert InviteMapping.count("INVITE#NEXT2345") == 1


def after_the_scan(monkeypatch: pytest.MonkeyPatch, change) -> None:
    """Another writer makes ``change`` once the audit's scan is over, before its repair."""
    real_take = audit._Snapshot.take

    def take_then_change(snapshot: audit._Snapshot, progress) -> None:
        real_take(snapshot, progress)
        change()

    monkeypatch.setattr(audit._Snapshot, "take", take_then_change)


def test_the_repair_writes_a_missing_mapping_of_a_claimed_code(dynamo_table: object) -> None:
    space_id = put_legacy_space(invite_code="ABCD2345", with_mapping=False)
    claim("ABCD2345", space_id)

    report = audit_invite_codes(repair=True, grace_seconds=0)

    assert (report.repaired, report.repair_failures) == ({Kind.CODES_WITHOUT_MAPPING: 1}, [])
    assert InviteMapping.count("INVITE#ABCD2345") == 1


def test_a_failed_repair_exits_one_and_says_so(dynamo_table: object, failing_dynamo_operation) -> None:
    space_id = put_legacy_space(invite_code="ABCD2345", with_mapping=False, name="Unmapped")
    claim("ABCD2345", space_id)
    failing_dynamo_operation("TransactWriteItems", "ValidationException", "refused")

    status, lines = run_audit("--repair")

    assert status == 1
    failed = (
        f"ERROR - Repair failed - Codes without an INVITE# mapping (space 'Unmapped' (ID: {space_id}) code 'ABCD2345')"
    )
    assert any(line.startswith(failed) and "refused" in line for line in lines)
    assert lines[-1] == "ERROR - 1 repair failed (see above); run audit_invite_codes --repair again"
    assert "INFO - Every existing invite code is now recorded" not in lines


def test_the_audit_of_an_unreachable_endpoint_exits_with_status_two(dynamodb_unreachable: object) -> None:
    with pytest.raises(CommandError) as raised:
        call_command("audit_invite_codes", "--repair", stdout=io.StringIO())

    assert raised.value.returncode == 2
    assert "cannot be reached" in str(raised.value)


# --- invite policies ------------------------------------------------------------------------------


def put_stray_policy(space_id: str) -> None:
    """Policy attributes on a space without a code, as another writer may leave them."""
    Space(*Space.key(space_id)).update(
        actions=[Space.invite_paused.set(True), Space.invite_max_uses.set(5), Space.invite_uses.set(5)]
    )


def test_codes_with_a_policy_are_no_finding(dynamo_table: object) -> None:
    space = space_create(owner_id="o", name="Limited")
    engine.invite_code_policy_update(space_id=space.id, paused=True, max_uses=3, expires_in=3600)

    assert audit_invite_codes(repair=False, grace_seconds=0).findings == []


def test_a_space_without_a_code_that_carries_a_policy_is_a_problem(dynamo_table: object) -> None:
    space_id = put_legacy_space(name="Bare but paused")
    put_stray_policy(space_id)

    status, lines = run_audit()

    assert status == 1
    assert "INFO - Invite policies on spaces without a code: 1" in lines
    assert f"INFO -   - space 'Bare but paused' (ID: {space_id}) (invite_max_uses, invite_uses, invite_paused)" in lines
    assert "INFO - Problems found: 2" in lines  # and the space without a code


def test_the_repair_clears_a_stray_policy_before_giving_the_space_a_working_code(dynamo_table: object) -> None:
    space_id = put_legacy_space(name="Bare but paused")
    put_stray_policy(space_id)

    report = audit_invite_codes(repair=True, grace_seconds=0)

    assert report.repaired == {Kind.POLICIES_WITHOUT_CODE: 1, Kind.SPACES_WITHOUT_CODE: 1}
    space = Space.get(*Space.key(space_id), consistent_read=True)
    assert (space.invite_paused, space.invite_max_uses, space.invite_uses) == (None, None, None)
    joined = joining.space_join_with_code(typed_code=space.invite_code, user_id="newcomer")
    assert joined.id == space_id  # the new code is not born paused or used up
    assert audit_invite_codes(repair=False, grace_seconds=0).clean


def test_the_repair_leaves_the_policy_of_a_space_that_got_a_code_after_the_scan(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    space_id = put_legacy_space(name="Bare, then coded")
    put_stray_policy(space_id)
    # Another writer gives the space a code (and leaves its policy): the repair must not touch it.
    after_the_scan(monkeypatch, lambda: Space(*Space.key(space_id)).update(actions=[Space.invite_code.set("LATE2345")]))

    report = audit_invite_codes(repair=True, grace_seconds=0)

    assert Kind.POLICIES_WITHOUT_CODE not in report.repaired
    assert Space.get(*Space.key(space_id), consistent_read=True).invite_max_uses == 5


# --- legacy-format codes: a warning the repair leaves alone ---------------------------------------


@pytest.mark.parametrize("code", ["a3f9c2d4", "Xb3_k-9Q", "ABCD234"])
def test_a_legacy_format_code_is_a_warning_not_a_problem(dynamo_table: object, code: str) -> None:
    space_id = put_legacy_space(name="Old code", invite_code=code)
    claim(code, space_id)

    report = audit_invite_codes(repair=False, grace_seconds=0)

    assert [(f.kind, f.space_id, f.code) for f in report.warnings] == [(Kind.LEGACY_FORMAT_CODES, space_id, code)]
    assert (report.clean, report.problems) == (True, [])


def test_the_repair_leaves_legacy_format_codes_alone_and_says_what_replaces_them(dynamo_table: object) -> None:
    space_id = put_legacy_space(name="Old code", invite_code="a3f9c2d4")
    claim("a3f9c2d4", space_id)

    status, lines = run_audit("--repair")

    assert status == 0
    assert stored_code(space_id) == "a3f9c2d4"
    assert f"INFO -   - space 'Old code' (ID: {space_id}) code 'a3f9c2d4'" in lines
    assert lines[-1].startswith("WARNING - Legacy-format codes: 1, not counted as problems; --repair leaves them alone")
    assert "backfill_invite_codes --replace-legacy-codes" in lines[-1]


# --- the command's arguments and help ------------------------------------------------------------------


def test_the_help_lists_the_exit_statuses_and_the_flag_the_repair_sets() -> None:
    from invites.management.commands.audit_invite_codes import Command

    text = Command().create_parser("manage.py", "audit_invite_codes").format_help()

    statuses = text[text.index("exit status:") :].splitlines()
    assert statuses[1].startswith("  0  no problem found, or every finding was repaired")
    assert statuses[3].startswith("  1  problems (harmful findings) found without --repair, or a repair failed")
    assert statuses[4].startswith("  2  unusable arguments, or DynamoDB or the table cannot be reached")
    assert "the one path besides table creation that sets this flag" in " ".join(text.split())


@pytest.mark.parametrize("seconds", ["-1", "nan", "inf"])
def test_an_unusable_grace_period_exits_with_status_two(seconds: str) -> None:
    with pytest.raises(CommandError) as raised:
        call_command("audit_invite_codes", "--grace-seconds", seconds, stdout=io.StringIO())

    assert raised.value.returncode == 2


def test_progress_items_of_earlier_backfill_runs_are_left_alone(dynamo_table: object) -> None:
    from spaces.dynamodb import botocore_client, table_name

    run_items = [
        {"PK": {"S": "BACKFILLRUN#nightly"}, "SK": {"S": sk}, "done": {"BOOL": True}} for sk in ("RUN", "SEGMENT#0")
    ]
    for item in run_items:
        botocore_client().put_item(TableName=table_name(), Item=item)
    space_create(owner_id="owner", name="Fine")

    report = audit_invite_codes(repair=True, grace_seconds=0)

    assert report.findings == []
    assert [
        botocore_client().get_item(TableName=table_name(), Key={k: item[k] for k in ("PK", "SK")})["Item"]
        for item in run_items
    ] == run_items


@pytest.mark.parametrize("split", [1, 3])
def test_the_scan_reads_pages_of_at_most_the_page_size(
    dynamo_table: object, monkeypatch, settings, client_events, split
) -> None:
    """A Scan without a Limit makes DynamoDB Local read the rest of the table for every page; split into
    segments read in turn, it still reads every item once (benchmarks/scale.py)."""
    monkeypatch.setattr(dynamodb, "SCAN_PAGE_SIZE", 4)
    settings.DYNAMODB_SCAN_SPLIT = split
    segments: set[tuple[int, int]] = set()
    client_events.register(
        "before-parameter-build.dynamodb.Scan",
        lambda params, **_: segments.add((params["Segment"], params["TotalSegments"])),
    )
    for n in range(3):
        space_create(owner_id=f"o{n}", name=f"Space {n}")
    pages: list[int] = []

    report = audit_invite_codes(repair=False, grace_seconds=0, progress=lambda items, last: pages.append(items))

    assert (report.total_spaces, report.total_items) == (3, 13)  # 4 items a space and the table flag
    assert max(pages) == 4
    assert sum(pages) == 13
    assert segments == {(n, split) for n in range(split)}
