"""The device configuration, `/etc/homeapp/config.toml` on an installed device.

`load_config(path)` reads and validates it and returns a frozen `Config`; every problem is
reported at once, each naming its key path (`ConfigError.problems`). The pin map part
(`[pins]`, `[spi]`, `[board]`) is validated by `hw.pins.pin_map_from_dict`, the one place
that knows the board. `deploy/config.example.toml` documents every key.
"""
from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from hw.exc import PinMapError
from hw.pins import PinMap, pin_map_from_dict

from .errors import UserError
from .pinhash import PIN_RE, PinFormatError, parse_hash

SYSTEM_CONFIG = Path("/etc/homeapp/config.toml")
SYSTEM_DATA_DIR = Path("/var/lib/homeapp")
BOARDS = ("simulated", "real")
LANGUAGES = ("en", "sv")
#: pigpiod's socket drives the pins: on a real board the app talks to it only over loopback.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

#: Every table and key the file may hold; anything else is a typo worth reporting.
_SCHEMA: dict[str, tuple[str, ...]] = {
    "device": ("board", "language", "show_trainer_panel"),
    "pigpio": ("host", "port"),
    "security": ("caregiver_pin_hash", "clinician_pin_hash"),
    "paths": ("data_dir", "db", "trust_dir", "device_key"),
    "pins": (),      # checked by hw.pins.pin_map_from_dict
    "spi": ("channel_dac", "channel_adc", "baud"),
    "board": ("dac_full_scale_ma", "watchdog_ms"),
    "clinic": ("url", "ca_cert", "sync_interval_min"),
}
#: How often the app syncs with the clinic when nothing else asks (minutes), and its bounds.
SYNC_INTERVAL_MIN = 5
SYNC_INTERVAL_RANGE = (1, 1440)


class ConfigError(UserError, ValueError):
    """The configuration is wrong; `.problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), exit_code=2)


@dataclass(frozen=True, kw_only=True)
class Config:
    board: str
    pigpio_host: str
    pigpio_port: int
    pins: PinMap
    language: str
    caregiver_pin_hash: str | None
    clinician_pin_hash: str | None
    data_dir: Path
    db_path: Path
    trust_dir: Path
    device_key_path: Path
    show_trainer_panel: bool
    #: The clinic service the log goes to (homeapp/sync.py); None: no clinic configured.
    clinic_url: str | None = None
    #: The CA certificate that signed the clinic's TLS certificate (None: the system's CAs).
    clinic_ca_cert: Path | None = None
    sync_interval_min: int = SYNC_INTERVAL_MIN
    source: Path | None = None


def default_config_path() -> Path | None:
    """$HOMEAPP_CONFIG, else /etc/homeapp/config.toml if it exists, else None (built-in)."""
    env = os.environ.get("HOMEAPP_CONFIG")
    if env:
        return Path(env)
    return SYSTEM_CONFIG if SYSTEM_CONFIG.exists() else None


def _developer_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "homeapp"


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate the configuration at `path` (None: `default_config_path()`).

    With no file at all: the simulated board, the reference pin map and a data directory
    in the user's home (a developer's laptop)."""
    if path is None:
        path = default_config_path()
    if path is None:
        return config_from_dict({}, source=None, data_dir_default=_developer_data_dir())
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"{path}: cannot read the configuration ({e.strerror})"]) from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML ({e})"]) from e
    return config_from_dict(data, source=path, data_dir_default=SYSTEM_DATA_DIR)


