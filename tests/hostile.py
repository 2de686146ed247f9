"""Hostile inputs, written by the tests themselves (no binaries in git): for every input
kind of the app registry, the files and texts a careless or malicious user can hand to
`dlkit <app> predict`, each with what dlkit must do with it.

Outcomes:
    ok: a result, exit 0 (unusual but valid input).
    error: a one-line error naming the input, exit 2 (a skip line in a batch).
    clean: either of the two, but never a traceback, a hang or a partial output.
"""

import io
import struct
import wave
from pathlib import Path

import numpy as np
from PIL import Image


def _png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _wav(path, samples, rate=16000, channels=1, width=2):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(samples.tobytes())
    return path


def _float_wav(path, samples, rate=16000):
    """A 32-bit float WAV (format 3), which the wave module cannot write."""
    data = np.asarray(samples, "<f4").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
    header += (
        struct.pack("<IHHIIHH", 16, 3, 1, rate, rate * 4, 4, 32) + b"data" + struct.pack("<I", len(data))
    )
    path.write_bytes(header + data)
    return path


def hostile_images(root):
    """[(case, path, outcome)] of image files."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (48, 64, 3), np.uint8))
    cases = []

    def add(case, name, outcome, data=None, image=None, **save):
        path = root / name
        if image is not None:
            image.save(path, **save)
        elif data is not None:
            path.write_bytes(data)
        cases.append((case, path, outcome))

    add("zero-byte file", "empty.png", "error", data=b"")
    png = _png_bytes(photo)
    add("truncated PNG", "truncated.png", "error", data=png[: len(png) // 2])
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG")
    add("truncated JPEG", "truncated.jpg", "error", data=buffer.getvalue()[:200])
    add("text named .jpg", "notes.jpg", "error", data=b"just some text\n")
    add("WAV named .png", "sound.png", "error", data=b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    add("random bytes", "noise.webp", "error", data=rng.integers(0, 255, 4096, np.uint8).tobytes())
    add(
        "decompression bomb (20000 x 20000 header)", "bomb.png", "error", image=Image.new("1", (20000, 20000))
    )
    add("16-bit greyscale", "deep.png", "ok", image=Image.fromarray(np.full((20, 30), 40000, np.uint16)))
    add("1-bit", "bilevel.png", "ok", image=Image.fromarray(rng.integers(0, 2, (20, 30)).astype(bool)))
    add("CMYK JPEG", "cmyk.jpg", "ok", image=photo.convert("CMYK"))
    add("palette with transparency", "palette.png", "ok", image=photo.convert("P"), transparency=0)
    add("greyscale with alpha", "la.png", "ok", image=photo.convert("LA"))
    add("1 x 1 pixel", "dot.png", "ok", image=Image.new("RGB", (1, 1), (200, 10, 10)))
    add("4000 x 2 strip", "strip.png", "ok", image=Image.new("RGB", (4000, 2), (10, 200, 10)))
    frames = [Image.new("RGB", (32, 32), color) for color in ((255, 0, 0), (0, 0, 255))]
    add("animated GIF", "animated.gif", "ok", image=frames[0], save_all=True, append_images=frames[1:])
    add("32-bit float TIFF", "float.tiff", "clean", image=Image.fromarray(rng.random((20, 30), np.float32)))
    add("EXIF-rotated JPEG", "rotated.jpg", "ok", image=photo, exif=_rotated_exif())
    (root / "folder.jpg").mkdir(exist_ok=True)
    cases.append(("a folder named like an image", root / "folder.jpg", "error"))
    cases.append(("a missing file", root / "missing.png", "error"))
    return cases + hostile_videos(root)


def hostile_videos(root):
    """[(case, path, outcome)] of video files (none without OpenCV, which reads them)."""
    try:
        import cv2
    except ImportError:
        return []

    def video(name, frames, fps=10):
        path = root / name
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, frames[0].shape[1::-1])
        for frame in frames:
            writer.write(frame)
        writer.release()
        return path

    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (48, 64, 3), np.uint8) for _ in range(3)]
    whole = video("three.mp4", frames)
    (root / "truncated.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (root / "notes.mp4").write_text("not a video\n")
    (root / "empty.avi").write_bytes(b"")
    (root / "picture.mov").write_bytes(_png_bytes(Image.new("RGB", (4, 4))))
    (root / "folder.mkv").mkdir(exist_ok=True)
    return [
        ("a 3-frame MP4", whole, "ok"),
        ("a 1-frame 17 x 9 video", video("odd.avi", [frames[0][:9, :17]]), "ok"),
        ("a truncated MP4", root / "truncated.mp4", "clean"),
        ("text named .mp4", root / "notes.mp4", "error"),
        ("zero-byte .avi", root / "empty.avi", "error"),
        ("PNG named .mov (FFmpeg reads it as a 1-frame video)", root / "picture.mov", "clean"),
        ("a folder named like a video", root / "folder.mkv", "error"),
        ("a missing video", root / "missing.webm", "error"),
    ]


def _rotated_exif():
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    return exif


def hostile_audio(root):
    """[(case, path, outcome)] of audio files."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    speechy = (rng.normal(0, 0.1, 16000 * 2) * 32767).astype(np.int16)
    cases = [
        ("zero-byte file", root / "empty.wav", "error"),
        ("text named .wav", root / "notes.wav", "error"),
        ("WAV header without data chunk", root / "header.wav", "error"),
        ("PNG named .wav", root / "picture.wav", "error"),
        ("a missing file", root / "missing.wav", "error"),
    ]
    (root / "empty.wav").write_bytes(b"")
    (root / "notes.wav").write_text("not audio\n")
    (root / "header.wav").write_bytes(
        b"RIFF\x24\x00\x00\x00WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    )
    (root / "picture.wav").write_bytes(_png_bytes(Image.new("RGB", (4, 4))))
    cases += [
        # digital silence: no detection, or refused as a broken recording; either is fair
        ("silence, 3 s", _wav(root / "silent.wav", np.zeros(48000, np.int16)), "clean"),
        ("one sample", _wav(root / "one.wav", np.zeros(1, np.int16)), "clean"),
        ("8 kHz", _wav(root / "low_rate.wav", speechy[::2], rate=8000), "ok"),
        ("44.1 kHz stereo", _wav(root / "stereo.wav", np.repeat(speechy, 2), rate=44100, channels=2), "ok"),
        ("8-bit unsigned", _wav(root / "u8.wav", (speechy // 256 + 128).astype(np.uint8), width=1), "ok"),
        (
            "float with NaN and Inf",
            _float_wav(root / "nan.wav", np.r_[np.zeros(8000), np.nan, np.inf, -np.inf]),
            "clean",
        ),
        ("clipping at full scale", _wav(root / "loud.wav", np.full(32000, 32767, np.int16)), "ok"),
        ("folder named .wav", root / "folder.wav", "error"),
    ]
    (root / "folder.wav").mkdir(exist_ok=True)
    return cases


def hostile_texts():
    """[(case, text, outcome)] of text inputs given as arguments."""
    return [
        ("empty", "", "error"),
        ("whitespace only", " \t ", "error"),
        ("10,000 characters", "x" * 10_000, "clean"),
        ("10,000 words", "good " * 10_000, "clean"),
        ("control characters", "a\x00b\x07c\x1b[31m", "clean"),
        ("emoji", "😀 🎉 👍", "clean"),
        ("right-to-left", "هذا فيلم رائع", "clean"),
        ("only punctuation", "?!.,;", "clean"),
        ("a surrogate escape", "caf\udce9", "clean"),
    ]


def hostile_text_files(root):
    """[(case, path, outcome)] of files given to `--file`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    (root / "empty.txt").write_bytes(b"")
    (root / "binary.txt").write_bytes(bytes(range(256)))
    (root / "blank_lines.txt").write_text("\n\n  \n")
    (root / "folder.txt").mkdir(exist_ok=True)
    return [
        ("not UTF-8", root / "latin1.txt", "error"),
        ("empty file", root / "empty.txt", "error"),
        ("binary file", root / "binary.txt", "error"),
        ("blank lines only", root / "blank_lines.txt", "error"),
        ("a folder", root / "folder.txt", "error"),
        ("a missing file", root / "missing.txt", "error"),
    ]


def hostile_training_data(app_name, root):
    """[(case, --data path)] of user data that must stop `train` with one line before any
    epoch, for the apps whose data is text or audio (image apps: a corrupt file in their
    own sample data, test_hostile)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "sentiment": {
            "header only": ("header_only.csv", b"text,label\n"),
            "not UTF-8": ("latin1.csv", "caf\xe9,good\n".encode("latin-1")),
            "an unclosed quote": ("quote.csv", b'text,label\n"unclosed,good\nfine,bad\n'),
            "no label column": ("nolabel.csv", b"text\nhello\n"),
            "a JSON line that is not an object": ("bad.jsonl", b'{"text": "a", "label": "x"}\n{bad json\n'),
            "binary": ("binary.csv", bytes(range(256))),
        },
        "mlm": {
            "empty": ("empty.txt", b""),
            "blank lines only": ("blank.txt", b"\n \n\t\n"),
            "not UTF-8": ("latin1.txt", "caf\xe9 au lait, tr\xe8s bien\n".encode("latin-1")),
            "binary": ("binary.txt", bytes(range(256))),
            "one paragraph": ("one.txt", b"Too little text to hold out any document.\n"),
            "a .csv, not text": ("table.csv", b"a,b\n1,2\n"),
        },
        "translate": {
            "one pair": ("one.tsv", b"a\tb\n"),
            "binary": ("binary.tsv", bytes(range(256))),
            "no tab": ("notab.tsv", b"3 May 1979 1979-05-03\n" * 40),
        },
    }.get(app_name, {})
    cases = []
    for case, (name, data) in files.items():
        (root / name).write_bytes(data)
        cases.append((case, root / name))
    if app_name == "trigger":
        folder = root / "clips"
        for sub in ("positives", "negatives", "backgrounds"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "positives" / "word.wav").write_text("not audio")
        cases.append(("only an unreadable recording of the word", folder))
        recordings = root / "recordings_only" / "recordings"
        recordings.mkdir(parents=True, exist_ok=True)
        _wav(recordings / "talk.wav", np.zeros(16000, np.int16))
        (recordings / "talk.txt").write_text("1.0\nsoon\n")
        cases.append(("a label file with a word for a time", root / "recordings_only"))
    return cases


class Tally:
    """Counts of hostile inputs tried, by app and verb, for the test summary."""

    def __init__(self):
        self.inputs = 0
        self.failures = 0
        self.verbs = set()

    def record(self, app, verb, failed, inputs=1):
        self.inputs += inputs
        self.failures += int(failed)
        self.verbs.add((app, verb))

    def state(self):
        """What a pytest-xdist worker sends its controller (JSON-able)."""
        return {"inputs": self.inputs, "failures": self.failures, "verbs": sorted(self.verbs)}

    def merge(self, state):
        self.inputs += state["inputs"]
        self.failures += state["failures"]
        self.verbs.update(tuple(verb) for verb in state["verbs"])

    def line(self):
        apps = len({app for app, _ in self.verbs})
        return (
            f"hostile inputs: {self.inputs} tried over {len(self.verbs)} app verbs ({apps} apps), "
            f"{self.failures} failed"
        )


TALLY = Tally()


# ---------------------------------------------------------------- image datasets


def _yolo_records(folder):
    """{split: [(image name, [(class, x0, y0, x1, y1) in pixels])]} of a sample YOLO folder."""
    records = {}
    for split in ("train", "val", "test"):
        records[split] = []
        for image in sorted((folder / "images" / split).glob("*.png")):
            size = Image.open(image).size
            rows = []
            for line in (folder / "labels" / split / f"{image.stem}.txt").read_text().split("\n"):
                if line.strip():
                    cls, cx, cy, w, h = (float(v) for v in line.split())
                    x0, y0 = (cx - w / 2) * size[0], (cy - h / 2) * size[1]
                    rows.append((int(cls), x0, y0, x0 + w * size[0], y0 + h * size[1]))
            records[split].append((image, size, rows))
    return records


def _write_coco(folder, records, names):
    """The sample detections as a COCO folder: annotations/instances_<split>.json + <split>/."""
    import json
    import shutil

    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    ann_id = 1
    for split, items in records.items():
        (folder / split).mkdir(exist_ok=True)
        images, annotations = [], []
        for image_id, (image, (w, h), rows) in enumerate(items, start=1):
            shutil.copy(image, folder / split / image.name)
            images.append({"id": image_id, "file_name": image.name, "width": w, "height": h})
            for cls, x0, y0, x1, y1 in rows:
                bbox = [x0, y0, x1 - x0, y1 - y0]
                polygon = [x0, y0, x1, y0, x1, y1, x0, y1]
                annotations.append(
                    {
                        "id": ann_id,
                        "image_id": image_id,
                        "category_id": cls + 1,
                        "bbox": bbox,
                        "area": bbox[2] * bbox[3],
                        "segmentation": [polygon],
                        "iscrowd": 0,
                    }
                )
                ann_id += 1
        categories = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
        document = {"images": images, "annotations": annotations, "categories": categories}
        (folder / "annotations" / f"instances_{split}.json").write_text(json.dumps(document))
    return folder


def _write_voc(folder, records, names):
    """The sample detections as a VOC folder: Annotations/*.xml, JPEGImages/, ImageSets/Main/."""
    import shutil

    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for split, items in records.items():
        stems = []
        for image, (w, h), rows in items:
            shutil.copy(image, folder / "JPEGImages" / image.name)
            objects = "".join(
                f"<object><name>{names[cls]}</name><bndbox><xmin>{x0:.1f}</xmin><ymin>{y0:.1f}</ymin>"
                f"<xmax>{x1:.1f}</xmax><ymax>{y1:.1f}</ymax></bndbox></object>"
                for cls, x0, y0, x1, y1 in rows
            )
            xml = (
                f"<annotation><filename>{image.name}</filename><size><width>{w}</width>"
                f"<height>{h}</height><depth>3</depth></size>{objects}</annotation>"
            )
            (folder / "Annotations" / f"{image.stem}.xml").write_text(xml)
            stems.append(image.stem)
        (folder / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    (folder / "labels.txt").write_text("\n".join(names) + "\n")
    return folder


def _edit_json(path, edit):
    import json

    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))


# A YAML "billion laughs": nine levels of ten aliases, 10^9 names once expanded.
YAML_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)


def hostile_image_datasets(app_name, root, sample):
    """[(case, --data path, outcome, named)] of datasets for `detect` and `segment`, made
    from the app's sample data in `sample` (the `--data` value the contract kit trained on).

    outcome "error": train, evaluate and export stop with one line naming `named`, before
    any work; "skip": the dataset loads, and the bad file or row is reported by `named`;
    "clean": it loads; "train-only": it loads for training with the bad part named, but a
    model trained on other data may refuse it (classes named otherwise), in one line.
    """

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    cases = []

    def copy(name):
        """A copy of the sample dataset's folder (`sample` may be its data.yaml)."""
        folder = Path(sample).parent if Path(sample).is_file() else Path(sample)
        return copy_tree(folder, root / name)

    if app_name == "detect":
        names = ["red", "blue"]
        records = _yolo_records(Path(sample).parent)

        def yolo(name, yaml_text):
            folder = copy(name)
            (folder / "data.yaml").write_text(yaml_text)
            cases.append((f"data.yaml: {name.replace('_', ' ')}", folder / "data.yaml", "error", "data.yaml"))

        yolo("not_yaml", "names: [red, blue\ntrain: {\n")
        yolo("names_a_number", "path: .\ntrain: images/train\nval: images/val\nnames: 7\n")
        yolo("names_twice", "path: .\ntrain: images/train\nval: images/val\nnames: [red, red]\n")
        yolo(
            "a_missing_train_folder", "path: .\ntrain: images/nowhere\nval: images/val\nnames: [red, blue]\n"
        )
        yolo("no_training_images", "path: .\ntrain: labels/train\nval: images/val\nnames: [red, blue]\n")
        yolo("a billion laughs", YAML_BOMB + "names: *i\ntrain: images/train\n")
        yolo("binary", bytes(range(256)).decode("latin-1"))

        folder = copy("bad_rows")
        label = folder / "labels" / "train" / f"{records['train'][0][0].stem}.txt"
        with label.open("a") as f:
            f.write("0 nan 0.5 0.1 0.1\n1 0.5 inf 0.1 0.1\n0 1.7 0.5 0.1 0.1\n9 0.5 0.5 0.1 0.1\n")
            f.write("one 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n0 0.5 0.5 0 0.2\n-1 0.5 0.5 0.1 0.1\n")
        cases.append(("YOLO rows: NaN, inf, out of range, unknown class, words", folder, "skip", label.name))
        folder = copy("binary_label")
        label = folder / "labels" / "train" / f"{records['train'][1][0].stem}.txt"
        label.write_bytes(bytes(range(256)) * 4)
        cases.append(("a binary YOLO label file", folder, "skip", label.name))

        coco = _write_coco(root / "coco", records, names)

        def coco_case(name, edit, outcome, named):
            folder = copy_tree(coco, root / name)
            _edit_json(folder / "annotations" / "instances_train.json", edit)
            cases.append((f"COCO: {name.replace('_', ' ')}", folder, outcome, named))

        coco_case("no_images_key", lambda d: d.pop("images"), "error", "instances_train.json")
        coco_case("images_a_dict", lambda d: d.update(images={"a": 1}), "error", "instances_train.json")
        coco_case(
            "a_category_without_name",
            lambda d: d["categories"][0].pop("name"),
            "error",
            "instances_train.json",
        )
        coco_case(
            "an_image_without_file_name",
            lambda d: d["images"][0].pop("file_name"),
            "skip",
            "image 1: no file_name",
        )
        coco_case(
            "an_image_of_width_0", lambda d: d["images"][0].update(width=0), "skip", "image 1: size 0x64"
        )
        coco_case(
            "a_bbox_of_words",
            lambda d: d["annotations"][0].update(bbox=["a", "b", "c", "d"]),
            "skip",
            d_name(records, 0),
        )
        coco_case(
            "a_bbox_of_three_numbers",
            lambda d: d["annotations"][0].update(bbox=[1, 2, 3]),
            "skip",
            d_name(records, 0),
        )
        coco_case(
            "an_image_that_does_not_exist",
            lambda d: d["images"][0].update(file_name="gone.png"),
            "skip",
            "gone.png",
        )
        coco_case(
            "a_file_name_outside_the_folder",
            lambda d: d["images"][0].update(file_name="../../../../etc/passwd"),
            "skip",
            "passwd",
        )
        folder = copy_tree(coco, root / "not_json")
        (folder / "annotations" / "instances_train.json").write_text("{not json")
        cases.append(("COCO: not JSON", folder, "error", "instances_train.json"))
        folder = copy_tree(coco, root / "nested_json")
        (folder / "annotations" / "instances_train.json").write_text("[" * 100_000 + "]" * 100_000)
        cases.append(("COCO: JSON nested 100,000 deep", folder, "error", "instances_train.json"))

        voc = _write_voc(root / "voc", records, names)
        stem = records["train"][0][0].stem

        def voc_case(name, xml, outcome="skip", named=f"{stem}.xml"):
            folder = copy_tree(voc, root / name)
            (folder / "Annotations" / f"{stem}.xml").write_bytes(xml)
            cases.append((f"VOC: {name.replace('_', ' ')}", folder, outcome, named))

        voc_case("not_XML", b"<annotation><filename>")
        voc_case("no_size", f"<annotation><filename>{stem}.png</filename></annotation>".encode())
        voc_case(
            "width_0",
            f"<annotation><filename>{stem}.png</filename><size><width>0</width><height>64</height></size><object><name>red</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>".encode(),
        )
        voc_case("no_filename", b"<annotation><size><width>64</width><height>64</height></size></annotation>")
        voc_case(
            "an_unknown_class_and_a_box_outside",
            f"<annotation><filename>{stem}.png</filename><size><width>64</width><height>64</height></size><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object><object><name>red</name><bndbox><xmin>-50</xmin><ymin>1</ymin><xmax>900</xmax><ymax>9</ymax></bndbox></object></annotation>".encode(),
        )
        voc_case(
            "an_entity_bomb",
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]><annotation><filename>&h;</filename></annotation>',
        )
        folder = copy_tree(voc, root / "voc_all_broken")
        for xml in (folder / "Annotations").glob("*.xml"):
            xml.write_text("<annotation>")
        cases.append(("VOC: every annotation unreadable", folder, "error", "voc_all_broken"))
    if app_name == "segment":
        sample = Path(sample)
        first = sorted((sample / "masks" / "train").glob("*.png"))[0].name

        def folder_case(name, edit, outcome, named):
            folder = copy(name)
            edit(folder)
            cases.append((f"masks: {name.replace('_', ' ')}", folder, outcome, named))

        def mask(folder):
            return folder / "masks" / "train" / first

        folder_case(
            "a_truncated_mask", lambda f: mask(f).write_bytes(mask(f).read_bytes()[:60]), "skip", first
        )
        folder_case("a_text_file_as_mask", lambda f: mask(f).write_text("0 1 2"), "skip", first)
        folder_case(
            "a_class_id_the_labels_lack",
            lambda f: Image.fromarray(np.full((48, 48), 7, np.uint8), "L").save(mask(f)),
            "skip",
            first,
        )
        folder_case(
            "a_16_bit_mask_with_id_40000",
            lambda f: Image.fromarray(np.full((48, 48), 40000, np.uint16)).save(mask(f)),
            "skip",
            first,
        )
        folder_case("a_mask_bomb", lambda f: Image.new("1", (20000, 20000)).save(mask(f)), "skip", first)
        folder_case(
            "a_truncated_image",
            lambda f: (f / "images" / "train" / first).write_bytes(b"\x89PNG\r\n\x1a\n"),
            "skip",
            first,
        )
        folder_case(
            "labels_txt_not_utf8",
            lambda f: (f / "labels.txt").write_bytes(b"back\xffground\nred\n"),
            "error",
            "labels.txt",
        )
        folder_case(
            "labels_txt_one_name",
            lambda f: (f / "labels.txt").write_text("background\n"),
            "error",
            "labels.txt",
        )
        folder_case(
            "labels_txt_a_name_twice",
            lambda f: (f / "labels.txt").write_text("background\nred\nred\n"),
            "error",
            "labels.txt",
        )

        def no_labels_and_a_broken_mask(f):
            (f / "labels.txt").unlink()
            mask(f).write_bytes(b"not a png")

        folder_case("no_labels_txt_and_a_broken_mask", no_labels_and_a_broken_mask, "train-only", first)

        def all_broken(f):
            for path in (f / "masks").rglob("*.png"):
                path.write_bytes(b"")

        folder_case("every_mask_broken", all_broken, "error", "every_mask_broken")

        # COCO polygons made from the sample masks (each class's pixels as one rectangle).
        records = {}
        for split in ("train", "val", "test"):
            records[split] = []
            for image in sorted((sample / "images" / split).glob("*.png")):
                labels = np.asarray(Image.open(sample / "masks" / split / image.name))
                rows = []
                for cls in (1, 2):
                    ys, xs = np.nonzero(labels == cls)
                    if len(xs):
                        rows.append(
                            (cls - 1, float(xs.min()), float(ys.min()), xs.max() + 1.0, ys.max() + 1.0)
                        )
                records[split].append((image, tuple(int(n) for n in labels.shape[::-1]), rows))
        coco = _write_coco(root / "coco", records, ["red", "blue"])

        def coco_case(name, edit, outcome, named):
            folder = copy_tree(coco, root / name)
            _edit_json(folder / "annotations" / "instances_train.json", edit)
            cases.append((f"COCO masks: {name.replace('_', ' ')}", folder, outcome, named))

        coco_case(
            "a_polygon_of_three_numbers",
            lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3]]),
            "skip",
            "annotation 1",
        )
        coco_case(
            "an_RLE_of_words",
            lambda d: d["annotations"][0].update(segmentation={"counts": "zz", "size": "x"}),
            "skip",
            "annotation 1",
        )
        coco_case(
            "a_segmentation_that_is_a_number",
            lambda d: d["annotations"][0].update(segmentation=5),
            "skip",
            "annotation 1",
        )
        coco_case(
            "a_size_of_a_billion_pixels_square",
            lambda d: d["images"][0].update(width=10**9, height=10**9),
            "skip",
            "image 1",
        )
        coco_case("an_id_that_is_a_path", lambda d: d["images"][0].update(id="../../escaped"), "clean", None)
        coco_case("an_area_of_words", lambda d: d["annotations"][0].update(area="big"), "clean", None)
        coco_case(
            "a_category_id_that_is_a_list",
            lambda d: d["annotations"][0].update(category_id=[1]),
            "error",
            "instances_train.json",
        )
    return cases


