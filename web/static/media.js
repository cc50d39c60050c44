// Sound and pictures of the room over WebRTC with the server's relay (docs/media.md).
// Two peer connections: "subscribe" (the server offers the stage's tracks; everyone) and "publish"
// (the browser offers its microphone and camera; people on stage). Signaling rides the room socket.

import { t } from "/static/common.js";

const GATHER_WAIT_MS = 2000;
const NOT_ALLOWED = t("The browser was not allowed to use your microphone or camera. Allow it in the address bar, then try again.");
const DEVICE_ERRORS = {
  NotAllowedError: NOT_ALLOWED,
  SecurityError: NOT_ALLOWED,
  NotFoundError: t("No microphone or camera was found. Plug one in, then try again."),
  OverconstrainedError: t("The chosen device is no longer available. Pick another one."),
  NotReadableError: t("Your microphone or camera is in use by another application."),
};

function deviceError(error, what) {
  const reason = error && error.message ? error.message : String(error);
  return DEVICE_ERRORS[error && error.name] || (what === "camera" ? t("Could not start the camera: {reason}", { reason })
    : t("Could not start the microphone: {reason}", { reason }));
}

// Resolves once ICE gathering has finished (or after a short wait: later candidates are trickled).
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_WAIT_MS);
  });
}

export class RoomMedia {
  constructor({ send, me, onChange, onError, onStatus }) {
    this.send = send;
    this.me = me;
    this.onChange = onChange; // the stage needs redrawing (tracks moved, levels changed)
    this.onError = onError;
    this.onStatus = onStatus;
    this.iceServers = [];
    this.sub = null; // subscribing RTCPeerConnection
    this.pub = null; // publishing RTCPeerConnection
    this.slots = new Map(); // mid -> {kind, person_id, stream}
    this.videos = new Map(); // person id -> <video>
    this.audios = new Map(); // mid -> <audio>
    this.levels = {};
    this.videoWanted = true;
    this.local = { stream: null, audio: null, video: null, videoSender: null, audioSender: null };
    this.meter = null;
    this.soundBlocked = false;
  }

  // Listening ---------------------------------------------------------------------------------------

  listen(video) {
    this.videoWanted = video;
    this.send({ type: "media.subscribe", video });
  }

  setVideo(video) {
    this.videoWanted = video;
    if (this.sub) this.send({ type: "media.prefs", video });
  }

  reset() {
    // The room socket reconnected: the server forgot our peer connections; start again.
    for (const pc of [this.sub, this.pub]) if (pc) pc.close();
    this.sub = null;
    this.pub = null;
    this.slots.clear();
    for (const audio of this.audios.values()) audio.remove();
    this.audios.clear();
    this.videos.clear();
    this.levels = {};
  }

  async handle(message) {
    try {
      switch (message.type) {
        case "media.config": this.iceServers = message.ice_servers; break;
        case "media.offer": await this.answerOffer(message); break;
        case "media.tracks": this.setTracks(message.tracks); break;
        case "media.answer": if (this.pub) await this.pub.setRemoteDescription({ type: "answer", sdp: message.sdp }); break;
        case "media.levels": this.levels = message.levels; this.onChange("levels"); break;
        case "media.stopped": this.stopLocal(t("Your microphone is off: {reason}.", { reason: message.reason })); break;
        default: break;
      }
    } catch (error) {
      this.onError(t("Media: {reason}", { reason: error.message || error }));
    }
  }

  async answerOffer(message) {
    if (!this.sub) {
      this.sub = new RTCPeerConnection({ iceServers: this.iceServers });
      this.sub.addEventListener("track", (event) => this.onTrack(event));
      this.sub.addEventListener("icecandidate", (event) => this.trickle("subscribe", event.candidate));
      this.sub.addEventListener("connectionstatechange", () => {
        if (this.sub && this.sub.connectionState === "failed") this.onError(t("The sound connection failed; reload the page to try again."));
      });
    }
    await this.sub.setRemoteDescription({ type: "offer", sdp: message.sdp });
    await this.sub.setLocalDescription(await this.sub.createAnswer());
    await gathered(this.sub);
    this.send({ type: "media.answer", sdp: this.sub.localDescription.sdp });
    this.setTracks(message.tracks);
  }

  trickle(pc, candidate) {
    this.send({ type: "media.ice", pc, candidate: candidate ? candidate.candidate : "",
      sdp_mid: candidate ? candidate.sdpMid : null, sdp_mline_index: candidate ? candidate.sdpMLineIndex : null });
  }

  onTrack(event) {
    const mid = event.transceiver.mid;
    const slot = this.slots.get(mid) || { kind: event.track.kind, person_id: null };
    slot.stream = new MediaStream([event.track]);
    this.slots.set(mid, slot);
    if (event.track.kind === "audio") {
      const audio = document.createElement("audio");
      audio.autoplay = true;
      audio.dataset.mid = mid;
      audio.srcObject = slot.stream;
      document.getElementById("media-audio").append(audio);
      this.audios.set(mid, audio);
      audio.play().catch(() => { this.soundBlocked = true; this.onChange("sound"); });
    }
    this.onChange("tracks");
  }

