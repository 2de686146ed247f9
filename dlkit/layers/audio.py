"""Audio front end inside the model: raw samples -> log-magnitude spectrogram, so an exported
model takes audio as recorded (TFLite builtins RFFT2D and COMPLEX_ABS)."""

import keras


@keras.saving.register_keras_serializable(package="dlkit")
class Spectrogram(keras.layers.Layer):
    """Log-magnitude STFT: (batch, samples) float32 in [-1, 1] -> (batch, frames, bins).

    frames = 1 + (samples - frame_length) // frame_step (no padding, so a stream cut
    into overlapping windows gives the same frames); bins = fft_length // 2 + 1. Each
    frame is Hann-windowed; the output is log(|STFT| + 1e-6).

    Args:
        frame_length: int. Samples per frame (400 = 25 ms at 16 kHz).
        frame_step: int. Samples between frames (160 = 10 ms).
        fft_length: int. FFT size (>= frame_length).
    """

    def __init__(self, frame_length=400, frame_step=160, fft_length=512, **kwargs):
        super().__init__(**kwargs)
        self.frame_length, self.frame_step, self.fft_length = frame_length, frame_step, fft_length

    def call(self, audio):
        import tensorflow as tf

        stft = tf.signal.stft(
            audio, self.frame_length, self.frame_step, self.fft_length, window_fn=tf.signal.hann_window
        )
        return tf.math.log(tf.abs(stft) + 1e-6)

    def compute_output_shape(self, input_shape):
        samples = input_shape[1]
        frames = None if samples is None else 1 + (samples - self.frame_length) // self.frame_step
        return (input_shape[0], frames, self.fft_length // 2 + 1)

    def get_config(self):
        return {
            **super().get_config(),
            "frame_length": self.frame_length,
            "frame_step": self.frame_step,
            "fft_length": self.fft_length,
        }
