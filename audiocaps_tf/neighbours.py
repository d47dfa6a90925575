"""Pooled features and the exact 1-nearest-neighbour search over them, in NumPy (the paper's 1NN, section 5.2).

Features are mean-pooled over time and compared by L2 distance. `nearest_training_clips` computes that in float64
blocks (975 queries x 49,838 train clips x 512 dims never holds more than block_size x block_size distances), and
`exclude_self=True` keeps a training clip from finding itself when the queries are the training set. The models'
in-graph search (`layers.NearestNeighbourIndex`) answers the same in float32 for serving.
"""

import numpy as np

__all__ = ["DEFAULT_BLOCK_SIZE", "mean_pool", "pooled_array", "nearest_training_clips"]

DEFAULT_BLOCK_SIZE = 2048


def mean_pool(features):
    """Time-mean-pooled features [N, C].

    `features` is a sequence of [T_i, C] arrays (T may differ per clip), a [N, T, C] array, or an already pooled
    [N, C] array (returned as it is) or sequence of [C] vectors. Pooling is computed in float64.
    """
    if isinstance(features, np.ndarray):
        if features.ndim == 2:
            return features
        if features.ndim == 3:
            return features.mean(axis=1, dtype=np.float64)
        raise ValueError(f"features must be [N, C] or [N, T, C], got shape {features.shape}")
    pooled = []
    for i, clip in enumerate(features):
        clip = np.asarray(clip)
        if clip.ndim == 1:
            pooled.append(clip.astype(np.float64))
        elif clip.ndim == 2:
            if clip.shape[0] == 0:
                raise ValueError(f"clip {i} has no time steps")
            pooled.append(clip.mean(axis=0, dtype=np.float64))
        else:
            raise ValueError(f"clip {i}: features must be [T, C] or [C], got shape {clip.shape}")
    if not pooled:
        raise ValueError("no clips")
    if len({p.shape for p in pooled}) > 1:
        raise ValueError(f"clips have different feature sizes: {sorted({p.shape[0] for p in pooled})}")
    return np.stack(pooled)


def pooled_array(features):
    """Pooled float32 features [N, C] from anything `mean_pool` accepts, or a tensor."""
    if hasattr(features, "numpy") and not isinstance(features, np.ndarray):
        features = features.numpy()
    return np.asarray(mean_pool(features), np.float32)


def nearest_training_clips(query_features, train_features, exclude_self=False, block_size=DEFAULT_BLOCK_SIZE,
                           return_distances=False):
    """For each query, the index of its nearest training clip by L2 distance between mean-pooled features.

    Inputs are anything `mean_pool` accepts. Squared distances ||q||^2 - 2 q.t + ||t||^2 are computed in float64,
    block_size queries x block_size train clips at a time. Ties go to the lowest training index.
    `exclude_self=True` (the queries are the training set, in the same order) skips query i's own clip i.
    Returns an int64 array [N_query], or (indices, L2 distances) when `return_distances`.
    """
    queries = mean_pool(query_features)
    train = mean_pool(train_features)
    if queries.shape[1] != train.shape[1]:
        raise ValueError(f"query features have {queries.shape[1]} dims, train features {train.shape[1]}")
    if exclude_self and len(queries) != len(train):
        raise ValueError(f"exclude_self needs the queries to be the training set: {len(queries)} != {len(train)}")
    if len(train) < (2 if exclude_self else 1):
        raise ValueError("not enough training clips to find a neighbour")
    if block_size < 1:
        raise ValueError("block_size must be >= 1")

    train_norms = np.concatenate([
        np.einsum("ij,ij->i", b, b) for b in (train[s:s + block_size].astype(np.float64)
                                              for s in range(0, len(train), block_size))
    ])
    best_index = np.zeros(len(queries), dtype=np.int64)
    best_distance = np.full(len(queries), np.inf)
    for q0 in range(0, len(queries), block_size):
        q = queries[q0:q0 + block_size].astype(np.float64)
        q_norms = np.einsum("ij,ij->i", q, q)
        rows = np.arange(len(q))
        block_best = np.full(len(q), np.inf)
        block_index = np.zeros(len(q), dtype=np.int64)
        for t0 in range(0, len(train), block_size):
            t = train[t0:t0 + block_size].astype(np.float64)
            distances = q_norms[:, None] - 2.0 * (q @ t.T) + train_norms[None, t0:t0 + len(t)]
            if exclude_self:
                own = q0 + rows - t0  # column of each query's own clip in this train block
                inside = (own >= 0) & (own < len(t))
                distances[rows[inside], own[inside]] = np.inf
            candidates = np.argmin(distances, axis=1)  # first minimum: lowest index within the block
            values = distances[rows, candidates]
            better = values < block_best  # strict: an earlier block keeps its tie
            block_best[better] = values[better]
            block_index[better] = t0 + candidates[better]
        best_index[q0:q0 + len(q)] = block_index
        best_distance[q0:q0 + len(q)] = block_best
    if return_distances:
        return best_index, np.sqrt(np.maximum(best_distance, 0.0))
    return best_index
