"""The predict pipeline on its own: sources expanded per input kind, inputs split into
windows and combined, bad inputs reported in place while the rest run."""

from pathlib import Path

import numpy as np
import pytest

from dlkit.app import App
from dlkit.errors import DlkitError, InvalidInputError
from dlkit.predict import Predictor, expand_sources, item_name, shortened


class ChunkSum(App):
    """A text app whose inputs become 3-character windows; a result is the sum of the
    character codes over all windows of an input."""

    name = "chunksum"
    input_kind = "text"

    def read_input(self, item, meta):
        if not item:
            raise InvalidInputError("empty input")
        return item

    def windows(self, raw, meta):
        codes = [ord(ch) for ch in raw]
        return [
            np.pad(np.array(codes[i : i + 3], np.float32), (0, 3 - len(codes[i : i + 3])))
            for i in range(0, len(codes), 3)
        ]

    def postprocess(self, outputs, meta, options):
        return [{"sum": float(value)} for value in outputs[0]]

    def combine(self, results, raw, meta):
        return {"total": sum(r["sum"] for r in results), "windows": len(results)}


def test_windows_are_run_across_batches_and_combined_per_input():
    calls = []

    def run(batch):
        calls.append(len(batch))
        return [np.asarray(batch).sum(axis=1)]

    predictor = Predictor(ChunkSum(), run, meta={}, options={})
    items = ["abcdefg", "", "xy", "hello world"]
    outcomes = list(predictor(items, batch_size=2))
    assert [o.item for o in outcomes] == items
    assert outcomes[1].error == "empty input" and outcomes[1].result is None
    for outcome in (outcomes[0], outcomes[2], outcomes[3]):
        assert outcome.result["total"] == sum(map(ord, outcome.item))
        assert outcome.result["windows"] == -(-len(outcome.item) // 3)
    assert max(calls) <= 2  # windows are batched by batch_size, not per input


class CodeSum(ChunkSum):
    """ChunkSum whose raw input is an array (8 bytes a character), as a decoded image is."""

    def read_input(self, item, meta):
        return np.array([ord(ch) for ch in super().read_input(item, meta)], np.float64)

    def windows(self, raw, meta):
        return super().windows("".join(map(chr, raw.astype(int))), meta)


def test_a_batch_closes_when_its_decoded_inputs_reach_the_byte_budget():
    calls, reported = [], []

    def run(batch):
        calls.append(len(batch))
        return [np.asarray(batch).sum(axis=1)]

    items = ["abcdefgh", "ijk", "", "lmnopqrs", "tu", "vwxyz"]
    predictor = Predictor(CodeSum(), run, meta={}, options={})
    whole = [o.result for o in predictor(items, batch_size=32)]
    assert len(calls) == 1  # 8 + 3 + 8 + 2 + 5 windows of 3 characters: one batch
    calls.clear()
    predictor.raw_bytes = 80  # two 8-character inputs (64 bytes each) pass it
    outcomes = list(predictor(items, batch_size=32, progress=lambda done, total, _: reported.append(done)))
    assert [o.result for o in outcomes] == whole and outcomes[2].error == "empty input"
    # A batch closes after the input that brings it to 80 bytes (an unreadable one holds
    # none): [abcdefgh, ijk] 88, ["", lmnopqrs, tu] 80, [vwxyz].
    assert calls == [3 + 1, 3 + 1, 2] and reported == [0, 2, 5, 6]
    predictor.raw_bytes = 0  # a budget below one input still reads one input a batch
    assert [o.result for o in predictor(items, batch_size=32)] == whole


def test_sources_expand_by_input_kind(tmp_path):
    (tmp_path / "clips").mkdir()
    for name in ("a.wav", "b.flac", "notes.txt"):
        (tmp_path / "clips" / name).write_bytes(b"x")
    assert [p.name for p in expand_sources("audio", [tmp_path / "clips"])] == ["a.wav", "b.flac"]
    lines = tmp_path / "lines.txt"
    lines.write_text("one\n\ntwo\n", encoding="utf-8")
    assert expand_sources("text", ["zero"], file=lines) == ["zero", "one", "two"]
    assert expand_sources("pair", ["a.jpg", "b.jpg"]) == [("a.jpg", "b.jpg")]
    with pytest.raises(DlkitError, match="pairs"):
        expand_sources("pair", ["a.jpg"])
    with pytest.raises(DlkitError, match="--file reads text"):
        expand_sources("image", [], file=lines)
    with pytest.raises(DlkitError, match="no input files"):
        expand_sources("image", [tmp_path / "clips"])
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x")
    with pytest.raises(DlkitError, match="reads text, not .jpg files"):
        expand_sources("text", [photo])
    with pytest.raises(DlkitError, match="nothing to predict"):
        expand_sources("text", [])


def test_an_empty_folder_beside_good_inputs_is_skipped_and_reported(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.png").write_bytes(b"")
    items = expand_sources("image", [str(tmp_path / "full"), str(tmp_path / "empty")])
    assert items == [tmp_path / "full" / "a.png"]
    assert f"skipped: {tmp_path / 'empty'}: no input files in this folder" in capsys.readouterr().err
    with pytest.raises(DlkitError, match="no input files in this folder"):
        expand_sources("image", [str(tmp_path / "empty")])


def test_a_long_text_is_named_by_its_start_and_length_in_messages():
    text = "word " * 2000
    name = item_name(text)
    assert name.startswith("word word") and name.endswith("... (10,000 characters)") and len(name) < 120
    assert item_name(Path("/a" * 100)) == "/a" * 100  # paths are never cut
    message = shortened(f"{text!r}: too long; {text}", text)
    assert message == f"{name!r}: too long; {name}"
    assert shortened("short: fine", "short") == "short: fine"


def test_a_10000_character_input_gives_a_short_one_line_error():
    from conftest import run_cli

    result = run_cli("translate", "predict", "x" * 10_000)
    assert result.exit_code == 2 and len(result.output) < 300, result.output[:500]
    assert "(10,000 characters)" in result.output
