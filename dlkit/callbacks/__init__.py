"""Training callbacks: progress, JSONL event log, resume checkpoint, best checkpoint."""

from dlkit.callbacks.best_checkpoint import BestCheckpoint
from dlkit.callbacks.jsonl_logger import JSONLLogger
from dlkit.callbacks.progress import Progress
from dlkit.callbacks.resume import ResumeCheckpoint

__all__ = ["BestCheckpoint", "JSONLLogger", "Progress", "ResumeCheckpoint"]
