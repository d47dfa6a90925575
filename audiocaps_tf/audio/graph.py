"""WAV bytes to a 16 kHz mono waveform in core TensorFlow ops: the audio input of the TF Serving graph.

TF Serving loads nothing but core TF ops, so this module uses no tensorflow-io, `py_function` or
`numpy_function`. Every function works inside a `tf.function` whose inputs have unknown length (WAV
bytes as a scalar `tf.string`; a waveform as float32 [None] with its rate as an int32 scalar known
only at run time) and exports with `tf.saved_model.save`. `wav_to_waveform` mirrors
`audiocaps_tf.audio.loading.load_audio` (soundfile decoding, mean of the channels, the resampling of
`audio.resampling`, zero-padding or cutting at the end), so a model served from bytes sees the waveforms it
was trained on. Bad input raises `tf.errors.InvalidArgumentError` with a message starting "audio:";
it never turns into silence.
"""

import numpy as np
import tensorflow as tf

from audiocaps_tf import params
from audiocaps_tf.audio import resampling

# --- WAV parsing ------------------------------------------------------------------------------------

_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_IEEE_FLOAT = 3
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# Bytes 2..15 of the KSDATAFORMAT_SUBTYPE_* GUIDs of WAVE_FORMAT_EXTENSIBLE: the first two bytes are the
# plain format tag (1 = PCM, 3 = IEEE float), the rest is the same for every subtype.
_KSDATAFORMAT_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
# Zero bytes appended to the input so that fixed-size header reads at any position up to its end
# are always complete (a missing field reads as zeros and is then rejected by a check).
_READ_PADDING = 64
# Names of common compressed formats, for the error message of an unsupported format tag.
_FORMAT_TAG_NAMES = {
    0x0002: "Microsoft ADPCM",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG-1 audio in WAV",
    0x0055: "MP3 in WAV",
    0x00FF: "AAC in WAV",
    0x0161: "WMA in WAV",
    0x2000: "AC-3 in WAV",
    0xF1AC: "FLAC in WAV",
}
_UNKNOWN_DATA_SIZE = 0xFFFFFFFF  # data size left by writers to pipes: "to the end of the file"
_SUPPORTED_FORMATS = (
    "supported: PCM 8/16/24/32-bit, IEEE float 32/64-bit, WAVE_FORMAT_EXTENSIBLE with a PCM or IEEE float subformat"
)


def _assert(condition, *parts):
    """An Assert that fails with the message `parts` (strings and scalar tensors, joined) when `condition` is False.

    Messages avoid quotes and backslashes, which the graph-mode Assert prints escaped.
    """
    message = tf.strings.join([p if isinstance(p, str) else tf.strings.as_string(p) for p in parts])
    return tf.debugging.Assert(condition, [message], summarize=1)


class _Checks:
    """Runs checks strictly in order (each after the previous one) and gates tensors behind all of them.

    The order makes the reported error the first problem found, also in graph mode where independent
    Assert ops could otherwise run in any order; gating keeps ops that would fail with a less clear
    message (reshape, decode_raw) from running on input a check rejects. Eagerly, a failing check
    raises at once and the control dependencies are no-ops.
    """

    def __init__(self):
        self._last = []

    def __call__(self, condition, *parts):
        with tf.control_dependencies(self._last):
            op = _assert(condition, *parts)
        self._last = [] if op is None else [op]

    def gate(self, tensor):
        with tf.control_dependencies(self._last):
            return tf.identity(tensor)


def _read_uint(padded, pos, size):
    """Little-endian unsigned integer of `size` (<= 4) bytes at byte `pos` of the padded input, as int64."""
    raw = tf.io.decode_raw(tf.strings.substr(padded, pos, size), tf.uint8)
    weights = tf.constant([1 << (8 * i) for i in range(size)], tf.int64)
    return tf.reduce_sum(tf.cast(raw, tf.int64) * weights)


