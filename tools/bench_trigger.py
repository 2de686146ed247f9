"""Measures a trigger model the way its targets are stated, on held-out sounds only:

- event recall on the test clips (test voices, speakers and sounds), Keras (one pass per
  clip) and the exported streaming TFLite model, and how often their event decisions agree;
- false accepts per hour on `--hours` of negative-only audio (test-split recorded speech,
  other words by test voices, test sounds and noise; no trigger word), streamed through
  the TFLite model as one continuous stream;
- a DET curve (miss rate against false accepts per hour over thresholds), the streaming
  real-time factor and chunk latency, and a plot of one test clip.

    python tools/bench_trigger.py RUN_OR_MODEL_DIR [--hours 3]
"""

import argparse
import time
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.apps.trigger import edge, sounds
from dlkit.apps.trigger.data import load_split, pools_of, synthesize_clip
from dlkit.edge.bundle import ModelBundle
from dlkit.engine import config_of, fingerprint, load_keras
from dlkit.metrics.intervals import poisson_interval, wilson_interval
from dlkit.plots import det_plot
from dlkit.registry import get_app

THRESHOLDS = np.round(np.r_[np.arange(0.05, 0.951, 0.05), 0.96, 0.97, 0.98, 0.99, 0.995, 0.999], 3)
TARGET_FALSE_ACCEPTS = 1.0  # per hour
TARGET_RECALL = 0.95


def clip_events(probs, labels, meta, threshold):
    events = edge.detect_events(probs, meta, threshold)
    return events, edge.match_events(events, edge.runs(labels > 0.5), meta)


def unheard_speech(config, source):
    """The training split's KTuberling and KLettres recordings, decoded: speakers that a
    model trained on Tux Paint's speech alone (the shipped one) never heard."""
    from dlkit.apps.trigger.data import _decode

    files = [p for p in source.split_files["train"].speech if p.is_relative_to(sounds.KTUBERLING)
             or p.is_relative_to(sounds.KLETTRES)]  # fmt: skip
    return _decode(files, config, [], limit=config.speech_files)


def negative_stream(config, source, hours, spoken_words=False, seed=11, split="test", speech=None):
    """Yields 10-second negative-only clips of test sounds until `hours` are made: recorded
    speech (up to 4 utterances a clip; the split's, or `speech`) over real sounds and
    noise; with `spoken_words`, also other words by the test espeak voices, half of them
    close to the trigger."""
    pools = pools_of(config, source, split, [])
    words, confusable = (pools.words, pools.confusable) if spoken_words else ([], [])
    negatives = type(pools)(pools.speech if speech is None else speech, pools.effects, [], words, confusable)
    no_trigger = type(config)(**{**vars(config), "max_positives": 0, "max_negatives": 4})
    rng = np.random.default_rng(seed)
    clips = int(np.ceil(hours * 3600 / config.clip_seconds))
    for _ in range(clips):
        audio, ends, _ = synthesize_clip(rng, no_trigger, negatives)
        assert not ends
        yield audio


def plot_clip(audio, probs, labels, ends, meta, path):
    from dlkit.plots import audio_scores_plot

    rate = meta["sample_rate"]
    times = [edge.step_end_seconds(meta, j) for j in range(len(probs))]
    fired = [times[j] for j in edge.detect_events(probs, meta)]
    audio_scores_plot(path, audio, rate, times, probs, meta["threshold"], fired, [e / rate for e in ends], labels,
                      title="a test clip: P(trigger), TFLite streaming")  # fmt: skip