def copy_tree(source, target):
    import shutil

    if not target.exists():
        shutil.copytree(source, target)
    return target


def d_name(records, index):
    """The file name of the training split's `index`-th sample image."""
    return records["train"][index][0].name


# ---------------------------------------------------------------- archives


def hostile_archives(root, folder):
    """[(case, archive path, outside)] of crafted archives that must be refused whole, in
    one line naming them, writing nothing (`outside`: a path a careless unpacker would
    write, or None). `folder` is a good dataset folder whose files fill them out."""
    import tarfile
    import zipfile

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    escape = root / "escaped.txt"
    cases = []

    def zipped(name, extra):
        path = root / name
        with zipfile.ZipFile(path, "w") as archive:
            for file in files:
                archive.write(file, f"data/{file.relative_to(folder)}")
            extra(archive)
        return path

    def tarred(name, extra):
        path = root / name
        with tarfile.open(path, "w:gz") as archive:
            archive.add(folder, "data")
            extra(archive)
        return path

    def tar_member(archive, name, kind=tarfile.REGTYPE, data=b"x", link=""):
        info = tarfile.TarInfo(name)
        info.type, info.size, info.linkname = kind, len(data) if kind == tarfile.REGTYPE else 0, link
        archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

    relative = f"../{escape.name}"
    cases.append(
        ("zip: a member named ../", zipped("dotdot.zip", lambda a: a.writestr(relative, "x")), escape)
    )
    cases.append(
        ("zip: an absolute member", zipped("absolute.zip", lambda a: a.writestr(str(escape), "x")), escape)
    )

    def zip_symlink(archive):
        info = zipfile.ZipInfo("data/link")
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "/etc/passwd")

    cases.append(("zip: a symbolic link", zipped("symlink.zip", zip_symlink), None))
    cases.append(
        (
            "zip: a bomb (300 MB of zeros)",
            zipped(
                "bomb.zip",
                lambda a: a.writestr(
                    zipfile.ZipInfo("data/zeros.bin"), bytes(300_000_000), compress_type=zipfile.ZIP_DEFLATED
                ),
            ),
            None,
        )
    )
    cases.append(
        ("tar: a member named ../", tarred("dotdot.tar.gz", lambda a: tar_member(a, relative)), escape)
    )
    cases.append(
        (
            "tar: a symbolic link out",
            tarred("symlink.tgz", lambda a: tar_member(a, "data/x", tarfile.SYMTYPE, link=str(escape))),
            None,
        )
    )
    cases.append(
        (
            "tar: a hard link",
            tarred("hardlink.tgz", lambda a: tar_member(a, "data/h", tarfile.LNKTYPE, link="/etc/passwd")),
            None,
        )
    )
    cases.append(
        ("tar: a device", tarred("device.tgz", lambda a: tar_member(a, "data/dev", tarfile.CHRTYPE)), None)
    )
    cases.append(
        ("tar: a pipe", tarred("fifo.tgz", lambda a: tar_member(a, "data/fifo", tarfile.FIFOTYPE)), None)
    )
    truncated = root / "truncated.zip"
    truncated.write_bytes(zipped("whole.zip", lambda a: None).read_bytes()[:300])
    cases.append(("zip: truncated", truncated, None))
    stored = zipped("stored.zip", lambda a: a.writestr("data/zzz.txt", b"abcdefgh" * 512))
    data = bytearray(stored.read_bytes())
    at = bytes(data).index(b"abcdefgh" * 64)
    data[at + 100] ^= 0xFF  # the member's bytes, not its header: found only when unpacked
    corrupt = root / "corrupt.zip"
    corrupt.write_bytes(bytes(data))
    cases.append(("zip: a member whose bytes fail their CRC", corrupt, None))
    (root / "text.tar.gz").write_text("not an archive\n")
    cases.append(("a text file named .tar.gz", root / "text.tar.gz", None))
    with zipfile.ZipFile(root / "empty.zip", "w"):
        pass
    cases.append(("an empty zip", root / "empty.zip", None))
    return cases
