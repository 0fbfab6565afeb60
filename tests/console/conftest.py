"""The console's browser tests: one `batchyard dev` and one Chromium per module.

Chromium is Debian's (`apt-get install chromium`, as .ci/run does), driven by Playwright.
Without it the tests skip, saying so, except under CI=true, where they must run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_dev import wait_for_event
from tests.processes import free_port

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BATCHYARD = str(Path(sys.executable).parent / "batchyard")


@dataclass
class Dev:
    home: Path
    base: str
    link: str
    token: str
    log: Path

    def call(self, method: str, body: dict[str, Any], token: str | None = None) -> Any:
        """A Connect JSON call, as curl would make it; HTTPError on refusal."""
        request = urllib.request.Request(
            f"{self.base}/batchyard.v1.{method}",
            data=json.dumps(body).encode(),
            headers={
                "content-type": "application/json",
                "authorization": f"Bearer {token or self.token}",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def dev() -> Iterator[Dev]:
    home = Path(tempfile.mkdtemp(prefix="batchyard-console-"))
    port, http_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BATCHYARD_", "DATABASE_URL", "XDG_", "AWS_"))
    }
    env.update(HOME=str(home), BATCHYARD_LOG_FORMAT="json")
    log = home / "dev.log"
    with log.open("ab") as out:
        command = [BATCHYARD, "dev", "--listen", f"127.0.0.1:{port}", "--slots", "4"]
        proc = subprocess.Popen(
            [*command, "--http-listen", f"127.0.0.1:{http_port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
        )
    try:
        ready = wait_for_event(log, "console_ready", proc, timeout=120)
        wait_for_event(log, "worker_started", proc, timeout=60)
        token = (home / ".config" / "batchyard" / "dev-token").read_text().strip()
        yield Dev(home, f"http://127.0.0.1:{http_port}", ready["sign_in"], token, log)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium (Playwright gives each launch a fresh --user-data-dir of its own)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"no Chromium at {CHROMIUM}: .ci/run installs it (apt-get install chromium)"
            )
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium): browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each page's screenshot goes (kept as a test artifact)."""
    given = os.environ.get("BATCHYARD_SCREENSHOTS")
    folder = Path(given) if given else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def http_error(exc: urllib.error.HTTPError) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.read())
    return body