def pick_threshold(det, rule="recall", margin=0.01):
    """The operating threshold from a validation DET ([{threshold, miss_rate,
    false_accepts_per_hour}]). "recall": the highest threshold whose recall stays >=
    TARGET_RECALL + margin, so every bit of recall to spare buys fewer false accepts
    (recall, on synthetic voices, transfers to unseen voices; false accepts, on real
    speakers, do not: measured 6x more on the test speakers than on validation).
    "false-accepts": the lowest threshold within margin x TARGET_FALSE_ACCEPTS an hour."""
    if rule == "recall":
        within = [d["threshold"] for d in det if 1 - d["miss_rate"] >= TARGET_RECALL + margin - 1e-12]
        return max(within, default=min(d["threshold"] for d in det))
    within = [d["threshold"] for d in det if d["false_accepts_per_hour"] <= TARGET_FALSE_ACCEPTS * margin]
    return min(within, default=max(d["threshold"] for d in det))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--hours", type=float, default=3.0, help="Hours of recorded speech and sounds.")
    parser.add_argument(
        "--word-hours", type=float, default=1.0, help="Hours with spoken confusable words too."
    )
    parser.add_argument(
        "--calibration-hours", type=float, default=1.0, help="Validation negatives (0: keep)."
    )
    parser.add_argument(
        "--calibrate",
        choices=("recall", "false-accepts"),
        default="recall",
        help="recall: the highest threshold whose validation recall stays >= the recall target "
        "+ --recall-margin (false accepts transfer badly across speakers, recall well); "
        "false-accepts: the lowest threshold within --calibration-margin x the false-accept target.",
    )
    parser.add_argument("--recall-margin", type=float, default=0.01, help="Recall above the target.")
    parser.add_argument(
        "--calibration-margin", type=float, default=0.5, help="Share of the false-accept target."
    )
    parser.add_argument(
        "--unheard-hours",
        type=float,
        default=0.0,
        help="Hours of negatives from speakers the shipped model never heard (training-split "
        "KTuberling and KLettres recordings).",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument(
        "--ship", action="store_true", help="Install the model, at its threshold, as shipped."
    )
    args = parser.parse_args()
    app = get_app("trigger")
    folder = Path(args.model_dir)
    bundle = ModelBundle.load(folder / "model.keras", app="trigger")
    meta, config = bundle.meta, config_of(app, bundle.meta)
    tflite = ModelBundle.load(folder, app="trigger", prefer="tflite")
    source = app.open_source(config, meta.get("data"))
    test = load_split(config, source, "test")
    keras_model = load_keras(bundle.path)
    keras_probs = keras_model.predict(test.inputs, verbose=0, batch_size=16)[..., 0]
    tflite_probs = edge.tflite_runner(tflite.path, meta)(test.inputs)[0][..., 0]

    results = {"model": str(folder), "tflite_file": tflite.path.name}
    # What `dlkit trigger evaluate` compares with: the clips are synthesized from what is
    # installed, and other packages make other clips.
    results["test"] = {"clips": len(test.inputs), "data_fingerprint": fingerprint(test)}
    # The threshold, calibrated on validation: clips of validation voices and speakers, and
    # negative audio of validation speech and sounds (pick_threshold).
    if args.calibration_hours:
        val = load_split(config, source, "val")
        val_probs = edge.tflite_runner(tflite.path, meta)(val.inputs)[0][..., 0]
        step = edge.tflite_stepper(tflite.path)
        calibration = measure_negatives(
            step, meta, config, source, args.calibration_hours, False, val_probs, val.targets, split="val"
        )
        # Half the target on validation: unseen speakers false-accept more (measured: 1 an
        # hour on validation became 2-9 on test at the same threshold).
        margin = args.recall_margin if args.calibrate == "recall" else args.calibration_margin
        threshold = pick_threshold(calibration["det"], args.calibrate, margin)
        results["calibration"] = {**calibration, "threshold": threshold, "rule": args.calibrate}
        results["val"] = {"clips": len(val.inputs), "data_fingerprint": fingerprint(val)}
        meta = dict(meta, threshold=threshold)
        print(f"threshold {threshold} (validation: {calibration['hours']:.1f} h of negatives)", flush=True)

    for name, probs in (("keras", keras_probs), ("tflite", tflite_probs)):
        hits = positives = false = 0
        for row, labels in zip(probs, test.targets):
            _, (h, f) = clip_events(row, labels, meta, meta["threshold"])
            hits, positives, false = hits + h, positives + len(edge.runs(labels > 0.5)), false + f
        results[name] = {
            "event_recall": hits / positives,
            "event_recall_ci95": wilson_interval(hits, positives),
            "events": positives,
            "false_accepts_in_test_clips": false,
        }
    same = total = 0
    for a, b in zip(keras_probs, tflite_probs):
        ea, eb = edge.detect_events(a, meta), edge.detect_events(b, meta)
        total += max(len(ea), len(eb))
        same += len(set(ea) & set(eb))
    results["event_agreement"] = same / total if total else 1.0
    print({k: v for k, v in results.items() if k in ("keras", "tflite", "event_agreement")}, flush=True)

    # Negative-only audio, one continuous stream through the TFLite model: recorded speech
    # and sounds (the target's measure), then the same with spoken confusable words.
    step = edge.tflite_stepper(tflite.path)
    streams = (
        ("negatives", False, args.hours, None),
        ("negatives_with_words", True, args.word_hours, None),
        ("negatives_unheard_speakers", False, args.unheard_hours, "unheard"),
    )
    for key, spoken_words, hours_wanted, speech in streams:
        if hours_wanted:
            speech = unheard_speech(config, source) if speech == "unheard" else None
            results[key] = measure_negatives(
                step,
                meta,
                config,
                source,
                hours_wanted,
                spoken_words,
                tflite_probs,
                test.targets,
                speech=speech,
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_clip(
        test.inputs[0], tflite_probs[0], test.targets[0], test.events[0], meta, out / "trigger_clip.png"
    )
    curves = {key: results[key]["det"] for key in ("negatives", "negatives_with_words") if key in results}
    det_plot(curves, out / "trigger_det.png", title="DET: test clips and negative-only audio")
    io.write_json(out / "trigger.json", results)
    if args.ship:
        ship(folder, tflite.path.name, meta["threshold"], results)
    print(
        {
            k: ({a: b for a, b in v.items() if a != "det"} if isinstance(v, dict) else v)
            for k, v in results.items()
        }
    )


def measure_negatives(
    step,
    meta,
    config,
    source,
    hours_wanted,
    spoken_words,
    clip_probs,
    clip_targets,
    split="test",
    speech=None,
):
    """False accepts per hour of a continuous negative stream, the DET curve (recall from
    the test clips), the real-time factor and the chunk latency."""
    streamer = edge.Streamer(step, meta)
    probs, seconds, busy, chunks = [], 0.0, 0.0, 0
    for audio in negative_stream(config, source, hours_wanted, spoken_words, split=split, speech=speech):
        start = time.perf_counter()
        out = streamer.feed(audio)
        busy += time.perf_counter() - start
        chunks += len(out) // meta["stream_steps"]
        probs.append(out)
        seconds += len(audio) / meta["sample_rate"]
    probs.append(streamer.finish())
    negative_probs = np.concatenate(probs)
    hours = seconds / 3600
    det, false_counts = [], {}
    for threshold in THRESHOLDS:
        hits = positives = 0
        for row, labels in zip(clip_probs, clip_targets):
            _, (h, _) = clip_events(row, labels, meta, threshold)
            hits, positives = hits + h, positives + len(edge.runs(labels > 0.5))
        false = false_counts[float(threshold)] = len(edge.detect_events(negative_probs, meta, threshold))
        det.append(
            {
                "threshold": float(threshold),
                "miss_rate": 1 - hits / positives,
                "false_accepts_per_hour": false / hours,
            }
        )
    at_default = next(d for d in det if abs(d["threshold"] - meta["threshold"]) < 1e-9)
    best = [d for d in det if d["false_accepts_per_hour"] <= 1.0]
    false_accepts = false_counts[at_default["threshold"]]
    return {
        "hours": hours,
        "false_accepts": false_accepts,
        "false_accepts_per_hour": at_default["false_accepts_per_hour"],
        "false_accepts_per_hour_ci95": poisson_interval(false_accepts, hours),
        "best_recall_at_most_1_fa_per_hour": max((1 - d["miss_rate"] for d in best), default=0.0),
        "det": det,
        "real_time_factor": busy / seconds,
        "chunk_latency_ms": 1000 * busy / max(chunks, 1),
        "chunk_seconds": meta["stream_steps"] * meta["step_samples"] / meta["sample_rate"],
    }


def ship(folder, tflite_name, threshold, results):
    """Copies the model into saved_models/trigger with its calibrated threshold."""
    import shutil
    import tempfile

    from dlkit.export.bundle import install_bundle
    from dlkit.paths import shipped_model_dir

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        golden = tflite_name.replace(".tflite", ".golden.npz")
        for name in ("model.keras", "model.json", tflite_name, golden):
            shutil.copy2(folder / name, work / name)
        meta = io.read_json(work / "model.json")
        meta["threshold"] = threshold
        io.write_json(work / "model.json", meta)
        earlier = io.read_json(folder / "metrics.json")
        training = earlier.get("training_run") or {k: v for k, v in earlier.items() if k != "bench"}
        io.write_json(work / "metrics.json", {"bench": results, "training_run": training})
        print(
            f"shipped to {install_bundle(work, shipped_model_dir('trigger'), ('model.keras', tflite_name, golden, 'model.json'))}"
        )


if __name__ == "__main__":
    main()
