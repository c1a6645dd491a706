//! The board's words (`board::words`, shared with the sources' own view
//! parts) and those of the pushed half: a box's last boot.

use super::json::BoxStatus;
pub use crate::board::words::*;

/// A box's last boot in words: "never reported", "restart loop: 5 boots
/// in the last hour", or "up 12 days".
pub fn last_boot(status: BoxStatus, last_heartbeat: Option<f64>, boots: u64, now: f64) -> String {
    match (status, last_heartbeat) {
        (BoxStatus::RestartLoop, _) => format!("restart loop: {boots} boots in the last hour"),
        (BoxStatus::Reported, Some(t)) => format!("up {}", duration_words(now - t)),
        _ => "never reported".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boots_read_alike_everywhere() {
        assert_eq!(
            last_boot(BoxStatus::Reported, Some(0.0), 1, 86_400.0 * 3.0),
            "up 3 days"
        );
        assert_eq!(
            last_boot(BoxStatus::RestartLoop, Some(0.0), 5, 10.0),
            "restart loop: 5 boots in the last hour"
        );
        assert_eq!(
            last_boot(BoxStatus::NeverReported, None, 0, 10.0),
            "never reported"
        );
        assert_eq!(
            last_boot(BoxStatus::Reported, None, 0, 10.0),
            "never reported"
        );
    }
}
