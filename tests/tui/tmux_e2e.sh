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
# it checked; each peers panel shows the other alive (green dot); a 7 KB bracketed paste
# arrives in A's draft at once, with no key after it (crossterm's read-once stall); Ctrl-U
# and Esc clear the draft; a 50-line bracketed paste asks once and arrives on B as ONE
# message holding every line; B's mention of A rings A's bell (tmux alert-bell hook);
# scrolled up, A shows "3 new" and End jumps back; /edit and /delete show on B; Ctrl-C
# leaves each TUI with exit status 0 and the terminal back from the alternate screen with
# mouse reporting off; A restarted without --name under another TZ
# keeps its /nick and shows the same message 9 hours later; Ctrl-Z stops it with the
# terminal given back and SIGCONT redraws it; TERM=dumb is refused with a pointer to
# --headless; --demo leaves the real room's store untouched. Prints timings; exits non-zero on the first mismatch; cleans up on any
# exit.
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

# start_laptop SESSION NS NAME [ENV]: NAME "" starts without --name; ENV (e.g. TZ=...)
# goes before the command.
start_laptop() {
  local s=$1 ns=$2 name=$3 env=${4:-} dir=$DATA/$1 naming=""
  mkdir -p "$dir"
  [ -n "$name" ] && naming="--name $name"
  # The pane's shell reports the exit status after the TUI quits, then waits to be read.
  tmux -L "$SOCK" new-session -d -s "$s" -x 120 -y 40 \
    "ip netns exec $ns env $env '$BIN' $naming --room $ROOM --data-dir '$dir'; echo \"gctui-exit=\$?\"; sleep 600"
}

# quit SESSION: Ctrl-C, exit status 0, the terminal given back.
quit() {
  local s=$1 t shot alt mouse
  tmux -L "$SOCK" send-keys -t "$s" C-c
  t=$(wait_for "$s" 5000 "gctui-exit=")
  shot=$(screen "$s")
  grep -qF "gctui-exit=0" <<<"$shot" || fail "$s: the TUI exited with $(grep -o 'gctui-exit=[0-9]*' <<<"$shot")"
  alt=$(tmux -L "$SOCK" display-message -p -t "$s" '#{alternate_on}')
  mouse=$(tmux -L "$SOCK" display-message -p -t "$s" '#{mouse_any_flag}#{mouse_button_flag}#{mouse_standard_flag}')
  [ "$alt" = 0 ] || fail "$s: still on the alternate screen after quitting"
  [ "$mouse" = 000 ] || fail "$s: mouse reporting still on after quitting ($mouse)"
  log "$s quit on Ctrl-C after ${t} ms: exit 0, main screen back, mouse reporting off"
  tmux -L "$SOCK" kill-session -t "$s"
}

# paste SESSION FILE: a bracketed paste of FILE's text (tmux adds the markers because the
# app asked for them).
paste() {
  tmux -L "$SOCK" load-buffer -b gctui "$2"
  tmux -L "$SOCK" paste-buffer -p -d -b gctui -t "$1"
}

# The first chat line of SESSION that holds TEXT.
chat_line() { screen "$1" | grep -F -- "$2" | head -1; }

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

# B goes back from the list to its input line.
tmux -L "$SOCK" send-keys -t b Escape
alive_peer a B || fail "A's peers panel does not show B alive"
alive_peer b A || fail "B's peers panel does not show A alive"
log "peers panels: A shows B alive, B shows A alive"

# ---- the line editor and pastes ------------------------------------------------------
# 7 KB in one bracketed paste, no key after it: all 100 lines reach the draft at once.
for i in $(seq -w 1 100); do printf 'big %s %s\n' "$i" "$(printf 'x%.0s' $(seq 66))"; done > "$DATA/big.txt"
paste a "$DATA/big.txt"
t=$(wait_for a 2000 "Message, 100 lines")
log "A: a $(stat -c %s "$DATA/big.txt")-byte paste arrived whole in the draft after ${t} ms, no key pressed"
tmux -L "$SOCK" send-keys -t a Escape
t=$(wait_for a 2000 "Message (Enter sends")
screen a | grep -qF "big 100" && fail "A: Esc left the paste in the draft"
tmux -L "$SOCK" send-keys -t a -l "a line to throw away"
wait_for a 2000 "a line to throw away" >/dev/null
tmux -L "$SOCK" send-keys -t a C-u
for _ in $(seq 50); do screen a | grep -qF "a line to throw away" || break; sleep 0.02; done
screen a | grep -qF "a line to throw away" && fail "A: Ctrl-U did not clear the line"
log "A: Esc cleared the paste, Ctrl-U cleared a typed line"

