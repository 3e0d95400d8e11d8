"""Saving and restoring optimizer states (orbax), and continuing a torch run."""

from .from_torch import TorchCheckpointError, from_torch_checkpoint, load_torch_checkpoint
from .orbax import (
    CheckpointMismatch,
    check_compatible,
    latest_step,
    restore_checkpoint,
    save_checkpoint,
    state_from_raw,
)

__all__ = ["CheckpointMismatch", "TorchCheckpointError", "check_compatible",
           "from_torch_checkpoint", "latest_step", "load_torch_checkpoint",
           "restore_checkpoint", "save_checkpoint", "state_from_raw"]
