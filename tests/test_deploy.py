"""deploy/: the installer into a temporary root, its idempotence, the units (systemd-analyze
verify and their content), shellcheck, the safe-outputs and backup scripts, uninstall."""
from __future__ import annotations

import getopt
import hashlib
import os
import shlex
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
UNITS = DEPLOY / "units"
SCRIPTS = [DEPLOY / n for n in ("install.sh", "uninstall.sh", "homeapp-safe-outputs", "homeapp-backup")]
UNIT_NAMES = ["homeapp-safe-outputs.service", "pigpiod.service", "homeapp.service",
              "homeapp-backup.service", "homeapp-backup.timer"]
PI4 = "Raspberry Pi 4 Model B Rev 1.4"
#: pigpiod.c's getopt string (joan2937/pigpio, initOpts): the options the daemon accepts.
PIGPIOD_OPTSTRING = "a:b:c:d:e:fgkln:mp:s:t:x:vV"
AS_ROOT = os.geteuid() == 0


def install(root: Path, *args: str, check: bool = True,
            python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOMEAPP_PYTHON=python)
    proc = subprocess.run(["bash", str(DEPLOY / "install.sh"), "--root", str(root), *args],
                          capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def seed_root(root: Path) -> None:
    """What a stock Raspberry Pi OS image already has that the installer touches."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n"
                                         "pi:x:1000:1000:,,,:/home/pi:/bin/bash\n")
    (root / "etc" / "group").write_text("root:x:0:\nvideo:x:44:pi\ngpio:x:993:pi\npi:x:1000:\n")
    (root / "boot" / "firmware").mkdir(parents=True)
    (root / "boot" / "firmware" / "config.txt").write_text("dtparam=audio=on\n[cm4]\notg_mode=1\n")


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        out[str(p.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                         digest, st.st_mtime_ns if p.is_file() else 0)
    return out


def entries(path: Path) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":") for line in path.read_text().splitlines() if line}


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def unit_items(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) in file order; systemd units repeat keys, so no configparser."""
    items, section = [], ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        else:
            key, _, value = line.partition("=")
            items.append((section, key.strip(), value.strip()))
    return items


def values(path: Path, section: str, key: str) -> list[str]:
    return [v for s, k, v in unit_items(path) if s == section and k == key]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("root")
    seed_root(root)
    proc = install(root, "--model", PI4)
    return root, proc.stdout


# --- shellcheck, systemd-analyze --------------------------------------------------------

def test_shellcheck_every_script():
    found = sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.read_bytes()[:2] == b"#!")
    assert set(SCRIPTS) <= set(found)
    proc = subprocess.run(["shellcheck", "--severity=style", *map(str, found)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def verify_root(installed_root: Path, tmp_path: Path) -> Path:
    """The installed tree plus the host's own systemd units (sysinit.target, getty@.service…)
    and stand-ins for the two programs that only apt (pigpiod) and pip (homeapp) provide,
    which install.sh --root does not run. Every script install.sh itself installs is real."""
    vroot = tmp_path / "vroot"
    shutil.copytree(installed_root, vroot, symlinks=True)
    system_units = Path("/lib/systemd/system")
    assert (system_units / "sysinit.target").exists(), "systemd's units are needed (make apt-test)"
    shutil.copytree(system_units, vroot / "usr/lib/systemd/system", symlinks=True)
    for prog in ("usr/bin/pigpiod", "opt/homeapp/venv/bin/homeapp"):
        p = vroot / prog
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("#!/bin/sh\nexit 0\n")
        p.chmod(0o755)
    return vroot


def analyze_verify(vroot: Path, unit: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", f"--root={vroot}",
                           f"/etc/systemd/system/{unit}"], capture_output=True, text=True)


@pytest.mark.parametrize("unit", UNIT_NAMES)
def test_systemd_analyze_verify(installed, tmp_path, unit):
    vroot = verify_root(installed[0], tmp_path)
    proc = analyze_verify(vroot, unit)
    # verify exits 0 on mere parse warnings (an unknown key is "ignored"), so any output fails.
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == "", proc.stderr


def test_systemd_analyze_verify_catches_what_it_should(installed, tmp_path):
    """The check above can fail: a misspelt key in the drop-in, and a missing pigpiod."""
    vroot = verify_root(installed[0], tmp_path)
    dropin = vroot / "etc/systemd/system/pigpiod.service.d/zz-homeapp-localhost.conf"
    dropin.write_text(dropin.read_text() + "IPAdressDeny=any\n")
    assert "IPAdressDeny" in analyze_verify(vroot, "pigpiod.service").stderr
    (vroot / "usr/bin/pigpiod").unlink()
    assert analyze_verify(vroot, "pigpiod.service").returncode != 0


# --- the units' content -------------------------------------------------------------------

@pytest.mark.parametrize("path", [UNITS / "pigpiod.service",
                                  UNITS / "pigpiod.service.d" / "zz-homeapp-localhost.conf"])
def test_pigpiod_listens_on_the_loopback_only(path):
    starts = [v for v in values(path, "Service", "ExecStart") if v]
    assert len(starts) == 1
    argv = shlex.split(starts[0])
    assert argv[0] == "/usr/bin/pigpiod"
    opts, rest = getopt.getopt(argv[1:], PIGPIOD_OPTSTRING)  # raises on an option pigpiod lacks
    assert rest == []
    assert ("-l", "") in opts and ("-n", "127.0.0.1") in opts and ("-g", "") in opts
    assert ("-f", "") in opts  # no world-writable command pipe beside the socket
    assert values(path, "Service", "IPAddressDeny") == ["any"]
    assert values(path, "Service", "IPAddressAllow") == ["localhost"]


def test_dropin_overrides_raspi_configs_remote_gpio():
    # raspi-config's remote GPIO writes pigpiod.service.d/public.conf; later names win.
    dropin = UNITS / "pigpiod.service.d" / "zz-homeapp-localhost.conf"
    assert sorted(["public.conf", dropin.name])[-1] == dropin.name
    assert values(dropin, "Service", "ExecStart")[0] == ""  # resets, then sets


def test_safe_outputs_unit_runs_first():
    u = UNITS / "homeapp-safe-outputs.service"
    assert values(u, "Unit", "DefaultDependencies") == ["no"]
    before = " ".join(values(u, "Unit", "Before")).split()
    assert {"pigpiod.service", "homeapp.service", "sysinit.target"} <= set(before)
    assert values(u, "Install", "WantedBy") == ["sysinit.target"]
    assert values(u, "Service", "ExecStart") == ["/opt/homeapp/bin/homeapp-safe-outputs"]
    assert values(u, "Service", "ExecStop") == ["/opt/homeapp/bin/homeapp-safe-outputs"]


def test_app_unit_is_a_console_kiosk():
    u = UNITS / "homeapp.service"
    assert values(u, "Service", "User") == ["homeapp"]
    assert values(u, "Service", "TTYPath") == ["/dev/tty1"]
    assert values(u, "Unit", "Conflicts") == ["getty@tty1.service"]
    assert values(u, "Service", "Restart") == ["on-failure"]
    env = dict(v.split("=", 1) for v in values(u, "Service", "Environment"))
    assert env["KIVY_WINDOW"] == "sdl2" and env["SDL_VIDEODRIVER"] == "kmsdrm"
    assert env["KIVY_HOME"] == "/var/lib/homeapp/kivy"
    assert env["HOMEAPP_CONFIG"] == "/etc/homeapp/config.toml"
    after = " ".join(values(u, "Unit", "After")).split()
    assert {"pigpiod.service", "homeapp-safe-outputs.service"} <= set(after)
    assert values(u, "Unit", "Requires") == ["homeapp-safe-outputs.service"]
    assert "pigpiod.service" in " ".join(values(u, "Unit", "Wants")).split()
    assert values(u, "Service", "ExecStopPost") == ["+/opt/homeapp/bin/homeapp-safe-outputs"]
    assert values(u, "Service", "IPAddressDeny") == ["any"]


def test_kivy_config_reads_touch_without_a_mouse(tmp_path):
    home = tmp_path / "kivy"
    home.mkdir()
    shutil.copy(DEPLOY / "kivy" / "config.ini", home / "config.ini")
    code = ("from kivy.config import Config; print(repr(dict(Config.items('input'))), "
            "Config.get('graphics', 'fullscreen'), Config.get('kivy', 'exit_on_escape'))")
    env = dict(os.environ, KIVY_HOME=str(home), KIVY_NO_ARGS="1", KIVY_NO_CONSOLELOG="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout.strip()
    assert out == "{'%(name)s': 'probesysfs,provider=hidinput'} auto 0"


# --- install.sh --root ------------------------------------------------------------------

def test_install_writes_the_expected_tree(installed):
    root, out = installed
    expect = {
        "etc/homeapp": 0o750, "etc/homeapp/config.toml": 0o640,
        "var/lib/homeapp": 0o750, "var/lib/homeapp/trust": 0o750,
        "var/lib/homeapp/backups": 0o750, "var/lib/homeapp/kivy": 0o750,
        "var/lib/homeapp/device_key.pem": 0o600, "var/lib/homeapp/device_key.pub": 0o644,
        "var/lib/homeapp/kivy/config.ini": 0o640,
        "opt/homeapp/bin/homeapp-safe-outputs": 0o755, "opt/homeapp/bin/homeapp-backup": 0o755,
        "opt/homeapp/bin/homeapp-uninstall": 0o755,
        "etc/systemd/system/pigpiod.service.d/zz-homeapp-localhost.conf": 0o644,
    } | {f"etc/systemd/system/{u}": 0o644 for u in UNIT_NAMES}
    for rel, want in expect.items():
        assert mode(root / rel) == want, rel
    for u in UNIT_NAMES:
        assert (root / "etc/systemd/system" / u).read_bytes() == (UNITS / u).read_bytes()
    assert "BEGIN PRIVATE KEY" in (root / "var/lib/homeapp/device_key.pem").read_text()
    # The OS-level steps are printed, not run.
    for step in ("would run: apt-get update", "pigpiod", "useradd --system",
                 "systemctl enable homeapp-safe-outputs.service pigpiod.service homeapp.service",
                 "-m pip install"):
        assert step in out, step
    assert not (root / "opt/homeapp/venv").exists()


def test_install_records_the_user_and_groups(installed):
    root, _ = installed
    passwd, group = entries(root / "etc/passwd"), entries(root / "etc/group")
    user = passwd["homeapp"]
    assert user[5:] == ["/var/lib/homeapp", "/usr/sbin/nologin"]
    assert 100 <= int(user[2]) < 1000 and user[3] == group["homeapp"][2]
    for g in ("video", "render", "input", "gpio", "spi"):
        assert "homeapp" in group[g][3].split(","), g
    assert group["video"][2:] == ["44", "pi,homeapp"]  # existing group kept, member appended
    assert group["gpio"][2] == "993"
    assert passwd["pi"] == ["pi", "x", "1000", "1000", ",,,", "/home/pi", "/bin/bash"]
    assert len({e[2] for e in group.values()}) == len(group)  # no gid handed out twice


def test_install_sets_owners(installed):
    root, out = installed
    uid = int(entries(root / "etc/passwd")["homeapp"][2])
    gid = int(entries(root / "etc/group")["homeapp"][2])
    if AS_ROOT:
        for rel in ("var/lib/homeapp", "var/lib/homeapp/device_key.pem", "var/lib/homeapp/trust"):
            st = (root / rel).stat()
            assert (st.st_uid, st.st_gid) == (uid, gid), rel
        st = (root / "etc/homeapp/config.toml").stat()
        assert (st.st_uid, st.st_gid) == (0, gid)
        assert (root / "etc/systemd/system/homeapp.service").stat().st_uid == 0
    else:
        assert f"would chown homeapp:homeapp {root}/var/lib/homeapp/device_key.pem" in out
        assert f"would chown root:homeapp {root}/etc/homeapp/config.toml" in out


def test_install_holds_the_lines_low_in_firmware(installed):
    text = (installed[0] / "boot/firmware/config.txt").read_text()
    assert text.startswith("dtparam=audio=on\n[cm4]\notg_mode=1\n")
    block = text.split("# BEGIN homeapp", 1)[1]
    assert block.splitlines()[1:4] == ["[all]", "gpio=24,17,27,22,23,25=op,dl", "dtparam=spi=on"]


def test_install_twice_changes_nothing(tmp_path):
    root = tmp_path / "root"
    seed_root(root)
    install(root, "--model", PI4)
    before = snapshot(root)
    out = install(root, "--model", PI4).stdout
    assert snapshot(root) == before
    assert "keeping the existing configuration" in out and "keeping the device key" in out


def test_update_keeps_configuration_database_and_key(tmp_path):
    root = tmp_path / "root"
    seed_root(root)
    install(root, "--model", PI4, "--board", "simulated")
    conf = root / "etc/homeapp/config.toml"
    assert 'board = "simulated"' in conf.read_text()
    conf.write_text('[device]\nboard = "simulated"\nlanguage = "sv"\n')
    conf.chmod(0o644)  # a technician's slip: world-readable
    db = root / "var/lib/homeapp/homeapp.db"
    with sqlite3.connect(db) as c:
        c.execute("create table sessions (id text)")
        c.execute("insert into sessions values ('s-1')")
    c.close()
    db.chmod(0o666)
    key = (root / "var/lib/homeapp/device_key.pem").read_bytes()
    out = install(root, "--model", PI4).stdout
    assert conf.read_text() == '[device]\nboard = "simulated"\nlanguage = "sv"\n'
    assert mode(conf) == 0o640 and mode(db) == 0o640
    with sqlite3.connect(db) as c:
        assert c.execute("select id from sessions").fetchall() == [("s-1",)]
    c.close()
    assert (root / "var/lib/homeapp/device_key.pem").read_bytes() == key
    assert "valid (board simulated" in out


def test_new_config_takes_the_pin_hashes(tmp_path):
    from homeapp.config import load_config
    from homeapp.pinhash import hash_pin, verify_pin
    root = tmp_path / "root"
    seed_root(root)
    care, clin = hash_pin("1357"), hash_pin("24680")
    out = install(root, "--model", PI4, "--caregiver-pin-hash", care,
                  "--clinician-pin-hash", clin).stdout
    cfg = load_config(root / "etc/homeapp/config.toml")
    assert cfg.board == "real" and verify_pin("1357", cfg.caregiver_pin_hash)
    assert verify_pin("24680", cfg.clinician_pin_hash)
    assert "valid (board real" in out
    bad = install(root / "other", "--model", PI4, "--caregiver-pin-hash", "1357", check=False)
    assert bad.returncode != 0 and "PIN hash" in bad.stderr


def test_rehearsal_without_the_projects_python_still_lays_out_the_tree(tmp_path):
    root = tmp_path / "root"
    proc = install(root, "--model", PI4, python="/bin/false")
    assert "the configuration was not checked" in proc.stdout
    assert "the app makes it on its first start" in proc.stdout
    assert not (root / "var/lib/homeapp/device_key.pem").exists()
    assert mode(root / "etc/homeapp/config.toml") == 0o640
    assert (root / "etc/systemd/system/homeapp.service").exists()


@pytest.mark.parametrize("model", ["Raspberry Pi 5 Model B Rev 1.0",
                                   "Raspberry Pi Compute Module 5 Rev 1.0",
                                   "Raspberry Pi 500 Rev 1.0"])
def test_refuses_the_pi_5(tmp_path, model):
    root = tmp_path / "root"
    proc = install(root, "--model", model, check=False)
    assert proc.returncode != 0
    assert "Raspberry Pi 5" in proc.stderr and "pigpio" in proc.stderr
    assert list(root.rglob("*")) == []


def test_reads_the_model_from_the_device_tree(tmp_path):
    root = tmp_path / "root"
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    assert install(root, check=False).returncode != 0
    (root / "proc/device-tree/model").write_bytes(b"Raspberry Pi Zero 2 W Rev 1.0\0")
    assert "board: Raspberry Pi Zero 2 W" in install(root).stdout


def test_warns_but_goes_on_for_a_non_pi_in_rehearsal(tmp_path):
    proc = install(tmp_path / "root", "--model", "QEMU Virtual Machine")
    assert "warning" in proc.stdout and "not a supported board" in proc.stdout


def test_dry_run_changes_nothing(tmp_path):
    root = tmp_path / "root"
    seed_root(root)
    before = snapshot(root)
    proc = install(root, "--model", PI4, "--dry-run")
    assert snapshot(root) == before
    assert "would install" in proc.stdout and "would create the device key" in proc.stdout
    assert "would add the homeapp block" in proc.stdout


# --- the scripts ---------------------------------------------------------------------------

def homeapp_wrapper(tmp_path: Path) -> Path:
    """`homeapp` as the installed venv would run it, from this checkout."""
    w = tmp_path / "homeapp"
    w.write_text(f"#!/bin/bash\nPYTHONPATH={shlex.quote(str(REPO))} "
                 f"exec {shlex.quote(sys.executable)} -m homeapp.cli \"$@\"\n")
    w.chmod(0o755)
    return w


def fake_tool(bindir: Path, name: str, log: Path) -> None:
    bindir.mkdir(exist_ok=True)
    (bindir / name).write_text(f'#!/bin/bash\necho "{name} $*" >> {shlex.quote(str(log))}\n')
    (bindir / name).chmod(0o755)


def safe_outputs(tmp_path: Path, config: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "HOMEAPP_CONFIG": str(config), "HOMEAPP_PYTHON": sys.executable,
           "PYTHONPATH": str(REPO)}
    return subprocess.run(["/bin/bash", str(DEPLOY / "homeapp-safe-outputs")], env=env,
                          capture_output=True, text=True, timeout=60)


def test_safe_outputs_drives_the_configured_lines_low_enable_first(tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text('[device]\nboard = "simulated"\n[pins]\nenable = 5\nheartbeat = 6\n')
    log = tmp_path / "calls"
    fake_tool(tmp_path / "bin", "pinctrl", log)
    proc = safe_outputs(tmp_path, conf, str(tmp_path / "bin"))
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines() == [f"pinctrl set {g} op dl" for g in (5, 17, 27, 22, 23, 6)]


def test_safe_outputs_falls_back_to_the_reference_lines_and_gpioset(tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text("[pins]\nenable = 99\n")  # invalid: the app's check refuses it
    log = tmp_path / "calls"
    fake_tool(tmp_path / "bin", "gpioset", log)
    proc = safe_outputs(tmp_path, conf, str(tmp_path / "bin"))
    assert proc.returncode == 0
    assert "reference board" in proc.stderr
    assert log.read_text().splitlines() == [f"gpioset gpiochip0 {g}=0" for g in (24, 17, 27, 22, 23, 25)]


def test_safe_outputs_fails_loudly_without_a_tool(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = safe_outputs(tmp_path, tmp_path / "absent.toml", str(tmp_path / "empty"))
    assert proc.returncode == 1 and "neither pinctrl nor gpioset" in proc.stderr


def run_backup(tmp_path: Path, conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOMEAPP_CONFIG=str(conf),
               HOMEAPP_BIN=str(homeapp_wrapper(tmp_path)))
    return subprocess.run(["bash", str(DEPLOY / "homeapp-backup"), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_backup_copies_the_configured_db_and_prunes(tmp_path):
    """Through the real `homeapp log backup`, on a log made by the real store."""
    from homeapp.store import Store
    data = tmp_path / "data"
    conf = tmp_path / "config.toml"
    conf.write_text(f'[device]\nboard = "simulated"\n[paths]\ndata_dir = "{data}"\n')
    assert run_backup(tmp_path, conf).stdout.startswith("homeapp-backup: no session log yet")
    assert not (data / "backups").exists()
    data.mkdir()
    with Store.open(data / "homeapp.db"):
        pass
    backups = data / "backups"
    backups.mkdir()
    for stamp in ("20250101T000000Z", "20250102T000000Z", "20250103T000000Z"):
        (backups / f"homeapp-{stamp}.db").write_text("old")
    proc = run_backup(tmp_path, conf, "--keep", "2")
    assert proc.returncode == 0, proc.stderr
    new = Path(proc.stdout.strip().splitlines()[-1].split("homeapp-backup: ", 1)[1])
    assert sorted(p.name for p in backups.iterdir()) == ["homeapp-20250103T000000Z.db", new.name]
    assert mode(new) == 0o600

    def tables(db: Path) -> list[str]:
        with sqlite3.connect(db) as c:
            names = [r[0] for r in c.execute("select name from sqlite_master order by name")]
        c.close()
        return names
    assert tables(new) == tables(data / "homeapp.db") and "sessions" in tables(new)


# --- uninstall -------------------------------------------------------------------------------

def uninstall(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(DEPLOY / "uninstall.sh"), "--root", str(root), *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_uninstall_keeps_the_data_unless_purged(tmp_path):
    root = tmp_path / "root"
    seed_root(root)
    install(root, "--model", PI4)
    (root / "var/lib/homeapp/homeapp.db").write_bytes(b"log")
    proc = uninstall(root)
    assert proc.returncode == 0, proc.stderr
    assert "would run: systemctl disable --now homeapp.service" in proc.stdout
    for u in UNIT_NAMES:
        assert not (root / "etc/systemd/system" / u).exists()
    assert not (root / "etc/systemd/system/pigpiod.service.d").exists()
    assert not (root / "opt/homeapp").exists()
    assert (root / "var/lib/homeapp/homeapp.db").read_bytes() == b"log"
    assert (root / "var/lib/homeapp/device_key.pem").exists()
    assert (root / "etc/homeapp/config.toml").exists()
    assert "homeapp" in entries(root / "etc/passwd")

    refused = uninstall(root, "--purge")  # no terminal, no --yes: nothing is deleted
    assert refused.returncode != 0 and (root / "var/lib/homeapp/homeapp.db").exists()

    proc = uninstall(root, "--purge", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert not (root / "var/lib/homeapp").exists() and not (root / "etc/homeapp").exists()
    assert "homeapp" not in entries(root / "etc/passwd")
    group = entries(root / "etc/group")
    assert "homeapp" not in group and group["video"] == ["video", "x", "44", "pi"]
    assert "gpio=24,17,27,22,23,25=op,dl" in (root / "boot/firmware/config.txt").read_text()
