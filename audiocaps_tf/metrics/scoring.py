"""Scoring captions: pycocoevalcap's BLEU, ROUGE-L and CIDEr in Python while METEOR and SPICE run in Java threads;
the paper's "Human" row; the paper's table layout."""

import dataclasses
import math
import threading

import numpy as np

# pycocoevalcap's Python scorers; its Java wrappers (PTBTokenizer, Meteor, Spice) are replaced by this package's.
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from audiocaps_tf.metrics.java import find_java, tokenize
from audiocaps_tf.metrics.meteor import meteor_scores
from audiocaps_tf.metrics.spice import resolve_spice, run_spice

METRICS = ("BLEU_1", "BLEU_2", "BLEU_3", "BLEU_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE", "SPIDEr")
# The column order of the paper's Table 2 (B-1..B-4, METEOR, CIDEr, ROUGE-L, SPICE), then SPIDEr.
PAPER_ORDER = ("BLEU_1", "BLEU_2", "BLEU_3", "BLEU_4", "METEOR", "CIDEr", "ROUGE_L", "SPICE", "SPIDEr")
PAPER_NAMES = {
    "BLEU_1": "B-1", "BLEU_2": "B-2", "BLEU_3": "B-3", "BLEU_4": "B-4", "METEOR": "METEOR",
    "CIDEr": "CIDEr", "ROUGE_L": "ROUGE-L", "SPICE": "SPICE", "SPIDEr": "SPIDEr",
}


@dataclasses.dataclass
class _Corpus:
    """One set of tokenized hypotheses (one per clip) with their tokenized references."""

    hypotheses: list
    references: list


def _score_corpora(corpora, java, corenlp_dir):
    """[(scores x100, {metric: [per-clip x100]})] for each corpus; Java scorers run in threads meanwhile."""
    results = [dict() for _ in corpora]
    per_clip = [dict() for _ in corpora]
    errors = []

    def score_meteor():
        try:
            for i, (score, segments) in enumerate(meteor_scores(java, corpora)):
                results[i]["METEOR"] = 100 * score
                per_clip[i]["METEOR"] = [100 * s for s in segments]
        except BaseException as err:  # re-raised in the calling thread
            errors.append(err)

    def score_spice():
        try:
            items = [(f"{i}:{j}", hypothesis, refs)
                     for i, corpus in enumerate(corpora)
                     for j, (hypothesis, refs) in enumerate(zip(corpus.hypotheses, corpus.references))
                     if hypothesis]
            f_scores = run_spice(java, corenlp_dir, items) if items else {}
            for i, corpus in enumerate(corpora):
                clip_scores = [f_scores.get(f"{i}:{j}", math.nan) for j in range(len(corpus.hypotheses))]
                clip_scores = [0.0 if math.isnan(s) else 100 * s for s in clip_scores]
                per_clip[i]["SPICE"] = clip_scores
                results[i]["SPICE"] = float(np.mean(clip_scores))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=score_meteor, daemon=True)]
    if corenlp_dir is not None:
        threads.append(threading.Thread(target=score_spice, daemon=True))
    for thread in threads:
        thread.start()
    try:
        for i, corpus in enumerate(corpora):
            gts = {j: list(refs) for j, refs in enumerate(corpus.references)}
            res = {j: [hypothesis] for j, hypothesis in enumerate(corpus.hypotheses)}
            bleu, bleu_clips = Bleu(4).compute_score(gts, res, verbose=0)
            for n in range(4):
                results[i][f"BLEU_{n + 1}"] = 100 * float(bleu[n])
                per_clip[i][f"BLEU_{n + 1}"] = [100 * float(s) for s in bleu_clips[n]]
            rouge, rouge_clips = Rouge().compute_score(gts, res)
            results[i]["ROUGE_L"] = 100 * float(rouge)
            per_clip[i]["ROUGE_L"] = [100 * float(s) for s in rouge_clips]
            cider, cider_clips = Cider().compute_score(gts, res)
            results[i]["CIDEr"] = 100 * float(cider)
            per_clip[i]["CIDEr"] = [100 * float(s) for s in cider_clips]
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    for scores, clips in zip(results, per_clip):
        scores.setdefault("SPICE", None)
        if scores["SPICE"] is None:
            scores["SPIDEr"] = None
            n = len(clips["CIDEr"])
            clips["SPICE"] = clips["SPIDEr"] = [None] * n
        else:
            scores["SPIDEr"] = (scores["CIDEr"] + scores["SPICE"]) / 2
            clips["SPIDEr"] = [(c + s) / 2 for c, s in zip(clips["CIDEr"], clips["SPICE"])]
    return [({m: scores[m] for m in METRICS}, clips) for scores, clips in zip(results, per_clip)]


