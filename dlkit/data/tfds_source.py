"""TFDS catalog datasets: one way to get a prepared builder, with one-line errors."""

from dlkit.errors import MissingSourceError


def prepared_builder(name):
    """The TFDS builder of `name` with its data prepared.

    Prepared data is read from `$TFDS_DATA_DIR` (default `~/tensorflow_datasets`); a
    first download needs the internet.

    Raises:
        MissingSourceError: tensorflow-datasets is missing, or the dataset cannot be
            loaded or prepared (the first line of TFDS's reason is kept).
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise MissingSourceError(
            "tfds: sources need tensorflow-datasets: pip install tensorflow-datasets"
        ) from None
    try:
        builder = tfds.builder(name)
        if not builder.info.splits:
            builder.download_and_prepare()
    except Exception as error:  # TFDS raises many types; all mean the same to the user.
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise MissingSourceError(f"tfds:{name}: cannot load ({first})") from None
    return builder
