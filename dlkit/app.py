"""The app contract: the base class every app subclasses (no TensorFlow at import).

An app is a package `apps/<name>/` with the same modules in every app: `config.py` (a
`Config` dataclass, no TF), `data.py` (sources, decoded splits, tf.data), `model.py` (Keras
model, training stages, evaluator) and `edge.py` (numpy pre/post-processing for device
and evaluation alike). Its `__init__.py` declares the app once, as a subclass of `App`
registered with `@register`; the runner, the evaluation engine, the predict pipeline and
the CLI call the methods below and never probe for optional functions.

The base class supplies every default. The required parts of the contract are the
functions of the four modules that the defaults call (listed per method); an app whose
task needs something else overrides the method.

Example:
    @register
    class ClassifyApp(App):
        name = "classify"
        summary = "Image classification with transfer learning."
        input_kind = "image"
        gate = Metric("accuracy")
"""

import importlib
from dataclasses import dataclass
from functools import cached_property

from dlkit.export import QUANTIZATIONS

INPUT_KINDS = ("image", "text", "audio", "pair")

# Parts a trained model can hand to another app (`train --init MODEL_OF_ANOTHER_APP`), and
# the config fields that must match for the part to fit (taken from the giving model).
# Weight parts (a backbone) come from `App.parts`; metadata parts from `App.meta_parts`:
# a "tokenizer" is {"tokenizer": "wordpiece" | "char", "vocab": [...], "lowercase": bool}.
PART_FIELDS = {
    "image_backbone": ("backbone", "alpha"),
    "tokenizer": ("tokenizer", "lowercase"),
    # A BERT encoder (dlkit.layers.bert) with its WordPiece vocabulary (a metadata part
    # of the same name: {"tokenizer": "bert_wordpiece", "vocab", "lowercase", "special_ids"}).
    "text_encoder": ("hidden_size", "layers", "heads", "intermediate_size", "max_positions", "lowercase"),
}


@dataclass(frozen=True)
class Metric:
    """A headline metric: what the parity gate and reports compare.

    Args:
        name: str. Key in the app's evaluation report (`accuracy`, `map50`, `eer`...).
        higher_is_better: bool. False for error rates and false alarms.
        points: float. Points per unit of the metric in gates and messages: 100 for a
            fraction (0.01 = 1 point), 1 for a score already in points (BLEU).
    """

    name: str
    higher_is_better: bool = True
    points: float = 100.0

    def drop(self, reference, candidate):
        """How many points `candidate` is worse than `reference` (negative: better)."""
        sign = 1.0 if self.higher_is_better else -1.0
        return sign * self.points * (reference - candidate)


@dataclass(frozen=True)
class Asset:
    """A side file of a trained model (see `App.assets`).

    Args:
        file_name: str. Its name next to the model.
        content: bytes, or the path of a file to copy.
        into: str or None. For a text file the model's metadata needs (a vocabulary): the
            metadata key its lines fill when the bundle is loaded. It is then kept out of
            model.json, which stays small, and read from the checked side file instead.
    """

    file_name: str
    content: object
    into: str = None


@dataclass(frozen=True)
class Option:
    """A predict option that an app declares (`--top-k`, `--conf`, `--beam-width`).

    Its value reaches the app's `prepare_meta`, `postprocess` and `finish` as
    `options[name]`, where `name` is the flag without dashes, in snake_case.

    Args:
        flag: str. The command-line flag, e.g. "--top-k".
        type: type. int, float or str.
        default: the value when the flag is not given.
        help: str. One line for `--help`.
        metavar: str or None. The value's name in `--help`; "DIR" makes it an output
            folder, checked writable before any prediction runs.
        min, max: the allowed range of an int or float value (None: open); a value
            outside it is a usage error before any work starts.
        evaluate: bool. Also an `evaluate` flag: it changes how the model runs, not only
            what predict reports; set away from its default, it is recorded in the loaded
            model's meta under its name (`App.options_meta`), where `wrap_runner` reads it.
    """

    flag: str
    type: type
    default: object
    help: str
    metavar: str = None
    min: float = None
    max: float = None
    evaluate: bool = False

    @property
    def click_type(self):
        """The click parameter type: a range-checked number when a bound is given."""
        import click

        if self.min is None and self.max is None:
            return self.type
        return {int: click.IntRange, float: click.FloatRange}[self.type](self.min, self.max)

    @property
    def name(self):
        return self.flag.lstrip("-").replace("-", "_")

    def click_option(self):
        """The decorator adding this option to a click command (a bool is a flag)."""
        import click

        if self.type is bool:
            return click.option(
                self.flag, self.name, is_flag=True, default=bool(self.default), help=self.help
            )
        return click.option(
            self.flag,
            self.name,
            type=self.click_type,
            default=self.default,
            show_default=self.default is not None,
            metavar=self.metavar,
            help=self.help,
        )


