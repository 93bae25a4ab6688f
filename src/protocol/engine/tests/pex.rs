//! Peer exchange rules: own record signed and shared on a join, forged records refused,
//! new peers met at once.

use super::*;
use crate::auth::{NodeIdentity, verify_peer_record};
use crate::protocol::peer_record::PeerRecord;

fn with_identity(identity: &NodeIdentity) -> Node {
    let id = identity.node_id();
    let mut c = config(1);
    c.node_id = id;
    c.peer_exchange = true;
    let mut n = Node::new(1);
    n.e = Engine::new(c, 1, Some(Box::new(identity.clone())));
    n.start();
    n
}

fn from(id: &NodeIdentity, message: Message) -> Input {
    Input::Received {
        from: Peer::new(id.node_id(), "10.0.0.2:4000"),
        message,
        request: None,
        wire_bytes: 0,
    }
}

fn peers_sent(outs: &[Output]) -> Vec<(NodeId, Vec<PeerRecord>)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: Message::Peers { records, .. },
            } => Some((to.id, records.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn the_own_record_is_signed_and_shared_with_a_peer_that_joins() {
    let (ia, ib) = (
        NodeIdentity::from_secret([1; 32]),
        NodeIdentity::from_secret([2; 32]),
    );
    let mut a = with_identity(&ia);
    a.run(Input::OwnAddrs(vec![
        "10.0.0.1:4000".into(),
        "bogus".into(),
        "0.0.0.0:4000".into(),
    ]));
    let own = a.e.pex().own().cloned().expect("own record");
    assert_eq!(
        own.addrs,
        vec!["10.0.0.1:4000".to_string()],
        "unusable addresses dropped"
    );
    verify_peer_record(&own).expect("signed by a");
    // The same addresses again: no new record.
    a.run(Input::OwnAddrs(vec!["10.0.0.1:4000".into()]));
    assert_eq!(a.e.pex().own(), Some(&own));
    // b speaks for the first time: it joins and is told whom a knows.
    let outs = a.run(from(&ib, Message::Prune { from: ib.node_id() }));
    let sent = peers_sent(&outs);
    assert_eq!(sent.len(), 1, "{outs:?}");
    assert_eq!(sent[0].0, ib.node_id());
    assert_eq!(sent[0].1, vec![own]);
}

#[test]
fn forged_records_are_refused_and_a_genuine_one_is_met_at_once() {
    let (ia, ib, ic) = (
        NodeIdentity::from_secret([1; 32]),
        NodeIdentity::from_secret([2; 32]),
        NodeIdentity::from_secret([3; 32]),
    );
    let mut a = with_identity(&ia);
    let genuine = ic.sign_peer_record(10, vec!["10.0.0.3:4000".into()]);
    // b points c's id at b's own address: c never signed that.
    let mut moved = genuine.clone();
    moved.addrs = vec!["10.0.0.66:4000".into()];
    moved.epoch = 11;
    // b signs a record in c's name with its own key.
    let mut wrong_key = ib.sign_peer_record(12, vec!["10.0.0.66:4000".into()]);
    wrong_key.node_id = ic.node_id();
    // A record of a itself.
    let of_a = ia.sign_peer_record(13, vec!["10.0.0.66:4000".into()]);
    let outs = a.run(from(
        &ib,
        Message::Peers {
            from: ib.node_id(),
            records: vec![moved, wrong_key, of_a, genuine.clone()],
        },
    ));
    let stats = a.e.pex().stats;
    assert_eq!(stats.records_refused, 3);
    assert_eq!(stats.records_accepted, 1);
    let c = a.e.peers().get(&ic.node_id()).expect("c added");
    assert_eq!(c.addr.0, "10.0.0.3:4000", "at its own signed address");
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Request { to, .. } if to.id == ic.node_id())),
        "c is contacted at once: {outs:?}"
    );
    // The refused ones left no trace: a's own entry and c's address are untouched.
    assert!(a.e.peers().get(&ia.node_id()).is_none());
    assert_eq!(a.e.pex().book().get(&ic.node_id()), Some(&genuine));
}

#[test]
fn without_an_identity_records_are_ignored() {
    let ic = NodeIdentity::from_secret([3; 32]);
    let mut n = Node::new(1);
    let mut c = config(1);
    c.peer_exchange = true;
    n.e = Engine::new(c, 1, None);
    n.start();
    n.run(Input::OwnAddrs(vec!["10.0.0.1:4000".into()]));
    assert!(n.e.pex().own().is_none());
    n.run(Input::Received {
        from: peer(2),
        message: Message::Peers {
            from: NodeId::from_u128(2),
            records: vec![ic.sign_peer_record(1, vec!["10.0.0.3:4000".into()])],
        },
        request: None,
        wire_bytes: 0,
    });
    assert!(n.e.peers().get(&ic.node_id()).is_none());
}

#[test]
fn a_new_record_of_a_live_peer_is_relayed_once_to_the_others() {
    let (ia, ib, ic) = (
        NodeIdentity::from_secret([1; 32]),
        NodeIdentity::from_secret([2; 32]),
        NodeIdentity::from_secret([3; 32]),
    );
    let mut a = with_identity(&ia);
    for i in [&ib, &ic] {
        a.run(from(i, Message::Prune { from: i.node_id() }));
    }
    // c joined through a: its record goes on to b, not back to c.
    let record = ic.sign_peer_record(10, vec!["10.0.0.3:4000".into()]);
    let outs = a.run(from(
        &ic,
        Message::Peers {
            from: ic.node_id(),
            records: vec![record.clone()],
        },
    ));
    assert_eq!(peers_sent(&outs), vec![(ib.node_id(), vec![record])]);
    // Re-signed at once: kept, not relayed again within the relay period.
    let again = ic.sign_peer_record(11, vec!["10.0.0.3:4000".into()]);
    let outs = a.run(from(
        &ic,
        Message::Peers {
            from: ic.node_id(),
            records: vec![again.clone()],
        },
    ));
    assert!(peers_sent(&outs).is_empty(), "{outs:?}");
    assert_eq!(a.e.pex().book().get(&ic.node_id()), Some(&again));
}
