"""Training infrastructure of `python -m audiocaps_tf.fit`.

    config.py       FitConfig: every option of a run (default, flag, checks), its command line and config.json form
    trainer.py      the run of a FitConfig: run directory, data, training (or 1NN indexing), scoring the test split
    losses.py       label-smoothed cross-entropy over caption tokens, <pad> ignored, exact under tf.distribute
    strategy.py     --strategy names -> tf.distribute strategies
    run_dir.py      the run directory: what it holds, creating, refusing and resuming runs
    data.py         the demo cache, preparing --data-dir, attribute overrides, pooled features
    evaluation.py   captioning a split with a model, scoring it, predictions CSVs
    callbacks.py    validation (greedy decoding + metrics), best model, learning-rate decay, early stopping
    averaging.py    --average-checkpoints: the kept checkpoints, their average, the choice of the final model
"""
