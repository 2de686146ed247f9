"""`dlkit face enroll | verify | identify | list | remove | data fetch`: the gallery commands
(no TensorFlow with a .tflite model)."""

import json
import sys

import click

from dlkit.console import counted


def gallery_option(function):
    return click.option(
        "--gallery",
        "gallery_path",
        default=None,
        metavar="FILE",
        help="The gallery file (default: ~/.local/share/dlkit/face/gallery.json, or $DLKIT_DATA).",
    )(function)


def _gallery_path(path):
    from pathlib import Path

    from dlkit.apps.face.gallery import default_path

    return Path(path) if path else default_path()


def _largest_faces(app, model_path, photos, progress=None):
    """{photo: (embedding of its largest face, faces found)} through the predict pipeline;
    photos without a readable face are reported on stderr and left out."""
    from dlkit.predict import Predictor, expand_sources

    predictor = Predictor.load(app, model_path, gallery="none")
    found = {}
    for prediction in predictor(expand_sources("image", photos), progress=progress):
        if prediction.error:
            click.echo(f"skipped: {prediction.error}", err=True)
            continue
        faces = prediction.result["faces"]
        if not faces:
            click.echo(f"skipped: {prediction.name}: no face found", err=True)
            continue
        found[prediction.name] = (faces[0]["embedding"], len(faces))
    return predictor, found


