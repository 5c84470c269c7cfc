"""``audit_invite_codes``: each kind of inconsistency found, reported and repaired."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from invites import services as engine
from invites.audit import FindingKind, audit_invite_codes
from invites.services import space_create
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


def claim(code: str, space_id: str) -> None:
    CodeClaim.build(code, space_id, "2024-01-15T10:30:00").save()


# --- finding -------------------------------------------------------------------------------


def test_a_consistent_table_passes_with_status_zero(dynamo_table: object) -> None:
    space_create(owner_id="o", name="Fine")

    status, lines = run_audit()

    assert status == 0
    assert "INFO - No problems found" in lines
    assert "INFO - Scanned 5 items: 1 spaces" in lines  # the space, its claim, mapping and owner, the table flag


def test_a_space_without_a_code_is_found(dynamo_table: object) -> None:
    space_id = put_legacy_space(name="Bare")

    report = audit_invite_codes(repair=False, grace_seconds=0)

    assert report.spaces_without_code == [space_id]
    assert report.problem_count == 1


def test_a_code_without_a_mapping_is_found(dynamo_table: object) -> None:
    space_id = put_legacy_space(invite_code="ABCD2345", with_mapping=False)
    claim("ABCD2345", space_id)

    report = audit_invite_codes(repair=False, grace_seconds=0)

    assert report.codes_without_mapping == [(space_id, "ABCD2345")]
    assert report.problem_count == 1


def test_a_mapping_whose_space_is_missing_is_found(dynamo_table: object) -> None:
    put_legacy_mapping(code="GONE2345", space_id="deleted")

    report = audit_invite_codes(repair=False, grace_seconds=0)

    assert report.mappings_with_missing_space == [("GONE2345", "deleted")]
    assert report.problem_count == 1


def test_a_stale_mapping_is_found(dynamo_table: object) -> None:
    space = space_create(owner_id="o", name="Moved on")
    put_legacy_mapping(code="OLDC2345", space_id=space.id)

    report = audit_invite_codes(repair=False, grace_seconds=0)

    assert report.stale_mappings == [("OLDC2345", space.id, space.invite_code)]
    assert report.problem_count == 1


def test_a_code_held_by_two_spaces_is_found(dynamo_table: object) -> None:
    first = put_legacy_space(invite_code="dupe2345")
    second = put_legacy_space(invite_code="DUPE2345")
    claim("dupe2345", first)

    report = audit_invite_codes(repair=False, grace_seconds=0)

    assert [(code.upper(), holders) for code, holders in report.duplicate_codes] == [
        ("DUPE2345", sorted([first, second]))
    ]


def test_a_held_code_without_a_claim_is_found(legacy_table: object) -> None:
    space_id = put_legacy_space(invite_code="a3f9c2d4")

    report = audit_invite_codes(repair=False, grace_seconds=0)

    assert report.missing_claims == [(space_id, "a3f9c2d4")]


def test_a_guide_layout_regeneration_in_flight_is_not_a_problem(dynamo_table: object) -> None:
    """Another writer switched the space and has not yet moved the mappings."""
    space_id = put_legacy_space(invite_code="OLDC2345")
    Space(*Space.key(space_id)).update(actions=[Space.invite_code.set("NEWC2345"), Space.updated_at.set(utc_now_iso())])

    patient = audit_invite_codes(repair=False)
    assert (patient.stale_mappings, patient.codes_without_mapping) == ([], [])
    strict = audit_invite_codes(repair=False, grace_seconds=0)
    assert strict.stale_mappings == [("OLDC2345", space_id, "NEWC2345")]
    assert strict.codes_without_mapping == [(space_id, "NEWC2345")]


def test_the_command_lists_every_kind_and_exits_one_without_repair(dynamo_table: object) -> None:
    put_legacy_space(space_id="bare", name="Bare")
    put_legacy_mapping(code="GONE2345", space_id="deleted")

    status, lines = run_audit()

    assert status == 1
    assert "INFO - Spaces without an invite code: 1" in lines
    assert "INFO -   - space bare" in lines
    assert "INFO - Codes without an INVITE# mapping: 0" in lines
    assert "INFO - Mappings whose space is missing: 1" in lines
    assert "INFO -   - mapping 'GONE2345' -> missing space deleted" in lines
    assert "INFO - Stale mappings (the space holds another code): 0" in lines
    assert "INFO - Codes held by two spaces: 0" in lines
    assert "INFO - Held codes without a claim: 0" in lines
    assert "INFO - Problems found: 2" in lines


def test_the_command_lists_each_finding_on_its_own_line(dynamo_table: object) -> None:
    ids = make_every_problem()
    first, second = sorted([ids["first"], ids["second"]])

    _status, lines = run_audit()

    start = lines.index("INFO - Spaces without an invite code: 1")
    listed = lines[start : start + 12]
    # The code as its first holder in scan order holds it: either case.
    listed[9] = listed[9].replace("DUPE2345", "dupe2345")
    assert listed == [
        "INFO - Spaces without an invite code: 1",
        f"INFO -   - space {ids['bare']}",
        "INFO - Codes without an INVITE# mapping: 1",
        f"INFO -   - space {ids['unmapped']} code 'ABCD2345'",
        "INFO - Mappings whose space is missing: 1",
        "INFO -   - mapping 'GONE2345' -> missing space deleted",
        "INFO - Stale mappings (the space holds another code): 1",
        f"INFO -   - mapping 'OLDC2345' -> space {ids['moved']}, which holds '{stored_code(ids['moved'])}'",
        "INFO - Codes held by two spaces: 1",
        f"INFO -   - code 'dupe2345' held by {first}, {second}",
        "INFO - Held codes without a claim: 1",
        f"INFO -   - space {ids['unclaimed']} code 'a3f9c2d4'",
    ]
    assert "INFO - Problems found: 6" in lines


def test_each_kind_says_what_it_means_and_what_the_repair_does() -> None:
    for kind in FindingKind:
        assert kind.label and kind.meaning and kind.repair, kind
    assert [kind for kind in FindingKind if kind.harmful] == [
        FindingKind.SPACES_WITHOUT_CODE,
        FindingKind.CODES_WITHOUT_MAPPING,
        FindingKind.DUPLICATE_CODES,
        FindingKind.POLICIES_WITHOUT_CODE,
    ]
    assert [kind for kind in FindingKind if kind.warning] == [FindingKind.LEGACY_FORMAT_CODES]


# --- repairing -----------------------------------------------------------------------------------


def make_every_problem() -> dict[str, str]:
    bare = put_legacy_space(name="Bare")
    unmapped = put_legacy_space(invite_code="ABCD2345", with_mapping=False)
    claim("ABCD2345", unmapped)
    put_legacy_mapping(code="GONE2345", space_id="deleted")
    moved = space_create(owner_id="o", name="Moved on")
    put_legacy_mapping(code="OLDC2345", space_id=moved.id)
    first = put_legacy_space(invite_code="dupe2345")
    second = put_legacy_space(invite_code="DUPE2345")
    claim("dupe2345", first)
    unclaimed = put_legacy_space(invite_code="a3f9c2d4")
    return {
        "bare": bare,
        "unmapped": unmapped,
        "moved": moved.id,
        "first": first,
        "second": second,
        "unclaimed": unclaimed,
    }


def test_repair_fixes_every_kind_and_the_next_audit_is_clean(legacy_table: object) -> None:
    ids = make_every_problem()
    assert invariant_violations() != []

    status, lines = run_audit("--repair")

    assert status == 0
    assert "INFO - *** REPAIR COMPLETE ***" in lines
    assert "INFO - Every existing invite code is now recorded" in lines
    assert invariant_violations(require_codes=True) == []
    status_after, lines_after = run_audit()
    assert status_after == 0
    assert "INFO - No problems found" in lines_after
    # The rightful holder keeps its code, the other holder got a new one.
    assert stored_code(ids["first"]) == "dupe2345"
    assert stored_code(ids["second"]) != "DUPE2345"
    assert resolves_to("dupe2345") == ids["first"]
    assert stored_code(ids["unclaimed"]) == "a3f9c2d4"
    assert resolves_to("a3f9c2d4") == ids["unclaimed"]
    assert stored_code(ids["bare"]) is not None
    assert engine.legacy_codes_recorded() is True


def test_repair_reports_what_it_fixed(dynamo_table: object) -> None:
    make_every_problem()

    report = audit_invite_codes(repair=True, grace_seconds=0)

    assert report.repaired == {
        "missing_claims": 1,
        "duplicate_codes": 1,
        "spaces_without_code": 1,
        "codes_without_mapping": 1,
        "mappings_with_missing_space": 1,
        "stale_mappings": 1,
    }
    assert report.repair_failures == []


def test_repair_never_deletes_a_mapping_that_became_current_after_the_scan(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = space_create(owner_id="o", name="Live")
    put_legacy_mapping(code="NEXT2345", space_id=space.id)
    from invites.audit import scan

    real_snapshot = scan.take_snapshot

    def snapshot_then_switch(grace_seconds: float, progress: object = None) -> scan.Snapshot:
        taken = real_snapshot(grace_seconds, progress)
        # After the scan, the space switches to the code of that mapping.
        Space.get(*Space.key(space.id)).update(actions=[Space.invite_code.set("NEXT2345")])
        return taken

    monkeypatch.setattr(scan, "take_snapshot", snapshot_then_switch)

    audit_invite_codes(repair=True, grace_seconds=0)

    assert InviteMapping.count("INVITE#NEXT2345") == 1


def test_the_audit_of_an_unreachable_endpoint_exits_with_status_two(dynamodb_unreachable: object) -> None:
    with pytest.raises(CommandError) as raised:
        call_command("audit_invite_codes", stdout=io.StringIO())

    assert raised.value.returncode == 2
    assert "cannot be reached" in str(raised.value)


def test_a_regeneration_leaves_nothing_in_flight_for_the_audit(dynamo_table: object) -> None:
    space = space_create(owner_id="o", name="Just regenerated")

    engine.invite_code_regenerate(space_id=space.id)

    assert audit_invite_codes(repair=False, grace_seconds=0).clean


def test_the_repair_writes_a_missing_mapping_of_a_claimed_code(dynamo_table: object) -> None:
    space_id = put_legacy_space(invite_code="ABCD2345", with_mapping=False)
    claim("ABCD2345", space_id)

    report = audit_invite_codes(repair=True, grace_seconds=0)

    assert report.repaired == {"codes_without_mapping": 1}
    assert report.repair_failures == []
    assert InviteMapping.count("INVITE#ABCD2345") == 1


# --- invite policies ------------------------------------------------------------------------------


def put_stray_policy(space_id: str) -> None:
    """Policy attributes on a space without a code, as another writer may leave them."""
    Space(*Space.key(space_id)).update(
        actions=[Space.invite_paused.set(True), Space.invite_max_uses.set(5), Space.invite_uses.set(5)]
    )


def test_codes_with_a_policy_are_no_problem(dynamo_table: object) -> None:
    space = space_create(owner_id="o", name="Limited")
    engine.invite_code_policy_update(space_id=space.id, paused=True, max_uses=3, expires_in=3600)

    report = audit_invite_codes(repair=False, grace_seconds=0)

    assert report.clean and report.warning_count == 0, report.counts()


def test_a_space_without_a_code_that_carries_a_policy_is_a_harmful_finding(dynamo_table: object) -> None:
    space_id = put_legacy_space(name="Bare but paused")
    put_stray_policy(space_id)

    report = audit_invite_codes(repair=False, grace_seconds=0)

    assert report.policies_without_code == [(space_id, ("invite_max_uses", "invite_uses", "invite_paused"))]
    assert report.spaces_without_code == [space_id]
    assert report.problem_count == 2
    assert FindingKind.POLICIES_WITHOUT_CODE.harmful


def test_the_command_lists_a_policy_on_a_space_without_a_code(dynamo_table: object) -> None:
    space_id = put_legacy_space(name="Bare but paused")
    put_stray_policy(space_id)

    status, lines = run_audit()

    assert status == 1
    assert "INFO - Invite policies on spaces without a code: 1" in lines
    assert f"INFO -   - space {space_id} (invite_max_uses, invite_uses, invite_paused)" in lines


def test_the_repair_clears_a_stray_policy_before_giving_the_space_a_working_code(dynamo_table: object) -> None:
    space_id = put_legacy_space(name="Bare but paused")
    put_stray_policy(space_id)

    report = audit_invite_codes(repair=True, grace_seconds=0)

    assert report.repaired == {"policies_without_code": 1, "spaces_without_code": 1}
    space = Space.get(*Space.key(space_id), consistent_read=True)
    assert space.invite_code is not None
    assert (space.invite_paused, space.invite_max_uses, space.invite_uses) == (None, None, None)
    joined = engine.space_join_with_code(typed_code=space.invite_code, user_id="newcomer")
    assert joined.id == space_id  # the new code is not born paused or used up
    assert audit_invite_codes(repair=False, grace_seconds=0).clean


def test_the_repair_leaves_the_policy_of_a_space_that_got_a_code_after_the_scan(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    space_id = put_legacy_space(name="Bare, then coded")
    put_stray_policy(space_id)
    from invites.audit import scan

    real_snapshot = scan.take_snapshot

    def snapshot_then_code(grace_seconds: float, progress: object = None) -> scan.Snapshot:
        taken = real_snapshot(grace_seconds, progress)
        # Another writer gives the space a code (and leaves its policy): the repair must not touch it.
        Space(*Space.key(space_id)).update(actions=[Space.invite_code.set("LATE2345")])
        return taken

    monkeypatch.setattr(scan, "take_snapshot", snapshot_then_code)

    report = audit_invite_codes(repair=True, grace_seconds=0)

    assert report.repaired.get("policies_without_code", 0) == 0
    assert Space.get(*Space.key(space_id), consistent_read=True).invite_max_uses == 5


# --- legacy-format codes: a warning -----------------------------------------------------------------


def put_recorded_legacy_code(code: str) -> str:
    """A space holding a legacy-format code with its mapping and claim: consistent, only weak."""
    space_id = put_legacy_space(name="Old code", invite_code=code)
    claim(code, space_id)
    return space_id


@pytest.mark.parametrize("code", ["a3f9c2d4", "Xb3_k-9Q", "ABCD234"])
def test_a_legacy_format_code_is_a_warning_not_a_problem(dynamo_table: object, code: str) -> None:
    space_id = put_recorded_legacy_code(code)

    report = audit_invite_codes(repair=False, grace_seconds=0)

    assert report.legacy_format_codes == [(space_id, code)]
    assert (report.clean, report.problem_count, report.warning_count) == (True, 0, 1)
    assert FindingKind.LEGACY_FORMAT_CODES.warning and not FindingKind.LEGACY_FORMAT_CODES.harmful


def test_new_format_codes_are_no_warning(dynamo_table: object) -> None:
    space_create(owner_id="o", name="Current")

    assert audit_invite_codes(repair=False, grace_seconds=0).legacy_format_codes == []


def test_the_command_lists_legacy_format_codes_and_still_exits_zero(dynamo_table: object) -> None:
    space_id = put_recorded_legacy_code("a3f9c2d4")

    status, lines = run_audit()

    assert status == 0
    assert "INFO - No problems found" in lines
    assert "INFO - Legacy-format codes (warning): 1" in lines
    assert f"INFO -   - space {space_id} code 'a3f9c2d4'" in lines
    (advice,) = [line for line in lines if line.startswith("WARNING - Legacy-format codes")]
    assert "not counted as problems" in advice
    assert "backfill_invite_codes --replace-legacy-codes" in advice


def test_the_repair_leaves_legacy_format_codes_alone(dynamo_table: object) -> None:
    space_id = put_recorded_legacy_code("a3f9c2d4")

    status, _lines = run_audit("--repair")

    assert status == 0
    assert stored_code(space_id) == "a3f9c2d4"
    assert "--replace-legacy-codes" in FindingKind.LEGACY_FORMAT_CODES.repair


# --- the ending and the exit status -----------------------------------------------------------------


def test_found_problems_end_with_a_summary_and_exit_one_without_a_command_error(dynamo_table: object) -> None:
    make_every_problem()
    out = io.StringIO()

    with pytest.raises(SystemExit) as exited:  # not CommandError: no "CommandError: ..." line
        call_command("audit_invite_codes", "--grace-seconds", "0", stdout=out)

    assert exited.value.code == 1
    last = TIMESTAMP.sub("", out.getvalue().splitlines()[-1])
    assert last == "WARNING - 6 problems found; run audit_invite_codes --repair to fix them"


def test_one_problem_is_said_in_the_singular(dynamo_table: object) -> None:
    put_legacy_space(name="Bare")

    status, lines = run_audit()

    assert status == 1
    assert lines[-1] == "WARNING - 1 problem found; run audit_invite_codes --repair to fix them"


def test_a_failed_repair_exits_one_and_says_so(dynamo_table: object, failing_dynamo_operation) -> None:
    space_id = put_legacy_space(invite_code="ABCD2345", with_mapping=False)
    claim("ABCD2345", space_id)
    failing_dynamo_operation("TransactWriteItems", "ValidationException", "refused")

    status, lines = run_audit("--repair")

    assert status == 1
    assert any(line.startswith("ERROR - Repair failed - Codes without an INVITE# mapping") for line in lines)
    assert lines[-1] == "ERROR - 1 repair failed (see above); run audit_invite_codes --repair again"


def test_the_help_lists_the_exit_statuses() -> None:
    from invites.management.commands.audit_invite_codes import Command

    text = Command().create_parser("manage.py", "audit_invite_codes").format_help()

    statuses = text[text.index("exit status:") :].splitlines()
    assert statuses[1].startswith("  0  no problem found, or every problem found was repaired; warnings")
    assert statuses[2].strip() == "listed but never fail the audit"
    assert statuses[3].startswith("  1  problems found (without --repair), or a repair failed")
    assert statuses[5].startswith("  2  unusable arguments, or DynamoDB or the table cannot be reached")


@pytest.mark.parametrize("seconds", ["-1", "nan", "inf"])
def test_an_unusable_grace_period_exits_with_status_two(seconds: str) -> None:
    with pytest.raises(CommandError) as raised:
        call_command("audit_invite_codes", "--grace-seconds", seconds, stdout=io.StringIO())

    assert raised.value.returncode == 2
