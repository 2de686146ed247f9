"""Vocabularies for text models, built at training time (WordPiece with tensorflow-text,
or characters). The tokenizers that use them on device are in dlkit.edge.text (numpy)."""

from dlkit.edge.text import END, PAD, START, UNK
from dlkit.errors import DlkitError

RESERVED = [PAD, UNK, START, END]


def build_vocab(texts, tokenizer="wordpiece", vocab_size=4000, reserved=RESERVED):
    """A vocabulary learnt from `texts`: the reserved tokens first, then WordPiece pieces
    (up to about `vocab_size`) or every character seen.

    Args:
        texts: list of str, already normalised the way the model normalises input.
        tokenizer: str. "wordpiece" or "char".
        vocab_size: int. Target WordPiece vocabulary size.
        reserved: list of str. Special tokens, ids 0, 1, ... in this order.
    """
    reserved = list(reserved)
    if tokenizer == "char":
        return reserved + sorted({ch for text in texts for ch in text} - set(reserved))
    if tokenizer != "wordpiece":
        raise DlkitError(f"tokenizer must be wordpiece or char, got {tokenizer!r}")
    import tensorflow as tf
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset as bert_vocab

    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(1000)
    vocab = bert_vocab.bert_vocab_from_dataset(
        dataset,
        vocab_size=vocab_size,
        reserved_tokens=reserved,
        bert_tokenizer_params={"lower_case": False},
        learn_params={},
    )
    return list(vocab)
