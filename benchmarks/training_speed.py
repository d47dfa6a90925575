"""Training and decoding speed of a captioner on cached features (the prepared demo TFRecords).

Training: the input pipeline, model, loss and optimizer of `python -m audiocaps_tf.fit` (Adam with global-norm
clipping, label-smoothed loss, captions padded to the train split's longest), on the default strategy; steps/s and
training pairs (clip, caption) per second after a warm-up epoch, for each batch size.
Decoding: per-clip latency (batch of 1, median over the test clips after a warm-up) of greedy decoding and beam
search (3) from cached features, and of `generate` from a 10 s waveform (the model's own frontend included).

    python benchmarks/training_speed.py [--model tempatt-mfcc-lstm] [--batch-sizes 32,128] [--steps 30]
                                        [--demo-clips 600] [--model-overrides JSON]

The demo dataset and its prepared features come from fit's cache ($AUDIOCAPS_TF_CACHE, else
~/.cache/audiocaps_tf), built first when missing. Threads: TensorFlow's defaults (all cores).
"""

import argparse
import json
import os
import statistics
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import audiocaps_tf  # noqa: E402,F401
from audiocaps_tf import fit  # noqa: E402
from audiocaps_tf.data import demo  # noqa: E402
from audiocaps_tf.data.pipeline import TFRecordSource, evaluation_dataset, training_dataset  # noqa: E402
from audiocaps_tf.models import build_captioner, get_spec, resolve_hyper_parameters  # noqa: E402
from audiocaps_tf.training.data import prepared_directory  # noqa: E402
from audiocaps_tf.training.evaluation import attribute_key, decode, model_inputs  # noqa: E402
from audiocaps_tf.training.losses import MaskedSmoothedCrossEntropy  # noqa: E402


class _EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.started


def training_speed(model_name, source, fields, batch_size, steps, overrides):
    """(steps/s, pairs/s) of `steps` training steps after a warm-up epoch of 3 steps."""
    keras.utils.set_random_seed(0)
    model = build_captioner(model_name, source.vocabulary, **overrides)
    model.compile(optimizer=keras.optimizers.Adam(fit.LEARNING_RATE, global_clipnorm=fit.CLIP_NORM, **fit.ADAM),
                  loss=MaskedSmoothedCrossEntropy(fit.LABEL_SMOOTHING))
    width = min(resolve_hyper_parameters(overrides)["max_caption_length"], fit.longest_caption(source))
    dataset = training_dataset(source, fields, batch_size=batch_size, seed=0, repeat=True).map(
        fit.training_inputs(fields, attribute_key(model), width))
    timer = _EpochTimer()
    warnings.filterwarnings("ignore", message=".*shuffle=True.*")  # the pipeline shuffles
    model.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0)  # traces the training step
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return steps / timer.seconds, steps * batch_size / timer.seconds, model


def decoding_latency(model, source, fields, clips=20):
    """{name: median ms per clip} at batch size 1 over up to `clips` test clips."""
    results = {}
    batches = list(evaluation_dataset(source, fields, batch_size=1).take(clips))
    for beam in (1, 3):
        decode(model, model_inputs(batches[0], fields, attribute_key(model)), beam)  # trace
        times = []
        for batch in batches:
            inputs = model_inputs(batch, fields, attribute_key(model))
            started = time.perf_counter()
            decode(model, inputs, beam)
            times.append(time.perf_counter() - started)
        results[f"{'greedy' if beam == 1 else f'beam {beam}'}, cached features"] = 1000 * statistics.median(times)
    waveform = demo.render(demo.clip_spec(0, 0))[None, :]
    for beam in (1, 3):
        model.generate(waveform, beam_size=beam)  # trace
        times = []
        for _ in range(min(clips, 10)):
            started = time.perf_counter()
            model.generate(waveform, beam_size=beam)
            times.append(time.perf_counter() - started)
        results[f"{'greedy' if beam == 1 else f'beam {beam}'}, from a 10 s waveform"] = 1000 * statistics.median(times)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=fit.DEFAULT_MODEL)
    parser.add_argument("--batch-sizes", default=f"32,{fit.BATCH_SIZE}", help="comma-separated (default 32,128)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per batch size")
    parser.add_argument("--demo-clips", type=int, default=fit.DEMO_CLIPS)
    parser.add_argument("--model-overrides", default="{}", help="hyper-parameters as JSON (default: the authors')")
    args = parser.parse_args()

    spec = get_spec(args.model)
    if spec.is_retrieval or spec.uses_attributes or spec.uses_vggish:
        parser.error("this benchmark times the MFCC generative models (no VGGish weights or attributes needed)")
    overrides = json.loads(args.model_overrides)
    fields = tuple(spec.features)
    data = {"kind": "demo", "clips": args.demo_clips, "seed": fit.DEMO_SEED}
    directory = prepared_directory(data, fields, run_dir=None)
    train, test = TFRecordSource(directory, "train"), TFRecordSource(directory, "test")

    print(f"{args.model} ({resolve_hyper_parameters(overrides)['units']} units); "
          f"{os.cpu_count()} CPU cores; TensorFlow {tf.__version__}, Keras {keras.__version__}")
    model = None
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        steps_per_second, pairs_per_second, model = training_speed(args.model, train, fields, batch_size,
                                                                   args.steps, overrides)
        print(f"training, batch {batch_size:4d}: {steps_per_second:6.2f} steps/s, {pairs_per_second:7.1f} clips/s "
              f"(clip-caption pairs)")
    for name, milliseconds in decoding_latency(model, test, fields).items():
        print(f"decoding, {name}: {milliseconds:.1f} ms per clip")


if __name__ == "__main__":
    main()
