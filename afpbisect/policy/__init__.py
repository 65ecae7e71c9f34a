"""The bisection policy: calibration, light steps, boundary verification, confirmation.

Works over an abstract environment (`Env`: build / cycle / release), so the real run and
`bench/simulate.py` go through the same code. Nothing here imports docker or git. One
module per phase: calibrate, endpoint, search (and the entry point), verify, confirm; the
good/bad rule stays in one function, `verdict.decide`.

Why this shape (ticket 8667; NOTES.md "The repro"; numbers from bench/simulate.py):

* A hit is proof of the race; the only possible error is a false GOOD, a racy commit that
  started clean every time. The answer (last GOOD, first BAD] is therefore wrong exactly
  when the commit on its clean side is racy. Every other GOOD only steers the search: a
  false one costs time, never correctness, because the search then ends on or above
  it, and the clean side of the boundary is always verified.
* So search steps are LIGHT: BAD at the first hit, GOOD after a level priced in builds
  (`light.py`). After the search ONE HEAVY verification of the boundary's clean side
  spends the error budget (1 - confidence) where an error changes the answer. If it hits,
  that commit was a false GOOD: search again (the store makes the replay free) and verify
  the new boundary.
* The heavy level does not trust an estimate of p: it compares with the calibration
  (`clean_cycles_needed_vs_reference`), which bounds the miss for EVERY p, lucky
  calibrations included, and with a re-calibration on the culprit at the end (the lower
  rate rules). It counts only clean cycles run after the search chose the commit.
* Nothing needs the endpoints built up front (issue 18): the calibration runs on the first
  commit the search sees racy (its selecting hit left out), and the clean endpoint is
  tested only when the boundary ends on it, where the verification covers it. The
  search's order comes from a prior and a build price (`search.weighted_least_satisfying`);
  the answer and its proof do not depend on them.
* The r-th verification on a bisection gets 6/(pi r)^2 of the budget, so the misses of all
  verifications add up to at most 1 - confidence (union bound).
* With `find_fix` the terms are inverted (git bisect --term-old=racy --term-new=fixed): the
  racy side is the old one, the answer is the first clean commit, and that commit itself
  gets the heavy verification.

Verdicts in the store and in StepRecord are in race terms in both modes: BAD = the race
was seen, GOOD = not seen in enough clean cycles.

Resuming: `store` (commit -> Evidence) is the whole state; nothing is ever discarded and
a step whose evidence already satisfies `decide` at the level asked costs no cycle. The
calibration is found again in the store (`Evidence.calib`), the round of a verification is
counted from the store (1 + false GOODs caught), and `clean_needed` of a GOOD keeps the
clean count the search saw, so "clean cycles beyond it" means the same thing on a resume.
"""
from afpbisect.policy.config import (
    EndpointNotClean,
    EndpointUnbuildable,
    Env,
    Handler,
    NotReproducible,
    PolicyConfig,
    RangeError,
    Undecided,
)
from afpbisect.policy.bisector import bisect
from afpbisect.policy.fixed import bisect_fixed
from afpbisect.policy.patch import check_patch
from afpbisect.policy.records import PHASES, BisectResult, PatchCheck, StepRecord

__all__ = [
    "PHASES", "BisectResult", "EndpointNotClean", "EndpointUnbuildable", "Env", "Handler", "NotReproducible",
    "PatchCheck", "PolicyConfig", "RangeError", "StepRecord", "Undecided", "bisect", "bisect_fixed",
    "check_patch",
]
