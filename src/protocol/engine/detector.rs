//! Failure detection in seconds: heartbeats with RTT-derived deadlines, and SWIM's
//! indirect probe before a peer is called offline.
//!
//! - **Heartbeats.** Every message from a peer, and every answer to our requests, is a
//!   heartbeat (`PeerInfo::last_contact_ms`). Gossip rounds make most of them; a peer
//!   quiet for a probe `interval` gets a [`Message::Ping`].
//! - **Deadlines from the RTT.** Per peer the detector keeps a smoothed RTT and its mean
//!   deviation (RFC 6298: `srtt`, `rttvar`) from every exchange and pong. A ping's
//!   deadline is `srtt + 4 rttvar`, clamped to `[min_timeout, max_timeout]`: on a LAN a
//!   silent peer is noticed after one interval and a few hundred ms; over a slow link the
//!   deadline stretches with the measured RTT instead of raising false alarms. (This is the
//!   deadline form of phi accrual: suspicion grows with silence measured against what this
//!   peer's own timing makes likely.)
//! - **Suspect, then ask others.** A missed deadline (a ping, or an exchange, that got no
//!   answer and nothing else was heard from the peer since it was sent) makes the peer
//!   suspect, and [`ProbeConfig::helpers`] other alive peers are asked to ping it for us
//!   ([`Message::PingReq`]). An ack ([`Message::PingAck`] with `alive`) means only our
//!   link is bad: the peer stays suspect and its offline deadline moves on. With no ack
//!   within the window (`2 x` its ping deadline, clamped to `[interval, max_timeout]`) it
//!   is offline.
//! - **No flapping.** A failure of a request sent before the peer's last contact is stale
//!   and ignored; only direct contact makes a peer alive again. Offline peers are pinged
//!   every interval, so a healed link is seen within about one interval.

use std::collections::HashMap;
use std::time::Duration;

use rand::seq::SliceRandom;

use crate::protocol::event::NodeId;
use crate::protocol::message::Message;
use crate::protocol::peer::Peer;

use super::Engine;
use super::input::{ExchangeId, RequestId};
use super::liveness::PeerState;
use super::output::{Output, Timer};

/// The failure detector's settings ([`super::EngineConfig::probe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeConfig {
    /// A peer quiet this long is pinged; offline peers are pinged twice this often.
    pub interval: Duration,
    /// The shortest ping deadline.
    pub min_timeout: Duration,
    /// The longest ping deadline, and the longest indirect window.
    pub max_timeout: Duration,
    /// Peers asked to probe a suspect (SWIM's k).
    pub helpers: usize,
}

impl ProbeConfig {
    /// LAN settings: ping after 500 ms of silence, deadlines 250 ms to 1 s, 2 helpers. A
    /// silent peer is suspect within about 0.8-1.6 s and offline within 1.3-2.6 s.
    pub fn lan() -> Self {
        ProbeConfig {
            interval: Duration::from_millis(500),
            min_timeout: Duration::from_millis(250),
            max_timeout: Duration::from_millis(1000),
            helpers: 2,
        }
    }
}

/// Pings a node starts in one tick at most (the rest wait for the next tick).
pub const MAX_PINGS_PER_TICK: usize = 32;

/// Probes this node runs for others (`PingReq`) at once at most; more are answered
/// "not alive" at once.
pub const MAX_HELPING: usize = 16;

/// Ticks per probe interval.
const TICKS_PER_INTERVAL: u64 = 4;

/// Smoothed RTT of one peer (RFC 6298), in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RttEstimate {
    srtt: Option<f64>,
    rttvar: f64,
}

impl RttEstimate {
    /// Folds in one sample.
    pub fn sample(&mut self, ms: u64) {
        let r = ms as f64;
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2.0;
            }
            Some(s) => {
                self.rttvar = 0.75 * self.rttvar + 0.25 * (s - r).abs();
                self.srtt = Some(0.875 * s + 0.125 * r);
            }
        }
    }

    /// `srtt + 4 rttvar` clamped to `[min, max]`; `max` before any sample.
    pub fn deadline(&self, min: Duration, max: Duration) -> Duration {
        match self.srtt {
            None => max,
            Some(s) => {
                let ms = (s + 4.0 * self.rttvar).ceil().max(0.0) as u64;
                Duration::from_millis(ms).clamp(min, max)
            }
        }
    }
}

