#!/usr/bin/env bash
# make demo: the emulator and the demo cloud service, end to end.
# Without a display it falls back to the terminal demo of the same path.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${DEMO_BACKEND_PORT:-8090}
# The emulator's embedded push server listens here, and the demo service
# takes only Channel URIs of this server (and serves the Photos app's
# images from its own port, which is all that app allows).
push_port=${DEMO_SERVER_PORT:-8091}
state=${DEMO_STATE:-${XDG_CONFIG_HOME:-$HOME/.config}/openmpns/demo}
phones=${DEMO_PHONES:-2}

# A display: X11's DISPLAY, or a Mac's desktop, which needs none.
display=${DISPLAY:-}
[ "$(uname -s)" != Darwin ] || display=macos
if [ -z "$display" ] || [ ! -x bin/openmpns-emulator ]; then
  echo "No display (DISPLAY is not set) or no emulator build: showing the terminal demo."
  echo "On a desktop, 'make demo' opens the phone emulator instead."
  exec bin/openmpns demo
fi

echo "Starting the demo cloud service on 127.0.0.1:$port (for the push server on 127.0.0.1:$push_port)"
bin/openmpns demo-backend --listen "127.0.0.1:$port" --push-server "http://127.0.0.1:$push_port" &
backend=$!
trap 'kill $backend 2>/dev/null || true' EXIT
echo "Starting the emulator with $phones phones (state in $state; DEMO_PHONES=1 for one)."
echo "Tap News or Mail on a phone and allow notifications; Photos updates by itself,"
echo "on every phone: each is a device of its own, and the demo service pushes to each."
echo "Close the window to stop."
bin/openmpns-emulator --listen "127.0.0.1:$push_port" --backend "http://127.0.0.1:$port" --state "$state" --phones "$phones" "$@"
