"""Decoding time per clip, greedy and beam search, with and without n-gram blocking (`no_repeat_ngram_size`).

    python benchmarks/decoding_speed.py [--model-name tempatt-mfcc-lstm] [--decoder luong|transformer]
                                        [--batch-size 16] [--repeats 5]

A randomly initialised paper-size model on random cached features of 10 s clips: a random model rarely emits <eos>,
so every caption runs to the maximum length (51 tokens), the worst case of decoding. Each setting is traced once,
then timed `--repeats` times (the median is printed) through the model's `decode_function`, as `generate` runs it.
The ratio column is each setting's time over the same search without blocking, measured in this run.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from audiocaps_tf.features import FEATURES  # noqa: E402
from audiocaps_tf.models import MODELS, build_captioner  # noqa: E402
from audiocaps_tf.tokens.vocabulary import WordVocabulary  # noqa: E402

STEPS = {"mfcc": 1000, "vggish_fc2": 10, "vggish_conv4": 10, "vggish_conv3": 10}  # 10 s of each feature


def inputs_for(spec, batch_size, rng):
    return {field: rng.normal(size=(batch_size, STEPS[field], FEATURES[field].size)).astype("float32")
            for field in spec.features}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-name", default="tempatt-mfcc-lstm", choices=[n for n, s in MODELS.items()
                                                                               if not s.is_retrieval and
                                                                               not s.uses_attributes])
    parser.add_argument("--decoder", choices=["luong", "transformer"], default="luong",
                        help="the paper's LuongDecoder, or the TransformerDecoder at its default size")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = [a + b + c for a in letters for b in letters for c in letters][:5000]  # AudioCaps-sized (about 5k)
    vocabulary = WordVocabulary.build([" ".join(words[i : i + 10]) for i in range(0, len(words), 10)])
    model = build_captioner(args.model_name, vocabulary, decoder=args.decoder)
    inputs = inputs_for(MODELS[args.model_name], args.batch_size, rng)
    print(f"{args.model_name} with the {args.decoder} decoder, vocabulary {vocabulary.size}, batch {args.batch_size}, "
          f"median of {args.repeats} runs")
    print(f"{'search':>8} {'no-repeat':>9} {'ms/clip':>8} {'ratio':>6} {'mean length':>12}")
    baseline = {}
    for beam_size in (1, 3):
        for no_repeat in (0, 3):
            decode = model.decode_function(beam_size, None, no_repeat)
            result = decode(inputs)  # traced here
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                result = decode(inputs)
                np.asarray(result["tokens"])
                times.append(time.perf_counter() - start)
            per_clip = 1000 * statistics.median(times) / args.batch_size
            baseline.setdefault(beam_size, per_clip)
            length = float(np.mean(np.asarray(result["lengths"])))
            search = "greedy" if beam_size == 1 else f"beam {beam_size}"
            print(f"{search:>8} {no_repeat:>9} {per_clip:>8.1f} {per_clip / baseline[beam_size]:>6.2f} {length:>12.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