def add_commands(app, group):
    from dlkit.cli import EXIT_USAGE, handle_errors, model_option, predict_command

    identify = predict_command(app)
    identify.help = (
        "Name every face in the photos from the gallery (the same as predict): the nearest "
        "enrolled person, or unknown when farther than the model's threshold."
    )
    group.add_command(identify, name="identify")

    @click.command(
        name="enroll",
        help="Add a person's photos to the gallery (the largest face of each photo). "
        "Enrolling a name again adds the photos to that person; --replace starts afresh.",
    )
    @click.argument("name")
    @click.argument("photos", nargs=-1, required=True, type=click.Path())
    @model_option
    @gallery_option
    @click.option("--replace", is_flag=True, help="Replace the person's photos instead of adding to them.")
    @handle_errors
    def enroll(name, photos, model_path, gallery_path, replace):
        from dlkit.apps.face.gallery import editing
        from dlkit.errors import DlkitError

        if not name.strip():
            raise DlkitError("the person's name is empty")
        predictor, found = _largest_faces(app, model_path, photos)
        if not found:
            raise DlkitError(f"no face found in the photos of {name}: nothing enrolled")
        for photo, (_, count) in found.items():
            if count > 1:
                click.echo(f"warning: {photo}: {count} faces; enrolled the largest", err=True)
        path = _gallery_path(gallery_path)
        with editing(path) as gallery:
            gallery.add(name, [embedding for embedding, _ in found.values()], predictor.meta, replace=replace)
            total = len(gallery.people[name])
        click.echo(f"enrolled {name}: {counted(len(found), 'photo')}, {total} in all ({path})")
        if len(found) < len(photos):
            sys.exit(EXIT_USAGE)

    @click.command(
        name="verify",
        help="Say whether two photos show the same person (their largest faces), "
        "with the distance and the model's threshold.",
    )
    @click.argument("first", type=click.Path())
    @click.argument("second", type=click.Path())
    @model_option
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @handle_errors
    def verify(first, second, model_path, as_json):
        import numpy as np

        from dlkit.errors import DlkitError

        predictor, found = _largest_faces(app, model_path, [first, second])
        missing = [p for p in (first, second) if p not in found]
        if missing:
            raise DlkitError(f"no face to compare in {', '.join(missing)}")
        (a, _), (b, _) = found[first], found[second]
        distance = float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
        threshold = float(predictor.meta["threshold"])
        same = distance <= threshold
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "first": first,
                        "second": second,
                        "same": same,
                        "distance": distance,
                        "threshold": threshold,
                    }
                )
            )
        else:
            verdict = "same person" if same else "different people"
            click.echo(
                f"{verdict}: distance {distance:.3f} {'<=' if same else '>'} threshold {threshold:.3f}"
            )

    @click.command(name="list", help="The people in the gallery and their photo counts.")
    @gallery_option
    @handle_errors
    def list_people(gallery_path):
        from dlkit.apps.face.gallery import Gallery

        path = _gallery_path(gallery_path)
        gallery = Gallery.load(path)
        if not gallery.people:
            click.echo(f"the gallery is empty ({path}): enrol people with dlkit face enroll NAME PHOTO...")
            return
        for name, rows in sorted(gallery.people.items()):
            click.echo(f"{name}: {counted(len(rows), 'photo')}")
        people = counted(len(gallery.people), "person", "people")
        click.echo(f"{people}, {counted(gallery.photos, 'photo')} ({path})", err=True)

    @click.command(name="remove", help="Remove a person from the gallery.")
    @click.argument("name")
    @gallery_option
    @handle_errors
    def remove(name, gallery_path):
        from dlkit.apps.face.gallery import editing

        path = _gallery_path(gallery_path)
        if not path.exists():
            from dlkit.errors import DlkitError

            raise DlkitError(f"{path}: no gallery yet (nothing to remove)")
        with editing(path) as gallery:
            gallery.remove(name)
            left = len(gallery.people)
        click.echo(f"removed {name} ({counted(left, 'person', 'people')} left)")

    @click.group(name="data", help="The offline faces.")
    def data():
        pass

    @data.command(
        name="fetch",
        help="Fetch the offline faces once into the dlkit cache (dlib's example "
        "faces from the Debian source package, two people from the face_recognition sdist).",
    )
    @handle_errors
    def fetch():
        from dlkit.apps.face.faces import default_folder

        click.echo(default_folder())

    @click.command(
        name="pairs",
        help="The LFW protocol: 10-fold verification accuracy on a pairs.txt (each fold scored at the "
        "threshold best on the other nine), with the ROC AUC over all its pairs.",
    )
    @click.argument("pairs_file", type=click.Path())
    @click.option(
        "--data",
        "folder",
        required=True,
        metavar="DIR",
        help="The photos, as LFW lays them out: DIR/Name/Name_0001.jpg.",
    )
    @model_option
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @handle_errors
    def pairs(pairs_file, folder, model_path, as_json):
        import numpy as np

        from dlkit.apps.face.pairs import photo_path, read_pairs, ten_fold
        from dlkit.console import ProgressPrinter
        from dlkit.errors import DlkitError
        from dlkit.metrics.verification import roc_auc

        listed = read_pairs(pairs_file)
        photos = sorted({photo for _, a, b, _ in listed for photo in (a, b)})
        paths = {photo: str(photo_path(folder, photo)) for photo in photos}
        _, found = _largest_faces(app, model_path, list(paths.values()), progress=ProgressPrinter())
        kept = [(fold, a, b, same) for fold, a, b, same in listed if paths[a] in found and paths[b] in found]
        if len({fold for fold, *_ in kept}) < 2:
            raise DlkitError(f"{pairs_file}: fewer than 2 folds with pairs whose photos have a face")
        embedding = {path: np.asarray(vector) for path, (vector, _) in found.items()}
        distances = np.array(
            [np.linalg.norm(embedding[paths[a]] - embedding[paths[b]]) for _, a, b, _ in kept]
        )
        same = np.array([s for *_, s in kept])
        folds = np.array([fold for fold, *_ in kept])
        mean, std, per_fold, thresholds = ten_fold(distances, same, folds)
        result = {
            "accuracy": mean,
            "accuracy_std": std,
            "folds": per_fold,
            "thresholds": thresholds,
            "roc_auc": roc_auc(distances, same),
            "pairs": len(kept),
            "left_out": len(listed) - len(kept),
        }
        if as_json:
            click.echo(json.dumps(result))
        else:
            click.echo(
                f"{len(per_fold)}-fold accuracy {mean:.4f} +- {std:.4f}, ROC AUC {result['roc_auc']:.4f} "
                f"over {len(kept)} pairs ({result['left_out']} left out: a photo without a face)"
            )

    for command in (enroll, verify, list_people, remove, pairs, data):
        group.add_command(command)
