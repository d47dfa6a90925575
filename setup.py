"""audiocaps-tf: audio captioning (AudioCaps, Kim et al., NAACL 2019) in Keras 3 on TensorFlow."""

from setuptools import find_packages, setup

setup(
    name="audiocaps-tf",
    version="0.1.0.dev0",
    description="Audio captioning (AudioCaps, NAACL 2019) in Keras 3 on TensorFlow, served by TF Serving.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    url="https://github.com/audiocaps-tf/audiocaps-tf",
    license="Apache-2.0",
    packages=find_packages(include=["audiocaps_tf", "audiocaps_tf.*"]),
    python_requires=">=3.10",
    install_requires=[
        # Supported: TensorFlow 2.20 and 2.21 (tested: 2.21.0). tensorflow-serving-api follows the same minor.
        "tensorflow>=2.20,<2.22",
        "keras>=3.10",
        "tensorflow-hub>=0.16",
        "tensorflow-serving-api>=2.20,<2.22",
        "tensorboard>=2.20,<2.22",  # training logs (tf.summary)
        "numpy>=1.26",
        "soundfile>=0.12",
        "scipy>=1.10",  # the Kaiser window of audio.resampling
        "librosa>=0.10",
        "sentencepiece>=0.2",
        "pycocoevalcap>=1.2",
        "num2words>=0.5",
        "tqdm>=4.60",
    ],
    extras_require={
        # A static ffmpeg binary from PyPI, used for m4a / mp4 / webm when no system ffmpeg is installed.
        "ffmpeg": ["imageio-ffmpeg>=0.5"],
        # Extracting Clotho's 7z archives (`python -m audiocaps_tf.data download --dataset clotho`).
        "clotho": ["py7zr>=0.20"],
        # The Colab notebooks' plots, audio players and progress bars (Colab has them already).
        "notebooks": ["matplotlib>=3.8", "ipython>=8", "ipywidgets>=8"],
        # The tests also run the notebooks headless (nbclient, on an ipykernel), on every core (pytest-xdist).
        "test": ["pytest>=8", "pytest-xdist>=3.5", "imageio-ffmpeg>=0.5", "matplotlib>=3.8", "ipython>=8", "ipykernel>=6.29",
                 "nbclient>=0.10", "nbformat>=5.10",
                 # Parsers that read `caption --format srt|vtt` back, as a player would.
                 "srt>=3.5", "webvtt-py>=0.5",
                 "py7zr>=0.20",
                 "soxr>=0.3"],  # the reference the resampler was fitted to
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Multimedia :: Sound/Audio :: Analysis",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
