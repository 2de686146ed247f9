"""`dlkit detect data check`: audit a detection dataset."""

import json
import sys

import click

from dlkit.cli import handle_errors


def register(group):
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
