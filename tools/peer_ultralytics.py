"""Ultralytics YOLO11n as a peer on detect's offline scenes, scored by dlkit's mAP.

Trains YOLO11n from its model yaml (offline, no pretrained weights: the `.pt` names
download) on the same scenes, at the same image size and for the same CPU time as dlkit's
default recipe, predicts the held-out validation and test scenes, and scores them with
the code that scores dlkit's models (`dlkit.apps.detect.model.DetectionEvaluator`, which
matches pycocotools): mAP@0.5 and @0.5:0.95, class-aware and class-agnostic, with 95%
intervals from resampling the images, apart and pooled.

Ultralytics needs torch, so it is not a dlkit dependency: install it in a virtual
environment of its own and name its Python with --python. On this machine's Python 3.11:

    python -m venv ~/peer && ~/peer/bin/pip install torch==2.14.1 torchvision==0.29.1 ultralytics
    python tools/peer_ultralytics.py --python ~/peer/bin/python --minutes 54 --out runs/peer
    python tools/peer_ultralytics.py --python ~/peer/bin/python --minutes 65 --image-data 2 --out runs/peer_v2

The dlkit side (scenes, scoring) runs in dlkit's Python; only the training and the
predictions run in the peer's, as `peer_ultralytics.py train-and-predict` (a JSON file of
predictions passes between them). Results go to tools/results/detect_peer.json, or with
`--image-data 2` (image data v2's scenes: distractors, held-out backgrounds; the data the
shipped detector is measured on) to tools/results/detect_peer_v2.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "detect_peer.json"
SPLITS = ("val", "test")


def peer_train_and_predict(data_yaml, images_json, out_dir, minutes, image_size, batch, seed):
    """Runs in the peer's Python: trains YOLO11n from scratch for `minutes` of wall time on
    the CPU and writes predictions.json (per image: normalised xyxy boxes, scores, classes)."""
    out_dir = Path(out_dir).resolve()
    config_dir = out_dir / "ultralytics_config"
    (config_dir / "Ultralytics").mkdir(parents=True, exist_ok=True)
    os.environ.update(YOLO_OFFLINE="1", YOLO_CONFIG_DIR=str(config_dir))
    font = config_dir / "Ultralytics" / "Arial.ttf"
    if not font.exists():  # Ultralytics downloads Arial.ttf unless a font is there
        import matplotlib

        font.write_bytes((Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf").read_bytes())
    from ultralytics import YOLO

    model = YOLO("yolo11n.yaml")
    started = time.time()
    model.train(
        data=str(data_yaml),
        imgsz=image_size,
        epochs=1000,  # `time` ends training
        time=minutes / 60,
        batch=batch,
        device="cpu",
        workers=0,
        amp=False,
        plots=False,
        pretrained=False,
        seed=seed,
        project=str(out_dir),
        name="train",
        exist_ok=True,
        verbose=False,
    )
    train_seconds = time.time() - started
    best = out_dir / "train" / "weights" / "best.pt"
    model = YOLO(str(best))
    predictions = {}
    for split, paths in json.loads(Path(images_json).read_text()).items():
        rows = []
        for start in range(0, len(paths), 32):
            for result in model.predict(
                paths[start : start + 32], imgsz=image_size, conf=0.001, iou=0.7, max_det=300, verbose=False
            ):
                boxes = result.boxes
                rows.append(
                    {
                        "boxes": boxes.xyxyn.numpy().tolist(),
                        "scores": boxes.conf.numpy().tolist(),
                        "classes": boxes.cls.numpy().astype(int).tolist(),
                    }
                )
        predictions[split] = rows
    import torch
    import ultralytics

    info = {
        "train_seconds": train_seconds,
        "epochs_done": _epochs_done(out_dir / "train" / "results.csv"),
        "ultralytics": ultralytics.__version__,
        "torch": torch.__version__,
        "parameters": sum(p.numel() for p in model.model.parameters()),
    }
    (out_dir / "predictions.json").write_text(json.dumps({"info": info, "predictions": predictions}))


def _epochs_done(csv_path):
    try:
        return max(0, len(Path(csv_path).read_text().strip().splitlines()) - 1)
    except OSError:
        return None


def main(python, minutes, out_dir, seed, image_data=1):
    """dlkit's side: the default scenes, the peer run in its own Python, the scores."""
    from dlkit import io
    from dlkit.apps.detect.config import Config
    from dlkit.apps.detect.data import default_data
    from dlkit.registry import get_app

    app = get_app("detect")
    config = Config(image_data=image_data)
    results_path = RESULTS if image_data == 1 else RESULTS.with_name(f"detect_peer_v{image_data}.json")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(default_data(config))
    source = app.open_source(config, None)
    labels = list(source.labels)
    # Ultralytics reads the YOLO layout dlkit wrote; only its data.yaml needs an absolute path.
    data_yaml = out_dir / "data.yaml"
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(labels))
    data_yaml.write_text(
        f"path: {folder}\ntrain: images/train\nval: images/val\ntest: images/test\nnames:\n{names}\n"
    )
    loaded = {split: app.load_split(config, source, split) for split in SPLITS}
    images_json = out_dir / "images.json"
    images_json.write_text(json.dumps({split: [str(p) for p in loaded[split].paths] for split in SPLITS}))
    if not (out_dir / "predictions.json").exists():
        command = [python, __file__, "train-and-predict", str(data_yaml), str(images_json), str(out_dir)]
        command += ["--minutes", str(minutes), "--image-size", str(config.image_size)]
        command += ["--batch", str(config.batch_size), "--seed", str(seed)]
        subprocess.run(command, check=True)
    peer = json.loads((out_dir / "predictions.json").read_text())
    results = {"peer": "Ultralytics YOLO11n from yolo11n.yaml (no pretrained weights)", **peer["info"]}
    results["minutes"], results["image_size"], results["batch"] = (
        minutes,
        config.image_size,
        config.batch_size,
    )
    results["image_data"] = image_data
    results.update(score(peer["predictions"], {split: loaded[split].targets for split in SPLITS}, labels))
    io.write_json(results_path, results)
    for split in (*SPLITS, "pooled"):
        scores = results[split]
        print(
            f"{split}: mAP@0.5 {scores['map50']:.3f} {_interval(scores['map50_ci95'])}, "
            f"mAP@0.5:0.95 {scores['map50_95']:.3f} {_interval(scores['map50_95_ci95'])}, "
            f"class-agnostic {scores['class_agnostic_map50']:.3f} / {scores['class_agnostic_map50_95']:.3f}"
        )
    print(f"wrote {results_path}")


