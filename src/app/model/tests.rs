//! Convergence of the app model: property tests over simulated replicas, and named cases.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use super::fractional::key_between;
use super::op::OP_FORMAT_VERSION;
use super::*;
use crate::protocol::{Event, NodeId};

fn node(n: u128) -> NodeId {
    NodeId::from_u128(n)
}

fn raw_event(origin: NodeId, seq: u64, hlc: u64, payload: Vec<u8>) -> Event {
    Event {
        id: Uuid::from_u128((origin.0.as_u128() << 64) ^ u128::from(seq)),
        origin,
        seq,
        hlc,
        created_at_ms: 1_700_000_000_000 + hlc,
        payload: Bytes::from(payload),
        sig: bytes::Bytes::new(),
    }
}

/// An event carrying `op`, encoded without the sender-side checks (as a faulty peer might).
fn event(origin: u128, seq: u64, hlc: u64, op: &AppOp) -> Event {
    let payload = op.encode_unchecked().expect("a test op encodes");
    raw_event(node(origin), seq, hlc, payload)
}

fn fold(events: &[&Event]) -> Model {
    Model::from_events(events.iter().copied())
}

fn json(model: &Model) -> String {
    model.state_json().expect("state serialises")
}

fn texts(model: &Model) -> Vec<String> {
    model.list().map(|i| i.text.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// Simulated replicas

const TEXTS: [&str; 6] = ["milk", "eggs", "bread", "hello", "two\nlines", "ünïcode ✓"];
const NICKS: [&str; 4] = ["ann", "bob", "cy", "dee"];

/// An item an op may target.
#[derive(Clone, Debug)]
enum Target {
    /// An item the acting replica shows.
    Local(Index),
    /// Any item created anywhere so far, maybe not yet seen by the actor.
    Global(Index),
    /// An id nobody ever adds.
    Unknown(u8),
}

#[derive(Clone, Debug)]
enum Step {
    Chat(Index, usize),
    Nick(Index, usize),
    Add(Index, Option<Index>, usize),
    Edit(Index, Target, usize),
    Check(Index, Target, bool),
    Move(Index, Target, u8, Index),
    Remove(Index, Target),
    /// A payload every replica must refuse, of kind 0..5.
    Bad(Index, u8),
    /// `to` receives everything `from` holds.
    Sync(Index, Index),
    /// `to` receives one event `from` holds (any, not necessarily in causal order).
    One(Index, Index, Index),
    /// A `/me` action.
    Action(Index, usize),
    /// A reply to any message created so far (maybe not yet seen by the actor).
    Reply(Index, Index, usize),
    /// An edit of one of the actor's messages, or of any seq of its own (`true`), which
    /// may be no message at all.
    ChatEdit(Index, Index, bool, usize),
    /// A delete, chosen like an edit.
    ChatDelete(Index, Index, bool),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => any::<Index>().prop_map(Target::Local),
        2 => any::<Index>().prop_map(Target::Global),
        1 => (0u8..3).prop_map(Target::Unknown),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let text = 0..TEXTS.len();
    prop_oneof![
        2 => (any::<Index>(), text.clone()).prop_map(|(n, t)| Step::Chat(n, t)),
        1 => (any::<Index>(), 0..NICKS.len()).prop_map(|(n, t)| Step::Nick(n, t)),
        3 => (any::<Index>(), proptest::option::of(any::<Index>()), text.clone())
            .prop_map(|(n, a, t)| Step::Add(n, a, t)),
        2 => (any::<Index>(), target(), text).prop_map(|(n, i, t)| Step::Edit(n, i, t)),
        2 => (any::<Index>(), target(), any::<bool>()).prop_map(|(n, i, d)| Step::Check(n, i, d)),
        3 => (any::<Index>(), target(), 0u8..6, any::<Index>())
            .prop_map(|(n, i, m, a)| Step::Move(n, i, m, a)),
        1 => (any::<Index>(), target()).prop_map(|(n, i)| Step::Remove(n, i)),
        1 => (any::<Index>(), 0u8..5).prop_map(|(n, k)| Step::Bad(n, k)),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Step::Sync(a, b)),
        3 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(a, b, e)| Step::One(a, b, e)),
        1 => (any::<Index>(), 0..TEXTS.len()).prop_map(|(n, t)| Step::Action(n, t)),
        1 => (any::<Index>(), any::<Index>(), 0..TEXTS.len())
            .prop_map(|(n, m, t)| Step::Reply(n, m, t)),
        2 => (any::<Index>(), any::<Index>(), proptest::bool::weighted(0.2), 0..TEXTS.len())
            .prop_map(|(n, m, any, t)| Step::ChatEdit(n, m, any, t)),
        1 => (any::<Index>(), any::<Index>(), proptest::bool::weighted(0.2))
            .prop_map(|(n, m, any)| Step::ChatDelete(n, m, any)),
    ]
}

/// One simulated node: its own counter and hybrid logical clock, the events it holds, and the
/// model it folded from them in the order they arrived.
struct Replica {
    id: NodeId,
    seq: u64,
    hlc: u64,
    held: BTreeMap<(NodeId, u64), Event>,
    model: Model,
}

impl Replica {
    fn new(n: u128) -> Self {
        Replica {
            id: node(n),
            seq: 0,
            hlc: 0,
            held: BTreeMap::new(),
            model: Model::new(),
        }
    }

