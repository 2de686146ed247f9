"""Class ids of a dataset mapped to a model's classes, by name."""

import numpy as np

from dlkit.errors import DlkitError


def label_mapping(data_labels, model_labels, used=None):
    """An array mapping data class ids to model class ids (-1 for classes the model lacks).

    Args:
        data_labels: the data's class names, by id.
        model_labels: the model's class names, by id.
        used: optional set of data class ids that actually occur; only those must be known.

    Raises:
        DlkitError: naming the data classes the model does not know.
    """
    model_labels = list(model_labels)
    unknown = [n for i, n in enumerate(data_labels) if n not in model_labels and (used is None or i in used)]
    if unknown:
        raise DlkitError(
            f"data classes not known to the model: {', '.join(unknown)} (model classes: {', '.join(model_labels)})"
        )
    return np.array([model_labels.index(n) if n in model_labels else -1 for n in data_labels], np.int64)
