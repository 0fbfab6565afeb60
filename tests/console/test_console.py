"""The console in a real Chromium against a real `batchyard dev`: what a person does."""

from __future__ import annotations

import hashlib
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import Dev, http_error

TALK = """\
echo "hello $1, greeting=$GREETING"
cat "$BATCHYARD_PAYLOAD_PATH"; echo
for i in $(seq 1 ${LINES:-12}); do
  echo "line $i"
  if [ "$i" = 3 ]; then echo '{"level": "error", "msg": "something broke at 3"}'; fi
  echo "::progress $((i * 8))"
  sleep ${PAUSE:-0.4}
done
printf 'bin\\000\\001\\377ary' > "$BATCHYARD_OUTPUT_DIR/data.bin"
"""
XSS = """\
echo '<script>window.pwned = 1</script>'
echo '<img src=x onerror="window.pwned = 2">' >&2
"""
RESULT_BYTES = b"bin\x00\x01\xffary"


def define(dev: Dev, name: str, script: str, env: dict[str, str] | None = None) -> None:
    config = {
        "type": "JOB_TYPE_SHELL",
        "source": {"inline": {"text": script}},
        "sourceLocation": f"{name}.sh",
        "env": env or {},
    }
    dev.call("DefinitionService/CreateDefinition", {"definition": {"name": name, "config": config}})


@pytest.fixture(scope="module")
def jobs(dev: Dev) -> Dev:
    define(dev, "talk", TALK)
    define(dev, "slow", TALK, {"LINES": "300", "PAUSE": "0.2"})
    define(dev, "xss", XSS)
    return dev


@pytest.fixture(scope="module")
def page(browser: Any, jobs: Dev, screenshots: Path) -> Iterator[Any]:
    """An admin, signed in through the link `batchyard dev` printed."""
    context = browser.new_context(viewport={"width": 1300, "height": 900}, accept_downloads=True)
    context.set_default_timeout(60000)  # a busy machine is slow, not wrong
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    started = time.perf_counter()
    tab.goto(jobs.link)
    tab.wait_for_selector("body[data-ready=runs]")
    took = (time.perf_counter() - started) * 1000
    print(f"sign-in link to an interactive runs page: {took:.0f} ms")
    tab.screenshot(path=str(screenshots / "runs.png"))
    yield tab
    context.close()
    assert not errors, errors


def ready(page: Any, name: str) -> None:
    """Wait until the page for the current URL is drawn."""
    drawn = "document.body.dataset.route == location.hash"
    page.wait_for_function(f"() => document.body.dataset.ready == '{name}' && {drawn}")


def run_page(page: Any) -> str:
    ready(page, "run")
    return str(page.url.rsplit("/", 1)[1])


def status_of(page: Any) -> str:
    return str(page.locator(".summary .status").inner_text())


def submit_from_form(page: Any, name: str, payload: Path | None = None) -> str:
    page.goto(f"{page.url.split('#')[0]}#/definitions/{name}")
    ready(page, "definition")
    page.get_by_label("Arguments").fill("world")
    page.get_by_label("Environment").fill("GREETING=hi there")
    if payload is not None:
        page.get_by_label("Payload file").set_input_files(str(payload))
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url("**/#/runs/*")
    return run_page(page)