    fn create(&mut self, payload: Vec<u8>) {
        self.seq += 1;
        self.hlc += 1;
        let e = raw_event(self.id, self.seq, self.hlc, payload);
        self.receive(&e);
    }

    fn receive(&mut self, e: &Event) {
        self.hlc = self.hlc.max(e.hlc);
        // Applied even when already held: duplicates must be harmless.
        self.model.apply(e);
        self.held.insert(e.key(), e.clone());
    }
}

struct Sim {
    replicas: Vec<Replica>,
    /// Every item id ever added, in creation order.
    items: Vec<Uuid>,
    /// Every chat line (message, action, reply) ever created, as `(origin, seq)`.
    messages: Vec<(NodeId, u64)>,
}

impl Sim {
    fn new(n: usize) -> Self {
        Sim {
            replicas: (1..=n as u128).map(Replica::new).collect(),
            items: Vec::new(),
            messages: Vec::new(),
        }
    }

    /// The seq replica `r` edits or deletes: one of its chat lines, or (`any`) any of its
    /// seqs, chat line or not.
    fn own_seq(&self, r: usize, pick: &Index, any: bool) -> Option<u64> {
        let me = &self.replicas[r];
        if any {
            return (me.seq > 0).then(|| pick.index(me.seq as usize) as u64 + 1);
        }
        let own: Vec<u64> = self
            .messages
            .iter()
            .filter(|(o, _)| *o == me.id)
            .map(|(_, s)| *s)
            .collect();
        (!own.is_empty()).then(|| own[pick.index(own.len())])
    }

    fn resolve(&self, r: usize, t: &Target) -> Option<Uuid> {
        match t {
            Target::Local(i) => {
                let model = &self.replicas[r].model;
                let n = model.list_len();
                (n > 0).then(|| model.list().nth(i.index(n)).map(|v| v.id))?
            }
            Target::Global(i) => {
                (!self.items.is_empty()).then(|| self.items[i.index(self.items.len())])
            }
            Target::Unknown(k) => Some(Uuid::from_u128(0xdead_0000 + u128::from(*k))),
        }
    }

    fn run(&mut self, step: &Step) {
        let n = self.replicas.len();
        let op = match step {
            Step::Sync(a, b) | Step::One(a, b, _) => {
                let (from, to) = (a.index(n), b.index(n));
                let events: Vec<Event> = match step {
                    Step::One(_, _, e) => {
                        let held = &self.replicas[from].held;
                        held.values()
                            .nth(e.index(held.len().max(1)))
                            .cloned()
                            .into_iter()
                            .collect()
                    }
                    _ => self.replicas[from].held.values().cloned().collect(),
                };
                for e in &events {
                    self.replicas[to].receive(e);
                }
                return;
            }
            Step::Bad(r, kind) => {
                let payload = match kind {
                    0 => AppOp::Chat {
                        text: " \n ".into(),
                    }
                    .encode_unchecked(),
                    1 => AppOp::ListEdit {
                        item: self.items.first().copied().unwrap_or_default(),
                        text: "bell\u{7}".into(),
                    }
                    .encode_unchecked(),
                    2 => AppOp::Nick {
                        name: "x".repeat(100),
                    }
                    .encode_unchecked(),
                    3 => Ok(vec![7, 0, 1, 2, 3]),
                    _ => Ok(vec![OP_FORMAT_VERSION as u8, 0, 250, 250]),
                };
                self.replicas[r.index(n)].create(payload.expect("test payload encodes"));
                return;
            }
            Step::Chat(r, t) => (r, AppOp::chat(TEXTS[*t]).ok()),
            Step::Action(r, t) => (r, AppOp::action(TEXTS[*t]).ok()),
            Step::Reply(r, m, t) => {
                let to = (!self.messages.is_empty())
                    .then(|| self.messages[m.index(self.messages.len())]);
                (r, to.and_then(|(o, s)| AppOp::reply(o, s, TEXTS[*t]).ok()))
            }
            Step::ChatEdit(r, m, any, t) => {
                let seq = self.own_seq(r.index(n), m, *any);
                (r, seq.and_then(|s| AppOp::chat_edit(s, TEXTS[*t]).ok()))
            }
            Step::ChatDelete(r, m, any) => {
                let seq = self.own_seq(r.index(n), m, *any);
                (r, seq.and_then(|s| AppOp::chat_delete(s).ok()))
            }
            Step::Nick(r, t) => (r, AppOp::nick(NICKS[*t]).ok()),
            Step::Add(r, after, t) => {
                let ri = r.index(n);
                let model = &self.replicas[ri].model;
                let after = after.and_then(|a| {
                    let len = model.list_len();
                    (len > 0).then(|| model.list().nth(a.index(len)).map(|v| v.id))?
                });
                // Spread ids over the whole range, as random ids would be.
                let id = Uuid::from_u128(
                    (self.items.len() as u128 + 1)
                        .wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
                );
                let op = model.new_item_op_with_id(id, TEXTS[*t], after).ok();
                if op.is_some() {
                    self.items.push(id);
                }
                (r, op)
            }
            Step::Edit(r, t, x) => {
                let item = self.resolve(r.index(n), t);
                (r, item.and_then(|i| AppOp::list_edit(i, TEXTS[*x]).ok()))
            }
            Step::Check(r, t, done) => {
                let item = self.resolve(r.index(n), t);
                (r, item.map(|i| AppOp::list_check(i, *done)))
            }
            Step::Remove(r, t) => {
                let item = self.resolve(r.index(n), t);
                (r, item.map(AppOp::list_remove))
            }
            Step::Move(r, t, how, anchor) => {
                let ri = r.index(n);
                let model = &self.replicas[ri].model;
                let Some(item) = self.resolve(ri, t) else {
                    return;
                };
                let len = model.list_len();
                let anchor = (len > 0)
                    .then(|| model.list().nth(anchor.index(len)).map(|v| v.id))
                    .flatten();
                let to = match (how, anchor) {
                    (0, _) => Some(MoveTo::Up),
                    (1, _) => Some(MoveTo::Down),
                    (2, _) => Some(MoveTo::Top),
                    (3, _) => Some(MoveTo::Bottom),
                    (4, Some(a)) => Some(MoveTo::After(a)),
                    (_, Some(a)) => Some(MoveTo::Before(a)),
                    _ => None,
                };
                let op = match to.map(|to| model.move_op(item, to)) {
                    Some(Ok(op)) => Some(op),
                    // The actor does not show the item (or it cannot move): still send a
                    // move, as a replica with an older view of the list would.
                    _ => Some(AppOp::ListMove {
                        item,
                        pos: key_between(None, None),
                    }),
                };
                (r, op)
            }
        };
        let (r, Some(op)) = op else { return };
        let payload = op.encode().expect("ops built by the model are valid");
        let replica = &mut self.replicas[r.index(n)];
        replica.create(payload);
        if matches!(
            op,
            AppOp::Chat { .. } | AppOp::Action { .. } | AppOp::Reply { .. }
        ) {
            self.messages.push((replica.id, replica.seq));
        }
    }

