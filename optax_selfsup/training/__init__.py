"""Train a small Flax model with an MMSelfSup config through ``build_optimizer``.

The engine of ``optax-selfsup train`` (see ``docs/training.md``): ``data`` (a
generated labelled image dataset, the loader order, augmentations), ``tasks``
(which model of ``optax_selfsup.models`` a config trains, and its glue),
``run_length`` (a config's schedules fitted onto a short run), ``loop`` (the
training loop), ``log``, ``checkpoints`` (orbax) and ``probe`` (linear probe).
Importing this package does not import jax.
"""

from .loop import TrainSettings, train

__all__ = ["TrainSettings", "train"]
