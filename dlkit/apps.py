"""The app registry: CLI name -> package under `apps/`. Unknown names fail loudly."""

import importlib
from functools import cached_property

from dlkit.errors import DlkitError

# Every app is a package with the same modules: config (no TF), data, model, edge (numpy).
APPS = {
    "classify": "apps.classify",
    "detect": "apps.detect",
    "translate": "apps.translate",
}


class App:
    """Lazy access to one app's modules, so `config` and `edge` load without TensorFlow."""

    def __init__(self, name: str):
        if name not in APPS:
            raise DlkitError(f"unknown app {name!r}; available: {', '.join(sorted(APPS))}")
        self.name = name
        self.package = APPS[name]

    def _module(self, part):
        return importlib.import_module(f"{self.package}.{part}")

    @cached_property
    def package_module(self):
        return importlib.import_module(self.package)

    @cached_property
    def config(self):
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
    def data_help(self) -> str:
        """What `--data` accepts, from the package's `DATA_HELP`."""
        return getattr(self.package_module, "DATA_HELP", "A dataset, or omit for the offline default.")

    @property
    def summary(self) -> str:
        doc = (self.package_module.__doc__ or self.name).strip()
        return doc.splitlines()[0]


def get_app(name: str) -> App:
    return App(name)
