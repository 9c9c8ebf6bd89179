"""Files on USB sticks: prescriptions and clinician keys to import, folders to export the
log to. On Raspberry Pi OS a stick appears under /media (or /mnt, /run/media); the data
folder's `import/` and `export/` serve a device with no stick (and the simulated board)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

#: Where USB sticks appear on Raspberry Pi OS.
USB_ROOTS = ("/media", "/mnt", "/run/media")
#: At most this many files are listed (a stick full of JSON must not flood the screen).
MAX_PRESCRIPTION_FILES = 30
MAX_KEY_FILES = 10


class UsbFiles:
    """What the sticks hold, looked up when asked (a stick may come and go)."""

    def __init__(self, data_dir: Path, *, roots: Iterable[str | Path] = USB_ROOTS) -> None:
        self.data_dir = Path(data_dir)
        self.roots = [Path(r) for r in roots]

    def prescription_files(self, extra_dirs: Iterable[str | Path] = ()) -> list[Path]:
        """Prescription files (`*.json` under 1 MB) on the sticks, in the data folder's
        `import/` and in `extra_dirs`."""
        found: list[Path] = []
        for root in self.roots + [self.data_dir / "import"] + [Path(d) for d in extra_dirs]:
            if not root.is_dir():
                continue
            try:
                for p in sorted(root.glob("**/*.json")):
                    if p.is_file() and len(found) < MAX_PRESCRIPTION_FILES and p.stat().st_size < 1_000_000:
                        found.append(p)
            except OSError:
                continue
        return found

    def key_files(self, extra_dirs: Iterable[str | Path] = ()) -> list[Path]:
        """Clinician public keys (`*.pub`) on the sticks and in `extra_dirs`."""
        found: list[Path] = []
        for root in self.roots + [Path(d) for d in extra_dirs]:
            if not root.is_dir():
                continue
            try:
                found += [p for p in sorted(root.glob("**/*.pub"))
                          if p.is_file() and p.stat().st_size < 10_000][:MAX_KEY_FILES]
            except OSError:
                continue
        return found

    def export_dirs(self) -> list[Path]:
        """Writable mounted sticks, then the data folder's `export/`."""
        out: list[Path] = []
        for root in self.roots:
            if root.is_dir():
                for p in sorted(root.glob("*")) + sorted(root.glob("*/*")):
                    if os.path.ismount(p) and os.access(p, os.W_OK) and p not in out:
                        out.append(p)
        out.append(self.data_dir / "export")
        return out
