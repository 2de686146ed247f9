"""Does masked-LM pretraining help sentiment? The small encoder of an mlm run fine-tuned
on the rated movie sentences, against the same architecture trained from scratch, and
after further masked-LM pretraining on the sentiment training sentences themselves
(domain-adaptive pretraining: their text only, no labels).

    python tools/mlm_sentiment.py MLM_RUN [--epochs 8] [--adapt-epochs 2] [--probe-epochs 0]
        [--seeds 0,1,2] [--work DIR] [--out tools/results/mlm_sentiment.json] [--skip scratch,...]

Every step is a dlkit command (run folders under --work):
- scratch:    dlkit sentiment train --set model=encoder --epochs E
- pretrained: dlkit sentiment train --init MLM_RUN --epochs E
- adapted:    dlkit mlm train --data <training sentences> --init MLM_RUN --epochs A, then
              dlkit sentiment train --init <that run> --epochs E
- vectors (with --vectors): dlkit sentiment train --set model=encoder --set
              encoder_vectors=true --epochs E (scratch, its token embedding started from
              the GloVe vectors: what the word vectors alone give, beside an MLM_RUN
              pretrained from them, as `dlkit mlm train` is by default)
`--probe-epochs N` starts every fine-tuning with N epochs in which only the output layer
learns on the frozen encoder (`--set probe_epochs=N`). Each model's test predictions
(`dlkit sentiment predict --file --json`) are scored against the hard labels: accuracy
with a Wilson 95% interval, and each pretrained model's difference to scratch with a
paired bootstrap 95% interval (the same sentences resampled for both).

`--seeds 0,1,2` fine-tunes each model once per seed (`--seed S`, run folders `NAME_seedS`,
seed by seed): one run's accuracy moves with its seed by about as much as the differences
measured, so each model's accuracy is then the mean over its runs (with their range), and
its difference to scratch is taken on each test sentence's share of runs that got it
right, resampled by sentence as above, beside the difference of each seed's pair of runs.

A run folder already under --work is resumed (`--resume`), or only scored if complete: a
comparison stopped part-way continues where it stopped, and `--seeds 0,1` after
`--seeds 0` trains seed 1 alone. A folder is resumed with the recipe asked, so one saved
with another (epochs, probe epochs, seed) stops the call with dlkit's one line naming what
differs: use one --work per recipe.

How well each vocabulary fits the task's text is recorded too (`vocabularies`: WordPiece
tokens per word of the test sentences, the share of words cut into pieces, unknown
tokens), for the pretrained encoder's vocabulary and the one the scratch model learns;
`--skip scratch,pretrained,adapted,vectors` records that alone, in seconds. A model
skipped keeps its record from --out, so a new pretrained run is compared with the
scratch runs recorded there without training them again. With both recorded, the
pretrained model's difference to `vectors` is given too (`minus_vectors`, paired as
above): what the masked-LM pretraining adds to the word vectors it started from.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from dlkit import io
from dlkit.apps.sentiment import reviews
from dlkit.metrics.intervals import paired_difference_interval, wilson_interval

ROOT = Path(__file__).resolve().parents[1]


def dlkit(*arguments):
    command = [sys.executable, "-m", "dlkit.cli", *map(str, arguments)]
    print("$ dlkit " + " ".join(map(str, arguments)), flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode:
        sys.exit(f"dlkit {arguments[0]} {arguments[1]} failed (exit {done.returncode})")
    return done.stdout


def rated_splits():
    """{split: [(text, label name)]} of the offline binary task, as the sentiment app reads
    it (its fixed split; sentences rated exactly 0 left out)."""
    from dlkit.apps.sentiment.config import Config
    from dlkit.apps.sentiment.data import rated_source

    source = rated_source(Config(), "movie", reviews.load_sets())
    return {
        split: [(text, source.labels[label]) for text, label in rows] for split, rows in source.splits.items()
    }


def summary(runs):
    """One model's fine-tunings (one a seed; rows whose `correct` is a string of 0/1, one
    per test sentence): the accuracy averaged over them and its range, and per test
    sentence the share of runs that got it right."""
    right = np.array([[c == "1" for c in row["correct"]] for row in runs], float)
    accuracies = right.mean(axis=1)
    return {
        "test_accuracy": float(accuracies.mean()),
        "test_accuracy_range": [float(accuracies.min()), float(accuracies.max())],
        "share_right": right.mean(axis=0),
    }


def train(app, run, *arguments):
    """`dlkit APP train ARGUMENTS --run-dir RUN`; a run folder already there is resumed
    with the same arguments: dlkit leaves a complete run as it is, and refuses in one line
    one whose saved settings differ from them."""
    resume = ("--resume",) if (run / "config.json").exists() else ()
    dlkit(app, "train", *arguments, *resume, "--run-dir", run)


def train_runs(args, seeds, skip, train_text):
    """Trains the models compared, seed by seed (an interrupted comparison leaves whole
    pairs); returns {name: [(seed or None, run folder)]}."""
    runs = {}
    probe = ("--set", f"probe_epochs={args.probe_epochs}")
    adapted_mlm = args.work / "mlm_adapted"
    starts = {  # how each model's encoder begins
        "scratch": ("--set", "model=encoder"),
        "pretrained": ("--init", args.mlm_run),
        "adapted": ("--init", adapted_mlm),
    }
    if args.vectors:
        starts["vectors"] = ("--set", "model=encoder", "--set", "encoder_vectors=true")
    if "adapted" not in skip:
        train("mlm", adapted_mlm, "--data", train_text, "--init", args.mlm_run, "--epochs", args.adapt_epochs)
    for seed in seeds:
        seeded = () if seed is None else ("--seed", seed)
        for name, start in starts.items():
            if name in skip:
                continue
            run = args.work / (name if seed is None else f"{name}_seed{seed}")
            train("sentiment", run, *start, *probe, *seeded, "--epochs", args.epochs)
            runs.setdefault(name, []).append((seed, run))
    return runs


def predictions(run, texts_file):
    lines = dlkit("sentiment", "predict", "--model", run, "--file", texts_file, "--json").splitlines()
    return [json.loads(line)["label"] for line in lines if line.startswith("{")]


def vocabulary_fit(vocab, texts):
    """How a WordPiece vocabulary cuts `texts`: tokens per word, share of words in more
    than one piece, [UNK] tokens (words as BERT's basic split gives them)."""
    from dlkit.edge.text import BERT_RESERVED, WordPiece, basic_split, bert_normalize

    pieces = WordPiece(vocab, unknown="[UNK]")
    words = [word for text in texts for word in basic_split(bert_normalize(text))]
    cut = [pieces.word_ids(word) for word in words]
    return {
        "tokens": len(vocab),
        "reserved_present": all(token in pieces.index for token in BERT_RESERVED),
        "words": len(words),
        "tokens_per_word": sum(map(len, cut)) / len(words),
        "words_in_pieces": sum(len(ids) > 1 for ids in cut) / len(words),
        "unknown": sum(ids.count(pieces.unknown_id) for ids in cut),
    }


def scratch_vocab():
    """The vocabulary `dlkit sentiment train --set model=encoder` learns (cached)."""
    from dlkit.apps.sentiment.config import Config
    from dlkit.apps.sentiment.data import rated_source
    from dlkit.apps.sentiment.model import encoder_meta

    config = Config(model="encoder")
    return encoder_meta(config, rated_source(config, "movie", reviews.load_sets()))["vocab"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mlm_run", type=Path)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--adapt-epochs", type=int, default=2)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "mlm_sentiment")
    parser.add_argument("--out", type=Path, default=ROOT / "tools" / "results" / "mlm_sentiment.json")
    parser.add_argument("--skip", default="", help="comma-separated: scratch, pretrained, adapted, vectors")
    parser.add_argument("--vectors", action="store_true", help="also train the `vectors` model")
    parser.add_argument("--seeds", default="", help="comma-separated: one fine-tuning per seed")
    parser.add_argument(
        "--probe-epochs",
        type=int,
        default=0,
        help="each fine-tuning starts with this many linear-probe epochs",
    )
    args = parser.parse_args()
    from dlkit.quiet import import_tensorflow

    import_tensorflow()  # quietly, after the arguments: --help needs none of it
    from dlkit.apps.mlm.model import read_vocab_file

    skip = {s for s in args.skip.split(",") if s}
    args.work.mkdir(parents=True, exist_ok=True)
    splits = rated_splits()
    train_text = args.work / "train_sentences.txt"
    train_text.write_text("\n\n".join(text for text, _ in splits["train"]) + "\n", encoding="utf-8")
    test_file = args.work / "test_sentences.txt"
    test_texts = [text for text, _ in splits["test"]]
    test_file.write_text("\n".join(test_texts) + "\n", encoding="utf-8")
    truth = [label for _, label in splits["test"]]

    seeds = [int(seed) for seed in args.seeds.split(",") if seed] or [None]
    runs = train_runs(args, seeds, skip, train_text)

    previous = io.read_json(args.out) if args.out.exists() else {}
    results = dict(previous)
    if runs:  # the settings of the runs recorded (a vocabulary-only call leaves them)
        results.update(
            mlm_run=str(args.mlm_run),
            epochs=args.epochs,
            adapt_epochs=args.adapt_epochs,
            probe_epochs=args.probe_epochs,
            seeds=[seed for seed in seeds if seed is not None],
        )
    pretrained_vocab = read_vocab_file(args.mlm_run / "vocab.txt")
    results["vocabularies"] = {
        "pretrained": vocabulary_fit(pretrained_vocab, test_texts),
        "scratch": vocabulary_fit(scratch_vocab(), test_texts),
    }
    for name, fit in results["vocabularies"].items():
        print(
            f"{name} vocabulary: {fit['tokens']} tokens, {fit['tokens_per_word']:.2f} tokens a test word, "
            f"{100 * fit['words_in_pieces']:.1f}% of words in pieces, {fit['unknown']} unknown"
        )
    for name, seeded_runs in runs.items():
        rows = []
        for seed, run in seeded_runs:
            labels = predictions(run, test_file)
            if len(labels) != len(truth):
                sys.exit(f"{name}: {len(labels)} predictions for {len(truth)} test sentences")
            right = [p == t for p, t in zip(labels, truth)]
            rows.append(
                {
                    "seed": seed,
                    "run": str(run),
                    "test_accuracy": sum(right) / len(truth),
                    "test_accuracy_ci95": wilson_interval(sum(right), len(truth)),
                    "count": len(truth),
                    "correct": "".join("1" if c else "0" for c in right),
                }
            )
        if seeds == [None]:  # one run: its row, as before
            results[name] = rows[0]
        else:
            results[name] = {key: value for key, value in summary(rows).items() if key != "share_right"}
            results[name].update(count=len(truth), runs=rows)

    def hits(name):  # per test sentence, the share of the model's runs that got it right
        return summary(results[name].get("runs", [results[name]]))["share_right"]

    for name in ("pretrained", "adapted", "vectors"):
        if name in results and "scratch" in results:
            diff, interval = paired_difference_interval(hits(name), hits("scratch"))
            results[name]["minus_scratch"] = diff
            results[name]["minus_scratch_ci95"] = interval
            by_seed = {row["seed"]: row["test_accuracy"] for row in results["scratch"].get("runs", [])}
            paired = [row["test_accuracy"] - by_seed[row["seed"]] for row in results[name].get("runs", [])
                      if row["seed"] in by_seed]  # fmt: skip
            if paired:
                results[name]["minus_scratch_per_seed"] = paired
    if "pretrained" in results and "vectors" in results:  # what masked-LM pretraining adds to the vectors
        diff, interval = paired_difference_interval(hits("pretrained"), hits("vectors"))
        results["pretrained"].update(minus_vectors=diff, minus_vectors_ci95=interval)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    io.write_json(args.out, results)
    for name in ("scratch", "pretrained", "adapted", "vectors"):
        if name in results:
            row = results[name]
            low, high = row.get("test_accuracy_ci95") or row["test_accuracy_range"]
            extra = f" over {len(row['runs'])} seeds (range)" if "runs" in row else ""
            if "minus_scratch" in row:
                extra += f", {100 * row['minus_scratch']:+.1f} points vs scratch {[round(100 * v, 1) for v in row['minus_scratch_ci95']]}"
            if "minus_vectors" in row:
                extra += f", {100 * row['minus_vectors']:+.1f} vs vectors {[round(100 * v, 1) for v in row['minus_vectors_ci95']]}"
            print(f"{name}: test accuracy {row['test_accuracy']:.3f} [{low:.3f}, {high:.3f}]{extra}")


if __name__ == "__main__":
    main()
