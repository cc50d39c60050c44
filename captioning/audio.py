"""Audio conversion for captioning: to float32 mono at 16 kHz, and a simple energy check for silence."""

from __future__ import annotations

import numpy as np

from captioning.engine import SAMPLE_RATE_HZ

INT16_SCALE = 32768.0


def pcm16_to_float(samples: bytes | np.ndarray) -> np.ndarray:
    """Signed 16-bit PCM (bytes or int16 array) to float32 in [-1, 1)."""
    array = np.frombuffer(samples, dtype="<i2") if isinstance(samples, bytes | bytearray) else samples
    return array.astype(np.float32) / INT16_SCALE


def to_mono(samples: np.ndarray, channels: int) -> np.ndarray:
    """Average interleaved channels into one."""
    if channels == 1:
        return samples
    usable = len(samples) - len(samples) % channels
    return samples[:usable].reshape(-1, channels).mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, rate_hz: int, target_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Resample by linear interpolation (good enough for speech recognition from 48 kHz WebRTC audio)."""
    if rate_hz == target_hz or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    duration_s = len(samples) / rate_hz
    count = int(round(duration_s * target_hz))
    source_t = np.arange(len(samples), dtype=np.float64) / rate_hz
    target_t = np.arange(count, dtype=np.float64) / target_hz
    return np.interp(target_t, source_t, samples).astype(np.float32)


def rms_dbfs(samples: np.ndarray) -> float:
    """Loudness as RMS in dB relative to full scale (-inf for digital silence)."""
    if len(samples) == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")
