"""The reliability tests' figures, shown in their own section at the end of the pytest run.

Tests record what they measured (calls, outcomes per fault, the ledger check); the section
appears whether the tests pass or fail and without `-s` or `-rA`, so CI logs always carry it.
"""

from __future__ import annotations

import collections

_faults: dict[tuple[str, str], list] = {}  # (fault, mode) → [calls, outcomes, ledger problems]
_notes: list[str] = []


def fault(name: str, mode: str, causes: collections.Counter, problems: list[str]) -> None:
    """One load of the fault matrix: its calls' outcomes and whether the ledger came out whole."""
    row = _faults.setdefault((name, mode), [0, collections.Counter(), []])
    row[0] += sum(causes.values())
    row[1].update(causes)
    row[2] += problems


def note(line: str) -> None:
    """A free-form figure (a fuzz run, a restart test)."""
    _notes.append(line)


def lines() -> list[str]:
    out = []
    if _faults:
        width = max(len(name) for name, _ in _faults)
        out.append(f"{'fault':<{width}}  {'mode':<10}  {'calls':>5}  ledger  outcomes")
        for (name, mode), (calls, causes, problems) in _faults.items():
            ledger = "clean" if not problems else "FAILED"
            outcomes = ", ".join(f"{cause} {n}" for cause, n in sorted(causes.items()))
            out.append(f"{name:<{width}}  {mode:<10}  {calls:>5}  {ledger:<6}  {outcomes}")
            out += [f"    {problem}" for problem in problems]
        total = sum(row[0] for row in _faults.values())
        lost = sum(bool(row[2]) for row in _faults.values())
        out.append(f"{len(_faults)} fault loads, {total} calls; loads with a problem: {lost}")
    return out + _notes
