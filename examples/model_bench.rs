//! Folding cost of the app model.
//!
//! `cargo run --release --example model_bench`
//!
//! Builds 1,000,000 chat events and 10,000 list ops from 8 origins (not timed), folds them
//! from scratch in replay order and in a random order, then times applying one more event to
//! the full model, and `state_json` of it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use gossip::app::{AppOp, Model, MoveTo};
use gossip::{Event, NodeId};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

const CHAT_EVENTS: usize = 1_000_000;
const LIST_OPS: usize = 10_000;
const ORIGINS: u64 = 8;
const EXTRA: usize = 10_000;

struct Gen {
    seqs: Vec<u64>,
    hlc: u64,
    events: Vec<Event>,
}

impl Gen {
    fn push(&mut self, origin: usize, op: &AppOp) -> Event {
        self.seqs[origin] += 1;
        self.hlc += 1;
        let payload = op.encode().expect("benchmark ops are valid");
        let e = Event {
            id: Uuid::now_v7(),
            origin: NodeId::from_u128(origin as u128 + 1),
            seq: self.seqs[origin],
            hlc: self.hlc,
            created_at_ms: 1_700_000_000_000 + self.hlc,
            payload: Bytes::from(payload),
            sig: bytes::Bytes::new(),
        };
        self.events.push(e.clone());
        e
    }
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:.2} M events/s", n as f64 / d.as_secs_f64() / 1e6)
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() {
    let mut rng = SmallRng::seed_from_u64(5);
    let mut g = Gen {
        seqs: vec![0; ORIGINS as usize],
        hlc: 0,
        events: Vec::with_capacity(CHAT_EVENTS + LIST_OPS),
    };
    // The list ops are made against a model kept up to date, so moves and edits target real
    // items, and are spread through the chat.
    let mut list_model = Model::new();
    let list_every = CHAT_EVENTS / LIST_OPS;
    for i in 0..CHAT_EVENTS {
        let origin = rng.random_range(0..ORIGINS as usize);
        g.push(
            origin,
            &AppOp::chat(&format!("message number {i}")).expect("valid"),
        );
        if i % list_every == 0 {
            let items: Vec<Uuid> = list_model.list().map(|v| v.id).collect();
            let pick = |rng: &mut SmallRng| items[rng.random_range(0..items.len())];
            let op = match rng.random_range(0..10) {
                _ if items.len() < 2 => list_model.new_item_op("item", None),
                0..4 => {
                    let after = Some(pick(&mut rng)).filter(|_| rng.random_bool(0.5));
                    list_model.new_item_op("item", after)
                }
                4..6 => AppOp::list_edit(pick(&mut rng), "edited").map_err(Into::into),
                6..8 => Ok(AppOp::list_check(pick(&mut rng), true)),
                8 => list_model.move_op(pick(&mut rng), MoveTo::After(pick(&mut rng))),
                _ => Ok(AppOp::list_remove(pick(&mut rng))),
            };
            if let Ok(op) = op {
                let e = g.push(origin, &op);
                list_model.apply(&e);
            }
        }
    }
    let events = g.events;
    println!(
        "{} events ({} chat, {} list ops) from {ORIGINS} origins",
        events.len(),
        CHAT_EVENTS,
        events.len() - CHAT_EVENTS
    );

    let t = Instant::now();
    let model = Model::from_events(&events);
    let d = t.elapsed();
    println!(
        "fold from scratch, replay order: {:>8.0} ms  {}",
        d.as_secs_f64() * 1e3,
        rate(events.len(), d)
    );
    let expected = model.state_json().expect("serialises");

    let mut shuffled: Vec<&Event> = events.iter().collect();
    shuffled.shuffle(&mut rng);
    let t = Instant::now();
    let shuffled_model = Model::from_events(shuffled.iter().copied());
    let d = t.elapsed();
    println!(
        "fold from scratch, random order: {:>8.0} ms  {}",
        d.as_secs_f64() * 1e3,
        rate(events.len(), d)
    );
    let t = Instant::now();
    let json = shuffled_model.state_json().expect("serialises");
    let d = t.elapsed();
    assert_eq!(json, expected, "orders must give the same state");
    println!(
        "state_json of the full model:    {:>8.0} ms  ({} MB)",
        d.as_secs_f64() * 1e3,
        json.len() / 1_000_000
    );
    println!(
        "model: {} messages, {} items, {} removed",
        model.chat().len(),
        model.list_len(),
        model.removed_items()
    );

    // One more event onto the full model, timed one at a time.
    let mut model = model;
    let mut g = Gen {
        seqs: g.seqs,
        hlc: g.hlc,
        events: Vec::new(),
    };
    let items: Vec<Uuid> = model.list().map(|v| v.id).collect();
    let mut chat = Vec::with_capacity(EXTRA);
    let mut edits = Vec::with_capacity(EXTRA);
    for i in 0..EXTRA {
        let e = g.push(0, &AppOp::chat("one more").expect("valid"));
        let mut t = Instant::now();
        model.apply(&e);
        chat.push(t.elapsed().as_nanos());
        let op = AppOp::list_edit(items[i % items.len()], "edited again").expect("valid");
        let e = g.push(0, &op);
        t = Instant::now();
        model.apply(&e);
        edits.push(t.elapsed().as_nanos());
    }
    for (name, mut ns) in [("chat message", chat), ("list edit", edits)] {
        ns.sort_unstable();
        println!(
            "apply one more {name:<12}: median {} ns, p99 {} ns (n = {EXTRA})",
            percentile(&ns, 0.5),
            percentile(&ns, 0.99)
        );
    }
}
