//! Own seqs: the rule that a node never signs two different events under one
//! `(origin, seq)`.
//!
//! The next seq is one past the highest own seq held. That is only safe if the store holds
//! every own event ever signed, which a lost tail (a lost disk cache under
//! `--fsync interval|never`, a restored backup) breaks: the node would sign a new event
//! under a seq peers already hold, and the room would split (see [`super::equivocation`]
//! for how such a split is healed).
//!
//! So the node keeps a **reservation**: the highest seq it may have signed, persisted
//! (fsynced) *before* any event under it is signed. A lost tail cannot lower it. On start:
//! - `reservation <= store high-water`: every signed event is held; seqs are issued at
//!   once, offline or not;
//! - `reservation > store high-water`: events under `store high-water + 1 ..= reservation`
//!   may have been signed and lost here. The node **learns** its high-water mark from peers
//!   (their clocks' entry for it, and its own events they send back) before it issues
//!   anything; until then own events wait in order (the app shows them as "sending…").
//!   Skipping past the reservation instead would leave a gap no peer can fill if the lost
//!   events never left this machine, and a gap stops every later event of this origin.
//!
//! Once a peer has reported, seqs continue past everything learned. A seq between what the
//! peers reported and the reservation can then be used again; that only matters if some
//! unreached peer holds the lost event, and then the equivocation rule keeps one event
//! everywhere and this node re-issues the other's payload, so nothing is lost.
//!
//! Pure: the driver persists reservations ([`Decision::Reserve`]) and reports back.

/// What the node may do about its next own event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Sign the next event under this seq (already covered by the reservation).
    Issue(u64),
    /// Persist (fsync) the reservation up to this seq first, then ask again.
    Reserve {
        /// The new reservation.
        up_to: u64,
    },
    /// Do not sign: the high-water mark must first be learned from a peer.
    Wait,
}

/// The own-seq state of one node. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnSeq {
    next: u64,
    reserved: u64,
    learning: bool,
}

impl OwnSeq {
    /// The state at start, from the highest own seq the store holds (gaps or not) and the
    /// persisted reservation (0 if none).
    pub fn start(store_high_water: u64, reservation: u64) -> Self {
        OwnSeq {
            next: store_high_water.saturating_add(1),
            reserved: reservation,
            learning: reservation > store_high_water,
        }
    }

    /// The seq the next own event gets once it may be issued.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// The persisted reservation.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Whether own events wait for a peer's report.
    pub fn is_learning(&self) -> bool {
        self.learning
    }

    /// What to do about the next own event.
    pub fn decide(&self) -> Decision {
        self.decide_after(0)
    }

    /// What to do about the own event after `k` more issued since the last
    /// [`OwnSeq::on_issued`] (a group being issued): its seq is `next + k`, which must be
    /// reserved too. `decide_after(0)` is [`OwnSeq::decide`].
    pub fn decide_after(&self, k: u64) -> Decision {
        let seq = self.next.saturating_add(k);
        if self.learning {
            Decision::Wait
        } else if seq > self.reserved {
            Decision::Reserve { up_to: seq }
        } else {
            Decision::Issue(seq)
        }
    }

    /// The reservation that covers the next `n` own events (at least one), for a group:
    /// one durable write for all of them. Reserve no more than will be issued: a clean
    /// restart with a reservation past the store's high-water mark waits for a peer.
    pub fn reserve_for(&self, n: u64) -> u64 {
        self.next.saturating_add(n.max(1) - 1)
    }

    /// A peer's clock holds this node's events up to `own_entry`: never issue at or below
    /// it, and the high-water mark is now learned.
    pub fn on_peer_report(&mut self, own_entry: u64) {
        self.next = self.next.max(own_entry.saturating_add(1));
        self.learning = false;
    }

    /// An own event under `seq` is held now (one a peer sent back): step past it.
    pub fn on_own_held(&mut self, seq: u64) {
        self.next = self.next.max(seq.saturating_add(1));
    }

    /// The reservation up to `up_to` is persisted.
    pub fn on_reserved(&mut self, up_to: u64) {
        self.reserved = self.reserved.max(up_to);
    }

