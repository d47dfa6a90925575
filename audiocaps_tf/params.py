"""Every constant of the audio frontends and VGGish, named once.

VGGish values follow tensorflow/models research/audioset/vggish_params.py (see
shared/docs/vggish.md); MFCC values follow the paper, section 5.1.
"""

# Audio handed to every frontend.
SAMPLE_RATE = 16000
CLIP_SECONDS = 10.0
MAX_CLIP_SECONDS = 30.0  # training clips are used whole up to this (Clotho's longest); `--max-seconds` cuts longer
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192000

# VGGish log-mel frontend.
STFT_WINDOW_SAMPLES = 400  # 0.025 s
STFT_HOP_SAMPLES = 160  # 0.010 s
FFT_LENGTH = 512  # next power of two above the window
NUM_MEL_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01  # natural log of (mel + 0.01); not YAMNet's 0.001
EXAMPLE_FRAMES = 96  # 0.96 s examples, no overlap
EXAMPLE_HOP_FRAMES = 96
# Samples needed for one example: 95 hops plus one window = 15600 (0.975 s).
MIN_EXAMPLE_SAMPLES = (EXAMPLE_FRAMES - 1) * STFT_HOP_SAMPLES + STFT_WINDOW_SAMPLES

# VGGish network.
EMBEDDING_SIZE = 128
VGGISH_HUB_HANDLE = "https://tfhub.dev/google/vggish/1"
VGGISH_CHECKPOINT_URL = "https://storage.googleapis.com/audioset/vggish_model.ckpt"

# MFCC frontend (paper section 5.1: librosa, window 1024, overlap 360, 240 frames per 10 s).
MFCC_FFT_LENGTH = 1024
MFCC_HOP_SAMPLES = 1024 - 360  # 664
MFCC_NUM_COEFFICIENTS = 20  # librosa's default n_mfcc
MFCC_NUM_MEL_BANDS = 128  # librosa's default n_mels
MFCC_TOP_DB = 80.0  # librosa.power_to_db default
