"""The errors and the warning of checkpoint reading and writing."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or read: damaged, incomplete, unsupported."""


class CheckpointMismatch(CheckpointError):
    """A checkpoint's params or optimizer state do not fit the templates or config given."""


class TorchCheckpointError(CheckpointError):
    """The torch checkpoint does not fit the config or the parameter tree."""


class CheckpointWarning(UserWarning):
    """A checkpoint was accepted without a check it could not be given (an old checkpoint
    without the optimizer record, no ``config=``, a skipped incomplete step)."""
