"""Configuration of the sentiment app (no TensorFlow import)."""

from dataclasses import dataclass
from typing import ClassVar

from dlkit.config import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, TrainConfig

MODELS = ("lstm", "average", "encoder")
CLASS_SETS = ("binary", "five")


@dataclass
class Config(TrainConfig):
    """Training and export settings; every field can be set with `--set key=value`.

    Two models over word vectors: `average` is the course's Emojify v1 (the mean of the
    sentence's word vectors -> softmax); `lstm` is Emojify v2 (embedding -> stacked
    Bi-LSTM, many-to-one, padding masked -> softmax). The embedding starts from
    `vectors` (a name of dlkit.pretrained.text, or a GloVe `.txt` file such as
    glove.6B.100d.txt) and is fine-tuned unless `train_embeddings=false`.

    A third model, `encoder`, is a BERT-style encoder (dlkit.layers.bert) over WordPiece
    tokens, mean-pooled -> softmax: `--init` with a trained mlm model (or `--init minilm`)
    starts it pretrained and brings its vocabulary; without one it learns a vocabulary of
    `vocab_size` from the training texts and trains from scratch.

    Labels: `binary` (negative / positive, from the sign of the mean human rating) or
    `five` (mean rating bins, see apps/sentiment/data.py) for the offline sentences;
    user data brings its own labels (`label_column`), or `labels` lists them in order.
    """

    LIMITS: ClassVar[dict] = {
        **dict.fromkeys(
            (
                "max_length",
                "units",
                "lstm_layers",
                "max_tokens",
                "vocab_size",
                "hidden_size",
                "layers",
                "heads",
                "intermediate_size",
                "max_positions",
            ),
            AT_LEAST_ONE,
        ),
        "encoder_learning_rate": POSITIVE,
        "probe_epochs": NON_NEGATIVE,
        **dict.fromkeys(("dropout", "spatial_dropout"), FRACTION),
        "fine_tune_learning_rate": POSITIVE,
    }

    model: str = "lstm"  # lstm | average | encoder
    classes: str = "binary"  # binary | five (offline rated sentences)
    # Rated sentences, binary: train on P(positive) = sigmoid(soft_labels * mean rating)
    # instead of 0/1, so a sentence people found barely positive counts as such (0 = hard).
    soft_labels: float = 2.0
    vectors: str = "glove_6b_50d"  # a registered name or a GloVe .txt file
    lowercase: bool = True  # the GloVe 6B vectors are lowercase
    max_length: int = 48  # words read per text; longer texts are cut (99% of sentences fit)
    extra_words: int = 20000  # the most frequent GloVe words kept besides the training words
    train_embeddings: bool = True  # fine-tuned: 0.803 validation accuracy, frozen 0.748
    fine_tune_epochs: int = 0  # > 0: frozen for `epochs`, then the embedding trains this long
    fine_tune_learning_rate: float = 3e-4
    units: int = 64  # first Bi-LSTM layer, per direction (each further layer has half)
    lstm_layers: int = 1  # 2 layers: validation accuracy 0.798 against 0.803 for 1
    dropout: float = 0.5
    spatial_dropout: float = 0.3  # drops whole embedding channels
    # encoder model (a pretrained one's --init sets the sizes and the vocabulary)
    max_tokens: int = 64  # WordPiece tokens read, [CLS] and [SEP] included
    vocab_size: int = 8000  # WordPiece vocabulary learnt from the training texts (no --init)
    hidden_size: int = 256
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 1024
    max_positions: int = 128
    encoder_dropout: float = 0.1
    # encoder from scratch: the token embedding starts from `vectors` (tokens that are
    # whole words get their vector, dlkit.pretrained.text.token_vector_table), not at random
    encoder_vectors: bool = False
    # encoder, > 0: each batch holds texts of similar length (drawn from pools of this many
    # random batches, sorted by length) and is cut to its longest, instead of every text
    # padded to max_tokens; 0: off
    group_by_length: int = 0
    # AdamW at a constant rate, gradients clipped at norm 1; the whole encoder fine-tunes
    encoder_learning_rate: float = 1e-4
    # > 0: the encoder stays frozen this many epochs first, the output layer alone learning
    # from its features at `learning_rate` (a linear probe), then everything trains for
    # `epochs` at `encoder_learning_rate` (LP-FT: the features are not torn up by a random
    # head's first gradients)
    probe_epochs: int = 0
    text_column: str = "text"  # CSV/TSV/JSONL user data
    label_column: str = "label"
    labels: str = ""  # comma-separated class names, in id order ("" = sorted labels found)
    batch_size: int = 64
    epochs: int = 20
    learning_rate: float = 2e-3
    patience: int = 4
    max_drop: float = 1.0

    @classmethod
    def tiny(cls):
        """Seconds, not minutes: a few words of vocabulary, narrow layers, two epochs."""
        return cls(
            max_length=12,
            extra_words=50,
            units=8,
            lstm_layers=1,
            batch_size=16,
            epochs=2,
            patience=0,
            max_drop=100.0,
            max_tokens=16,
            vocab_size=100,
            hidden_size=8,
            layers=1,
            heads=2,
            intermediate_size=16,
            max_positions=16,
        )
