"""Translate models: the course's attention model (character level, dates) and a
GRU encoder-decoder with attention for sentences. Both use `dlkit.layers.AdditiveAttention`."""

import keras
import numpy as np
from keras import layers

from dlkit.apps.translate.config import setting
from dlkit.data.text import build_vocab
from dlkit.engine import Evaluator
from dlkit.errors import DlkitError
from dlkit.layers import AdditiveAttention, PaddingMask
from dlkit.metrics.calibration import Calibration
from dlkit.metrics.intervals import wilson_interval
from dlkit.metrics.token_accuracy import token_accuracy
from dlkit.quiet import native_output_silenced
from dlkit.stages import Stage


def make_meta(config, source):
    """Vocabularies (built from the training pairs) and the input/output spec."""
    from dlkit.apps.translate.data import model_kind
    from dlkit.edge.text import CharVocab, normalize

    kind = model_kind(config, source)
    train = source.pairs("train")
    meta = {"app": "translate", "model": kind, "lowercase": config.lowercase}
    if kind == "attention":
        sources = [normalize(s, config.lowercase) for s, _ in train]
        targets = [normalize(t, False) for _, t in train]
        meta.update(
            task="character-level translation (human-readable dates -> ISO by default)",
            input_length=config.input_length,
            output_length=config.output_length,
            source_vocab=CharVocab.from_texts(sources).tokens,
            target_vocab=CharVocab.from_texts(targets).tokens,
            input={"name": "source_ids", "shape": [config.input_length], "dtype": "int32"},
            output={"name": "probs", "shape": [config.output_length, None], "activation": "softmax"},
        )
        meta["output"]["shape"][1] = len(meta["target_vocab"])
        return meta
    meta.update(
        task="sentence translation (encoder-decoder with attention, beam search)",
        tokenizer=config.tokenizer,
        max_tokens=config.max_tokens,
        beam_width=config.beam_width,
        length_alpha=config.length_alpha,
        source_vocab=build_vocab(
            [normalize(s, config.lowercase) for s, _ in train], config.tokenizer, config.vocab_size
        ),
        target_vocab=build_vocab(
            [normalize(t, config.lowercase) for _, t in train], config.tokenizer, config.vocab_size
        ),
        input={"name": "source_ids", "shape": [config.max_tokens], "dtype": "int32"},
    )
    return meta


def build_model(config, meta, load_weights=True):
    """The training model for `meta["model"]`, compiled."""
    model = build_attention(config, meta) if meta["model"] == "attention" else build_seq2seq(config, meta)
    compile_model(model, config)
    return model


def build_attention(config, meta, with_attention=False):
    """The course's date model: source ids (batch, Tx) -> probabilities (batch, Ty, V).

    Pre-attention Bi-LSTM over the characters; for each of the Ty output steps a one-step
    attention over the annotations, queried with the previous post-attention state; the
    post-attention LSTM cell consumes the context; a shared softmax layer reads its state.
    The attention weights of every step are stacked in the layer `attention_map`.
    """
    tx, ty = meta["input_length"], meta["output_length"]
    vocab_in, vocab_out = len(meta["source_vocab"]), len(meta["target_vocab"])
    ids = keras.Input((tx,), dtype="int32", name="source_ids")
    mask = PaddingMask(name="padding_mask")(ids)  # (batch, Tx)
    x = layers.Embedding(vocab_in, config.embedding_dim, name="embedding")(ids)  # (batch, Tx, E)
    annotations = layers.Bidirectional(
        layers.LSTM(config.encoder_units, return_sequences=True), name="pre_attention_bilstm"
    )(x)  # (batch, Tx, 2 * n_a)
    summary = layers.GlobalAveragePooling1D(name="summary")(annotations)
    s = layers.Dense(config.decoder_units, activation="tanh", name="initial_state")(summary)  # (batch, n_s)
    c = layers.Dense(config.decoder_units, name="initial_cell")(summary)
    attention = AdditiveAttention(config.attention_units, name="attention")
    cell = layers.LSTMCell(config.decoder_units, name="post_attention_lstm")
    output_layer = layers.Dense(vocab_out, activation="softmax", name="output_softmax")
    step_probs, step_weights = [], []
    for t in range(ty):
        context, weights = attention(s, annotations, values_mask=mask, return_attention_scores=True)
        s, (s, c) = cell(context, [s, c])
        step_probs.append(layers.Reshape((1, vocab_out), name=f"step_{t}")(output_layer(s)))
        step_weights.append(layers.Reshape((1, tx), name=f"weights_{t}")(weights))
    probs = layers.Concatenate(axis=1, name="probs")(step_probs)  # (batch, Ty, V)
    if not with_attention:
        return keras.Model(ids, probs, name="date_attention")
    weights = layers.Concatenate(axis=1, name="attention_map")(step_weights)  # (batch, Ty, Tx)
    return keras.Model(ids, [probs, weights], name="date_attention")