    fn union(&self) -> Vec<Event> {
        let mut all = BTreeMap::new();
        for r in &self.replicas {
            all.extend(r.held.iter().map(|(k, e)| (*k, e.clone())));
        }
        all.into_values().collect()
    }
}

fn counts_without_duplicates(m: &Model) -> Counts {
    Counts {
        duplicates: 0,
        ..m.counts()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn replicas_with_the_same_events_show_the_same_state(
        n in 3usize..=5,
        steps in proptest::collection::vec(step(), 1..120),
        seed in any::<u64>(),
    ) {
        let mut sim = Sim::new(n);
        for s in &steps {
            sim.run(s);
        }
        let union = sim.union();
        let by_key: Vec<&Event> = union.iter().collect();
        let reference = fold(&by_key);
        let expected = json(&reference);
        prop_assert_eq!(reference.counts().events, union.len() as u64);

        // Fresh replicas: the union in random orders, with random duplicates.
        let mut rng = SmallRng::seed_from_u64(seed);
        for _ in 0..n {
            let mut order: Vec<&Event> = union.iter().collect();
            let extra = rng.random_range(0..=union.len());
            for _ in 0..extra {
                order.push(&union[rng.random_range(0..union.len())]);
            }
            order.shuffle(&mut rng);
            let m = fold(&order);
            prop_assert_eq!(m.check_invariants(), Ok(()));
            prop_assert_eq!(json(&m), expected.clone());
            prop_assert_eq!(
                (m.pending_items(), m.removed_items()),
                (reference.pending_items(), reference.removed_items())
            );
            prop_assert_eq!(counts_without_duplicates(&m), reference.counts());
            prop_assert_eq!(m.counts().duplicates, extra as u64);
        }

        // The simulated replicas, which folded incrementally in arrival order while making
        // ops, after a final full sync.
        for i in 0..n {
            for e in &union {
                sim.replicas[i].receive(e);
            }
            let m = &sim.replicas[i].model;
            prop_assert_eq!(m.check_invariants(), Ok(()));
            prop_assert_eq!(json(m), expected.clone());
            prop_assert_eq!(counts_without_duplicates(m), reference.counts());
        }
    }
}

/// Guards the property test against a generator that makes only trivial histories, where
/// convergence would hold by accident.
#[test]
fn the_simulation_produces_contested_lists() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(step(), 100..120);
    let (mut items, mut moved, mut removed, mut pending) = (0, 0, 0, 0);
    let (mut edited, mut deleted, mut replies) = (0, 0, 0);
    for _ in 0..20 {
        let steps = strategy
            .new_tree(&mut runner)
            .expect("strategy makes a value")
            .current();
        let mut sim = Sim::new(4);
        for s in &steps {
            sim.run(s);
        }
        let m = Model::from_events(&sim.union());
        edited += m.chat().filter(|l| l.edited).count();
        deleted += m.chat().filter(|l| l.deleted).count();
        replies += m.chat().filter(|l| l.reply_to.is_some()).count();
        items += m.list_len();
        removed += m.removed_items();
        pending += m.pending_items();
        moved += sim
            .union()
            .iter()
            .filter(|e| matches!(AppOp::decode(&e.payload), Ok(AppOp::ListMove { .. })))
            .count();
    }
    assert!(items > 20, "items {items}");
    assert!(moved > 20, "moves {moved}");
    assert!(removed > 5, "removed {removed}");
    assert!(pending > 0, "pending {pending}");
    assert!(edited > 5, "edited {edited}");
    assert!(deleted > 5, "deleted {deleted}");
    assert!(replies > 5, "replies {replies}");
}

