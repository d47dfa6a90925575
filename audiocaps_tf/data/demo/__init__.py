"""Synthesise a captioned sound-scene dataset in the AudioCaps layout: no download, deterministic for a seed.

    python -m audiocaps_tf.data demo --out DIR [--clips 600] [--seed 0] [--workers N]

It writes DIR/audio/demoNNNNN_T.wav (10 s, 16 kHz, mono, 16-bit), DIR/{train,val,test}.csv (about 80/10/10;
one caption per train clip, five different ones per val and test clip, and a `labels` column) and DIR/demo.json
(the parameters). Each clip holds 1-3 events from 25 synthetic sources (engine, siren, car horn, dog, birds,
rain, wind, water, thunder, male and female speech, baby, bell, knocking, footsteps, applause, drill, clock,
cat, telephone, crickets, helicopter, whistling, typing, hammer), one after another ("followed by"),
overlapping ("while", "as") or over a background heard throughout, at varied loudness and distance ("in the
distance": quieter, low-passed and smeared by a reverberant tail), with counts for discrete events ("a dog
barks twice"). Captions follow the actual order of the events.

A directory that already holds the same demo dataset is left as it is; any other non-empty directory is
refused. An interrupted run resumes where it stopped.

In Python: `make_demo_dataset(out_dir, num_clips=600, seed=0, workers=None)`; `clip_specs` draws the clip
specifications, `describe` writes captions for one and `render` synthesises its audio.

Modules (each imports only those above it):
    dsp.py                  signal helpers: filters, envelopes, noise, pulse trains (float64, 16 kHz)
    sources_nature.py       renderers of animals and weather
    sources_people.py       renderers of people: speech, baby, whistling, knocking, footsteps...
    sources_machines.py     renderers of machines and devices
    sources.py              the source table SOURCES: renderer, timing and the words for each source
    scenes.py               clip specifications (Event, clip_spec, clip_specs) and mixing (render_event, render)
    grammar.py              the caption grammar: describe
    writer.py               make_demo_dataset (resumable, worker processes), DemoError, the command line
"""

from audiocaps_tf.data.demo.dsp import SR
from audiocaps_tf.data.demo.grammar import CAPTIONS_PER_CLIP, describe
from audiocaps_tf.data.demo.scenes import (
    CLIP_SAMPLES, SPLIT_FRACTIONS, ClipSpec, Event, clip_spec, clip_specs, render, render_event,
)
from audiocaps_tf.data.demo.sources import AMBIENT_SOURCES, CONTINUOUS_SOURCES, SOURCES, Phrase, Source
from audiocaps_tf.data.demo.writer import (
    DEFAULT_CLIPS, GENERATOR_VERSION, HELP, PARAMETERS_FILE, DemoError, add_arguments, make_demo_dataset, run,
    write_wav,
)
from audiocaps_tf.params import CLIP_SECONDS

__all__ = [
    "AMBIENT_SOURCES", "CAPTIONS_PER_CLIP", "CLIP_SAMPLES", "CLIP_SECONDS", "CONTINUOUS_SOURCES", "DEFAULT_CLIPS",
    "GENERATOR_VERSION", "HELP", "PARAMETERS_FILE", "SOURCES", "SPLIT_FRACTIONS", "SR", "ClipSpec", "DemoError",
    "Event", "Phrase", "Source", "add_arguments", "clip_spec", "clip_specs", "describe", "make_demo_dataset",
    "render", "render_event", "run", "write_wav",
]
