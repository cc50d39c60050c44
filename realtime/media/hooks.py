"""Every place forumlive reaches into aiortc's internals, in one module.

aiortc has no public API for an SFU's needs, so three small hooks are installed by ``install()``:

1. **Encoded receive.** ``aiortc.rtcrtpreceiver.get_decoder`` is replaced by a factory whose "decoder"
   wraps each frame the jitter buffer reassembles in an ``av.Packet`` (pts = RTP timestamp, time base =
   1/clock rate) instead of decoding it. A remote track then yields encoded packets, and
   ``RTCRtpSender`` already sends an ``av.Packet`` as it is (``Encoder.pack``): no decode, no re-encode.
   This applies to every receiver in the process; the server has no use for aiortc's own decoding.
2. **Keyframe requests.** A subscriber's PLI/FIR reaches ``RTCRtpSender._send_keyframe``, which only
   sets a flag for aiortc's encoder. For a sender whose track has ``request_keyframe()`` the call is
   passed to the track instead (and so on to the publisher, rate-limited by the caller).
   ``request_keyframe(receiver)`` sends a PLI to a publisher through the receiver's RTCP path.
3. **Host addresses.** ``limit_host_addresses`` narrows the addresses aioice gathers candidates on
   (aioice leaves out 127.0.0.1, which loopback tests need, and a server may want one interface).

``tests/realtime/media/test_hooks.py`` checks each of these against the installed aiortc and fails
loudly when an upgrade moves them; the aiortc version is pinned in ``pyproject.toml``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import aioice.ice
import av
from aiortc import RTCRtpReceiver, RTCRtpSender, rtcrtpreceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

AIORTC_VERSION = "1.16.0"

_installed = False
_original_get_decoder: Callable[[RTCRtpCodecParameters], Any] = rtcrtpreceiver.get_decoder
_original_send_keyframe: Callable[[RTCRtpSender], None] = RTCRtpSender._send_keyframe
_original_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses


class EncodedFrameDecoder:
    """Stands in for aiortc's decoder: one reassembled frame in, the same bytes out as an ``av.Packet``."""

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.time_base = Fraction(1, codec.clockRate)

    def decode(self, encoded_frame: Any) -> list[av.Packet]:  # noqa: ANN401 - aiortc's JitterFrame
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = self.time_base
        return [packet]


def _encoded_decoder(codec: RTCRtpCodecParameters) -> EncodedFrameDecoder:
    return EncodedFrameDecoder(codec)


def _send_keyframe(sender: RTCRtpSender) -> None:
    track = sender.track
    forward = getattr(track, "request_keyframe", None)
    if callable(forward):
        forward()
    else:
        _original_send_keyframe(sender)


def install() -> None:
    """Install the encoded-receive and keyframe hooks (idempotent)."""
    global _installed
    rtcrtpreceiver.get_decoder = _encoded_decoder
    RTCRtpSender._send_keyframe = _send_keyframe  # type: ignore[method-assign]
    _installed = True


def uninstall() -> None:
    """Put aiortc back as it was (tests use this to compare with the stock path)."""
    global _installed
    rtcrtpreceiver.get_decoder = _original_get_decoder
    RTCRtpSender._send_keyframe = _original_send_keyframe  # type: ignore[method-assign]
    _installed = False


def installed() -> bool:
    return _installed


def limit_host_addresses(addresses: Sequence[str] | None) -> None:
    """Gather ICE host candidates only on ``addresses`` (``None`` or empty: every interface, aioice's default)."""
    if addresses:
        chosen = list(addresses)
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(chosen)
    else:
        aioice.ice.get_host_addresses = _original_host_addresses


async def request_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Send a picture loss indication to the publisher behind ``receiver``; False if nothing was received yet."""
    sources = receiver.getSynchronizationSources()
    if not sources:
        return False
    newest = max(sources, key=lambda s: s.timestamp)
    await receiver._send_rtcp_pli(newest.source)  # noqa: SLF001 - the one private call, checked by tests
    return True
