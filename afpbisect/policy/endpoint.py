"""The endpoints: the eager up-front check (`lazy_endpoints=False`), and what it means when
the clean endpoint cannot anchor the answer."""
from __future__ import annotations

from afpbisect.core.errors import InfraError
from afpbisect.core.verdict import Verdict
from afpbisect.policy.calibrate import calibrate
from afpbisect.policy.config import EndpointNotClean, EndpointUnbuildable
from afpbisect.policy.session import Run, short


def check_up_front(run: Run, racy_i: int, clean_i: int, racy_role: str, clean_role: str) -> None:
    """Calibrate the racy endpoint, then a light check of the clean one, before any search
    (the order before issue 18: two far builds that the lazy order often never needs).
    The clean endpoint's level is a search step's (`Run.light_level`) over the whole
    range: no false GOOD is met before it, so a resume asks the same of it."""
    calibrate(run, run.commits[racy_i], racy_i, f"{racy_role} endpoint")
    level = run.light_level((0, len(run.commits) - 1))
    v = run.judge(run.commits[clean_i], clean_i, level, "endpoint",
                  f"; {clean_role} endpoint, light level {level}")
    if v is not Verdict.GOOD:
        clean_endpoint_failed(run, v, run.commits[clean_i], clean_role)


def clean_endpoint_failed(run: Run, v: Verdict, commit, role: str) -> None:
    """The clean endpoint cannot anchor the search: no answer (RangeError)."""
    if v is Verdict.SKIP:
        why = run.store[commit].skip_reason(run.cfg.unhealthy_lead)
        raise EndpointUnbuildable(f"the {role} endpoint {commit} cannot be used: {why}")
    raise EndpointNotClean(not_clean_message(commit, role, run.cfg.find_fix))


def not_clean_message(commit, role: str, fix: bool) -> str:
    if fix:
        return (f"the {role} endpoint {commit} still shows the race signature: the race is not "
                f"fixed in this range")
    return (f"the {role} endpoint {commit} shows the race signature: the race is older than this "
            f"range; pick an older good endpoint")


def boundary_failed(run: Run, v: Verdict, commit, endpoint_role: str | None) -> None:
    """The boundary's clean side did not verify: search again, or raise (always when it
    is the clean endpoint, whose role `endpoint_role` names)."""
    ev = run.store[commit]
    if v is Verdict.SKIP and ev.build_error is not None and ev.valid_cycles:
        # it built and ran before; a build error now means the environment changed
        raise InfraError(f"{short(commit)} built before and not now")
    if endpoint_role is not None:
        clean_endpoint_failed(run, v, commit, endpoint_role)
    if v is Verdict.SKIP:
        # Unhealthy in its verification: it cannot carry the answer. The search now sees
        # it as a skip and ends around it.
        run.log(f"verify: {short(commit)} became untestable; searching again")
    else:
        run.log(f"verify caught the race on {short(commit)}: its light GOOD was a miss; "
                f"searching again (stored evidence reused)")
