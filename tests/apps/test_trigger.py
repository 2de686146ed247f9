"""Trigger: the in-model spectrogram against numpy, label construction, clip synthesis,
the sources' splits, event detection, and streaming against one pass over the whole clip.
Train/export/predict/resume are in the contract kit (tests/test_contract.py)."""

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import assert_one_line_error, run_cli
from dlkit.apps.trigger import sounds
from dlkit.apps.trigger.config import Config
from dlkit.apps.trigger.data import label_steps, output_steps, receptive_samples, step_samples
from dlkit.apps.trigger.edge import EventStream, Streamer, detect_events, match_events, runs, steps_for

META = {
    "threshold": 0.5,
    "min_steps": 2,
    "refractory_seconds": 1.0,
    "sample_rate": 16000,
    "step_samples": 640,
}


def test_spectrogram_layer_matches_a_numpy_stft():
    keras = pytest.importorskip("keras")
    from dlkit.layers import Spectrogram

    audio = np.random.default_rng(0).normal(0, 0.1, (2, 4000)).astype(np.float32)
    layer = Spectrogram(400, 160, 512)
    got = np.asarray(layer(keras.ops.convert_to_tensor(audio)))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)  # periodic Hann
    frames = np.stack([audio[:, i * 160 : i * 160 + 400] * window for i in range(1 + (4000 - 400) // 160)], 1)
    expected = np.log(np.abs(np.fft.rfft(frames, n=512)) + 1e-6)
    assert got.shape == (2, 23, 257) == layer.compute_output_shape((2, 4000))
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_geometry_and_labels_on_hand_placed_words():
    config = Config()
    assert receptive_samples(config) == 400 + 14 * 160 == 2640 and step_samples(config) == 640
    assert (
        output_steps(config, 160_000)
        == 246
        == steps_for({"receptive_samples": 2640, "step_samples": 640}, 160_000)
    )
    for samples in (2639, 2640, 3279, 3280, 9999, 160_000):
        # The network's own arithmetic: STFT frames without padding, then the strided conv.
        frames = 1 + (samples - config.frame_length) // config.frame_step
        expected = max(0, (frames - config.conv_kernel) // config.conv_stride + 1)
        assert output_steps(config, samples) == expected
    # A word ending at sample 32,000 (2.0 s): step j sees samples up to 640 j + 2640, so the
    # first step past the end is j = 46 (its window ends at 32,080); 10 steps are labelled.
    labels = label_steps(config, [32_000], 160_000)
    assert np.flatnonzero(labels).tolist() == list(range(46, 56))
    # A word ending before the first window ends labels from step 0; one at the clip's end
    # labels nothing past the last step.
    assert np.flatnonzero(label_steps(config, [1000], 160_000)).tolist() == list(range(10))
    assert np.flatnonzero(label_steps(config, [159_000], 160_000)).tolist() == [245]
    assert not label_steps(config, [159_990], 160_000).any()  # no step sees past its end


def test_events_fire_once_and_respect_the_refractory_period():
    probs = np.zeros(100)
    probs[10:20] = 0.9  # one utterance: one event, at the second step above threshold
    probs[22:24] = 0.9  # within 1 s (25 steps) of it: refractory
    probs[40] = 0.9  # a single step: shorter than min_steps
    probs[60:63] = 0.8
    assert detect_events(probs, META) == [11, 61]
    # The same events when the probabilities arrive in pieces.
    stream = EventStream(META)
    pieces = [stream.feed(probs[a:b]) for a, b in ((0, 11), (11, 12), (12, 61), (61, 100))]
    assert [step for piece in pieces for step, _ in piece] == [11, 61]
    assert runs([0, 1, 1, 0, 0, 1]) == [(1, 2), (5, 5)]
    assert match_events([11, 61, 90], [(5, 14), (55, 58)], META) == (2, 1)
    assert match_events([], [(5, 14)], META) == (0, 0)


def test_evaluator_counts_events_per_threshold_with_intervals(tmp_path):
    from dlkit.apps.trigger.model import TriggerEvaluator, plots
    from dlkit.metrics.intervals import poisson_interval, wilson_interval

    meta = dict(META, threshold=0.75)
    probs = np.zeros((2, 100))
    labels = np.zeros((2, 100))
    labels[0, 10:20] = labels[1, 50:60] = 1
    probs[0, 10:20] = 0.9  # found at thresholds <= 0.9
    probs[1, 50:60] = 0.6  # found only at thresholds <= 0.6
    probs[1, 90:95] = 0.8  # beyond the run and its refractory slack: a false accept at thresholds <= 0.8
    evaluator = TriggerEvaluator(meta)
    evaluator.update([probs[..., None]], labels)
    report = evaluator.result()
    assert (report["events"], report["event_recall"], report["false_accepts"]) == (2, 0.5, 1)
    hours = 200 * 640 / 16000 / 3600
    assert report["hours"] == pytest.approx(hours)
    assert report["event_recall_ci95"] == wilson_interval(1, 2)
    assert report["false_accepts_per_hour_ci95"] == poisson_interval(1, hours)
    det = {
        row["threshold"]: (row["miss_rate"], row["false_accepts_per_hour"] * hours) for row in report["det"]
    }
    assert det[0.5] == (0.0, pytest.approx(1)) and det[0.75] == (0.5, pytest.approx(1))
    assert det[0.85] == (0.5, 0.0) and det[0.95] == (1.0, 0.0)
    assert plots(report, meta, tmp_path)[0].stat().st_size > 0


def test_espeak_voices_speak_and_splits_never_share_a_voice_speaker_or_sound():
    from dlkit.data.speech import VARIANTS, speak

    first, again = speak("activate", "m1"), speak("activate", "m1")
    assert abs(len(first) - len(again)) < 0.1 * len(first)  # espeak-ng varies a little per call
    assert first.dtype == np.float32 and 0.3 < len(first) / 16000 < 1.5 and np.abs(first).max() > 0.1
    assert len(speak("activate", "f3", rate=220)) < len(speak("activate", "f3", rate=120))
    voices = [set(v) for v in sounds.VOICES.values()]
    assert not (voices[0] & voices[1] or voices[0] & voices[2] or voices[1] & voices[2])
    assert set().union(*voices) <= set(VARIANTS)
    files = sounds.find_files()
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not set(files[a].speech) & set(files[b].speech) and not set(files[a].effects) & set(
            files[b].effects
        )
        assert not {sounds.speech_language(p) for p in files[a].speech} & {
            sounds.speech_language(p) for p in files[b].speech
        }
    assert len(files["test"].speech) > 1000 and files["test"].effects


def test_clips_are_deterministic_words_never_overlap_and_triggers_keep_apart():
    from dlkit.apps.trigger.data import Pools, synthesize_clip

    config = Config(clip_seconds=6.0, max_positives=4, max_negatives=2)
    rng = np.random.default_rng(0)
    noise = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16000, 9000, 12000)]
    pools = Pools(speech=noise[:1], effects=noise[1:2], positives=noise[2:], words=noise[1:])
    for seed in range(5):
        audio, ends, placed = synthesize_clip(np.random.default_rng(seed), config, pools)
        again, ends_again, _ = synthesize_clip(np.random.default_rng(seed), config, pools)
        np.testing.assert_array_equal(audio, again)
        assert ends == ends_again == sorted(end for _, end, kind in placed if kind == "positive")
        assert audio.shape == (96_000,) and np.abs(audio).max() <= 0.99 + 1e-6
        for (_, a1, _), (b0, _, _) in zip(placed, placed[1:]):
            assert a1 <= b0  # sorted by start, never overlapping
        words = [(a, b) for a, b, kind in placed if kind == "positive"]
        for (_, a1), (b0, _) in zip(words, words[1:]):
            assert b0 - a1 >= config.refractory_seconds * 16000  # trigger words a refractory period apart


@pytest.fixture(scope="module")
def trained(contract_run):
    return contract_run("trigger")


def test_streaming_in_any_pieces_equals_one_pass_over_the_clip(trained):
    from dlkit.apps.trigger.edge import tflite_stepper
    from dlkit.edge.bundle import ModelBundle
    from dlkit.engine import load_keras

    bundle = ModelBundle.load(trained.run_dir / "model.tflite")
    meta = bundle.meta
    clip = np.random.default_rng(1).normal(0, 0.2, meta["clip_samples"]).astype(np.float32)
    whole = load_keras(trained.run_dir / "model.keras").predict(clip[None], verbose=0)[0, :, 0]
    streamer = Streamer(tflite_stepper(bundle.path), meta)
    cuts = np.sort(np.random.default_rng(2).choice(len(clip), 7, replace=False))
    pieces = [streamer.feed(piece) for piece in np.split(clip, cuts)] + [streamer.finish()]
    streamed = np.concatenate(pieces)
    assert len(streamed) == len(whole) == meta["steps"]
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def yield_all(generator, into):
    """Appends what `generator` yields to `into`; returns what it returns."""
    while True:
        try:
            into.append(next(generator))
        except StopIteration as done:
            return done.value


def test_listen_streams_a_long_file_and_writes_chimes(trained, tmp_path):
    from dlkit.apps.trigger.edge import listen, tflite_stepper
    from dlkit.edge.bundle import ModelBundle

    bundle = ModelBundle.load(trained.run_dir / "model.tflite")
    meta = dict(bundle.meta, threshold=0.0, min_steps=1)  # every step counts: events every second
    audio = np.random.default_rng(3).normal(0, 0.1, 16000 * 12).astype(np.float32)
    path = tmp_path / "long.wav"
    soundfile.write(path, np.stack([audio, audio], 1), 16000)  # stereo: mixed down
    stream = listen(path, tflite_stepper(bundle.path), meta, block_seconds=2.5, chime_to=tmp_path / "c.wav")
    events = []
    heard = yield_all(stream, events)
    assert heard == 12.0  # the length it returns: 192,000 samples at 16 kHz
    times = [t for t, _ in events]
    assert len(times) == 12 and all(b - a >= 1.0 for a, b in zip(times, times[1:]))
    chimed, rate = soundfile.read(tmp_path / "c.wav")
    assert rate == 16000 and len(chimed) == len(audio) and not np.allclose(chimed, audio, atol=1e-3)


def test_bad_audio_is_a_one_line_error(trained, tmp_path):
    model = trained.run_dir / "model.tflite"
    (tmp_path / "notes.wav").write_text("not audio\n")
    assert_one_line_error(
        run_cli("trigger", "predict", tmp_path / "notes.wav", "--model", model), "not an audio file"
    )
    soundfile.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    assert_one_line_error(run_cli("trigger", "predict", tmp_path / "silent.wav", "--model", model), "silent")
    assert_one_line_error(
        run_cli("trigger", "listen", tmp_path / "notes.wav", "--model", model), "not an audio file"
    )
    result = run_cli("trigger", "listen", tmp_path / "silent.wav", "--model", trained.run_dir / "model.keras")
    assert_one_line_error(result, "streams through an exported .tflite")
    other = np.random.default_rng(0).normal(0, 0.1, (22050 * 2, 2)).astype(np.float32)
    soundfile.write(tmp_path / "stereo.flac", other, 22050)
    result = run_cli("trigger", "predict", tmp_path / "stereo.flac", "--model", model)
    assert result.exit_code == 0, result.output
    assert "2 channels mixed down to mono" in result.output and "resampled from 22050 Hz" in result.output
    clipped = np.clip(np.random.default_rng(1).normal(0, 1.0, 16000 * 2), -1, 1).astype(np.float32)
    soundfile.write(tmp_path / "clipped.wav", clipped, 16000, subtype="FLOAT")
    result = run_cli("trigger", "predict", tmp_path / "clipped.wav", "--model", model)
    assert result.exit_code == 0 and "clipped audio" in result.output, result.output


def test_listen_takes_folders_and_skips_what_it_cannot_read(trained, tmp_path):
    """A folder streams file by file; an unreadable file is one `skipped:` line while the
    others still stream, and the exit code says something was skipped."""
    model = trained.run_dir / "model.tflite"
    folder = tmp_path / "recordings"
    folder.mkdir()
    soundfile.write(folder / "a.wav", np.random.default_rng(4).normal(0, 0.05, 16000 * 2), 16000)
    (folder / "b.wav").write_text("not audio\n")
    (folder / "c.wav").write_bytes(b"")
    result = run_cli("trigger", "listen", folder, "--model", model, "--chime", tmp_path / "chimes")
    assert result.exit_code == 2, result.output
    assert "skipped: " in result.output and "b.wav: not an audio file" in result.output
    assert "c.wav: empty file" in result.output and "2 inputs could not be read" in result.output
    assert re.search(r"a\.wav: (no trigger|\d+ triggers?) in 2\.0 s of audio \(streamed in", result.output)
    assert sorted(p.name for p in (tmp_path / "chimes").iterdir()) == ["a_chime.wav"]
    import json

    lines = run_cli("trigger", "listen", folder, "--model", model, "--json").stdout.splitlines()
    errors = [json.loads(line) for line in lines if line.startswith("{") and '"error"' in line]
    assert [Path(e["input"]).name for e in errors] == ["b.wav", "c.wav"]
    assert_one_line_error(run_cli("trigger", "listen", folder / "c.wav", "--model", model), "empty file")
    # A folder is reported file by file, as predict does, even when it holds one file.
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "b.wav").write_text("not audio\n")
    result = run_cli("trigger", "listen", lone, "--model", model)
    assert result.exit_code == 2 and "skipped: " in result.output, result.output
    assert "1 input could not be read" in result.output
    assert_one_line_error(
        run_cli("trigger", "listen", tmp_path / "none.wav", "--model", model), "no such file"
    )


def test_listen_resamples_a_stream_without_seams(trained, tmp_path):
    """A 44.1 kHz file streamed in blocks that are no multiple of the rate ratio: the
    copy `listen` writes (no event fires, so no chime) is the whole file resampled at
    once, with no edge effect where a block ends, and no sample more or less."""
    from dlkit.apps.trigger.edge import listen, tflite_stepper
    from dlkit.edge.audio import read_audio
    from dlkit.edge.bundle import ModelBundle

    bundle = ModelBundle.load(trained.run_dir / "model.tflite")
    t = np.arange(int(44100 * 3.3)) / 44100
    path = tmp_path / "tone.wav"
    soundfile.write(path, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100)
    events = listen(path, tflite_stepper(bundle.path), bundle.meta, 0.6543, tmp_path / "c.wav", threshold=2.0)
    assert list(events) == []
    copied, rate = soundfile.read(tmp_path / "c.wav", dtype="float32")
    whole = read_audio(path, 16000).samples
    assert rate == 16000 and copied.shape == whole.shape
    np.testing.assert_allclose(copied, whole, atol=1e-4)  # the copy is 16-bit PCM


def test_listen_stopped_midway_leaves_no_chime_file(trained, tmp_path):
    """The chime copy lands only when the whole file has streamed: a listener that stops
    early (or a crash) leaves neither the file nor its temporary."""
    from dlkit.apps.trigger.edge import listen, tflite_stepper
    from dlkit.edge.bundle import ModelBundle

    bundle = ModelBundle.load(trained.run_dir / "model.tflite")
    meta = dict(bundle.meta, threshold=0.0, min_steps=1)
    path = tmp_path / "long.wav"
    soundfile.write(path, np.random.default_rng(5).normal(0, 0.1, 16000 * 6).astype(np.float32), 16000)
    events = listen(path, tflite_stepper(bundle.path), meta, block_seconds=1.0, chime_to=tmp_path / "c.wav")
    next(events)
    events.close()
    assert list(tmp_path.iterdir()) == [path]


def test_bench_tool_measures_recall_false_accepts_and_det(trained, tmp_path, monkeypatch):
    import importlib.util
    import json
    import sys
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bench_trigger", Path(__file__).parents[2] / "tools" / "bench_trigger.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = [
        "bench_trigger",
        str(trained.run_dir),
        "--hours",
        "0.01",
        "--word-hours",
        "0.005",
        "--out",
        str(tmp_path),
    ]
    argv += ["--calibration-hours", "0.005", "--unheard-hours", "0.003"]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    result = json.loads((tmp_path / "trigger.json").read_text())
    assert result["keras"]["events"] == result["tflite"]["events"] > 0 and result["event_agreement"] >= 0.99
    negatives = result["negatives"]
    assert abs(negatives["hours"] - 0.01) < 0.003 and negatives["real_time_factor"] > 0
    rate = negatives["false_accepts"] / negatives["hours"]
    low, high = negatives["false_accepts_per_hour_ci95"]
    assert negatives["false_accepts_per_hour"] == pytest.approx(rate) and low <= rate < high
    assert abs(result["negatives_with_words"]["hours"] - 0.005) < 0.003
    calibration = result["calibration"]
    assert calibration["rule"] == "recall"
    assert calibration["threshold"] == bench.pick_threshold(calibration["det"], "recall", 0.01)
    assert abs(result["negatives_unheard_speakers"]["hours"] - 0.003) < 0.003
    # the rules on a hand-made validation DET
    det = [{"threshold": t, "miss_rate": m, "false_accepts_per_hour": f}
           for t, m, f in ((0.5, 0.01, 3.0), (0.8, 0.03, 0.4), (0.9, 0.035, 0.2), (0.99, 0.06, 0.0))]  # fmt: skip
    assert bench.pick_threshold(det, "recall", 0.01) == 0.9  # the highest with recall >= 0.96
    assert bench.pick_threshold(det, "false-accepts", 0.5) == 0.8  # the lowest within 0.5 an hour
    assert bench.pick_threshold(det, "recall", 0.1) == 0.5  # none qualifies: the lowest threshold
    misses = [d["miss_rate"] for d in negatives["det"]]
    false_accepts = [d["false_accepts_per_hour"] for d in negatives["det"]]
    assert misses == sorted(misses) and false_accepts == sorted(false_accepts, reverse=True)
    assert (tmp_path / "trigger_clip.png").stat().st_size > 0 and (tmp_path / "trigger_det.png").exists()
    # The clips' fingerprints are those `evaluate` makes, so a record it writes is one
    # that `dlkit trigger evaluate` finds its own examples in.
    from dlkit import runner

    for split in ("val", "test"):
        report = runner.evaluate(trained.app, trained.run_dir, split=split)
        assert result[split]["data_fingerprint"] == report["data_fingerprint"], split
    assert result["test"]["clips"] > 0 and "test_clips" not in result


def test_a_word_espeak_cannot_speak_is_a_one_line_error(tmp_path):
    result = run_cli("trigger", "train", "--tiny", "--set", "word=...", "--run-dir", tmp_path / "run")
    assert_one_line_error(result, "espeak-ng produced no sound for '...'")


def test_shipped_model_finds_the_word_in_a_recording(tmp_path):
    """The shipped streaming model on a file it never saw: a test voice saying the word
    once over noise; one trigger, just after the word, through predict and listen."""
    from dlkit.apps.trigger.data import write_sample_audio
    from dlkit.paths import shipped_model_dir

    folder = shipped_model_dir("trigger")
    golden = np.load(next(folder.glob("model*.golden.npz")))
    assert golden["inputs"].shape[1] > 9000  # streaming windows, not whole clips
    path = write_sample_audio(tmp_path)  # the word at 1.5 s
    result = run_cli("trigger", "predict", path, "--json")
    assert result.exit_code == 0, result.output
    import json

    record = json.loads(result.stdout.splitlines()[0])
    triggers = record["triggers"]
    assert len(triggers) == 1 and 1.8 < triggers[0] < 2.8
    # the word's probability where it fired: at least the threshold, at most the peak
    threshold = json.loads((folder / "model.json").read_text())["threshold"]
    assert threshold <= record["trigger_probabilities"][0] <= record["max_probability"]
    # a label file beside the audio: counted in the result and marked in the plot
    path.with_suffix(".txt").write_text(f"1.4\t{triggers[0] - 0.1:.2f}\tactivate\n# a comment\n6.0\n")
    result = run_cli("trigger", "predict", path, "--json", "--out", tmp_path / "out")
    row = json.loads(result.stdout.splitlines()[0])
    assert row["labelled"] == [round(triggers[0] - 0.1, 2), 6.0] and row["found"] == 1
    assert (tmp_path / "out" / "sample.png").stat().st_size > 10_000
    listened = run_cli("trigger", "listen", path)
    assert listened.exit_code == 0 and "trigger at" in listened.stdout
    # --json: one object per detection, the same time as predict's to a streaming step
    events = [json.loads(line) for line in run_cli("trigger", "listen", path, "--json").stdout.splitlines()]
    assert [event["input"] for event in events] == [str(path)]
    assert abs(events[0]["time"] - triggers[0]) < 0.05 and threshold <= events[0]["probability"] <= 1


def test_label_files_read_times_or_audacity_tracks_and_reject_junk(tmp_path):
    from dlkit.apps.trigger.edge import found_labelled, read_labels
    from dlkit.errors import InvalidInputError

    path = tmp_path / "talk.txt"
    path.write_text("# trigger ends\n3.5\n\n1.25\t1.9\tactivate\n7 8.5\n")
    assert read_labels(path) == [1.9, 3.5, 8.5]
    meta = {"refractory_seconds": 1.0}
    # a detection counts from 0.1 s before a label to 1.5 s after it (refractory + 0.5 s)
    assert found_labelled([2.0, 3.3, 5.1, 9.9], [1.9, 3.5, 8.5], meta) == 2  # 3.3 early, 5.1 late
    assert found_labelled([2.0, 2.1], [1.9, 2.0], meta) == 2  # each detection serves one label
    for junk, reason in (
        ("1.0\nabc\n", ":2: expected a time"),
        ("-1\n", ":1: times must be"),
        ("3\t2\n", ":1:"),
    ):
        path.write_text(junk)
        with pytest.raises(InvalidInputError, match=reason):
            read_labels(path)


def _user_folder(root, recordings=2):
    """positives/ negatives/ backgrounds/ of short sounds, and labelled long recordings/
    (noise with a 0.3 s tone burst ending at each labelled time)."""
    rng = np.random.default_rng(0)
    for name, count in (("positives", 12), ("negatives", 12), ("backgrounds", 6)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            soundfile.write(
                root / name / f"{name}{i}.wav", rng.normal(0, 0.1, 8000 + 800 * i).astype(np.float32), 16000
            )
    (root / "recordings").mkdir()
    ends = [4.0, 12.5, 33.0, 38.0]
    for i in range(recordings):
        audio = rng.normal(0, 0.01, 16000 * 40).astype(np.float32)
        for end in ends:
            start = int((end - 0.3) * 16000)
            audio[start : int(end * 16000)] += 0.5 * np.sin(np.arange(int(end * 16000) - start) * 0.3)
        soundfile.write(root / "recordings" / f"talk{i}.flac", audio, 16000)
        (root / "recordings" / f"talk{i}.txt").write_text(
            "".join(f"{e - 0.3}\t{e}\tactivate\n" for e in ends)
        )


def test_user_folders_and_labelled_recordings_become_clips(tmp_path):
    from dlkit.apps.trigger.data import load_split, open_source
    from dlkit.errors import InvalidInputError

    _user_folder(tmp_path / "data")
    config = Config(clip_seconds=10.0, train_clips=5, val_clips=2, test_clips=2)
    source = open_source(config, tmp_path / "data")
    splits = {name: load_split(config, source, name) for name in ("train", "val", "test")}
    # two recordings < 10: each is cut in time, 28 s / 6 s / 6 s -> 3 + 1 + 1 clips each
    assert [len(splits[s].inputs) for s in ("train", "val", "test")] == [5 + 6, 2 + 2, 2 + 2]
    recorded = splits["train"].events[5:]
    # train clips of each recording: [0, 10) s, [10, 20) s, [20, 28) s (padded)
    assert recorded[:3] == [[4 * 16000], [int(2.5 * 16000)], []]
    assert splits["test"].events[2:] == [[int((38.0 - 34.0) * 16000)]] * 2  # test: 34-40 s
    np.testing.assert_array_equal(splits["train"].targets[5], label_steps(config, [64000], 160000))
    (tmp_path / "data" / "recordings" / "talk1.txt").unlink()
    with pytest.raises(InvalidInputError, match="talk1.flac: no label file talk1.txt"):
        open_source(config, tmp_path / "data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no audio files; expected positives/"):
        open_source(config, tmp_path / "empty")
    train = ("trigger", "train", "--tiny", "--data", tmp_path / "data", "--run-dir", tmp_path / "run",
             "--set", "epochs=1", "--set", "clip_seconds=10.0")  # fmt: skip
    assert_one_line_error(run_cli(*train), "talk1.flac: no label file")
    assert not (tmp_path / "run" / "model.keras").exists()
    (tmp_path / "data" / "recordings" / "talk1.txt").write_text("")  # the word never occurs in it
    result = run_cli(*train)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "model.keras").is_file()


def test_held_out_clips_do_not_follow_the_training_seed(tmp_path):
    """Models trained with different seeds are scored on the same validation and test
    clips; the training clips follow the seed."""
    from dlkit.apps.trigger.data import load_split, open_source

    _user_folder(tmp_path / "data")
    configs = [Config(clip_seconds=10.0, train_clips=5, val_clips=2, test_clips=2, seed=s) for s in (0, 7)]
    splits = [
        {
            name: load_split(config, open_source(config, tmp_path / "data"), name)
            for name in ("train", "val", "test")
        }
        for config in configs
    ]
    for name in ("val", "test"):
        np.testing.assert_array_equal(splits[0][name].inputs, splits[1][name].inputs)
    assert not np.array_equal(splits[0]["train"].inputs[:5], splits[1]["train"].inputs[:5])


@pytest.mark.parametrize(
    ("times", "line"),
    [
        ([], "a.wav: no trigger (2.0 s of audio)"),
        ([1.234], "a.wav: 1 trigger at 1.23 s (2.0 s of audio)"),
        ([0.5, 1.75], "a.wav: 2 triggers at 0.50 s, 1.75 s (2.0 s of audio)"),
    ],
)
def test_a_predict_line_counts_and_times_the_triggers(times, line):
    from dlkit.apps.trigger.edge import format_result

    assert format_result("a.wav", {"triggers": times, "seconds": 2.0}) == line


def test_the_default_sources_fingerprint_changes_when_a_sound_does(tmp_path, monkeypatch):
    """A package upgrade can change a sound under the same name; the run's manifest must
    tell the two data apart."""
    from dlkit.apps.trigger.data import open_source

    speech, effect = tmp_path / "speech.wav", tmp_path / "door.ogg"
    soundfile.write(speech, np.zeros(1600, np.float32), 16000)
    soundfile.write(effect, np.zeros(800, np.float32), 16000, format="OGG")
    found = {
        "train": sounds.SoundFiles([speech], [effect]),
        "val": sounds.SoundFiles(),
        "test": sounds.SoundFiles(),
    }
    monkeypatch.setattr(sounds, "find_files", lambda: found)
    before = open_source(Config(), None).fingerprint
    assert open_source(Config(), None).fingerprint == before
    soundfile.write(speech, np.zeros(3200, np.float32), 16000)
    assert open_source(Config(), None).fingerprint != before