def inference_model(model, config, meta):
    """The model a device runs: the date model also returns its attention map (for plots)."""
    if meta["model"] != "attention":
        return model
    full = build_attention(config, meta, with_attention=True)
    for layer in model.layers:
        if layer.weights:
            full.get_layer(layer.name).set_weights(layer.get_weights())
    return full


def build_seq2seq(config, meta):
    """Encoder-decoder for teacher forcing: (source ids (batch, S), decoder input ids
    (batch, T)) -> next-token logits (batch, T, V).

    Bi-GRU encoder; GRU decoder whose outputs query the encoder annotations through
    additive attention (padding masked); [state, context] -> tanh -> logits.
    """
    src_len = meta["max_tokens"]
    units = config.seq_units
    source = keras.Input((src_len,), dtype="int32", name="source_ids")
    target_in = keras.Input((src_len + 1,), dtype="int32", name="decoder_ids")
    annotations, state = _encoder(config, meta)(source)
    mask = PaddingMask(name="padding_mask")(source)
    y = layers.Embedding(len(meta["target_vocab"]), config.seq_embedding_dim, name="target_embedding")(
        target_in
    )
    decoder = layers.GRU(units, return_sequences=True, name="decoder_gru")
    h = decoder(y, initial_state=state)  # (batch, T, U)
    context = AdditiveAttention(units, name="attention")(h, annotations, values_mask=mask)
    merged = layers.Concatenate(name="merge")([h, context])
    hidden = layers.Dense(units, activation="tanh", name="attention_hidden")(merged)
    logits = layers.Dense(len(meta["target_vocab"]), name="logits")(hidden)
    return keras.Model([source, target_in], logits, name="seq2seq_attention")


def _encoder(config, meta):
    src_len, units = meta["max_tokens"], config.seq_units
    source = keras.Input((src_len,), dtype="int32", name="source_ids")
    x = layers.Embedding(len(meta["source_vocab"]), config.seq_embedding_dim, name="source_embedding")(source)
    annotations = layers.Bidirectional(layers.GRU(units // 2, return_sequences=True), name="encoder_bigru")(
        x
    )  # (batch, S, U)
    summary = layers.GlobalAveragePooling1D(name="summary")(annotations)
    state = layers.Dense(units, activation="tanh", name="initial_state")(summary)
    return keras.Model(source, [annotations, state], name="encoder")


def seq2seq_parts(model):
    """(encoder, decoder step) Keras models sharing the trained model's weights.

    encoder: source ids (b, S) -> annotations (b, S, U), state (b, U)
    step: token (b,), state (b, U), annotations (b, S, U), source ids (b, S)
        -> logits (b, V), new state (b, U)
    """
    encoder = model.get_layer("encoder")
    src_len = model.inputs[0].shape[1]
    units = model.get_layer("decoder_gru").units
    token = keras.Input((), dtype="int32", name="token")
    state = keras.Input((units,), name="state")
    annotations = keras.Input((src_len, units), name="annotations")
    source = keras.Input((src_len,), dtype="int32", name="source_ids")
    y = model.get_layer("target_embedding")(token)  # (b, E)
    h, _ = model.get_layer("decoder_gru").cell(y, state)
    mask = model.get_layer("padding_mask")(source)
    context = model.get_layer("attention")(h, annotations, values_mask=mask)
    merged = model.get_layer("merge")([h, context])
    logits = model.get_layer("logits")(model.get_layer("attention_hidden")(merged))
    step = keras.Model([token, state, annotations, source], [logits, h], name="decoder_step")
    return encoder, step


def compile_model(model, config, learning_rate=None):
    if model.name == "seq2seq_attention":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
        metrics = [token_accuracy]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="char_accuracy")]
    kind = "seq2seq" if model.name == "seq2seq_attention" else "attention"
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate or setting(config, kind, "learning_rate"), clipnorm=1.0
        ),
        loss=loss,
        metrics=metrics,
    )


