"""Clips/s of LogMelFrontend + VGGish on 10 s clips, against the floor set by their arithmetic.

The floor is this machine's measured float32 matmul rate divided by the FLOPs one clip needs
(multiply-adds counted as two FLOPs), so `ratio` says how close the layers come to the hardware.
Weights are random: speed does not depend on their values.

    python benchmarks/vggish_throughput.py [--batch-sizes 1 8 32] [--repeats 3]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from audiocaps_tf import params  # noqa: E402
from audiocaps_tf.layers import LogMelFrontend, VGGish  # noqa: E402
from audiocaps_tf.layers.log_mel_frontend import num_log_mel_examples  # noqa: E402

CLIP_SAMPLES = int(params.CLIP_SECONDS * params.SAMPLE_RATE)

# (name, input height, width, channels in, channels out) of each 3x3 conv, and (in, out) of each dense.
CONVS = [
    ("conv1", 96, 64, 1, 64),
    ("conv2", 48, 32, 64, 128),
    ("conv3_1", 24, 16, 128, 256),
    ("conv3_2", 24, 16, 256, 256),
    ("conv4_1", 12, 8, 256, 512),
    ("conv4_2", 12, 8, 512, 512),
]
DENSES = [("fc1_1", 12288, 4096), ("fc1_2", 4096, 4096), ("fc2", 4096, 128)]


def flops_per_clip():
    """FLOPs of frontend + VGGish for one 10 s clip (10 examples)."""
    per_example = sum(2 * h * w * 9 * c_in * c_out for _, h, w, c_in, c_out in CONVS)
    per_example += sum(2 * n_in * n_out for _, n_in, n_out in DENSES)
    frames = 1 + (CLIP_SAMPLES - params.STFT_WINDOW_SAMPLES) // params.STFT_HOP_SAMPLES
    fft = params.FFT_LENGTH
    frontend = frames * (5 * fft * np.log2(fft) / 2 + 2 * (fft // 2 + 1) * params.NUM_MEL_BANDS)
    return num_log_mel_examples(CLIP_SAMPLES) * per_example + frontend


def matmul_flops_per_second(sizes=(2048, 4096), repeats=5):
    """The machine's float32 matmul rate: best of `repeats` runs at each size, best size."""
    best_rate = 0.0
    for size in sizes:
        a = tf.random.normal((size, size))
        b = tf.random.normal((size, size))

        @tf.function
        def matmul():
            return tf.reduce_sum(tf.matmul(a, b))

        matmul().numpy()
        for _ in range(repeats):
            start = time.perf_counter()
            matmul().numpy()
            best_rate = max(best_rate, 2 * size**3 / (time.perf_counter() - start))
    return best_rate


def clips_per_second(batch_size, repeats):
    frontend, vggish = LogMelFrontend(), VGGish()

    @tf.function
    def features(waveform):
        return vggish(frontend(waveform))

    waveform = tf.random.uniform((batch_size, CLIP_SAMPLES), -0.5, 0.5)
    tf.nest.map_structure(lambda x: x.numpy(), features(waveform))  # trace and warm up
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda x: x.numpy(), features(waveform))
        timings.append(time.perf_counter() - start)
    return batch_size / min(timings)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    flops = flops_per_clip()
    rate = matmul_flops_per_second()
    floor = rate / flops
    print(f"CPU threads: {os.cpu_count()}; TensorFlow {tf.__version__}")
    print(f"FLOPs per 10 s clip (frontend + VGGish): {flops / 1e9:.2f} GFLOP")
    print(f"measured float32 matmul rate: {rate / 1e9:.1f} GFLOP/s -> floor {floor:.2f} clips/s (FLOPs / rate)")
    print(f"{'batch':>5} {'clips/s':>9} {'ratio to floor':>15}")
    for batch_size in args.batch_sizes:
        measured = clips_per_second(batch_size, args.repeats)
        print(f"{batch_size:>5} {measured:>9.2f} {measured / floor:>15.2f}")


if __name__ == "__main__":
    main()
