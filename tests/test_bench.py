"""`dlkit bench`: FLOPs counted against hand arithmetic, and the whole bench on every app's
tiny contract model (it runs and writes every column; no timing is asserted)."""

import json
import re
import time

import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from dlkit.errors import DlkitError
from dlkit.registry import app_names

keras = pytest.importorskip("keras")


def test_flops_count_the_multiply_adds_of_convolutions_and_dense_layers(tmp_path):
    from dlkit.bench import flops
    from dlkit.export.tflite import convert

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)  # 16*16*8 outputs x 3*3*3 each
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 8*8*8 x 3*3
    x = keras.layers.Conv2DTranspose(4, 2, strides=2)(x)  # 8*8*8 inputs x 2*2*4 each
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5)(x)  # 5 x 16*16*4
    path = tmp_path / "m.tflite"
    path.write_bytes(convert(keras.Model(inputs, outputs), "float32", batch_size=1))
    counted, complete = flops(path)
    expected = 2 * (16 * 16 * 8 * 27 + 8 * 8 * 8 * 9 + 8 * 8 * 8 * 16 + 5 * 16 * 16 * 4)
    assert complete and counted == expected


def test_flops_count_a_matrix_product_and_mark_a_loop_as_a_lower_bound(tmp_path, monkeypatch):
    import contextlib

    import dlkit.export.tflite
    from dlkit.bench import flops
    from dlkit.export.tflite import convert

    inputs = keras.Input((6, 4))
    x = keras.layers.LSTM(3, return_sequences=True)(inputs)
    outputs = keras.layers.Dense(2)(x)  # 6 x 2 outputs x 3 inputs
    model = keras.Model(inputs, outputs)
    path = tmp_path / "lstm.tflite"
    # Unrolled (what export writes): per step the four gates' input product, 2 x 12 x 4,
    # and from the second step their recurrent product, 2 x 12 x 3 (the first multiplies
    # the zero initial state: the converter folds it away); then the dense layer.
    path.write_bytes(convert(model, "float32", batch_size=1))
    assert flops(path) == (6 * 2 * 12 * 4 + 5 * 2 * 12 * 3 + 2 * 6 * 2 * 3, True)
    # As a WHILE loop (a file exported before unrolling): its body counted once, a lower bound.
    monkeypatch.setattr(dlkit.export.tflite, "recurrent_unrolled", lambda model: contextlib.nullcontext())
    path.write_bytes(convert(model, "float32", batch_size=1))
    counted, complete = flops(path)
    assert not complete and counted >= 2 * 6 * 2 * 3

    a = keras.Input((5, 7))
    b = keras.Input((7, 2))
    product = keras.layers.Lambda(lambda t: keras.ops.matmul(t[0], t[1]))([a, b])
    path = tmp_path / "matmul.tflite"
    path.write_bytes(convert(keras.Model([a, b], product), "float32", batch_size=1))
    assert flops(path) == (2 * 5 * 2 * 7, True)


@pytest.fixture(scope="module")
def bench_results(contract_run, tmp_path_factory):
    """The bench over every app's tiny contract model, once: 1 thread, a few calls, the
    variants the contract exported (conversions and predict processes: the CLI test)."""
    from dlkit.bench import bench, write

    models = {name: contract_run(name).run_dir for name in app_names()}
    results = bench(app_names(), models, threads=(1,), repeat=2, process_repeat=0, limit=8, variants=())
    out = tmp_path_factory.mktemp("bench")
    return results, write(results, out)


@pytest.mark.parametrize("name", app_names())
def test_bench_measures_every_variant_of_every_app(bench_results, contract_run, name):
    results, _ = bench_results
    row, exported = results["apps"][name], contract_run(name).exports
    assert sorted(row["latency_ms"]["1"]) == sorted(["keras", *exported])
    for median, p90 in row["latency_ms"]["1"].values():
        assert 0 < median <= p90
    assert sorted(row["metric"]) == sorted(["keras", *exported])
    assert all(np.isfinite(value) for value in row["metric"].values())
    assert 0 < row["val_examples"] <= 8
    assert sorted(row["sizes"]) == sorted(exported)
    assert row["smallest"] == exported[-1]  # tiny configs accept any drop
    assert row["size_ratio"] == pytest.approx(row["sizes"][row["smallest"]] / row["sizes"]["float32"])
    assert row["parameters"] > 0 and all(count > 0 for count, _ in row["flops"].values())
    assert row["speedup"]["1"] == pytest.approx(
        row["latency_ms"]["1"]["keras"][0] / row["latency_ms"]["1"][row["smallest"]][0]
    )
    assert row["process_seconds"] == {}


