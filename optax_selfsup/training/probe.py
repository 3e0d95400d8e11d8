"""Linear probe: how much of the label a frozen backbone's features hold.

Features of the un-augmented training images and of a held-out test set are
extracted with the trained backbone (no gradient reaches it), standardised with
the training features' mean and standard deviation, and a multinomial logistic
regression (softmax cross-entropy, L2 weight decay ``1e-4``) is fit on the
training features by full-batch Adam (lr 0.05, 500 steps). The result is the
top-1 accuracy on the test set (chance: ``1 / classes``), as MMSelfSup's
linear evaluation reports it, much smaller.

Feature extraction runs the backbone as the models are built, BatchNorm
normalising with the statistics of the batch (MMSelfSup's linear evaluation
uses the running statistics instead), in batches of 256 images; the last batch
is filled up with images from the start of the set, so every batch has the
same size and real-image statistics and the extractor compiles once.
"""

from __future__ import annotations

WEIGHT_DECAY = 1e-4
LEARNING_RATE = 0.05
STEPS = 500


def extract(features_fn, params, model_state, images, batch_size: int = 256):
    import jax
    import numpy as np

    fn = jax.jit(features_fn)
    n = len(images)
    padded = np.concatenate([images, np.resize(images, (-n % batch_size,) + images.shape[1:])])
    out = [np.asarray(fn(params, model_state, padded[i:i + batch_size]))
           for i in range(0, len(padded), batch_size)]
    return np.concatenate(out, 0)[:n]


def fit_and_score(train_x, train_y, test_x, test_y, num_classes: int) -> dict:
    """Train the probe on (train_x, train_y); ``{'train_accuracy', 'test_accuracy'}`` in %."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    weights = {"w": jnp.zeros((train_x.shape[1], num_classes)), "b": jnp.zeros(num_classes)}
    tx = optax.adam(LEARNING_RATE)

    def loss(w, x, y):
        logits = x @ w["w"] + w["b"]
        data = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return data + 0.5 * WEIGHT_DECAY * jnp.sum(w["w"] ** 2)

    @jax.jit
    def fit(w, x, y):
        def step(carry, _):
            w, state = carry
            grads = jax.grad(loss)(w, x, y)
            updates, state = tx.update(grads, state, w)
            return (optax.apply_updates(w, updates), state), None

        (w, _), _ = jax.lax.scan(step, (w, tx.init(w)), None, length=STEPS)
        return w

    weights = fit(weights, jnp.asarray(train_x), jnp.asarray(train_y))

    def accuracy(x, y):
        predicted = np.asarray(jnp.argmax(jnp.asarray(x) @ weights["w"] + weights["b"], -1))
        return float(100.0 * np.mean(predicted == y))

    return {"train_accuracy": accuracy(train_x, train_y),
            "test_accuracy": accuracy(test_x, test_y)}


def linear_probe(task, params, model_state, train, test, num_classes: int) -> dict:
    """``train`` / ``test``: ``(images, labels)``; returns accuracies in % and the chance level."""
    train_x = extract(task.features, params, model_state, train[0])
    test_x = extract(task.features, params, model_state, test[0])
    result = fit_and_score(train_x, train[1], test_x, test[1], num_classes)
    result["chance"] = 100.0 / num_classes
    result["feature_dims"] = int(train_x.shape[1])
    return result