/// What the detector knows of one peer.
#[derive(Debug, Clone, Default)]
struct Watch {
    rtt: RttEstimate,
    /// A direct ping in flight.
    pinging: bool,
    /// When the last direct ping was sent.
    last_ping: Option<u64>,
    /// Suspect: offline at this time unless an indirect ack moves it.
    offline_at: Option<u64>,
}

/// A request of the detector in flight.
#[derive(Debug, Clone, Copy)]
enum Probe {
    /// Our ping of `peer`.
    Direct { peer: NodeId, sent: u64 },
    /// Our ping-req to `helper` about `target`.
    Indirect { target: NodeId },
    /// A ping of `peer` on behalf of a helper's requester.
    Helping { peer: NodeId, request: RequestId },
}

/// The detector's state in the engine.
#[derive(Debug, Default)]
pub struct Detector {
    watches: HashMap<NodeId, Watch>,
    probes: HashMap<ExchangeId, Probe>,
    helping: usize,
    /// Counters.
    pub stats: DetectorStats,
}

/// What the detector did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectorStats {
    /// Pings sent.
    pub pings_sent: u64,
    /// Ping-reqs sent.
    pub ping_reqs_sent: u64,
    /// Indirect acks that kept a suspect from going offline.
    pub indirect_acks: u64,
    /// Failures ignored as stale (the peer was heard after the request was sent).
    pub stale_failures: u64,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Detector {
    /// Whether `id` names a request of the detector.
    pub fn owns(&self, id: &ExchangeId) -> bool {
        self.probes.contains_key(id)
    }

    /// Forgets everything of a run (a stop).
    pub fn clear_requests(&mut self) {
        self.probes.clear();
        self.helping = 0;
        for w in self.watches.values_mut() {
            w.pinging = false;
        }
    }

    /// Forgets a peer.
    pub fn forget(&mut self, id: &NodeId) {
        self.watches.remove(id);
    }

    /// The RTT estimate of a peer.
    pub fn rtt(&self, id: &NodeId) -> Option<RttEstimate> {
        self.watches.get(id).map(|w| w.rtt)
    }

    /// When a suspect peer goes offline unless acked.
    pub fn offline_at(&self, id: &NodeId) -> Option<u64> {
        self.watches.get(id).and_then(|w| w.offline_at)
    }
}

impl Engine {
    fn probe_config(&self) -> Option<ProbeConfig> {
        self.config.probe
    }

    /// The first detector tick of a run.
    pub(super) fn schedule_probe(&mut self) {
        if let Some(p) = self.probe_config() {
            let run = self.run;
            self.out.push(Output::ScheduleTimer {
                at: self.now.saturating_add(ms(p.interval) / TICKS_PER_INTERVAL),
                timer: Timer::Probe { run },
            });
        }
    }

    /// An RTT sample of a peer (an exchange's first answer, a pong).
    pub(super) fn rtt_sample(&mut self, peer: NodeId, rtt_ms: u64) {
        self.detector
            .watches
            .entry(peer)
            .or_default()
            .rtt
            .sample(rtt_ms);
    }

    fn ping_deadline(&self, peer: &NodeId) -> Duration {
        let Some(p) = self.probe_config() else {
            return self.config.gossip_timeout;
        };
        self.detector.watches.get(peer).map_or(p.max_timeout, |w| {
            w.rtt.deadline(p.min_timeout, p.max_timeout)
        })
    }

