"""Training callbacks: progress, JSONL event log, resume checkpoint, best checkpoint."""

from dlkit.callbacks.best_checkpoint import BestCheckpoint
from dlkit.callbacks.jsonl_logger import JSONLLogger
from dlkit.callbacks.progress import Progress
from dlkit.callbacks.resume import EpochClock, ResumeCheckpoint

__all__ = ["BestCheckpoint", "EpochClock", "JSONLLogger", "Progress", "ResumeCheckpoint"]
