"""Videos through the predict pipeline: a result per frame equal to the frame's own
result as an image, an annotated video of the app's pictures, and bad videos reported in
one line while the other inputs go on. The shipped TFLite models run them (no TensorFlow
on this path)."""

import json
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, run_cli
from dlkit.errors import InvalidInputError

cv2 = pytest.importorskip("cv2")

FPS = 8.0


@pytest.fixture(scope="module")
def scenes():
    """Ten frames of held-out scenes (test cut-outs over real backgrounds), 256 px."""
    from dlkit.data.scenes import compose
    from dlkit.data.tuxpaint import find_cutouts, load_backgrounds, load_cutout, split_cutouts

    cutouts = split_cutouts(find_cutouts())["test"]
    objects = [(load_cutout(c.path), 0) for c in cutouts]
    rng = np.random.default_rng(1)
    backgrounds = load_backgrounds()
    return [compose(backgrounds, objects, rng, 256, max_objects=3).image for _ in range(10)]


def write_video(path, frames, fps=FPS):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def decoded(path):
    """The frames as the pipeline reads them (lossy codec: not the frames written)."""
    from dlkit.edge.video import VideoReader

    return [frame for _, _, frame in VideoReader(path)]


def json_lines(output):
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("app_name", ["detect", "segment", "classify"])
def test_a_video_gives_each_frame_the_result_of_that_frame_as_an_image(app_name, scenes, tmp_path):
    from dlkit.predict import Predictor
    from dlkit.registry import get_app

    clip = write_video(tmp_path / "clip.mp4", scenes)
    out = tmp_path / "out"
    result = run_cli(app_name, "predict", clip, "--json", "--out", out, "--batch-size", "4")
    assert result.exit_code == 0, result.output
    records = json_lines(result.output)
    assert [r["frame"] for r in records] == list(range(len(scenes)))
    assert [r["time"] for r in records] == [round(i / FPS, 3) for i in range(len(scenes))]
    assert {r["input"] for r in records} == {str(clip)}
    assert json.loads((out / "predictions.json").read_text()) == records

    # Each frame, decoded and given as an image, gets the same result.
    frames = decoded(clip)
    assert len(frames) == len(scenes) and frames[0].shape == scenes[0].shape
    as_images = [p.result for p in Predictor.load(get_app(app_name))(frames, batch_size=3)]
    for record, alone in zip(records, as_images):
        assert {k: v for k, v in record.items() if k not in ("input", "frame", "time")} == alone

    # The app's pictures become one video the size of the input; classify draws none.
    if app_name == "classify":
        assert sorted(p.name for p in out.iterdir()) == ["predictions.json"]
        return
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4", "predictions.json"]  # no label maps
    drawn = decoded(out / "clip.mp4")
    assert len(drawn) == len(scenes) and drawn[0].shape == scenes[0].shape
    reader = cv2.VideoCapture(str(out / "clip.mp4"))
    assert reader.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    # What is drawn is the app's picture of the frame, not the frame: boxes or an overlay.
    assert np.abs(drawn[0].astype(int) - frames[0].astype(int)).mean() > 1


