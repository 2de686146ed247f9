"""Datasets given as archives: unpacked once into the cache and read like their folder;
crafted archives (members outside the folder, links, devices, bombs) refused whole."""

import zipfile

import hostile
import pytest

from conftest import run_cli
from dlkit.data.archives import checked_members, is_archive, unpack
from dlkit.errors import InvalidInputError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLKIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def zip_folder(folder, path, top="data"):
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(
                    file, f"{top}/{file.relative_to(folder)}" if top else str(file.relative_to(folder))
                )
    return path


def test_an_archive_unpacks_once_to_its_folder(tiny_folder, tmp_path, cache):
    archive = zip_folder(tiny_folder, tmp_path / "photos.zip")
    assert is_archive(archive) and not is_archive(tiny_folder)
    folder = unpack(archive)
    assert folder.name == "data"  # one top folder: that folder
    unpacked = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    assert unpacked == sorted(p.relative_to(tiny_folder) for p in tiny_folder.rglob("*") if p.is_file())
    before = folder.stat().st_mtime_ns
    assert unpack(archive) == folder and folder.stat().st_mtime_ns == before  # cached
    flat = unpack(zip_folder(tiny_folder, tmp_path / "flat.zip", top=None))
    assert sorted(p.name for p in flat.iterdir()) == sorted(p.name for p in tiny_folder.iterdir())
    assert len(checked_members(archive)) == len(unpacked)


def test_evaluate_reads_a_zipped_dataset_like_its_folder(contract_run, tmp_path, cache):
    run = contract_run("classify")
    archive = zip_folder(run.folder, tmp_path / "data.zip") if run.data else None
    model = run.run_dir / "model.tflite"
    from_folder = run_cli("classify", "evaluate", "--model", model, "--data", run.data, "--json")
    from_zip = run_cli("classify", "evaluate", "--model", model, "--data", archive, "--json")
    assert from_folder.exit_code == from_zip.exit_code == 0, from_zip.output
    pick = lambda out: {k: v for k, v in _report(out).items() if k in ("accuracy", "count", "images")}  # noqa: E731
    assert pick(from_zip.output) == pick(from_folder.output) and pick(from_zip.output)


def _report(output):
    import json

    return json.loads(output[output.index("{") :])


def test_crafted_archives_are_refused_whole_and_write_nothing(tiny_folder, tmp_path, cache):
    cases = hostile.hostile_archives(tmp_path / "archives", tiny_folder)
    failures = []
    for case, archive, outside in cases:
        problems = []
        with pytest.raises(InvalidInputError) as error:
            unpack(archive)
        if str(archive) not in str(error.value) or "\n" in str(error.value):
            problems.append(f"not one line naming the archive: {error.value}")
        if outside is not None and outside.exists():
            problems.append(f"wrote {outside}")
        result = run_cli("classify", "train", "--tiny", "--data", archive, "--run-dir", tmp_path / "run")
        if result.exit_code != 2 or "Traceback" in result.output or str(archive) not in result.output:
            problems.append(f"train gave exit {result.exit_code}: {result.output[-300:]}")
        hostile.TALLY.record("classify", "train (archives)", failed=bool(problems))
        failures += [f"{case}: {problem}" for problem in problems]
    assert not failures, "\n".join(failures)
    leftovers = [p for p in (cache / "datasets").rglob("*")] if (cache / "datasets").exists() else []
    assert leftovers == [], leftovers