def score(predictions, targets, labels):
    """{split: [{"boxes", "scores", "classes"} per image]} and {split: [(boxes, classes)]}
    -> {split and "pooled": detect's evaluation report without its curves}."""
    from dlkit.apps.detect.model import DetectionEvaluator

    results, pooled = {}, DetectionEvaluator(labels)
    for split, rows in predictions.items():
        evaluator = DetectionEvaluator(labels)
        outputs = (
            [_array(r["boxes"], (-1, 4)) for r in rows],
            [_array(r["scores"], (-1,)) for r in rows],
            [_array(r["classes"], (-1,)) for r in rows],
            [len(r["scores"]) for r in rows],
        )
        for target in (evaluator, pooled):
            target.update(outputs, list(targets[split]))
        results[split] = _summary(evaluator.result())
    results["pooled"] = _summary(pooled.result())
    return results


def _array(values, shape):
    import numpy as np

    return np.asarray(values, np.float32).reshape(shape)


def _summary(report):
    return {k: v for k, v in report.items() if k != "curves"}


def _interval(pair):
    return f"[{pair[0]:.3f}, {pair[1]:.3f}]"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "train-and-predict":
        parser = argparse.ArgumentParser(prog="peer_ultralytics.py train-and-predict")
        parser.add_argument("command")
        parser.add_argument("data_yaml")
        parser.add_argument("images_json")
        parser.add_argument("out_dir")
        parser.add_argument("--minutes", type=float, required=True)
        parser.add_argument("--image-size", type=int, required=True)
        parser.add_argument("--batch", type=int, required=True)
        parser.add_argument("--seed", type=int, default=0)
        args = parser.parse_args()
        peer_train_and_predict(
            args.data_yaml,
            args.images_json,
            args.out_dir,
            args.minutes,
            args.image_size,
            args.batch,
            args.seed,
        )
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        parser.add_argument("--python", required=True, help="the Python of an environment with ultralytics")
        parser.add_argument(
            "--minutes", type=float, default=54.0, help="training wall time (dlkit's recipe: 54)"
        )
        parser.add_argument("--out", default="runs/peer_ultralytics", help="work folder")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--image-data", type=int, choices=(1, 2), default=1, help="the offline image data's version"
        )
        args = parser.parse_args()
        try:
            main(args.python, args.minutes, args.out, args.seed, args.image_data)
        except subprocess.CalledProcessError as error:
            sys.exit(f"error: the peer run failed (exit {error.returncode}); its output is above")
