"""The hooks into aiortc's internals (realtime/media/hooks.py) still fit the installed aiortc.

Each test names the internal it relies on; when an aiortc upgrade moves one, the failure says which.
"""

from __future__ import annotations

import inspect
from fractions import Fraction
from importlib.metadata import version

import aioice.ice
import av
import pytest
from aiortc import RTCRtpReceiver, RTCRtpSender, rtcrtpreceiver, rtcrtpsender
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from realtime.media import hooks


def test_aiortc_is_the_pinned_version() -> None:
    assert version("aiortc") == hooks.AIORTC_VERSION, "aiortc changed: re-check every hook in realtime/media/hooks.py"


def test_the_receivers_decoder_thread_looks_up_get_decoder_in_its_module() -> None:
    source = inspect.getsource(rtcrtpreceiver.decoder_worker)
    assert "get_decoder(codec)" in source, "decoder_worker no longer calls rtcrtpreceiver.get_decoder"
    assert "decoder.decode(encoded_frame)" in source
    assert "output_q.put(frame)" in source


def test_the_sender_packs_pre_encoded_packets_and_routes_pli_to_send_keyframe() -> None:
    source = inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert ".pack(data)" in source, "RTCRtpSender no longer sends av.Packet as it is"
    rtcp = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "RTCP_PSFB_PLI" in rtcp and "self._send_keyframe()" in rtcp
    assert hasattr(rtcrtpsender, "RTCRtpSender")


def test_the_receiver_can_send_a_pli() -> None:
    parameters = inspect.signature(RTCRtpReceiver._send_rtcp_pli).parameters
    assert list(parameters) == ["self", "media_ssrc"]
    assert hasattr(RTCRtpReceiver, "getSynchronizationSources")


def test_aioice_gathers_host_addresses_through_its_module_function() -> None:
    assert list(inspect.signature(aioice.ice.get_host_addresses).parameters) == ["use_ipv4", "use_ipv6"]
    assert "get_host_addresses(" in inspect.getsource(aioice.ice.Connection.gather_candidates)
    hooks.limit_host_addresses(["127.0.0.1"])
    try:
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
    finally:
        hooks.limit_host_addresses(None)
    assert aioice.ice.get_host_addresses is hooks._original_host_addresses


@pytest.mark.parametrize(
    ("mime", "rate", "encoder"), [("audio/opus", 48000, OpusEncoder), ("video/VP8", 90000, Vp8Encoder)]
)
def test_encoded_frames_come_out_as_packets_the_sender_packs_unchanged(mime: str, rate: int, encoder: type) -> None:
    hooks.install()
    codec = RTCRtpCodecParameters(mimeType=mime, clockRate=rate, payloadType=96)
    decoder = rtcrtpreceiver.get_decoder(codec)
    data = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A]) + bytes(range(200))
    (packet,) = decoder.decode(JitterFrame(data, timestamp=rate * 2))
    assert isinstance(packet, av.Packet)
    assert bytes(packet) == data
    assert packet.pts == rate * 2 and packet.time_base == Fraction(1, rate)
    payloads, timestamp = encoder().pack(packet)
    assert timestamp == rate * 2
    joined = b"".join(payloads) if mime == "audio/opus" else b"".join(pl[4:] for pl in payloads)
    assert data in joined or joined == data


def test_a_keyframe_request_goes_to_the_track_when_it_can_take_it() -> None:
    hooks.install()
    asked: list[str] = []

    class Track:
        def request_keyframe(self) -> None:
            asked.append("track")

    class Sender:
        track = Track()

    RTCRtpSender._send_keyframe(Sender())  # type: ignore[arg-type]
    assert asked == ["track"]


def test_uninstall_restores_aiortc() -> None:
    hooks.install()
    hooks.uninstall()
    assert rtcrtpreceiver.get_decoder is hooks._original_get_decoder
    assert RTCRtpSender._send_keyframe is hooks._original_send_keyframe
    hooks.install()
