"""Saving and restoring optimizer states (orbax), and continuing a torch run."""

from .compatible import check_compatible, state_from_raw
from .errors import CheckpointError, CheckpointMismatch, CheckpointWarning, TorchCheckpointError
from .from_torch import from_torch_checkpoint, load_torch_checkpoint
from .orbax import latest_step, restore_checkpoint, save_checkpoint

__all__ = ["CheckpointError", "CheckpointMismatch", "CheckpointWarning", "TorchCheckpointError",
           "check_compatible", "from_torch_checkpoint", "latest_step", "load_torch_checkpoint",
           "restore_checkpoint", "save_checkpoint", "state_from_raw"]