    /// An event was signed under `seq`.
    pub fn on_issued(&mut self, seq: u64) {
        self.next = self.next.max(seq.saturating_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Issues one seq, persisting a reservation first if asked.
    fn issue(s: &mut OwnSeq) -> Option<u64> {
        loop {
            match s.decide() {
                Decision::Issue(n) => {
                    s.on_issued(n);
                    return Some(n);
                }
                Decision::Reserve { up_to } => s.on_reserved(up_to),
                Decision::Wait => return None,
            }
        }
    }

    #[test]
    fn a_fresh_node_reserves_then_issues_1_2_3() {
        let mut s = OwnSeq::start(0, 0);
        assert_eq!(s.decide(), Decision::Reserve { up_to: 1 });
        assert_eq!(issue(&mut s), Some(1));
        assert_eq!(issue(&mut s), Some(2));
        assert_eq!(issue(&mut s), Some(3));
        assert_eq!(s.reserved(), 3);
    }

    #[test]
    fn the_reservation_is_written_before_each_new_seq() {
        let mut s = OwnSeq::start(4, 4);
        assert_eq!(s.decide(), Decision::Reserve { up_to: 5 });
        s.on_reserved(5);
        assert_eq!(s.decide(), Decision::Issue(5));
    }

    #[test]
    fn a_clean_restart_issues_at_once_even_alone() {
        let mut s = OwnSeq::start(7, 7);
        assert!(!s.is_learning());
        assert_eq!(issue(&mut s), Some(8));
    }

    #[test]
    fn a_lost_tail_waits_for_a_peer_before_issuing() {
        // Seqs 6..=9 were signed, then lost with the disk cache.
        let mut s = OwnSeq::start(5, 9);
        assert!(s.is_learning());
        assert_eq!(s.decide(), Decision::Wait);
        // A peer holds up to 8 of ours: continue past it.
        s.on_peer_report(8);
        assert_eq!(issue(&mut s), Some(9));
        assert_eq!(issue(&mut s), Some(10));
    }

    #[test]
    fn own_events_sent_back_are_stepped_past() {
        let mut s = OwnSeq::start(5, 9);
        s.on_own_held(9);
        assert_eq!(s.decide(), Decision::Wait, "still learning");
        s.on_peer_report(3);
        assert_eq!(issue(&mut s), Some(10));
    }

    #[test]
    fn a_peer_ahead_of_us_later_still_moves_next() {
        let mut s = OwnSeq::start(2, 2);
        assert_eq!(issue(&mut s), Some(3));
        s.on_peer_report(6);
        assert_eq!(issue(&mut s), Some(7));
    }

    #[test]
    fn a_group_is_reserved_in_one_write_then_issued_in_order() {
        let mut s = OwnSeq::start(4, 4);
        assert_eq!(s.reserve_for(3), 7);
        assert_eq!(s.reserve_for(0), 5, "at least one");
        s.on_reserved(7);
        let group: Vec<Decision> = (0..4).map(|k| s.decide_after(k)).collect();
        assert_eq!(
            group,
            vec![
                Decision::Issue(5),
                Decision::Issue(6),
                Decision::Issue(7),
                Decision::Reserve { up_to: 8 }
            ]
        );
        for seq in 5..=7 {
            s.on_issued(seq);
        }
        assert_eq!(s.decide(), Decision::Reserve { up_to: 8 });
        let mut learning = OwnSeq::start(1, 3);
        assert_eq!(learning.decide_after(2), Decision::Wait);
        learning.on_peer_report(1);
        assert_eq!(learning.decide_after(1), Decision::Issue(3));
    }

    #[test]
    fn nothing_overflows_at_the_top() {
        let mut s = OwnSeq::start(u64::MAX, u64::MAX);
        assert_eq!(s.next_seq(), u64::MAX);
        s.on_peer_report(u64::MAX);
        s.on_own_held(u64::MAX);
        assert_eq!(s.next_seq(), u64::MAX);
    }

    proptest! {
        /// Whatever the interleaving of restarts (with lost tails), peer reports and
        /// issues, a seq is never issued twice while some peer or the store still holds an
        /// event under it, and every issued seq was reserved first.
        #[test]
        fn never_reissues_a_seq_anyone_reported(steps in proptest::collection::vec((0u8..4, 0u64..6), 1..60)) {
            let mut held = 0u64; // the local store's high-water mark
            let mut peer = 0u64; // the highest own seq a peer holds
            let mut reserved_disk = 0u64;
            let mut s = OwnSeq::start(0, 0);
            let mut issued_max = 0u64;
            for (op, n) in steps {
                match op {
                    0 => loop {
                        match s.decide() {
                            Decision::Issue(seq) => {
                                prop_assert!(seq <= reserved_disk, "issued {} past the reservation", seq);
                                prop_assert!(seq > peer && seq > held, "reused {}", seq);
                                s.on_issued(seq);
                                held = seq;
                                issued_max = issued_max.max(seq);
                                break;
                            }
                            Decision::Reserve { up_to } => {
                                reserved_disk = reserved_disk.max(up_to);
                                s.on_reserved(up_to);
                            }
                            Decision::Wait => break,
                        }
                    },
                    // The peer syncs with us: it holds what we hold.
                    1 => peer = peer.max(held),
                    // Crash and restart losing up to n own events of the tail.
                    2 => {
                        held = held.saturating_sub(n);
                        s = OwnSeq::start(held, reserved_disk);
                    }
                    // The peer reports (and sends back what it holds).
                    _ => {
                        held = held.max(peer);
                        s.on_own_held(held);
                        s.on_peer_report(peer);
                    }
                }
            }
            prop_assert!(reserved_disk >= issued_max);
        }
    }
}