    /// One tick: offline deadlines that passed, then pings of quiet peers.
    pub(super) fn probe_tick(&mut self) {
        let Some(p) = self.probe_config() else {
            return;
        };
        let now = self.now;
        let interval = ms(p.interval);
        let due: Vec<NodeId> = self
            .detector
            .watches
            .iter()
            .filter(|(_, w)| w.offline_at.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(w) = self.detector.watches.get_mut(&id) {
                w.offline_at = None;
            }
            if self.peers.get(&id).map(|p| p.state) == Some(PeerState::Suspect) {
                let t = self
                    .peers
                    .mark_offline(&id, "no answer, directly or through other peers");
                self.announce(t);
            }
        }
        let mut quiet: Vec<(u64, Peer)> = self
            .peers
            .all()
            .filter(|info| info.state != PeerState::Discovered)
            .filter(|info| {
                let w = self.detector.watches.get(&info.id);
                let pinging = w.is_some_and(|w| w.pinging);
                let last_ping = w.and_then(|w| w.last_ping).unwrap_or(0);
                let heard = info.last_contact_ms.unwrap_or(0);
                // An offline peer is pinged twice as often: a healed link is found fast.
                let offline = info.state == PeerState::Offline;
                let every = if offline { interval / 2 } else { interval };
                !pinging
                    && now.saturating_sub(last_ping) >= every
                    && (offline || now.saturating_sub(heard) >= interval)
            })
            .map(|info| (info.last_contact_ms.unwrap_or(0), info.peer()))
            .collect();
        quiet.sort_by_key(|(heard, _)| *heard);
        for (_, peer) in quiet.into_iter().take(MAX_PINGS_PER_TICK) {
            self.ping(peer);
        }
    }

    fn ping(&mut self, peer: Peer) {
        let id = ExchangeId(self.next_id());
        let now = self.now;
        let timeout = self.ping_deadline(&peer.id);
        let w = self.detector.watches.entry(peer.id).or_default();
        w.pinging = true;
        w.last_ping = Some(now);
        self.detector.probes.insert(
            id,
            Probe::Direct {
                peer: peer.id,
                sent: now,
            },
        );
        self.detector.stats.pings_sent += 1;
        let message = Message::Ping { from: self.id() };
        self.out.push(Output::Request {
            to: peer,
            exchange: id,
            message,
            timeout,
        });
    }

    /// A request with nothing heard from `peer` since `sent` failed: suspect it and ask
    /// others to probe it. Returns false if the failure was stale (ignored).
    pub(super) fn missed(&mut self, peer: NodeId, sent: u64, error: &str) -> bool {
        let heard = self.peers.get(&peer).and_then(|p| p.last_contact_ms);
        if heard.is_some_and(|h| h > sent) {
            self.detector.stats.stale_failures += 1;
            return false;
        }
        let t = self.peers.record_failure(&peer, error);
        self.announce(t);
        if self.probe_config().is_some()
            && self.peers.get(&peer).map(|p| p.state) == Some(PeerState::Suspect)
        {
            self.suspect(peer);
        }
        true
    }

    /// Starts (or keeps) the offline deadline of a suspect and sends its ping-reqs.
    fn suspect(&mut self, target: NodeId) {
        let Some(p) = self.probe_config() else {
            return;
        };
        let deadline = self.ping_deadline(&target);
        let window = deadline.saturating_mul(2).clamp(p.interval, p.max_timeout);
        let now = self.now;
        let w = self.detector.watches.entry(target).or_default();
        if w.offline_at.is_none() {
            w.offline_at = Some(now.saturating_add(ms(window)));
        }
        let mut helpers: Vec<Peer> = self
            .peers
            .all()
            .filter(|h| h.id != target && h.state == PeerState::Alive)
            .map(|h| h.peer())
            .collect();
        helpers.shuffle(&mut self.rng);
        for helper in helpers.into_iter().take(p.helpers) {
            let id = ExchangeId(self.next_id());
            self.detector.probes.insert(id, Probe::Indirect { target });
            self.detector.stats.ping_reqs_sent += 1;
            let message = Message::PingReq {
                from: self.id(),
                target,
            };
            self.out.push(Output::Request {
                to: helper,
                exchange: id,
                message,
                timeout: window,
            });
        }
    }

    /// The answer to one of the detector's requests.
    pub(super) fn probe_response(&mut self, id: ExchangeId, message: Message) {
        let Some(probe) = self.detector.probes.remove(&id) else {
            return;
        };
        let now = self.now;
        match (probe, message) {
            (Probe::Direct { peer, sent }, Message::Pong { from }) if from == peer => {
                self.end_ping(peer);
                self.rtt_sample(peer, now.saturating_sub(sent));
                self.heard(peer);
            }
            (Probe::Helping { peer, request }, Message::Pong { from }) if from == peer => {
                self.detector.helping = self.detector.helping.saturating_sub(1);
                self.heard(peer);
                self.answer_ping_req(request, peer, true);
            }
            (
                Probe::Indirect { target, .. },
                Message::PingAck {
                    target: acked,
                    alive: true,
                    ..
                },
            ) if acked == target => self.indirect_ack(target),
            (Probe::Indirect { .. }, Message::PingAck { .. }) => {}
            (probe, other) => {
                let error = format!("unexpected {} in answer to a probe", other.kind());
                self.probe_failed_as(probe, error);
            }
        }
    }

