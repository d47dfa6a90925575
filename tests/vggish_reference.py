"""Float64 NumPy transcription of the VGGish input pipeline (shared/docs/vggish.md, section 1).

Independent of the package: the frontends are tested against it. Mirrors
tensorflow/models research/audioset mel_features.py + vggish_input.py (read for facts only).
"""

import numpy as np

SAMPLE_RATE = 16000
WINDOW = 400  # 0.025 s
HOP = 160  # 0.010 s
FFT = 512
MEL_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96


def _hz_to_mel(hz):
    return 1127.0 * np.log(1.0 + hz / 700.0)


def _frame(data, length, hop):
    count = 1 + (data.shape[0] - length) // hop
    index = np.arange(length)[None, :] + hop * np.arange(count)[:, None]
    return data[index]


def mel_matrix():
    """[257, 64] HTK triangles built in the mel domain, DC row zeroed."""
    bins = FFT // 2 + 1
    bin_mel = _hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, bins))
    edges = np.linspace(_hz_to_mel(MEL_MIN_HZ), _hz_to_mel(MEL_MAX_HZ), MEL_BANDS + 2)
    matrix = np.empty((bins, MEL_BANDS))
    for band in range(MEL_BANDS):
        lower, centre, upper = edges[band : band + 3]
        rising = (bin_mel - lower) / (centre - lower)
        falling = (upper - bin_mel) / (upper - centre)
        matrix[:, band] = np.maximum(0.0, np.minimum(rising, falling))
    matrix[0, :] = 0.0
    return matrix


def log_mel_examples(waveform):
    """16 kHz mono float waveform -> [num_examples, 96, 64] float64 log-mel examples."""
    waveform = np.asarray(waveform, np.float64)
    frames = _frame(waveform, WINDOW, HOP)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)  # periodic Hann
    magnitude = np.abs(np.fft.rfft(frames * window, FFT))
    log_mel = np.log(magnitude @ mel_matrix() + LOG_OFFSET)
    return _frame(log_mel, EXAMPLE_FRAMES, EXAMPLE_FRAMES)
