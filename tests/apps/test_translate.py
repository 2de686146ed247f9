"""The translate app end to end on tiny configs: the date model and the seq2seq model are
trained, exported and run on the edge path, which must agree with Keras."""

import json
import struct
import zlib

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from dlkit.apps.translate.config import Config
from dlkit.edge.bundle import ModelBundle
from dlkit.paths import shipped_model_dir
from dlkit.registry import get_app

pytest.importorskip("babel")
keras = pytest.importorskip("keras")

APP = get_app("translate")


def sentence_pairs(count=160, seed=0):
    """English number phrases -> Spanish (a learnable toy corpus written by the test)."""
    en = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    es = ["uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"]
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        picks = rng.integers(0, 9, rng.integers(1, 5))
        rows.append((" ".join(en[i] for i in picks) + ".", " ".join(es[i] for i in picks) + "."))
    return rows


@pytest.fixture(scope="module")
def date_run(contract_run):
    """The contract kit's tiny date run (float32 and dynamic-range exports)."""
    return contract_run("translate").run_dir


@pytest.fixture(scope="module")
def seq2seq_run(tmp_path_factory):
    from dlkit import runner
    from dlkit.export.bundle import export

    root = tmp_path_factory.mktemp("seq2seq")
    data = root / "pairs.tsv"
    data.write_text(
        "source\ttarget\n" + "".join(f"{a}\t{b}\n" for a, b in sentence_pairs()), encoding="utf-8"
    )
    config = Config.tiny()
    config.model = "seq2seq"
    config.val_split = config.test_split = 0.15
    run_dir = root / "run"
    runner.train(APP, config, data=str(data), run_dir=run_dir)
    export(APP, run_dir, "float32", data=str(data))
    return run_dir


def test_date_run_and_export(date_run):
    meta = json.loads((date_run / "model.json").read_text())
    assert meta["model"] == "attention" and meta["input_length"] == 40 and meta["output_length"] == 10
    assert set("0123456789-") <= set(meta["target_vocab"])
    record = meta["exports"]["float32"]
    assert record["max_abs_diff"] < 1e-4
    golden = np.load(date_run / record["golden"])
    assert golden["inputs"].dtype == np.int32
    # outputs: probabilities (n, Ty, V) and the attention map (n, Ty, Tx), rows summing to 1
    np.testing.assert_allclose(golden["tflite_output_0"].sum(-1), 1.0, atol=1e-4)
    np.testing.assert_allclose(golden["tflite_output_1"].sum(-1), 1.0, atol=1e-4)
    assert golden["tflite_output_1"].shape[1:] == (10, 40)
    metrics = json.loads((date_run / "metrics.json").read_text())["keras"]
    assert 0.0 <= metrics["test"]["exact_match"] <= metrics["test"]["char_accuracy"] <= 1.0


def test_date_model_keras_and_tflite_agree(date_run):
    from dlkit.engine import runner_for

    bundle_k = ModelBundle.load(date_run, prefer="keras")
    bundle_t = ModelBundle.load(date_run / "model.tflite")
    inputs = np.load(date_run / "model.golden.npz")["inputs"]
    inputs = np.concatenate([inputs, inputs[:3]])  # 7 rows, one batch of any size
    keras_out = runner_for(APP, bundle_k)(inputs)
    tflite_out = runner_for(APP, bundle_t)(inputs)
    assert tflite_out[0].shape == keras_out[0].shape == (7, 10, len(bundle_t.meta["target_vocab"]))
    np.testing.assert_allclose(tflite_out[0], keras_out[0], atol=1e-4)
    np.testing.assert_allclose(tflite_out[1], keras_out[1], atol=1e-4)


