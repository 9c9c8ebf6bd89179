"""The clinician keys this device trusts, as clinic mode manages them: add a key from a
file, list them, remove one (logged as the device event `trust_removed`)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any


class ClinicianKeys:
    """Over the device's trust store (schedules.signing.TrustStore) and its log."""

    def __init__(self, trust: Any, *, store: Any = None) -> None:
        self.trust = trust
        self.store = store

    def add(self, path: str | Path) -> str:
        """Trust the public key in `path`, labelled after its file name; returns its key
        id. ValueError or KeyFileError with a reason when refused."""
        label = re.sub(r"[^A-Za-z0-9._-]", "-", Path(path).stem)[:64].lstrip(".-_") or "clinician"
        return self.trust.add(Path(path), label=label)

    def labels(self) -> dict[str, str]:
        """key id -> label of every trusted key."""
        return self.trust.labels()

    def remove(self, key_id: str, *, by: str = "clinician mode") -> str:
        """Stop trusting `key_id`, logged; returns the key's label. ValueError with a
        reason when no trusted key has that id."""
        kid, label = self.trust.remove(key_id)
        if self.store is not None:
            self.store.add_device_event(kind="trust_removed", detail={"key_id": kid, "label": label, "by": by})
        return label