def test_images_and_videos_mix_and_a_bad_video_is_skipped_in_one_line(scenes, tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    Image.fromarray(scenes[0]).save(folder / "a.png")
    write_video(folder / "b.mp4", scenes[:3])
    (folder / "c.mp4").write_text("not a video\n")
    (folder / "d.avi").write_bytes(b"")
    result = run_cli("detect", "predict", folder, "--json", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "Traceback" not in result.output
    records = json_lines(result.output)
    assert [(r["input"].rsplit("/", 1)[1], r.get("frame")) for r in records] == [
        ("a.png", None),
        ("b.mp4", 0),
        ("b.mp4", 1),
        ("b.mp4", 2),
        ("c.mp4", None),
        ("d.avi", None),
    ]
    assert "not a video OpenCV can decode" in records[4]["error"] and "empty file" in records[5]["error"]
    assert "2 inputs could not be read" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", "b.mp4", "predictions.json"]

    assert_one_line_error(run_cli("detect", "predict", folder / "c.mp4"), "not a video OpenCV can decode")


def test_without_opencv_a_video_is_a_one_line_error_naming_the_package(tmp_path, monkeypatch):
    from dlkit.edge.video import VideoReader

    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 raises ImportError
    with pytest.raises(
        InvalidInputError, match=r'clip.mp4: reading video needs OpenCV: pip install "dlkit\[video\]"'
    ):
        VideoReader(tmp_path / "clip.mp4")


def test_a_video_cut_short_by_an_error_is_never_written(tmp_path):
    from dlkit.edge.video import video_writer

    frame = np.zeros((32, 48, 3), np.uint8)
    with pytest.raises(KeyboardInterrupt):
        with video_writer(tmp_path / "v.mp4", 10) as write:
            write(frame)
            raise KeyboardInterrupt
    with video_writer(tmp_path / "none.mp4", 10):
        pass  # no frame: no file
    with video_writer(tmp_path / "ok.mp4", 10) as write:
        for _ in range(3):
            write(Image.fromarray(frame))
    assert [p.name for p in tmp_path.iterdir()] == ["ok.mp4"]
    assert len(decoded(tmp_path / "ok.mp4")) == 3


def test_a_video_predicts_on_the_edge_path_without_tensorflow(scenes, tmp_path):
    from conftest import run_without_tensorflow

    clip = write_video(tmp_path / "clip.mp4", scenes[:2])
    result = run_without_tensorflow(["segment", "predict", str(clip), "--out", str(tmp_path / "out")])
    assert result.returncode == 0 and "edge-ok" in result.stdout, result.stderr[-2000:]
    assert len(decoded(tmp_path / "out" / "clip.mp4")) == 2


def test_frames_are_batched_by_count_and_by_the_bytes_a_batch_may_hold(scenes, tmp_path):
    from dlkit.predict import Predictor
    from dlkit.registry import get_app

    clip = write_video(tmp_path / "clip.mp4", scenes[:5])
    predictor = Predictor.load(get_app("classify"))
    batches, run = [], predictor.run
    predictor.run = lambda batch: batches.append(len(batch)) or run(batch)
    first = [p.result for p in predictor.video(clip, batch_size=2)]
    assert batches == [2, 2, 1]
    batches.clear()
    predictor.raw_bytes = scenes[0].nbytes * 3 // 2  # a frame and a half
    assert [p.result for p in predictor.video(clip, batch_size=4)] == first
    assert batches == [2, 2, 1]  # the second frame of each batch crosses the limit


def test_the_python_api_gives_a_result_per_frame(scenes, tmp_path):
    import dlkit.api

    model = dlkit.api.load("detect")
    results = model.predict(write_video(tmp_path / "clip.mp4", scenes[:3]))
    assert [(r["frame"], r["time"]) for r in results] == [(0, 0.0), (1, 0.125), (2, 0.25)]
    assert all("detections" in r for r in results)
    (tmp_path / "bad.mp4").write_text("not a video\n")
    with pytest.raises(InvalidInputError, match="not a video OpenCV can decode"):
        model.predict(tmp_path / "bad.mp4")


def test_arrays_are_named_by_their_place_among_the_inputs(scenes, tmp_path):
    """Arrays have no file name: each is named by its place among the inputs given, so two
    arrays on either side of a video never share a name (and overwrite each other)."""
    import dlkit.api

    clip = write_video(tmp_path / "clip.mp4", scenes[:2])
    out = tmp_path / "out"
    results = dlkit.api.load("detect").predict([scenes[0], clip, scenes[1]], out_dir=out)
    assert [r.get("frame") for r in results] == [None, 0, 1, None]  # in the order given
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4", "image0.jpg", "image2.jpg"]
    assert not np.array_equal(
        np.asarray(Image.open(out / "image0.jpg")), np.asarray(Image.open(out / "image2.jpg"))
    )


def test_out_pointed_at_the_inputs_folder_never_overwrites_an_input(scenes, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", scenes[:2])
    Image.fromarray(scenes[0]).save(tmp_path / "photo.jpg")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    result = run_cli("detect", "predict", clip, tmp_path / "photo.jpg", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert all((tmp_path / name).read_bytes() == data for name, data in before.items())
    assert len(decoded(tmp_path / "clip_pred.mp4")) == 2
    assert Image.open(tmp_path / "photo_pred.jpg").size == (256, 256)


@pytest.mark.parametrize("size", [(143, 255), (1, 1)])
def test_odd_sides_are_padded_so_the_encoder_crops_no_pixel(size, tmp_path):
    from dlkit.edge.video import video_writer

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(3)]
    with video_writer(tmp_path / "v.mp4", 10) as write:
        for frame in frames:
            write(frame)
    back = decoded(tmp_path / "v.mp4")
    height, width = size[0] + size[0] % 2, size[1] + size[1] % 2
    assert len(back) == 3 and back[0].shape == (height, width, 3)
