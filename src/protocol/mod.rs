//! The protocol core, free of I/O: events, clocks, messages, the exchange logic and peer
//! selection. Everything here is a pure function or a plain state machine, so the node,
//! the tests and the simulator all drive the same code.

pub mod clock;
pub mod codec;
pub mod equivocation;
pub mod event;
pub mod exchange;
pub mod hlc;
pub mod message;
pub mod own_seq;
pub mod runs;
pub mod selection;
pub mod validity;

pub use clock::{ClockOrdering, VectorClock};
pub use event::{Event, NodeId, now_ms};
pub use exchange::{Batch, Limits, Want};
pub use hlc::Hlc;
pub use message::Message;
pub use selection::{Candidate, PeerSelectionStrategy, Selector};
