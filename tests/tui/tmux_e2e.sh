#!/usr/bin/env bash
# End-to-end test of the gossip-chat terminal UI: two "laptops" on a private LAN, each
# running the real TUI under tmux, driven by keystrokes and read back from the screen.
#
#   sudo tests/tui/tmux_e2e.sh        (CI runs it as root; needs iproute2 and tmux)
#
# Each laptop is a network namespace (gctui-1, gctui-2) with one interface on a bridge in
# a hub namespace (gctui-hub), so mDNS discovery runs only inside namespaces made here.
# tmux runs on its own socket (-L gctui) and puts `ip netns exec` inside each session's
# command, since new sessions start in the namespace of the tmux server.
#
# Checks: A's message and list item show on B within 2 s; B checks the item and A shows
# it checked; each peers panel shows the other alive (green dot); Ctrl-C leaves each TUI
# with exit status 0 and the terminal back from the alternate screen with mouse reporting
# off. Prints timings; exits non-zero on the first mismatch; cleans up on any exit.
#
# Env: GOSSIP_CHAT_BIN (default target/debug/gossip-chat), GCTUI_TIMEOUT (seconds to wait
# for discovery and start-up, default 15), GCTUI_KEEP=1 keeps the data dirs for a look.
set -euo pipefail

BIN=${GOSSIP_CHAT_BIN:-target/debug/gossip-chat}
START_TIMEOUT=${GCTUI_TIMEOUT:-15}
P=gctui
SUBNET=10.78.0
SOCK=gctui
ROOM=tui-test
TAG=$$-$RANDOM
DATA=""

log() { printf '[tmux_e2e %s] %s\n' "$(date +%H:%M:%S.%3N)" "$*"; }
# Says what failed and shows both screens, on stderr: it may run inside $(...).
fail() {
  {
    log "FAIL: $*"
    for s in a b; do
      if tmux -L "$SOCK" has-session -t "$s" 2>/dev/null; then
        echo "----- screen of $s -----"
        tmux -L "$SOCK" capture-pane -p -t "$s" || true
      fi
    done
  } >&2
  exit 1
}

cleanup() {
  local rc=$?
  tmux -L "$SOCK" kill-server 2>/dev/null || true
  local ns
  for ns in "$P-1" "$P-2" "$P-hub"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
  done
  sleep 0.2
  for ns in "$P-1" "$P-2" "$P-hub"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ -n "$DATA" ] && [ "${GCTUI_KEEP:-0}" != 1 ]; then
    rm -rf "$DATA"
  elif [ -n "$DATA" ]; then
    log "data dirs and logs kept in $DATA"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)"; exit 2; }
command -v tmux >/dev/null || { echo "needs tmux"; exit 2; }
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build first, or set GOSSIP_CHAT_BIN"; exit 2; }
BIN=$(realpath "$BIN")

now_ms() { date +%s%3N; }

# ---- the LAN -------------------------------------------------------------------------
lan_up() {
  local i ns
  # Leftovers of an earlier run that was killed hard.
  for ns in "$P-1" "$P-2" "$P-hub"; do ip netns del "$ns" 2>/dev/null || true; done
  ip netns add "$P-hub"
  ip netns exec "$P-hub" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$P-hub" link set lo up
  ip -n "$P-hub" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
  ip -n "$P-hub" link set br0 up
  for i in 1 2; do
    ns=$P-$i
    ip netns add "$ns"
    # One address per peer keeps discovery simple to read in the logs.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
    ip -n "$P-hub" link add "v$i" type veth peer name eth0 netns "$ns"
    ip -n "$P-hub" link set "v$i" master br0 up
    ip -n "$ns" addr add "$SUBNET.$((10 + i))/24" dev eth0
    ip -n "$ns" link set eth0 multicast on up
  done
}

# ---- screens -------------------------------------------------------------------------
screen() { tmux -L "$SOCK" capture-pane -p -t "$1"; }
screen_colour() { tmux -L "$SOCK" capture-pane -p -e -t "$1"; }
strip_ansi() { sed -E 's/\x1b\[[0-9;:]*[A-Za-z]//g'; }

# wait_for SESSION TIMEOUT_MS TEXT...: polls until the screen shows every TEXT; prints the
# milliseconds it took; fails after TIMEOUT_MS.
wait_for() {
  local s=$1 timeout=$2 start t text ok
  shift 2
  start=$(now_ms)
  while :; do
    ok=1
    local shot
    shot=$(screen "$s")
    for text in "$@"; do
      if ! grep -qF -- "$text" <<<"$shot"; then ok=0; break; fi
    done
    t=$(($(now_ms) - start))
    if [ $ok = 1 ]; then echo "$t"; return 0; fi
    if [ "$t" -gt "$timeout" ]; then
      fail "$s did not show [$*] within ${timeout} ms"
    fi
    sleep 0.02
  done
}

