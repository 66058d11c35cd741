#!/usr/bin/env bash
# A virtual microphone for the live tests: PulseAudio with a null sink "vmic" whose monitor is the
# default source. What is played into the sink (`paplay --device=vmic speech.wav`) is what
# sounddevice records from the default input (ALSA "default" -> pulse, via libasound2-plugins).
#
# SOURCE this file (it exports XDG_RUNTIME_DIR and PULSE_SERVER for the tests); stop the server
# with .ci/stop-virtual-mic.sh. Needs: pulseaudio pulseaudio-utils libasound2-plugins libportaudio2.
#
# Two things found the hard way (see the environment notes):
# - An idle null sink renders in 2-second blocks, and captures then silently miss up to 75 % of the
#   frames. A silent source looped into the sink with 20 ms latency keeps it rendering in small blocks.
# - A stream opened in the first ~2 s after start gets its first frame late: we wait that out here.
# No `set -e`: a sourced file must not change the caller's shell options.

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/surtitle-vmic}"
mkdir -p "$XDG_RUNTIME_DIR/pulse" && chmod 700 "$XDG_RUNTIME_DIR"
export PULSE_SERVER="unix:$XDG_RUNTIME_DIR/pulse/native"
_vmic_log="$XDG_RUNTIME_DIR/pulseaudio.log"
_vmic_rate="${VMIC_RATE:-48000}"

pulseaudio --daemonize=no -n --exit-idle-time=-1 --disallow-exit --use-pid-file=no --log-target=stderr \
  --load="module-native-protocol-unix auth-anonymous=1 socket=$XDG_RUNTIME_DIR/pulse/native" \
  --load="module-null-sink sink_name=vmic rate=$_vmic_rate channels=1 sink_properties=device.description=VirtualMic" \
  --load="module-null-source source_name=vmic_keepalive rate=$_vmic_rate channels=1" \
  --load="module-loopback source=vmic_keepalive sink=vmic latency_msec=20 source_dont_move=true sink_dont_move=true" \
  >"$_vmic_log" 2>&1 &
echo $! >"$XDG_RUNTIME_DIR/pulseaudio.pid"

_vmic_up=no
for _ in $(seq 1 100); do
  if pactl info >/dev/null 2>&1; then _vmic_up=yes; break; fi
  sleep 0.1
done
if [ "$_vmic_up" != yes ]; then
  echo "virtual mic: pulseaudio did not start; its log:" >&2
  cat "$_vmic_log" >&2
  return 1 2>/dev/null || exit 1
fi
if ! { pactl set-default-sink vmic && pactl set-default-source vmic.monitor; }; then
  echo "virtual mic: could not make vmic the default sink and source" >&2
  return 1 2>/dev/null || exit 1
fi
sleep "${VMIC_SETTLE_S:-2.5}"
echo "virtual mic ready (pulseaudio pid $(cat "$XDG_RUNTIME_DIR/pulseaudio.pid"), $PULSE_SERVER)"
