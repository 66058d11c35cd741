#!/usr/bin/env bash
# A virtual microphone for the live tests: PulseAudio with a null sink "vmic" whose monitor is the
# default source. What is played into the sink (`paplay --device=vmic speech.wav`) is what
# sounddevice records from the default input (ALSA "default" -> pulse, via libasound2-plugins).
# And virtual speakers: a null sink "speakers", the default output, whose monitor is the system audio.
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
# "The computer's speakers": a second null sink, the default output, kept rendering like vmic. Its
# monitor is what `surtitle live --source system` captures; paplay --device=speakers plays into it.
pactl load-module module-null-sink sink_name=speakers rate="$_vmic_rate" channels=2 \
  sink_properties=device.description=Speakers >/dev/null &&
pactl load-module module-null-source source_name=speakers_keepalive rate="$_vmic_rate" channels=2 >/dev/null &&
pactl load-module module-loopback source=speakers_keepalive sink=speakers latency_msec=20 source_dont_move=true \
  sink_dont_move=true >/dev/null
if ! { pactl set-default-sink speakers && pactl set-default-source vmic.monitor; }; then
  echo "virtual mic: could not make speakers the default output and vmic's monitor the default input" >&2
  return 1 2>/dev/null || exit 1
fi
sleep "${VMIC_SETTLE_S:-2.5}"
echo "virtual mic ready (pulseaudio pid $(cat "$XDG_RUNTIME_DIR/pulseaudio.pid"), $PULSE_SERVER)"
