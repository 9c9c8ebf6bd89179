#!/bin/sh
# `make run` with no display: the app on an 800x480 virtual screen (the device's), and a
# way to look at it. Runs inside xvfb-run (DISPLAY is the virtual screen's).
#   - x11vnc installed: a live view, served on this machine only;
#   - otherwise: a picture of the screen, written every few seconds by the app.
# usage: run_headless.sh HOMEAPP_BINARY PICTURE_PATH
set -eu
app=$1
picture=$2
if command -v x11vnc >/dev/null 2>&1; then
  port=$(x11vnc -display "$DISPLAY" -localhost -nopw -forever -shared -quiet -bg -autoport 5900 2>/dev/null \
         | sed -n 's/^PORT=//p')
  echo "no display found: the app runs on a virtual 800x480 screen ($DISPLAY)."
  echo "look at it live: a VNC viewer to localhost:${port:-5900} (x11vnc, this machine only; e.g. vncviewer localhost:${port:-5900})"
else
  echo "no display found: the app runs on a virtual 800x480 screen ($DISPLAY)."
  echo "look at it: $picture is rewritten every 3 s (open it in an image viewer);"
  echo "for a live view that you can touch with the mouse, install x11vnc (apt install x11vnc) and run make run again."
  export HOMEAPP_SCREEN_PICTURE="$picture"
fi
echo "stop it with Ctrl-C."
exec "$app"
