//! The board's vocabulary, shared by the views and by each source's own view
//! part (`sources::NAME::view`): the states a thing on the board can be in,
//! the words for ages, times and latencies, the page's small HTML pieces,
//! and public mode's scrubbing of free text. Depends on no other module.

use serde::{Deserialize, Serialize};

pub mod html;
mod scrub;
pub mod words;

pub use scrub::{Redactor, HIDDEN};

/// Share of a window a service was available (green or degraded), over the
/// part of the window its state was known; `None` when it was not known at
/// all.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Availability {
    #[serde(rename = "24h")]
    pub day: Option<f64>,
    #[serde(rename = "30d")]
    pub month: Option<f64>,
}

/// A state as text, worst last. `unknown` means fleetpulse has no reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Green,
    Unknown,
    Degraded,
    Red,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Green => "green",
            State::Unknown => "unknown",
            State::Degraded => "degraded",
            State::Red => "red",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_state_orders_unknown_between_green_and_degraded() {
        assert!(State::Green < State::Unknown);
        assert!(State::Unknown < State::Degraded);
        assert!(State::Degraded < State::Red);
    }
}