# 50 lines in one paste: Enter asks, Enter sends ONE message holding every line.
chat_count() { screen "$1" | grep -oE 'Chat \([0-9]+\)' | head -1 | grep -oE '[0-9]+'; }
n_before=$(chat_count b)
for i in $(seq -w 1 50); do printf 'paste-%s-%s\n' "$i" "$TAG"; done > "$DATA/fifty.txt"
paste a "$DATA/fifty.txt"
wait_for a 2000 "Message, 50 lines" >/dev/null
tmux -L "$SOCK" send-keys -t a Enter
wait_for a 2000 "send 50 lines as one message?" >/dev/null
tmux -L "$SOCK" send-keys -t a Enter
t=$(wait_for b 3000 "paste-50-$TAG" "Chat ($((n_before + 1)))")
# Every pasted line on screen is a continuation row of that one message: none starts a
# message of its own ("HH:MM A: paste-…").
if screen b | grep -E "[0-9]{2}:[0-9]{2}.A: paste-[0-9]+-$TAG" | grep -vF "paste-01-$TAG" | grep -q .; then
  fail "B shows pasted lines as messages of their own"
fi
log "B shows the 50-line paste as one message after ${t} ms (chat count $n_before -> $((n_before + 1)))"

# ---- attention -----------------------------------------------------------------------
tmux -L "$SOCK" set -g monitor-bell on
tmux -L "$SOCK" set -g bell-action any
tmux -L "$SOCK" set-hook -g alert-bell "run-shell 'echo #{session_name} >> $DATA/bells'"
: > "$DATA/bells"
type_line b "hey @A, lunch at noon?"
wait_for a 2000 "lunch at noon" >/dev/null
for _ in $(seq 100); do grep -qx a "$DATA/bells" && break; sleep 0.02; done
grep -qx a "$DATA/bells" || fail "B's mention of A did not ring A's bell"
chat_line a "lunch at noon" | grep -qF "!" || fail "A does not mark the mention"
log "B's mention rang A's bell once ($(grep -cx a "$DATA/bells") bell) and is marked"

# A scrolls up (the paste made plenty of rows), B sends three; A shows "3 new".
tmux -L "$SOCK" send-keys -t a PageUp
wait_for a 2000 "rows back" >/dev/null
for i in 1 2 3; do type_line b "news $i of 3 $TAG"; done
t=$(wait_for a 3000 "3 new ↓")
log "scrolled up, A shows \"3 new ↓\" after ${t} ms"
tmux -L "$SOCK" send-keys -t a End
wait_for a 2000 "news 3 of 3 $TAG" >/dev/null
screen a | grep -qF "new ↓" && fail "A: End did not jump back to the newest"
log "End took A back to the newest message"

# ---- message ops ---------------------------------------------------------------------
type_line a "typo mesage $TAG"
wait_for b 2000 "typo mesage $TAG" >/dev/null
type_line a "/edit last fixed message $TAG"
t=$(wait_for b 2000 "fixed message $TAG (edited)")
log "B shows A's edit after ${t} ms"
type_line a "/delete"
t=$(wait_for b 2000 "A: (deleted)")
screen b | grep -qF "fixed message $TAG" && fail "B still shows the deleted text"
log "B shows A's delete after ${t} ms"
type_line a "/nick Alice"
wait_for b 3000 "Alice" >/dev/null
REF="news 3 of 3 $TAG"
CLOCK_UTC=$(chat_line a "$REF" | grep -oE '[0-9]{2}:[0-9]{2}' | head -1)

quit a
quit b

# B's store, read now that B is gone, holds the paste as one message of all 50 lines.
state=$("$BIN" state --room "$ROOM" --data-dir "$DATA/b")
check=$(cat <<'PY'
import json, sys
tag = sys.argv[1]
chat = json.load(sys.stdin)["chat"]
hits = [m for m in chat if f"paste-01-{tag}" in m["text"]]
assert len(hits) == 1, hits
lines = hits[0]["text"].split("\n")
assert lines == [f"paste-{i:02d}-{tag}" for i in range(1, 51)], lines
assert not any(f"paste-02-{tag}" in m["text"] for m in chat if m is not hits[0])
PY
)
python3 -c "$check" "$TAG" <<<"$state" || fail "B's store does not hold the paste as one message of 50 lines"
log "B's store holds the paste as one message with all 50 lines, in order"

