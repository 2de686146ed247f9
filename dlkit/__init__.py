"""dlkit: Keras applications with TFLite export and a TensorFlow-free edge runtime.

Importing `dlkit` is cheap: TensorFlow and Keras are imported only by the modules that
need them (runner, export, layers, app models), never by the CLI root or `dlkit.edge`.

Example:
    >>> import dlkit
    >>> dlkit.load("translate").predict(["3 May 1979"])[0]["translation"]
    '1979-05-03'
"""

__version__ = "0.1.0"


def load(model, prefer="tflite"):
    """A trained model by app name (its shipped model) or path; see `dlkit.api.load`."""
    from dlkit.api import load as load_model

    return load_model(model, prefer)


def train(app, data=None, run_dir=None, tiny=False, **overrides):
    """Trains app `app` from its defaults (config fields as keyword arguments) and returns
    the trained model (`dlkit.api.Model`)."""
    from dlkit.api import train as train_app

    return train_app(app, data, run_dir, tiny, **overrides)
