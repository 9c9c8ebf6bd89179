"""The device configuration's [clinic] table: where the log goes, validated with the rest."""
from __future__ import annotations

from pathlib import Path

import pytest

from homeapp.config import ConfigError, config_from_dict


def load(clinic: dict):
    return config_from_dict({"clinic": clinic}, source=None, data_dir_default=Path("/tmp/homeapp-test"))


def test_a_clinic_is_optional_and_read_when_given():
    assert load({}).clinic_url is None
    cfg = load({"url": "https://clinic.example.org:8443", "ca_cert": "/etc/homeapp/ca.pem", "sync_interval_min": 15})
    assert (cfg.clinic_url, cfg.clinic_ca_cert, cfg.sync_interval_min) == (
        "https://clinic.example.org:8443", Path("/etc/homeapp/ca.pem"), 15)
    assert load({"url": "http://127.0.0.1:8443"}).clinic_url == "http://127.0.0.1:8443"


@pytest.mark.parametrize("clinic, words", [
    ({"url": "http://clinic.example.org"}, "over https only"),
    ({"url": "ftp://clinic.example.org"}, "is not a clinic address"),
    ({"url": 42}, "is not a clinic address"),
    ({"ca_cert": "relative.pem"}, "must be an absolute path"),
    ({"sync_interval_min": 0}, "whole minutes from 1 to 1440"),
    ({"sync_interval_min": True}, "whole minutes from 1 to 1440"),
    ({"sync_every": 5}, "unknown setting (known: url, ca_cert, sync_interval_min)"),
])
def test_bad_clinic_settings_are_named(clinic, words):
    with pytest.raises(ConfigError) as e:
        load(clinic)
    assert any(words in p and "clinic." in p for p in e.value.problems), e.value.problems
