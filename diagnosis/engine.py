"""The diagnosis engine: run every rule over one job's Evidence, settle roles, word the findings.

Pure (no ORM): `diagnose(evidence)` → ordered findings. A rule that raises is a bug, but one bad
rule must not hide what the others found: it is logged and skipped (the property tests make sure
none does).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from diagnosis import catalog
from diagnosis.evidence import Evidence
from diagnosis.rules import CONSEQUENCE, CONTRIBUTING, ORIGIN, RULES, Candidate, rule_stuck

logger = logging.getLogger(__name__)

# Bump when rules or wording change: stored diagnoses of an older engine are recomputed.
ENGINE_VERSION = "2026.11.29.3"
ROLE_ORDER = {ORIGIN: 0, CONTRIBUTING: 1, CONSEQUENCE: 2}
DEFAULT_STUCK_AFTER_MINUTES = 60


@dataclass
class Finding:
    failure_mode: str
    cause: str
    role: str
    title_en: str
    title_pt_br: str
    summary_en: str
    summary_pt_br: str
    action_en: str
    action_pt_br: str
    confidence: float
    evidence: list[dict[str, str]]
    missing_evidence: list[dict[str, str]]
    failing_state: str
    signature: str
    signature_text: str
    params: dict[str, str] = field(default_factory=dict)

    def title(self, lang: str = "en") -> str:
        return self.title_pt_br if lang == "pt-br" else self.title_en

    def summary(self, lang: str = "en") -> str:
        return self.summary_pt_br if lang == "pt-br" else self.summary_en

    def action(self, lang: str = "en") -> str:
        return self.action_pt_br if lang == "pt-br" else self.action_en


def diagnose(evidence: Evidence, *, stuck_after_minutes: int = DEFAULT_STUCK_AFTER_MINUTES) -> list[Finding]:
    """Findings for one job, origin first. A job that is fine yields no origin finding."""
    candidates: list[Candidate] = []
    rules: list[Any] = [*RULES, lambda ev: rule_stuck(ev, stuck_after_minutes=stuck_after_minutes)]
    for rule in rules:
        try:
            candidates.extend(rule(evidence))
        except Exception:  # one broken rule must not hide the others' findings
            logger.exception("diagnosis rule %s failed on job %s", getattr(rule, "__name__", rule), evidence.job.toq_id)
    candidates = _dedupe(candidates)
    _settle_roles(candidates)
    candidates.sort(key=lambda c: (ROLE_ORDER.get(c.role, 9), _fm_number(c.failure_mode), -c.confidence))
    status = evidence.job.status
    return [_word(c, status) for c in candidates]


def _fm_number(fm: str) -> int:
    digits = fm.removeprefix("FM-")
    return int(digits) if digits.isdigit() else 99


def _dedupe(candidates: list[Candidate]) -> list[Candidate]:
    out: dict[tuple[str, str], Candidate] = {}
    for c in candidates:
        key = (c.failure_mode, c.cause)
        if key in out:
            kept = out[key]
            kept.evidence.extend(e for e in c.evidence if e not in kept.evidence)
            kept.confidence = max(kept.confidence, c.confidence)
        else:
            out[key] = c
    return list(out.values())


def _settle_roles(candidates: list[Candidate]) -> None:
    """With no origin found, the earliest fallback (e.g. FM-14 escalation, FM-29 stuck) becomes the
    origin, less certain and saying what evidence would name the real first failure."""
    if any(c.role == ORIGIN for c in candidates):
        return
    fallbacks = [c for c in candidates if c.can_be_origin]
    if not fallbacks:
        return
    chosen = min(fallbacks, key=lambda c: _fm_number(c.failure_mode))
    chosen.role = ORIGIN
    chosen.confidence = round(min(chosen.confidence, 0.6), 2)
    if "origin" not in chosen.missing:
        chosen.missing.append("origin")


class _Params(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _render(template: str, params: dict[str, str]) -> str:
    try:
        return template.format_map(_Params(params))
    except (ValueError, IndexError, AttributeError):  # a stray brace in a template
        return template


def _word(c: Candidate, status: str) -> Finding:
    mode = catalog.FM_TEXT.get(c.failure_mode)
    params = {"cause": c.cause, "status": status, **c.params}
    title = mode.title if mode else catalog.T(c.failure_mode, c.failure_mode)
    summary = mode.summary if mode else catalog.T("", "")
    action = mode.action if mode else catalog.T("", "")
    cause_text = catalog.CAUSE_TEXT.get((c.failure_mode, c.cause))
    detail = cause_text[0] if cause_text else catalog.GENERIC_CAUSE
    if cause_text and cause_text[1] is not None:
        action = cause_text[1]
    signature_text = "|".join([c.failure_mode, c.cause, c.failing_state, normalise_message(c.message)])
    return Finding(
        failure_mode=c.failure_mode,
        cause=c.cause,
        role=c.role,
        title_en=title.en,
        title_pt_br=title.pt_br,
        summary_en=" ".join(s for s in (_render(summary.en, params), _render(detail.en, params)) if s),
        summary_pt_br=" ".join(s for s in (_render(summary.pt_br, params), _render(detail.pt_br, params)) if s),
        action_en=_render(action.en, params),
        action_pt_br=_render(action.pt_br, params),
        confidence=max(0.0, min(1.0, float(c.confidence))),
        evidence=[e.as_dict() for e in c.evidence],
        missing_evidence=[
            {"en": catalog.MISSING[m].en, "pt_br": catalog.MISSING[m].pt_br}
            if m in catalog.MISSING
            else {"en": m, "pt_br": m}
            for m in c.missing
        ],
        failing_state=c.failing_state,
        signature=hashlib.sha256(signature_text.encode()).hexdigest()[:32],
        signature_text=signature_text[:2000],
        params=params,
    )


_NORMALISERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"arn:aws:[^\s\"',]+"), "<arn>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{16,}\b", re.I), "<hash>"),
    (re.compile(r"\b\d+/(raw|processed)/[^\s\"',|]+"), "<key>"),
    (re.compile(r"s3://[^\s\"',|]+"), "<s3>"),
    (re.compile(r"\d+(\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def normalise_message(message: str) -> str:
    """A message with ids, numbers, keys and hashes stripped: the failure-group part of a signature."""
    text = message or ""
    for pattern, repl in _NORMALISERS:
        text = pattern.sub(repl, text)
    return text.strip()[:500]
