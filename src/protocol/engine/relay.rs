//! Eager push: an event new to this node goes at once to `fanout` reachable peers other
//! than its sender and origin, once (the node relays only what was new to it, so each
//! node forwards each event at most once: infect and die).

use crate::protocol::event::{Event, NodeId};
use crate::protocol::exchange::Batch;
use crate::protocol::message::Message;

use super::Engine;
use super::output::Output;

impl Engine {
    /// Pushes `events` to `fanout` reachable peers not in `exclude`.
    pub(super) fn relay(&mut self, events: Vec<Event>, exclude: &[NodeId]) {
        let ids: Vec<NodeId> = self
            .peers
            .all()
            .filter(|p| p.is_reachable() && !exclude.contains(&p.id))
            .map(|p| p.id)
            .collect();
        let picked = self.selector.random_subset(&ids, self.config.fanout);
        if picked.is_empty() {
            return;
        }
        let messages = self.cut_into_pushes(events);
        for id in picked {
            let Some(to) = self.peers.get(&id).map(|p| p.peer()) else {
                continue;
            };
            for (message, len) in &messages {
                self.stats.pushes_sent += 1;
                self.stats.bytes_sent += *len as u64;
                self.out.push(Output::Send {
                    to: to.clone(),
                    message: message.clone(),
                });
            }
        }
    }

    /// Pushes `events` to every reachable peer not in `exclude`: for the winner of an
    /// equivocation, which exchanges never carry again (the clocks of a node holding the
    /// loser and one holding the winner are equal), so it must reach everyone at once.
    pub(super) fn flood(&mut self, events: Vec<Event>, exclude: &[NodeId]) {
        let ids: Vec<NodeId> = self
            .peers
            .all()
            .filter(|p| p.is_reachable() && !exclude.contains(&p.id))
            .map(|p| p.id)
            .collect();
        for id in ids {
            self.push_to(id, events.clone());
        }
    }

    /// Pushes `events` to one peer, if it is known.
    pub(super) fn push_to(&mut self, id: NodeId, events: Vec<Event>) {
        let Some(to) = self.peers.get(&id).map(|p| p.peer()) else {
            return;
        };
        for (message, len) in self.cut_into_pushes(events) {
            self.stats.pushes_sent += 1;
            self.stats.bytes_sent += len as u64;
            self.out.push(Output::Send {
                to: to.clone(),
                message,
            });
        }
    }

    /// Cuts `events` into push messages within the limits, each with its size.
    fn cut_into_pushes(&self, events: Vec<Event>) -> Vec<(Message, usize)> {
        let me = self.id();
        let limits = self.config.limits;
        let mut out = Vec::new();
        let mut batch = Batch::for_push(me, limits);
        for e in events {
            if !batch.push(e.clone()) {
                let full = std::mem::replace(&mut batch, Batch::for_push(me, limits));
                let len = full.wire_len();
                out.push((full.into_push(me), len));
                // An event always fits an empty batch: it was checked at creation or receipt.
                batch.push(e);
            }
        }
        if !batch.is_empty() {
            let len = batch.wire_len();
            out.push((batch.into_push(me), len));
        }
        out
    }
}
