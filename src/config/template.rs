//! Stack templates: a stack's shape written once, instantiated per
//! environment.
//!
//! ```yaml
//! templates:
//!   stack:
//!     vars: { domain: example.net }          # defaults
//!     services:
//!       - name: broker
//!         healthz: https://${name}.${domain}/broker/healthz
//!     aws_tag: { key: env, value: "${name}" }
//! environments:
//!   - name: test-1
//!     template: stack
//!     vars: { domain: test.example.net }
//!     drop: [bundler]                         # services it does not run
//!     services:                               # added, or merged by name
//!       - name: broker
//!         tls: broker.test.example.net:443
//! ```
//!
//! Expansion happens on the YAML tree before it is read, so every node
//! keeps its own position: an error inside a template is reported at the
//! template's line, and says which environment instantiated it. A template
//! may build on another (`template:` inside it). `${name}` is always the
//! environment's name; `$${` writes a literal `${`.

use std::collections::BTreeMap;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{Node, Span};

use crate::inventory::Discovered;

use super::yaml::{Document, Origin};

/// Keys an environment uses to instantiate a template; they are consumed
/// by the expansion and never reach the inventory.
const TEMPLATE: &str = "template";
const VARS: &str = "vars";
const DROP: &str = "drop";

/// A problem found while expanding: where, and what.
struct Found {
    span: Span,
    /// The field path, in the file's terms.
    field: String,
    message: String,
}

fn note(found: &mut Vec<Found>, span: Span, field: impl Into<String>, message: impl Into<String>) {
    found.push(Found {
        span,
        field: field.into(),
        message: message.into(),
    });
}

impl Document {
    /// Expands every environment that names a template, and removes the
    /// `templates` section; every problem is recorded at its node.
    pub fn expand_templates(&mut self) {
        let mut found: Vec<Found> = Vec::new();
        let mut origins = Vec::new();
        if let Node::Mapping(root) = &mut self.root {
            let templates = take(root, "templates");
            let defs = definitions(templates, &mut found);
            let mut resolved = BTreeMap::new();
            for name in defs.keys() {
                resolve(name, &defs, &mut resolved, &mut Vec::new(), &mut found);
            }
            // A discovery rule's template must exist now, not when a match comes.
            if let Some(Node::Sequence(rules)) = root
                .get_node("sources")
                .and_then(Node::as_mapping)
                .and_then(|m| m.get_node("discovery"))
            {
                for (i, r) in rules.iter().enumerate() {
                    if let Some(t) = r.as_mapping().and_then(|m| m.get_scalar(TEMPLATE)) {
                        if !defs.contains_key(t.as_str()) {
                            found.push(unknown_template(
                                t,
                                format!("sources.discovery[{i}].template"),
                                &defs,
                            ));
                        }
                    }
                }
            }
            if let Some(Node::Sequence(envs)) = root.get_mut("environments") {
                for (i, env) in envs.iter_mut().enumerate() {
                    if let Node::Mapping(m) = env {
                        if let Some(origin) = instantiate(i, m, &defs, &resolved, &mut found) {
                            origins.push(origin);
                        }
                    }
                }
            }
        }
        for f in found {
            self.problem_at(&f.span, f.field, f.message);
        }
        self.origins = origins;
    }
}

/// The `templates` mapping: name → (its key, its body).
fn definitions(
    templates: Option<(MarkedScalarNode, Node)>,
    found: &mut Vec<Found>,
) -> BTreeMap<String, (MarkedScalarNode, MarkedMappingNode)> {
    let mut out = BTreeMap::new();
    match templates {
        None => {}
        Some((_, Node::Mapping(m))) => {
            for (name, body) in m.iter() {
                match body {
                    Node::Mapping(b) => {
                        out.insert(name.as_str().to_string(), (name.clone(), b.clone()));
                    }
                    other => note(
                        found,
                        *other.span(),
                        format!("templates.{}", name.as_str()),
                        format!(
                            "template {:?} must be a mapping of environment fields",
                            name.as_str()
                        ),
                    ),
                }
            }
        }
        Some((key, _)) => note(
            found,
            *key.span(),
            "templates",
            "templates must be a mapping of template name to environment fields".to_string(),
        ),
    }
    out
}

