"""Scores of a run that trains on several datasets at once (`fit --data-dir A B`), kept apart per dataset.

A run on one dataset scores its split as it always has: {"CIDEr": ..., ..., "num_clips": n}. A run on several
scores each one's own split and gives one flat dict: every metric's mean over the datasets under its plain name
(what the best model is chosen by: the mean validation CIDEr), "num_clips" the sum, and each dataset's scores
as "<dataset>/<metric>" (so Keras' logs, TensorBoard and metrics.json keep them apart). Dataset names are their
directories' names (`config.dataset_names`).
"""

import statistics

from audiocaps_tf import metrics

__all__ = ["combined_scores", "dataset_scores"]


def combined_scores(scores_by_dataset):
    """One scores dict (module docstring) of {dataset name: scores}; {None: scores} gives those scores."""
    if list(scores_by_dataset) == [None]:
        return dict(scores_by_dataset[None])
    combined = {}
    for metric in metrics.METRICS:
        values = [scores.get(metric) for scores in scores_by_dataset.values()]
        combined[metric] = None if any(value is None for value in values) else statistics.fmean(values)
    combined["num_clips"] = sum(scores["num_clips"] for scores in scores_by_dataset.values())
    for name, scores in scores_by_dataset.items():
        combined.update({f"{name}/{metric}": value for metric, value in scores.items()})
    return combined


def dataset_scores(combined, name):
    """The scores of dataset `name` in a `combined_scores` dict."""
    prefix = f"{name}/"
    return {key[len(prefix):]: value for key, value in combined.items() if key.startswith(prefix)}
