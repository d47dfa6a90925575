"""Training under MultiWorkerMirroredStrategy: Keras' `Model.fit` epoch loop, without its two steps that fail there.

Keras 3's `fit` cannot run under MultiWorkerMirroredStrategy (keras-team/keras#20329, #20585): before training it
averages a whole batch of inputs across the workers to build the model symbolically, and after every step it
averages each scalar log with `strategy.reduce("MEAN", value, axis=0)`, which needs an axis 0. `fit_across_workers`
runs the same loop as `fit`: the callbacks through `keras.callbacks.CallbackList` (validation, BackupAndRestore,
TensorBoard and the progress bar behave as under `fit`), each step the model's own `train_step` in `strategy.run`
(Keras' optimizer sums the replicas' gradients), its scalar logs averaged over all replicas of all workers.

A worker that dies stops the collectives of the others: TensorFlow's heartbeats notice it, the next collective
raises `UnavailableError` (or `DeadlineExceeded`), and `fit_across_workers` turns that into a `WorkerLostError`
naming the cause. (No timeout per collective: the first one waits for every worker to prepare its data, which
may take hours on a large dataset.)
"""

import keras
import tensorflow as tf

__all__ = ["WorkerLostError", "fit_across_workers", "replica_slices"]


class WorkerLostError(RuntimeError):
    """Another worker of the cluster stopped (crashed, killed, or unreachable) while this one trained."""


def _scalar_logs(logs):
    return {name: float(value) for name, value in logs.items()}


def replica_slices(global_batches, context):
    """This worker's share of `global_batches`: of a global batch of n rows cut into R consecutive slices (R
    replicas in all, slice r rows r*n//R .. (r+1)*n//R - 1), the slices of this worker's replicas, one after the
    other (a `tf.distribute.InputContext` names them).

    Every worker reads the whole stream, so the global batches are exactly those of a one-worker run (the
    pipeline's length grouping and shuffling, which tf.distribute's auto-sharding would have split into one
    stream per worker, see the same pairs)."""
    replicas = context.num_replicas_in_sync
    local = replicas // context.num_input_pipelines
    first = context.input_pipeline_id * local

    def slices(*batch):  # tf.data passes a tuple's items as arguments
        batch = batch if len(batch) > 1 else batch[0]
        rows = tf.shape(tf.nest.flatten(batch)[0], out_type=tf.int64)[0]

        def replica_slice(index):
            begin, end = index * rows // replicas, (index + 1) * rows // replicas
            return tf.nest.map_structure(lambda tensor: tensor[begin:end], batch)

        return tf.data.Dataset.range(first, first + local).map(replica_slice)

    return global_batches.flat_map(slices)


def fit_across_workers(model, dataset, epochs, steps_per_epoch, callbacks=(), verbose=1):
    """`model.fit(dataset, epochs=, steps_per_epoch=, callbacks=, verbose=)` under the model's
    MultiWorkerMirroredStrategy (module docstring); `dataset` yields global batches. Returns the History."""
    strategy = model.distribute_strategy
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)  # outside the step: variables cannot be made in it
    iterator = iter(strategy.distribute_datasets_from_function(lambda context: replica_slices(dataset, context)))

    @tf.function
    def train_step(batch):
        logs = strategy.run(model.train_step, args=(batch,))
        return {name: strategy.reduce("MEAN", value, axis=None) for name, value in logs.items()}

    callback_list = keras.callbacks.CallbackList(list(callbacks), add_history=True, add_progbar=verbose != 0,
                                                 verbose=verbose, epochs=epochs, steps=steps_per_epoch, model=model)
    model.stop_training = False
    logs, epoch_logs = {}, None
    try:
        callback_list.on_train_begin()
        for epoch in range(model._initial_epoch or 0, epochs):  # BackupAndRestore sets the epoch to resume at
            model.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            for step in range(steps_per_epoch):
                callback_list.on_train_batch_begin(step)
                logs = _scalar_logs(train_step(next(iterator)))
                callback_list.on_train_batch_end(step, logs)
                if model.stop_training:
                    break
            epoch_logs = dict(logs)
            callback_list.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as err:
        raise WorkerLostError(f"another worker of the cluster stopped responding ({type(err).__name__}: "
                              f"{err.message.splitlines()[0] if err.message else ''}); this worker stops too. "
                              "Look at that worker's log for its error, then start every worker again with "
                              "--resume to continue from the last backup") from None
    model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=epoch_logs)
    return model.history