// ---------------------------------------------------------------------------------------
// Named cases

/// Both delivery orders of two events.
fn both_orders(base: &[Event], a: &Event, b: &Event) -> (Model, Model) {
    let mut ab: Vec<&Event> = base.iter().collect();
    ab.extend([a, b]);
    let mut ba: Vec<&Event> = base.iter().collect();
    ba.extend([b, a]);
    (fold(&ab), fold(&ba))
}

fn item(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

#[test]
fn concurrent_edits_of_one_item_keep_the_larger_stamp() {
    let add = event(1, 1, 1, &AppOp::list_add(item(1), "milk", "V").unwrap());
    // Nodes 2 and 3 both saw the add (HLC 1) and edit at HLC 2.
    let e2 = event(2, 1, 2, &AppOp::list_edit(item(1), "oat milk").unwrap());
    let e3 = event(3, 1, 2, &AppOp::list_edit(item(1), "soy milk").unwrap());
    let (ab, ba) = both_orders(std::slice::from_ref(&add), &e2, &e3);
    assert_eq!(json(&ab), json(&ba));
    // Equal HLCs: the larger origin wins.
    assert_eq!(texts(&ab), ["soy milk"]);
    let view = ab.item(item(1)).unwrap();
    assert_eq!(view.last_editor, node(3));
    assert_eq!(view.added_by, node(1));
    // A later edit (higher HLC) from the smaller origin wins over both.
    let e4 = event(2, 2, 3, &AppOp::list_edit(item(1), "no milk").unwrap());
    let m = fold(&[&e4, &e3, &add, &e2]);
    assert_eq!(texts(&m), ["no milk"]);
}

#[test]
fn concurrent_move_and_remove_remove_wins() {
    let add_a = event(1, 1, 1, &AppOp::list_add(item(1), "a", "V").unwrap());
    let add_b = event(1, 2, 2, &AppOp::list_add(item(2), "b", "k").unwrap());
    let base = [add_a, add_b];
    let mv = event(
        2,
        1,
        3,
        &AppOp::ListMove {
            item: item(1),
            pos: "z".into(),
        },
    );
    let rm = event(3, 1, 3, &AppOp::list_remove(item(1)));
    let (ab, ba) = both_orders(&base, &mv, &rm);
    assert_eq!(json(&ab), json(&ba));
    assert_eq!(texts(&ab), ["b"]);
    assert!(ab.item(item(1)).is_none());
    // Even an edit stamped after the remove does not bring the item back.
    let late = event(2, 2, 10, &AppOp::list_edit(item(1), "back?").unwrap());
    let m = fold(&[&base[0], &base[1], &rm, &late, &mv]);
    assert_eq!(texts(&m), ["b"]);
    assert_eq!(m.removed_items(), 1);
    assert_eq!(m.pending_items(), 0);
}

#[test]
fn concurrent_inserts_between_the_same_two_items_are_both_kept_in_id_order() {
    let a = event(1, 1, 1, &AppOp::list_add(item(10), "first", "V").unwrap());
    let c = event(1, 2, 2, &AppOp::list_add(item(30), "last", "k").unwrap());
    let base = Model::from_events([&a, &c]);
    assert_eq!(texts(&base), ["first", "last"]);
    // Two nodes with the same view insert after "first" at the same moment: same key.
    let op2 = base
        .new_item_op_with_id(item(25), "from 2", Some(item(10)))
        .unwrap();
    let op3 = base
        .new_item_op_with_id(item(20), "from 3", Some(item(10)))
        .unwrap();
    let (AppOp::ListAdd { pos: p2, .. }, AppOp::ListAdd { pos: p3, .. }) = (&op2, &op3) else {
        panic!("new_item_op makes adds");
    };
    assert_eq!(p2, p3);
    let e2 = event(2, 1, 3, &op2);
    let e3 = event(3, 1, 3, &op3);
    let (ab, ba) = both_orders(&[a, c], &e2, &e3);
    assert_eq!(json(&ab), json(&ba));
    // Equal keys: the smaller id first.
    assert_eq!(texts(&ab), ["first", "from 3", "from 2", "last"]);
    // A later insert after the tied pair goes after both, before "last".
    let next = ab
        .new_item_op_with_id(item(40), "next", Some(item(25)))
        .unwrap();
    let mut m = ab;
    m.apply(&event(1, 3, 4, &next));
    assert_eq!(texts(&m), ["first", "from 3", "from 2", "next", "last"]);
}

#[test]
fn ops_that_arrive_before_their_add_wait_for_it() {
    let add = event(1, 1, 1, &AppOp::list_add(item(1), "milk", "V").unwrap());
    let edit = event(2, 1, 2, &AppOp::list_edit(item(1), "oat milk").unwrap());
    let check = event(2, 2, 3, &AppOp::list_check(item(1), true));
    let mut m = Model::new();
    m.apply(&edit);
    m.apply(&check);
    assert_eq!(m.list_len(), 0, "not shown before its add");
    assert_eq!(m.pending_items(), 1);
    m.apply(&add);
    assert_eq!(m.pending_items(), 0);
    let view = m.item(item(1)).unwrap();
    assert_eq!((view.text, view.done), ("oat milk", true));
    assert_eq!(view.added_by, node(1));
    assert_eq!(view.last_editor, node(2));
    assert_eq!(json(&m), json(&fold(&[&add, &edit, &check])));
}

#[test]
fn a_remove_before_the_add_keeps_the_item_hidden() {
    let add = event(1, 1, 1, &AppOp::list_add(item(1), "milk", "V").unwrap());
    let rm = event(2, 1, 2, &AppOp::list_remove(item(1)));
    let m = fold(&[&rm, &add]);
    assert_eq!(m.list_len(), 0);
    assert_eq!(json(&m), json(&fold(&[&add, &rm])));
}

#[test]
fn a_nick_change_renames_the_authors_earlier_messages() {
    let hi = event(1, 1, 1, &AppOp::chat("hi").unwrap());
    let nick = event(1, 2, 2, &AppOp::nick("ann").unwrap());
    let yo = event(2, 1, 3, &AppOp::chat("yo").unwrap());
    let mut m = Model::from_events([&hi, &yo]);
    let authors = |m: &Model| m.chat().map(|l| l.author.into_owned()).collect::<Vec<_>>();
    assert_eq!(authors(&m), [node(1).short(), node(2).short()]);
    m.apply(&nick);
    assert_eq!(authors(&m), ["ann".to_string(), node(2).short()]);
    // An older nick op arriving late does not undo the newer one.
    let old = event(1, 3, 1, &AppOp::nick("old").unwrap());
    m.apply(&old);
    assert_eq!(m.nick(node(1)), Some("ann"));
    let newer = event(1, 4, 5, &AppOp::nick("annie").unwrap());
    m.apply(&newer);
    assert_eq!(authors(&m), ["annie".to_string(), node(2).short()]);
}

#[test]
fn chat_is_ordered_by_hlc_then_origin_then_seq() {
    let e = [
        event(2, 1, 2, &AppOp::chat("c").unwrap()),
        event(1, 1, 1, &AppOp::chat("a").unwrap()),
        event(3, 1, 2, &AppOp::chat("d").unwrap()),
        event(1, 2, 2, &AppOp::chat("b").unwrap()),
    ];
    let m = Model::from_events(&e);
    let lines: Vec<_> = m.chat().map(|l| (l.text, l.hlc, l.seq)).collect();
    assert_eq!(lines, [("a", 1, 1), ("b", 2, 2), ("c", 2, 1), ("d", 2, 1)]);
    assert_eq!(m.chat().next_back().map(|l| l.origin), Some(node(3)));
}

#[test]
fn an_op_with_an_unknown_version_shows_as_unsupported_and_is_counted() {
    let mut payload = AppOp::chat("from the future").unwrap().encode().unwrap();
    payload[..2].copy_from_slice(&(OP_FORMAT_VERSION + 1).to_le_bytes());
    let future = raw_event(node(1), 1, 1, payload);
    let now = event(1, 2, 2, &AppOp::chat("now").unwrap());
    let mut m = Model::new();
    let note = m.apply(&future);
    assert!(matches!(note, Applied::UnknownVersion(4)));
    assert_eq!(note.to_string(), "unsupported: op format version 4");
    assert!(matches!(m.apply(&now), Applied::Folded { kind: "chat" }));
    assert_eq!(
        m.chat()
            .map(|l| (l.text, l.unsupported))
            .collect::<Vec<_>>(),
        [("unsupported message", Some(4)), ("now", None)]
    );
    // Never editable, never a reply target with content.
    assert_eq!(m.edit_op(node(1), 1, "x"), Err(ChatOpError::Unsupported));
    assert_eq!(m.last_own_message(node(1)).map(|l| l.seq), Some(2));
    let c = m.counts();
    assert_eq!(
        (c.events, c.skipped_unknown_version, c.undecodable),
        (2, 1, 0)
    );
}

#[test]
fn invalid_remote_ops_are_ignored_and_counted() {
    let bad = [
        event(1, 1, 1, &AppOp::Chat { text: "   ".into() }),
        event(
            1,
            2,
            2,
            &AppOp::Chat {
                text: "a\u{1b}[31m".into(),
            },
        ),
        event(
            1,
            3,
            3,
            &AppOp::Chat {
                text: "x".repeat(op::MAX_TEXT_BYTES + 1),
            },
        ),
        event(
            1,
            4,
            4,
            &AppOp::Nick {
                name: "a\nb".into(),
            },
        ),
        event(
            1,
            5,
            5,
            &AppOp::ListAdd {
                item: item(1),
                text: "ok".into(),
                pos: "bad-pos".into(),
            },
        ),
        raw_event(node(1), 6, 6, vec![OP_FORMAT_VERSION as u8, 0, 99]),
        raw_event(node(1), 7, 7, vec![]),
    ];
    let good = event(1, 8, 8, &AppOp::chat("fine").unwrap());
    let mut m = Model::from_events(&bad);
    m.apply(&good);
    let c = m.counts();
    assert_eq!((c.events, c.ignored_invalid, c.undecodable), (8, 5, 2));
    assert_eq!(m.chat().map(|l| l.text).collect::<Vec<_>>(), ["fine"]);
    assert_eq!(m.list_len(), 0);
    assert_eq!(m.nick(node(1)), None);
}

#[test]
fn duplicates_are_counted_and_change_nothing() {
    let e = event(1, 1, 1, &AppOp::chat("once").unwrap());
    let mut m = Model::new();
    m.apply(&e);
    let before = json(&m);
    assert!(matches!(m.apply(&e), Applied::Duplicate));
    assert_eq!(json(&m), before);
    assert_eq!(m.chat().len(), 1);
    assert_eq!((m.counts().events, m.counts().duplicates), (1, 1));
}

#[test]
fn state_json_holds_the_visible_model() {
    let e = [
        event(1, 1, 1, &AppOp::nick("ann").unwrap()),
        event(1, 2, 2, &AppOp::chat("hi").unwrap()),
        event(2, 1, 3, &AppOp::list_add(item(7), "milk", "V").unwrap()),
        event(2, 2, 4, &AppOp::list_check(item(7), true)),
    ];
    let v: serde_json::Value = serde_json::from_str(&json(&Model::from_events(&e))).unwrap();
    let expected = serde_json::json!({
        "chat": [{
            "author": "ann", "origin": node(1), "seq": 2, "hlc": 2,
            "created_at_ms": 1_700_000_000_002u64, "text": "hi",
        }],
        "list": [{
            "id": item(7), "text": "milk", "done": true, "pos": "V",
            "added_by": node(2), "last_editor": node(2),
        }],
        "nicks": { (node(1).to_string()): "ann" },
    });
    assert_eq!(v, expected);
}

fn list_of(n: u128) -> (Model, Vec<Event>) {
    let mut m = Model::new();
    let mut events = Vec::new();
    for i in 1..=n {
        let op = m
            .new_item_op_with_id(item(i), &format!("item {i}"), None)
            .unwrap();
        let e = event(1, i as u64, i as u64, &op);
        m.apply(&e);
        events.push(e);
    }
    (m, events)
}

#[test]
fn new_items_go_to_the_bottom_or_after_an_item() {
    let (mut m, _) = list_of(3);
    assert_eq!(texts(&m), ["item 1", "item 2", "item 3"]);
    let op = m
        .new_item_op_with_id(item(9), "after 1", Some(item(1)))
        .unwrap();
    m.apply(&event(2, 1, 10, &op));
    assert_eq!(texts(&m), ["item 1", "after 1", "item 2", "item 3"]);
    assert_eq!(
        m.new_item_op(" ", None).unwrap_err(),
        ListOpError::Invalid(InvalidOp::EmptyText)
    );
    assert_eq!(
        m.new_item_op("x", Some(item(99))).unwrap_err(),
        ListOpError::NoSuchItem(item(99))
    );
}

#[test]
fn moves_go_where_asked() {
    let (m, _) = list_of(4);
    let mut hlc = 100;
    let mut moved = |m: &Model, it: u128, to: MoveTo| -> Vec<String> {
        let op = m.move_op(item(it), to).unwrap();
        let mut m = m.clone();
        hlc += 1;
        m.apply(&event(2, hlc, hlc, &op));
        texts(&m)
    };
    let names = |v: &[u32]| v.iter().map(|i| format!("item {i}")).collect::<Vec<_>>();
    assert_eq!(moved(&m, 3, MoveTo::Up), names(&[1, 3, 2, 4]));
    assert_eq!(moved(&m, 2, MoveTo::Down), names(&[1, 3, 2, 4]));
    assert_eq!(moved(&m, 3, MoveTo::Top), names(&[3, 1, 2, 4]));
    assert_eq!(moved(&m, 2, MoveTo::Bottom), names(&[1, 3, 4, 2]));
    assert_eq!(moved(&m, 1, MoveTo::After(item(3))), names(&[2, 3, 1, 4]));
    assert_eq!(moved(&m, 4, MoveTo::Before(item(2))), names(&[1, 4, 2, 3]));
    assert_eq!(m.move_op(item(1), MoveTo::Up), Err(ListOpError::AtEdge));
    assert_eq!(m.move_op(item(1), MoveTo::Top), Err(ListOpError::AtEdge));
    assert_eq!(m.move_op(item(4), MoveTo::Down), Err(ListOpError::AtEdge));
    assert_eq!(
        m.move_op(item(2), MoveTo::After(item(2))),
        Err(ListOpError::SelfAnchor)
    );
    assert_eq!(
        m.move_op(item(7), MoveTo::Up),
        Err(ListOpError::NoSuchItem(item(7)))
    );
}

#[test]
fn moves_step_past_items_with_equal_keys() {
    // Three items on one key (concurrent inserts), between two others.
    let ops = [
        (1, "V", "a"),
        (2, "X", "t1"),
        (3, "X", "t2"),
        (4, "X", "t3"),
        (5, "Z", "b"),
    ];
    let events: Vec<Event> = ops
        .iter()
        .map(|(i, pos, text)| event(*i, 1, 1, &AppOp::list_add(item(*i), text, pos).unwrap()))
        .collect();
    let m = Model::from_events(&events);
    assert_eq!(texts(&m), ["a", "t1", "t2", "t3", "b"]);
    let apply = |op: AppOp| {
        let mut m = m.clone();
        m.apply(&event(9, 1, 9, &op));
        texts(&m)
    };
    // Up from the middle of the tie goes before the whole tie group.
    assert_eq!(
        apply(m.move_op(item(3), MoveTo::Up).unwrap()),
        ["a", "t2", "t1", "t3", "b"]
    );
    // Down from the middle goes after the whole group.
    assert_eq!(
        apply(m.move_op(item(3), MoveTo::Down).unwrap()),
        ["a", "t1", "t3", "t2", "b"]
    );
    // Up from "b" passes the group too: there is no key between equal keys.
    assert_eq!(
        apply(m.move_op(item(5), MoveTo::Up).unwrap()),
        ["a", "b", "t1", "t2", "t3"]
    );
}

#[test]
fn items_are_found_by_unique_prefix() {
    let ids = [
        Uuid::parse_str("12345678-0000-4000-8000-000000000001").unwrap(),
        Uuid::parse_str("12345678-0000-4000-8000-000000000002").unwrap(),
        Uuid::parse_str("abcdef00-0000-4000-8000-000000000003").unwrap(),
    ];
    let mut events: Vec<Event> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            event(
                1,
                i as u64 + 1,
                i as u64 + 1,
                &AppOp::list_add(*id, "x", "V").unwrap(),
            )
        })
        .collect();
    let m = Model::from_events(&events);
    assert_eq!(m.find_item_by_prefix("ab"), Ok(ids[2]));
    assert_eq!(m.find_item_by_prefix("ABCDEF00-0"), Ok(ids[2]));
    assert_eq!(
        m.find_item_by_prefix("1234"),
        Err(ItemLookupError::Ambiguous {
            prefix: "1234".into(),
            count: 2
        })
    );
    assert_eq!(
        m.find_item_by_prefix("12345678-0000-4000-8000-000000000002"),
        Ok(ids[1])
    );
    for missing in ["", "ff", "xyz", "abcdef00-0000-4000-8000-0000000000030"] {
        assert_eq!(
            m.find_item_by_prefix(missing),
            Err(ItemLookupError::Missing(missing.into())),
            "{missing:?}"
        );
    }
    // A removed item no longer counts.
    events.push(event(1, 4, 4, &AppOp::list_remove(ids[0])));
    let m = Model::from_events(&events);
    assert_eq!(m.find_item_by_prefix("1234"), Ok(ids[1]));
}

