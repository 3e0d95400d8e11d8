"""PyTorch reference for the MMEngine generation: a config trained by MMEngine's real ``Runner``.

``run_mmengine(cfg, values, grads, steps_per_epoch=L, modules=..., dtype=...)`` builds a toy
model that owns ``values`` (torch names -> arrays) in real module types, trains it for
``len(grads)`` iterations with ``mmengine.runner.Runner.train()`` under ``cfg``, the loss of
iteration ``t`` having gradient ``grads[t]``, and returns an :class:`MMEngineRun`: per iteration
the lr / momentum (``betas[0]``) / weight decay each parameter's group used, the parameters after
the iteration, whether the optimizer stepped, the AMP loss scale, the logged ``grad_norm``; the
param groups as the constructor built them; the final optimizer, loss-scaler and scheduler
states; and MMEngine checkpoints saved where asked. Example::

    from torch_ref.mmengine import run_mmengine

    cfg = dict(
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4),
                           paramwise_cfg=dict(norm_decay_mult=0.0)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=20),
                         dict(type='CosineAnnealingLR', by_epoch=True, begin=1,
                              convert_to_iter_based=True)],
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=10))
    run = run_mmengine(cfg, values, grads, steps_per_epoch=10,
                       modules={'backbone.bn1': ('bn', 64)})
    run.lr['backbone.conv1.weight'][t], run.params[t]['neck.fc.weight'], run.stepped[t]

Arguments of ``run_mmengine``:

* ``cfg``: the config as MMEngine loads it (a plain dict): ``optim_wrapper`` (``type``
  ``OptimWrapper`` / ``AmpOptimWrapper``, ``constructor``, ``paramwise_cfg``, ``clip_grad``,
  ``accumulative_counts``, ``loss_scale``), ``param_scheduler`` (dict or list), ``train_cfg``
  (``type`` or ``by_epoch``, ``max_epochs`` / ``max_iters``), optional ``custom_hooks``,
  ``default_scope`` (``'mmengine'`` when absent, as ``Runner.from_cfg``), ``model`` (facts for
  layer decay, read only with the layer-decay constructor: ``type`` and
  ``backbone=dict(type=..., arch=... | depth=...)``), and
  ``default_hooks.param_scheduler`` if the config replaces it. It is deep-copied first.
* ``values``: ``{torch_name: array}`` in registration order; ``modules``: the owning module
  types (see :mod:`.model` for the spec); ``frozen``: names with ``requires_grad=False``.
* ``grads``: ``[{torch_name: array}]``, one per iteration; fewer than the config's run length
  stops the run after ``len(grads)`` iterations (schedules still built for the whole run; the
  stop comes after that iteration's hooks, and after ``after_train_epoch`` when it ends an
  epoch). ``inject_inf={t: name}`` sets the first element of ``grads[t][name]`` to ``inf``
  (``nan`` can be put in ``grads`` directly).
* ``steps_per_epoch``: the dataloader length; ``dtype``: ``'float32'`` / ``'float64'`` (or the
  numpy / torch dtype) of the parameters and gradients; by default the values' dtype.
* ``batch_size``: what the Runner takes for the total batch size (GPUs x per-GPU batch) when
  ``auto_scale_lr.enable`` is set (``lr *= batch_size / base_batch_size``); required then.
* ``frozen`` parameters are still in the single group of a config without ``paramwise_cfg``
  (upstream passes ``model.parameters()``); they get no gradient, so torch never moves them.
* ``checkpoint_iters`` / ``checkpoint_epochs``: save ``iter_{k}.pth`` after iteration ``k``
  (1-based count, ``after_train_iter``, as ``CheckpointHook(by_epoch=False)``) / ``epoch_{e}.pth``
  after epoch ``e`` (``after_train_epoch``, epoch loop only, as the default
  ``CheckpointHook``), both after ``ParamSchedulerHook``, into ``checkpoint_dir`` (a fresh
  temporary directory, left in place, when not given). ``run.checkpoints`` maps
  ``('iter', k)`` / ``('epoch', e)`` to the file.

``upstream_layer_depth(model_cfg)`` gives upstream's ``get_layer_depth`` for a ``model`` config
without a run, e.g. ``upstream_layer_depth(dict(type='ImageClassifier',
backbone=dict(type='SwinTransformer', arch='base')))('backbone.stages.2.blocks.3.norm1.weight')``.

What is real upstream code (mmengine 0.10.7, mmpretrain 1.2.0, torch 2.13.0): the ``Runner``
and its ``train()``: ``build_train_loop`` (epoch vs iteration loop, run length), the
``EpochBasedTrainLoop`` / ``IterBasedTrainLoop`` iteration order, ``build_optim_wrapper`` with
``DefaultOptimWrapperConstructor`` or MMPretrain's ``LearningRateDecayOptimWrapperConstructor``,
``OptimWrapper`` / ``AmpOptimWrapper`` (accumulation, ``initialize_count_status`` with
``max_iters``, loss scaling, clip_grad), ``build_param_scheduler`` (default ``end``,
``convert_to_iter_based``, ``by_epoch``), every scheduler, ``ParamSchedulerHook``,
``RuntimeInfoHook``, ``IterTimerHook``, ``DistSamplerSeedHook``, the config's ``custom_hooks``
(e.g. MMPretrain's ``SimSiamHook``) in their priority order, ``BaseModel.train_step``,
``Runner.save_checkpoint``; MMPretrain's ``LARS``, ``Lamb``, ``CosineAnnealingWeightDecay``,
``SimSiamHook``, the layer-decay constructor, and the ``get_layer_depth`` methods of its
classifiers and backbones (all executed from the installed files, see :mod:`.upstream` and
:mod:`.layer_depth`); torch's optimizers and ``GradScaler``.

Stand-ins, and why: the model (a ``BaseModel`` whose parameters sit in real ``nn`` module
types and whose loss has the given gradients, :mod:`.model`) and the dataset (indices: the data
do not matter); a backbone's ``__init__`` reduced to the attributes ``get_layer_depth`` reads;
the ``mmpretrain`` package (a stub: ``import mmpretrain`` needs mmcv) and the ``mmselfsup``
scope (MMPretrain's identical ``LARS`` and ``SimSiamHook`` registered under it); the AMP device
check and ``GradScaler`` device (CPU, :func:`.upstream.cpu_amp`). The runner gets
``logger`` and ``checkpoint`` default hooks removed (no log files, checkpoints only where
asked), a visualizer without backends, ``randomness=dict(seed=0)`` (the global RNG states of
the caller are restored afterwards), no environment report, and two recording hooks at
priorities HIGHEST and LOWEST (:mod:`.runner`). Hooks the toy model cannot serve
(``SwAVHook``, ``DeepClusterHook``, ``PreciseBNHook``, ...) are not registered: drop them from
``custom_hooks``.
"""

from .layer_depth import upstream_layer_depth
from .model import GradientModel, build_model
from .record import MMEngineRun
from .run import run_mmengine
from .upstream import load_mmpretrain

__all__ = ["GradientModel", "MMEngineRun", "build_model", "load_mmpretrain", "run_mmengine",
           "upstream_layer_depth"]
