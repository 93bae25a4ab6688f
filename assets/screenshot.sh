#!/usr/bin/env bash
# Makes assets/screenshot.png and assets/screenshot-mentions.png: a real three-laptop
# gossip-chat session on a private LAN of network namespaces (mDNS stays inside them), one
# laptop's screen captured from tmux with its colours, turned into HTML by aha and rendered
# by headless Chromium. The second shot: ana scrolled up, a mention of her marked, and
# "3 new" below.
#
#   sudo assets/screenshot.sh      (needs iproute2, tmux, aha, chromium; run from the repo)
set -euo pipefail
BIN=${GOSSIP_CHAT_BIN:-target/release/gossip-chat}
P=gcshot
SOCK=gcshot
DATA=$(mktemp -d)
cleanup() {
  tmux -L "$SOCK" kill-server 2>/dev/null || true
  for i in 1 2 3; do ip netns del "$P-$i" 2>/dev/null || true; done
  ip netns del "$P-hub" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
cleanup
ip netns add "$P-hub"
ip -n "$P-hub" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
ip -n "$P-hub" link set br0 up
names=(ana bob carol)
for i in 1 2 3; do
  ip netns add "$P-$i"
  ip -n "$P-$i" link set lo up
  ip -n "$P-hub" link add "v$i" type veth peer name eth0 netns "$P-$i"
  ip -n "$P-hub" link set "v$i" master br0 up
  ip -n "$P-$i" addr add "10.79.0.$((10 + i))/24" dev eth0
  ip -n "$P-$i" link set eth0 multicast on up
  tmux -L "$SOCK" new-session -d -s "l$i" -x 150 -y 42 \
    "ip netns exec $P-$i $BIN --name ${names[$((i - 1))]} --room office --data-dir $DATA/$i"
done
type_line() { tmux -L "$SOCK" send-keys -t "l$1" -l "$2"; tmux -L "$SOCK" send-keys -t "l$1" Enter; sleep "${3:-0.6}"; }
sleep 3
type_line 1 "morning! anyone know if the projector in room 2 works?"
type_line 2 "it does, the HDMI adapter is in the drawer"
type_line 3 "I'll bring snacks for the demo"
type_line 1 "/add order more coffee beans"
type_line 2 "/add book the big room for friday"
type_line 3 "/add fix the flaky CI test"
type_line 2 "great, see you at 10"
type_line 1 "/nick ana (on call)" 1
# Tick the first item from carol's screen: focus the list, toggle.
tmux -L "$SOCK" send-keys -t l3 Tab; sleep 0.3; tmux -L "$SOCK" send-keys -t l3 Space; sleep 0.3
tmux -L "$SOCK" send-keys -t l3 Escape; sleep 2
# shot NAME: ana's screen as assets/NAME.png.
shot() {
  tmux -L "$SOCK" capture-pane -e -p -t l1 > "$DATA/screen.ansi"
  aha --black --title "gossip-chat" < "$DATA/screen.ansi" > "$DATA/screen.html"
  sed -i 's#<pre>#<pre style="font-family: DejaVu Sans Mono, monospace; font-size: 13px; line-height: 1.12; margin: 0;">#' "$DATA/screen.html"
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$DATA/chrome" --hide-scrollbars --window-size=1230,680 \
    --screenshot="$PWD/assets/$1.png" "file://$DATA/screen.html" 2>/dev/null
  echo "wrote assets/$1.png"
}
shot screenshot
# Mentions and unread: bob asks ana something, the room goes on, ana scrolls back to it
# and three more messages arrive below.
type_line 2 "@ana could you bring the spare HDMI cable? https://wiki.example.org/rooms/2#av" 0.4
for i in 1 2 3 4 5 6 7 8; do
  type_line 3 "agenda item $i: ten minutes" 0.15
done
type_line 2 "ana: also the clicker, thanks!" 0.4
for i in 9 10 11 12 13 14; do
  type_line 3 "agenda item $i: ten minutes" 0.15
done
tmux -L "$SOCK" send-keys -t l1 PageUp; sleep 0.5
type_line 3 "and a break at 11" 0.3
type_line 2 "who takes notes?" 0.3
type_line 3 "I can" 1
shot screenshot-mentions
