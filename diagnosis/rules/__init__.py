"""Diagnosis rules: one function per failure-mode family, Evidence → candidate findings.

Each rule reads only the Evidence dataclasses (no ORM, no clock but `ev.now`) and must never raise
on partial or contradictory evidence (tests/diagnosis/test_properties.py). Content decides: the
code-version timeline (reference §8) appears only in wording, never as a condition.
Roles are proposals; diagnosis.engine settles them (e.g. promotes a fallback origin).
"""

from __future__ import annotations

from collections.abc import Callable

from diagnosis.evidence import Evidence
from diagnosis.rules.base import CONSEQUENCE, CONTRIBUTING, ORIGIN, Candidate, EvidenceItem
from diagnosis.rules.delivery import rule_bulk_fail, rule_callback_delivery, rule_unmapped_status
from diagnosis.rules.derivatives import branch_errors, rule_derivative_errors
from diagnosis.rules.lifecycle import (
    rule_deployment_drift,
    rule_housekeeping,
    rule_reconciled,
    rule_stuck,
    rule_trigger,
)
from diagnosis.rules.processing import (
    rule_branch_task_failed,
    rule_consolidate,
    rule_mediaconvert_job,
    rule_missing_processed_key,
    rule_uncatchable,
    rule_validation_error,
    rule_validation_failed,
)

__all__ = [
    "CONSEQUENCE",
    "CONTRIBUTING",
    "ORIGIN",
    "RULES",
    "Candidate",
    "EvidenceItem",
    "Rule",
    "branch_errors",
    "rule_stuck",
]

Rule = Callable[[Evidence], list[Candidate]]
RULES: list[Rule] = [
    rule_derivative_errors,
    rule_consolidate,
    rule_validation_failed,
    rule_validation_error,
    rule_branch_task_failed,
    rule_uncatchable,
    rule_mediaconvert_job,
    rule_missing_processed_key,
    rule_callback_delivery,
    rule_bulk_fail,
    rule_unmapped_status,
    rule_trigger,
    rule_reconciled,
    rule_deployment_drift,
    rule_housekeeping,
]
