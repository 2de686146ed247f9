"""The BERT-style masked language model: embeddings, transformer encoder blocks and an MLM
head whose output projection is the token embedding (tied), with its evaluator."""

import keras
import numpy as np
from keras import layers

from dlkit.console import counted
from dlkit.edge.text import BERT_RESERVED
from dlkit.engine import Evaluator
from dlkit.errors import DlkitError, InvalidInputError
from dlkit.layers import MaskedPositions
from dlkit.layers.bert import ENCODER_INPUTS, LAYER_NORM_EPSILON, bert_encoder, masked_mean
from dlkit.stages import Stage

BOOTSTRAP = 1000  # resamplings of the sequences for the 95% intervals


def read_vocab_file(path):
    """A BERT vocab.txt (one token per line): checked for duplicates and for the
    reserved tokens, [PAD] first (id 0, the padding the model masks)."""
    from pathlib import Path

    path = Path(path)
    try:
        vocab = path.read_bytes().decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"{path}: not a readable UTF-8 vocabulary ({type(error).__name__})") from None
    seen, twice = set(), []
    for token in vocab:
        if token in seen:
            twice.append(token)
        seen.add(token)
    if twice:
        raise InvalidInputError(f"{path}: lists {counted(len(twice), 'token')} twice, e.g. {twice[0]!r}")
    missing = [token for token in BERT_RESERVED if token not in seen]
    if missing:
        raise InvalidInputError(f"{path}: a BERT vocabulary needs {', '.join(missing)}")
    if vocab[0] != "[PAD]":
        raise InvalidInputError(f"{path}: [PAD] must be the first token (id 0), found {vocab[0]!r}")
    return vocab


def learn_vocab(config, source):
    """A WordPiece vocabulary learnt from the training documents with tensorflow-text,
    built once per corpus and size into the cache (learning takes minutes)."""
    from dlkit.data.cache import build_once
    from dlkit.data.text import build_vocab
    from dlkit.edge.text import bert_normalize

    def build(folder):
        texts = [bert_normalize(t, config.lowercase) for t in source.texts("train")]
        vocab = build_vocab(texts, "wordpiece", config.vocab_size, reserved=list(BERT_RESERVED))
        (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        return {"tokens": len(vocab), "paragraphs": len(texts)}

    name = f"mlm-vocab-{source.fingerprint}-{config.vocab_size}-{'uncased' if config.lowercase else 'cased'}"
    return read_vocab_file(build_once(name, build) / "vocab.txt")


def make_meta(config, source):
    """The vocabulary (a side file of the model), its reserved ids and the input spec."""
    if config.max_length > config.max_positions:
        raise DlkitError(f"max_length {config.max_length} exceeds max_positions {config.max_positions}")
    if config.token_vectors:  # refused here, before any work, when it cannot be read
        from dlkit.pretrained.text import check_word_vectors

        check_word_vectors(config.token_vectors)
    vocab = read_vocab_file(config.vocab_file) if config.vocab_file else learn_vocab(config, source)
    distill = None
    if config.distill:
        from dlkit.pretrained.text import text_encoder_settings

        distill = {"teacher": config.distill, "width": text_encoder_settings(config.distill)["hidden_size"]}
    return {
        "app": "mlm",
        "task": "masked language model (fill-mask)",
        "vocab": vocab,
        "special_ids": {token: vocab.index(token) for token in BERT_RESERVED},
        "lowercase": config.lowercase,
        "max_length": config.max_length,
        "max_predictions": config.max_predictions,
        "next_sentence": config.next_sentence,
        "distill": distill,
        "input": {
            "names": [*ENCODER_INPUTS, "masked_positions"],
            "shape": [config.max_length],
            "masked_positions": [config.max_predictions],
            "dtype": "int32",
        },
        "output": {"name": "probs", "shape": [config.max_predictions, len(vocab)], "activation": "softmax"},
        "preprocessing": {
            "normalize": "dlkit.edge.text.bert_normalize (lowercase, accents stripped)"
            if config.lowercase
            else "",
            "tokenizer": "WordPiece (dlkit.edge.text.WordPiece = tensorflow-text FastBertTokenizer)",
            "sequence": "[CLS] tokens [SEP], 0-padded to max_length; masked_positions 0-padded",
        },
    }


def build_model(config, meta, load_weights=True):
    """(token_ids, segment_ids, attention_mask (batch, length), masked_positions (batch,
    slots)) -> logits over the vocabulary at the masked positions (batch, slots, vocab)."""
    inputs, hidden, token_embedding = bert_encoder(
        config, len(meta["vocab"]), meta["max_length"], config.dropout
    )
    positions = keras.Input((meta["max_predictions"],), dtype="int32", name="masked_positions")
    x = MaskedPositions(name="gather")(hidden, positions)  # (batch, slots, hidden)
    x = layers.Dense(config.hidden_size, activation="gelu", name="mlm_dense")(x)
    x = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="mlm_norm")(x)
    logits = token_embedding(x, reverse=True)  # (batch, slots, vocab): tied to the input embedding
    outputs = {"mlm": logits}
    if meta.get("next_sentence"):
        pooled = layers.Dense(config.hidden_size, activation="tanh", name="pooler")(hidden[:, 0])  # [CLS]
        outputs["nsp"] = layers.Dense(2, name="next_sentence")(pooled)  # (batch, 2): B follows A or not
    if meta.get("distill"):  # the mean token state, mapped to the teacher's sentence embedding
        outputs["distill"] = layers.Dense(meta["distill"]["width"], name="distill")(
            masked_mean(hidden, inputs[2])
        )
    model = keras.Model([*inputs, positions], outputs if len(outputs) > 1 else logits, name="bert_mlm")
    if load_weights and config.token_vectors:
        from dlkit.pretrained.bert import start_from_word_vectors

        start_from_word_vectors(model, meta["vocab"], config.token_vectors, config.seed)
    compile_model(model, config)
    return model


