#!/usr/bin/env bash
# Makes a stock Raspberry Pi OS Bookworm (64-bit) on a Pi 4, CM4, Pi 3B+ or Zero 2 W into the
# homeapp appliance: boots straight into the app, outputs held low from boot, pigpiod on the
# loopback only. Safe to run again: an update keeps the configuration, the database and keys.
#
#   sudo deploy/install.sh                       install or update this machine
#   deploy/install.sh --dry-run                  print what it would do, change nothing
#   deploy/install.sh --root DIR                 write the files into DIR (an image, a test);
#                                                the OS steps (apt, useradd, pip, systemctl)
#                                                are printed, users recorded in DIR/etc/passwd
# Options: --board real|simulated (a new configuration only; default real), --model "TEXT"
# (the board model, instead of /proc/device-tree/model), --caregiver-pin-hash H and
# --clinician-pin-hash H (from `homeapp config hash-pin`, for a new configuration).
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPLOY=$SRC/deploy
APP_USER=homeapp
APP_GROUPS=(video render input gpio spi)
PREFIX=/opt/homeapp
VENV=$PREFIX/venv
CONF_DIR=/etc/homeapp
CONF=$CONF_DIR/config.toml
DATA=/var/lib/homeapp
UNIT_DIR=/etc/systemd/system
BOOT_CONFIG=/boot/firmware/config.txt
UNITS=(homeapp-safe-outputs.service pigpiod.service homeapp.service homeapp-backup.service homeapp-backup.timer)
APT_PACKAGES=(pigpiod gpiod python3 python3-venv python3-pip sqlite3
              libsdl2-2.0-0 libsdl2-image-2.0-0 libsdl2-mixer-2.0-0 libsdl2-ttf-2.0-0
              libmtdev1 libgl1 libgles2 libegl1 libgbm1 libdrm2)

ROOT=""
DRY_RUN=0
MODEL=""
BOARD=real
CARE_HASH=""
CLIN_HASH=""

die() { echo "install.sh: $*" >&2; exit 1; }
note() { echo "install.sh: $*"; }

while (($#)); do
    case $1 in
        --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --model) MODEL=${2?--model needs the model text}; shift 2 ;;
        --board) BOARD=${2:?--board needs real or simulated}; shift 2 ;;
        --caregiver-pin-hash) CARE_HASH=${2:?}; shift 2 ;;
        --clinician-pin-hash) CLIN_HASH=${2:?}; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $BOARD == real || $BOARD == simulated ]] || die "--board must be real or simulated, not '$BOARD'"
for h in "$CARE_HASH" "$CLIN_HASH"; do
    [[ -z $h || $h =~ ^scrypt\$[A-Za-z0-9,=+/$]+$ ]] || die "a PIN hash looks like scrypt\$n=…, as printed by 'homeapp config hash-pin'"
done
if [[ -n $ROOT ]]; then
    ((DRY_RUN)) || mkdir -p "$ROOT" || die "cannot create $ROOT"
    [[ -d $ROOT ]] && ROOT=$(cd "$ROOT" && pwd)
    [[ $ROOT != / ]] || ROOT=""
fi
# "Rehearsal": files go into ROOT (or nowhere), the machine itself is not touched.
REHEARSAL=0
if [[ -n $ROOT ]] || ((DRY_RUN)); then REHEARSAL=1; fi
if ((!REHEARSAL)) && [[ $(id -u) != 0 ]]; then
    die "run it as root: sudo $0"
fi

# --- the board: refuse a Pi 5, refuse anything unknown on a real install ---------------
if [[ -z $MODEL && -r $ROOT/proc/device-tree/model ]]; then
    MODEL=$(tr -d '\0' <"$ROOT/proc/device-tree/model")
fi
case $MODEL in
    *"Raspberry Pi 5"*|*"Compute Module 5"*)  # the Pi 500 too
        die "this is a $MODEL. homeapp cannot run on the Raspberry Pi 5 family: pigpio, which times every stimulation pulse, does not work with its RP1 chip. Use a Raspberry Pi 4, Compute Module 4, Raspberry Pi 3B+ or Zero 2 W." ;;
    *"Raspberry Pi 4 Model B"*|*"Compute Module 4"*|*"Raspberry Pi 3 Model B Plus"*|*"Raspberry Pi Zero 2 W"*)
        note "board: $MODEL" ;;
    *)
        msg="'${MODEL:-no board model found}' is not a supported board (Raspberry Pi 4, Compute Module 4, Raspberry Pi 3B+ or Zero 2 W)"
        ((REHEARSAL)) || die "$msg"
        note "warning: $msg; carrying on because nothing on this machine is changed" ;;
