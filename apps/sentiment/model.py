"""Sentiment models over word vectors: the course's Emojify v1 (average of the word vectors
-> softmax) and v2 (embedding -> stacked Bi-LSTM, many-to-one -> softmax)."""

from functools import lru_cache

import keras
import numpy as np
from keras import layers

from dlkit.errors import DlkitError
from dlkit.metrics.classification import ClassificationEvaluator, misclassified
from dlkit.metrics.intervals import wilson_interval
from dlkit.stages import Stage

# Words kept besides those with vectors: training words seen this often, learnt from zero.
MIN_COUNT_WITHOUT_VECTOR = 2


@lru_cache(maxsize=2)
def vectors_of(name):
    """(words, vectors, {word: row}) of a registered table or a GloVe text file."""
    from dlkit.pretrained.text import word_vectors

    words, vectors = word_vectors(name)
    return words, vectors, {word: i for i, word in enumerate(words)}


def build_vocab(counts, table_words, table_index, extra_words):
    """The vocabulary the data needs: `<pad>`, `<unk>`, the training words that have a
    vector, training words without one seen MIN_COUNT_WITHOUT_VECTOR+ times, then the
    `extra_words` most frequent words of the table (GloVe rows are by frequency), so
    words never seen in training still read with their meaning."""
    from dlkit.edge.text import PAD, UNK

    with_vector = sorted(word for word in counts if word in table_index)
    without = sorted(w for w, n in counts.items() if w not in table_index and n >= MIN_COUNT_WITHOUT_VECTOR)
    vocab = [PAD, UNK, *with_vector, *without]
    known = set(vocab)
    vocab += [word for word in table_words[:extra_words] if word not in known]
    return vocab


def make_meta(config, source):
    """Labels, the word vocabulary (a side file of the model) and the input spec."""
    from dlkit.apps.sentiment.config import MODELS
    from dlkit.apps.sentiment.data import training_words

    if config.model not in MODELS:
        raise DlkitError(f"model must be one of {', '.join(MODELS)}, got {config.model!r}")
    if config.model == "encoder":
        return encoder_meta(config, source)
    words, vectors, index = vectors_of(config.vectors)
    vocab = build_vocab(training_words(source), words, index, config.extra_words)
    return {
        "app": "sentiment",
        "task": "text classification (sentiment)",
        "model": config.model,
        "labels": list(source.labels),
        "vocab": vocab,
        "lowercase": config.lowercase,
        "max_length": config.max_length,
        "vectors": config.vectors,
        "embedding_dim": int(vectors.shape[1]),
        "input": {"name": "token_ids", "shape": [config.max_length], "dtype": "int32"},
        "output": {"name": "probs", "shape": [len(source.labels)], "activation": "softmax"},
        "preprocessing": {
            "tokenizer": "dlkit.edge.text.WordVocab (NFKC, plain quotes, lowercase, GloVe-style words)",
            "padding": "0 after the words, cut after max_length words",
            "unknown": "id 1",
        },
    }


