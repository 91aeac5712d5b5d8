#!/usr/bin/env bash
# make screenshots: runs the real emulator window under Xvfb with the demo
# backend, clicks through it with xdotool and saves the pictures the README
# shows in docs/images/: one phone (start, optin, app, toast, inspector),
# then two phones of two screen profiles (profiles) and the first phone's
# lock screen (lock). Needs: xvfb, xdotool, x11-apps (xwd), imagemagick.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in Xvfb xdotool xwd convert; do
  command -v "$tool" >/dev/null || { echo "screenshots: $tool is missing (apt-get install xvfb xdotool x11-apps imagemagick)"; exit 1; }
done
display=:97
port=8097
push_port=8098
state=$(mktemp -d)
out=docs/images
mkdir -p "$out"
Xvfb "$display" -screen 0 1100x950x24 >/dev/null 2>&1 &
xvfb=$!
bin/openmpns demo-backend --listen "127.0.0.1:$port" --push-server "http://127.0.0.1:$push_port" --interval 3s >/dev/null &
backend=$!
emu="" # set once the emulator starts; cleanup may run before
cleanup() { kill ${emu:+"$emu"} "$backend" "$xvfb" 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT
sleep 1
DISPLAY=$display LANG=en_US.UTF-8 bin/openmpns-emulator --state "$state" --listen "127.0.0.1:$push_port" --backend "http://127.0.0.1:$port" >/dev/null 2>&1 &
emu=$!
shot() { sleep "$2"; DISPLAY=$display xwd -root -silent | convert xwd:- -crop 996x928+0+0 +repage "$out/$1.png"; echo "wrote $out/$1.png"; }
click() { DISPLAY=$display xdotool mousemove "$1" "$2" click 1; }
shot start 6                # Photos updates by itself (no prompt needed)
click 153 222; shot optin 2 # tap News: the opt-in prompt
click 145 316; shot app 5   # allow: channel bound, URI handed off
click 255 890; shot toast 7 # start: live tiles and a toast
# The inspector with the toast open. Pushes keep arriving (three a tick, in
# no set order), so the toast is not always the top row: with the pointer
# over the list its rows stay put, so the row found in a capture is the one
# clicked. The kind "toast" is the only one whose text reaches x=565..571
# ("tile" and "raw" end before).
DISPLAY=$display xdotool mousemove 700 88 # the column titles
sleep 0.5
DISPLAY=$display xwd -root -silent >"$state/list.xwd"
row=""
for y in 120 152 184 216 248 280 312 344; do
  lit=$(convert "xwd:$state/list.xwd" -crop 6x12+565+$((y - 6)) -colorspace Gray -format '%[fx:maxima]' info:)
  if awk "BEGIN { exit !($lit > 0.6) }"; then row=$y && break; fi
done
[ -n "$row" ] || { echo "screenshots: no toast in the inspector's list"; exit 1; }
click 560 "$row"; shot inspector 2

# Two phones side by side: the first WVGA (four columns), the second 1080p
# (six columns), both allowing toasts; then the first phone's power key
# (F12) shows its lock screen, fed by the same tile updates.
kill "$emu" 2>/dev/null || true
wait "$emu" 2>/dev/null || true
kill "$xvfb" 2>/dev/null || true
wait "$xvfb" 2>/dev/null || true
rm -rf "$state" && state=$(mktemp -d)
mkdir -p "$state/phone2"
echo '{"profile":"1080p"}' >"$state/phone2/phone.json"
Xvfb "$display" -screen 0 1560x1000x24 >/dev/null 2>&1 &
xvfb=$!
sleep 1
DISPLAY=$display LANG=en_US.UTF-8 bin/openmpns-emulator --state "$state" --listen "127.0.0.1:$push_port" \
  --backend "http://127.0.0.1:$port" --phones 2 --auto-consent allow >/dev/null 2>&1 &
emu=$!
wide() { sleep "$2"; DISPLAY=$display xwd -root -silent | convert xwd:- -crop "$3" +repage "$out/$1.png"; echo "wrote $out/$1.png"; }
wide profiles 14 1508x982+0+0
# Flip tiles turn over every 6 s, in 0.6 s: a picture taken mid-turn shows
# the News tile squeezed between black bands. Take it again, a little
# later, while the top of the first phone's News tile is black.
for _ in 1 2 3; do
  top=$(convert "$out/profiles.png" -crop 1x1+145+150 -format '%[fx:maxima]' info:)
  awk "BEGIN { exit !($top < 0.05) }" || break
  echo "screenshots: the News tile was turning over; again"
  wide profiles 0.7 1508x982+0+0
done
DISPLAY=$display xdotool key --window "$(DISPLAY=$display xdotool search --name OpenMPNS | head -1)" F12
wide lock 1.5 512x982+0+0