def inference_model(model, config, meta):
    """The model a device runs: probabilities instead of logits (and the next-sentence
    probabilities after them, when the model has that head)."""
    if not isinstance(model.output, dict):
        return keras.Model(model.inputs, layers.Softmax(name="probs")(model.output), name="bert_fill_mask")
    probs = layers.Softmax(name="probs")(model.output["mlm"])
    if "nsp" not in model.output:  # the distillation head is for training only
        return keras.Model(model.inputs, probs, name="bert_fill_mask")
    next_probs = layers.Softmax(name="next_sentence_probs")(model.output["nsp"])
    return keras.Model(model.inputs, [probs, next_probs], name="bert_fill_mask")


def schedule(config):
    """Linear warm-up to `learning_rate`, then cosine decay to a tenth of it."""
    total = max(config.epochs * config.steps_per_epoch, config.warmup_steps + 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=total - config.warmup_steps,
        alpha=0.1,
        warmup_target=config.learning_rate,
        warmup_steps=config.warmup_steps,
    )


def compile_model(model, config):
    optimizer = keras.optimizers.AdamW(schedule(config), weight_decay=config.weight_decay, clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "norm"])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    accuracy = keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")
    if not isinstance(model.output, dict):
        model.compile(optimizer=optimizer, loss=loss, weighted_metrics=[accuracy])
        return
    losses, weights, metrics = {"mlm": loss}, {"mlm": 1.0}, {"mlm": [accuracy]}
    if "nsp" in model.output:  # next-sentence prediction
        losses["nsp"], weights["nsp"] = keras.losses.SparseCategoricalCrossentropy(from_logits=True), 1.0
        metrics["nsp"] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if "distill" in model.output:  # -cosine to the teacher's unit sentence embedding
        losses["distill"], weights["distill"] = keras.losses.CosineSimilarity(), config.distill_weight
    model.compile(optimizer=optimizer, loss=losses, loss_weights=weights, weighted_metrics=metrics)


def training_stages(config, meta=None):
    return [Stage("pretrain", config.epochs, lambda model: compile_model(model, config))]


def adapt_model(model, model_meta, config, meta, log=print):
    """Continues pretraining a trained model on new text, with its own vocabulary."""
    compile_model(model, config)
    return model


def inherit_meta(meta, model_meta):
    """Continued pretraining keeps the model's vocabulary and lengths."""
    keep = (
        "vocab",
        "special_ids",
        "lowercase",
        "max_length",
        "max_predictions",
        "input",
        "output",
        "preprocessing",
    )
    return {**meta, **{key: model_meta[key] for key in keep if key in model_meta}}


class MaskedLMEvaluator(Evaluator):
    """Masked-token accuracy (top-1 and top-5) and perplexity over the filled slots of
    [probabilities (n, slots, vocab)] against the original ids (n, slots; 0 = empty
    slot), with 95% intervals from resampling whole sequences; with a next-sentence
    head (a second output (n, 2), labels in the targets' last column) its accuracy too."""

    def __init__(self):
        self.correct, self.top5, self.counts, self.nll = [], [], [], []
        self.next_right = []

    def update(self, outputs, targets):
        probs = np.asarray(outputs[0], np.float32)
        targets = np.asarray(targets)
        if len(outputs) > 1:
            labels, targets = targets[:, -1], targets[:, :-1]
            self.next_right += (np.argmax(np.asarray(outputs[1]), axis=-1) == labels).tolist()
        valid = targets > 0
        picked = np.take_along_axis(probs, targets[..., None], axis=-1)[..., 0]  # (n, slots)
        # Ties count against the truth (a quantized softmax rounds many tokens alike): top-1
        # is argmax's pick, top-5 the five argsort picks.
        best = np.argsort(-probs, axis=-1, kind="stable")[..., :5]  # (n, slots, 5)
        self.correct += ((best[..., 0] == targets) & valid).sum(axis=1).tolist()
        self.top5 += ((best == targets[..., None]).any(axis=-1) & valid).sum(axis=1).tolist()
        self.counts += valid.sum(axis=1).tolist()
        self.nll += (-np.log(np.clip(picked, 1e-12, 1.0)) * valid).sum(axis=1).tolist()

    def result(self):
        from dlkit.metrics.intervals import wilson_interval

        report = sequence_report(
            np.array(self.correct), np.array(self.counts), np.array(self.nll), np.array(self.top5)
        )
        if self.next_right:
            right = int(np.sum(self.next_right))
            report["next_sentence_accuracy"] = right / len(self.next_right)
            report["next_sentence_accuracy_ci95"] = wilson_interval(right, len(self.next_right))
        return report


