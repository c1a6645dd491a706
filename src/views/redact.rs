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
            for c in &mut e.changes {
                let mut ev = crate::history::Event {
                    id: 0,
                    at: c.at,
                    stack: e.stack.clone(),
                    kind: c.kind,
                    subject: std::mem::take(&mut c.subject),
                    from: c.from.take(),
                    to: c.to.take(),
                    detail: c.detail.take(),
                    changes: 0,
                };
                ev.redact(self);
                (c.subject, c.from, c.to, c.detail) = (ev.subject, ev.from, ev.to, ev.detail);
            }
        }
        for s in &mut f.sources {
            self.scrub_opt(&mut s.last_error);
        }
    }
}