  setTracks(tracks) {
    for (const t of tracks) {
      const slot = this.slots.get(t.mid) || { kind: t.kind, stream: null };
      slot.person_id = t.person_id;
      this.slots.set(t.mid, slot);
    }
    this.onChange("tracks");
  }

  async unblockSound() {
    this.soundBlocked = false;
    for (const audio of this.audios.values()) await audio.play().catch(() => { this.soundBlocked = true; });
    this.onChange("sound");
  }

  // The <video> showing a speaker, kept across redraws of the stage.
  videoOf(personId) {
    const slot = [...this.slots.values()].find((s) => s.kind === "video" && s.person_id === personId && s.stream);
    if (!slot) return null;
    let video = this.videos.get(personId);
    if (!video) {
      video = document.createElement("video");
      video.autoplay = true;
      video.muted = true; // the sound comes from the audio slot
      video.playsInline = true;
      this.videos.set(personId, video);
    }
    if (video.srcObject !== slot.stream) video.srcObject = slot.stream;
    return video;
  }

  // Publishing --------------------------------------------------------------------------------------

  get publishing() { return Boolean(this.pub); }

  async devices() {
    try {
      const all = await navigator.mediaDevices.enumerateDevices();
      return { audio: all.filter((d) => d.kind === "audioinput"), video: all.filter((d) => d.kind === "videoinput") };
    } catch {
      return { audio: [], video: [] };
    }
  }

  async startPublishing({ micId, studio }) {
    if (this.pub) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.onError(t("This browser cannot use a microphone here (it needs HTTPS and a recent browser)."));
      return;
    }
    const processing = !studio;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { deviceId: micId ? { exact: micId } : undefined,
        echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing } });
    } catch (error) {
      this.onError(deviceError(error, "microphone"));
      return;
    }
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pub = pc;
    this.local.stream = stream;
    this.local.audio = stream.getAudioTracks()[0];
    // Both lines are negotiated once: the camera goes on and off with replaceTrack, without a new offer.
    this.local.audioSender = pc.addTransceiver(this.local.audio, { direction: "sendonly", streams: [stream] }).sender;
    this.local.videoSender = pc.addTransceiver("video", { direction: "sendonly", streams: [stream] }).sender;
    pc.addEventListener("icecandidate", (event) => { if (this.pub === pc) this.trickle("publish", event.candidate); });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed") this.stopLocal(t("Your microphone connection failed; try again."));
    });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    this.send({ type: "media.publish", sdp: pc.localDescription.sdp });
    this.send({ type: "media.mute", kind: "video", muted: true }); // the camera starts off: show the avatar
    this.startMeter(stream);
    this.onStatus(t("You are on air."));
    this.onChange("local");
  }

  setMicMuted(muted) {
    if (this.local.audio) this.local.audio.enabled = !muted;
    this.send({ type: "media.mute", kind: "audio", muted });
  }

  async setCamera(on, cameraId) {
    if (!this.pub) return;
    if (!on) {
      if (this.local.video) this.local.video.stop();
      this.local.video = null;
      await this.local.videoSender.replaceTrack(null);
      this.send({ type: "media.mute", kind: "video", muted: true });
      this.onChange("local");
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { deviceId: cameraId ? { exact: cameraId } : undefined,
        width: { ideal: 640 }, height: { ideal: 480 } } });
      this.local.video = stream.getVideoTracks()[0];
      await this.local.videoSender.replaceTrack(this.local.video);
      this.send({ type: "media.mute", kind: "video", muted: false });
    } catch (error) {
      this.onError(deviceError(error, "camera"));
    }
    this.onChange("local");
  }

  async switchMic(micId, studio) {
    if (!this.pub) return;
    try {
      const processing = !studio;
      const stream = await navigator.mediaDevices.getUserMedia({ audio: { deviceId: micId ? { exact: micId } : undefined,
        echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing } });
      const track = stream.getAudioTracks()[0];
      track.enabled = this.local.audio ? this.local.audio.enabled : true;
      await this.local.audioSender.replaceTrack(track);
      if (this.local.audio) this.local.audio.stop();
      this.local.audio = track;
      this.startMeter(stream);
    } catch (error) {
      this.onError(deviceError(error, "microphone"));
    }
  }

  stopPublishing() {
    if (!this.pub) return;
    this.send({ type: "media.unpublish" });
    this.stopLocal("");
  }

  stopLocal(note) {
    if (this.pub) this.pub.close();
    this.pub = null;
    for (const track of [this.local.audio, this.local.video]) if (track) track.stop();
    this.local = { stream: null, audio: null, video: null, videoSender: null, audioSender: null };
    if (this.meter) { this.meter.context.close(); this.meter = null; }
    if (note) this.onStatus(note);
    this.onChange("local");
  }

  // A microphone meter drawn from the local track (no server round trip).
  startMeter(stream) {
    if (this.meter) this.meter.context.close();
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 512;
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const meter = { context, timer: null };
    const tick = () => {
      if (this.meter !== meter) return;
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      const db = 20 * Math.log10(Math.sqrt(sum / samples.length) || 1e-9);
      const element = document.getElementById("mic-meter");
      if (element) element.value = Math.max(0, Math.min(1, (db + 60) / 60));
      setTimeout(tick, 100);
    };
    this.meter = meter;
    tick();
  }
}
