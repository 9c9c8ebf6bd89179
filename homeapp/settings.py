"""The touchscreen's own choices, kept on the device: the patient's language, whether the
DEMO program is the one loaded, and how many sessions had been logged when the pads were
last changed. One small JSON file in the data folder (`ui.json`); a file that cannot be
read counts as empty, one that cannot be written is logged, never a crash."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The file name under the data folder.
SETTINGS_FILE = "ui.json"


class DeviceSettings:
    """Reads `SETTINGS_FILE` in `data_dir` once; `update` writes it back at once."""

    def __init__(self, data_dir: Path, *, default_language: str = "en") -> None:
        self.path = Path(data_dir) / SETTINGS_FILE
        self.default_language = default_language or "en"
        self.values: dict[str, Any] = {}
        self.load()

    def load(self) -> None:
        try:
            values = json.loads(self.path.read_text())
        except (OSError, ValueError):
            values = {}
        self.values = values if isinstance(values, dict) else {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def update(self, **values: Any) -> None:
        """Set `values` and save the file."""
        self.values.update(values)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.values))
        except OSError:
            log.warning("cannot save the touchscreen's settings in %s", self.path)

    @property
    def language(self) -> str:
        """The patient's language: their last choice, else the configured one."""
        return self.values.get("language") or self.default_language