def test_the_dev_link_signs_in_and_lists_runs(page: Any, jobs: Dev) -> None:
    assert page.get_by_role("heading", name="Runs").is_visible()
    assert "admin" in page.locator("#who").inner_text()
    cookies = page.context.cookies()
    [session] = [c for c in cookies if c["name"] == "batchyard_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # not readable by scripts


def test_submit_from_the_form_watch_live_lines_and_filter_by_level(
    page: Any, jobs: Dev, tmp_path: Path, screenshots: Path
) -> None:
    payload = tmp_path / "payload.txt"
    payload.write_text("the payload text")
    run = submit_from_form(page, "talk", payload)
    log = page.locator(".log")
    log.get_by_text("line 2", exact=True).wait_for()
    assert status_of(page) == "RUNNING"  # the lines arrived while the job was printing
    assert log.get_by_text("hello world, greeting=hi there").is_visible()
    assert log.get_by_text("the payload text").is_visible()
    page.get_by_label("Level").select_option("LOG_LEVEL_ERROR")
    log.get_by_text('{"level": "error", "msg": "something broke at 3"}').wait_for()
    assert log.locator(".line").count() == 1
    page.get_by_label("Level").select_option("")
    page.wait_for_function(
        "() => document.querySelector('.summary .status').textContent == 'SUCCEEDED'"
    )
    log.get_by_text("line 12", exact=True).wait_for()
    page.get_by_label("Search").fill("line 1")
    assert log.locator(".line").count() == 4  # line 1, 10, 11, 12
    page.get_by_label("Search").fill("")
    page.screenshot(path=str(screenshots / "run.png"), full_page=True)
    got = jobs.call("RunService/GetRun", {"run": run})["run"]
    assert got["config"]["args"] == ["world"] and got["payloadSize"] == "16"


def test_download_a_result_and_compare_bytes(page: Any, jobs: Dev) -> None:
    submit_from_form(page, "talk")
    page.wait_for_function(
        "() => document.querySelector('.summary .status').textContent == 'SUCCEEDED'", timeout=60000
    )
    button = page.get_by_role("button", name="download data.bin")
    button.wait_for()
    with page.expect_download() as info:
        button.click()
    downloaded = Path(info.value.path()).read_bytes()
    assert downloaded == RESULT_BYTES
    sha = hashlib.sha256(RESULT_BYTES).hexdigest()
    assert page.get_by_text(sha).is_visible()


def test_cancel_a_running_run_then_run_it_again_with_the_same_payload(
    page: Any, jobs: Dev, tmp_path: Path, screenshots: Path
) -> None:
    payload = tmp_path / "again.txt"
    payload.write_text("same payload twice")
    first = submit_from_form(page, "slow", payload)
    page.locator(".log").get_by_text("line 1", exact=True).wait_for()
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_function(
        "() => document.querySelector('.summary .status').textContent == 'CANCELLED'", timeout=60000
    )
    assert page.get_by_role("button", name="Cancel").count() == 0
    page.get_by_role("button", name="Run again").click()
    page.wait_for_function(f"() => !location.hash.endsWith('{first}')")
    second = run_page(page)
    page.locator(".log").get_by_text("same payload twice").wait_for()
    page.screenshot(path=str(screenshots / "run-again.png"), full_page=True)
    got = jobs.call("RunService/GetRun", {"run": second})["run"]
    assert got["definitionVersion"] == "1" and got["config"]["args"] == ["world"]
    jobs.call("RunService/CancelRun", {"run": second})


def test_a_viewer_sees_no_cancel_and_a_crafted_request_is_refused(
    browser: Any, jobs: Dev, screenshots: Path
) -> None:
    made = jobs.call("TokenService/CreateToken", {"name": "watcher", "role": "TOKEN_ROLE_VIEWER"})
    running = jobs.call("RunService/SubmitRun", {"definition": "slow"})["run"]["uuid"]
    context = browser.new_context()
    context.set_default_timeout(60000)
    try:
        tab = context.new_page()
        tab.goto(jobs.base)
        tab.get_by_label("Token").fill(made["secret"])
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_selector("body[data-ready=runs]")
        tab.goto(f"{jobs.base}/#/runs/{running}")
        run_page(tab)
        tab.locator(".log").get_by_text("line 1", exact=True).wait_for()
        assert status_of(tab) == "RUNNING"
        assert tab.get_by_role("button", name="Cancel").count() == 0
        assert tab.get_by_role("button", name="Run again").count() == 0
        tab.screenshot(path=str(screenshots / "run-viewer.png"), full_page=True)
        crafted = tab.evaluate(
            """async (run) => {
                const r = await fetch('/batchyard.v1.RunService/CancelRun', {method: 'POST',
                  headers: {'content-type': 'application/json', 'x-batchyard-csrf': '1'},
                  body: JSON.stringify({run})});
                return [r.status, await r.json()];
            }""",
            running,
        )
        assert crafted[0] == 403 and crafted[1]["code"] == "permission_denied"
        tab.goto(f"{jobs.base}/#/definitions/slow")
        ready(tab, "definition")
        assert tab.get_by_role("button", name="Submit").count() == 0
    finally:
        context.close()
    assert jobs.call("RunService/GetRun", {"run": running})["run"]["status"] == "RUN_STATUS_RUNNING"
    jobs.call("RunService/CancelRun", {"run": running})
    with pytest.raises(urllib.error.HTTPError) as info:  # and straight over HTTP too
        jobs.call("RunService/CancelRun", {"run": running}, token=made["secret"])
    assert http_error(info.value)["code"] == "permission_denied"


def test_job_output_with_markup_renders_inert(page: Any, jobs: Dev, screenshots: Path) -> None:
    run = jobs.call("RunService/SubmitRun", {"definition": "xss"})["run"]["uuid"]
    page.goto(f"{jobs.base}/#/runs/{run}")
    run_page(page)
    log = page.locator(".log")
    log.get_by_text("<script>window.pwned = 1</script>").wait_for()
    log.get_by_text('<img src=x onerror="window.pwned = 2">').wait_for()
    assert page.evaluate("window.pwned") is None
    assert log.locator("img, script").count() == 0
    page.screenshot(path=str(screenshots / "run-xss.png"), full_page=True)


def test_definitions_pages_show_versions_and_a_diff(
    page: Any, jobs: Dev, screenshots: Path
) -> None:
    jobs.call(
        "DefinitionService/UpdateDefinition",
        {
            "definition": "xss",
            "changes": {"description": "now described"},
            "updateMask": "description",
        },
    )
    page.goto(f"{jobs.base}/#/definitions")
    ready(page, "definitions")
    page.screenshot(path=str(screenshots / "definitions.png"), full_page=True)
    page.get_by_role("link", name="xss").click()
    ready(page, "definition")
    page.locator(".diff .add").get_by_text("now described").wait_for()
    page.screenshot(path=str(screenshots / "definition.png"), full_page=True)


def test_a_long_log_is_windowed(page: Any, jobs: Dev) -> None:
    define(jobs, "many", 'seq 1 20000 | sed "s/^/row /"')
    run = jobs.call("RunService/SubmitRun", {"definition": "many"})["run"]["uuid"]
    page.goto(f"{jobs.base}/#/runs/{run}")
    run_page(page)
    status = "document.querySelector('[role=status][aria-live]')"  # the log's status line
    page.wait_for_function(f"() => {status}?.textContent.includes('end of log')")
    log = page.locator(".log")
    log.get_by_text("row 20000", exact=True).wait_for()  # followed to the end
    assert log.locator(".line").count() < 200  # only what is visible is in the DOM
    page.get_by_label("Search").fill("row 12345")
    log.get_by_text("row 12345", exact=True).wait_for()
    assert log.locator(".line").count() == 1