def config_from_dict(data: Mapping[str, Any], *, source: Path | None,
                     data_dir_default: Path) -> Config:
    where = str(source) if source else "built-in configuration"
    problems: list[str] = []

    def bad(key: str, message: str) -> None:
        problems.append(f"{where}: {key}: {message}")

    tables: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        if name not in _SCHEMA:
            bad(name, f"unknown setting (known tables: {', '.join(_SCHEMA)})")
        elif not isinstance(value, dict):
            bad(name, f"must be a table [{name}], not {value!r}")
        else:
            tables[name] = value
            for key in value:
                if _SCHEMA[name] and key not in _SCHEMA[name]:
                    bad(f"{name}.{key}", f"unknown setting (known: {', '.join(_SCHEMA[name])})")

    device = tables.get("device", {})
    board = device.get("board", "simulated")
    if board not in BOARDS:
        bad("device.board", f"{board!r} is not a board (allowed: {', '.join(BOARDS)})")
        board = "simulated"
    language = device.get("language", "en")
    if language not in LANGUAGES:
        bad("device.language", f"{language!r} is not a language of the app "
                               f"(allowed: {', '.join(LANGUAGES)})")
    panel = device.get("show_trainer_panel", board == "simulated")
    if not isinstance(panel, bool):
        bad("device.show_trainer_panel", f"{panel!r} must be true or false")

    pigpio = tables.get("pigpio", {})
    host = pigpio.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        bad("pigpio.host", f"{host!r} is not a host name")
    elif board == "real" and host not in LOCAL_HOSTS:
        bad("pigpio.host", f"{host!r}: a real board's pigpiod must be reached on this "
                           f"machine only (allowed: {', '.join(LOCAL_HOSTS)})")
    port = pigpio.get("port", 8888)
    if isinstance(port, bool) or not isinstance(port, int) or not 1024 <= port <= 32000:
        bad("pigpio.port", f"{port!r} is outside 1024 to 32000 (pigpiod's range)")

    pins = PinMap()
    try:
        pins = pin_map_from_dict({k: tables.get(k, {}) for k in ("pins", "spi", "board")},
                                 source=where)
    except PinMapError as e:
        problems.extend(str(e).splitlines())

    security = tables.get("security", {})
    hashes: dict[str, str | None] = {}
    for key in ("caregiver_pin_hash", "clinician_pin_hash"):
        value = security.get(key)
        hashes[key] = None
        if value is None or value == "":
            if board == "real":
                bad(f"security.{key}", "missing: a real device needs it (make one with "
                                       "`homeapp config hash-pin`)")
            continue
        if isinstance(value, (int, str)) and PIN_RE.fullmatch(str(value)):
            bad(f"security.{key}", "looks like a PIN stored in clear; store only its hash "
                                   "(`homeapp config hash-pin`)")
            continue
        try:
            parse_hash(value)
        except PinFormatError as e:
            bad(f"security.{key}", str(e))
            continue
        hashes[key] = value
    if (hashes["caregiver_pin_hash"] and
            hashes["caregiver_pin_hash"] == hashes["clinician_pin_hash"]):
        bad("security.clinician_pin_hash", "is the very same hash as the caregiver's: "
                                           "give each role its own PIN")

    paths = tables.get("paths", {})

    def path_of(key: str, default: Path) -> Path:
        value = paths.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value or not Path(value).is_absolute():
            bad(f"paths.{key}", f"{value!r} must be an absolute path")
            return default
        return Path(value)

    data_dir = path_of("data_dir", data_dir_default)
    db_path = path_of("db", data_dir / "homeapp.db")
    trust_dir = path_of("trust_dir", data_dir / "trust")
    device_key = path_of("device_key", data_dir / "device_key.pem")

    clinic = tables.get("clinic", {})
    clinic_url = clinic.get("url")
    if clinic_url is not None:
        from urllib.parse import urlsplit
        parts = urlsplit(clinic_url) if isinstance(clinic_url, str) else None
        if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
            bad("clinic.url", f"{clinic_url!r} is not a clinic address like https://clinic.example.org:8443")
            clinic_url = None
        elif parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
            bad("clinic.url", f"{clinic_url!r}: the log goes to the clinic over https only "
                              f"(http is allowed for this machine: {', '.join(LOCAL_HOSTS)})")
            clinic_url = None
    ca_value = clinic.get("ca_cert")
    clinic_ca = None
    if ca_value is not None:
        if not isinstance(ca_value, str) or not Path(ca_value).is_absolute():
            bad("clinic.ca_cert", f"{ca_value!r} must be an absolute path")
        else:
            clinic_ca = Path(ca_value)
    interval = clinic.get("sync_interval_min", SYNC_INTERVAL_MIN)
    lo, hi = SYNC_INTERVAL_RANGE
    if isinstance(interval, bool) or not isinstance(interval, int) or not lo <= interval <= hi:
        bad("clinic.sync_interval_min", f"{interval!r} must be whole minutes from {lo} to {hi}")
        interval = SYNC_INTERVAL_MIN

    if problems:
        raise ConfigError(problems)
    return Config(board=board, pigpio_host=host, pigpio_port=port, pins=pins,
                  language=language, caregiver_pin_hash=hashes["caregiver_pin_hash"],
                  clinician_pin_hash=hashes["clinician_pin_hash"], data_dir=data_dir,
                  db_path=db_path, trust_dir=trust_dir, device_key_path=device_key,
                  show_trainer_panel=panel, clinic_url=clinic_url, clinic_ca_cert=clinic_ca,
                  sync_interval_min=interval, source=source)


#: The output lines, enable first: it alone cuts the output, so it goes low before anything else.
OUTPUT_ORDER = ("enable", "ch0_a", "ch0_b", "ch1_a", "ch1_b", "heartbeat")
PATH_NAMES = ("data_dir", "db_path", "trust_dir", "device_key_path")


def config_pin_map(path: str | Path | None = None) -> PinMap:
    """Only the pin map of the configuration file (`[pins]`, `[spi]`, `[board]`), validated
    by hw.pins: the boot-time script must hold the right lines low even while another
    setting (a missing PIN, say) keeps the app from starting."""
    if path is None:
        path = default_config_path()
    if path is None:
        return PinMap()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError([f"{path}: cannot read the configuration ({e})"]) from e
    tables = {k: data.get(k, {}) for k in ("pins", "spi", "board")}
    if not all(isinstance(t, dict) for t in tables.values()):
        raise ConfigError([f"{path}: [pins], [spi] and [board] must be tables"])
    try:
        return pin_map_from_dict(tables, source=str(path))
    except PinMapError as e:
        raise ConfigError(str(e).splitlines()) from e


def pin_lines(pins: PinMap) -> list[str]:
    return [f"{name} {getattr(pins, name)}" for name in OUTPUT_ORDER]


def path_lines(cfg: Config) -> list[str]:
    return [f"{name} {getattr(cfg, name)}" for name in PATH_NAMES]


def main(argv: list[str] | None = None) -> int:
    """`python -m homeapp.config pins|paths [FILE]`: what `homeapp config pins|paths` print,
    without the command line's imports, for the boot-time script (fast on a Zero 2 W)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("pins", "paths") or len(args) > 2:
        print("usage: python -m homeapp.config pins|paths [FILE]", file=sys.stderr)
        return 2
    path = args[1] if len(args) == 2 else None
    try:
        lines = (pin_lines(config_pin_map(path)) if args[0] == "pins"
                 else path_lines(load_config(path)))
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