def encoder_meta(config, source):
    """The encoder model's metadata: a WordPiece vocabulary learnt from the training texts
    (an --init model replaces it with its own: the `text_encoder` part)."""
    from dlkit.data.cache import build_once
    from dlkit.data.text import build_vocab
    from dlkit.edge.text import BERT_RESERVED, bert_normalize

    def build(folder):
        texts = [bert_normalize(text, config.lowercase) for text, _ in source.rows("train")]
        vocab = build_vocab(texts, "wordpiece", config.vocab_size, reserved=list(BERT_RESERVED))
        (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        return {"tokens": len(vocab)}

    if config.encoder_vectors:  # refused before any work when it cannot be read
        from dlkit.pretrained.text import check_word_vectors

        check_word_vectors(config.vectors)
    name = f"sentiment-wordpiece-{source.fingerprint}-{config.vocab_size}-{int(config.lowercase)}"
    vocab = (build_once(name, build) / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return {
        "app": "sentiment",
        "task": "text classification (sentiment)",
        "model": "encoder",
        "labels": list(source.labels),
        "tokenizer": "bert_wordpiece",
        "vocab": vocab,
        "special_ids": {token: vocab.index(token) for token in BERT_RESERVED},
        "lowercase": config.lowercase,
        "max_length": config.max_tokens,
        "input": {
            "names": ["token_ids", "segment_ids", "attention_mask"],
            "shape": [config.max_tokens],
            "dtype": "int32",
        },
        "output": {"name": "probs", "shape": [len(source.labels)], "activation": "softmax"},
        "preprocessing": {
            "normalize": "dlkit.edge.text.bert_normalize",
            "tokenizer": "WordPiece (dlkit.edge.text.WordPiece = tensorflow-text)",
            "sequence": "[CLS] tokens [SEP], 0-padded to max_length",
        },
    }


def build_encoder_model(config, meta, load_weights=True):
    """WordPiece ids (+ segments, attention mask) -> BERT encoder -> the mean of its
    token states -> dropout -> class probabilities. The Keras model takes any length up to
    `max_positions` (training batches are cut to their longest text); the exported one,
    `max_length` tokens. `encoder_vectors` starts the token embedding from `vectors`
    unless `load_weights=False` (for callers that set all weights)."""
    from dlkit.layers.bert import bert_encoder, masked_mean

    inputs, hidden, token_embedding = bert_encoder(config, len(meta["vocab"]), None, config.encoder_dropout)
    token_embedding.bias.trainable = False  # the MLM output bias: no classifier uses it
    x = masked_mean(hidden, inputs[2])  # (batch, hidden)
    x = layers.Dropout(config.dropout, name="dropout")(x)
    probs = layers.Dense(len(meta["labels"]), activation="softmax", name="probs")(x)
    model = keras.Model(inputs, probs, name="sentiment_encoder")
    if load_weights and config.encoder_vectors:  # an --init model's weights replace these
        from dlkit.pretrained.bert import start_from_word_vectors

        start_from_word_vectors(model, meta["vocab"], config.vectors, config.seed)
    compile_model(model, config)
    return model


def embedding_matrix(vocab, name):
    """(len(vocab), dim) initial embedding: each word's vector; `<unk>` the mean vector;
    padding and words without a vector zero."""
    words, vectors, index = vectors_of(name)
    matrix = np.zeros((len(vocab), vectors.shape[1]), np.float32)
    rows = [(i, index[word]) for i, word in enumerate(vocab) if word in index]
    if rows:
        mine, theirs = map(np.array, zip(*rows))
        matrix[mine] = np.asarray(vectors)[theirs]
    matrix[1] = np.asarray(vectors[: min(len(words), 50_000)]).mean(axis=0)
    return matrix


def build_model(config, meta, load_weights=True):
    """Word ids (batch, max_length), 0-padded -> class probabilities (batch, classes).

    `load_weights=False` leaves the embedding random (for callers that set all weights).
    The encoder model: see `build_encoder_model`.
    """
    if meta["model"] == "encoder":
        return build_encoder_model(config, meta, load_weights)
    vocab, length = meta["vocab"], meta["max_length"]
    dim, classes = meta["embedding_dim"], len(meta["labels"])
    ids = keras.Input((length,), dtype="int32", name="token_ids")
    # The vectors are set after building: as a Constant initializer they would be
    # written into the model's config (26 MB of JSON in model.keras).
    embedding = layers.Embedding(
        len(vocab), dim, mask_zero=True, trainable=config.train_embeddings, name="embedding"
    )
    x = embedding(ids)  # (batch, length, dim), padding masked
    if meta["model"] == "average":
        x = layers.GlobalAveragePooling1D(name="average")(x)  # (batch, dim): mean over the words
    else:
        x = layers.SpatialDropout1D(config.spatial_dropout, name="embedding_dropout")(x)
        for k in range(config.lstm_layers):
            last = k == config.lstm_layers - 1
            units = max(1, config.units // 2**k)
            x = layers.Bidirectional(layers.LSTM(units, return_sequences=not last), name=f"bilstm_{k + 1}")(x)
            x = layers.Dropout(config.dropout, name=f"dropout_{k + 1}")(x)
        # x: (batch, 2 * units of the last layer), the many-to-one summary
    probs = layers.Dense(classes, activation="softmax", name="probs")(x)
    model = keras.Model(ids, probs, name=f"sentiment_{meta['model']}")
    if load_weights:
        embedding.set_weights([embedding_matrix(vocab, meta["vectors"])])
    compile_model(model, config)
    return model


def compile_model(model, config, learning_rate=None):
    if model.name == "sentiment_encoder":  # BERT fine-tuning: AdamW at a small rate
        optimizer = keras.optimizers.AdamW(learning_rate or config.encoder_learning_rate, clipnorm=1.0)
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "norm"])
    else:
        optimizer = keras.optimizers.Adam(learning_rate or config.learning_rate, clipnorm=1.0)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(),  # targets are distributions (soft labels)
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )


