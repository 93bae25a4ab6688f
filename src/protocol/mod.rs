//! The protocol core, free of I/O: events, clocks, messages, the exchange logic, peer
//! selection, and the [`engine`] that makes every gossip decision of a node. Everything
//! here is a pure function or a plain state machine (time and randomness are inputs), so
//! the node, the tests and the simulator all drive the same code.

pub mod blob;
pub mod bucket;
pub mod chain;
pub mod clock;
pub mod codec;
pub mod engine;
pub mod ephemeral;
pub mod equivocation;
pub mod event;
pub mod exchange;
pub mod hlc;
pub mod message;
pub mod own_seq;
pub mod peer;
pub mod peer_record;
pub mod reconcile;
pub mod runs;
pub mod selection;
pub mod validity;

pub use clock::{ClockOrdering, VectorClock};
pub use engine::{Engine, EngineConfig, Input, Output};
pub use ephemeral::{Ephemeral, ReceivedEphemeral};
pub use event::{Event, NodeId};
pub use exchange::{Batch, Limits, Want};
pub use hlc::Hlc;
pub use message::{Message, SeqRange};
pub use peer::{Peer, PeerAddr};
pub use selection::{Candidate, PeerSelectionStrategy, Selector};
