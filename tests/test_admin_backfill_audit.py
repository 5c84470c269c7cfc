"""The admin's backfill page (preview, capped run) and audit page (findings, repair)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.utils.html import escape

from invites.audit import KINDS, Kind
from invites.services import space_create
from spaces.models import InviteMapping
from tests.admin_pages import client_for, message_texts, url
from tests.invariants import invariant_violations, stored_code
from tests.legacy import put_legacy_mapping, put_legacy_space

pytestmark = pytest.mark.django_db


# --- backfill --------------------------------------------------------------------------------


def test_the_backfill_page_offers_a_preview_and_changes_nothing_on_open(
    dynamo_table: object, admin_users, dynamo_calls
) -> None:
    put_legacy_space(name="Bare")
    dynamo_calls.reset()

    response = client_for(admin_users["changer"]).get(url("backfill"))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Preview (dry run)" in content
    assert "python manage.py backfill_invite_codes --dry-run" in content and "docs/backfill.md" not in content
    assert dynamo_calls.total == 0


def test_the_preview_counts_and_lists_the_spaces_without_a_code_and_writes_nothing(
    dynamo_table: object, admin_users
) -> None:
    bare = {put_legacy_space(name=f"Bare {n}") for n in range(3)}
    space_create(owner_id="o", name="Coded")

    response = client_for(admin_users["changer"]).get(url("backfill"), {"preview": "1"})

    content = response.content.decode()
    assert "<strong>3</strong> spaces lack an invite code" in content
    assert all(space_id in content for space_id in bare)
    assert 'id="backfill-run"' in content
    assert all(stored_code(space_id) is None for space_id in bare)


def test_the_preview_says_at_least_when_it_stops_at_the_cap(dynamo_table: object, admin_users, settings) -> None:
    settings.ADMIN_BACKFILL_PER_REQUEST = 2
    for n in range(3):
        put_legacy_space(name=f"Bare {n}")

    response = client_for(admin_users["changer"]).get(url("backfill"), {"preview": "1"})

    assert "<strong>at least 2</strong> spaces lack an invite code" in response.content.decode()


def test_viewers_may_preview_but_get_no_run_button(dynamo_table: object, admin_users) -> None:
    put_legacy_space(name="Bare")

    response = client_for(admin_users["viewer"]).get(url("backfill"), {"preview": "1"})

    assert response.status_code == 200
    assert 'id="backfill-run"' not in response.content.decode()


def test_running_the_backfill_gives_every_space_a_code_and_logs_each(dynamo_table: object, admin_users) -> None:
    bare = [put_legacy_space(name=f"Bare {n}") for n in range(3)]
    coded = space_create(owner_id="o", name="Coded")

    response = client_for(admin_users["changer"]).post(url("backfill"))

    assert response.status_code == 200
    assert all(stored_code(space_id) for space_id in bare)
    assert stored_code(coded.id) == coded.invite_code
    texts = message_texts(response)
    assert texts[0].startswith("Gave invite codes to 3 spaces: “Bare ")
    assert "nothing: every space has a code" in response.content.decode()
    assert sorted(LogEntry.objects.values_list("object_id", flat=True)) == sorted(bare)
    assert invariant_violations(require_codes=True) == []


def test_a_backfill_run_stops_at_the_cap_and_says_what_remains(dynamo_table: object, admin_users, settings) -> None:
    settings.ADMIN_BACKFILL_PER_REQUEST = 2
    bare = [put_legacy_space(name=f"Bare {n}") for n in range(3)]

    response = client_for(admin_users["changer"]).post(url("backfill"))

    assert sum(1 for space_id in bare if stored_code(space_id)) == 2
    texts = message_texts(response)
    assert texts[0].startswith("Gave invite codes to 2 spaces")
    assert any("more spaces may lack a code" in text and "manage.py backfill_invite_codes" in text for text in texts)
    assert invariant_violations() == []


def test_an_unreachable_dynamodb_on_the_backfill_page_is_a_message(dynamodb_unreachable: object, admin_users) -> None:
    client = client_for(admin_users["changer"])

    preview = client.get(url("backfill"), {"preview": "1"})
    run = client.post(url("backfill"))

    for response in (preview, run):
        assert response.status_code == 200
        assert message_texts(response)[0].startswith("DynamoDB cannot be reached")


# --- audit -------------------------------------------------------------------------------------


def broken_table() -> dict[str, str]:
    """A space without a code, a stale mapping, and a mapping of a deleted space."""
    bare = put_legacy_space(name="Bare")
    space = space_create(owner_id="o", name="Moved on")
    put_legacy_mapping(code="OLDCODE2", space_id=space.id)
    put_legacy_mapping(code="GONE2345", space_id="deleted-space")
    return {"bare": bare, "moved": space.id}


def test_opening_the_audit_page_runs_nothing(dynamo_table: object, admin_users, dynamo_calls) -> None:
    dynamo_calls.reset()

    response = client_for(admin_users["changer"]).get(url("audit"))

    assert response.status_code == 200 and "Run the audit" in response.content.decode()
    assert dynamo_calls.total == 0


def test_the_audit_lists_what_it_finds_and_offers_a_repair(dynamo_table: object, admin_users) -> None:
    ids = broken_table()

    response = client_for(admin_users["changer"]).get(url("audit"), {"run": "1"})

    report = response.context["report"]
    assert [f.space_id for f in report.of(Kind.SPACES_WITHOUT_CODE)] == [ids["bare"]]
    assert [(f.code, f.space_id) for f in report.of(Kind.STALE_MAPPINGS)] == [("OLDCODE2", ids["moved"])]
    assert [(f.code, f.other_space_id) for f in report.of(Kind.MAPPINGS_WITH_MISSING_SPACE)] == [
        ("GONE2345", "deleted-space")
    ]
    content = response.content.decode()
    # Only the space without a code is harmful; the two dead mappings are warnings, and the repair fixes all three.
    assert "<strong>1 problem</strong> found." in content and "2 warnings (not problems; see below)" in content
    assert ids["bare"] in content and "OLDCODE2" in content
    assert 'id="audit-repair"' in content
    assert stored_code(ids["bare"]) is None


def test_the_audit_page_words_each_finding_as_the_command_does(dynamo_table: object, admin_users) -> None:
    ids = broken_table()

    response = client_for(admin_users["viewer"]).get(url("audit"), {"run": "1"})

    content = response.content.decode()
    assert all(escape(info.label) in content and escape(info.meaning) in content for info in KINDS.values())
    detail = url("change", ids["bare"])
    assert f'<li><a href="{detail}">space &#x27;Bare&#x27; (ID: {ids["bare"]})</a></li>' in content
    assert "<li>mapping &#x27;GONE2345&#x27; -&gt; missing space (ID: deleted-space)</li>" in content


def test_viewers_see_the_findings_without_a_repair_button(dynamo_table: object, admin_users) -> None:
    broken_table()

    response = client_for(admin_users["viewer"]).get(url("audit"), {"run": "1"})

    assert response.status_code == 200
    assert 'id="audit-repair"' not in response.content.decode()


def test_the_repair_fixes_every_finding_and_logs_the_code_it_gave(dynamo_table: object, admin_users) -> None:
    ids = broken_table()
    client = client_for(admin_users["changer"])

    response = client.post(url("audit"))

    assert response.status_code == 200
    assert message_texts(response)[0].startswith("Repaired 3 findings")
    assert invariant_violations(require_codes=True) == []
    # What the repair changed comes from its report: the page names the new code.
    assert f'(none) &rarr; <span class="invite-code">{stored_code(ids["bare"])}</span>' in response.content.decode()
    assert not InviteMapping.count("INVITE#OLDCODE2")
    (entry,) = LogEntry.objects.exclude(object_id="")
    assert entry.object_id == ids["bare"]
    assert entry.get_change_message() == f"Changed invite code from (none) to {stored_code(ids['bare'])}."
    (summary,) = LogEntry.objects.filter(object_id="")
    assert summary.user == admin_users["changer"]
    assert summary.get_change_message() == (
        "Audit repair: mappings with missing space: 1, spaces without code: 1, stale mappings: 1."
    )
    again = client.get(url("audit"), {"run": "1"})
    assert again.context["report"].clean


def test_an_unreachable_dynamodb_on_the_audit_page_is_a_message(dynamodb_unreachable: object, admin_users) -> None:
    client = client_for(admin_users["changer"])

    for response in (client.get(url("audit"), {"run": "1"}), client.post(url("audit"))):
        assert response.status_code == 200
        assert message_texts(response)[0].startswith("DynamoDB cannot be reached")


def test_the_audit_page_has_the_admin_breadcrumbs(dynamo_table: object, admin_users) -> None:
    response = client_for(admin_users["viewer"]).get(url("audit"))

    content = response.content.decode()
    assert '<div class="breadcrumbs">' in content
    assert f'<a href="{url("changelist")}">Spaces</a>' in content and "&rsaquo; Audit" in content


def test_a_backfill_request_starts_no_work_after_its_time_budget(dynamo_table: object, admin_users, settings) -> None:
    settings.ADMIN_BACKFILL_SECONDS = 0  # spent at once
    bare = [put_legacy_space(name=f"Bare {n}") for n in range(3)]

    response = client_for(admin_users["changer"]).post(url("backfill"))

    assert [stored_code(space_id) for space_id in bare] == [None] * 3
    assert any("time budget: more spaces may lack a code" in text for text in message_texts(response))
    assert "more spaces may lack a code" in response.content.decode()
    assert LogEntry.objects.count() == 0


def test_a_backfill_that_loses_dynamodb_part_way_reports_and_logs_what_it_changed(
    dynamo_table: object, admin_users, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from tests.faults import client_hook

    monkeypatch.setattr("invites.assignment.SPACES_PER_ASSIGNMENT", 2)  # two transactions
    bare = [put_legacy_space(name=f"Bare {n}") for n in range(4)]
    transactions = []

    def table_gone_after_one_transaction(**_):
        transactions.append(1)
        if len(transactions) <= 1:
            return None  # let the call through
        error = {"Error": {"Code": "ResourceNotFoundException", "Message": "table gone"}}
        return SimpleNamespace(status_code=400, headers={}), error

    with client_hook("before-call.dynamodb.TransactWriteItems", table_gone_after_one_transaction):
        response = client_for(admin_users["changer"]).post(url("backfill"))

    assert response.status_code == 200
    given = [space_id for space_id in bare if stored_code(space_id)]
    assert len(given) == 2
    texts = message_texts(response)
    assert texts[0].startswith("DynamoDB cannot be reached")
    assert texts[1].startswith("Gave invite codes to 2 spaces")
    assert sorted(LogEntry.objects.values_list("object_id", flat=True)) == sorted(given)
    assert invariant_violations() == []


def test_legacy_format_codes_are_listed_as_warnings_with_no_repair_button(dynamo_table: object, admin_users) -> None:
    from spaces.models import CodeClaim

    space_id = put_legacy_space(name="Old code", invite_code="a3f9c2d4")
    CodeClaim.build("a3f9c2d4", space_id, "2024-01-15T10:30:00").save()

    response = client_for(admin_users["changer"]).get(url("audit"), {"run": "1"})

    content = response.content.decode()
    assert response.context["report"].clean
    assert "<strong>no problems found</strong>." in content
    assert '<span class="audit-warnings">1 warning (not problems; see below).</span>' in content
    assert f"space &#x27;Old code&#x27; (ID: {space_id}) code &#x27;a3f9c2d4&#x27;</a>" in content
    assert "backfill_invite_codes --replace-legacy-codes" in content
    assert 'id="audit-repair"' not in content


def test_the_audit_page_repairs_a_policy_left_on_a_space_without_a_code(dynamo_table: object, admin_users) -> None:
    from spaces.models import Space

    bare = put_legacy_space(name="Bare but paused")
    Space(*Space.key(bare)).update(actions=[Space.invite_paused.set(True)])
    client = client_for(admin_users["changer"])

    found = client.get(url("audit"), {"run": "1"})
    repaired = client.post(url("audit"))

    assert [f.space_id for f in found.context["report"].of(Kind.POLICIES_WITHOUT_CODE)] == [bare]
    assert message_texts(repaired)[0].startswith("Repaired 2 findings")
    space = Space.get(*Space.key(bare), consistent_read=True)
    assert space.invite_code and space.invite_paused is None
    (summary,) = LogEntry.objects.filter(object_id="")
    assert summary.get_change_message() == "Audit repair: policies without code: 1, spaces without code: 1."
