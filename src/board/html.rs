//! The status page's small pieces, shared by the page and the sources' view
//! parts. maud escapes every interpolated value.

use maud::{html, Markup};

use super::State;

/// A state as a coloured label that also says it in words.
pub fn badge(s: State, word: &str) -> Markup {
    html! { span class={ "st st-" (s.as_str()) } { (word) } }
}

/// A state as a coloured label naming the state.
pub fn state(s: State) -> Markup {
    badge(s, s.as_str())
}

/// A value, or a dash when there is none.
pub fn opt<T: std::fmt::Display>(v: Option<T>) -> Markup {
    html! {
        @match v {
            Some(v) => (v),
            None => "—",
        }
    }
}

/// One titled block of an environment's card (certificates, instances …):
/// nothing when there are no items.
pub fn block(title: &str, items: &[Markup]) -> Markup {
    html! {
        @if !items.is_empty() {
            div {
                b { (title) }
                ul {
                    @for i in items { (i) }
                }
            }
        }
    }
}
