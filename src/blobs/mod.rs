//! Files shared in a room: the blob store, serving it to peers, and fetching from them.
//!
//! The rules (ids, manifests, which chunk from whom, what a bad chunk costs its sender) are
//! in [`crate::protocol::blob`]; this module holds the files and the async loops:
//! - [`store`]: `<store>/blobs/`, with limits and at-rest sealing;
//! - [`serve`]: the node's [`crate::node::BlobServer`] over a store;
//! - [`fetch`]: fetching a blob from several peers at once, resumable;
//! - [`name`]: safe names and never-overwriting save paths;
//! - [`seal`]: the at-rest key of a private room's blobs.

pub mod fetch;
pub mod name;
pub mod seal;
pub mod serve;
pub mod store;

pub use fetch::{FetchError, FetchOptions, Progress, fetch};
pub use name::{safe_name, unique_path};
pub use seal::BlobKey;
pub use serve::StoreServer;
pub use store::{BlobError, BlobLimits, BlobStore};
