//! Public mode's scrubbing of free text: the patterns of every internal
//! value (URLs, wallet addresses, AWS ids, IP addresses), compiled once at
//! start-up. `views::redact` applies it to the fleet model, each source's
//! view part to its own fields.

use regex::Regex;

/// What a hidden value is replaced with inside free text in public mode.
pub const HIDDEN: &str = "[hidden]";

/// Finds internal values that may hide inside free text (error messages,
/// reasons, drift details): URLs, wallet and contract addresses, AWS ids and
/// IP addresses. Built once at start-up (`Redactor::new`), so a pattern that
/// does not compile in the build that ships stops start-up with a message
/// instead of failing a request.
#[derive(Debug, Clone)]
pub struct Redactor {
    internal: Regex,
}

impl Redactor {
    /// Compiles the patterns.
    pub fn new() -> Result<Redactor, regex::Error> {
        let internal = Regex::new(concat!(
            r"(?i)[a-z][a-z0-9+.-]*://[^\s]+", // URLs (run URLs, RPC URLs)
            r"|\b0x[0-9a-f]{40}\b",            // wallet / contract addresses
            r"|\b(?:i|eipalloc|eni|vpc|subnet)-[0-9a-f]{8,17}\b", // AWS ids
            r"|\b\d{1,3}(?:\.\d{1,3}){3}\b",   // IPv4
            r"|\b(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{1,4}\b", // IPv6, full
            r"|(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{0,4}::[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*", // IPv6, compressed
        ))?;
        Ok(Redactor { internal })
    }

    /// Replaces every internal value inside free text with `[hidden]`.
    pub fn scrub(&self, text: &str) -> String {
        self.internal.replace_all(text, HIDDEN).into_owned()
    }

    /// `scrub` on an optional text, in place.
    pub fn scrub_opt(&self, text: &mut Option<String>) {
        if let Some(t) = text {
            *t = self.scrub(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_hides_internal_values_in_text_and_keeps_the_rest() {
        let cases = [
            (
                "connect to 10.0.3.7:443: refused",
                "connect to [hidden]:443: refused",
            ),
            (
                "run https://github.com/o/r/actions/runs/42 holds it",
                "run [hidden] holds it",
            ),
            (
                "deployer 0x52908400098527886E0F7030069857D2E4169EE7 is poor",
                "deployer [hidden] is poor",
            ),
            (
                "instance i-0abc1234def567890 stopped",
                "instance [hidden] stopped",
            ),
            ("A record 2001:db8::1 differs", "A record [hidden] differs"),
            ("listening on ::1", "listening on [hidden]"),
            (
                "status 503 at 11:30:05, commit 4f2c9e1",
                "status 503 at 11:30:05, commit 4f2c9e1",
            ),
            ("std::io error", "std::io error"),
        ];
        let redactor = Redactor::new().unwrap();
        for (input, want) in cases {
            assert_eq!(redactor.scrub(input), want, "{input}");
        }
    }
}