# ---- restart: /nick kept without --name, TZ followed --------------------------------
start_laptop a "$P-1" "" "TZ=Asia/Tokyo"
wait_for a $((START_TIMEOUT * 1000)) "? help" >/dev/null
screen a | tail -1 | grep -qF "Alice" || fail "A restarted without --name lost its /nick: $(screen a | tail -1)"
wait_for a 3000 "$REF" >/dev/null
CLOCK_TOKYO=$(chat_line a "$REF" | grep -oE '[0-9]{2}:[0-9]{2}' | head -1)
want=$(printf '%02d:%s' $(( (10#${CLOCK_UTC%:*} + 9) % 24 )) "${CLOCK_UTC#*:}")
[ "$CLOCK_TOKYO" = "$want" ] || fail "TZ=Asia/Tokyo shows $CLOCK_TOKYO for a message shown at $CLOCK_UTC in UTC (want $want)"
log "restarted without --name: A is still Alice; TZ=Asia/Tokyo shows $CLOCK_TOKYO for $CLOCK_UTC UTC"

quit a

# Ctrl-Z under a shell with job control: the terminal is given back and the shell says
# "Stopped"; fg takes the screen again. (Under a shell without job control the kernel
# ignores the stop, as for any program.)
tmux -L "$SOCK" new-session -d -s z -x 120 -y 40 "bash --norc --noprofile -i"
tmux -L "$SOCK" send-keys -t z -l "ip netns exec $P-1 '$BIN' --room $ROOM --data-dir '$DATA/a'"
tmux -L "$SOCK" send-keys -t z Enter
wait_for z $((START_TIMEOUT * 1000)) "? help" >/dev/null
tmux -L "$SOCK" send-keys -t z C-z
t=$(wait_for z 3000 "Stopped")
[ "$(tmux -L "$SOCK" display-message -p -t z '#{alternate_on}')" = 0 ] || fail "A stopped without leaving the alternate screen"
tmux -L "$SOCK" send-keys -t z -l "fg"
tmux -L "$SOCK" send-keys -t z Enter
wait_for z 3000 "$REF" "? help" >/dev/null
[ "$(tmux -L "$SOCK" display-message -p -t z '#{alternate_on}')" = 1 ] || fail "fg did not take the alternate screen back"
tmux -L "$SOCK" send-keys -t z -l "still typing"
wait_for z 2000 "still typing" >/dev/null
log "Ctrl-Z stopped A after ${t} ms with the terminal given back; fg redrew it and it takes keys"
tmux -L "$SOCK" send-keys -t z C-c
for _ in $(seq 250); do [ "$(tmux -L "$SOCK" display-message -p -t z '#{alternate_on}')" = 0 ] && break; sleep 0.02; done
tmux -L "$SOCK" send-keys -t z -l 'echo "gctui-done=$?"'
tmux -L "$SOCK" send-keys -t z Enter
wait_for z 5000 "gctui-done=0" >/dev/null
tmux -L "$SOCK" kill-session -t z

# TERM=dumb is refused with a pointer to --headless.
if out=$(TERM=dumb "$BIN" --no-mdns --room "$ROOM" --data-dir "$DATA/dumb" 2>&1 </dev/null); then
  fail "TERM=dumb started the TUI"
fi
grep -qF -- "--headless" <<<"$out" || fail "TERM=dumb did not point to --headless: $out"
log "TERM=dumb refused: $out"

# ---- --demo leaves the real room alone ------------------------------------------------
before=$(cd "$DATA/a" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
tmux -L "$SOCK" new-session -d -s d -x 120 -y 40 \
  "ip netns exec $P-1 '$BIN' --demo 2 --data-dir '$DATA/a'; echo \"gctui-exit=\$?\"; sleep 600"
wait_for d $((START_TIMEOUT * 1000)) "? help" "room demo-" >/dev/null
sleep 2
quit d
after=$(cd "$DATA/a" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
[ "$before" = "$after" ] || fail "--demo changed files under A's data dir: $(diff <(echo "$before") <(echo "$after"))"
log "--demo ran in its own room: every file under A's data dir is byte for byte the same"

log "PASS in $(($(now_ms) - T0)) ms"
