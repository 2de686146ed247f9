"""The pure-Python edge code under hypothesis: any input gives a valid answer or a clean
InvalidInputError, and the invariants each function promises hold."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import dlkit.edge.audio
from dlkit.apps.trigger.edge import EventStream, detect_events, read_labels, refractory_steps, runs
from dlkit.edge.audio import Resampler, resample
from dlkit.edge.boxes import class_aware_nms, iou, nms
from dlkit.edge.text import CharTokens, basic_split, normalize, words
from dlkit.errors import InvalidInputError

META = {
    "threshold": 0.5,
    "min_steps": 2,
    "refractory_seconds": 0.2,
    "sample_rate": 16000,
    "step_samples": 640,
}
FUZZ = settings(max_examples=200, deadline=None)

probabilities = arrays(np.float32, st.integers(0, 300), elements=st.floats(0, 1, width=32))


@FUZZ
@given(probabilities, st.lists(st.integers(1, 50), max_size=12))
def test_events_streamed_in_any_pieces_equal_one_pass(probs, cuts):
    events = detect_events(probs, META)
    stream, streamed, start = EventStream(META), [], 0
    for size in cuts:
        streamed += [step for step, _ in stream.feed(probs[start : start + size])]
        start += size
    streamed += [step for step, _ in stream.feed(probs[start:])]
    assert streamed == events
    refractory = refractory_steps(META)
    assert all(b - a > refractory for a, b in zip(events, events[1:]))
    for step in events:  # an event ends a run of min_steps steps at or above the threshold
        assert step + 1 >= META["min_steps"]
        assert np.all(probs[step + 1 - META["min_steps"] : step + 1] >= META["threshold"])


@FUZZ
@given(arrays(bool, st.integers(0, 200)))
def test_runs_cover_exactly_the_true_steps(labels):
    covered = np.zeros(len(labels), bool)
    previous_end = -2
    for first, last in runs(labels):
        assert first <= last and first > previous_end + 1  # separate, in order
        covered[first : last + 1] = True
        previous_end = last
    assert np.array_equal(covered, labels)


@FUZZ
@given(st.text(max_size=300))
def test_a_label_file_of_any_text_gives_times_or_one_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("labels") / "talk.txt"
    path.write_text(text, encoding="utf-8")
    try:
        times = read_labels(path)
    except InvalidInputError as error:
        assert str(path) in str(error) and "\n" not in str(error)
        return
    assert times == sorted(times) and all(t >= 0 and np.isfinite(t) for t in times)


@FUZZ
@given(st.text(max_size=200))
def test_text_normalisation_never_fails(text):
    clean = normalize(text)
    assert isinstance(clean, str)
    assert all(w for w in words(text))
    assert all(piece for piece in basic_split(clean))


@FUZZ
@given(st.text(alphabet="abc 1-", max_size=40), st.text(max_size=40))
def test_char_tokens_round_trip_known_characters(known, other):
    vocab = ["<pad>", "<unk>", "<s>", "</s>", *sorted(set("abc 1-"))]
    tokens = CharTokens(vocab)
    assert tokens.decode(tokens.encode(known)) == known
    decoded = tokens.decode(tokens.encode(other))
    assert len(decoded) == len(other)
    assert all(ch == "?" or ch in "abc 1-" for ch in decoded)


boxes = arrays(np.float64, st.tuples(st.integers(0, 30), st.just(4)), elements=st.floats(0, 1))


def ordered(raw):
    """(n, 4) corners with x1 <= x2 and y1 <= y2 (degenerate boxes allowed)."""
    return np.concatenate([np.minimum(raw[:, :2], raw[:, 2:]), np.maximum(raw[:, :2], raw[:, 2:])], axis=1)


@FUZZ
@given(boxes, boxes)
def test_iou_is_a_symmetric_fraction(a, b):
    a, b = ordered(a), ordered(b)
    overlap = iou(a, b)
    assert overlap.shape == (len(a), len(b))
    assert np.all((overlap >= 0) & (overlap <= 1 + 1e-12))
    np.testing.assert_allclose(overlap, iou(b, a).T)


@FUZZ
@given(boxes, st.data(), st.floats(0, 1), st.integers(1, 40))
def test_nms_keeps_a_best_first_subset_without_overlaps(raw, data, threshold, max_output):
    found = ordered(raw)
    scores = np.asarray(data.draw(st.lists(st.floats(0, 1), min_size=len(found), max_size=len(found))))
    classes = np.asarray(data.draw(st.lists(st.integers(0, 2), min_size=len(found), max_size=len(found))))
    keep = nms(found, scores, threshold, max_output=max_output)
    assert len(keep) == len(set(keep.tolist())) <= max_output
    assert np.all(np.diff(scores[keep]) <= 0)
    overlaps = iou(found[keep], found[keep])
    np.fill_diagonal(overlaps, 0)
    assert np.all(overlaps <= threshold)
    per_class = class_aware_nms(found, scores, classes, threshold, score_threshold=-1, max_output=max_output)
    for c in set(classes.tolist()):
        same = per_class[classes[per_class] == c]
        overlaps = iou(found[same], found[same])
        np.fill_diagonal(overlaps, 0)
        assert np.all(overlaps <= threshold + 1e-9)


@FUZZ
@given(
    arrays(np.float32, st.integers(1, 4000), elements=st.floats(-1, 1, width=32)),
    st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]),
)
def test_resampling_keeps_duration_and_stays_finite(audio, rate):
    out = resample(audio, rate, 16000)
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    assert abs(len(out) - len(audio) * 16000 / rate) <= 1


@FUZZ
@given(
    st.integers(0, 5000),
    st.sampled_from([(44100, 16000), (48000, 16000), (8000, 16000), (16000, 44100), (16000, 16000)]),
    st.lists(st.integers(0, 1500), max_size=8),
)
def test_resampling_a_stream_in_any_blocks_equals_the_whole(length, rates, cuts):
    """A stream fed block by block (empty blocks too) gives the whole signal's samples: the
    filter carries across block ends, and `finish` adds the zero-padded tail."""
    audio = np.random.default_rng(length).uniform(-1, 1, length).astype(np.float32)
    resampler, pieces, start = Resampler(*rates), [], 0
    for size in cuts:
        pieces.append(resampler.feed(audio[start : start + size]))
        start += size
    pieces += [resampler.feed(audio[start:]), resampler.finish()]
    streamed = np.concatenate(pieces)
    whole = resample(audio, *rates)
    assert streamed.dtype == np.float32 and streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    if rates[0] != rates[1]:  # the stream keeps a window of input, not all of it
        assert len(resampler.kept) <= resampler.taps + resampler.down


@pytest.mark.parametrize(
    "rates",
    [
        (44100, 16000),
        (48000, 16000),
        (22050, 16000),
        (11025, 16000),
        (8000, 16000),
        (16000, 8000),
        (16000, 44100),
    ],
)
@pytest.mark.parametrize("length", [1, 2, 7, 100, 4001, 3 * 44100])
def test_resampling_matches_scipys_polyphase_filter(rates, length, monkeypatch):
    """The numpy resampler of the edge path against `scipy.signal.resample_poly` (its
    reference, installed with the training extra)."""
    from math import gcd

    signal = pytest.importorskip("scipy.signal")
    audio = np.random.default_rng(length).uniform(-1, 1, length).astype(np.float32)
    common = gcd(*rates)
    expected = signal.resample_poly(audio, rates[1] // common, rates[0] // common)
    out = resample(audio, *rates)
    assert out.dtype == np.float32 and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=2e-6)
    # Long audio goes through the product in blocks: the same samples (to float32
    # rounding, which the product's block size changes) block by block.
    monkeypatch.setattr(dlkit.edge.audio, "CHUNK_VALUES", 100)
    np.testing.assert_allclose(resample(audio, *rates), out, atol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_events_ignore_nan_and_inf_probabilities_safely(bad):
    probs = np.array([0.9, 0.9, bad, bad, 0.1, 0.9, 0.9], np.float32)
    events = detect_events(probs, META)
    assert all(isinstance(step, int) for step in events)
