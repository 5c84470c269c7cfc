"""The checkpoint file: where each scan segment stands, so a stopped backfill can resume.

```json
{"version": 1, "kind": "backfill", "table": "lifestyle-spaces", "total_segments": 4, "had_failures": false,
 "segments": {"0": {"last_evaluated_key": {...}, "done": false}, "1": {"last_evaluated_key": null, "done": true}}}
```

For one machine; a backfill split over machines keeps its progress in
DynamoDB instead (``--run NAME``, :mod:`invites.backfill.run_state`).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from invites.backfill.exceptions import BackfillConfigError
from invites.backfill.report import PageTally

# Written and removed again in the checkpoint's directory before the run: a full device or a
# directory that is not there fails now, before the first write to DynamoDB.
PROBE_BYTES = b" " * 4096


def ensure_checkpoint_writable(path: str) -> None:
    """Raise :class:`BackfillConfigError` unless a checkpoint can be written at ``path``."""
    target = Path(path)
    if target.exists() and not target.is_file():
        raise BackfillConfigError(f"cannot write the checkpoint file {path}: not a regular file")
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.probe.", dir=directory)
    except OSError as exc:
        raise BackfillConfigError(f"cannot write the checkpoint file {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(PROBE_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise BackfillConfigError(f"cannot write the checkpoint file {path}: {exc.strerror or exc}") from None
    finally:
        Path(probe).unlink(missing_ok=True)


class Checkpoint:
    """Per-segment scan positions in a JSON file, rewritten atomically after each page.

    Without a path the positions are kept in memory only.
    """

    VERSION = 1

    def __init__(
        self, path: str | None, *, table_name: str, total_segments: int, segments: list[int], kind: str = "backfill"
    ) -> None:
        self.path = Path(path) if path else None
        self.table_name = table_name
        self.total_segments = total_segments
        self.kind = kind
        self._lock = threading.Lock()
        self.state: dict[str, dict[str, Any]] = {str(s): {"last_evaluated_key": None, "done": False} for s in segments}
        self.had_failures = False
        if self.path is not None:
            if self.path.exists():
                self._load(segments)
            ensure_checkpoint_writable(str(self.path))

    def _load(self, segments: list[int]) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise BackfillConfigError(f"checkpoint file {self.path} cannot be read: {exc}") from exc
        if not isinstance(data, dict) or data.get("version") != self.VERSION:
            raise BackfillConfigError(f"checkpoint file {self.path} is not a backfill checkpoint")
        if data.get("table") != self.table_name or data.get("total_segments") != self.total_segments:
            raise BackfillConfigError(
                f"checkpoint file {self.path} was written for table {data.get('table')!r} with "
                f"{data.get('total_segments')} segments; this run uses {self.table_name!r} with "
                f"{self.total_segments}"
            )
        if data.get("kind", "backfill") != self.kind:
            raise BackfillConfigError(
                f"checkpoint file {self.path} was written by a {data.get('kind', 'backfill')} run; "
                f"this is a {self.kind}"
            )
        saved = data.get("segments", {})
        if sorted(saved) != sorted(str(s) for s in segments):
            raise BackfillConfigError(f"checkpoint file {self.path} covers other segments ({sorted(saved)})")
        self.state = saved
        self.had_failures = bool(data.get("had_failures"))

    def start_key(self, segment: int) -> dict[str, Any] | None:
        return self.state[str(segment)]["last_evaluated_key"]

    def is_done(self, segment: int) -> bool:
        return bool(self.state[str(segment)]["done"])

    def advance(self, segment: int, last_evaluated_key: dict[str, Any] | None, tally: PageTally) -> bool:
        """Record a finished page; True (one process owns its file: nobody else advances it)."""
        with self._lock:
            self.state[str(segment)] = {
                "last_evaluated_key": last_evaluated_key,
                "done": last_evaluated_key is None,
            }
            self.had_failures = self.had_failures or tally.failed > 0
            self._save()
        return True

    def _save(self) -> None:
        if self.path is None:
            return
        payload = json.dumps(
            {
                "version": self.VERSION,
                "kind": self.kind,
                "table": self.table_name,
                "total_segments": self.total_segments,
                "had_failures": self.had_failures,
                "segments": self.state,
            }
        )
        # Write a temporary file beside the target and rename it over: a kill
        # at any moment leaves either the old or the new checkpoint, never half.
        directory = self.path.parent if str(self.path.parent) else Path(".")
        fd, temp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, self.path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
