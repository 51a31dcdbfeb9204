"""What differs between Keras backends in the tests (imported by test modules).

The backend is fixed per process (`KERAS_BACKEND`), so `make test` runs the
backend-agnostic modules once per installed backend.
"""

import keras
import numpy as np

BACKEND = keras.backend.backend()


def outputs_and_gradients(layer, x, probes, **call_kwargs):
    """The layer's outputs, and the gradients of `sum(output * probe)`.

    Returns:
        `(outputs, grads)`: the flattened outputs, and the gradients with
        respect to `[x] + layer.weights`, as NumPy arrays.
    """

    def loss_of(outputs):
        return sum(
            keras.ops.sum(out * keras.ops.convert_to_tensor(probe))
            for out, probe in zip(outputs, probes, strict=True)
        )

    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = keras.tree.flatten(layer(x, **call_kwargs))
            loss = loss_of(outputs)
        grads = tape.gradient(loss, [x] + [w.value for w in layer.weights])
    elif BACKEND == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]
        assert [id(v) for v in layer.trainable_variables] == [
            id(w) for w in layer.weights
        ], "weights and trainable_variables differ in order"

        def loss_fn(x, trainable):
            outputs, _ = layer.stateless_call(
                trainable, non_trainable, x, **call_kwargs
            )
            outputs = keras.tree.flatten(outputs)
            return loss_of(outputs), outputs

        # One compiled program for the forward and backward passes: eager
        # JAX compiles each scan of the loop separately, several times over.
        (_, outputs), (d_x, d_weights) = jax.jit(
            jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)
        )(jax.numpy.asarray(x), trainable)
        grads = [d_x, *d_weights]
    elif BACKEND == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        outputs = keras.tree.flatten(layer(x, **call_kwargs))
        grads = torch.autograd.grad(
            loss_of(outputs), [x] + [w.value for w in layer.weights]
        )
    else:
        raise NotImplementedError(f"no gradient helper for {BACKEND}")
    return (
        [keras.ops.convert_to_numpy(o) for o in outputs],
        [keras.ops.convert_to_numpy(g) for g in grads],
    )


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))
