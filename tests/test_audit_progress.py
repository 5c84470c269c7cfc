"""``audit_invite_codes`` on a terminal: the scan's progress bar on stderr, and log lines that go around it.

The bar is drawn only when stderr is a terminal. In-process tests give the
command a fake terminal: two streams (stdout, stderr) writing to one screen,
as a terminal shows them; one test runs the real command under a
pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from django.core.management import call_command

from invites import audit
from invites.services import space_create
from tests.legacy import put_legacy_space

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parent.parent
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - [A-Z]+ - ")


class TerminalStream(io.TextIOBase):
    """One of a terminal's two streams: what it writes lands on the shared screen."""

    def __init__(self, screen: io.StringIO) -> None:
        self.screen = screen
        self.written = io.StringIO()

    def write(self, text: str) -> int:
        self.screen.write(text)
        self.written.write(text)
        return len(text)

    def isatty(self) -> bool:
        return True


class Terminal:
    """A screen, and the two streams a command writes to it."""

    def __init__(self) -> None:
        self.screen = io.StringIO()
        self.out, self.err = TerminalStream(self.screen), TerminalStream(self.screen)

    def run_audit(self, *args: str) -> int:
        """The command's exit status; its stdout and stderr are this terminal's while it runs.

        Patched here, in the test's own phase: pytest swaps its capture in after the fixtures ran.
        """
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "stdout", self.out)
            patch.setattr(sys, "stderr", self.err)
            try:
                call_command("audit_invite_codes", "--grace-seconds", "0", *args)  # to sys.stdout
            except SystemExit as exited:
                return int(exited.code or 0)
        return 0


@pytest.fixture
def terminal() -> Terminal:
    return Terminal()


def screen_segments(text: str) -> list[str]:
    """What a terminal shows line by line: a carriage return starts the line over."""
    return [segment for segment in re.split(r"[\r\n]", text) if segment.strip()]


def test_the_bar_counts_items_of_an_estimated_total_with_rate_and_time_left(dynamo_table: object, terminal) -> None:
    for n in range(3):
        space_create(owner_id="o", name=f"Space {n}")

    status = terminal.run_audit()

    assert status == 0
    bar = terminal.err.written.getvalue()
    assert "Items scanned" in bar
    final = [segment for segment in screen_segments(bar) if "Items scanned" in segment][-1]
    # 3 spaces with claim, mapping and owner membership, and the table flag: 13 items, of ~13 (DescribeTable).
    expected = r"100%\|.*\| 13.0/~13.0 items \(total estimated\) \[[\d:]+<[\d:]+, [\d.]+[kMG]? items/s\]"
    assert re.search(expected, final), final
    assert "Items scanned" not in terminal.out.written.getvalue()  # the bar is on stderr only


def test_log_lines_during_the_scan_go_around_the_bar(
    dynamo_table: object, terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_legacy_space(name="Bare")
    real_add = audit._Snapshot._add

    def add_then_log(snapshot: audit._Snapshot, raw: dict) -> None:  # a line logged while the bar is drawn
        real_add(snapshot, raw)
        if snapshot.items == 2:
            logging.getLogger("invites.commands.audit").info("A line in the middle of the scan")

    monkeypatch.setattr(audit._Snapshot, "_add", add_then_log)

    status = terminal.run_audit()

    assert status == 1
    screen = terminal.screen.getvalue()
    assert screen.count("A line in the middle of the scan") == 1
    for segment in screen_segments(screen):
        if " - INFO - " in segment or " - WARNING - " in segment:
            # A log line starts its own line on the screen, never after a piece of the bar.
            assert LOG_LINE.match(segment), segment
            assert "Items scanned" not in segment, segment


def test_no_bar_is_drawn_when_stderr_is_not_a_terminal(dynamo_table: object, capsys) -> None:
    space_create(owner_id="o", name="Space")

    call_command("audit_invite_codes", "--grace-seconds", "0", stdout=io.StringIO())

    assert "Items scanned" not in capsys.readouterr().err


def test_a_bar_without_an_estimate_still_shows_items_and_rate(
    dynamo_table: object, terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invites.management.commands import audit_invite_codes

    monkeypatch.setattr(audit_invite_codes, "ensure_table_reachable", lambda: None)  # DescribeTable not allowed
    space_create(owner_id="o", name="Space")

    terminal.run_audit()

    final = [s for s in screen_segments(terminal.err.written.getvalue()) if "Items scanned" in s][-1]
    assert re.fullmatch(r"Items scanned: 5.00 items \[[\d:]+, [\d.]+[kMG]? items/s\]", final.strip()), final


def on_a_pseudo_terminal(table, *args: str) -> tuple[int, str]:
    """Run the real command with stdout and stderr on a 120-column pseudo-terminal: its status and the screen."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_SETTINGS", "DYNAMODB_"))}
    env.update(
        DJANGO_DEBUG="1",
        DYNAMODB_HOST=table.host or "",
        DYNAMODB_TABLE=table.table_name,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    controller, terminal_end = pty.openpty()
    fcntl.ioctl(terminal_end, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(  # our own interpreter and manage.py
        [sys.executable, "manage.py", "audit_invite_codes", "--grace-seconds", "0", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal_end,
        stderr=terminal_end,
    )
    os.close(terminal_end)
    shown = read_all(controller)
    return process.wait(timeout=60), shown


@pytest.mark.slow
def test_the_command_on_a_real_terminal_draws_the_bar_and_ends_with_a_summary(dynamo_table) -> None:
    put_legacy_space(name="Bare")

    status, shown = on_a_pseudo_terminal(dynamo_table)

    assert status == 1
    assert "Items scanned" in shown and "items/s" in shown and "(total estimated)" in shown
    assert "1 problem found; run audit_invite_codes --repair to fix them" in screen_segments(shown)[-1]
    assert "CommandError" not in shown and "Traceback" not in shown


@pytest.mark.slow
def test_the_repair_on_a_real_terminal_logs_the_engines_lines_cleanly(dynamo_table) -> None:
    put_legacy_space(name="Bare")

    status, shown = on_a_pseudo_terminal(dynamo_table, "--repair")

    assert status == 0
    assert "*** REPAIR COMPLETE ***" in shown
    assert "Logging error" not in shown and "Traceback" not in shown


def read_all(controller: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return b"".join(chunks).decode(errors="replace")


def test_a_low_estimate_never_takes_the_bar_past_its_total(
    dynamo_table: object, terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invites.management.commands import audit_invite_codes

    monkeypatch.setattr(audit_invite_codes, "ensure_table_reachable", lambda: 2)  # DescribeTable's count is stale
    space_create(owner_id="o", name="Space")

    terminal.run_audit()

    final = [s for s in screen_segments(terminal.err.written.getvalue()) if "Items scanned" in s][-1]
    assert re.search(r"100%\|.*\| 5.00/~5.00 items \(total estimated\)", final), final