def training_stages(config, meta=None):
    """One stage, the embedding trainable or not (`train_embeddings`); or, with
    `fine_tune_epochs`, the transfer recipe: the network learns on the frozen vectors,
    then the embedding is unfrozen at `fine_tune_learning_rate`, so the words of the
    training texts move less away from the words they never saw."""

    def train(model):
        model.get_layer("embedding").trainable = config.train_embeddings and not config.fine_tune_epochs
        compile_model(model, config)

    def fine_tune(model):
        model.get_layer("embedding").trainable = True
        compile_model(model, config, config.fine_tune_learning_rate)

    if meta and meta.get("model") == "encoder":
        return encoder_stages(config)
    stages = [Stage("train", config.epochs, train)]
    if config.train_embeddings and config.fine_tune_epochs:
        stages.append(Stage("fine_tune", config.fine_tune_epochs, fine_tune))
    return stages


def encoder_stages(config):
    """The encoder model's stages: with `probe_epochs`, the output layer first learns on
    the frozen encoder (at `learning_rate`), then the whole network fine-tunes."""

    def probe(model):
        for layer in model.layers:
            layer.trainable = layer.name == "probs"
        compile_model(model, config, config.learning_rate)

    def train(model):
        for layer in model.layers:
            layer.trainable = True
        model.get_layer("token_embedding").bias.trainable = False  # the MLM output bias
        compile_model(model, config)

    stages = [Stage("probe", config.probe_epochs, probe)] if config.probe_epochs else []
    return [*stages, Stage("train", config.epochs, train)]


def adapt_model(model, model_meta, config, meta, log=print):
    """Fine-tunes a trained model on new texts: same classes keep it whole; other classes
    keep the embedding and LSTMs and get a new output layer."""
    if list(model_meta["labels"]) != list(meta["labels"]):
        log(f"new classes {meta['labels']} (model had {model_meta['labels']}): new output layer")
        fresh = build_model(config, meta, load_weights=False)
        for layer in model.layers:
            if layer.weights and layer.name != "probs":
                fresh.get_layer(layer.name).set_weights(layer.get_weights())
        model = fresh
    compile_model(model, config)
    return model


def inherit_meta(meta, model_meta):
    """Fine-tuning keeps the model's vocabulary and input: its embedding rows are by id."""
    keep = (
        "model",
        "vocab",
        "lowercase",
        "max_length",
        "vectors",
        "embedding_dim",
        "input",
        "preprocessing",
        "tokenizer",
        "special_ids",
    )
    return {**meta, **{key: model_meta[key] for key in keep if key in model_meta}}


def convert(model, config, meta, quantize, representative=None):
    """TFLite bytes taking any batch (the LSTMs unrolled over `max_length` steps) of
    `max_length` tokens (the encoder's static length)."""
    from dlkit.export.tflite import convert as convert_keras

    return convert_keras(model, quantize, length=meta["max_length"])


class SentimentEvaluator(ClassificationEvaluator):
    """Classification scores plus every row's predicted class and confidence, which
    `annotate` turns into the misclassified texts and the diagnostic-set scores."""

    def __init__(self, labels):
        super().__init__(labels, k=1, rows=True)

    def result(self):
        report = super().result()
        report.pop("top_1_accuracy", None)
        return report


def evaluator(config, meta):
    return SentimentEvaluator(meta["labels"])