/// A template with the templates it builds on merged in (`None` when one
/// of them is missing or they loop; the problem is recorded once).
fn resolve(
    name: &str,
    defs: &BTreeMap<String, (MarkedScalarNode, MarkedMappingNode)>,
    resolved: &mut BTreeMap<String, Option<MarkedMappingNode>>,
    chain: &mut Vec<String>,
    found: &mut Vec<Found>,
) -> Option<MarkedMappingNode> {
    if let Some(r) = resolved.get(name) {
        return r.clone();
    }
    let (_, body) = defs.get(name)?;
    let mut body = body.clone();
    let out = match take(&mut body, TEMPLATE) {
        None => Some(body),
        Some((_, Node::Scalar(base)))
            if chain.iter().any(|c| c == base.as_str()) || base.as_str() == name =>
        {
            let mut path: Vec<&str> = chain.iter().map(String::as_str).collect();
            path.push(name);
            path.push(base.as_str());
            note(
                found,
                *base.span(),
                format!("templates.{name}.template"),
                format!(
                    "template {:?} includes itself ({})",
                    base.as_str(),
                    path.join(" → ")
                ),
            );
            None
        }
        Some((_, Node::Scalar(base))) if !defs.contains_key(base.as_str()) => {
            found.push(unknown_template(
                &base,
                format!("templates.{name}.template"),
                defs,
            ));
            None
        }
        Some((_, Node::Scalar(base))) => {
            chain.push(name.to_string());
            let b = resolve(base.as_str(), defs, resolved, chain, found);
            chain.pop();
            b.map(|b| merge(b, body))
        }
        Some((key, _)) => {
            note(
                found,
                *key.span(),
                format!("templates.{name}.template"),
                "must name a template",
            );
            None
        }
    };
    resolved.insert(name.to_string(), out.clone());
    out
}

fn unknown_template(
    name: &MarkedScalarNode,
    field: String,
    defs: &BTreeMap<String, (MarkedScalarNode, MarkedMappingNode)>,
) -> Found {
    let known: Vec<&str> = defs.keys().map(String::as_str).collect();
    Found {
        span: *name.span(),
        field,
        message: if known.is_empty() {
            format!(
                "no template named {:?} (no templates are defined)",
                name.as_str()
            )
        } else {
            format!(
                "no template named {:?} (defined: {})",
                name.as_str(),
                known.join(", ")
            )
        },
    }
}

