"""The policy's store (commit -> Evidence) persisted in the run's state file."""
from __future__ import annotations

from afpbisect.core.errors import StateError
from afpbisect.core.state import SAVE_LOCK, State
from afpbisect.core.verdict import Evidence


def evidence_store(state: State) -> dict:
    """The policy's store (commit -> Evidence), backed by the state file."""
    raw = state.data.setdefault("evidence", {})
    try:
        return {k: Evidence.from_dict(v) for k, v in raw.items()}
    except ValueError as exc:
        raise StateError(f"state file {state.path} is corrupt ({exc}); use --restart to discard it") from None


def save_evidence(state: State, store: dict) -> None:
    with SAVE_LOCK:   # the store is read whole: not while a farm's worker writes it
        state.data["evidence"] = {str(k): v.to_dict() for k, v in list(store.items())}
        state.save()