esac
if [[ -r $ROOT/etc/os-release ]] && ! grep -q '^VERSION_CODENAME=bookworm' "$ROOT/etc/os-release"; then
    note "warning: not Raspberry Pi OS Bookworm; the steps below were written for Bookworm"
fi

# --- helpers: every change goes through these, so --dry-run and --root are honest ------
run() {  # an OS-level step
    if ((REHEARSAL)); then printf 'would run:'; printf ' %q' "$@"; echo; else "$@"; fi
}
owner_ids() {  # "user:group" as chown wants it: names on the machine, numbers inside --root
    local user=$1 group=$2
    if [[ -z $ROOT ]]; then echo "$user:$group"; return; fi
    local uid gid
    uid=$(awk -F: -v n="$user" '$1 == n {print $3}' "$ROOT/etc/passwd" 2>/dev/null || true)
    gid=$(awk -F: -v n="$group" '$1 == n {print $3}' "$ROOT/etc/group" 2>/dev/null || true)
    echo "${uid:-$user}:${gid:-$group}"
}
own() {  # own USER GROUP PATH
    local ids
    ids=$(owner_ids "$1" "$2")
    if ((DRY_RUN)); then echo "would chown $1:$2 $ROOT$3"
    elif [[ $(id -u) == 0 ]]; then chown "$ids" "$ROOT$3"
    else echo "would chown $1:$2 $ROOT$3 (not root here)"; fi
}
mkdir_as() {  # mkdir_as MODE USER GROUP DIR
    if ((DRY_RUN)); then echo "would create directory $ROOT$4 (mode $1, $2:$3)"; return; fi
    mkdir -p "$ROOT$4"
    chmod "$1" "$ROOT$4"
    own "$2" "$3" "$4"
}
put() {  # put MODE USER GROUP SOURCE DEST: copy, rewriting only when the content differs
    if ((DRY_RUN)); then echo "would install $4 as $ROOT$5 (mode $1, $2:$3)"; return; fi
    mkdir -p "$(dirname "$ROOT$5")"
    cmp -s "$4" "$ROOT$5" || cp "$4" "$ROOT$5"
    chmod "$1" "$ROOT$5"
    own "$2" "$3" "$5"
}
app_python() {  # the project's Python: the installed venv, or (rehearsal) this source tree
    if ((REHEARSAL)); then
        PYTHONPATH=$SRC${PYTHONPATH:+:$PYTHONPATH} "${HOMEAPP_PYTHON:-python3}" "$@"
    else
        "$VENV/bin/python" "$@"
    fi
}

# --- 1. OS packages ---------------------------------------------------------------------
if ((!REHEARSAL)) && [[ $(dpkg --print-architecture) != arm64 ]]; then
    note "warning: $(dpkg --print-architecture) system; homeapp is built for the 64-bit (arm64) OS"
fi
run apt-get update
run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
# pinctrl (drives the lines low at boot) comes with Raspberry Pi OS; its package was renamed
# between releases, so ask for whichever exists. gpioset (gpiod, above) is the fallback.
if ((REHEARSAL)); then
    echo "would run: apt-get install raspi-utils-core (or raspi-utils) if pinctrl is missing"
elif ! command -v pinctrl >/dev/null; then
    for p in raspi-utils-core raspi-utils; do
        if apt-cache show "$p" >/dev/null 2>&1; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$p"
            break
        fi
    done
    command -v pinctrl >/dev/null || note "warning: no pinctrl; homeapp-safe-outputs will use gpioset"
fi

# --- 2. the user and its groups ---------------------------------------------------------
# Recorded as entries in ROOT/etc/passwd and ROOT/etc/group under --root; useradd otherwise.
free_system_id() {  # the highest id from 999 down that FILE does not use yet
    awk -F: '{used[$3] = 1} END {for (i = 999; i >= 100; i--) if (!(i in used)) {print i; exit}}' "$1"
}
root_group() {  # root_group NAME: add it to ROOT/etc/group if absent
    grep -q "^$1:" "$ROOT/etc/group" || echo "$1:x:$(free_system_id "$ROOT/etc/group"):" >>"$ROOT/etc/group"
}
root_member() {  # root_member GROUP USER: add USER to GROUP's member list if absent
    awk -F: -v g="$1" -v u="$2" '$1 == g {n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) found = 1}
                                 END {exit !found}' "$ROOT/etc/group" && return 0
    local tmp
    tmp=$(mktemp)
    awk -F: -v OFS=: -v g="$1" -v u="$2" '$1 == g {$4 = ($4 == "" ? u : $4 "," u)} {print}' "$ROOT/etc/group" >"$tmp"
    cat "$tmp" >"$ROOT/etc/group"   # keeps the file's own mode and owner
    rm -f "$tmp"
}
if [[ -n $ROOT ]] && ((!DRY_RUN)); then
    mkdir -p "$ROOT/etc"
    for f in passwd group; do [[ -e $ROOT/etc/$f ]] || : >"$ROOT/etc/$f"; done
    root_group "$APP_USER"
    for g in "${APP_GROUPS[@]}"; do root_group "$g"; root_member "$g" "$APP_USER"; done
    if ! grep -q "^$APP_USER:" "$ROOT/etc/passwd"; then
        gid=$(awk -F: -v n="$APP_USER" '$1 == n {print $3}' "$ROOT/etc/group")
        echo "$APP_USER:x:$(free_system_id "$ROOT/etc/passwd"):$gid:homeapp NMES trainer:$DATA:/usr/sbin/nologin" >>"$ROOT/etc/passwd"
    fi