#[test]
fn toggle_flips_the_check_mark() {
    let (mut m, _) = list_of(1);
    let op = m.toggle_op(item(1)).unwrap();
    assert_eq!(op, AppOp::list_check(item(1), true));
    m.apply(&event(2, 1, 10, &op));
    assert_eq!(
        m.toggle_op(item(1)).unwrap(),
        AppOp::list_check(item(1), false)
    );
    assert_eq!(m.toggle_op(item(2)), Err(ListOpError::NoSuchItem(item(2))));
}

#[test]
fn a_second_add_of_one_id_keeps_the_first_adder() {
    let first = event(1, 1, 1, &AppOp::list_add(item(1), "one", "V").unwrap());
    let second = event(2, 1, 5, &AppOp::list_add(item(1), "two", "k").unwrap());
    let (ab, ba) = both_orders(&[], &first, &second);
    assert_eq!(json(&ab), json(&ba));
    let v = ab.item(item(1)).unwrap();
    assert_eq!(
        (v.text, v.pos, v.added_by, v.last_editor),
        ("two", "k", node(1), node(2))
    );
}

// ---------------------------------------------------------------------------------------
// Chat edit, delete, actions and replies

#[test]
fn the_latest_edit_wins_in_any_order_even_before_its_message() {
    let msg = event(1, 1, 1, &AppOp::chat("helo").unwrap());
    let e1 = event(1, 2, 2, &AppOp::chat_edit(1, "hello").unwrap());
    let e2 = event(1, 3, 3, &AppOp::chat_edit(1, "hello!").unwrap());
    let expected = json(&fold(&[&msg, &e1, &e2]));
    for order in [
        [&msg, &e2, &e1],
        [&e2, &e1, &msg],
        [&e1, &msg, &e2],
        [&e2, &msg, &e1],
    ] {
        let m = fold(&order);
        assert_eq!(json(&m), expected);
        let line = m.chat().next().unwrap();
        assert_eq!(
            (line.text, line.edited, line.deleted),
            ("hello!", true, false)
        );
    }
    // Edits are not lines of their own.
    assert_eq!(fold(&[&msg, &e1, &e2]).chat().len(), 1);
}