def training_stages(config, meta=None):
    """One stage. The date model's learning rate halves every `decay_epochs` (the course
    uses Adam with decay); the sentence model trains at a constant rate."""

    def prepare(model):
        compile_model(model, config)

    kind = meta["model"] if meta else "attention"
    callbacks = _schedule(config) if kind == "attention" else []
    return [Stage("train", setting(config, kind, "epochs"), prepare, callbacks=callbacks)]


def _schedule(config):
    if not config.decay_epochs:
        return []
    base, every = setting(config, "attention", "learning_rate"), config.decay_epochs
    return [keras.callbacks.LearningRateScheduler(lambda epoch: base * 0.5 ** (epoch // every))]


def adapt_model(model, model_meta, config, meta, log=print):
    """Continues training a model on new pairs; its vocabularies are kept (`inherit_meta`)."""
    compile_model(model, config)
    return model


def inherit_meta(meta, model_meta):
    """Fine-tuning keeps the model's vocabularies: new characters map to the unknown id."""
    keep = (
        "model",
        "lowercase",
        "source_vocab",
        "target_vocab",
        "input_length",
        "output_length",
        "max_tokens",
    )
    return {**meta, **{key: model_meta[key] for key in keep if key in model_meta}}


def make_runner(model, config, meta):
    """fn(source ids batch) -> [outputs] for scoring a Keras model the way a device does."""
    if meta["model"] == "attention":
        from dlkit.engine import keras_runner

        return keras_runner(inference_model(model, config, meta))
    from dlkit.apps.translate.edge import Seq2SeqDecoder

    encoder, step = seq2seq_parts(model)
    decoder = Seq2SeqDecoder(
        # predict_on_batch runs a compiled function: several times faster than eager calls.
        encode=lambda ids: list(encoder.predict_on_batch(ids)),
        step=lambda *args: list(step.predict_on_batch(list(args))),
        meta=meta,
    )
    return lambda x: [decoder.decode_batch(np.asarray(x, np.int32), beam_width=config.beam_width)]


class ExactMatchEvaluator(Evaluator):
    """Date model: exact match and character accuracy of [probabilities (n, Ty, V)]
    against target ids (n, Ty), with the first 20 wrong answers."""

    def __init__(self, meta, max_errors=20):
        self.meta, self.max_errors = meta, max_errors
        self.count = self.exact = self.chars = self.char_total = 0
        self.errors = []
        self.calibration = Calibration()

    def update(self, outputs, targets):
        from dlkit.apps.translate.edge import decode_outputs

        predicted = np.argmax(outputs[0], axis=-1)
        targets = np.asarray(targets)
        exact = np.all(predicted == targets, axis=1)
        wrong = np.flatnonzero(~exact)[: self.max_errors - len(self.errors)]
        if len(wrong):
            texts = decode_outputs([np.asarray(outputs[0])[wrong]], self.meta)
            self.errors += [{"index": int(self.count + i), "predicted": t} for i, t in zip(wrong, texts)]
        # The confidence predict shows: the product of the per-character probabilities.
        self.calibration.update(np.prod(np.max(outputs[0], axis=-1), axis=-1), exact)
        self.count += len(targets)
        self.exact += int(exact.sum())
        self.chars += int((predicted == targets).sum())
        self.char_total += int(targets.size)

    def result(self):
        return {
            "exact_match": self.exact / self.count if self.count else float("nan"),
            "exact_match_ci95": wilson_interval(self.exact, self.count),
            "char_accuracy": self.chars / self.char_total if self.char_total else float("nan"),
            "ece": self.calibration.ece(),
            "count": self.count,
            "errors": self.errors,
        }


class CorpusEvaluator(Evaluator):
    """Sentence model: corpus BLEU and chrF (sacrebleu) and exact match of the decoded
    token ids against the reference strings (normalised as the model normalises input)."""

    def __init__(self, meta):
        self.meta = meta
        self.hypotheses, self.references = [], []

    def update(self, outputs, targets):
        from dlkit.apps.translate.edge import decode_outputs
        from dlkit.edge.text import normalize

        self.hypotheses += decode_outputs(outputs, self.meta)
        self.references += [normalize(str(t), self.meta["lowercase"]) for t in targets]

    def result(self):
        import sacrebleu

        hypotheses, references = self.hypotheses, self.references
        exact = sum(h == r for h, r in zip(hypotheses, references))
        return {
            "bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
            "bleu_ci95": bleu_interval(hypotheses, references),
            "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
            "exact_match": exact / len(references) if references else float("nan"),
            "exact_match_ci95": wilson_interval(exact, len(references)),
            "count": len(references),
            "examples": [{"hypothesis": h, "reference": r} for h, r in list(zip(hypotheses, references))[:5]],
        }


def bleu_interval(hypotheses, references, rounds=1000, seed=0):
    """The 95% percentile-bootstrap interval of corpus BLEU, [low, high]: the sentences
    resampled with replacement and each resample scored from its sentences' summed n-gram
    counts and lengths, which is how sacrebleu scores a corpus (the full sample's sums give
    `sacrebleu.corpus_bleu` exactly)."""
    from sacrebleu.metrics import BLEU

    if not references:
        return [float("nan"), float("nan")]
    corpus, sentences = BLEU(), BLEU(effective_order=True)  # the order changes no count
    # (sentences, 2 + 2 * max n-gram order): hypothesis and reference length, matches, totals
    stats = np.array(
        [
            [s.sys_len, s.ref_len, *s.counts, *s.totals]
            for s in (sentences.sentence_score(h, [r]) for h, r in zip(hypotheses, references))
        ],
        np.int64,
    )
    order = corpus.max_ngram_order
    picks = np.random.default_rng(seed).integers(0, len(stats), (rounds, len(stats)))
    scores = [
        BLEU.compute_bleu(
            correct=sums[2 : 2 + order].tolist(),
            total=sums[2 + order :].tolist(),
            sys_len=int(sums[0]),
            ref_len=int(sums[1]),
            smooth_method=corpus.smooth_method,
            max_ngram_order=order,
        ).score
        for sums in stats[picks].sum(axis=1)
    ]
    return np.percentile(scores, [2.5, 97.5]).tolist()


def evaluator(config, meta):
    """attention: exact match and character accuracy; seq2seq: BLEU and chrF."""
    return ExactMatchEvaluator(meta) if meta["model"] == "attention" else CorpusEvaluator(meta)


def convert(model, config, meta, quantize, representative=None):
    """TFLite bytes: the date model as one static graph (ids -> probabilities, attention);
    the seq2seq model as one file with two signatures, `encode` (batch 1) and `decode`
    (one step for `beam_width` hypotheses), searched in numpy on device."""
    from dlkit.export.tflite import convert as convert_keras

    if meta["model"] == "attention":
        full = inference_model(model, config, meta)
        return convert_keras(full, quantize)  # any batch: the Bi-LSTM is unrolled
    return _convert_seq2seq(model, config, meta, quantize)


def _convert_seq2seq(model, config, meta, quantize):
    import tensorflow as tf

    from dlkit import io
    from dlkit.export.tflite import conversion_error, float_options

    encoder, step = seq2seq_parts(model)
    src_len, units = meta["max_tokens"], model.get_layer("decoder_gru").units
    width = max(1, config.beam_width)
    archive = keras.export.ExportArchive()
    archive.track(encoder)
    archive.track(step)

    def encode(source_ids):
        annotations, state = encoder(source_ids, training=False)
        return {"annotations": annotations, "state": state}

    def decode(token, state, annotations, source_ids):
        logits, new_state = step([token, state, annotations, source_ids], training=False)
        return {"logits": logits, "state": new_state}

    archive.add_endpoint(
        "encode", encode, input_signature=[tf.TensorSpec([1, src_len], tf.int32, name="source_ids")]
    )
    archive.add_endpoint(
        "decode",
        decode,
        input_signature=[
            tf.TensorSpec([width], tf.int32, name="token"),
            tf.TensorSpec([width, units], tf.float32, name="state"),
            tf.TensorSpec([width, src_len, units], tf.float32, name="annotations"),
            tf.TensorSpec([width, src_len], tf.int32, name="source_ids"),
        ],
    )
    with io.temp_dir("export") as tmp:
        archive.write_out(str(tmp), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp), signature_keys=["encode", "decode"])
        float_options(converter, quantize)
        try:
            with native_output_silenced():
                return converter.convert()
        except Exception as error:
            raise DlkitError(conversion_error(model, error)) from None