fi
for g in "${APP_GROUPS[@]}"; do
    if ((REHEARSAL)) || ! getent group "$g" >/dev/null; then run groupadd --system -f "$g"; fi
done
if ((REHEARSAL)) || ! id "$APP_USER" >/dev/null 2>&1; then
    run useradd --system --user-group --home-dir "$DATA" --no-create-home \
        --shell /usr/sbin/nologin --comment "homeapp NMES trainer" "$APP_USER"
fi
run usermod --append --groups "$(IFS=,; echo "${APP_GROUPS[*]}")" "$APP_USER"

# --- 3. the project in its own virtual environment --------------------------------------
mkdir_as 0755 root root "$PREFIX"
mkdir_as 0755 root root "$PREFIX/bin"
mkdir_as 0755 root root "$PREFIX/deploy"
[[ -x $ROOT$VENV/bin/python ]] || run python3 -m venv "$VENV"
run "$VENV/bin/python" -m pip install --quiet --upgrade pip
# The dependencies first, then the project itself rebuilt from this tree even when its
# version number did not change (an update from a newer checkout).
run "$VENV/bin/python" -m pip install --quiet "$SRC"
run "$VENV/bin/python" -m pip install --quiet --no-deps --force-reinstall "$SRC"
for script in homeapp-safe-outputs homeapp-backup; do
    put 0755 root root "$DEPLOY/$script" "$PREFIX/bin/$script"
done
put 0755 root root "$DEPLOY/uninstall.sh" "$PREFIX/bin/homeapp-uninstall"
put 0644 root root "$DEPLOY/README.md" "$PREFIX/deploy/README.md"
put 0644 root root "$DEPLOY/config.example.toml" "$PREFIX/deploy/config.example.toml"

# --- 4. configuration: made once, then only ever checked --------------------------------
# In a rehearsal the project runs from this tree with $HOMEAPP_PYTHON (or python3); a
# Python without the project's dependencies can only skip the checks, not fail the run.
HAVE_APP=1
app_python -c 'import homeapp.cli, homeapp.device_key; homeapp.cli.build_parser()' 2>/dev/null || HAVE_APP=0
mkdir_as 0750 root "$APP_USER" "$CONF_DIR"
if [[ -e $ROOT$CONF ]]; then
    note "keeping the existing configuration $CONF"
elif ((DRY_RUN)); then
    echo "would create $ROOT$CONF from config.example.toml (board $BOARD; mode 0640, root:$APP_USER)"
else
    # On a real install at a terminal, ask for the two PINs now (the app needs both).
    if ((!REHEARSAL)) && [[ $BOARD == real && -t 0 ]]; then
        [[ -n $CARE_HASH ]] || { echo "Choose the caregiver's PIN."; CARE_HASH=$("$VENV/bin/homeapp" config hash-pin); }
        [[ -n $CLIN_HASH ]] || { echo "Choose the clinician's PIN (a different one)."; CLIN_HASH=$("$VENV/bin/homeapp" config hash-pin); }
    fi
    new=$(mktemp)
    sed -e "s|^board = \"real\"|board = \"$BOARD\"|" \
        -e "s|^caregiver_pin_hash = \"\"|caregiver_pin_hash = \"$CARE_HASH\"|" \
        -e "s|^clinician_pin_hash = \"\"|clinician_pin_hash = \"$CLIN_HASH\"|" \
        "$DEPLOY/config.example.toml" >"$new"
    put 0640 root "$APP_USER" "$new" "$CONF"
    rm -f "$new"
    note "created $CONF (board $BOARD)"
fi
if ((!DRY_RUN)); then
    # Never leave a configuration readable by all (it holds the PIN hashes).
    chmod 0640 "$ROOT$CONF"
    own root "$APP_USER" "$CONF"
    if ((!HAVE_APP)); then
        ((REHEARSAL)) || die "the installed program does not start: $VENV/bin/homeapp --help fails"
        note "warning: no Python with the project's dependencies here (set HOMEAPP_PYTHON): the configuration was not checked"
    elif problems=$(app_python -m homeapp.cli config check "$ROOT$CONF"); then
        note "$problems"
    else
        note "the configuration needs attention before the app can start:"
        printf '    %s\n' "${problems//$'\n'/$'\n'    }"
        note "edit $CONF, then check it: $VENV/bin/homeapp config check $CONF"
    fi
