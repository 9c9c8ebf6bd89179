"""A bundle held in memory (the clinic's PDF export puts one together from its database)
parses exactly as the same bytes read from a file: homeapp.bundle.parse_bundle."""
from __future__ import annotations

import pytest

from homeapp.bundle import BundleError, parse_bundle, read_bundle, verify_bundle, write_bundle
from homeapp.device_key import ensure_device_key
from tests.bench.bench_report import synthetic_export


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    where = tmp_path_factory.mktemp("bundle")
    private_key, _kid = ensure_device_key(where / "data")
    path = where / "log.bundle"
    write_bundle(synthetic_export(6, contractions_per_session=3), path, device_key=private_key)
    return path, private_key.public_key()


def _record(r):
    return (r.line, r.seq, r.kind, r.data, r.prev_hash, r.hash, r.well_formed, r.intact)


def _same(a, b):
    def fields(bundle):
        head = {k: v for k, v in bundle.header.items() if k != "_record"}
        return (head, _record(bundle.header["_record"]), bundle.end, bundle.problems,
                [_record(r) for r in bundle.records])
    assert fields(a) == fields(b)


def test_bytes_parse_as_the_file_and_verify_alike(made):
    path, key = made
    from_bytes = parse_bundle(path.read_bytes())
    _same(from_bytes, read_bundle(path))
    assert verify_bundle(from_bytes, key) == [] and from_bytes.export() == read_bundle(path).export()


def test_a_damaged_bundle_names_the_same_problems(made, tmp_path):
    path, key = made
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"seq":', b'"seq": ', 1)      # a changed line
    del lines[5]                                               # a removed one
    lines.insert(7, b"{not json")                              # a corrupt one
    data = b"\n".join(lines)
    damaged = tmp_path / "damaged.bundle"
    damaged.write_bytes(data)
    from_bytes, from_file = parse_bundle(data), read_bundle(damaged)
    _same(from_bytes, from_file)
    assert verify_bundle(from_bytes, key) == verify_bundle(from_file, key) != []


@pytest.mark.parametrize("data, message", [
    (b"", "the file is empty"),
    (b"\x00\x01binary\n", "binary data"),
    (b'{"kind":"header","data":{"format":"other/1"}}\n', "its format is 'other/1'"),
    (b"x" * 70_000, "not a log bundle"),        # no line end within the header's limit
])
def test_not_a_bundle_is_one_clear_error_naming_it(data, message):
    with pytest.raises(BundleError, match=message) as e:
        parse_bundle(data, name="patient P-1's bundle")
    assert str(e.value).startswith("patient P-1's bundle: ")
