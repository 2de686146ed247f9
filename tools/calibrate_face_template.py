"""Measures the alignment template (apps/face/detector.py TEMPLATE): where the shipped
BlazeFace finds the eyes and the mouth on dlib's 55 aligned 150 x 150 faces of
examples/johns, as fractions of the side (mean and spread). Aligning a photo onto these
points reproduces dlib's crops, the ones the face descriptor was trained on.

    python tools/calibrate_face_template.py
"""

import argparse

import numpy as np

from dlkit.apps.face.detector import KEYPOINTS, detector_at, find_faces, shipped_detector
from dlkit.apps.face.faces import PEOPLE, default_folder
from dlkit.edge.image import load_image


def main():
    detector = detector_at(str(shipped_detector()))
    points = []
    for path in sorted((default_folder() / PEOPLE).glob("John_*/*.jpg")):
        image = load_image(path)
        faces = find_faces(detector, image)
        if faces:
            points.append(faces[0].keypoints / np.array(image.shape[1::-1], np.float32))
    points = np.stack(points)
    print(f"{len(points)} faces")
    for name in ("right_eye", "left_eye", "mouth"):
        k = KEYPOINTS.index(name)
        mean, spread = points[:, k].mean(0), points[:, k].std(0)
        print(f'"{name}": ({mean[0]:.4f}, {mean[1]:.4f}),  # spread {spread[0]:.4f}, {spread[1]:.4f}')


if __name__ == "__main__":
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    main()
