#!/usr/bin/env bash
# Removes the homeapp appliance from this device: its services, the pigpiod override and the
# program. The patient's data (/var/lib/homeapp: session log, device key, trust store,
# backups), the configuration and the homeapp user stay unless --purge is given.
#
#   sudo /opt/homeapp/bin/homeapp-uninstall            keep the data
#   sudo /opt/homeapp/bin/homeapp-uninstall --purge    delete the data too (asks first; --yes
#                                                     to skip the question)
#   --root DIR   act on the tree in DIR (systemctl and userdel printed, not run)
#   --dry-run    print what would be done, change nothing
set -euo pipefail

APP_USER=homeapp
PREFIX=/opt/homeapp
CONF_DIR=/etc/homeapp
DATA=/var/lib/homeapp
UNIT_DIR=/etc/systemd/system
UNITS=(homeapp.service homeapp-backup.timer homeapp-backup.service pigpiod.service homeapp-safe-outputs.service)

ROOT=""
DRY_RUN=0
PURGE=0
YES=0
die() { echo "uninstall: $*" >&2; exit 1; }
while (($#)); do
    case $1 in
        --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --purge) PURGE=1; shift ;;
        --yes) YES=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
if [[ -n $ROOT ]]; then
    [[ -d $ROOT ]] || die "$ROOT is not a directory"
    ROOT=$(cd "$ROOT" && pwd)
fi
REHEARSAL=0
if [[ -n $ROOT ]] || ((DRY_RUN)); then REHEARSAL=1; fi
if ((!REHEARSAL)) && [[ $(id -u) != 0 ]]; then die "run it as root: sudo $0"; fi

run() { if ((REHEARSAL)); then echo "would run: $*"; else "$@"; fi; }
remove() {  # remove PATH...: files and directories inside ROOT
    local p
    for p in "$@"; do
        [[ -e $ROOT$p || -L $ROOT$p ]] || continue
        [[ $p == /?* ]] || die "refusing to remove '$p'"
        if ((DRY_RUN)); then echo "would remove $ROOT$p"; else rm -rf -- "$ROOT$p"; fi
    done
}

if ((PURGE && !YES)); then
    [[ -t 0 ]] || die "--purge deletes the patient's session log and keys; add --yes to confirm without a terminal"
    echo "This deletes every session log, the device key and the configuration in $DATA and $CONF_DIR."
    echo "Back up first if the clinician still needs them: sudo -u $APP_USER $PREFIX/bin/homeapp-backup"
    read -r -p "Type 'delete' to go on: " answer
    [[ $answer == delete ]] || die "nothing was removed"
fi

# Stop the app first, then pigpiod, and drive the lines low once more while the script exists.
run systemctl disable --now homeapp.service homeapp-backup.timer
run systemctl disable --now pigpiod.service
if ((REHEARSAL)); then echo "would run: $PREFIX/bin/homeapp-safe-outputs"
elif [[ -x $PREFIX/bin/homeapp-safe-outputs ]]; then "$PREFIX/bin/homeapp-safe-outputs" || true; fi
run systemctl disable homeapp-safe-outputs.service

for unit in "${UNITS[@]}"; do remove "$UNIT_DIR/$unit"; done
remove "$UNIT_DIR/pigpiod.service.d/zz-homeapp-localhost.conf"
if [[ -d $ROOT$UNIT_DIR/pigpiod.service.d ]] && ((!DRY_RUN)); then
    rmdir --ignore-fail-on-non-empty "$ROOT$UNIT_DIR/pigpiod.service.d"
fi
run systemctl daemon-reload
remove "$PREFIX"
# The firmware lines in /boot/firmware/config.txt stay: holding the board's lines low is
# safe whatever runs next on this Pi.

if ((PURGE)); then
    remove "$DATA" "$CONF_DIR"
    run userdel "$APP_USER"
    if [[ -n $ROOT ]] && ((!DRY_RUN)); then
        # The entries install.sh recorded: the user, its group, its group memberships.
        tmp=$(mktemp)
        if [[ -f $ROOT/etc/passwd ]]; then
            awk -F: -v u="$APP_USER" '$1 != u' "$ROOT/etc/passwd" >"$tmp"
            cat "$tmp" >"$ROOT/etc/passwd"
        fi
        if [[ -f $ROOT/etc/group ]]; then
            awk -F: -v OFS=: -v u="$APP_USER" '$1 == u {next}
                {n = split($4, m, ","); out = ""
                 for (i = 1; i <= n; i++) if (m[i] != u) out = out (out == "" ? "" : ",") m[i]
                 $4 = out; print}' "$ROOT/etc/group" >"$tmp"
            cat "$tmp" >"$ROOT/etc/group"
        fi
        rm -f "$tmp"
    fi
    echo "uninstall: homeapp and all its data removed"
else
    echo "uninstall: homeapp removed; the data in $DATA and the configuration in $CONF_DIR were kept"
fi
