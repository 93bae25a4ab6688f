//! Rounds and anti-entropy, as timers the driver fires: every `gossip_interval` an exchange
//! with `fanout` peers picked by the strategy (and, every [`OFFLINE_RETRY_ROUNDS`] rounds,
//! with each offline peer, so one that came back at its old address is found even when
//! discovery does not report it); every `anti_entropy_interval` an exchange with every
//! peer, so nothing missed by push or by the random choice of peers stays missing.

use std::time::Duration;

use crate::protocol::peer::Peer;

use super::input::Ticket;
use super::liveness::{PeerInfo, PeerState};
use super::output::{Done, ExchangeResult, Output, Timer};
use super::{Engine, OFFLINE_RETRY_ROUNDS};

/// A command waiting for the exchanges it started.
#[derive(Debug)]
pub struct Group {
    ticket: Ticket,
    single: bool,
    pending: usize,
    results: Vec<ExchangeResult>,
}

impl Group {
    /// Answers the command with what finished.
    pub(super) fn finish(self, engine: &mut Engine) {
        let done = if self.single {
            let r = self.results.into_iter().next().unwrap_or_else(|| {
                ExchangeResult::failed(
                    crate::protocol::event::NodeId::NIL,
                    super::output::Direction::Outbound,
                    Duration::ZERO,
                    "the node stopped",
                )
            });
            Done::Exchange(r)
        } else {
            Done::Exchanges(self.results)
        };
        engine.done(self.ticket, done);
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Engine {
    /// The timers of a new run: a round at once, anti-entropy after its interval.
    pub(super) fn schedule_start(&mut self) {
        let run = self.run;
        self.out.push(Output::ScheduleTimer {
            at: self.now,
            timer: Timer::Round { run },
        });
        if let Some(period) = self.config.anti_entropy_interval {
            self.out.push(Output::ScheduleTimer {
                at: self.now.saturating_add(ms(period)),
                timer: Timer::AntiEntropy { run },
            });
        }
    }

    pub(super) fn timer(&mut self, timer: Timer) {
        match timer {
            Timer::Round { run } if run == self.run && self.started => {
                self.round(None);
                let at = self.now.saturating_add(ms(self.config.gossip_interval));
                self.out.push(Output::ScheduleTimer { at, timer });
            }
            Timer::AntiEntropy { run } if run == self.run && self.started => {
                self.anti_entropy(None);
                if let Some(period) = self.config.anti_entropy_interval {
                    let at = self.now.saturating_add(ms(period));
                    self.out.push(Output::ScheduleTimer { at, timer });
                }
            }
            Timer::Probe { run } if run == self.run && self.started => {
                self.probe_tick();
                self.schedule_probe();
            }
            Timer::Graft { run, origin, seq } if run == self.run && self.started => {
                self.graft_due(origin, seq);
            }
            _ => {} // a timer of an earlier run, or the engine is stopped
        }
    }

    pub(super) fn open_group(&mut self, ticket: Ticket, single: bool, pending: usize) -> u64 {
        let g = self.next_id();
        self.groups.insert(
            g,
            Group {
                ticket,
                single,
                pending,
                results: Vec::new(),
            },
        );
        g
    }

    pub(super) fn group_result(&mut self, group: u64, result: ExchangeResult) {
        let Some(g) = self.groups.get_mut(&group) else {
            return;
        };
        g.results.push(result);
        g.pending = g.pending.saturating_sub(1);
        if g.pending == 0
            && let Some(g) = self.groups.remove(&group)
        {
            g.finish(self);
        }
    }

    /// Starts exchanges with `targets` (skipping busy peers), answering `ticket` once all
    /// have ended.
    fn exchange_all(&mut self, targets: Vec<Peer>, ticket: Option<Ticket>) {
        let targets: Vec<Peer> = targets
            .into_iter()
            .filter(|p| self.in_flight.insert(p.id))
            .collect();
        let group = ticket.map(|t| self.open_group(t, false, targets.len()));
        if targets.is_empty() {
            if let Some(g) = group
                && let Some(g) = self.groups.remove(&g)
            {
                g.finish(self);
            }
            return;
        }
        for peer in targets {
            self.begin_exchange(peer, group, true);
        }
    }

    /// One round: `fanout` peers picked by the strategy.
    pub(super) fn round(&mut self, ticket: Option<Ticket>) {
        if !self.started {
            if let Some(t) = ticket {
                self.done(t, Done::Exchanges(Vec::new()));
            }
            return;
        }
        let n = self.stats.rounds;
        self.stats.rounds += 1;
        let busy: Vec<_> = self.in_flight.iter().copied().collect();
        let candidates = self.peers.candidates();
        let picked = self.selector.select(&candidates, self.config.fanout, &busy);
        let mut targets: Vec<Peer> = picked
            .iter()
            .filter_map(|id| self.peers.get(id).map(PeerInfo::peer))
            .collect();
        if n % super::pex::PEX_ROUNDS == super::pex::PEX_ROUNDS - 1
            && let Some(first) = targets.first().map(|p| p.id)
        {
            self.share_peers(first);
        }
        if n % OFFLINE_RETRY_ROUNDS == OFFLINE_RETRY_ROUNDS - 1 {
            targets.extend(
                self.peers
                    .all()
                    .filter(|p| p.state == PeerState::Offline && !busy.contains(&p.id))
                    .map(PeerInfo::peer),
            );
        }
        self.exchange_all(targets, ticket);
    }

    /// Anti-entropy: every peer, offline ones included.
    pub(super) fn anti_entropy(&mut self, ticket: Option<Ticket>) {
        if !self.started {
            if let Some(t) = ticket {
                self.done(t, Done::Exchanges(Vec::new()));
            }
            return;
        }
        self.stats.anti_entropy_runs += 1;
        let targets: Vec<Peer> = self.peers.all().map(PeerInfo::peer).collect();
        self.exchange_all(targets, ticket);
    }
}