/// Expands one environment in place; what it was expanded from, if it
/// names a template.
fn instantiate(
    index: usize,
    env: &mut MarkedMappingNode,
    defs: &BTreeMap<String, (MarkedScalarNode, MarkedMappingNode)>,
    resolved: &BTreeMap<String, Option<MarkedMappingNode>>,
    found: &mut Vec<Found>,
) -> Option<Origin> {
    let at = format!("environments[{index}]");
    let env_name = env.get_scalar("name").map(|n| n.as_str().to_string());
    let template = take(env, TEMPLATE);
    let own_vars = take(env, VARS);
    let drop = take(env, DROP);

    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut origin = None;
    let mut expanded = None;
    match template {
        None => {
            if let Some((key, _)) = &drop {
                note(
                    found,
                    *key.span(),
                    format!("{at}.drop"),
                    "drop needs a template to drop services from",
                );
            }
        }
        Some((_, Node::Scalar(t))) => {
            if !defs.contains_key(t.as_str()) {
                found.push(unknown_template(&t, format!("{at}.template"), defs));
            } else if let Some(Some(body)) = resolved.get(t.as_str()) {
                let mut body = body.clone();
                if let Some((_, Node::Mapping(defaults))) = take(&mut body, VARS) {
                    read_vars(
                        &defaults,
                        &format!("templates.{}.vars", t.as_str()),
                        &mut vars,
                        found,
                    );
                }
                let span = defs[t.as_str()].1.span();
                origin = Some(Origin {
                    index,
                    environment: env_name.clone().unwrap_or_default(),
                    template: t.as_str().to_string(),
                    lines: (
                        span.start().map_or(0, |m| m.line()),
                        span.end().map_or(usize::MAX, |m| m.line()),
                    ),
                });
                let own = std::mem::replace(env, MarkedMappingNode::new_empty(*env.span()));
                let mut merged = merge(body, own);
                merged.to_front("name");
                if let Some((_, list)) = &drop {
                    drop_services(&mut merged, list, &format!("{at}.drop"), t.as_str(), found);
                }
                expanded = Some(merged);
            }
        }
        Some((key, _)) => note(
            found,
            *key.span(),
            format!("{at}.template"),
            "must name a template",
        ),
    }
    if let Some(m) = expanded {
        *env = m;
    }
    if let Some((key, node)) = own_vars {
        match node {
            Node::Mapping(m) => read_vars(&m, &format!("{at}.vars"), &mut vars, found),
            _ => note(
                found,
                *key.span(),
                format!("{at}.vars"),
                "vars must be a mapping of variable name to value",
            ),
        }
    }
    if let Some(n) = &env_name {
        vars.insert("name".to_string(), n.clone());
    }
    let context = Context {
        environment: env_name.as_deref().unwrap_or("?"),
        template: origin.as_ref(),
    };
    for (key, value) in env.iter_mut() {
        if key.as_str() != "name" {
            substitute(
                value,
                &format!("{at}.{}", key.as_str()),
                &vars,
                &context,
                found,
            );
        }
    }
    origin
}

fn read_vars(
    m: &MarkedMappingNode,
    at: &str,
    vars: &mut BTreeMap<String, String>,
    found: &mut Vec<Found>,
) {
    for (k, v) in m.iter() {
        match v {
            Node::Scalar(s) => {
                vars.insert(k.as_str().to_string(), s.as_str().to_string());
            }
            other => note(
                found,
                *other.span(),
                format!("{at}.{}", k.as_str()),
                "a variable must be a single value",
            ),
        }
    }
}

/// `over` laid on `base`: its keys replace the base's, except `services`,
/// which are merged by name (a service of the same name has its fields
/// replaced one by one; a new one is appended) and `vars`, merged by key.
fn merge(mut base: MarkedMappingNode, over: MarkedMappingNode) -> MarkedMappingNode {
    for (k, v) in over.iter() {
        let merged = match (k.as_str(), base.get_mut(k.as_str()), v) {
            ("services", Some(Node::Sequence(b)), Node::Sequence(o)) => {
                Some(Node::Sequence(merge_services(b.clone(), o)))
            }
            (VARS, Some(Node::Mapping(b)), Node::Mapping(o)) => {
                Some(Node::Mapping(merge(b.clone(), o.clone())))
            }
            _ => None,
        };
        let value = merged.unwrap_or_else(|| v.clone());
        match base.get_mut(k.as_str()) {
            Some(slot) => *slot = value,
            None => {
                base.insert(k.clone(), value);
            }
        }
    }
    base
}

fn service_name(n: &Node) -> Option<&str> {
    n.as_mapping()
        .and_then(|m| m.get_scalar("name"))
        .map(|s| s.as_str())
}

fn merge_services(mut base: MarkedSequenceNode, over: &MarkedSequenceNode) -> MarkedSequenceNode {
    for o in over.iter() {
        let same = service_name(o)
            .and_then(|name| base.iter().position(|b| service_name(b) == Some(name)));
        match (same, o) {
            (Some(i), Node::Mapping(om)) => {
                if let Node::Mapping(bm) = &base[i] {
                    base[i] = Node::Mapping(merge(bm.clone(), om.clone()));
                }
            }
            _ => base.push(o.clone()),
        }
    }
    base
}

