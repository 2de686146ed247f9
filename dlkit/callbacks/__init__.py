"""Training callbacks: progress, JSONL event log, resume checkpoint, best checkpoint,
moving average of the weights."""

from dlkit.callbacks.best_checkpoint import BestCheckpoint
from dlkit.callbacks.jsonl_logger import JSONLLogger
from dlkit.callbacks.progress import Progress
from dlkit.callbacks.resume import EpochClock, ResumeCheckpoint
from dlkit.callbacks.weight_average import WeightAverage

__all__ = ["BestCheckpoint", "EpochClock", "JSONLLogger", "Progress", "ResumeCheckpoint", "WeightAverage"]