def test_bench_writes_json_and_a_markdown_table_with_the_machine_and_peak(bench_results):
    results, (json_path, md_path) = bench_results
    assert json.loads(json_path.read_text())["apps"].keys() == results["apps"].keys()
    peak = results["peak_flops"]["1"]
    assert peak["float32"] > 1e8 and peak["int8"] > 1e8
    text = md_path.read_text()
    assert results["machine"]["cpu"] in text and f"1 thread: {peak['float32'] / 1e9:.1f} GFLOP/s" in text
    for name in app_names():
        assert f"| {name} | keras |" in text and f"| {name} | {results['apps'][name]['smallest']} |" in text


def test_bench_cli_converts_every_variant_and_times_predict_processes(bench_results, contract_run, tmp_path):
    from dlkit.registry import get_app

    earlier, (earlier_json, _) = bench_results
    run = contract_run("classify").run_dir
    result = run_cli(
        "bench", "--app", "classify", "--model", f"classify={run}", "--threads", "1", "--repeat", "1",
        "--process-repeat", "1", "--limit", "2", "--out", str(tmp_path),
        "--into", str(earlier_json), "--why", "a new classify model",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    merged = json.loads((tmp_path / "bench.json").read_text())
    row = merged["apps"]["classify"]
    assert sorted(row["sizes"]) == sorted(get_app("classify").quantizations)
    assert set(row["process_seconds"]) == {"keras", row["smallest"]}
    assert all(seconds > 0 for seconds in row["process_seconds"].values())
    assert "| classify | float16 |" in result.output and "| classify | dynamic |" in result.output
    # --into: the other apps' rows are the earlier run's, in its order; classify's says where it came from
    assert list(merged["apps"]) == list(earlier["apps"])
    assert merged["apps"]["detect"] == json.loads(earlier_json.read_text())["apps"]["detect"]
    assert merged["peak_flops"] == earlier["peak_flops"] and "measured_apart" not in merged["apps"]["detect"]
    apart = row["measured_apart"]
    assert apart["why"] == "a new classify model" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", apart["date"])
    assert apart["peak_flops"]["1"]["float32"] > 1e8
    assert (
        f"- The classify rows were measured on {apart['date']} in a run of their own (a new classify model). "
        f"Peak: 1 thread: {apart['peak_flops']['1']['float32'] / 1e9:.1f} GFLOP/s float32"
    ) in (tmp_path / "bench.md").read_text()


def test_merge_refuses_other_thread_counts_and_leaves_its_inputs_alone(bench_results):
    from dlkit.bench import merge

    results, _ = bench_results
    base = {**results, "apps": {"detect": results["apps"]["detect"]}}
    update = {**results, "apps": {"classify": results["apps"]["classify"]}, "date": "2026-01-02"}
    merged = merge(base, update)
    assert list(merged["apps"]) == ["detect", "classify"] and list(base["apps"]) == ["detect"]
    assert "measured_apart" not in results["apps"]["classify"]
    assert merged["apps"]["classify"]["measured_apart"]["date"] == "2026-01-02"
    with pytest.raises(DlkitError, match="measure the same thread counts"):
        merge(base, {**update, "threads": [1, 2]})


def test_bench_cli_refuses_bad_arguments_in_one_line():
    assert_one_line_error(run_cli("bench", "--model", "nosuchapp=x"), "expected APP=DIR")
    assert_one_line_error(run_cli("bench", "--threads", "0"), "--threads")
    assert_one_line_error(
        run_cli("bench", "--app", "classify", "--model", "classify=/nonexistent"), "no model.json"
    )
    assert_one_line_error(run_cli("bench", "--why", "x"), "--why goes with --into")
    assert_one_line_error(run_cli("bench", "--pipeline", "--into", "b.json"), "--into merges model benches")


def test_bench_into_refuses_a_file_that_is_not_a_bench_record_before_measuring(tmp_path):
    missing = tmp_path / "missing.json"
    assert_one_line_error(run_cli("bench", "--into", str(missing)), "no such file")
    broken = tmp_path / "broken.json"
    broken.write_text('{"apps": ')
    assert_one_line_error(run_cli("bench", "--into", str(broken)), "not a bench.json")
    other = tmp_path / "pipeline.json"
    other.write_text(json.dumps({"machine": {}, "pipeline": {}}))
    assert_one_line_error(
        run_cli("bench", "--into", str(other)), "it needs machine, threads, apps, peak_flops"
    )


# One app's pipeline (batches gathered by index, augmented as a batch): each app's model
# and tracing cost about 17 s here; `dlkit bench --pipeline` runs them all.
PIPELINES = ("classify",)


def test_pipeline_bench_feeds_apps_from_their_pipeline_and_from_cached_batches(tmp_path):
    from dlkit.bench import pipeline_bench, write

    results = pipeline_bench(PIPELINES, tiny=True, steps=2, warmup=1, rounds=3, overrides=["batch_size=3"])
    for name in PIPELINES:
        row = results["pipeline"][name]
        assert row["batch_size"] == 3  # the override reached the config benched
        rates = row["examples_per_s"]
        assert rates["pipeline"] > 0 and rates["cached"] > 0 and rates["alone"] > 0
        assert row["ratio"] == pytest.approx(rates["pipeline"] / rates["cached"])
        # the best of each rate over the rounds, and each round's own ratio beside it
        assert len(row["rounds"]) == len(row["paired_ratios"]) == 3
        for key in ("cached", "pipeline", "alone"):
            assert rates[key] == max(r[key] for r in row["rounds"])
        paired = [r["pipeline"] / r["cached"] for r in row["rounds"]]
        assert row["paired_ratios"] == pytest.approx(paired)
        assert row["paired_median"] == pytest.approx(sorted(paired)[1])
        # CPU per example of each phase, the median over rounds
        assert len(row["cpu_rounds"]) == 3
        for key in ("cached", "pipeline", "alone"):
            per_round = sorted(r[key] for r in row["cpu_rounds"])
            assert all(ms > 0 for ms in per_round)
            assert row["cpu_ms_per_example"][key] == pytest.approx(per_round[1])
    json_path, md_path = write(results, tmp_path)
    assert json_path.name == "pipeline.json"
    assert json.loads(json_path.read_text())["pipeline"].keys() == set(PIPELINES)
    assert all(f"| {name} |" in md_path.read_text() for name in PIPELINES)
    assert "paired rounds: median [min, max]" in md_path.read_text()
    assert "Config overrides: batch_size=3." in md_path.read_text()


def _burn_cpu(seconds, done, release):
    while time.process_time() < seconds:
        pass
    done.set()
    release.wait(30)


def test_cpu_seconds_counts_live_child_processes():
    """The pipeline bench's CPU figures include worker processes (detect's scene workers)."""
    import multiprocessing

    from dlkit.bench import cpu_seconds

    context = multiprocessing.get_context("spawn")
    done, release = context.Event(), context.Event()
    before, own = cpu_seconds(), time.process_time()
    child = context.Process(target=_burn_cpu, args=(0.5, done, release))
    child.start()
    try:
        assert done.wait(60)
        gained = cpu_seconds() - before - (time.process_time() - own)
    finally:
        release.set()
        child.join(30)
    assert gained >= 0.45  # the child's half second of CPU (and its start-up)


def test_bench_pipeline_overrides_are_checked_in_one_line():
    assert_one_line_error(run_cli("bench", "--set", "batch_size=3"), "--set applies to --pipeline")
    assert_one_line_error(
        run_cli("bench", "--pipeline", "--tiny", "--app", "classify", "--set", "no_such_key=1"),
        "unknown config key 'no_such_key'",
    )


def test_side_by_side_gives_every_runner_each_input_in_turn():
    """Runners timed input by input in turn (the order below), each its median over the
    inputs: a runner that sleeps 20 ms reads at least 20 ms and above one that does not."""
    from dlkit.bench import side_by_side

    calls = []

    def runner(name, seconds):
        def run(x):
            calls.append((name, x))
            time.sleep(seconds)

        return run

    medians = side_by_side({"fast": runner("fast", 0.0), "slow": runner("slow", 0.02)}, [1, 2, 3])
    assert calls == [("fast", 1), ("slow", 1), ("fast", 2), ("slow", 2), ("fast", 3), ("slow", 3)]
    assert list(medians) == ["fast", "slow"] and medians["slow"] >= 20 > medians["fast"] >= 0
