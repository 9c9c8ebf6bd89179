"""The board's pin map, read from one TOML file by the driver and the simulator alike."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from .exc import PinMapError

#: BCM lines usable on the 40-pin header of every supported board (Pi 4, CM4, 3B+, Zero 2 W).
HEADER_GPIOS = frozenset(range(2, 28))
#: SPI0 owns these lines (MISO, MOSI, SCLK, CE0, CE1): the DAC and the ADC live there.
SPI0_GPIOS = frozenset({7, 8, 9, 10, 11})


#: Where each field of PinMap lives in a board file: (table, key).
_FIELD_KEYS: dict[str, tuple[str, str]] = {
    "ch0_a": ("pins", "ch0_a"), "ch0_b": ("pins", "ch0_b"), "ch1_a": ("pins", "ch1_a"),
    "ch1_b": ("pins", "ch1_b"), "enable": ("pins", "enable"), "heartbeat": ("pins", "heartbeat"),
    "estop": ("pins", "estop"), "channel_dac": ("spi", "channel_dac"),
    "channel_adc": ("spi", "channel_adc"), "spi_baud": ("spi", "baud"),
    "dac_full_scale_ma": ("board", "dac_full_scale_ma"), "watchdog_ms": ("board", "watchdog_ms"),
}


def _reference_values() -> dict[str, Any]:
    """The reference board's values, read from hw/board.toml: the one place they are
    written down (checked by `load_pin_map()`, which a test compares with `PinMap()`)."""
    data = tomllib.loads(resources.files("hw").joinpath("board.toml").read_text())
    return {name: data[table][key] for name, (table, key) in _FIELD_KEYS.items()}


_REFERENCE = _reference_values()


@dataclass(frozen=True, kw_only=True)
class PinMap:
    """BCM numbers of the board's lines, SPI channels and analogue scaling. The defaults
    are the reference board's, from hw/board.toml."""

    ch0_a: int = _REFERENCE["ch0_a"]
    ch0_b: int = _REFERENCE["ch0_b"]
    ch1_a: int = _REFERENCE["ch1_a"]
    ch1_b: int = _REFERENCE["ch1_b"]
    enable: int = _REFERENCE["enable"]
    heartbeat: int = _REFERENCE["heartbeat"]
    estop: int = _REFERENCE["estop"]
    channel_dac: int = _REFERENCE["channel_dac"]
    channel_adc: int = _REFERENCE["channel_adc"]
    spi_baud: int = _REFERENCE["spi_baud"]
    #: The DAC's full scale: the current its highest code sets (the driver scales by it).
    dac_full_scale_ma: float = float(_REFERENCE["dac_full_scale_ma"])
    #: The board's heartbeat watchdog: no heartbeat edge for this long cuts the output.
    watchdog_ms: int = _REFERENCE["watchdog_ms"]

    @property
    def legs(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((ch0 leg A, ch0 leg B), (ch1 leg A, ch1 leg B))."""
        return ((self.ch0_a, self.ch0_b), (self.ch1_a, self.ch1_b))

    @property
    def outputs(self) -> tuple[int, ...]:
        return (self.ch0_a, self.ch0_b, self.ch1_a, self.ch1_b, self.enable, self.heartbeat)

    def gpio_names(self) -> dict[int, str]:
        return {self.ch0_a: "ch0.a", self.ch0_b: "ch0.b", self.ch1_a: "ch1.a",
                self.ch1_b: "ch1.b", self.enable: "enable", self.heartbeat: "heartbeat",
                self.estop: "estop"}


_LINE_KEYS = ("ch0_a", "ch0_b", "ch1_a", "ch1_b", "enable", "heartbeat", "estop")


def pin_map_from_dict(data: Mapping[str, Any], *, source: str = "pin map") -> PinMap:
    """Build and validate a PinMap from the TOML tables `[pins]`, `[spi]`, `[board]`.

    Every problem is reported at once, each naming the key, the value and what is allowed.
    """
    problems: list[str] = []
    pins = dict(data.get("pins", {}))
    spi = dict(data.get("spi", {}))
    board = dict(data.get("board", {}))
    values: dict[str, Any] = {}
    known = set(_LINE_KEYS)
    for key in pins:
        if key not in known:
            problems.append(f"{source}: pins.{key} is not a line of the board "
                            f"(known: {', '.join(_LINE_KEYS)})")
    for key in _LINE_KEYS:
        if key not in pins:
            continue
        value = pins[key]
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{source}: pins.{key}: {value!r} is not a BCM GPIO number")
        elif value not in HEADER_GPIOS:
            problems.append(f"{source}: pins.{key}: GPIO {value} is not on the header "
                            f"(allowed: 2 to 27)")
        elif value in SPI0_GPIOS:
            problems.append(f"{source}: pins.{key}: GPIO {value} belongs to SPI0, which "
                            f"the DAC and ADC use (not allowed: 7 to 11)")
        else:
            values[key] = value
    merged = {k: getattr(PinMap, k) for k in _LINE_KEYS} | values
    seen: dict[int, str] = {}
    for key in _LINE_KEYS:
        gpio = merged[key]
        if gpio in seen and key in values:
            problems.append(f"{source}: pins.{key}: GPIO {gpio} is already used by "
                            f"pins.{seen[gpio]}")
        seen.setdefault(gpio, key)
    for key, allowed in (("channel_dac", (0, 1)), ("channel_adc", (0, 1))):
        if key in spi:
            if spi[key] not in allowed or isinstance(spi[key], bool):
                problems.append(f"{source}: spi.{key}: {spi[key]!r} is not an SPI0 chip "
                                f"select (allowed: 0 or 1)")
            else:
                values[key] = spi[key]
    if "baud" in spi:
        if not isinstance(spi["baud"], int) or not 32_000 <= spi["baud"] <= 20_000_000:
            problems.append(f"{source}: spi.baud: {spi['baud']!r} is outside 32000 to 20000000")
        else:
            values["spi_baud"] = spi["baud"]
    dac_cs = values.get("channel_dac", PinMap.channel_dac)
    if dac_cs == values.get("channel_adc", PinMap.channel_adc):
        problems.append(f"{source}: spi.channel_dac and spi.channel_adc are both "
                        f"{dac_cs}: the DAC and ADC need their own chip select")
    if "dac_full_scale_ma" in board:
        v = board["dac_full_scale_ma"]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 1 <= v <= 100:
            problems.append(f"{source}: board.dac_full_scale_ma: {v!r} is outside 1 to 100")
        else:
            values["dac_full_scale_ma"] = float(v)
    if "watchdog_ms" in board:
        v = board["watchdog_ms"]
        if not isinstance(v, int) or isinstance(v, bool) or not 50 <= v <= 1000:
            problems.append(f"{source}: board.watchdog_ms: {v!r} is outside 50 to 1000")
        else:
            values["watchdog_ms"] = v
    if problems:
        raise PinMapError("\n".join(problems))
    names = {f.name for f in fields(PinMap)}
    return PinMap(**{k: v for k, v in values.items() if k in names})


def load_pin_map(path: str | Path | None = None) -> PinMap:
    """The pin map from `path`, or the reference board's `hw/board.toml` when None."""
    if path is None:
        text = resources.files("hw").joinpath("board.toml").read_text()
        source = "hw/board.toml"
    else:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise PinMapError(f"{path}: cannot read the pin map ({e.strerror})") from e
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PinMapError(f"{source}: not valid TOML ({e})") from e
    return pin_map_from_dict(data, source=source)
