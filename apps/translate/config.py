"""Configuration of the translate app (no TensorFlow import)."""

from dataclasses import dataclass
from typing import ClassVar

from dlkit.config import AT_LEAST_ONE, NON_NEGATIVE, TrainConfig

# Defaults per model for the training settings left at 0. The sentence model trains at a
# constant, lower rate: at 2e-3 the Bible model stayed at the unigram level for 7 epochs.
MODEL_DEFAULTS = {
    "attention": {"batch_size": 256, "epochs": 6, "learning_rate": 3e-3},
    "seq2seq": {"batch_size": 64, "epochs": 20, "learning_rate": 5e-4},
}


def setting(config, kind, name):
    """`config.<name>`, or the default of model `kind` when it is left at 0."""
    return getattr(config, name) or MODEL_DEFAULTS[kind][name]


@dataclass
class Config(TrainConfig):
    """Training and export settings; every field can be set with `--set key=value`.

    Two models: `attention` is the course's character-level date model (fixed input
    length `input_length`, fixed output length `output_length`, one static graph on
    device); `seq2seq` is an encoder-decoder for sentences (subword tokens, teacher
    forcing, greedy or beam search on device). `auto` picks `seq2seq` for the Bible
    corpus and TFDS translation sets, `attention` otherwise.
    """

    LIMITS: ClassVar[dict] = {
        **dict.fromkeys(
            (
                "input_length",
                "output_length",
                "embedding_dim",
                "encoder_units",
                "decoder_units",
                "attention_units",
                "train_size",
                "val_size",
                "test_size",
                "vocab_size",
                "max_tokens",
                "seq_embedding_dim",
                "seq_units",
                "beam_width",
            ),
            AT_LEAST_ONE,
        ),
        # 0: the model's own default (MODEL_DEFAULTS)
        **dict.fromkeys(("batch_size", "epochs", "learning_rate"), NON_NEGATIVE),
    }

    model: str = "auto"  # attention | seq2seq | auto
    lowercase: bool = True  # inputs are lowercased on device and in training
    # attention (date) model
    input_length: int = 40  # Tx: the longest supported full date (pt/es) is 36 characters
    output_length: int = 10  # Ty: YYYY-MM-DD
    embedding_dim: int = 32
    encoder_units: int = 64  # per direction of the pre-attention Bi-LSTM
    decoder_units: int = 128  # post-attention LSTM
    attention_units: int = 32
    train_size: int = 120_000  # generated pairs (offline date data)
    val_size: int = 4_000
    test_size: int = 10_000
    # seq2seq model
    tokenizer: str = "wordpiece"  # wordpiece | char
    vocab_size: int = 4000
    max_tokens: int = 30  # pairs longer than this (either side) are left out
    seq_embedding_dim: int = 96
    seq_units: int = 192
    beam_width: int = 4
    length_alpha: float = 0.7
    # training; 0 means the model's own default (see MODEL_DEFAULTS)
    batch_size: int = 0
    epochs: int = 0
    learning_rate: float = 0.0
    decay_epochs: int = 4  # date model: learning rate halves every this many epochs (0 = constant)
    val_split: float = 0.05  # user TSV without split files, and the Bible pairs
    test_split: float = 0.05
    max_drop: float = 0.2  # export fails when TFLite exact match (or BLEU) drops more (points)

    @classmethod
    def tiny(cls):
        """Seconds, not minutes: few pairs, narrow layers, two epochs (one to interrupt)."""
        return cls(
            embedding_dim=8,
            encoder_units=8,
            decoder_units=16,
            attention_units=8,
            train_size=256,
            val_size=64,
            test_size=64,
            vocab_size=200,
            max_tokens=16,
            seq_embedding_dim=16,
            seq_units=16,
            beam_width=2,
            batch_size=32,
            epochs=2,
            max_drop=100.0,
        )
