//! Human views of a snapshot: the fleet JSON (`/api/v1/fleet`) and the
//! status page (`/`). Both are pure functions of a `Snapshot`: the page
//! renders the same (possibly redacted) model the JSON serves, so public mode
//! hides the same things in both.

pub mod json;
pub mod page;
pub mod redact;
pub mod words;

pub use words::{ago_words, duration_words, utc};
