"""The README's Apps table quotes each shipped model's headline figures: here they are
formatted from the model's own metrics.json, so a figure re-measured, or rounded twice
(0.7648 is 0.76, not 0.77 by way of 0.765), cannot drift from its record unseen."""

import re
import sys
from pathlib import Path

import pytest

from dlkit import io

ROOT = Path(__file__).parents[1]


def figure(report, key, digits):
    """'0.923 [0.883, 0.958]': a figure with its 95% interval, as the README writes them."""
    low, high = report[f"{key}_ci95"]
    return f"{report[key]:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def quoted(metrics):
    """{app: [text the README's row for that app must hold]}."""
    detect, augmented = metrics["detect"]["keras"]["pooled"], metrics["detect"]["keras_augmented"]["pooled"]
    segment, segment_augmented = (
        metrics["segment"]["keras"]["pooled"],
        metrics["segment"]["tflite_int8_augmented"],
    )
    bench = metrics["trigger"]["bench"]
    mlm = metrics["mlm"]
    return {
        "classify": [f"top-1 {figure(metrics['classify']['keras']['pooled'], 'accuracy', 3)}"],
        "detect": [
            f"mAP@0.5 {figure(detect, 'map50', 2)}",
            f"mAP@0.5:0.95 {figure(detect, 'map50_95', 2)}",
            f"class-agnostic {figure(detect, 'class_agnostic_map50', 2)} / "
            f"{figure(detect, 'class_agnostic_map50_95', 2)}",
            f"{figure(augmented, 'map50', 2)} / {figure(augmented, 'map50_95', 2)}",
            f"class-agnostic {augmented['class_agnostic_map50']:.2f} / {augmented['class_agnostic_map50_95']:.2f}",
        ],
        "segment": [
            f"mean IoU {figure(segment, 'miou', 2)}",
            f"foreground IoU {figure(segment, 'foreground_iou', 2)}",
            f"int8 {metrics['segment']['tflite_int8']['pooled']['miou']:.2f} / "
            f"{metrics['segment']['tflite_int8']['pooled']['foreground_iou']:.2f}",
            f"{figure(segment_augmented['pooled'], 'miou', 2)} / "
            f"{figure(segment_augmented['pooled'], 'foreground_iou', 2)}",
        ],
        "face": [
            f"ROC AUC {figure(metrics['face']['tflite_int8']['johns'], 'roc_auc', 3)}",
            f"rank-1 {figure(metrics['face']['tflite_int8']['johns'], 'rank1', 3)}",
        ],
        "sentiment": [
            f"accuracy {figure(metrics['sentiment']['keras']['test'], 'accuracy', 3)}",
            f"(TFLite {metrics['sentiment']['tflite_dynamic']['test']['accuracy']:.3f})",
            f"VADER {metrics['sentiment']['vader']['test']['accuracy']:.3f}",
            f"TF-IDF {metrics['sentiment']['tfidf_logreg']['test']['accuracy']:.3f}",
        ],
        "translate": [
            f"exact match {figure(metrics['translate']['tflite_float32']['test'], 'exact_match', 4)}"
        ],
        "trigger": [
            f"event recall {figure(bench['tflite'], 'event_recall', 3)}",
            f"at {bench['negatives']['false_accepts_per_hour']:.1f} [{bench['negatives']['false_accepts_per_hour_ci95'][0]:.3f}, "
            f"{bench['negatives']['false_accepts_per_hour_ci95'][1]:.2f}] false accepts/hour over "
            f"{bench['negatives']['hours']:.0f} h",
            f"streams at {bench['negatives']['real_time_factor']:.4f}x real time",
        ],
        "mlm": [
            f"masked-token accuracy {figure(mlm['keras']['pooled'], 'masked_accuracy', 3)}",
            f"{mlm['keras_over_unigram']:.2f}x the unigram baseline ({mlm['unigram']['pooled']['masked_accuracy']:.3f})",
            f"perplexity {mlm['keras']['pooled']['perplexity']:.0f} (unigram {mlm['unigram']['pooled']['perplexity']:.0f})",
            f"TFLite dynamic {mlm['tflite_dynamic']['pooled']['masked_accuracy']:.3f}",
        ],
    }


def readme_rows():
    """{app: its row of the README's Apps table}."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Apps") :]
    rows = {}
    for line in table.splitlines():
        found = re.match(r"\| [^|]+ \| `dlkit (\w+)` \|", line)
        if found:
            rows[found.group(1)] = line
        elif rows and not line.startswith("|"):
            break
    return rows


APPS = ("classify", "detect", "segment", "face", "sentiment", "translate", "trigger", "mlm")


@pytest.mark.parametrize("app", APPS)
def test_the_readme_quotes_the_shipped_records(app):
    metrics = {name: io.read_json(ROOT / "saved_models" / name / "metrics.json") for name in APPS}
    row = readme_rows()[app]
    missing = [text for text in quoted(metrics)[app] if text not in row]
    assert not missing, f"README's {app} row does not say {missing}"


def test_every_app_has_a_row():
    from dlkit.registry import app_names

    assert set(readme_rows()) == set(app_names()) == set(APPS)


@pytest.mark.parametrize("name", ("bench", "pipeline"))
def test_the_readme_bench_tables_are_their_records_formatted(name):
    """`dlkit bench`'s tables in the README and in tools/results/bench/*.md are what
    `dlkit.bench` formats from the bench.json and pipeline.json beside them."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from readme_tables import RESULTS, block, generated
    finally:
        sys.path.remove(str(ROOT / "tools"))
    fresh = generated(name)
    fix = "run python tools/readme_tables.py"
    assert block((ROOT / "README.md").read_text(encoding="utf-8"), name) == fresh, f"README.md: {fix}"
    assert (RESULTS / f"{name}.md").read_text(encoding="utf-8") == fresh, f"{name}.md: {fix}"