def _check_inputs(predictions, references):
    if not predictions:
        raise ValueError("no predictions to score")
    missing = [k for k in references if k not in predictions]
    unknown = [k for k in predictions if k not in references]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"{len(missing)} clip(s) of the references have no prediction, e.g. {missing[:5]}")
        if unknown:
            parts.append(f"{len(unknown)} prediction(s) are for clips without references, e.g. {unknown[:5]}")
        raise ValueError("predictions and references must cover the same clips: " + "; ".join(parts))
    for clip, caption in predictions.items():
        if not isinstance(caption, str):
            raise ValueError(f"the prediction for {clip!r} is a {type(caption).__name__}, not a str")
        refs = references[clip]
        if isinstance(refs, str) or not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"the references of {clip!r} must be a non-empty list of str, got {refs!r}")


def score_captions(predictions, references, spice=None, spice_dir=None, per_clip=False):
    """Scores one predicted caption per clip against that clip's references.

    Args:
      predictions: {clip: caption}; an empty caption is scored (as nothing).
      references: {clip: [caption, ...]} for exactly the clips of `predictions`.
      spice: None = SPICE when Stanford CoreNLP 3.6.0 is found, else None with one warning per process;
        True = SPICE or SpiceUnavailableError; False = no SPICE.
      spice_dir: a directory holding the two CoreNLP 3.6.0 jars (else $AUDIOCAPS_SPICE_DIR, pycocoevalcap's spice/lib).
      per_clip: also return {clip: {metric: value}}.

    Returns:
      {metric: score x100} for every name in METRICS (SPICE and SPIDEr None without SPICE), or
      (that dict, {clip: {metric: score x100}}) with per_clip=True.
    """
    _check_inputs(predictions, references)
    java = find_java()
    corenlp_dir = resolve_spice(spice, spice_dir)
    clips = list(predictions)
    flat = [predictions[c] for c in clips] + [r for c in clips for r in references[c]]
    tokens = iter(tokenize(flat, java))
    hypotheses = [next(tokens) for _ in clips]
    refs = [[next(tokens) for _ in references[c]] for c in clips]
    [(scores, clip_scores)] = _score_corpora([_Corpus(hypotheses, refs)], java, corenlp_dir)
    if not per_clip:
        return scores
    return scores, {clip: {m: clip_scores[m][j] for m in METRICS} for j, clip in enumerate(clips)}


def human_upper_bound(references, spice=None, spice_dir=None):
    """The paper's "Human" row: each reference in turn scored as the prediction against the clip's other references.

    Turn k (k = 1 .. the largest number of references of a clip) takes the k-th reference of every clip that has
    at least k references as the prediction and that clip's other references as the references, and is scored as
    one corpus (so BLEU and CIDEr see the whole split). The result is the mean of the turns weighted by their
    number of clips, which is the plain mean of the paper when every clip has the same number of references
    (AudioCaps test: 5), and otherwise counts every (clip, held-out reference) pair once. Clips with fewer than two
    references cannot be scored and are skipped.

    Returns {metric: score x100 for METRICS, "num_clips": clips scored, "skipped": clips with < 2 references,
    "turns": number of turns}.
    """
    eligible = [c for c, refs in references.items() if len(refs) >= 2]
    skipped = len(references) - len(eligible)
    if not eligible:
        raise ValueError(f"no clip has two or more references ({skipped} clip(s) with fewer were skipped)")
    for clip in eligible:
        if isinstance(references[clip], str) or not all(isinstance(r, str) for r in references[clip]):
            raise ValueError(f"the references of {clip!r} must be a list of str")
    java = find_java()
    corenlp_dir = resolve_spice(spice, spice_dir)
    tokens = iter(tokenize([r for c in eligible for r in references[c]], java))
    tokenized = {c: [next(tokens) for _ in references[c]] for c in eligible}
    turns = max(len(refs) for refs in tokenized.values())
    corpora, sizes = [], []
    for k in range(turns):
        clips = [c for c in eligible if len(tokenized[c]) > k]
        corpora.append(_Corpus([tokenized[c][k] for c in clips],
                               [tokenized[c][:k] + tokenized[c][k + 1:] for c in clips]))
        sizes.append(len(clips))
    results = _score_corpora(corpora, java, corenlp_dir)
    weights = np.asarray(sizes, dtype=float) / sum(sizes)
    bound = {}
    for metric in METRICS:
        values = [scores[metric] for scores, _ in results]
        bound[metric] = None if values[0] is None else float(np.dot(weights, values))
    bound.update(num_clips=len(eligible), skipped=skipped, turns=turns)
    return bound


def format_table(scores, metrics=PAPER_ORDER, digits=1):
    """Two aligned lines: the paper's column names and the scores ("-" for None)."""
    names = [PAPER_NAMES.get(m, m) for m in metrics]
    values = ["-" if scores.get(m) is None else f"{scores[m]:.{digits}f}" for m in metrics]
    widths = [max(len(n), len(v)) for n, v in zip(names, values)]
    return "\n".join("  ".join(s.rjust(w) for s, w in zip(row, widths)) for row in (names, values))
