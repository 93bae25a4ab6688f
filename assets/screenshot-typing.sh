#!/usr/bin/env bash
# Makes assets/screenshot-typing.png: bob's screen while ana types a message she has not
# sent yet ("ana is typing…" under the chat) and carol is away ("(away: lunch)" beside her
# name). Three gossip-chat TUIs on loopback in a private network namespace (no mDNS, no
# root: `unshare -rn`), bob's screen captured from tmux with its colours, turned into
# HTML by aha and rendered by headless Chromium.
#
#   assets/screenshot-typing.sh      (needs util-linux unshare, tmux, aha, chromium; run
#                                     from the repo after `cargo build`)
set -euo pipefail
if [ -z "${GC_IN_NS:-}" ]; then
  exec unshare -rn env GC_IN_NS=1 "$0" "$@"
fi
ip link set lo up
BIN=${GOSSIP_CHAT_BIN:-target/debug/gossip-chat}
SOCK=gctyping
DATA=$(mktemp -d)
cleanup() { tmux -L "$SOCK" kill-server 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
names=(ana bob carol)
for i in 1 2 3; do
  peer=""
  [ "$i" -gt 1 ] && peer="--peer 127.0.0.1:17001"
  tmux -L "$SOCK" new-session -d -s "l$i" -x 150 -y 42 \
    "$BIN --no-mdns --port 1700$i $peer --name ${names[$((i - 1))]} --room office --data-dir $DATA/$i"
done
type_line() { tmux -L "$SOCK" send-keys -t "l$1" -l "$2"; tmux -L "$SOCK" send-keys -t "l$1" Enter; sleep "${3:-0.6}"; }
sleep 3
type_line 3 "/peer 127.0.0.1:17002"
type_line 1 "morning! is the projector in room 2 working?"
type_line 2 "it is, the HDMI adapter is in the drawer"
type_line 3 "I'll bring snacks for the demo"
type_line 1 "/add order more coffee beans"
type_line 3 "/away lunch" 1
# ana types, and does not send.
tmux -L "$SOCK" send-keys -t l1 -l "and the clicker, does any"
sleep 1
tmux -L "$SOCK" capture-pane -e -p -t l2 > "$DATA/screen.ansi"
aha --black --title "gossip-chat" < "$DATA/screen.ansi" > "$DATA/screen.html"
sed -i 's#<pre>#<pre style="font-family: DejaVu Sans Mono, monospace; font-size: 13px; line-height: 1.12; margin: 0;">#' "$DATA/screen.html"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$DATA/chrome" --hide-scrollbars --window-size=1230,680 \
  --screenshot="$PWD/assets/screenshot-typing.png" "file://$DATA/screen.html" 2>/dev/null
grep -o "ana is typing…" "$DATA/screen.ansi" | head -1
echo "wrote assets/screenshot-typing.png"