#[test]
fn a_delete_is_final_and_shows_deleted_to_everyone() {
    let msg = event(1, 1, 1, &AppOp::chat("secret").unwrap());
    let del = event(1, 2, 2, &AppOp::chat_delete(1).unwrap());
    // A faulty author's later edit does not bring it back.
    let late = event(1, 3, 3, &AppOp::chat_edit(1, "back").unwrap());
    let expected = json(&fold(&[&msg, &del, &late]));
    for order in [
        [&late, &del, &msg],
        [&del, &msg, &late],
        [&msg, &late, &del],
    ] {
        let m = fold(&order);
        assert_eq!(json(&m), expected);
        let line = m.chat().next().unwrap();
        assert_eq!(
            (line.text, line.deleted, line.edited),
            (DELETED_TEXT, true, false)
        );
    }
    assert!(!expected.contains("secret"), "{expected}");
    let m = fold(&[&msg, &del]);
    assert_eq!(m.delete_op(node(1), 1), Err(ChatOpError::Deleted));
    assert_eq!(m.last_own_message(node(1)), None);
}

#[test]
fn only_the_author_can_edit_or_delete() {
    let msg = event(1, 1, 1, &AppOp::chat("mine").unwrap());
    // Node 2's edit of "seq 1" names node 2's own seq 1, never node 1's message.
    let other_edit = event(2, 1, 2, &AppOp::chat_edit(1, "hijacked").unwrap());
    let other_del = event(2, 2, 3, &AppOp::chat_delete(1).unwrap());
    let m = fold(&[&msg, &other_edit, &other_del]);
    let line = m.chat().next().unwrap();
    assert_eq!(
        (line.text, line.edited, line.deleted),
        ("mine", false, false)
    );
    assert_eq!(m.chat().len(), 1);
    // The model refuses to build them, too.
    assert_eq!(
        m.edit_op(node(2), 1, "x"),
        Err(ChatOpError::NoSuchMessage {
            origin: node(2),
            seq: 1
        })
    );
    assert!(m.delete_op(node(2), 1).is_err());
    assert!(m.edit_op(node(1), 1, "better").is_ok());
    assert_eq!(m.edit_op(node(1), 1, " mine "), Err(ChatOpError::Unchanged));
}