fn drop_services(
    env: &mut MarkedMappingNode,
    list: &Node,
    at: &str,
    template: &str,
    found: &mut Vec<Found>,
) {
    let Node::Sequence(names) = list else {
        note(
            found,
            *list.span(),
            at,
            "drop must be a list of service names",
        );
        return;
    };
    let Some(Node::Sequence(services)) = env.get_mut("services") else {
        for n in names.iter() {
            note(
                found,
                *n.span(),
                at,
                format!("template {template:?} has no services to drop"),
            );
        }
        return;
    };
    for (j, n) in names.iter().enumerate() {
        let name = n.as_scalar().map(|s| s.as_str()).unwrap_or("");
        match services.iter().position(|s| service_name(s) == Some(name)) {
            Some(i) => {
                services.remove(i);
            }
            None => note(
                found,
                *n.span(),
                format!("{at}[{j}]"),
                format!("template {template:?} has no service {name:?} to drop"),
            ),
        }
    }
}

/// Whose variables a substitution uses, for its messages.
struct Context<'a> {
    environment: &'a str,
    template: Option<&'a Origin>,
}

/// Replaces `${var}` in every scalar under `node`.
fn substitute(
    node: &mut Node,
    at: &str,
    vars: &BTreeMap<String, String>,
    context: &Context<'_>,
    found: &mut Vec<Found>,
) {
    match node {
        Node::Scalar(s) => {
            if !s.as_str().contains('$') {
                return;
            }
            match expand(s.as_str(), vars) {
                Ok(text) => {
                    let coerce = s.may_coerce();
                    let mut new = MarkedScalarNode::new(*s.span(), text);
                    new.set_coerce(coerce);
                    *s = new;
                }
                Err(message) => {
                    let line = s.span().start().map_or(0, |m| m.line());
                    let message = match context.template {
                        Some(o) if (o.lines.0..=o.lines.1).contains(&line) => format!(
                            "{message} (in template {:?}, instantiated by environment {:?})",
                            o.template, o.environment
                        ),
                        _ => format!("{message} (in environment {:?})", context.environment),
                    };
                    note(found, *s.span(), at, message)
                }
            }
        }
        Node::Sequence(seq) => {
            for (i, n) in seq.iter_mut().enumerate() {
                substitute(n, &format!("{at}[{i}]"), vars, context, found);
            }
        }
        Node::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                substitute(v, &format!("{at}.{}", k.as_str()), vars, context, found);
            }
        }
    }
}

pub use crate::values::substitute as expand;

impl Document {
    /// Appends discovered environments to `environments`, as if the file
    /// listed them (before templates are expanded).
    pub fn add_environments(&mut self, found: &[Discovered]) {
        let Node::Mapping(root) = &mut self.root else {
            return;
        };
        let blank = Span::new_blank();
        let scalar = |s: &str| MarkedScalarNode::new(blank, s.to_string());
        let list = match root.get_mut("environments") {
            Some(Node::Sequence(l)) => l,
            _ => {
                root.insert(
                    scalar("environments"),
                    Node::Sequence(MarkedSequenceNode::new_empty(blank)),
                );
                match root.get_mut("environments") {
                    Some(Node::Sequence(l)) => l,
                    _ => return,
                }
            }
        };
        for d in found {
            let mut m = MarkedMappingNode::new_empty(blank);
            m.insert(scalar("name"), Node::Scalar(scalar(&d.name)));
            m.insert(scalar(TEMPLATE), Node::Scalar(scalar(&d.template)));
            let mut vars = MarkedMappingNode::new_empty(blank);
            for (k, v) in &d.vars {
                // A value is text, never read as a number or a boolean.
                let mut value = scalar(v);
                value.set_coerce(false);
                vars.insert(scalar(k), Node::Scalar(value));
            }
            m.insert(scalar(VARS), Node::Mapping(vars));
            let mut origin = scalar(&d.origin);
            origin.set_coerce(false);
            m.insert(scalar("discovered"), Node::Scalar(origin));
            list.push(Node::Mapping(m));
        }
    }
}

/// Removes `key` from `m`, with its key node.
fn take(m: &mut MarkedMappingNode, key: &str) -> Option<(MarkedScalarNode, Node)> {
    let k = m.keys().find(|k| k.as_str() == key)?.clone();
    let v = m.remove(key)?;
    Some((k, v))
}
