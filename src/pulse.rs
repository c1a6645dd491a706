//! What the boxes pushed, as read from the store (not yet implemented).

use serde::Serialize;

/// The pushed half of the snapshot.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pulse {}
