"""dlkit: Keras applications with TFLite export and a TensorFlow-free edge runtime.

Importing `dlkit` is cheap: TensorFlow and Keras are imported only by the modules that
need them (runner, export, layers, app models), never by the CLI root or `dlkit.edge`.
"""

__version__ = "0.1.0"
