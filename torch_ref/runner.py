"""A minimal mmcv 1.x runner: the clock and the hook call order, nothing else.

``EpochBasedRunner.train`` calls ``before_run`` once, then per epoch
``before_train_epoch`` and per batch ``before_train_iter``, the iteration body,
``after_train_iter``; ``iter`` counts every batch, ``epoch`` every pass.
"""

from __future__ import annotations


class ScheduleRunner:
    def __init__(self, optimizer, hooks, *, steps_per_epoch=None, max_epochs=None,
                 max_iters=None):
        self.optimizer = optimizer
        # mmcv sorts hooks by priority; equal priorities keep registration order
        self.hooks = sorted((h for h in hooks if h is not None),
                            key=lambda h: getattr(h, "priority", 50))
        self.steps_per_epoch = steps_per_epoch
        if max_epochs is not None:
            self.max_epochs, self.max_iters = max_epochs, max_epochs * steps_per_epoch
        else:
            self.max_epochs, self.max_iters = None, max_iters
        self.epoch = 0
        self.iter = 0
        self.inner_iter = 0

    def call(self, name):
        for hook in self.hooks:
            getattr(hook, name)(self)

    def run(self, body=None, num_iters=None):
        """Run ``num_iters`` iterations (default: the whole run) calling ``body(self)``."""
        num_iters = self.max_iters if num_iters is None else num_iters
        spe = self.steps_per_epoch or self.max_iters
        self.call("before_run")
        while self.iter < num_iters:
            self.inner_iter = self.iter % spe
            if self.inner_iter == 0:
                self.epoch = self.iter // spe
                self.call("before_train_epoch")
            self.call("before_train_iter")
            if body is not None:
                body(self)
            self.call("after_train_iter")
            self.iter += 1

    def jump_to(self, it):
        """State at iteration ``it`` as after a resume: epoch start hooks, then the iteration's
        (by-epoch values depend only on the current epoch's ``before_train_epoch``)."""
        spe = self.steps_per_epoch or self.max_iters
        self.iter, self.epoch = it, it // spe
        self.call("before_train_epoch")
        self.call("before_train_iter")
