"""LoopForge: a typed state machine with a tamper-evident audit trail for issue → PR → CI → merge → close."""

from loopforge.errors import ConcurrencyError, LoopForgeError, RecordExists, RecordNotFound, TransitionError
from loopforge.records import LoopRecord, RecordHead, RecordSpec, create_record, record_id_for
from loopforge.repository.base import Page, RecordQuery, Repository
from loopforge.service import CheckResult, LoopService, TransitionHook, TransitionResult, Veto
from loopforge.states import VALID_TRANSITIONS, LoopState
from loopforge.trail import LoopTransition, Outcome, VerifyReport

__version__ = "0.2.0"

__all__ = [
    "VALID_TRANSITIONS",
    "CheckResult",
    "ConcurrencyError",
    "LoopForgeError",
    "LoopRecord",
    "LoopService",
    "LoopState",
    "LoopTransition",
    "Outcome",
    "Page",
    "RecordExists",
    "RecordHead",
    "RecordNotFound",
    "RecordQuery",
    "RecordSpec",
    "Repository",
    "TransitionError",
    "TransitionHook",
    "TransitionResult",
    "VerifyReport",
    "Veto",
    "create_record",
    "record_id_for",
]
