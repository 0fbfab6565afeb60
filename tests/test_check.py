"""tests/check.py runs every step and fails when any fails, or when pytest ran no test."""

from __future__ import annotations

import sys

import pytest

from tests import check


def step(name: str, code: int) -> check.Step:
    return check.Step(name, [sys.executable, "-c", f"import sys; sys.exit({code})"])


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch):
    """Replace the real steps: ``steps(static_codes, pytest_code)``."""

    def use(static: list[int], tests: int) -> None:
        made = [step(f"static {i}", code) for i, code in enumerate(static)]
        monkeypatch.setattr(check, "static_steps", lambda: made)
        monkeypatch.setattr(check, "pytest_step", lambda args: step("pytest", tests))

    return use


def test_all_steps_passing_pass(steps, capsys) -> None:
    steps([0, 0], 0)
    assert check.main([]) == 0
    assert "all checks passed" in capsys.readouterr().out


def test_pytest_running_no_test_fails(steps, capsys) -> None:
    steps([0], check.PYTEST_NO_TESTS)
    assert check.main([]) == 1
    assert "pytest ran no test" in capsys.readouterr().err


def test_a_failed_static_step_fails_and_every_step_still_runs(steps, capsys) -> None:
    steps([3, 0, 0], 0)
    assert check.main([]) == 1
    captured = capsys.readouterr()
    assert "failed: static 0" in captured.err
    for name in ("static 1", "static 2", "pytest"):
        assert f"{name}: ok" in captured.out


def test_failed_tests_fail(steps, capsys) -> None:
    steps([0], 1)
    assert check.main([]) == 1
    assert "failed: pytest" in capsys.readouterr().err


def test_the_steps_write_bytecode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert "PYTHONDONTWRITEBYTECODE" not in check.child_env()


def test_every_static_check_is_a_step() -> None:
    names = [s.name for s in check.static_steps()]
    for expected in (
        "installed files",
        "ruff check",
        "ruff format",
        "mypy --strict",
        "import contracts",
        "buf lint",
        "generated code is fresh",
    ):
        assert expected in names
