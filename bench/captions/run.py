"""bench/captions: live Whisper captions for each engine and model, against offline transcription of the same audio
by the same engine, measured in the same run.

    python bench/captions/run.py [--quick] [--combos faster-whisper:tiny.en,openai-whisper:tiny.en] [--streams 1,2,4]

The pairs measured by default: the server's default engine and model (faster-whisper, tiny.en), openai-whisper on
the same model (converted once), and the default engine on every other model this machine has (``base``). All on
real speech: a 54 s talk of 12 human clips (../shared/data/speech; tests/data/speech when that is missing).

1. offline (the baseline): each pair transcribes the talk, and the 65 s tts passage, in one call each: word error
   rate and real-time factor (engine seconds / audio seconds). The default pair's offline word timestamps of
   each clip are the ground truth of when words were said.
2. live (the product path, live.py): ``forumlive demo`` as a process of its own, a viewer on the room WebSocket,
   the talk played into a live session in real time; per word: its caption.final's arrival at the viewer minus
   the end of the word in the audio (p50, p95), and the first time it was shown, in a caption.partial or else
   the final (p50); streaming WER from the finals, streaming RTF from /api/captions/status.
3. streams (streams.py): N speakers at once through ``CaptionService._listen`` (a speaker's live path) in this
   process, with the server's default engine slots for this machine, fed in real time: step lag, its growth, and
   the per-word latencies at each N. ``concurrent_streams`` is the largest N sustained (``SUSTAINED``); the
   ladder stops at the first N that is not.

Writes bench/results/captions.json (not with ``--quick``); its ``summary`` is for the default pair.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.captions import live  # noqa: E402
from bench.captions.speech import (  # noqa: E402
    GAP_S,
    OFFLINE_MAX_TOKENS,
    WER,
    Clip,
    Program,
    TimedWord,
    ground_truth,
    latencies,
    load_clips,
    offline_words,
    pct,
    program,
    rotation,
    speech_dir,
    stream_text,
    wer,
)
from bench.captions.streams import (  # noqa: E402
    SUSTAINED,
    Ladder,
    Stream,
    cpu_jiffies,
    others_pct,
    process_jiffies,
)
from bench.common import table, write_results  # noqa: E402
from captioning.engine import SAMPLE_RATE_HZ, Engine, TranscribeOptions  # noqa: E402
from server.settings import Settings  # noqa: E402

DEFAULT = Settings()  # the server's defaults: engine, model
ENGINES = ("faster-whisper", "openai-whisper")
# How long after the end of the talk the live part waits for its last captions. An engine slower than real time
# on this path falls further behind with every step; its words still without a final caption then are censored.
OVERTIME_S = 20.0
TARGETS = {"final_p50_s": 1.5, "final_p95_s": 3.0, "concurrent_streams": 6}
LATENCY = (
    "final latency of a word = arrival of its caption.final at the viewer - (origin + the word's end in the audio); "
    "partial latency = first time the word was shown (in a caption.partial, else its caption.final) - the same; "
    "origin = caption.final at - start_s (the server's clock origin of the talk, speed 1); word end times = the "
    "default engine's offline word timestamps of each clip; caption words are matched to them in order (difflib "
    "on normalized words), unmatched words are not timed. Percentiles over timed words, linear interpolation."
)
OTHERS = (
    "others_pct: the share of the machine's CPU time (all cores) that other processes took during the measurement: "
    "busy time from /proc/stat less that of the bench process (and the server process in the live part)"
)
RTF = "engine seconds / audio seconds: offline = one transcribe call on the whole audio; streaming = busy_s / audio_s"
OFFLINE_COLUMNS = ["engine", "model", "audio", "audio_s", "seconds", "rtf", "wer", "words"]
LIVE_COLUMNS = [
    "engine",
    "model",
    "audio_s",
    "final_p50_s",
    "final_p95_s",
    "partial_p50_s",
    "timed",
    "censored",
    "wer_stream",
    "wer_offline",
    "wer_ratio",
    "rtf_stream",
    "rtf_offline",
    "rtf_ratio",
    "lag_max_s",
    "others_pct",
]
STREAM_COLUMNS = [
    "engine",
    "model",
    "streams",
    "workers",
    "lag_p50_s",
    "lag_p95_s",
    "lag_growth_s",
    "final_p50_s",
    "final_p95_s",
    "partial_p50_s",
    "wer_stream",
    "rtf_per_stream",
    "steps_per_stream_s",
    "windows_per_call",
    "others_pct",
    "sustained",
]

log = logging.getLogger("bench.captions")


def load_engine(name: str, model: str, models_dir: Path) -> Engine:
    from captioning.models import find_model

    if name == "openai-whisper":
        from captioning.convert import convert
        from captioning.engines.openai import OpenAIWhisperEngine

        checkpoint = models_dir / f"{Path(model).name}.pt"
        convert(find_model(model).path, checkpoint)
        return OpenAIWhisperEngine(checkpoint)
    from captioning.engines.faster import FasterWhisperEngine

    return FasterWhisperEngine(find_model(model).path)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def offline(engine_name: str, model: str, engine: Engine, audio: Any, reference: str, label: str) -> dict[str, Any]:  # noqa: ANN401
    began = time.perf_counter()
    segments = engine.transcribe(audio, TranscribeOptions(max_new_tokens=OFFLINE_MAX_TOKENS))
    seconds = time.perf_counter() - began
    duration = len(audio) / SAMPLE_RATE_HZ
    text = " ".join(s.text for s in segments)
    return {
        "part": "offline",
        "engine": engine_name,
        "model": model,
        "audio": label,
        "audio_s": round(duration, 1),
        "seconds": round(seconds, 2),
        "rtf": round(seconds / duration, 3),
        "wer": wer(reference, text),
        "words": len(reference.split()),
        "text": text.strip(),
    }


def run_live(engine: str, model: str, tmp: Path, talk: Program, warmup: Program, truth: list[TimedWord]) -> dict:
    data_dir = tmp / f"live-{engine}-{model}" / "data"
    data_dir.mkdir(parents=True)
    if engine == "openai-whisper":  # converted once, in the run's models folder; the server finds it up to date
        (data_dir / "models").mkdir()
        shutil.copy2(tmp / "models" / f"{Path(model).name}.pt", data_dir / "models")
    server = live.DemoServer(data_dir, engine, model)
    try:
        server.wait_up()
        busy0, ours0 = cpu_jiffies(), process_jiffies(server.process.pid) + process_jiffies()
        result = asyncio.run(live.measure(server, talk, warmup, OVERTIME_S))
        busy1, ours1 = cpu_jiffies(), process_jiffies(server.process.pid) + process_jiffies()
    finally:
        server.stop()
    shown = sorted(result.pop("shown"), key=lambda s: s.at)
    timing = latencies(truth, shown, result["origin"], result["stopped"])
    text = stream_text(shown)
    return {
        "part": "live",
        "engine": engine,
        "model": model,
        "audio_s": round(talk.duration_s, 1),
        "final_p50_s": pct(timing.final_s, 50),
        "final_p95_s": pct(timing.final_s, 95),
        "final_min_s": round(min(timing.final_s), 2) if timing.final_s else None,
        "final_max_s": round(max(timing.final_s), 2) if timing.final_s else None,
        "partial_p50_s": pct(timing.first_s, 50),
        "partial_p95_s": pct(timing.first_s, 95),
        "timed": f"{len(timing.final_s)}/{timing.words}",
        "censored": timing.censored,
        "behind": result["stopped"] is not None,
        "audio_done_s": result["audio_done_s"],
        "first_shown_in_partial": timing.from_partial,
        "wer_stream": wer(talk.reference, text),
        "rtf_stream": result["rtf"],
        "lag_max_s": result["status_lag_max_s"],
        "captions": sum(s.final for s in shown),
        "partials": sum(not s.final for s in shown),
        "others_pct": others_pct(busy0, busy1, ours1 - ours0),
        "origin_after_post_s": result["origin_after_post_s"],
        "origin_spread_s": result["origin_spread_s"],
        "post_answered_after_s": result["post_answered_after_s"],
        "text": text,
    }


def stream_programs(clips: list[Clip], n: int, duration_s: float, per_clip: dict[str, list[TimedWord]]) -> list:
    """N different programs: stream i starts 5 clips further round the list than stream i - 1."""
    streams = []
    for index in range(n):
        prog = program(rotation(clips, 5 * index, duration_s))
        streams.append(Stream(index, prog, ground_truth(prog, per_clip)))
    return streams


async def run_ladder(
    engine: str,
    model: str,
    tmp: Path,
    counts: list[int],
    duration_s: float,
    clips: list[Clip],
    per_clip: dict[str, list[TimedWord]],
    workers: int | None = None,
) -> list[dict[str, Any]]:
    ladder = Ladder(tmp, engine, model, max(counts), workers)
    rows = []
    try:
        await ladder.start(clips[0].audio)
        for n in counts:
            print(f"streams: {engine}, N={n} for {duration_s:.0f} s ...", flush=True)
            result = await ladder.run(stream_programs(clips, n, duration_s, per_clip))
            rows.append({"part": "streams", "engine": engine, "model": model, "workers": ladder.workers, **result})
            row = rows[-1]
            print(
                f"  lag p50 {row['lag_p50_s']} s, growth {row['lag_growth_s']} s, final p50 {row['final_p50_s']} s, "
                f"p95 {row['final_p95_s']} s, sustained: {row['sustained']}",
                flush=True,
            )
            if not row["sustained"]:
                break
    finally:
        await ladder.stop()
    return rows


def combos(spec: str | None) -> list[tuple[str, str]]:
    """(engine, model) pairs: given as ``engine:model,...``, or by default the server's default pair, openai-whisper
    on the same model, and the default engine on every other model this machine has."""
    if spec:
        return [(pair.split(":", 1)[0].strip(), pair.split(":", 1)[1].strip()) for pair in spec.split(",") if pair]
    from captioning.models import available_models

    engine, model = DEFAULT.captions_engine, DEFAULT.captions_model
    pairs = [(engine, model), *((other, model) for other in ENGINES if other != engine)]
    return pairs + [(engine, info.name) for info in available_models() if info.name != model]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="default engine and model, jfk.wav live, N = 1, 2 (12 s)")
    parser.add_argument("--combos", help="engine:model pairs, e.g. faster-whisper:tiny.en,openai-whisper:tiny.en")
    parser.add_argument("--streams", default="1,2,4,6,8", help="N for the default pair (stops at the first N lost)")
    parser.add_argument("--other-streams", default="1", help="N for the other pairs")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of speech per stream (quick: 12)")
    parser.add_argument("--other-duration", type=float, default=20.0, help="the same for the other pairs")
    parser.add_argument("--workers", type=int, help="engine slots in the streams part (default: the server's here)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    default = (DEFAULT.captions_engine, DEFAULT.captions_model)
    pairs = [default] if args.quick else combos(args.combos)
    started = time.monotonic()
    clips = load_clips()
    by_name = {c.name: c for c in clips}
    talk = program([by_name["jfk.wav"]] if args.quick else clips)
    warmup = program([min(clips, key=lambda c: c.duration_s)])
    print(f"speech from {speech_dir()}: talk of {talk.duration_s:.1f} s ({len(talk.clips)} clips)", flush=True)
    print("pairs: " + ", ".join(f"{e} {m}" for e, m in pairs), flush=True)
    offline_rows: list[dict[str, Any]] = []
    live_rows: list[dict[str, Any]] = []
    stream_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-captions-") as name:
        tmp = Path(name)
        # The ground truth of word times: the default pair's offline word timestamps, clip by clip.
        reference_engine = load_engine(*default, tmp / "models")
        per_clip = {c.name: offline_words(reference_engine, c.audio) for c in clips}
        del reference_engine
        truth = ground_truth(talk, per_clip)
        passage = [] if args.quick else load_clips(("tts_passage.wav",))
        for engine_name, model in pairs:
            print(f"offline: {engine_name} {model} ...", flush=True)
            engine = load_engine(engine_name, model, tmp / "models")
            offline(engine_name, model, engine, warmup.audio, "", "warm-up")  # the first call is slower
            offline_rows.append(offline(engine_name, model, engine, talk.audio, talk.reference, "talk"))
            for clip in passage:
                offline_rows.append(offline(engine_name, model, engine, clip.audio, clip.reference, clip.name))
            del engine
        for engine_name, model in pairs:
            print(f"live: {engine_name} {model}, {talk.duration_s:.0f} s talk via forumlive demo ...", flush=True)
            row = run_live(engine_name, model, tmp, talk, warmup, truth)
            base = next(r for r in offline_rows if r["engine"] == engine_name and r["model"] == model)
            row |= {
                "wer_offline": base["wer"],
                "wer_ratio": ratio(row["wer_stream"], base["wer"]),
                "rtf_offline": base["rtf"],
                "rtf_ratio": ratio(row["rtf_stream"], base["rtf"]),
            }
            live_rows.append(row)
            print(
                f"  final p50 {row['final_p50_s']} s, p95 {row['final_p95_s']} s, partial p50 {row['partial_p50_s']} s",
                flush=True,
            )
        for engine_name, model in pairs:
            steps = args.streams if (engine_name, model) == default else args.other_streams
            counts = [1, 2] if args.quick else [int(n) for n in steps.split(",")]
            duration = (
                12.0 if args.quick else (args.duration if (engine_name, model) == default else args.other_duration)
            )
            stream_rows += asyncio.run(
                run_ladder(engine_name, model, tmp, counts, duration, clips, per_clip, args.workers)
            )
    print("\noffline transcription (the baseline)")
    print(table(offline_rows, OFFLINE_COLUMNS))
    print("\nlive: a talk played in real time into forumlive demo, captions at a WebSocket viewer")
    print(table(live_rows, LIVE_COLUMNS))
    print(f"\nconcurrent speaker streams (CaptionService._listen, real time); {SUSTAINED}")
    print(table(stream_rows, STREAM_COLUMNS))
    summary = summarize(live_rows, stream_rows, *default)
    print(json.dumps(summary, indent=2))
    if args.quick:
        print("quick run: bench/results/captions.json left as it was")
        return
    lag_series = {f"{r['engine']} {r['model']} N={r['streams']}": r.pop("lag_series") for r in stream_rows}
    path = write_results(
        "captions",
        summary,
        [*offline_rows, *live_rows, *stream_rows],
        definitions={
            "latency": LATENCY,
            "rtf": RTF,
            "wer": WER,
            "sustained": SUSTAINED,
            "others": OTHERS,
            "targets": TARGETS,
        },
        settings={
            "pairs": [f"{e}:{m}" for e, m in pairs],
            "speech": str(speech_dir()),
            "talk": talk.names,
            "talk_s": round(talk.duration_s, 1),
            "gap_s": GAP_S,
            "live_warmup": warmup.names,
            "stream_clips": [c.name for c in clips],
            "stream_duration_s": {"default": args.duration, "others": args.other_duration},
            "offline_max_new_tokens": OFFLINE_MAX_TOKENS,
            "caption_workers": args.workers or DEFAULT.captions_workers,
            "caption_batch": DEFAULT.captions_batch,
        },
        lag_series=lag_series,
        duration_s=round(time.monotonic() - started),
    )
    print(f"wrote {path}")


def summarize(live_rows: list[dict[str, Any]], stream_rows: list[dict[str, Any]], engine: str, model: str) -> dict:
    ours = next(r for r in live_rows if r["engine"] == engine and r["model"] == model)
    ladder = [r for r in stream_rows if r["engine"] == engine and r["model"] == model]
    sustained = [r["streams"] for r in ladder if r["sustained"]]
    within = [
        r["streams"]
        for r in ladder
        if r["sustained"]
        and r["final_p50_s"] is not None
        and r["final_p50_s"] <= TARGETS["final_p50_s"]
        and r["final_p95_s"] <= TARGETS["final_p95_s"]
    ]
    concurrent = max(sustained, default=0)
    return {
        "engine": engine,
        "model": model,
        "final_p50_s": ours["final_p50_s"],
        "final_p95_s": ours["final_p95_s"],
        "partial_p50_s": ours["partial_p50_s"],
        "wer_stream": ours["wer_stream"],
        "wer_offline": ours["wer_offline"],
        "rtf": ours["rtf_stream"],
        "rtf_offline": ours["rtf_offline"],
        "concurrent_streams": concurrent,
        "concurrent_streams_tested": max((r["streams"] for r in ladder), default=0),
        "concurrent_streams_within_latency_targets": max(within, default=0),
        "final_p50_target_met": ours["final_p50_s"] is not None and ours["final_p50_s"] <= TARGETS["final_p50_s"],
        "final_p95_target_met": ours["final_p95_s"] is not None and ours["final_p95_s"] <= TARGETS["final_p95_s"],
        "concurrent_streams_target_met": concurrent >= TARGETS["concurrent_streams"],
    }


if __name__ == "__main__":
    main()