def _find_chunks(padded, length):
    """Walks the RIFF chunks after the 12-byte header: (fmt_pos, fmt_size, data_pos, data_size), positions
    of the chunk bodies, -1 when not found.

    Chunks other than 'fmt ' and 'data' (LIST, fact, bext, ...) are skipped; chunk bodies are padded to an
    even size. The walk stops once both chunks are found or no complete chunk header is left.
    """
    minus_one = tf.constant(-1, tf.int64)

    def more(pos, fmt_pos, fmt_size, data_pos, data_size):
        return (pos + 8 <= length) & ((fmt_pos < 0) | (data_pos < 0))

    def step(pos, fmt_pos, fmt_size, data_pos, data_size):
        chunk_id = tf.strings.substr(padded, pos, 4)
        size = _read_uint(padded, pos + 4, 4)
        is_fmt = tf.equal(chunk_id, b"fmt ") & (fmt_pos < 0)
        is_data = tf.equal(chunk_id, b"data") & (data_pos < 0)
        return (
            pos + 8 + size + size % 2,
            tf.where(is_fmt, pos + 8, fmt_pos),
            tf.where(is_fmt, size, fmt_size),
            tf.where(is_data, pos + 8, data_pos),
            tf.where(is_data, size, data_size),
        )

    start = tf.constant(12, tf.int64)
    _, fmt_pos, fmt_size, data_pos, data_size = tf.while_loop(
        more, step, (start, minus_one, minus_one, minus_one, minus_one)
    )
    return fmt_pos, fmt_size, data_pos, data_size


def _format_tag_name(tag):
    """' (MP3 in WAV)' and the like for a known compressed format tag, else ''."""
    tags = tf.constant(list(_FORMAT_TAG_NAMES), tf.int64)
    names = tf.constant([f" ({name})" for name in _FORMAT_TAG_NAMES.values()])
    return tf.strings.reduce_join(tf.where(tf.equal(tags, tag), names, ""))


def _decode_samples(data, kind):
    """Raw sample bytes -> float32 [samples] scaled to [-1, 1] as soundfile does.

    kind: 0 unsigned 8-bit, 1 int16, 2 int24, 3 int32, 4 float32, 5 float64 (all little-endian).
    """

    def uint8():
        return (tf.cast(tf.io.decode_raw(data, tf.uint8), tf.float32) - 128.0) / 128.0

    def int16():
        return tf.cast(tf.io.decode_raw(data, tf.int16), tf.float32) / 32768.0

    def int24():
        triples = tf.reshape(tf.io.decode_raw(data, tf.uint8), [-1, 3])
        low = tf.cast(triples[:, 0], tf.int32) + tf.cast(triples[:, 1], tf.int32) * 256
        high = tf.cast(tf.bitcast(triples[:, 2], tf.int8), tf.int32)  # carries the sign
        return tf.cast(low + high * 65536, tf.float32) / 8388608.0

    def int32():
        # Rounds to float32 once, then scales by an exact power of two.
        return tf.cast(tf.io.decode_raw(data, tf.int32), tf.float32) * (1.0 / 2147483648.0)

    def float32():
        return tf.io.decode_raw(data, tf.float32)

    def float64():
        return tf.cast(tf.io.decode_raw(data, tf.float64), tf.float32)

    return tf.switch_case(kind, [uint8, int16, int24, int32, float32, float64])


