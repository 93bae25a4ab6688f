#!/usr/bin/env bash
# Makes assets/screenshot-file.png: bob's screen while he saves a 1 GiB file ana offered,
# the file message picked with the chat cursor (Ctrl-↑, then Enter: the save started by
# keystroke) and its gauge caught mid-transfer with the rate and the ETA. Two gossip-chat
# TUIs on loopback in a private network namespace (no mDNS, no root: `unshare -rn`), bob's
# screen captured from tmux with its colours, turned into HTML by aha and rendered by
# headless Chromium. The transfer is paced by the node's response budget (64 MiB/s per
# peer by default), so a 1 GiB file takes some 16 s: time enough to catch the gauge at
# 35-75%. At the end the saved copy is compared with the original.
#
#   assets/screenshot-file.sh      (needs util-linux unshare, tmux, aha, chromium, 3 GiB
#                                   of free disk; run from the repo after `cargo build`;
#                                   GOSSIP_CHAT_BIN picks another binary)
set -euo pipefail
if [ -z "${GC_IN_NS:-}" ]; then
  exec unshare -rn env GC_IN_NS=1 "$0" "$@"
fi
ip link set lo up
BIN=$(realpath "${GOSSIP_CHAT_BIN:-target/debug/gossip-chat}")
SOCK=gcfile
DATA=$(mktemp -d)
cleanup() { tmux -L "$SOCK" kill-server 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
# Each runs with a HOME of its own (no config file of the user's), and bob in an empty
# folder: without a downloads directory, `/save` saves in the current one.
mkdir -p "$DATA/home" "$DATA/downloads"
FILE=$DATA/demo-recording.mkv
truncate -s 1G "$FILE"
tmux -L "$SOCK" new-session -d -s ana -x 150 -y 42 -c "$DATA" \
  "env HOME=$DATA/home $BIN --no-mdns --port 17101 --name ana --room office --data-dir $DATA/ana"
tmux -L "$SOCK" new-session -d -s bob -x 150 -y 42 -c "$DATA/downloads" \
  "env HOME=$DATA/home $BIN --no-mdns --port 17102 --peer 127.0.0.1:17101 --name bob --room office --data-dir $DATA/bob"
type_line() { tmux -L "$SOCK" send-keys -t "$1" -l "$2"; tmux -L "$SOCK" send-keys -t "$1" Enter; sleep "${3:-0.6}"; }
screen() { tmux -L "$SOCK" capture-pane -p -t "$1"; }
# wait_for SESSION SECONDS TEXT: polls the screen until it shows TEXT.
wait_for() {
  local deadline=$((SECONDS + $2))
  until screen "$1" | grep -qF -- "$3"; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "$1 never showed: $3" >&2; screen "$1" >&2; exit 1; }
    sleep 0.2
  done
}
sleep 3
type_line bob "does anyone have the recording of friday's demo?"
type_line ana "I do, here it is, for the slides"
type_line ana "/send $FILE"
wait_for bob 120 "[file] demo-recording.mkv"
sleep 0.5
# The save, by keystroke: the cursor on the newest message (the file), then Enter.
tmux -L "$SOCK" send-keys -t bob C-Up
sleep 0.3
tmux -L "$SOCK" send-keys -t bob Enter
# Catch the gauge between 35% and 75%.
deadline=$((SECONDS + 120))
while :; do
  pct=$(screen bob | grep -oE '\] +[0-9]+% ·' | grep -oE '[0-9]+' | head -1 || true)
  if [ -n "$pct" ] && [ "$pct" -ge 35 ]; then
    [ "$pct" -le 75 ] || { echo "the gauge went past 75% between two looks ($pct%)" >&2; exit 1; }
    break
  fi
  [ "$SECONDS" -lt "$deadline" ] || { echo "no gauge at 35%+" >&2; screen bob >&2; exit 1; }
  sleep 0.1
done
tmux -L "$SOCK" capture-pane -e -p -t bob > "$DATA/screen.ansi"
aha --black --title "gossip-chat" < "$DATA/screen.ansi" > "$DATA/screen.html"
sed -i 's#<pre>#<pre style="font-family: DejaVu Sans Mono, monospace; font-size: 13px; line-height: 1.12; margin: 0;">#' "$DATA/screen.html"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$DATA/chrome" --hide-scrollbars --window-size=1230,680 \
  --screenshot="$PWD/assets/screenshot-file.png" "file://$DATA/screen.html" 2>/dev/null
grep -oE '\[[█░]+\] +[0-9]+% · [^ ]+ [^ ]+/s · ETA [0-9?]+s?' "$DATA/screen.ansi" | head -1
echo "wrote assets/screenshot-file.png"
wait_for bob 180 "saved to "
cmp "$FILE" "$DATA/downloads/demo-recording.mkv"
echo "bob's copy is byte-identical to ana's file"