# alive_peer SESSION NAME: the peers panel has a row "● NAME" whose dot is green.
alive_peer() {
  local s=$1 name=$2 line
  while IFS= read -r line; do
    case "$line" in
      *$'\e[32m●'* | *$'\e[38;5;2m●'* | *$'\e[92m●'*)
        if strip_ansi <<<"$line" | grep -qE "● $name( |$)"; then return 0; fi
        ;;
    esac
  done < <(screen_colour "$s")
  return 1
}

wait_alive() {
  local s=$1 name=$2 timeout=$3 start
  start=$(now_ms)
  until alive_peer "$s" "$name"; do
    [ $(($(now_ms) - start)) -le "$timeout" ] || fail "$s does not show $name alive within ${timeout} ms"
    sleep 0.05
  done
  echo $(($(now_ms) - start))
}

type_line() {
  tmux -L "$SOCK" send-keys -t "$1" -l "$2"
  tmux -L "$SOCK" send-keys -t "$1" Enter
}

start_laptop() {
  local s=$1 ns=$2 name=$3 dir=$DATA/$1
  mkdir -p "$dir"
  # The pane's shell reports the exit status after the TUI quits, then waits to be read.
  tmux -L "$SOCK" new-session -d -s "$s" -x 120 -y 40 \
    "ip netns exec $ns '$BIN' --name $name --room $ROOM --data-dir '$dir'; echo \"gctui-exit=\$?\"; sleep 600"
}

# ---- the run -------------------------------------------------------------------------
T0=$(now_ms)
DATA=$(mktemp -d /tmp/gctui.XXXXXX)
lan_up
log "LAN up: $P-1 ($SUBNET.11) and $P-2 ($SUBNET.12) on a bridge in $P-hub"

start_laptop a "$P-1" A
start_laptop b "$P-2" B
t=$(wait_for a $((START_TIMEOUT * 1000)) "? help" "room $ROOM")
log "A's screen up after ${t} ms"
t=$(wait_for b $((START_TIMEOUT * 1000)) "? help" "room $ROOM")
log "B's screen up"

ta=$(wait_alive a B $((START_TIMEOUT * 1000)))
tb=$(wait_alive b A $((START_TIMEOUT * 1000)))
log "peers alive: A sees B after ${ta} ms, B sees A after ${tb} ms more"

MSG="hello from A $TAG"
ITEM="milk-$TAG"
type_line a "$MSG"
type_line a "/add $ITEM"
t=$(wait_for b 2000 "$MSG" "[ ] $ITEM")
log "B shows A's message and item after ${t} ms"
wait_for a 2000 "$MSG" "[ ] $ITEM" >/dev/null

# B: focus the list (the only item is selected) and check it.
tmux -L "$SOCK" send-keys -t b Tab
wait_for b 2000 "space a e d u J/K" >/dev/null
tmux -L "$SOCK" send-keys -t b Space
t=$(wait_for a 2000 "[x] $ITEM")
log "A shows the item checked by B after ${t} ms"
wait_for b 2000 "[x] $ITEM" >/dev/null

alive_peer a B || fail "A's peers panel does not show B alive"
alive_peer b A || fail "B's peers panel does not show A alive"
log "peers panels: A shows B alive, B shows A alive"

for s in a b; do
  tmux -L "$SOCK" send-keys -t "$s" C-c
done
for s in a b; do
  t=$(wait_for "$s" 5000 "gctui-exit=")
  shot=$(screen "$s")
  grep -qF "gctui-exit=0" <<<"$shot" || fail "$s: the TUI exited with $(grep -o 'gctui-exit=[0-9]*' <<<"$shot")"
  alt=$(tmux -L "$SOCK" display-message -p -t "$s" '#{alternate_on}')
  mouse=$(tmux -L "$SOCK" display-message -p -t "$s" '#{mouse_any_flag}#{mouse_button_flag}#{mouse_standard_flag}')
  [ "$alt" = 0 ] || fail "$s: still on the alternate screen after quitting"
  [ "$mouse" = 000 ] || fail "$s: mouse reporting still on after quitting ($mouse)"
  log "$s quit on Ctrl-C after ${t} ms: exit 0, main screen back, mouse reporting off"
done

log "PASS in $(($(now_ms) - T0)) ms"
