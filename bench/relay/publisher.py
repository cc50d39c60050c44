"""The publisher: one aiortc peer sending speech (Opus, 20 ms) or moving 640x480 video (VP8, 30 fps).

    python bench/relay/publisher.py --port PORT --kind audio|video [--video-kbps 1250]

Audio is tests/data/speech/jfk.wav, looped, in 20 ms frames paced in real time: aiortc's encoder makes one
Opus packet of each, 50 a second. Video is a noise texture that moves a few pixels a frame with fresh grain
on top, so that VP8 has something to spend its bits on (a still picture compresses to almost nothing);
aiortc's encoder otherwise follows the receiver's bandwidth estimate (REMB) between 250 kbit/s and
1.5 Mbit/s, so its target is pinned to ``--video-kbps`` here, in this process only.

Commands on stdin (see ``wire.serve_commands``): ``stats`` -> frames made, RTP packets and bytes sent.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import sys
import time
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import vpx
from aiortc.mediastreams import VideoStreamTrack

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.relay import wire  # noqa: E402
from server.rooms.media import codec_preferences  # noqa: E402

SPEECH = ROOT / "tests" / "data" / "speech" / "jfk.wav"
AUDIO_PTIME_S = 0.020
WIDTH, HEIGHT = 640, 480
GRAIN_FRAMES = 30  # fresh grain is drawn once and cycled: drawing it every frame costs the publisher CPU
DRIFT_PX = 160  # how far the texture wanders before it turns back


class Speech(MediaStreamTrack):
    """A WAV file, looped, in 20 ms frames paced in real time."""

    kind = "audio"

    def __init__(self, path: Path) -> None:
        super().__init__()
        with wave.open(str(path)) as w:
            assert w.getsampwidth() == 2 and w.getnchannels() == 1
            self.rate = w.getframerate()
            self.samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        self.frame_samples = int(self.rate * AUDIO_PTIME_S)
        self.frames = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        else:
            await asyncio.sleep(self._start + self.frames * AUDIO_PTIME_S - time.monotonic())
        at = (self.frames * self.frame_samples) % (len(self.samples) - self.frame_samples)
        frame = av.AudioFrame.from_ndarray(
            self.samples[at : at + self.frame_samples].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self.rate
        frame.pts = self.frames * self.frame_samples
        frame.time_base = fractions.Fraction(1, self.rate)
        self.frames += 1
        return frame


class MovingNoise(VideoStreamTrack):
    """640x480 frames at 30 fps (aiortc's pacing): a drifting noise texture with fresh grain."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(1)
        texture = rng.integers(0, 256, (HEIGHT + DRIFT_PX + 1, WIDTH + DRIFT_PX + 1)).astype(np.uint16)
        # A 2x2 average: less like static, more like a busy scene.
        self.texture = ((texture[:-1, :-1] + texture[1:, :-1] + texture[:-1, 1:] + texture[1:, 1:]) // 4).astype(
            np.int16
        )
        self.grain = rng.integers(-6, 7, (GRAIN_FRAMES, HEIGHT, WIDTH), dtype=np.int16)
        self.chroma = np.full((HEIGHT // 2, WIDTH), 128, dtype=np.uint8)
        self.frames = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        i = self.frames
        x, y = _bounce(3 * i, DRIFT_PX), _bounce(2 * i, DRIFT_PX)
        luma = np.clip(self.texture[y : y + HEIGHT, x : x + WIDTH] + self.grain[i % GRAIN_FRAMES], 0, 255)
        frame = av.VideoFrame.from_ndarray(np.concatenate([luma.astype(np.uint8), self.chroma]), format="yuv420p")
        frame.pts, frame.time_base = pts, time_base
        self.frames += 1
        return frame


def _bounce(step: int, span: int) -> int:
    position = step % (2 * span)
    return position if position < span else 2 * span - position


def pin_video_bitrate(bits_per_s: int) -> None:
    """Make aiortc's VP8 encoder keep one target bitrate, whatever the receiver's estimate says."""
    vpx.Vp8Encoder.target_bitrate = property(lambda self: bits_per_s, lambda self, value: None)  # type: ignore[assignment]


async def publish(port: int, kind: str) -> None:
    wire.loopback()
    track: Speech | MovingNoise = Speech(SPEECH) if kind == "audio" else MovingNoise()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    connected = asyncio.Event()
    pc.on("connectionstatechange", lambda: connected.set() if pc.connectionState == "connected" else None)
    pc.addTransceiver(track, direction="sendonly").setCodecPreferences(codec_preferences(kind))
    await pc.setLocalDescription(await pc.createOffer())
    answer = await wire.request(port, {"op": "publish", "sdp": pc.localDescription.sdp})
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    async with asyncio.timeout(30):
        await connected.wait()

    async def handle(command: dict[str, Any]) -> dict[str, Any]:
        assert command["cmd"] == "stats"
        sent = [s for s in (await pc.getStats()).values() if s.type == "outbound-rtp"]
        return {
            "frames": track.frames,
            "packets": sum(s.packetsSent for s in sent),
            "bytes": sum(s.bytesSent for s in sent),
        }

    wire.reply({"ready": True})
    await wire.serve_commands(handle)
    await pc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=["audio", "video"], required=True)
    parser.add_argument("--video-kbps", type=int, default=1250)
    args = parser.parse_args()
    pin_video_bitrate(args.video_kbps * 1000)
    wire.run(publish(args.port, args.kind))


if __name__ == "__main__":
    main()