    /// One of the detector's requests failed.
    pub(super) fn probe_failed(&mut self, id: ExchangeId, error: String) {
        if let Some(probe) = self.detector.probes.remove(&id) {
            self.probe_failed_as(probe, error);
        }
    }

    fn probe_failed_as(&mut self, probe: Probe, error: String) {
        match probe {
            Probe::Direct { peer, sent } => {
                self.end_ping(peer);
                self.missed(peer, sent, &format!("ping: {error}"));
            }
            Probe::Helping { peer, request } => {
                self.detector.helping = self.detector.helping.saturating_sub(1);
                self.answer_ping_req(request, peer, false);
            }
            Probe::Indirect { .. } => {} // the window runs on
        }
    }

    fn end_ping(&mut self, peer: NodeId) {
        if let Some(w) = self.detector.watches.get_mut(&peer) {
            w.pinging = false;
        }
    }

    /// Direct contact: alive, and no offline deadline.
    fn heard(&mut self, peer: NodeId) {
        if let Some(w) = self.detector.watches.get_mut(&peer) {
            w.offline_at = None;
        }
        let t = self.peers.record_heard(&peer, self.now);
        self.announce(t);
    }

    /// Any message from a peer clears its offline deadline (it is alive).
    pub(super) fn contact(&mut self, peer: NodeId) {
        if let Some(w) = self.detector.watches.get_mut(&peer) {
            w.offline_at = None;
        }
    }

    fn indirect_ack(&mut self, target: NodeId) {
        let Some(p) = self.probe_config() else {
            return;
        };
        if self.peers.get(&target).map(|i| i.state) != Some(PeerState::Suspect) {
            return;
        }
        self.detector.stats.indirect_acks += 1;
        let window = self
            .ping_deadline(&target)
            .saturating_mul(2)
            .clamp(p.interval, p.max_timeout);
        let until = self
            .now
            .saturating_add(ms(window))
            .saturating_add(ms(p.interval));
        if let Some(w) = self.detector.watches.get_mut(&target) {
            // Reachable through others: only our link is bad. It stays suspect (no
            // flapping to alive), and goes offline only if acks stop.
            w.offline_at = Some(until);
        }
    }

    /// A peer's `Ping` request: answered at once.
    pub(super) fn on_ping(&mut self, request: Option<RequestId>) {
        if let Some(request) = request {
            let message = Message::Pong { from: self.id() };
            self.out.push(Output::Respond { request, message });
        }
    }

    /// A peer's `PingReq`: ping the target for it and answer with the outcome.
    pub(super) fn on_ping_req(&mut self, from: NodeId, target: NodeId, request: Option<RequestId>) {
        let Some(request) = request else {
            return;
        };
        let known = self
            .peers
            .get(&target)
            .filter(|_| target != from && target != self.id())
            .map(|p| p.peer());
        match known {
            Some(peer) if self.detector.helping < MAX_HELPING => {
                self.detector.helping += 1;
                let id = ExchangeId(self.next_id());
                let timeout = self.ping_deadline(&peer.id);
                self.detector.probes.insert(
                    id,
                    Probe::Helping {
                        peer: peer.id,
                        request,
                    },
                );
                let message = Message::Ping { from: self.id() };
                self.out.push(Output::Request {
                    to: peer,
                    exchange: id,
                    message,
                    timeout,
                });
            }
            _ => self.answer_ping_req(request, target, false),
        }
    }

    fn answer_ping_req(&mut self, request: RequestId, target: NodeId, alive: bool) {
        let message = Message::PingAck {
            from: self.id(),
            target,
            alive,
        };
        self.out.push(Output::Respond { request, message });
    }
}
