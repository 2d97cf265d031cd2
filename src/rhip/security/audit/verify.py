"""Verifying the audit chain, with each problem worded for an operator."""

from __future__ import annotations

from dataclasses import dataclass, field

from rhip.db.audit import Problem
from rhip.db.engine import Database
from rhip.security.audit.repository import entry_hash, verify_log


def describe(problem: Problem) -> str:
    """One line naming the entries a problem concerns: ``entry seq 41 (id …) altered``."""
    ident = f" (id {problem.id})" if problem.id else ""
    kind, seq = problem.kind, problem.seq
    if kind == "altered":
        return f"entry seq {seq}{ident} altered"
    if kind == "deleted":
        if problem.last is not None and problem.last != seq:
            return f"entries seq {seq} to {problem.last} deleted"
        return f"entry seq {seq} deleted"
    if kind == "reordered":
        return f"entries {seq} and {problem.other} reordered"
    if kind == "broken":
        return f"entry seq {seq}{ident} does not follow entry {seq - 1}: {problem.detail}"
    if kind == "added":
        return f"entries seq {seq} to {problem.last} added after the recorded head of the chain"
    if kind == "inserted":
        return f"entry seq {seq}{ident} inserted: {problem.detail}"
    return f"entry seq {seq}{ident}: {problem.detail}"


@dataclass
class VerifyReport:
    """What a verification found: the problems (worded), and the head of the chain it checked."""

    problems: list[Problem] = field(default_factory=list)
    head_seq: int = 0
    head_hash: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the chain is intact."""
        return not self.problems

    @property
    def messages(self) -> list[str]:
        """Each problem in words."""
        return [describe(p) for p in self.problems]


def verify(db: Database, algorithm: str | None = None, anchors: dict[int, str] | None = None) -> VerifyReport:
    """Check the whole chain; ``anchors`` (seq → hash noted earlier, e.g. printed by a previous run) must
    still hold, which also catches a chain rewritten from its start."""
    problems, head = verify_log(db, algorithm)
    for seq, expected in sorted((anchors or {}).items()):
        found = entry_hash(db, seq)
        if found is None:
            problems.append(Problem("deleted", seq, detail="an anchored entry"))
        elif found != expected.lower():
            problems.append(Problem("anchor", seq, detail="its hash differs from the anchor noted earlier"))
    report = VerifyReport(problems)
    if head is not None:
        report.head_seq, report.head_hash = head
    return report
