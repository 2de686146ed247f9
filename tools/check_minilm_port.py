"""Checks the Keras port of MiniLM-L6 (dlkit.pretrained.bert) against the reference
implementation of the checkpoint: Hugging Face transformers' `BertModel` on PyTorch.

The reference stack is not a dlkit dependency; give a Python that has it:
    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch transformers safetensors
    python tools/check_minilm_port.py --reference-python /tmp/ref/bin/python

Both read the same safetensors file and the same token ids (dlkit's WordPiece, padded
with an attention mask); the last hidden states of every real token are compared.
Writes tools/results/minilm_port.json.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SENTENCES = [
    "The function returns a list of the items.",
    "In the beginning God created the heaven and the earth.",
    "A journey of a thousand miles begins with a single step.",
    "Café déjà vu: naïve coöperation, résumé!",
    "short",
    "Numbers like 3.14159 and 2,718 and words like tokenization and unbelievably.",
]

REFERENCE = r"""
import sys, numpy as np, torch
from transformers import BertConfig, BertModel
from safetensors.torch import load_file
folder, data = sys.argv[1], sys.argv[2]
config = BertConfig.from_json_file(folder + "/config.json")
model = BertModel(config, add_pooling_layer=False).eval()
state = {k: v for k, v in load_file(folder + "/model.safetensors").items() if not k.startswith("pooler.")}
missing, unexpected = model.load_state_dict(state, strict=False)
assert not [m for m in missing if "position_ids" not in m], missing
batch = np.load(data)
with torch.no_grad():
    out = model(
        input_ids=torch.tensor(batch["token_ids"], dtype=torch.long),
        token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
        attention_mask=torch.tensor(batch["attention_mask"], dtype=torch.long),
    ).last_hidden_state.numpy()
np.save(data.replace(".npz", "_reference.npy"), out)
from transformers import BertTokenizer
tokenizer = BertTokenizer(folder + "/vocab.txt", do_lower_case=True)
sentences = [line for line in open(data.replace(".npz", ".txt"), encoding="utf-8").read().split("\n") if line]
ids = [tokenizer.encode(s, add_special_tokens=False) for s in sentences]
open(data.replace(".npz", "_ids.json"), "w").write(__import__("json").dumps(ids))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-python", required=True, help="A Python with torch and transformers.")
    parser.add_argument("--length", type=int, default=128, help="Sequence length (the ported model's).")
    args = parser.parse_args()

    import keras

    from dlkit.edge.text import WordPiece, bert_inputs, bert_normalize
    from dlkit.layers.bert import encoder_view
    from dlkit.pretrained.text import TEXT_ENCODERS, package_folder
    from dlkit.registry import get_app

    spec = TEXT_ENCODERS["minilm_l6"]
    folder = package_folder(spec) / Path(spec.weights_file).parent
    model_dir = get_app("mlm").presets()["minilm"]()
    model = keras.saving.load_model(model_dir / "model.keras")
    vocab = (model_dir / "vocab.txt").read_text(encoding="utf-8").removesuffix("\n").split("\n")
    special = {token: vocab.index(token) for token in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")}
    tokenizer = WordPiece(vocab, unknown="[UNK]")
    rows = [bert_inputs(tokenizer.encode(bert_normalize(s)), special, args.length)[0] for s in SENTENCES]
    batch = {key: np.stack([row[key] for row in rows]) for key in rows[0]}
    ours = np.asarray(encoder_view(model).predict(batch, verbose=0))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "batch.npz"
        np.savez(data, **batch)
        data.with_suffix(".txt").write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
        subprocess.run([args.reference_python, "-c", REFERENCE, str(folder), str(data)], check=True)
        reference = np.load(Path(tmp) / "batch_reference.npy")
        reference_ids = json.loads((Path(tmp) / "batch_ids.json").read_text())
    same_ids = [tokenizer.encode(bert_normalize(s)) for s in SENTENCES] == reference_ids
    real = batch["attention_mask"].astype(bool)
    difference = np.abs(ours - reference)[real]
    result = {
        "checkpoint": spec.origin,
        "reference": "transformers BertModel (PyTorch), same safetensors, same token ids",
        "sentences": len(SENTENCES),
        "tokens": int(real.sum()),
        "max_abs_difference": float(difference.max()),
        "mean_abs_difference": float(difference.mean()),
        "hidden_state_scale": float(np.abs(reference[real]).mean()),
        "equal_to_1e-4": bool(difference.max() <= 1e-4),
        "token_ids_equal_to_transformers_BertTokenizer": same_ids,
    }
    out = Path(__file__).parent / "results" / "minilm_port.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["equal_to_1e-4"] and same_ids else 1)


if __name__ == "__main__":
    main()
