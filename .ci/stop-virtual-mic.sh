#!/usr/bin/env bash
# Stop the PulseAudio that start-virtual-mic.sh started: by its saved PID, never by name.
runtime="${XDG_RUNTIME_DIR:-/tmp/surtitle-vmic}"
pidfile="$runtime/pulseaudio.pid"
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$pidfile"
fi
rm -rf "$runtime/pulse"
exit 0
