"""The Python API: `dlkit.load(...)` returns a model to predict with, evaluate, export and
fine-tune, the way `ultralytics.YOLO(...)` and KerasHub's `from_preset` do.

Predict needs only the edge install (a `.tflite` model runs on LiteRT); `train`,
`evaluate` and `export` need `dlkit[train]` (TensorFlow).

Example:
    >>> import dlkit
    >>> model = dlkit.load("classify")              # the shipped model
    >>> model.predict(["photo.jpg"], top_k=2)[0]["label"]
    >>> dlkit.load("translate").predict(["3 May 1979"])[0]["translation"]
    '1979-05-03'
"""

from pathlib import Path

from dlkit.edge.bundle import ModelBundle
from dlkit.errors import DlkitError
from dlkit.paths import default_model
from dlkit.registry import app_names, get_app


def load(model, prefer="tflite"):
    """A trained model by app name (its shipped model) or path.

    Args:
        model: str or Path. An app name ("classify"), a run or export directory, a
            `.keras` or `.tflite` file.
        prefer: "tflite" or "keras": which file of a directory to run.
    """
    if isinstance(model, str) and model in app_names():
        app, path = get_app(model), default_model(model)
        return Model(app, ModelBundle.load(path, app=app, prefer=prefer), path, prefer)
    bundle = ModelBundle.load(model, prefer=prefer)
    if bundle.meta.get("app") not in app_names():
        raise DlkitError(f"{bundle.path}: model.json names no known app ({bundle.meta.get('app')!r})")
    app = get_app(bundle.meta["app"])
    app.check_meta(bundle.meta, bundle.directory / "model.json")
    return Model(app, bundle, model, prefer)


class Model:
    """A trained model of one app; see `load`.

    Args:
        app: dlkit.app.App.
        bundle: ModelBundle. The loaded model file and its metadata.
        path: the model's file or directory as given (export and fine-tuning start there).
        prefer: "tflite" or "keras".
    """

    def __init__(self, app, bundle, path, prefer="tflite"):
        self.app, self.bundle, self.path, self.prefer = app, bundle, Path(path), prefer
        self._predictors = {}

    def __repr__(self):
        return f"<dlkit {self.app.name} model {self.bundle.path}>"

    @property
    def meta(self):
        return self.bundle.meta

    @property
    def labels(self):
        return self.bundle.labels

    def predict(self, inputs, batch_size=32, out_dir=None, **options):
        """Results for `inputs`: file paths, folders, image arrays or strings, by the app's
        input kind; one dict per input (per frame of a video, with its `frame` and `time`),
        as `dlkit <app> predict --json` prints them.

        Raises:
            InvalidInputError: for the first input that cannot be read.
        """
        from dlkit.errors import InvalidInputError
        from dlkit.predict import Predictor, expand_sources

        if isinstance(inputs, (str, Path)) or hasattr(inputs, "shape"):
            inputs = [inputs]
        key = repr(sorted(options.items()))  # values may be lists (detect's classes=)
        if key not in self._predictors:
            self._predictors[key] = Predictor.load(self.app, self.bundle, **options)
        items = expand_sources(self.app.input_kind, inputs)
        results = []
        for prediction in self._predictors[key](items, batch_size=batch_size, out_dir=out_dir):
            if prediction.error:
                raise InvalidInputError(prediction.error)
            results.append(prediction.result)
        return results

    def evaluate(self, data=None, split="test", **options):
        """The app's evaluation report on a split (the model's own data by default);
        `options`: predict options that change how the model runs (detect's `augment=True`)."""
        from dlkit import runner
        from dlkit.quiet import import_tensorflow

        import_tensorflow()
        return runner.evaluate(self.app, self.bundle.path, data, split, options=options)

    def export(self, quantize="float32", data=None, max_drop=None, out_dir=None):
        """Exports the `.keras` model next to it (or to `out_dir`); returns the record."""
        from dlkit.export.bundle import export
        from dlkit.quiet import import_tensorflow

        import_tensorflow()
        return export(self.app, self.path, quantize, data=data, max_drop=max_drop, out_dir=out_dir)

    def train(self, data=None, run_dir=None, tiny=False, **overrides):
        """Fine-tunes this model on `data` (config fields as keyword arguments); returns
        the new run's model."""
        return _train(self.app, data, run_dir, tiny, overrides, init=self.path, prefer=self.prefer)


def train(app, data=None, run_dir=None, tiny=False, **overrides):
    """Trains app `app` from its default config (fields as keyword arguments); returns the
    trained model."""
    return _train(get_app(app), data, run_dir, tiny, overrides)


def _train(app, data, run_dir, tiny, overrides, init=None, prefer="tflite"):
    from dlkit import runner
    from dlkit.config import apply_overrides
    from dlkit.quiet import import_tensorflow

    import_tensorflow()
    config = apply_overrides(app.default_config(tiny), [f"{k}={v}" for k, v in overrides.items()])
    run = runner.train(app, config, data=data, run_dir=run_dir, init=str(init) if init else None, tiny=tiny)
    return Model(app, ModelBundle.load(run, app=app, prefer=prefer), run, prefer)
