"""What does masked-LM pretraining give sentiment? A linear probe of the frozen encoder.

    python tools/probe_mlm.py MLM_RUN [--minilm] [--out tools/results/mlm_probe.json]

The rated movie sentences of the sentiment app (its binary task and fixed split) go
through an mlm model's encoder unchanged; each layer's token states (the embedding's,
then every transformer block's) are averaged over the sentence's tokens, and a logistic
regression learns the label from them on the training sentences (its L2 strength chosen
on validation; features standardised). The same is done for:
- the same architecture and vocabulary at its initialisation (what pretraining must
  beat: a random encoder still mixes token embeddings; a run started from word vectors,
  `--set token_vectors=...`, is compared with its own start, the vectors in place),
- `--minilm`: the ported MiniLM-L6 (pretrained at scale: how far a good encoder's frozen
  features go),
- a bag of the same WordPiece tokens (which tokens a sentence holds, no encoder).

Where fine-tuning the pretrained encoder and the scratch one ends level, the probe says
whether pretraining put anything sentiment can read into the features at all. Test
accuracy with a Wilson 95% interval; each encoder's best layer against the random
encoder's best layer with a paired bootstrap 95% interval (the same sentences). The mlm
run's masked-token accuracy per epoch is recorded beside it (its own history).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def sentiment_splits(mlm_meta, max_tokens):
    """{split: LoadedSplit} of the binary rated sentences, tokenized with the mlm model's
    vocabulary (the `text_encoder` part `dlkit sentiment train --init` inherits)."""
    from dlkit.apps.sentiment import reviews
    from dlkit.apps.sentiment.config import Config
    from dlkit.apps.sentiment.data import load_split, rated_source
    from dlkit.registry import get_app

    config = Config(model="encoder", max_tokens=max_tokens)
    source = rated_source(config, "movie", reviews.load_sets())
    encoder = get_app("mlm").meta_parts(mlm_meta)["text_encoder"]
    meta = {**encoder, "labels": list(source.labels), "max_length": max_tokens}
    return {split: load_split(config, source, split, meta) for split in source.splits}


def layer_features(model, inputs, batch_size=128):
    """[(layer name, (n, width) mean of its token states over each sentence's tokens)]
    for the embedding output and every transformer block of an mlm model."""
    import keras

    from dlkit.layers.bert import ENCODER_INPUTS, encoder_blocks

    length = model.inputs[0].shape[1]
    padded = [np.pad(inputs[name], ((0, 0), (0, length - inputs[name].shape[1]))) for name in ENCODER_INPUTS]
    names = ["embedding_norm"] + [block.name for block in encoder_blocks(model)]
    extractor = keras.Model(model.inputs[:3], [model.get_layer(name).output for name in names])
    pooled = [[] for _ in names]
    for start in range(0, len(padded[0]), batch_size):  # pooled a batch at a time: the states
        batch = [part[start : start + batch_size] for part in padded]  # of a split fill GBs
        mask = batch[2][..., None].astype(np.float32)
        for k, h in enumerate(extractor.predict_on_batch(batch)):
            pooled[k].append((np.asarray(h) * mask).sum(axis=1) / mask.sum(axis=1))
    return [(name, np.concatenate(parts)) for name, parts in zip(names, pooled)]


def token_bags(inputs, meta):
    """(n, vocab) 0/1: which WordPiece tokens each sentence holds (reserved tokens left out)."""
    from scipy.sparse import csr_matrix

    ids = inputs["token_ids"]
    keep = inputs["attention_mask"].astype(bool) & ~np.isin(ids, list(meta["special_ids"].values()))
    rows = np.repeat(np.arange(len(ids)), keep.sum(axis=1))
    bag = csr_matrix((np.ones(len(rows)), (rows, ids[keep])), shape=(len(ids), len(meta["vocab"])))
    bag.data[:] = 1.0  # duplicates were summed
    return bag


def probe(train, validation, test, targets, scale=True):
    """Logistic regression on train, its C chosen by validation accuracy: {C, validation,
    test accuracy, per test sentence right or not}."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if scale:
        scaler = StandardScaler().fit(train)
        train, validation, test = (scaler.transform(x) for x in (train, validation, test))
    best = None
    for c in C_GRID:
        fit = LogisticRegression(C=c, max_iter=3000).fit(train, targets["train"])
        score = (fit.predict(validation) == targets["val"]).mean()
        if best is None or score > best[0]:
            best = (score, c, fit)
    score, c, fit = best
    right = fit.predict(test) == targets["test"]
    return {"C": c, "validation": float(score), "test": float(right.mean()), "right": right}


def probe_encoder(name, model, splits, targets):
    """The probe on every layer of one encoder: {layer: result}."""
    print(f"{name}: features of {sum(len(s.targets) for s in splits.values())} sentences", flush=True)
    features = {split: dict(layer_features(model, data.inputs)) for split, data in splits.items()}
    results = {}
    for layer in features["train"]:
        results[layer] = probe(*(features[s][layer] for s in ("train", "val", "test")), targets)
        row = results[layer]
        print(
            f"  {layer}: validation {row['validation']:.3f}, test {row['test']:.3f} (C={row['C']})",
            flush=True,
        )
    return results


def random_twin(bundle, seed):
    """The mlm model's architecture and vocabulary, freshly initialised as its run began
    (from the same word vectors, when its config names them)."""
    import keras

    from dlkit.apps.mlm.config import Config
    from dlkit.apps.mlm.model import build_model
    from dlkit.config import from_dict

    config = from_dict(Config, bundle.meta["config"])  # a run older than token_vectors: ""
    keras.utils.set_random_seed(seed)
    return build_model(config, bundle.meta)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mlm_run", type=Path)
    parser.add_argument("--minilm", action="store_true", help="probe the ported MiniLM-L6 too")
    parser.add_argument("--max-tokens", type=int, default=64, help="as `dlkit sentiment train`")
    parser.add_argument("--seed", type=int, default=0, help="of the random encoder")
    parser.add_argument("--out", type=Path, default=ROOT / "tools" / "results" / "mlm_probe.json")
    args = parser.parse_args()

    from dlkit import io
    from dlkit.apps.mlm.model import pretrained_model_dir
    from dlkit.edge.bundle import ModelBundle
    from dlkit.engine import load_keras
    from dlkit.metrics.intervals import paired_difference_interval, wilson_interval
    from dlkit.quiet import import_tensorflow

    import_tensorflow()
    bundle = ModelBundle.load(args.mlm_run, app="mlm", prefer="keras")
    if bundle.is_tflite:
        sys.exit(f"{args.mlm_run}: the probe needs the run's .keras model")
    max_tokens = min(args.max_tokens, bundle.meta["max_length"])
    splits = sentiment_splits(bundle.meta, max_tokens)
    targets = {split: data.targets for split, data in splits.items()}
    encoders = {  # name: (how to load it, the sentences in its tokens)
        "pretrained": (lambda: load_keras(bundle.path), splits),
        "random": (lambda: random_twin(bundle, args.seed), splits),
    }
    if args.minilm:
        minilm = ModelBundle.load(pretrained_model_dir("minilm_l6"), app="mlm", prefer="keras")
        minilm_splits = sentiment_splits(minilm.meta, max_tokens)
        if any((minilm_splits[s].targets != targets[s]).any() for s in targets):
            sys.exit("MiniLM's tokens keep other sentences than the small encoder's; cannot pair them")
        encoders["minilm"] = (lambda: load_keras(minilm.path), minilm_splits)

    results = {
        "mlm_run": str(args.mlm_run),
        "max_tokens": max_tokens,
        "sentences": {split: len(data.targets) for split, data in splits.items()},
    }
    layers = {}
    for name, (load, own) in encoders.items():
        layers[name] = probe_encoder(name, load(), own, targets)
    bags = {split: token_bags(data.inputs, bundle.meta) for split, data in splits.items()}
    layers["token_bag"] = {"tokens": probe(*(bags[s] for s in ("train", "val", "test")), targets, False)}
    print(f"token bag: test {layers['token_bag']['tokens']['test']:.3f}")

    count = len(targets["test"])
    best_random = max(layers["random"].values(), key=lambda row: row["validation"])
    for name, rows in layers.items():
        best_layer = max(rows, key=lambda layer: rows[layer]["validation"])  # chosen on validation
        record = {}
        for layer, row in rows.items():
            right = int(row["right"].sum())
            record[layer] = {
                "C": row["C"],
                "validation_accuracy": row["validation"],
                "test_accuracy": right / count,
                "test_accuracy_ci95": wilson_interval(right, count),
            }
        best = rows[best_layer]
        diff, interval = paired_difference_interval(best["right"], best_random["right"])
        results[name] = {
            "layers": record,
            "best_layer": best_layer,
            "test_accuracy": best["test"],
            "test_accuracy_ci95": record[best_layer]["test_accuracy_ci95"],
            "minus_random": diff,
            "minus_random_ci95": interval,
        }
    history = bundle.directory / "history.jsonl"
    if history.exists():
        results["pretraining"] = [
            {key: row[key] for key in row if "accuracy" in key or key in ("epoch", "loss", "val_loss")}
            for row in io.read_jsonl(history)
            if row.get("event") == "epoch"
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    io.write_json(args.out, results)
    for name in layers:
        row = results[name]
        low, high = row["test_accuracy_ci95"]
        low_diff, high_diff = row["minus_random_ci95"]
        print(
            f"{name} (best layer on validation: {row['best_layer']}): test {row['test_accuracy']:.3f} "
            f"[{low:.3f}, {high:.3f}], {100 * row['minus_random']:+.1f} points vs random "
            f"[{100 * low_diff:+.1f}, {100 * high_diff:+.1f}]"
        )


if __name__ == "__main__":
    main()
