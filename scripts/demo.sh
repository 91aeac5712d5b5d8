#!/usr/bin/env bash
# make demo: the emulator and the demo cloud service, end to end.
# Without a display it falls back to the terminal demo of the same path.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${DEMO_BACKEND_PORT:-8090}
state=${DEMO_STATE:-${XDG_CONFIG_HOME:-$HOME/.config}/openmpns/demo}

if [ -z "${DISPLAY:-}" ] || [ ! -x bin/openmpns-emulator ]; then
  echo "No display (DISPLAY is not set) or no emulator build: showing the terminal demo."
  echo "On a desktop, 'make demo' opens the phone emulator instead."
  exec bin/openmpns demo
fi

echo "Starting the demo cloud service on 127.0.0.1:$port"
bin/openmpns demo-backend --listen "127.0.0.1:$port" &
backend=$!
trap 'kill $backend 2>/dev/null || true' EXIT
echo "Starting the emulator (state in $state). Tap News or Mail and allow notifications;"
echo "Photos updates by itself. Close the window to stop."
bin/openmpns-emulator --backend "http://127.0.0.1:$port" --state "$state" "$@"