def plots(report, meta, out_dir, title=""):
    """Confusion-matrix PNG and misclassified.tsv (text, truth, predicted, confidence)."""
    from pathlib import Path

    from dlkit import io
    from dlkit.plots import confusion_matrix_plot

    out_dir = Path(out_dir)
    path = out_dir / "confusion_matrix.png"
    confusion_matrix_plot(
        report["confusion_matrix"], report["labels"], path, title=title or "confusion matrix"
    )
    written = [str(path)]
    if report.get("misclassified") is not None:
        columns = ("text", "true", "predicted", "confidence")
        io.write_tsv(out_dir / "misclassified.tsv", report["misclassified"], columns)
        written.append(str(out_dir / "misclassified.tsv"))
    return written


# The diagnostic set: sentences whose polarity can hang on word order, by rule.
NEGATORS = frozenset(
    "not n't no never nothing nobody none neither nor nowhere without hardly barely cannot".split()
)
CONTRAST = frozenset("but however although though yet despite nevertheless nonetheless whereas".split())


def is_diagnostic(text):
    """True for a text with a negator or a contrast word (order-sensitive polarity)."""
    from dlkit.edge.text import words

    found = set(words(text))
    return not NEGATORS.isdisjoint(found) or not CONTRAST.isdisjoint(found)


def diagnostic_mask(texts):
    """(n,) bool: which texts belong to the diagnostic subset."""
    return np.array([is_diagnostic(text) for text in texts], bool)


def annotate(report, split, keep_errors=None):
    """Turns the evaluator's per-row predictions into the misclassified texts (all of
    them, most confident first) and the accuracy on the diagnostic subset."""
    texts = getattr(split, "texts", None)
    if "rows" not in report or texts is None:
        return report
    rows = report["rows"]
    right = np.array(rows["predicted"]) == np.array(rows["truth"])
    report["misclassified"] = misclassified(report, texts, key="text", keep=keep_errors)
    diagnostic = diagnostic_mask(texts)
    report["diagnostic"] = {
        "rule": "a negator ("
        + ", ".join(sorted(NEGATORS))
        + ") or a contrast word ("
        + ", ".join(sorted(CONTRAST))
        + ")",
        "count": int(diagnostic.sum()),
        "accuracy": float(right[diagnostic].mean()) if diagnostic.any() else float("nan"),
        "accuracy_ci95": wilson_interval(int(right[diagnostic].sum()), int(diagnostic.sum())),
        "rest_accuracy": float(right[~diagnostic].mean()) if (~diagnostic).any() else float("nan"),
    }
    return report


def peers(config, meta, source, split):
    """VADER (compound score > 0 is positive; binary labels only) and a TF-IDF word +
    bigram logistic regression fitted on the source's training texts, on `split`."""
    texts, truth = split.texts, np.asarray(split.targets)
    diagnostic = diagnostic_mask(texts)
    results = {}
    labels = list(meta["labels"])
    if labels == ["negative", "positive"]:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        analyser = SentimentIntensityAnalyzer()
        predicted = np.array([analyser.polarity_scores(text)["compound"] > 0 for text in texts], int)
        results["vader"] = _peer_report(predicted, truth, diagnostic)
    try:
        train = source.rows("train")
    except DlkitError:
        return results
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    features = vectorizer.fit_transform([text for text, _ in train])
    classifier = LogisticRegression(C=TFIDF_C, max_iter=2000).fit(features, [label for _, label in train])
    results["tfidf_logreg"] = _peer_report(classifier.predict(vectorizer.transform(texts)), truth, diagnostic)
    return results


# The TF-IDF baseline's inverse regularisation, picked on the validation split of the
# rated movie sentences (C = 1, 3, 10, 30, 100: 0.734, 0.756, 0.759, 0.765, 0.769).
TFIDF_C = 100.0


def _peer_report(predicted, truth, diagnostic):
    right = np.asarray(predicted) == np.asarray(truth)
    return {
        "accuracy": float(right.mean()),
        "accuracy_ci95": wilson_interval(int(right.sum()), len(right)),
        "count": len(right),
        "diagnostic_accuracy": float(right[diagnostic].mean()) if diagnostic.any() else float("nan"),
    }
