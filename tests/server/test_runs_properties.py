"""Properties of the run state machine (domain.runs): what a worker may report, and what
each ended attempt does to its run, for any outcome, retry strategy and retry count."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from batchyard.server.domain.attempts import Next, Outcome, after_attempt, validate_outcome
from batchyard.server.domain.jobs import (
    DEFAULT_RETRY_DELAY_SECONDS,
    ExitCodeAction,
    ExitCodeRule,
    RetryStrategy,
)
from batchyard.server.domain.runs import RunReason, RunStatus

WORKER_FAILURES = (
    RunReason.NON_ZERO_EXIT_CODE,
    RunReason.TIMEOUT,
    RunReason.SOURCE_UNAVAILABLE,
    RunReason.RESULT_UPLOAD_FAILED,
)
exit_codes = st.integers(min_value=-255, max_value=255)
messages = st.text(max_size=20)

succeeded = st.builds(
    Outcome, st.just(RunStatus.SUCCEEDED), st.just(RunReason.NONE), st.none() | exit_codes, messages
)
cancelled = st.builds(
    Outcome,
    st.just(RunStatus.CANCELLED),
    st.sampled_from([RunReason.NONE, RunReason.CANCELLED_BY_USER]),
    st.none() | exit_codes,
    messages,
)
non_zero_exit = st.builds(
    Outcome,
    st.just(RunStatus.FAILED),
    st.just(RunReason.NON_ZERO_EXIT_CODE),
    exit_codes.filter(bool),
    messages,
)
other_failure = st.builds(
    Outcome,
    st.just(RunStatus.FAILED),
    st.sampled_from([r for r in WORKER_FAILURES if r != RunReason.NON_ZERO_EXIT_CODE]),
    st.none() | exit_codes,
    messages,
)
reported = succeeded | cancelled | non_zero_exit | other_failure
"""Every outcome a worker may report (CompleteRun)."""
worker_lost = st.builds(
    Outcome, st.just(RunStatus.FAILED), st.just(RunReason.WORKER_LOST), st.none(), messages
)
"""The outcome the lease rescuer records for an attempt whose lease expired."""
any_outcome = st.builds(
    Outcome,
    st.sampled_from(RunStatus),
    st.sampled_from(RunReason),
    st.none() | exit_codes,
    messages,
)

rules = st.builds(
    ExitCodeRule,
    st.lists(exit_codes, min_size=1, max_size=4).map(tuple),
    st.sampled_from(ExitCodeAction),
)
retry_strategies = st.builds(
    RetryStrategy,
    num_retries=st.integers(min_value=0, max_value=10),
    delay_seconds=st.none() | st.floats(min_value=0, max_value=86_400),
    retry_on_timeout=st.booleans(),
    exit_code_rules=st.lists(rules, max_size=3).map(tuple),
    num_infra_retries=st.integers(min_value=0, max_value=5),
)
retries_used = st.integers(min_value=0, max_value=12)


@given(reported)
def test_every_outcome_a_worker_may_report_is_valid(outcome: Outcome) -> None:
    assert validate_outcome(outcome) == []


@given(any_outcome)
def test_a_valid_outcome_is_a_final_status_with_one_of_its_reasons(outcome: Outcome) -> None:
    if validate_outcome(outcome):
        return
    assert outcome.status.finished
    allowed = {
        RunStatus.SUCCEEDED: {RunReason.NONE},
        RunStatus.FAILED: set(WORKER_FAILURES),
        RunStatus.CANCELLED: {RunReason.NONE, RunReason.CANCELLED_BY_USER},
    }
    assert outcome.reason in allowed[outcome.status]
    if outcome.reason == RunReason.NON_ZERO_EXIT_CODE:
        assert outcome.exit_code


@given(any_outcome.filter(lambda o: not o.status.finished))
def test_a_worker_cannot_report_a_run_pending_or_running(outcome: Outcome) -> None:
    assert [v.field for v in validate_outcome(outcome)] == ["status"]


@given(st.sampled_from(WORKER_FAILURES), messages)
def test_a_failure_reason_is_not_a_reason_to_succeed(reason: RunReason, message: str) -> None:
    outcome = Outcome(RunStatus.SUCCEEDED, reason, 0, message)
    assert [v.field for v in validate_outcome(outcome)] == ["reason"]


@given(st.sampled_from([None, 0]), messages)
def test_a_non_zero_exit_needs_its_exit_code(code: int | None, message: str) -> None:
    outcome = Outcome(RunStatus.FAILED, RunReason.NON_ZERO_EXIT_CODE, code, message)
    assert [v.field for v in validate_outcome(outcome)] == ["exit_code"]


@given(reported | worker_lost, retry_strategies, retries_used, retries_used, st.booleans())
def test_an_ended_attempt_leaves_its_run_final_or_pending_for_a_retry(
    outcome: Outcome, strategy: RetryStrategy, used: int, infra_used: int, cancel_requested: bool
) -> None:
    nxt = after_attempt(outcome, strategy, used, cancel_requested, infra_used)
    assert nxt.status != RunStatus.RUNNING
    assert nxt.retry == (nxt.status == RunStatus.PENDING)
    if nxt.retry:
        assert nxt.reason in (RunReason.IN_QUEUE, RunReason.WAITING_FOR_RETRY)
        if nxt.budget == "infra":  # only a lost worker, and only within its own budget
            assert outcome.reason == RunReason.WORKER_LOST
            assert infra_used < strategy.num_infra_retries
        else:
            assert nxt.budget == "job" and used < strategy.num_retries
            if outcome.reason == RunReason.WORKER_LOST:  # the infra budget went first
                assert infra_used >= strategy.num_infra_retries
    else:
        assert nxt.status.finished
        assert nxt.delay_seconds == 0


@given(succeeded, retry_strategies, retries_used, st.booleans())
def test_a_success_is_final_even_with_a_cancel_requested(
    outcome: Outcome, strategy: RetryStrategy, used: int, cancel_requested: bool
) -> None:
    assert after_attempt(outcome, strategy, used, cancel_requested) == Next(
        RunStatus.SUCCEEDED, RunReason.NONE
    )


@given((cancelled | non_zero_exit | other_failure | worker_lost), retry_strategies, retries_used)
def test_a_requested_cancel_wins_over_any_retry(
    outcome: Outcome, strategy: RetryStrategy, used: int
) -> None:
    assert after_attempt(outcome, strategy, used, cancel_requested=True) == Next(
        RunStatus.CANCELLED, RunReason.CANCELLED_BY_USER
    )


@given(non_zero_exit | other_failure | worker_lost, retry_strategies, retries_used)
def test_a_failure_past_the_retry_budget_fails_the_run_with_its_reason(
    outcome: Outcome, strategy: RetryStrategy, used: int
) -> None:
    nxt = after_attempt(
        outcome, strategy, max(used, strategy.num_retries), False, strategy.num_infra_retries
    )
    assert nxt == Next(RunStatus.FAILED, outcome.reason)


@given(worker_lost, retry_strategies, retries_used, retries_used)
def test_a_lost_worker_spends_the_infrastructure_budget_first(
    outcome: Outcome, strategy: RetryStrategy, used: int, infra_used: int
) -> None:
    nxt = after_attempt(outcome, strategy, used, False, infra_used)
    if infra_used < strategy.num_infra_retries:
        assert nxt == Next(RunStatus.PENDING, RunReason.IN_QUEUE, retry=True, budget="infra")
    elif used < strategy.num_retries:
        assert nxt == Next(RunStatus.PENDING, RunReason.IN_QUEUE, retry=True, budget="job")
    else:
        assert nxt == Next(RunStatus.FAILED, RunReason.WORKER_LOST)


@given(other_failure | worker_lost, retry_strategies)
def test_a_failure_within_the_budget_is_retried_as_its_strategy_says(
    outcome: Outcome, strategy: RetryStrategy
) -> None:
    if strategy.num_retries == 0:
        return
    nxt = after_attempt(
        outcome, strategy, strategy.num_retries - 1, False, strategy.num_infra_retries
    )
    if outcome.reason == RunReason.TIMEOUT and not strategy.retry_on_timeout:
        assert nxt == Next(RunStatus.FAILED, RunReason.TIMEOUT)
    elif outcome.reason == RunReason.WORKER_LOST:
        # not the job's fault: back in the queue at once
        assert nxt == Next(RunStatus.PENDING, RunReason.IN_QUEUE, retry=True, budget="job")
    else:
        delay = strategy.delay_seconds
        expected = DEFAULT_RETRY_DELAY_SECONDS if delay is None else delay
        assert nxt == Next(
            RunStatus.PENDING,
            RunReason.WAITING_FOR_RETRY,
            retry=True,
            delay_seconds=expected,
            budget="job",
        )


@given(non_zero_exit, retry_strategies)
def test_the_first_rule_naming_an_exit_code_decides_whether_it_is_retried(
    outcome: Outcome, strategy: RetryStrategy
) -> None:
    if strategy.num_retries == 0:
        return
    nxt = after_attempt(outcome, strategy, 0, False)
    matching = [r for r in strategy.exit_code_rules if outcome.exit_code in r.exit_codes]
    retried = not matching or matching[0].action == ExitCodeAction.RETRY
    assert nxt.retry == retried
    assert nxt.status == (RunStatus.PENDING if retried else RunStatus.FAILED)


@given(retry_strategies, st.lists(reported | worker_lost, min_size=1, max_size=15))
def test_a_run_has_at_most_one_attempt_more_than_its_retries(
    strategy: RetryStrategy, outcomes: list[Outcome]
) -> None:
    """Play attempts until the run is final, counting retries as the database does (each
    budget its own)."""
    used, infra, attempts, nxt = 0, 0, 0, None
    for outcome in outcomes:
        attempts += 1
        nxt = after_attempt(outcome, strategy, used, False, infra)
        used += 1 if nxt.budget == "job" else 0
        infra += 1 if nxt.budget == "infra" else 0
        if nxt.status.finished:
            break
    budget = strategy.num_retries + strategy.num_infra_retries
    assert attempts <= budget + 1
    assert used <= strategy.num_retries and infra <= strategy.num_infra_retries
    assert nxt is not None
    if attempts == budget + 1:
        assert nxt.status.finished
