//! Public mode's redaction: the one function that hides instance ids, IP
//! addresses, allocation ids, wallet addresses and URLs from the fleet
//! model, as fields and inside free text. Each source's view part redacts
//! its own fields (`redact` in its `view` module); the page renders the
//! redacted model, so it cannot show what this removed.

use super::json::Fleet;
pub use crate::board::Redactor;

impl Redactor {
    /// Public mode: hides instance ids, IP addresses, allocation ids, wallet
    /// addresses and URLs (run URLs among them) — as fields, and inside every
    /// free-text field. The page renders the redacted model, so it cannot show
    /// what this removed.
    pub fn redact(&self, f: &mut Fleet) {
        f.public = true;
        for e in &mut f.environments {
            e.parts.redact(self);
            // It names an allocation or instance id.
            if e.discovered.is_some() {
                e.discovered = Some(String::new());
            }
            for d in &mut e.drift {
                d.detail = self.scrub(&d.detail);
            }
        }
        for s in &mut f.sources {
            self.scrub_opt(&mut s.last_error);
        }
    }
}