def sequence_report(correct, counts, nll, top5=None, seed=0):
    """Accuracy and perplexity from per-sequence sums, with bootstrap 95% intervals."""
    total = counts.sum()
    if not total:
        return {"masked_accuracy": float("nan"), "perplexity": float("nan"), "count": 0}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(counts), (BOOTSTRAP, len(counts)))
    totals = counts[draws].sum(axis=1)
    accuracy = correct[draws].sum(axis=1) / totals
    perplexity = np.exp(nll[draws].sum(axis=1) / totals)
    report = {
        "masked_accuracy": float(correct.sum() / total),
        "masked_accuracy_ci95": [float(np.percentile(accuracy, 2.5)), float(np.percentile(accuracy, 97.5))],
        "perplexity": float(np.exp(nll.sum() / total)),
        "perplexity_ci95": [float(np.percentile(perplexity, 2.5)), float(np.percentile(perplexity, 97.5))],
    }
    if top5 is not None:
        report["top5_accuracy"] = float(top5.sum() / total)
    report.update(count=int(total), sequences=len(counts))
    return report


def evaluator(config, meta):
    return MaskedLMEvaluator()


def unigram_report(train, split, vocab_size):
    """The unigram-frequency baseline on a split's masked slots: always the most frequent
    training token; perplexity from add-one smoothed training frequencies."""
    from dlkit.apps.mlm.data import unigram_counts

    counts = unigram_counts(train, vocab_size).astype(np.float64) + 1.0
    probs = counts / counts.sum()
    targets = split.targets if split.next_labels is None else split.targets[:, :-1]
    valid = targets > 0
    correct = ((targets == np.argmax(counts)) & valid).sum(axis=1)
    nll = (-np.log(probs[targets]) * valid).sum(axis=1)
    return sequence_report(correct, valid.sum(axis=1), nll)


def peers(config, meta, source, split):
    """The unigram baseline the targets are measured against."""
    from dlkit.apps.mlm.data import load_split

    train = load_split(config, source, "train", meta=meta)
    return {"unigram": unigram_report(train, split, len(meta["vocab"]))}


def pretrained_model_dir(name="minilm_l6"):
    """A model directory (`--init`) holding the pretrained encoder `name` of
    dlkit.pretrained.text ported into this app's model, with its WordPiece vocabulary;
    the MLM head starts untrained. Built once into the cache."""
    from dlkit import io
    from dlkit.apps.mlm.config import Config
    from dlkit.config import to_dict
    from dlkit.data.cache import build_once
    from dlkit.edge.bundle import add_asset, stored_meta
    from dlkit.pretrained.bert import check_settings, port_bert
    from dlkit.pretrained.text import TEXT_ENCODERS, _file, load_text_encoder
    from dlkit.runner import save_model, versions

    def build(folder):
        weights, _, settings = load_text_encoder(name)
        check_settings(name, settings)
        spec = TEXT_ENCODERS[name]
        config = Config(
            vocab_file=str(_file(spec, spec.vocab_file)),
            vocab_size=settings["vocab_size"],
            hidden_size=settings["hidden_size"],
            layers=settings["num_hidden_layers"],
            heads=settings["num_attention_heads"],
            intermediate_size=settings["intermediate_size"],
            max_positions=settings["max_position_embeddings"],
        )
        meta = make_meta(config, None)
        config.vocab_file = ""  # the vocabulary travels with the model
        model = build_model(config, meta)
        count = port_bert(model, weights)
        meta.update(config=to_dict(config), data=None, versions=versions(), pretrained=spec.origin)
        save_model(model, folder / "model.keras")
        add_asset(folder, meta, "vocab", "\n".join(meta["vocab"]).encode("utf-8"), "vocab.txt", into="vocab")
        io.write_json(folder / "model.json", stored_meta(meta))
        return {"tensors": count, "origin": spec.origin}

    return build_once(f"mlm-pretrained-{name}", build, marker="ported.json")
