//! The chain source's part of the board: the deployer's balance and the
//! registry's registration of an environment.

use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::ChainFacts;
use crate::board::html::{badge, block};
use crate::board::{Redactor, State};
use crate::inventory::Environment;
use crate::sources::{BoardPart, Facts};

/// What the chain says about an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    pub block_number: u64,
    pub symbol: String,
    /// `null` in public mode.
    pub deployer: Option<String>,
    /// In whole tokens; `null` when not read.
    pub balance: Option<f64>,
    /// `null` when no registration is checked.
    pub registered: Option<bool>,
}

/// `stack`'s part; `None` when neither its balance nor its registration
/// is watched.
pub fn chain(chain: Option<&ChainFacts>, stack: &str) -> Option<Chain> {
    let c = chain?;
    let balance = c.balances.iter().find(|b| b.stack == stack);
    let registration = c.registrations.iter().find(|r| r.stack == stack);
    if balance.is_none() && registration.is_none() {
        return None;
    }
    Some(Chain {
        block_number: c.block_number,
        symbol: c.symbol.clone(),
        deployer: balance.map(|b| b.address.clone()),
        balance: balance.map(|b| b.balance),
        registered: registration.map(|r| r.registered),
    })
}

impl Chain {
    /// Public mode: no wallet address.
    pub fn redact(&mut self, _r: &Redactor) {
        self.deployer = None;
    }

    /// What it does to the environment's state: a missing registration
    /// breaks the environment.
    pub fn state(&self) -> Option<State> {
        (self.registered == Some(false)).then_some(State::Red)
    }
}

/// The chain block of an environment's card.
pub fn page(chain: Option<&Chain>) -> Markup {
    let Some(c) = chain else {
        return html! {};
    };
    let mut items = Vec::new();
    if let Some(b) = c.balance {
        items.push(html! { li { "deployer balance " (b) " " (c.symbol) } });
    }
    if let Some(r) = c.registered {
        items.push(html! {
            li {
                "registration "
                @if r { (badge(State::Green, "present")) } @else { (badge(State::Red, "missing")) }
            }
        });
    }
    items.push(html! { li class="meta" { "at block " (c.block_number) } });
    block("Chain", &items)
}

/// This source's part of an environment: its deployer balance and registry registration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Deployer balance and registry registration; `null` when not watched.
    pub chain: Option<Chain>,
}

impl BoardPart for Part {
    fn build(facts: &Facts, env: &Environment, _now: f64) -> Self {
        Part {
            chain: chain(facts.get(), env.name.as_str()),
        }
    }
    fn state(&self) -> Option<State> {
        self.chain.as_ref().and_then(Chain::state)
    }
    fn redact(&mut self, r: &Redactor) {
        if let Some(c) = &mut self.chain {
            c.redact(r);
        }
    }
    fn page(&self) -> Option<Markup> {
        Some(page(self.chain.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WALLET: &str = "0x00000000000000000000000000000000000000a1";

    fn env(name: &str) -> Environment {
        crate::testing::environment(name, "")
    }

    fn facts() -> Facts {
        Facts::default().with("chain", super::super::tests::facts())
    }

    #[test]
    fn balance_and_registration_show_for_the_environment_watched() {
        let mut prod = Part::build(&facts(), &env("prod"), 0.0);
        let c = prod.chain.clone().unwrap();
        assert_eq!(
            (
                c.block_number,
                c.symbol.as_str(),
                c.deployer.as_deref(),
                c.balance,
                c.registered
            ),
            (1234, "ETH", Some(WALLET), Some(1.5), Some(true))
        );
        assert_eq!(prod.state(), None);
        assert_eq!(
            prod.page().unwrap().into_string(),
            "<div><b>Chain</b><ul><li>deployer balance 1.5 ETH</li>\
             <li>registration <span class=\"st st-green\">present</span></li>\
             <li class=\"meta\">at block 1234</li></ul></div>"
        );
        prod.redact(&Redactor::new().unwrap());
        assert_eq!(prod.chain.unwrap().deployer, None);
    }

    #[test]
    fn a_missing_registration_is_red_and_an_unwatched_environment_has_no_part() {
        let staging = Part::build(&facts(), &env("staging"), 0.0);
        let c = staging.chain.clone().unwrap();
        assert_eq!(
            (c.deployer, c.balance, c.registered),
            (None, None, Some(false))
        );
        assert_eq!(staging.state(), Some(State::Red));
        assert_eq!(
            staging.page().unwrap().into_string(),
            "<div><b>Chain</b><ul><li>registration <span class=\"st st-red\">missing</span></li>\
             <li class=\"meta\">at block 1234</li></ul></div>"
        );
        let dev = Part::build(&facts(), &env("dev"), 0.0);
        assert_eq!(dev.chain, None);
        assert_eq!(dev.state(), None);
        assert_eq!(dev.page().unwrap().into_string(), "");
        assert_eq!(chain(None, "prod"), None);
        let mut unwatched = Part::default();
        unwatched.redact(&Redactor::new().unwrap());
        assert_eq!(unwatched, Part::default());
    }
}
