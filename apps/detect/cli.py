"""`dlkit detect predict` (images with drawn boxes + JSON) and `dlkit detect data check`."""

import json
import sys
from pathlib import Path

import click

from dlkit.cli import EXIT_USAGE, handle_errors, model_option


def register(group, app):
    @group.command(help="Detect objects in images or folders; writes annotated images and detections.json.")
    @click.argument("inputs", nargs=-1, required=True)
    @model_option
    @click.option("--out", default=None, metavar="DIR", help="Output folder (default runs/detect/predictN).")
    @click.option("--conf", type=float, default=0.25, show_default=True, help="Minimum score to report.")
    @click.option("--batch-size", type=int, default=16, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per image (JSON lines).")
    @handle_errors
    def predict(inputs, model_path, out, conf, batch_size, as_json):
        import numpy as np

        from dlkit import io
        from dlkit.errors import InvalidInputError
        from dlkit.predict import expand_inputs, load_predictor

        bundle, run = load_predictor(app, model_path)
        edge, labels = app.edge, bundle.meta["labels"]
        files = expand_inputs(inputs)
        out_dir = Path(out) if out else next_predict_dir()
        out_dir.mkdir(parents=True, exist_ok=True)
        failed, records = 0, []
        for start in range(0, len(files), batch_size):
            ready = []
            for path in files[start : start + batch_size]:
                try:
                    raw = edge.read_input(path, bundle.meta)
                    ready.append((path, raw, edge.preprocess(raw, bundle.meta)))
                except InvalidInputError as error:
                    failed += 1
                    click.echo(f"skipped: {error}" if len(files) > 1 else f"Error: {error}", err=True)
            if not ready:
                continue
            outputs = run(np.stack([x for _, _, x in ready]))
            for (path, raw, _), result in zip(ready, edge.postprocess(outputs, bundle.meta, conf=conf)):
                result = edge.to_pixels(result, raw.shape[1], raw.shape[0])
                image_out = out_dir / f"{Path(path).stem}.jpg"
                with io.atomic_path(image_out) as tmp:
                    edge.draw(raw, result, labels).save(tmp, format="JPEG", quality=90)
                record = {"file": str(path), "width": raw.shape[1], "height": raw.shape[0], **result}
                records.append(record)
                click.echo(json.dumps(record) if as_json else edge.format_result(str(path), result))
        io.write_json(out_dir / "detections.json", records)
        click.echo(f"wrote {len(records)} annotated images and detections.json to {out_dir}", err=True)
        if failed:
            sys.exit(EXIT_USAGE)

    group.add_command(predict)

    @group.group(help="Dataset tools.")
    def data():
        pass

    @data.command(
        help="Check a detection dataset (YOLO data.yaml, COCO, VOC): counts, bad boxes, duplicates."
    )
    @click.argument("source")
    @click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
    @handle_errors
    def check(source, as_json):
        from dlkit.data.detection import check_dataset, open_detection_source

        report = check_dataset(open_detection_source(source))
        if as_json:
            click.echo(json.dumps(report, indent=2))
        else:
            for line in report["lines"]:
                click.echo(line)
        if report["errors"]:
            sys.exit(1)


def next_predict_dir(root="runs/detect"):
    for index in range(1, 10_000):
        candidate = Path(root) / ("predict" if index == 1 else f"predict{index}")
        if not candidate.exists():
            return candidate
    return Path(root) / "predict"