def test_exact_match_scoring_against_hand_counts():
    from dlkit.apps.translate.model import evaluator

    meta = {
        "model": "attention",
        "source_vocab": ["<pad>", "<unk>"],
        "target_vocab": ["<pad>", "<unk>", "-", "0", "1"],
    }
    targets = np.array([[3, 4, 2], [4, 4, 4], [3, 3, 3]])
    probs = np.eye(5)[np.array([[3, 4, 2], [4, 3, 4], [3, 3, 3]])]
    scorer = evaluator(None, meta)
    scorer.update([probs[:2]], targets[:2])  # two batches: indices continue across them
    scorer.update([probs[2:]], targets[2:])
    report = scorer.result()
    assert report["exact_match"] == pytest.approx(2 / 3)
    # Wilson: centre (p + z^2/2n) / (1 + z^2/n), half-width z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n)
    z, n, p = 1.96, 3, 2 / 3
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert report["exact_match_ci95"] == pytest.approx([centre - half, centre + half])
    assert report["char_accuracy"] == pytest.approx(8 / 9)
    assert report["errors"] == [{"index": 1, "predicted": "101"}]


def test_predict_cli_text_file_plot_and_json(date_run, tmp_path):
    inputs = tmp_path / "dates.txt"
    inputs.write_text("3 May 1979\n\nmercredi 1er mars 2023\n", encoding="utf-8")
    plots = tmp_path / "plots"
    result = run_cli(
        "translate",
        "predict",
        "22 Nov 2026",
        "--file",
        inputs,
        "--model",
        date_run,
        "--plot",
        plots,
        "--json",
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [r["input"] for r in rows] == ["22 Nov 2026", "3 May 1979", "mercredi 1er mars 2023"]
    assert all(len(r["translation"]) <= 10 and 0 <= r["confidence"] <= 1 for r in rows)
    assert sorted(p.name for p in plots.iterdir())[0].startswith("000_22_nov_2026")


def test_predict_bad_inputs(date_run, tmp_path):
    assert_one_line_error(run_cli("translate", "predict", "", "--model", date_run), "empty input")
    too_long = "x" * 41
    assert_one_line_error(run_cli("translate", "predict", too_long, "--model", date_run), "at most 40")
    assert_one_line_error(run_cli("translate", "predict", "--model", date_run), "nothing to predict")
    assert_one_line_error(
        run_cli("translate", "predict", "--file", tmp_path / "missing.txt", "--model", date_run),
        "no such file",
    )
    # Several inputs: the bad one is skipped and reported, the rest translated, exit 2.
    result = run_cli("translate", "predict", "3 May 1979", too_long, "1 ☃ 2000", "--model", date_run)
    assert result.exit_code == 2
    assert "skipped:" in result.output and "3 May 1979 ->" in result.output
    assert "unknown characters '☃'" in result.output


def test_seq2seq_run_export_and_beam_parity(seq2seq_run):
    from dlkit.apps.translate.edge import Seq2SeqDecoder
    from dlkit.apps.translate.model import seq2seq_parts
    from dlkit.edge import EdgeModel
    from dlkit.engine import load_keras, runner_for

    meta = json.loads((seq2seq_run / "model.json").read_text())
    assert meta["model"] == "seq2seq" and meta["tokenizer"] == "wordpiece"
    assert meta["source_vocab"][:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    inputs = np.load(seq2seq_run / "model.golden.npz")["inputs"]
    # The two graphs compute the same numbers: encoder outputs and one decoder step.
    encoder, step = seq2seq_parts(load_keras(seq2seq_run / "model.keras"))
    tflite = EdgeModel(seq2seq_run / "model.tflite")
    annotations, state = (np.asarray(o) for o in encoder(inputs[:1]))
    encoded = tflite.signature("encode")(source_ids=inputs[:1])
    np.testing.assert_allclose(encoded["annotations"], annotations, atol=1e-5)
    np.testing.assert_allclose(encoded["state"], state, atol=1e-5)
    width = meta["beam_width"]
    tokens = np.arange(width, dtype=np.int32) + 4
    args = (
        tokens,
        np.repeat(state, width, 0),
        np.repeat(annotations, width, 0),
        np.repeat(inputs[:1], width, 0),
    )
    logits, new_state = (np.asarray(o) for o in step(list(args)))
    stepped = tflite.signature("decode")(
        token=args[0], state=args[1], annotations=args[2], source_ids=args[3]
    )
    np.testing.assert_allclose(stepped["logits"], logits, atol=1e-4)
    np.testing.assert_allclose(stepped["state"], new_state, atol=1e-5)
    # And the searches agree: the best hypotheses score the same; their tokens match unless
    # two hypotheses tie within float rounding (an untrained model is full of near-ties).
    from dlkit.apps.translate.edge import tflite_decoder

    keras_decoder = Seq2SeqDecoder(
        lambda ids: [np.asarray(o) for o in encoder(ids)],
        lambda *a: [np.asarray(o) for o in step(list(a))],
        meta,
    )
    edge_decoder, _ = tflite_decoder(seq2seq_run / "model.tflite", meta)
    same = 0
    for width in (1, 2):
        for ids in inputs:
            keras_tokens, keras_score = keras_decoder.decode(ids, beam_width=width)
            edge_tokens, edge_score = edge_decoder.decode(ids, beam_width=width)
            assert edge_score == pytest.approx(keras_score, abs=1e-3)
            same += edge_tokens == keras_tokens
    assert same >= 0.75 * 2 * len(inputs)
    bundle = ModelBundle.load(seq2seq_run, prefer="tflite")
    assert runner_for(APP, bundle)(inputs)[0].shape == (len(inputs), meta["max_tokens"] + 1)
    report = json.loads((seq2seq_run / "metrics.json").read_text())["keras"]["test"]
    assert 0 <= report["bleu"] <= 100 and 0 <= report["chrf"] <= 100
    assert report["bleu_ci95"][0] <= report["bleu"] <= report["bleu_ci95"][1]
    assert len(report["exact_match_ci95"]) == 2


def test_bleu_interval_resamples_sentences_as_sacrebleu_scores_a_corpus():
    """Each resample's BLEU from summed sentence counts equals sacrebleu's corpus BLEU of
    the resampled sentences: the interval is their 2.5th and 97.5th percentiles."""
    import sacrebleu

    from dlkit.apps.translate.model import bleu_interval

    rng = np.random.default_rng(1)
    words = "y la tierra de los cielos dijo jehová sobre su hermano abel".split()
    references = [" ".join(rng.choice(words, rng.integers(2, 14))) for _ in range(40)]
    hypotheses = [
        " ".join(w if rng.random() < 0.6 else rng.choice(words) for w in r.split()) for r in references
    ]
    rounds, seed = 50, 3
    picks = np.random.default_rng(seed).integers(0, len(references), (rounds, len(references)))
    expected = [
        sacrebleu.corpus_bleu([hypotheses[i] for i in pick], [[references[i] for i in pick]]).score
        for pick in picks
    ]
    interval = bleu_interval(hypotheses, references, rounds=rounds, seed=seed)
    assert interval == pytest.approx(np.percentile(expected, [2.5, 97.5]).tolist())
    assert interval[0] < sacrebleu.corpus_bleu(hypotheses, [references]).score < interval[1]
    assert np.isnan(bleu_interval([], [])).all()


def test_seq2seq_predict_cli(seq2seq_run):
    result = run_cli(
        "translate", "predict", "three one.", "--model", seq2seq_run, "--beam-width", "2", "--json"
    )
    assert result.exit_code == 0, result.output
    row = json.loads([line for line in result.output.splitlines() if line.startswith("{")][0])
    assert row["input"] == "three one." and isinstance(row["translation"], str)


def test_tsv_reader_skips_and_reports_malformed_rows(tmp_path):
    from dlkit.data.parallel import read_pairs
    from dlkit.errors import InvalidInputError

    path = tmp_path / "pairs.tsv"
    path.write_text(
        "source\ttarget\na\tb\nonly one column\n\tempty source\nc\td\te\nf\tg\n", encoding="utf-8"
    )
    skipped = []
    assert read_pairs(path, skipped) == [("a", "b"), ("f", "g")]
    assert skipped == [
        "pairs.tsv:3: expected 2 columns, found 1",
        "pairs.tsv:4: empty source",
        "pairs.tsv:5: expected 2 columns, found 3",
    ]
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text('"3 May, 1979",1979-05-03\n', encoding="utf-8")
    assert read_pairs(csv_path) == [("3 May, 1979", "1979-05-03")]
    (tmp_path / "bad.tsv").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        read_pairs(tmp_path / "bad.tsv")
    (tmp_path / "empty.tsv").write_text("\n\n")
    with pytest.raises(InvalidInputError, match="no valid"):
        read_pairs(tmp_path / "empty.tsv")


def test_train_on_bad_data_is_a_one_line_error(tmp_path):
    (tmp_path / "empty.tsv").write_text("x\n")
    assert_one_line_error(
        run_cli(
            "translate", "train", "--tiny", "--data", tmp_path / "empty.tsv", "--run-dir", tmp_path / "r1"
        ),
        "no valid",
    )
    (tmp_path / "pic.png").write_bytes(b"\x89PNG")
    assert_one_line_error(
        run_cli("translate", "train", "--tiny", "--data", tmp_path / "pic.png", "--run-dir", tmp_path / "r2"),
        "expected a .tsv",
    )


def write_ztext(folder, testament, verses, per_block=2):
    """A SWORD zText testament in the real layout: .bzv verse index, .bzs block index, .bzz."""
    bzv, bzs, bzz = bytearray(), bytearray(), bytearray()
    for start in range(0, len(verses), per_block):
        block = b""
        for text in verses[start : start + per_block]:
            data = text.encode("utf-8")
            bzv += struct.pack("<IIH", start // per_block, len(block), len(data))
            block += data
        compressed = zlib.compress(block)
        bzs += struct.pack("<III", len(bzz), len(compressed), len(block))
        bzz += compressed
    for suffix, data in ((".bzv", bzv), (".bzs", bzs), (".bzz", bzz)):
        (folder / f"{testament}{suffix}").write_bytes(bytes(data))


def test_sword_reader_decodes_ztext_and_strips_markup(tmp_path):
    from dlkit.apps.translate import sword

    for name, verses in (
        (
            sword.ENGLISH,
            ['<w lemma="strong:H07225">In the beginning</w> God', "", "\u00b6 And <note>x</note>light"],
        ),
        (sword.SPANISH, ["EN el principio", "vacío", "Y luz &amp; más"]),
    ):
        folder = tmp_path / name
        folder.mkdir()
        write_ztext(folder, "ot", verses)
        write_ztext(folder, "nt", ["Amen."])
    assert sword.read_module(sword.ENGLISH, tmp_path) == ["In the beginning God", "", "And light", "Amen."]
    assert sword.bible_pairs(tmp_path) == [
        ("In the beginning God", "EN el principio"),
        ("And light", "Y luz & más"),
        ("Amen.", "Amen."),
    ]


@pytest.mark.realdata
def test_real_bible_modules_align():
    from dlkit.apps.translate import sword

    if not (sword.MODULES_DIR / sword.ENGLISH).is_dir():
        pytest.skip(f"needs: {sword.INSTALL}")
    pairs = sword.bible_pairs()
    assert len(pairs) > 31_000
    assert pairs[1] == (
        "In the beginning God created the heaven and the earth.",
        "EN el principio crió Dios los cielos y la tierra.",
    )


def test_evaluate_cli_on_the_exported_date_model(date_run):
    result = run_cli("translate", "evaluate", "--model", date_run / "model.tflite", "--split", "val")
    assert result.exit_code == 0, result.output
    assert "exact_match" in result.output and "char_accuracy" in result.output


@pytest.mark.slow
@pytest.mark.skipif(
    not (shipped_model_dir("translate") / "model.tflite").exists(), reason="no shipped date model"
)
def test_shipped_date_model_on_fresh_held_out_dates():
    """Dates the shipped model never saw (test-split days, a new seed), through the edge path."""
    from dlkit.apps.translate import dates
    from dlkit.edge.text import normalize
    from dlkit.engine import runner_for

    bundle = ModelBundle.load(shipped_model_dir("translate") / "model.tflite")
    pairs = dates.generate("test", 2000, seed=7, max_length=bundle.meta["input_length"])
    edge = APP.edge
    ids = np.stack([edge.preprocess(normalize(text), bundle.meta) for text, _ in pairs])
    predicted = edge.decode_outputs(runner_for(APP, bundle)(ids), bundle.meta)
    exact = np.mean([p == iso for p, (_, iso) in zip(predicted, pairs)])
    assert exact >= 0.995
    golden = np.load(shipped_model_dir("translate") / "model.golden.npz")
    outputs = runner_for(APP, bundle)(golden["inputs"])
    np.testing.assert_allclose(outputs[0], golden["tflite_output_0"], atol=1e-5)


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(
    not (shipped_model_dir("translate") / "bible" / "model.tflite").exists(),
    reason="no shipped sentence model",
)
def test_shipped_sentence_model_bleu_on_held_out_verses():
    from dlkit.apps.translate import sword
    from dlkit.apps.translate.model import evaluator
    from dlkit.config import from_dict
    from dlkit.engine import runner_for

    if not (sword.MODULES_DIR / sword.ENGLISH).is_dir():
        pytest.skip(f"needs: {sword.INSTALL}")
    bundle = ModelBundle.load(shipped_model_dir("translate") / "bible" / "model.tflite")
    config = from_dict(Config, bundle.meta["config"])
    source = APP.data.open_source(config, "bible")
    test = APP.data.load_split(config, source, "test", meta=bundle.meta)
    bundle.meta["beam_width"] = 1
    outputs = runner_for(APP, bundle)(test.inputs[:150])
    scorer = evaluator(config, bundle.meta)
    scorer.update(outputs, test.targets[:150])
    report = scorer.result()
    assert report["bleu"] > 5.0 and report["chrf"] > 20.0  # shipped: greedy 9.3 BLEU on all 716


@pytest.mark.parametrize(
    "text, valid",
    [
        ("1979-05-03", True),
        ("2000-02-29", True),
        ("1979-02-30", False),
        ("1900-02-29", False),
        ("1979-13-01", False),
        ("79-05-03", False),
        ("", False),
    ],
)
def test_date_answers_are_checked_as_calendar_dates(text, valid):
    from dlkit.apps.translate.edge import format_result, is_calendar_date

    assert is_calendar_date(text) is valid
    shown = format_result(
        "x", {"translation": text, "confidence": 0.99, "calendar_date": is_calendar_date(text)}
    )
    assert ("not a calendar date" in shown) is not valid


def test_the_shipped_date_model_flags_an_impossible_date():
    result = run_cli("translate", "predict", "30 February 1979", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.splitlines()[0])
    assert record["calendar_date"] is (record["translation"] != "1979-02-30")


def test_a_date_answer_is_checked_against_the_numbers_in_the_input():
    from dlkit.apps.translate import dates
    from dlkit.apps.translate.edge import date_from_input, format_result

    # Every held-out date of the generator is a full date: no answer may be flagged.
    assert all(date_from_input(source, target) for source, target in dates.generate("test", 3000, seed=1))
    assert not date_from_input("May 1979", "1979-05-05")  # the day is made up
    assert not date_from_input("3 May 79", "1709-05-09")  # the year is made up
    assert not date_from_input("3 May 1979", "1979-02-30")
    shown = format_result(
        "May 1979",
        {"translation": "1979-05-05", "confidence": 1.0, "calendar_date": True, "from_input": False},
    )
    assert shown == "May 1979 -> 1979-05-05 (1.00, year or day not in the input)"


def test_a_date_in_a_script_the_model_never_saw_is_flagged():
    """The month of `3 мая 1979` is read as <unk>: whatever month comes out is a guess."""
    result = run_cli("translate", "predict", "3 мая 1979", "3 May 1979", "--json")
    assert result.exit_code == 0, result.output
    cyrillic, latin = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert cyrillic["known_characters"] is False and latin["known_characters"] is True
    shown = run_cli("translate", "predict", "3 мая 1979").output
    assert "input has characters the model never saw)" in shown
    assert "never saw" not in run_cli("translate", "predict", "3 May 1979").output


def test_generated_held_out_dates_do_not_follow_the_training_seed():
    """Models trained with different seeds are scored on the same validation and test
    dates; the training dates follow the seed."""
    from dataclasses import replace

    sources = [APP.data.open_source(replace(Config.tiny(), seed=s), None) for s in (0, 7)]
    for name in ("val", "test"):
        assert sources[0].splits[name] == sources[1].splits[name]
    assert sources[0].splits["train"] != sources[1].splits["train"]
