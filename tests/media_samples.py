"""Small real media files for the alert tests, made here (no binary files in the repository).

``animated_gif()`` writes a true animated GIF (uncompressed LZW: a clear code
every 126 pixels keeps every code 8 bits wide, which any decoder reads);
``tone_wav()`` a short sine tone as 16-bit PCM WAV.
"""

from __future__ import annotations

import io
import math
import struct
import wave

CLEAR, END = 0x80, 0x81
RUN = 126  # literals between clear codes, so the code table never widens past 8 bits


def _image_data(pixels: bytes) -> bytes:
    codes = bytearray()
    for start in range(0, len(pixels), RUN):
        codes.append(CLEAR)
        codes.extend(pixels[start:start + RUN])
    codes.append(END)
    blocks = bytearray([7])  # LZW minimum code size: 7 bits of colour index
    for start in range(0, len(codes), 255):
        chunk = codes[start:start + 255]
        blocks.append(len(chunk))
        blocks.extend(chunk)
    blocks.append(0)
    return bytes(blocks)


def animated_gif(size: int = 160, frames: int = 8) -> bytes:
    """A star of colour turning on a transparent background: ``size`` pixels square."""
    palette = bytearray()
    for index in range(128):  # index 0 transparent, then a hue wheel
        hue = index / 127
        palette += bytes(int(255 * (0.5 + 0.5 * math.cos(2 * math.pi * (hue + shift))))
                         for shift in (0, 1 / 3, 2 / 3))
    out = io.BytesIO()
    out.write(b"GIF89a" + struct.pack("<HHBBB", size, size, 0xF6, 0, 0) + bytes(palette))
    out.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00")  # loop forever
    centre = size / 2
    for frame in range(frames):
        turn = 2 * math.pi * frame / frames
        pixels = bytearray()
        for y in range(size):
            for x in range(size):
                dx, dy = x - centre, y - centre
                radius = math.hypot(dx, dy) / centre
                angle = math.atan2(dy, dx) + turn
                edge = 0.62 + 0.3 * math.cos(5 * angle)
                if radius > edge:
                    pixels.append(0)
                else:
                    pixels.append(1 + int(126 * ((angle / (2 * math.pi)) % 1)))
        out.write(b"\x21\xf9\x04\x09" + struct.pack("<H", 8) + b"\x00\x00")  # 80 ms, index 0 clear
        out.write(b"\x2c" + struct.pack("<HHHHB", 0, 0, size, size, 0))
        out.write(_image_data(bytes(pixels)))
    out.write(b"\x3b")
    return out.getvalue()


def tone_wav(seconds: float = 0.6, frequency: float = 660.0, rate: int = 22050) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        samples = (int(12000 * math.sin(2 * math.pi * frequency * n / rate))
                   for n in range(int(seconds * rate)))
        writer.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return out.getvalue()
