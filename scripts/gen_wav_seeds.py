#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the seed files of the WAV fuzz smoke test (tests/golden/wav/): three tiny, valid WAV files
(PCM16 mono 16 kHz, PCM8 stereo 8 kHz, IEEE float mono 22.05 kHz) for tests/audio/fuzz_wav.cc to
mutate. Standard library only; deterministic.

    /usr/bin/python3 scripts/gen_wav_seeds.py
"""
import math
import os
import struct
import wave

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "golden", "wav")


def pcm(path, channels, rate, width, frames):
    with wave.open(path, "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        data = b""
        for i in range(frames):
            for c in range(channels):
                v = math.sin(2 * math.pi * 440 * i / rate + c)
                data += struct.pack("<h", int(v * 12000)) if width == 2 else struct.pack("B", int(128 + v * 100))
        f.writeframes(data)


def ieee_float(path, rate, frames):
    data = b"".join(struct.pack("<f", 0.5 * math.sin(i / 3)) for i in range(frames))
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)  # WAVE_FORMAT_IEEE_FLOAT, mono
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


os.makedirs(OUT, exist_ok=True)
pcm(os.path.join(OUT, "mono16k_pcm16.wav"), 1, 16000, 2, 64)
pcm(os.path.join(OUT, "stereo8k_pcm8.wav"), 2, 8000, 1, 48)
ieee_float(os.path.join(OUT, "mono22k_float.wav"), 22050, 40)