fi

# --- 5. data: database, device key, trust store, backups --------------------------------
mkdir_as 0750 "$APP_USER" "$APP_USER" "$DATA"
for sub in trust backups kivy; do mkdir_as 0750 "$APP_USER" "$APP_USER" "$DATA/$sub"; done
put 0640 "$APP_USER" "$APP_USER" "$DEPLOY/kivy/config.ini" "$DATA/kivy/config.ini"
key=$DATA/device_key.pem
if [[ -e $ROOT$key ]]; then
    note "keeping the device key $key"
elif ((DRY_RUN)); then
    echo "would create the device key $ROOT$key (mode 0600, $APP_USER)"
elif ((!HAVE_APP)); then
    note "warning: the device key was not made here; the app makes it on its first start"
else
    (umask 077; app_python -c 'import sys; from homeapp.device_key import ensure_device_key; ensure_device_key(sys.argv[1], private_key_path=sys.argv[2])' "$ROOT$DATA" "$ROOT$key")
    note "created the device key $key"
fi
if ((!DRY_RUN)) && [[ -e $ROOT$key ]]; then
    chmod 0600 "$ROOT$key"
    own "$APP_USER" "$APP_USER" "$key"
    chmod 0644 "$ROOT${key%.pem}.pub"
    own "$APP_USER" "$APP_USER" "${key%.pem}.pub"
fi
if ((!DRY_RUN)); then
    # A database left by an earlier install (or created by the app) stays, readable by no one else.
    for f in "$ROOT$DATA"/homeapp.db "$ROOT$DATA"/homeapp.db-wal "$ROOT$DATA"/homeapp.db-shm; do
        [[ -e $f ]] || continue
        chmod 0640 "$f"
        own "$APP_USER" "$APP_USER" "${f#"$ROOT"}"
    done
fi

# --- 6. systemd units -------------------------------------------------------------------
for unit in "${UNITS[@]}"; do put 0644 root root "$DEPLOY/units/$unit" "$UNIT_DIR/$unit"; done
put 0644 root root "$DEPLOY/units/pigpiod.service.d/zz-homeapp-localhost.conf" \
    "$UNIT_DIR/pigpiod.service.d/zz-homeapp-localhost.conf"
run systemctl daemon-reload
run systemctl enable homeapp-safe-outputs.service pigpiod.service homeapp.service homeapp-backup.timer
# The console, not a desktop: a desktop session would take the screen from the app.
run systemctl set-default multi-user.target

# --- 7. firmware: the board's lines low from power-on, SPI on for the DAC and ADC ----------
# config.txt's gpio= is applied by the firmware before Linux starts; the unit above repeats
# it from the configuration once Linux runs.
if [[ -f $ROOT$BOOT_CONFIG ]]; then
    mapfile -t outs < <(app_python -m homeapp.config pins "$ROOT$CONF" 2>/dev/null | awk '{print $2}' || true)
    ((${#outs[@]})) || outs=(24 17 27 22 23 25)
    # [all]: the lines must not end up inside a model-specific section such as [cm4].
    block=$'# BEGIN homeapp (deploy/install.sh): stimulation board lines low from power-on\n[all]\n'
    block+="gpio=$(IFS=,; echo "${outs[*]}")=op,dl"$'\ndtparam=spi=on\n# END homeapp\n'
    current=$(cat "$ROOT$BOOT_CONFIG")
    wanted=$(awk '/^# BEGIN homeapp/ {skip = 1} !skip {print} /^# END homeapp/ {skip = 0}' "$ROOT$BOOT_CONFIG")
    wanted+=$'\n'$block
    if [[ $current$'\n' != "$wanted" ]]; then
        if ((DRY_RUN)); then echo "would add the homeapp block to $ROOT$BOOT_CONFIG"
        else printf '%s' "$wanted" >"$ROOT$BOOT_CONFIG"; note "updated $BOOT_CONFIG (takes effect at the next boot)"; fi
    fi
else
    note "no $BOOT_CONFIG here: add 'gpio=24,17,27,22,23,25=op,dl' and 'dtparam=spi=on' to the firmware configuration by hand"
fi

# Started, never restarted: restarting would end a patient's session. A reboot runs the update.
run systemctl start homeapp-safe-outputs.service pigpiod.service homeapp-backup.timer
note "done. Reboot to start the device: sudo reboot"