#[test]
fn an_edit_of_a_seq_that_is_not_a_message_changes_nothing() {
    let nick = event(1, 1, 1, &AppOp::nick("ann").unwrap());
    let edit = event(1, 2, 2, &AppOp::chat_edit(1, "boo").unwrap());
    let m = fold(&[&nick, &edit]);
    assert_eq!(m.chat().len(), 0);
    assert_eq!(m.nick(node(1)), Some("ann"));
}

#[test]
fn actions_are_flagged_lines() {
    let me = event(1, 1, 1, &AppOp::action("waves").unwrap());
    let m = fold(&[&me]);
    let line = m.chat().next().unwrap();
    assert_eq!((line.text, line.action), ("waves", true));
    assert!(json(&m).contains(r#""action":true"#));
}

#[test]
fn a_reply_quotes_the_current_first_line_of_the_answered_message() {
    let q = event(1, 1, 1, &AppOp::chat("lunch?\nat noon").unwrap());
    let nick = event(1, 2, 2, &AppOp::nick("ann").unwrap());
    let a = event(2, 1, 3, &AppOp::reply(node(1), 1, "yes").unwrap());
    let quote = |m: &Model| {
        let line = m.chat().find(|l| l.origin == node(2)).unwrap();
        let quote = line.reply_to.unwrap();
        (
            quote.author.into_owned(),
            quote.first_line.map(str::to_string),
            quote.deleted,
        )
    };
    // The answer arrives first: the quote says the message is not here yet.
    assert_eq!(quote(&fold(&[&a])), (node(1).short(), None, false));
    assert_eq!(
        quote(&fold(&[&a, &q, &nick])),
        ("ann".into(), Some("lunch?".into()), false)
    );
    let edit = event(1, 3, 4, &AppOp::chat_edit(1, "dinner?").unwrap());
    assert_eq!(quote(&fold(&[&a, &q, &edit])).1.as_deref(), Some("dinner?"));
    let del = event(1, 4, 5, &AppOp::chat_delete(1).unwrap());
    assert_eq!(
        quote(&fold(&[&del, &a, &q])),
        (node(1).short(), Some(DELETED_TEXT.into()), true)
    );
    let m = fold(&[&q]);
    assert!(m.reply_op(node(1), 1, "ok").is_ok());
    assert!(m.reply_op(node(1), 9, "ok").is_err());
}

#[test]
fn duplicate_names_carry_a_short_id_in_chat() {
    let (a, b) = (0x5bac_u128 << 112, 0x1234_u128 << 112);
    let e = [
        event(a, 1, 1, &AppOp::nick("me@vm").unwrap()),
        event(b, 1, 1, &AppOp::nick("me@vm").unwrap()),
        event(a, 2, 2, &AppOp::chat("hi").unwrap()),
    ];
    let m = Model::from_events(&e);
    assert_eq!(m.chat().next().unwrap().author, "me@vm·5bac");
    assert_eq!(m.display_name(node(b)), "me@vm·1234");
    assert_eq!(
        m.display_peer_name(node(7), "me@vm"),
        format!("me@vm·{}", &node(7).short()[..4])
    );
    assert_eq!(m.display_peer_name(node(7), "cy"), "cy");
}

#[test]
fn a_file_offer_is_a_chat_line_with_its_file_and_is_listed() {
    let id = gossip_blob_id(3);
    let offer = AppOp::file(id, "report.pdf", 123_456, "application/pdf").unwrap();
    let m = Model::from_events(&[
        event(1, 1, 1, &AppOp::chat("look").unwrap()),
        event(1, 2, 2, &offer),
    ]);
    let files: Vec<_> = m.files().collect();
    assert_eq!(files.len(), 1);
    let f = files[0].file.unwrap();
    assert_eq!((f.name.as_str(), f.size), ("report.pdf", 123_456));
    assert_eq!(files[0].text, "report.pdf");
    assert_eq!(m.find_files(&id.to_hex()[..8]).len(), 1);
    assert!(m.find_files("ffff").is_empty());
    let deleted = Model::from_events(&[
        event(1, 2, 2, &offer),
        event(1, 3, 3, &AppOp::chat_delete(2).unwrap()),
    ]);
    assert_eq!(deleted.files().count(), 0, "a deleted offer is not listed");
}

fn gossip_blob_id(b: u8) -> crate::protocol::blob::BlobId {
    crate::protocol::blob::BlobId([b; 32])
}
