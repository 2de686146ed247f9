"""Speech synthesis with espeak-ng, loaded with ctypes from the PyPI wheel
`espeakng-loader` (the library and its voice data, no system install).

Example:
    >>> audio = speak("activate", variant="m3", rate=160, pitch=55)   # float32 at SAMPLE_RATE
"""

import ctypes
import threading
from functools import lru_cache

import numpy as np

from dlkit.errors import DlkitError, MissingSourceError

# espeak-ng API constants (speak_lib.h).
AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
RATE, VOLUME, PITCH, RANGE = 1, 2, 3, 4
EE_OK = 0

# The voice variants (`en+<variant>`) espeak-ng ships: men, women and effects.
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "croak", "whisper", "Andy", "Annie", "Denis", "Gene",
    "Jacky", "Lee", "Mario", "Michael", "Mike", "Storm", "adam", "anika", "antonio", "aunty",
    "belinda", "benjamin", "boris", "caleb", "david", "edward", "grandma",
)  # fmt: skip

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_LOCK = threading.Lock()


class _Engine:
    """The loaded library, initialised once per process."""

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError:
            raise MissingSourceError(
                "speech synthesis needs espeak-ng: pip install espeakng-loader"
            ) from None
        lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        data = espeakng_loader.get_data_path().encode()
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if self.sample_rate <= 0:
            raise DlkitError("espeak-ng failed to initialise")
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synchronize.restype = ctypes.c_int
        self.chunks = []

        def collect(wav, count, events):
            if count > 0:
                self.chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0

        self.callback = _SYNTH_CALLBACK(collect)  # kept: the library calls it
        lib.espeak_SetSynthCallback(self.callback)
        self.lib = lib

    def speak(self, text, voice, rate, pitch):
        lib = self.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
            raise DlkitError(f"espeak-ng has no voice {voice!r}")
        lib.espeak_SetParameter(RATE, int(rate), 0)
        lib.espeak_SetParameter(PITCH, int(pitch), 0)
        self.chunks = []
        encoded = text.encode("utf-8") + b"\0"
        buffer = ctypes.create_string_buffer(encoded)
        if (
            lib.espeak_Synth(buffer, len(encoded), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
            != EE_OK
        ):
            raise DlkitError(f"espeak-ng cannot speak {text!r}")
        lib.espeak_Synchronize()
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)


@lru_cache(maxsize=1)
def engine():
    return _Engine()


def speak(text, variant="m1", language="en", rate=175, pitch=50, sample_rate=16000):
    """`text` spoken by espeak-ng voice `language+variant`, as float32 in [-1, 1] at
    `sample_rate` (resampled with scipy's polyphase filter), leading and trailing
    silence trimmed.

    Raises:
        DlkitError: an unknown voice, or text espeak-ng produces no sound for.
    """
    from dlkit.edge.audio import resample

    with _LOCK:
        found = engine()
        samples = found.speak(text, f"{language}+{variant}", rate, pitch)
    audio = samples.astype(np.float32) / 32768.0
    audio = trim_silence(audio)
    if not len(audio):
        raise DlkitError(f"espeak-ng produced no sound for {text!r}")
    return resample(audio, found.sample_rate, sample_rate)


def trim_silence(audio, threshold=0.01):
    """`audio` without the leading and trailing samples quieter than `threshold`."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio[:0]