def decode_wav(contents):
    """WAV file bytes -> (samples float32 [frames, channels] in [-1, 1], sample_rate int32 scalar).

    Parses the RIFF header with core ops because `tf.audio.decode_wav` reads only 16-bit PCM and
    rejects WAVE_FORMAT_EXTENSIBLE. Accepts PCM unsigned 8-bit and signed 16/24/32-bit, IEEE float
    32/64-bit (format 3), and WAVE_FORMAT_EXTENSIBLE (0xFFFE) whose subformat is PCM or IEEE float;
    chunks other than 'fmt ' and 'data' (LIST, fact, ...) are skipped. Integers are scaled as
    soundfile does: uint8 (x - 128) / 128, int16 / 2**15, int24 / 2**23, int32 / 2**31. Trailing bytes
    of the data chunk that do not make a whole frame are ignored.

    Raises tf.errors.InvalidArgumentError ("audio: ...") instead of returning silence when the bytes
    are not RIFF/WAVE, the 'fmt ' or 'data' chunk is missing or the 'fmt ' chunk is short, the format
    tag, subformat or bit depth is unsupported, there are zero channels, the sample rate is outside
    [params.MIN_SAMPLE_RATE, params.MAX_SAMPLE_RATE], the data chunk declares more bytes than the file
    holds (a truncated file is an error, not silently shortened audio; only the placeholder size
    0xFFFFFFFF of streaming writers means "to the end of the file", as in libsndfile), there are no
    complete frames (a data size of 0 included), or float samples are NaN or infinite.
    """
    contents = tf.convert_to_tensor(contents, tf.string)
    contents.shape.assert_has_rank(0)
    length = tf.cast(tf.strings.length(contents), tf.int64)
    padded = tf.strings.join([contents, b"\x00" * _READ_PADDING])
    check = _Checks()

    check(
        (length >= 12)
        & tf.equal(tf.strings.substr(padded, 0, 4), b"RIFF")
        & tf.equal(tf.strings.substr(padded, 8, 4), b"WAVE"),
        "audio: not a RIFF/WAVE file",
    )
    fmt_pos, fmt_size, data_pos, data_size = _find_chunks(padded, length)
    check(fmt_pos >= 0, "audio: WAV file has no fmt chunk")
    check(data_pos >= 0, "audio: WAV file has no data chunk")
    fmt_pos = tf.maximum(fmt_pos, 0)  # keeps the reads below in range when a check fails
    data_pos = tf.maximum(data_pos, 0)
    check(
        (fmt_size >= 16) & (fmt_pos + fmt_size <= length),
        "audio: WAV fmt chunk is too short or truncated (",
        fmt_size,
        " bytes)",
    )

    tag = _read_uint(padded, fmt_pos, 2)
    channels = _read_uint(padded, fmt_pos + 2, 2)
    sample_rate = _read_uint(padded, fmt_pos + 4, 4)
    bits = _read_uint(padded, fmt_pos + 14, 2)

    is_extensible = tf.equal(tag, _WAVE_FORMAT_EXTENSIBLE)
    check(
        tf.logical_not(is_extensible) | (fmt_size >= 40),
        "audio: WAVE_FORMAT_EXTENSIBLE fmt chunk is too short (",
        fmt_size,
        " bytes, needs 40)",
    )
    known_guid = tf.equal(tf.strings.substr(padded, fmt_pos + 26, 14), _KSDATAFORMAT_GUID_TAIL)
    subformat = _read_uint(padded, fmt_pos + 24, 2)
    check(
        tf.logical_not(is_extensible) | known_guid,
        "audio: unsupported WAVE_FORMAT_EXTENSIBLE subformat GUID; ",
        _SUPPORTED_FORMATS,
    )
    tag = tf.where(is_extensible, subformat, tag)
    is_pcm = tf.equal(tag, _WAVE_FORMAT_PCM)
    is_float = tf.equal(tag, _WAVE_FORMAT_IEEE_FLOAT)
    check(
        is_pcm | is_float,
        "audio: unsupported WAV format tag ",
        tag,
        _format_tag_name(tag),
        "; ",
        _SUPPORTED_FORMATS,
    )
    pcm_bits_ok = tf.equal(bits, 8) | tf.equal(bits, 16) | tf.equal(bits, 24) | tf.equal(bits, 32)
    check(
        tf.logical_not(is_pcm) | pcm_bits_ok,
        "audio: unsupported PCM bit depth ",
        bits,
        "; supported: 8, 16, 24, 32",
    )
    check(
        tf.logical_not(is_float) | tf.equal(bits, 32) | tf.equal(bits, 64),
        "audio: unsupported IEEE float bit depth ",
        bits,
        "; supported: 32, 64",
    )
    check(channels > 0, "audio: WAV file declares zero channels")
    check(
        (sample_rate >= params.MIN_SAMPLE_RATE) & (sample_rate <= params.MAX_SAMPLE_RATE),
        "audio: sample rate ",
        sample_rate,
        f" Hz is outside the supported range [{params.MIN_SAMPLE_RATE}, {params.MAX_SAMPLE_RATE}] Hz",
    )
    # Writers that cannot seek back (pipes) declare 0xFFFFFFFF bytes: "to the end of the file", as libsndfile reads it.
    data_size = tf.where(tf.equal(data_size, _UNKNOWN_DATA_SIZE), tf.maximum(length - data_pos, 0), data_size)
    check(
        data_pos + data_size <= length,
        "audio: WAV data chunk is truncated: it declares ",
        data_size,
        " bytes but the file holds ",
        tf.maximum(length - data_pos, 0),
    )
    frame_bytes = tf.maximum(channels * (bits // 8), 1)
    frames = data_size // frame_bytes
    check(frames > 0, "audio: WAV file has no audio frames (empty data chunk)")

    kind = tf.where(
        is_float,
        tf.where(tf.equal(bits, 64), tf.constant(5, tf.int64), tf.constant(4, tf.int64)),
        bits // 8 - 1,  # 8 -> 0, 16 -> 1, 24 -> 2, 32 -> 3
    )
    # Everything that reads the samples runs only after all the checks above have passed.
    data = tf.strings.substr(padded, check.gate(data_pos), check.gate(frames * frame_bytes))
    samples = _decode_samples(data, check.gate(tf.cast(kind, tf.int32)))
    check(
        tf.reduce_all(tf.math.is_finite(samples)),
        "audio: WAV float samples contain NaN or infinity",
    )
    samples = tf.reshape(check.gate(samples), tf.stack([frames, channels]))
    samples.set_shape([None, None])
    return samples, check.gate(tf.cast(sample_rate, tf.int32))


# --- Resampling -------------------------------------------------------------------------------------

# The filter of `audio.resampling` (its docstring says what and why), in core ops.
_ROLLOFF, _ZERO_CROSSINGS, _KAISER_BETA = resampling.ROLLOFF, resampling.ZERO_CROSSINGS, resampling.KAISER_BETA
# Taps gathered per block of output samples (times the batch size): bounds memory to ~1 MB per
# float32 tensor of the block, whatever the input rate.
_BLOCK_TAPS = 1 << 18
_MAX_POLYPHASE_WEIGHTS = resampling.MAX_POLYPHASE_WEIGHTS  # beyond it, the blockwise gather path


def _gcd(a, b):
    """Greatest common divisor of two non-negative int64 scalar tensors."""
    a, _ = tf.while_loop(lambda a, b: b > 0, lambda a, b: (b, a % b), (a, b))
    return a


def _filter_weights(frac, offsets, cutoff):
    """Filter taps [outputs, taps]: output sample at input position i + frac, input samples at i + offsets.

    Kaiser-windowed sinc at `cutoff` (cycles per input sample times two), each row normalised to sum
    to one so a constant stays exactly constant.
    """
    distance = offsets[tf.newaxis, :] - frac[:, tf.newaxis]  # input samples from the output position
    u = cutoff * distance  # in sinc zero crossings
    pi_u = np.pi * u
    nonzero = tf.abs(pi_u) > 1e-6
    sinc = tf.where(nonzero, tf.sin(pi_u) / tf.where(nonzero, pi_u, 1.0), 1.0)
    v = u / _ZERO_CROSSINGS
    inside = tf.abs(v) < 1.0
    window = tf.math.bessel_i0(_KAISER_BETA * tf.sqrt(tf.maximum(1.0 - v * v, 0.0))) / float(np.i0(_KAISER_BETA))
    taps = tf.where(inside, sinc * window, 0.0)
    return taps / tf.reduce_sum(taps, axis=1, keepdims=True)


def _resample_batch(x, input_rate, output_rate):
    """float32 [batch, N] at int64 scalar `input_rate` (!= output_rate) -> [batch, M] at `output_rate`."""
    batch = tf.shape(x, out_type=tf.int64)[0]
    num_in = tf.shape(x, out_type=tf.int64)[1]
    # soxr's output length: N * output_rate / input_rate rounded half up, in exact integer arithmetic.
    num_out = (2 * num_in * output_rate + input_rate) // (2 * input_rate)

    ratio = output_rate / tf.cast(input_rate, tf.float64)
    cutoff = _ROLLOFF * tf.minimum(ratio, 1.0)
    half_width = tf.cast(tf.math.ceil(_ZERO_CROSSINGS / cutoff), tf.int64)  # input samples
    num_taps = 2 * half_width + 1
    offsets = tf.range(-half_width, half_width + 1)  # int64 [taps]
    offsets_f = tf.cast(offsets, tf.float32)
    cutoff_f = tf.cast(cutoff, tf.float32)

    # Output sample n sits at input position n * input_rate / output_rate = i + r / output_rate. Its
    # fraction repeats every `phases` outputs, so when a block is a whole number of periods all blocks
    # share the weights of the first one and they are computed once.
    common = _gcd(input_rate, tf.constant(output_rate, tf.int64))
    phases, step = output_rate // common, input_rate // common
    rows = tf.maximum(_BLOCK_TAPS // (num_taps * tf.maximum(batch, 1)), 1)
    periodic = phases <= rows
    block = tf.where(periodic, rows // phases * phases, rows)
    num_blocks = tf.maximum((num_out + block - 1) // block, 1)

    def positions(n):
        scaled = n * input_rate  # exact in int64: no drift over long clips
        whole = scaled // output_rate
        frac = tf.cast(scaled - whole * output_rate, tf.float32) / output_rate
        return whole, frac

    shared_weights = tf.cond(
        periodic,
        lambda: _filter_weights(positions(tf.range(block))[1], offsets_f, cutoff_f),
        lambda: tf.zeros(tf.stack([tf.constant(0, tf.int64), num_taps]), tf.float32),
    )
    # Zero padding beyond both ends: input sample k is padded[k + half_width], and the taps of every
    # output (whole <= N - 1, offsets <= half_width) stay inside.
    padded = tf.pad(x, tf.stack([tf.zeros([2], tf.int64), tf.stack([half_width, half_width + 1])]))

    def body(b, outputs):
        start = b * block
        n = tf.range(start, tf.minimum(start + block, num_out))
        whole, frac = positions(n)
        weights = tf.cond(
            periodic,
            lambda: shared_weights[: tf.size(n)],
            lambda: _filter_weights(frac, offsets_f, cutoff_f),
        )
        index = tf.cast(whole[:, tf.newaxis] + offsets[tf.newaxis, :] + half_width, tf.int32)
        taps = tf.gather(padded, index, axis=1)  # [batch, outputs, taps]
        y = tf.reduce_sum(taps * weights, axis=2)
        return b + 1, outputs.write(tf.cast(b, tf.int32), tf.transpose(y))

    def gathered():
        outputs = tf.TensorArray(
            tf.float32, size=tf.cast(num_blocks, tf.int32), infer_shape=False, element_shape=[None, None]
        )
        _, outputs = tf.while_loop(
            lambda b, _: b < num_blocks,
            body,
            (tf.constant(0, tf.int64), outputs),
            parallel_iterations=1,  # one block in memory at a time
        )
        return tf.transpose(outputs.concat())

    def polyphase():
        whole, frac = positions(tf.range(phases))
        weights = _filter_weights(frac, offsets_f, cutoff_f)
        return _polyphase_convolution(x, num_out, phases, step, whole, weights, half_width)

    kernel_size = phases * (2 * step + num_taps)  # an upper bound of the polyphase kernel's weights
    return tf.cond(kernel_size <= _MAX_POLYPHASE_WEIGHTS, polyphase, gathered)


def _polyphase_convolution(x, num_out, phases, step, whole, weights, half_width):
    """The same filter as one stride-1 convolution: float32 [batch, N] -> [batch, num_out].

    Output k * phases + p sits at input position k * step + whole[p] + frac[p], so with the zero-padded input
    cut into blocks of `step` samples (the channels of a 1-D convolution), every output block k is the same
    linear map, a kernel [width, step, phases] holding each phase's taps `weights[p]` at its offset whole[p],
    of the input blocks k .. k + width - 1. One Conv2D instead of gathering taps: for the usual rates
    (22.05, 44.1, 48 kHz) the kernel has at most a few hundred thousand weights.
    """
    batch = tf.shape(x, out_type=tf.int64)[0]
    num_in = tf.shape(x, out_type=tf.int64)[1]
    num_taps = tf.shape(weights, out_type=tf.int64)[1]
    width = (step + num_taps - 1 + step - 1) // step  # input blocks under one output block's taps
    rows = whole[:, tf.newaxis] + tf.range(num_taps)[tf.newaxis, :]  # [phases, taps] in [0, step + taps - 1)
    cols = tf.broadcast_to(tf.range(phases)[:, tf.newaxis], tf.shape(rows, out_type=tf.int64))
    kernel = tf.scatter_nd(
        tf.stack([tf.reshape(rows, [-1]), tf.reshape(cols, [-1])], axis=1),
        tf.reshape(weights, [-1]),
        tf.stack([width * step, phases]),
    )
    num_frames = (num_out + phases - 1) // phases
    blocks = num_frames + width - 1
    # Input sample i is padded[i + half_width]; zeros beyond both ends, cut to whole blocks.
    right = tf.maximum(blocks * step - num_in - half_width, 0)
    padded = tf.pad(x, tf.stack([tf.zeros([2], tf.int64), tf.stack([half_width, right])]))[:, : blocks * step]
    y = tf.nn.conv1d(
        tf.reshape(padded, tf.stack([batch, blocks, step])),
        tf.reshape(kernel, tf.stack([width, step, phases])),
        stride=1,
        padding="VALID",
    )
    return tf.reshape(y, tf.stack([batch, -1]))[:, :num_out]


def resample(waveform, input_rate, output_rate=params.SAMPLE_RATE):
    """Resamples float32 [N] or [batch, N] from `input_rate` (int tensor, known at run time) to `output_rate` (int).

    Windowed-sinc interpolation in core ops, because the serving graph learns the rate of its input
    only at run time. Output sample n is the input at position t = n * input_rate / output_rate
    (computed exactly in int64), interpolated from the input samples within 96 zero crossings of a
    sinc at cutoff 0.957 * min(1, output_rate / input_rate) of the input Nyquist frequency
    (anti-aliasing when downsampling), Kaiser window with beta 13.5; samples beyond both ends count as
    zeros: `audio.resampling.resample`'s filter, which `load_audio` uses, so both give the same samples.

    The output has round(N * output_rate / input_rate) samples (halves rounded up), soxr's length:
    ceil would give one more sample whenever the fraction is below one half. Output samples are
    made in blocks of about 2**18 taps (~1 MB of float32, over the whole batch) at a time, so memory
    stays at a few tens of MB whatever the rate (192 kHz needs 2,409 taps per output sample). With
    input_rate == output_rate the input is returned unchanged.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    rank = waveform.shape.rank
    if rank not in (1, 2):
        raise ValueError(f"resample: waveform must be [N] or [batch, N], got shape {waveform.shape}")
    input_rate = tf.cast(input_rate, tf.int64)
    output_rate = int(output_rate)
    if output_rate <= 0:
        raise ValueError(f"resample: output_rate must be positive, got {output_rate}")
    with tf.control_dependencies(
        [_assert(input_rate > 0, "audio: resample input rate must be positive, got ", input_rate)]
    ):
        # Gate the rate too: with a static input shape, everything else could run before the check.
        waveform, input_rate = tf.identity(waveform), tf.identity(input_rate)

    def convert():
        batch = waveform if rank == 2 else waveform[tf.newaxis]
        out = _resample_batch(batch, input_rate, output_rate)
        return out if rank == 2 else out[0]

    out = tf.cond(tf.equal(input_rate, output_rate), lambda: tf.identity(waveform), convert)
    out.set_shape(waveform.shape[:-1].concatenate([None]))
    return out


# --- Serving input ----------------------------------------------------------------------------------


def wav_to_waveform(contents, sample_rate=params.SAMPLE_RATE, duration=params.CLIP_SECONDS):
    """WAV bytes -> mono float32 [samples] at `sample_rate`: the serving graph's twin of `load_audio`.

    Decodes with `decode_wav` (which raises InvalidArgumentError on bad input), averages the channels, then
    `waveform_to_clip`.
    """
    samples, rate = decode_wav(contents)
    return waveform_to_clip(tf.reduce_mean(samples, axis=1), rate, sample_rate, duration)


def waveform_to_clip(waveform, rate, sample_rate=params.SAMPLE_RATE, duration=params.CLIP_SECONDS):
    """Mono float32 [N] at int `rate` -> float32 [samples] at `sample_rate`, as `load_audio` shapes a clip.

    Resamples with `resample`, clips to [-1, 1] (resampling can overshoot slightly), then zero-pads at the end
    or cuts to exactly round(duration * sample_rate) samples; duration=None keeps the whole resampled length.
    """
    waveform = resample(waveform, rate, sample_rate)
    waveform = tf.clip_by_value(waveform, -1.0, 1.0)
    if duration is None:
        return waveform
    num_samples = int(round(duration * sample_rate))
    waveform = waveform[:num_samples]
    waveform = tf.pad(waveform, [[0, num_samples - tf.shape(waveform)[0]]])
    waveform.set_shape([num_samples])
    return waveform
