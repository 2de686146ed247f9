"""The face gallery file: matching, refusals, and no lost entry under kills and races."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dlkit.apps.face.gallery import FORMAT, Gallery, editing
from dlkit.errors import DlkitError, InvalidInputError

META = {"embedder_id": "net-a", "embedding_size": 4}


def unit(*values):
    vector = np.asarray(values, np.float32)
    return vector / np.linalg.norm(vector)


def test_enrol_match_remove_round_trip(tmp_path):
    path = tmp_path / "gallery.json"
    with editing(path) as gallery:
        gallery.add("ada", [unit(1, 0, 0, 0), unit(1, 0.1, 0, 0)], META)
        gallery.add("bob", [unit(0, 1, 0, 0)], META)
    with editing(path) as gallery:
        gallery.add("ada", [unit(1, 0, 0.1, 0)], META)  # a name again: its photos are added
    loaded = Gallery.load(path)
    assert {name: len(rows) for name, rows in loaded.people.items()} == {"ada": 3, "bob": 1}
    name, distance = loaded.match(unit(0.1, 1, 0, 0))
    assert name == "bob" and distance == pytest.approx(
        np.linalg.norm(unit(0.1, 1, 0, 0) - unit(0, 1, 0, 0)), abs=1e-6
    )
    with editing(path) as gallery:
        gallery.add("ada", [unit(0, 0, 1, 0)], META, replace=True)
        gallery.remove("bob")
    loaded = Gallery.load(path)
    assert list(loaded.people) == ["ada"] and len(loaded.people["ada"]) == 1
    with pytest.raises(DlkitError, match="no 'carl'"):
        loaded.remove("carl")
    assert Gallery.load(tmp_path / "none.json").match(unit(1, 0, 0, 0)) == (None, float("inf"))


def test_a_gallery_of_another_embedder_is_refused(tmp_path):
    path = tmp_path / "gallery.json"
    with editing(path) as gallery:
        gallery.add("ada", [unit(1, 0, 0, 0)], META)
    with pytest.raises(DlkitError, match="not comparable"):
        with editing(path) as gallery:
            gallery.add("bob", [unit(0, 1, 0, 0)], {**META, "embedder_id": "net-b"})
    assert list(Gallery.load(path).people) == ["ada"]  # the refused edit changed nothing


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a face gallery"),
        (b"\xff\xfe", "not a face gallery"),
        (b'{"format": "other"}', "format"),
        (json.dumps({"format": FORMAT, "version": 99}).encode(), "newer"),
        (
            json.dumps({"format": FORMAT, "version": 1, "dimension": 4, "people": {"a": [[1, 2]]}}).encode(),
            "'a'",
        ),
    ],
)
def test_a_bad_gallery_file_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "gallery.json"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=message):
        Gallery.load(path)


ENROL_FOREVER = """
import sys, numpy as np
from dlkit.apps.face.gallery import editing
meta = {"embedder_id": "net-a", "embedding_size": 4}
for i in range(100000):
    with editing(sys.argv[1]) as gallery:
        gallery.add(f"{sys.argv[2]}{i}", [np.full(4, 0.5, np.float32)], meta)
    print(f"{sys.argv[2]}{i}", flush=True)
"""


def enrolled(process, count):
    names = []
    while len(names) < count:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        names.append(line.strip())
    return names


def test_no_entry_is_lost_when_a_writer_is_killed(tmp_path):
    path = tmp_path / "gallery.json"
    rng = np.random.default_rng(0)
    confirmed = []
    for round_ in range(3):
        process = subprocess.Popen(
            [sys.executable, "-c", ENROL_FOREVER, str(path), f"r{round_}-"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        confirmed += enrolled(process, int(rng.integers(5, 30)))
        time.sleep(float(rng.uniform(0, 0.05)))  # somewhere inside a later write
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        process.stderr.close()
        gallery = Gallery.load(path)  # never torn
        assert set(confirmed) <= set(gallery.people)
    with editing(path) as gallery:  # the next write sweeps what the killed writers left
        gallery.add("last", [unit(1, 1, 1, 1)], META)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert set(confirmed) | {"last"} <= set(Gallery.load(path).people)


def test_two_writers_at_once_both_land(tmp_path):
    path = tmp_path / "gallery.json"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", ENROL_FOREVER, str(path), prefix],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in ("a", "b")
    ]
    names = [enrolled(process, 15) for process in processes]
    for process in processes:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        process.stderr.close()
    people = set(Gallery.load(path).people)
    assert set(names[0]) | set(names[1]) <= people
    assert os.path.exists(path)
