"""Retention policies: how long finished runs (and audit events) are kept.

A finished run is deleted once either rule that is set says so: it ended more than
`keep_seconds` ago, or it is not among the latest `keep_succeeded` SUCCEEDED (or
`keep_failed` FAILED and CANCELLED) runs of its definition, by submission. An unset rule
deletes nothing. A definition's override replaces the fields it sets; the count rules
apply per definition (ad-hoc runs follow the period only). Unfinished runs are never
deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from batchyard.server.domain.errors import FieldViolation

MIN_KEEP_SECONDS = 3600.0
MIN_AUDIT_KEEP_SECONDS = 86_400.0
MAX_KEEP_SECONDS = 100 * 366 * 86_400.0
MAX_KEEP_COUNT = 1_000_000
FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")
FAILED_LIKE = ["FAILED", "CANCELLED"]
T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    keep_seconds: float | None = None
    keep_succeeded: int | None = None
    keep_failed: int | None = None
    audit_keep_seconds: float | None = None

    def over(self, base: Policy) -> Policy:
        """This override's fields, the others from `base`."""
        return Policy(
            keep_seconds=_first(self.keep_seconds, base.keep_seconds),
            keep_succeeded=_first(self.keep_succeeded, base.keep_succeeded),
            keep_failed=_first(self.keep_failed, base.keep_failed),
            audit_keep_seconds=base.audit_keep_seconds,
        )


def _first(a: T | None, b: T | None) -> T | None:
    return a if a is not None else b


def policy_violations(p: Policy, for_definition: bool) -> list[FieldViolation]:
    out = []
    if p.keep_seconds is not None and not MIN_KEEP_SECONDS <= p.keep_seconds <= MAX_KEEP_SECONDS:
        out.append(FieldViolation("policy.keep_for", "1 hour to 100 years"))
    for name, value in (("keep_succeeded", p.keep_succeeded), ("keep_failed", p.keep_failed)):
        if value is not None and not 0 <= value <= MAX_KEEP_COUNT:
            out.append(FieldViolation(f"policy.{name}", f"0 to {MAX_KEEP_COUNT:,}"))
    audit = p.audit_keep_seconds
    if audit is not None:
        if for_definition:
            out.append(FieldViolation("policy.audit_keep_for", "a workspace policy only"))
        elif not MIN_AUDIT_KEEP_SECONDS <= audit <= MAX_KEEP_SECONDS:
            out.append(FieldViolation("policy.audit_keep_for", "1 day to 100 years"))
    return out