class App:
    """Base of every app; see the module docstring for the contract.

    Class attributes an app sets:
        name: str. The CLI name (`dlkit <name> ...`).
        summary: str. One line for `dlkit --help`.
        input_kind: str. One of INPUT_KINDS: what `predict` reads.
        data_help: str. What `--data` accepts.
        gate: Metric. The export parity gate's metric.
        headline: tuple of str. Metrics `info` shows beside the gate's, where the model's
            metrics.json holds them (trigger: its event recall and false accepts an hour).
        monitor: (str, str). Metric and mode watched by best-checkpoint and early stopping.
        architecture: tuple of str. Config fields that define the network: `train --init`
            takes them from the model it starts from.
        predict_options: tuple of Option. Extra `predict` flags.
        export_options: tuple of Option. Extra `export` flags (an Option of type bool is
            a flag); `export_variant` names the file they make.
        saves_predictions: bool. `predict` writes files (e.g. annotated images) even
            without `--out`, to `runs/<app>/predictN`.
        quantizations: tuple of str. The TFLite variants `export` can make.
        export_batch: int or None. The exported files' static batch size; None keeps the
            batch dynamic. A graph whose ops size their outputs from the batch (a transposed
            convolution's output shape) keeps SHAPE ops in a dynamic-batch file, which
            LiteRT's XNNPACK delegate does not take: they split it into partitions and run
            those ops on the slower builtin kernels. (The runner feeds a static-batch file
            one batch at a time.)
        gptq: bool. Dynamic-range export rounds the int8 weights by GPTQ, calibrated on
            training inputs as int8 export is (`dlkit.export.gptq`), instead of to nearest.
        provides: tuple of str. Parts (PART_FIELDS) its trained models hand to other apps.
        inherits: tuple of str. Parts it takes from another app's model given to `--init`.
        may_find_nothing: bool. An input may give no model window (a photo without a
            face): its result is then `combine([], raw, meta)`, not an error.
        shipped_preset: str or None. The preset (`presets`) that rebuilds the shipped
            model when its folder holds only `.tflite` files (`dlkit bench` converts it).
        meta_keys: tuple of str. What its model.json must hold besides the input spec
            (checked when a model is loaded, so a hand-edited file is refused
            with one line instead of failing mid-prediction).
    """

    name = ""
    summary = ""
    input_kind = "image"
    data_help = "A dataset, or omit for the offline default."
    gate = Metric("accuracy")
    headline = ()
    monitor = ("val_loss", "min")
    architecture = ()
    predict_options = ()
    export_options = ()
    saves_predictions = False
    quantizations = QUANTIZATIONS
    export_batch = None
    gptq = False
    provides = ()
    inherits = ()
    may_find_nothing = False
    shipped_preset = None
    meta_keys = ("labels",)

    def check_meta(self, meta, where):
        """Raises DlkitError when model.json `meta` (read from `where`) cannot describe
        one of this app's models: a key of `meta_keys` missing, labels that are not a list
        of distinct names, or fewer or more labels than the model has classes."""
        from dlkit.errors import DlkitError

        missing = [key for key in ("input", *self.meta_keys) if key not in meta]
        if missing:
            raise DlkitError(f"{where}: a {self.name} model.json needs {', '.join(missing)}")
        if "config" in meta:  # the training config, read back by evaluate, export and --init
            from dlkit.config import from_dict

            if not isinstance(meta["config"], dict):
                raise DlkitError(f"{where}: config must be an object of {self.name}'s settings")
            try:
                from_dict(self.config_class, meta["config"])
            except DlkitError as error:
                raise DlkitError(f"{where}: {error}") from None
        labels = meta.get("labels")
        if labels is not None:
            if not (isinstance(labels, list) and labels and all(isinstance(x, str) and x for x in labels)):
                raise DlkitError(f"{where}: labels must be a list of class names, got {str(labels)[:80]}")
            if len(set(labels)) != len(labels):
                raise DlkitError(f"{where}: labels name a class twice")
            # The model's own class count: recorded (detect's several outputs), or the last
            # axis of a class-score output.
            classes = meta.get("num_classes")
            output = meta.get("output") if isinstance(meta.get("output"), dict) else {}
            if classes is None and output.get("activation") in ("softmax", "sigmoid"):
                classes = (output.get("shape") or [None])[-1]
            if classes is not None and classes != len(labels):
                raise DlkitError(f"{where}: {len(labels)} labels for a model with {classes} output classes")

    # --- the app's modules, imported on first use ------------------------------------
    @property
    def package(self):
        return type(self).__module__

    def _module(self, part):
        return importlib.import_module(f"{self.package}.{part}")

    @cached_property
    def config_module(self):
        return self._module("config")

    @cached_property
    def data(self):
        return self._module("data")

    @cached_property
    def model(self):
        return self._module("model")

    @cached_property
    def edge(self):
        return self._module("edge")

    @property
    def config_class(self):
        """The app's `Config` dataclass (config.py)."""
        return self.config_module.Config

    def default_config(self, tiny=False):
        return self.config_class.tiny() if tiny else self.config_class()

    # --- data (data.py: open_source, load_split, make_dataset) ------------------------
    def open_source(self, config, data, progress=None):
        """Resolves `--data` (None for the offline default) to a source object with
        `description`, `fingerprint` and, for labelled data, `labels`. An archive
        (`.zip`, `.tar.gz`...) is checked and unpacked once into the cache first."""
        from dlkit.data.archives import is_archive, unpack

        if data is not None and is_archive(data):
            data = str(unpack(data, progress=progress))
        return self.data.open_source(config, data, progress=progress)

    def load_split(self, config, source, split, meta=None, progress=None):
        """One decoded split: `.inputs` (an array, or a dict of named arrays), `.targets`
        in the model's ids, `.skipped` (messages about unreadable items)."""
        return self.data.load_split(config, source, split, meta=meta, progress=progress)

    def make_dataset(self, config, split, training=False, meta=None):
        """A batched `tf.data.Dataset` of (inputs, targets) for `fit`."""
        return self.data.make_dataset(config, split, training=training, meta=meta)

    def write_sample_data(self, folder):
        """Writes a tiny dataset into `folder` and returns the `--data` value for it, or
        None when the offline default is already tiny under `Config.tiny()`. The
        contract test kit trains every app on it."""
        return None

    def sample_inputs(self, folder):
        """A few `predict` inputs (paths or text) for the contract test kit."""
        raise NotImplementedError(f"{self.name} declares no sample inputs")

    # --- model (model.py: make_meta, build_model, training_stages, adapt_model) --------
    def make_meta(self, config, source):
        """What a trained model needs to be used: labels or vocabularies, input spec."""
        return self.model.make_meta(config, source)

    def inherit_meta(self, meta, init_meta):
        """Meta of a run started from a trained model (`--init`): by default its own."""
        return meta

    def build_model(self, config, meta):
        return self.model.build_model(config, meta)

    def training_stages(self, config, meta):
        """The `fit` calls of a run (dlkit.stages.Stage)."""
        return self.model.training_stages(config, meta)

    def adapt_model(self, model, model_meta, config, meta, log=print):
        """A trained model made ready to train on new data (new head, same backbone...)."""
        return self.model.adapt_model(model, model_meta, config, meta, log=log)

    def presets(self):
        """Pretrained models this app offers by name to `train --init NAME` (of any app
        that takes their parts): {name: fn() -> model directory, built on first use}."""
        return {}

    def inherit_config(self, config, parts):
        """The config of a run that takes `parts` from another app's model (`--init`):
        e.g. the model kind that can hold them. By default unchanged."""
        return config

    def parts(self, model, meta):
        """The weight parts among `provides` of a trained model, by name: Keras sub-models
        whose weights another app copies by layer name."""
        return {}

    def meta_parts(self, meta):
        """The metadata parts among `provides` (a tokenizer's vocabulary), by name: dicts
        merged into the metadata of a run started from this model."""
        return {}

    def assets(self, model, config, meta):
        """Side files a trained model needs besides its graph (a vocabulary, an embedding
        table, a gallery, a second model): {name: Asset}. The runner writes them next to
        the model and lists them in model.json with checksums; the edge bundle resolves
        them with `ModelBundle.asset(name)` (or loads them into the metadata, `into`)."""
        return {}

    def calibrate(self, model, config, meta, split):
        """What a trained model's metadata needs from its outputs on the validation split
        (a decision threshold at a target error rate): a dict merged into model.json
        before it is written. By default nothing."""
        return {}

    def class_weights(self, config, split):
        """Per-class loss weights for `fit`, or None."""
        return None

    def training_callbacks(self, config, meta, run_dir, val_split):
        """Extra Keras callbacks for every stage (e.g. sample predictions per epoch)."""
        return []

    # --- inference, conversion, scoring ------------------------------------------------
    def inference_model(self, model, config, meta):
        """The graph that is exported and scored: the training model plus what a device
        runs after it (decode, NMS, argmax...). By default the training model itself."""
        return model

    def keras_runner(self, model, config, meta):
        """fn(batch of inputs) -> list of output arrays, as the exported graph gives them."""
        from dlkit.engine import keras_runner

        return keras_runner(self.inference_model(model, config, meta))

    def tflite_runner(self, path, meta):
        """The same for an exported `.tflite` file, on the edge runtime (no TensorFlow)."""
        from dlkit.engine import tflite_runner

        return tflite_runner(path)

    def wrap_runner(self, run, meta):
        """A runner (Keras or TFLite) as the predict options in `meta` (`options_meta`) ask:
        e.g. test-time augmentation around it. By default the runner itself."""
        return run

    def convert(self, model, config, meta, quantize, representative=None):
        """TFLite flatbuffer bytes of the inference model (a `quantize` of `quantizations`)."""
        from dlkit.export.tflite import convert

        return convert(
            self.inference_model(model, config, meta),
            quantize,
            representative,
            batch_size=self.export_batch,
            int8_input=meta.get("int8_input") if quantize == "int8" else None,
        )

    def export_variant(self, meta, options):
        """(metadata for conversion, variant name) for export options: the variant names the
        file (`model.<quantize>.<variant>.tflite`) and its record; "" for the plain export."""
        return meta, ""

    def evaluator(self, config, meta):
        """A dlkit.engine.Evaluator that scores outputs batch by batch (model.py)."""
        return self.model.evaluator(config, meta)

    def annotate(self, report, split):
        """The evaluator's report completed with what only the split knows (the texts of
        misclassified rows...); returns the report. By default unchanged."""
        return report

    def peers(self, config, meta, source, split):
        """Other methods scored on the same split for `evaluate` to print beside the model
        (a rule-based analyser, a linear baseline): {name: report}. By default none."""
        return {}

    def gate_metric(self, meta):
        """The metric the export gate compares for this model (some apps vary by model)."""
        return self.gate

    def plots(self, report, meta, out_dir, title=""):
        """PNG files for an evaluation report; returns their paths."""
        return []

    # --- predict (edge.py: read_input, preprocess, postprocess, format_result) ----------
    def read_input(self, item, meta):
        """One input (a path, a string, or for images an array) -> raw data; raises
        InvalidInputError."""
        if self.input_kind == "image" and hasattr(item, "shape"):
            from dlkit.edge.image import image_array

            return image_array(item)
        return self.edge.read_input(item, meta)

    def input_warnings(self, raw, meta):
        """Messages about a readable but doubtful input (shown, not fatal)."""
        return []

    def windows(self, raw, meta):
        """The model inputs one raw input becomes: one by default, several for a long
        recording or a tiled image (then `combine` merges their results)."""
        return [self.edge.preprocess(raw, meta)]

    def combine(self, results, raw, meta):
        """One result from the results of an input's windows."""
        return results[0]

    def option_values(self, options, verb="predict"):
        """{name: value} of the app's options for `verb` ("predict": every predict option;
        "evaluate": those marked `evaluate`): the `options` given (not None) over their
        defaults. A name the verb does not take is one line naming those it does."""
        from dlkit.errors import DlkitError

        declared = {o.name: o.default for o in self.predict_options if verb == "predict" or o.evaluate}
        unknown = set(options) - set(declared)
        if unknown:
            raise DlkitError(
                f"{self.name} {verb} has no option {', '.join(sorted(unknown))}; "
                f"it has: {', '.join(sorted(declared)) or 'none'}"
            )
        return {**declared, **{k: v for k, v in options.items() if v is not None}}

    def options_meta(self, meta, options):
        """The model's meta for running it with `options` ({name: value}, defaults filled):
        the options that change how it runs (`Option.evaluate`) set away from their
        default, by name (for `wrap_runner`), then the app's own `prepare_meta`."""
        running = {
            o.name: options[o.name]
            for o in self.predict_options
            if o.evaluate and options.get(o.name, o.default) != o.default
        }
        return self.prepare_meta({**meta, **running}, options)

    def prepare_meta(self, meta, options):
        """The model's meta adjusted by predict options before the model is loaded."""
        return meta

    def postprocess(self, outputs, meta, options):
        """Outputs of a batch -> one result dict per row (options: the app's own flags)."""
        return self.edge.postprocess(outputs, meta, **options)

    def finish(self, item, raw, result, context):
        """The final, JSON-ready result of one input; may write files to
        `context.out_dir` (annotated images, plots)."""
        return result

    def format_result(self, name, result):
        """One human-readable line."""
        return self.edge.format_result(name, result)

    # --- CLI --------------------------------------------------------------------------
    def register_cli(self, group):
        """Adds app-only verbs to the app's click group (e.g. `detect data check`)."""
