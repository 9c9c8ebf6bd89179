"""A short beep at each contraction's start. Missing audio is logged once, never fatal."""
from __future__ import annotations

import logging
import math
import struct
import wave
from pathlib import Path

log = logging.getLogger(__name__)

BEEP_WAV = Path(__file__).with_name("assets") / "beep.wav"


def write_beep(path: Path = BEEP_WAV, hz: float = 880.0, seconds: float = 0.15, rate: int = 22050) -> Path:
    """A sine beep with 10 ms fades (no click), 16-bit mono."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(seconds * rate)
    fade = int(0.01 * rate)
    frames = bytearray()
    for i in range(n):
        env = min(1.0, i / fade, (n - 1 - i) / fade)
        frames += struct.pack("<h", int(12000 * env * math.sin(2 * math.pi * hz * i / rate)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return path


class Beeper:
    def __init__(self, path: Path = BEEP_WAV):
        self.path = path
        self.sound = None
        self._tried = False
        self.beeps = 0          # how many beeps were asked for (tests read it)

    def _load(self):
        self._tried = True
        try:
            if not self.path.exists():
                write_beep(self.path)
            from kivy.core.audio import SoundLoader
            self.sound = SoundLoader.load(str(self.path))
        except Exception as e:  # no provider, no device, read-only install
            self.sound = None
            log.warning("no sound for the contraction beep: %s", e)
        if self.sound is None:
            log.warning("no audio provider: the contraction beep is off")

    def beep(self) -> None:
        self.beeps += 1
        if not self._tried:
            self._load()
        if self.sound is None:
            return
        try:
            self.sound.stop()
            self.sound.play()
        except Exception as e:
            log.warning("the beep failed (%s); sound is off from now on", e)
            self.sound = None
