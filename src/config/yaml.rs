//! Reading YAML into typed settings with every error at its node's own
//! position, and all of them in one pass.
//!
//! The text is parsed by marked-yaml into a tree whose every node knows its
//! line and column; serde then deserializes from that tree. When a value is
//! wrong, the error is recorded with the node's position and field path, the
//! offending node is cut from the tree, and deserialization is tried again,
//! so one run reports every error, in file order. Cutting an element out of
//! a list shifts the ones after it; the paths reported are translated back
//! to the indices the file has.

use marked_yaml::{LoaderOptions, Node};
use serde::de::DeserializeOwned;

/// One thing wrong in a file: where, which field, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub column: usize,
    /// The field path, e.g. `environments[1].services[0].healthz`.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.field, self.message
        )
    }
}

/// At most this many errors are gathered from one file; past that the
/// rest are likely echoes of the first.
const MAX_PROBLEMS: usize = 100;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A field path, as serde_path_to_error writes it: `a.b[2].c`.
pub fn parse_path(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            let key = &rest[..open];
            if !key.is_empty() {
                out.push(Segment::Key(key.to_string()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    out.push(Segment::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Segment::Key(rest.to_string()));
        }
    }
    out
}

/// Writes a path back: `environments[1].name`; the root is `(top level)`.
pub fn render_path(path: &[Segment]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Segment::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Segment::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() {
        "(top level)".to_string()
    } else {
        s
    }
}

/// An environment expanded from a template: an error at a line of the
/// template, under that environment, says so.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Its index in `environments`.
    pub index: usize,
    pub environment: String,
    pub template: String,
    /// The template's first and last line.
    pub lines: (usize, usize),
}

/// A parsed file: its node tree (pruned of what failed) and the problems
/// found so far.
pub struct Document {
    file: String,
    text: String,
    pub(super) root: Node,
    /// The environments expanded from a template, for messages.
    pub(super) origins: Vec<Origin>,
    /// List elements cut from the tree, in order: (the list's path at the
    /// time, the index cut).
    removed: Vec<(Vec<Segment>, usize)>,
    problems: Vec<Problem>,
}

impl Document {
    /// Parses `text`; a YAML syntax error (after which nothing can be read
    /// reliably) is the one problem returned.
    pub fn parse(text: &str, file: &str) -> Result<Document, Problem> {
        // A quoted scalar is text: "42" is never read as a number, and the
        // expanded file (`to_yaml`) keeps it quoted.
        let options = LoaderOptions::default()
            .error_on_duplicate_keys(true)
            .prevent_coercion(true);
        match marked_yaml::parse_yaml_with_options(0, text, options) {
            Ok(root) => Ok(Document {
                file: file.to_string(),
                text: text.to_string(),
                root,
                origins: Vec::new(),
                removed: Vec::new(),
                problems: Vec::new(),
            }),
            Err(e) => Err(load_problem(text, file, e)),
        }
    }

    /// Deserializes the tree as `T`, recording each error and cutting the
    /// node it names until the rest reads. `None` when even the top level
    /// cannot be read.
    pub fn read<T: DeserializeOwned>(&mut self) -> Option<T> {
        // Keys cut for an earlier error: a "missing field" for one of them
        // is that error's echo, not a new one.
        let mut cut_keys: Vec<Vec<Segment>> = Vec::new();
        for _ in 0..MAX_PROBLEMS {
            let err = match marked_yaml::from_node::<T>(&self.root) {
                Ok(v) => return Some(v),
                Err(e) => e,
            };
            let path = parse_path(err.path().unwrap_or(""));
            let mark = err.start_mark();
            let message = clean_message(&err.into_inner().to_string());
            let echo = missing_field(&message).is_some_and(|f| {
                let mut p = path.clone();
                p.push(Segment::Key(f.to_string()));
                cut_keys.contains(&p)
            });
            if !echo {
                let (line, column) = match mark {
                    Some(m) => within_text(&self.text, m.line(), m.column()),
                    None => self.position(&path),
                };
                let message = self.with_template_origin(&path, line, message);
                self.problems.push(Problem {
                    file: self.file.clone(),
                    line,
                    column,
                    field: render_path(&self.original_path(&path)),
                    message,
                });
            }
            if let Some(Segment::Key(_)) = path.last() {
                cut_keys.push(path.clone());
            }
            if !self.cut(&path) {
                return None;
            }
        }
        None
    }

    /// Records a problem found after deserializing (a duplicate name, a
    /// missing companion setting) at the node `path` names, or at its
    /// nearest ancestor present in the file.
    pub fn problem(&mut self, path: &[Segment], message: impl Into<String>) {
        let (line, column) = self.position(path);
        let message = self.with_template_origin(path, line, message.into());
        self.problems.push(Problem {
            file: self.file.clone(),
            line,
            column,
            field: render_path(&self.original_path(path)),
            message,
        });
    }

    /// The tree as YAML text.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(&plain(&self.root)).unwrap_or_default()
    }

    /// Records a problem at a node's own span, under `field`.
    pub fn problem_at(&mut self, span: &marked_yaml::Span, field: String, message: String) {
        let (line, column) = span
            .start()
            .map_or((1, 1), |m| within_text(&self.text, m.line(), m.column()));
        self.problems.push(Problem {
            file: self.file.clone(),
            line,
            column,
            field,
            message,
        });
    }

    /// `message`, saying which environment instantiated the template when
    /// the problem at `line` under `path` lies in one.
    fn with_template_origin(&self, path: &[Segment], line: usize, message: String) -> String {
        let index = match path {
            [Segment::Key(k), Segment::Index(i), ..] if k == "environments" => *i,
            _ => return message,
        };
        match self
            .origins
            .iter()
            .find(|o| o.index == index && (o.lines.0..=o.lines.1).contains(&line))
        {
            Some(o) => format!(
                "{message} (in template {:?}, instantiated by environment {:?})",
                o.template, o.environment
            ),
            None => message,
        }
    }

    /// Whether a list element at or under `path` was cut for an error (so
    /// a check of what is left, like "at least one", would only echo it).
    pub fn cut_under(&self, path: &[Segment]) -> bool {
        self.removed
            .iter()
            .any(|(list, _)| list.len() >= path.len() && list[..path.len()] == path[..])
    }

    /// Every problem found, in file order.
    pub fn into_problems(mut self) -> Vec<Problem> {
        self.problems.sort_by_key(|p| (p.line, p.column));
        self.problems.dedup();
        self.problems
    }

    /// The line and column of the node at `path`, or of its nearest
    /// ancestor. A scalar is pointed at itself; a mapping or list at the key
    /// that holds it (or, for a list element, at its first key), where a
    /// reader looks for it.
    fn position(&self, path: &[Segment]) -> (usize, usize) {
        let mut node = &self.root;
        let mut best = first_key(node).or_else(|| start(node));
        for seg in path {
            let next = match (seg, node) {
                (Segment::Key(k), Node::Mapping(m)) => m
                    .iter()
                    .find(|(key, _)| key.as_str() == k)
                    .map(|(key, value)| {
                        (value, key.span().start().map(|m| (m.line(), m.column())))
                    }),
                (Segment::Index(i), Node::Sequence(s)) => s.get_node(*i).map(|n| (n, first_key(n))),
                _ => None,
            };
            let Some((n, holder)) = next else {
                break;
            };
            node = n;
            let at = match n {
                Node::Scalar(_) => start(n),
                _ => holder.or_else(|| start(n)),
            };
            if at.is_some() {
                best = at;
            }
        }
        let (line, column) = best.unwrap_or((1, 1));
        within_text(&self.text, line, column)
    }

    /// Cuts the node at `path` from the tree; false when there is nothing
    /// left to cut (the error is at the top level).
    fn cut(&mut self, path: &[Segment]) -> bool {
        // An unreadable key is written `?`: cut the mapping holding it.
        let path: Vec<Segment> = match path.last() {
            Some(Segment::Key(k)) if k == "?" => path[..path.len() - 1].to_vec(),
            _ => path.to_vec(),
        };
        let Some((last, parent)) = path.split_last() else {
            return false;
        };
        let Some(container) = node_mut(&mut self.root, parent) else {
            return false;
        };
        match (last, container) {
            (Segment::Key(k), Node::Mapping(m)) => {
                let key = m.keys().find(|key| key.as_str() == k).cloned();
                match key {
                    Some(key) => m.remove(&key).is_some(),
                    // The error names a key the mapping lacks ("missing
                    // field"): the mapping itself cannot be read.
                    None => self.cut(parent),
                }
            }
            (Segment::Index(i), Node::Sequence(s)) if *i < s.len() => {
                s.remove(*i);
                self.removed.push((parent.to_vec(), *i));
                true
            }
            _ => self.cut(parent),
        }
    }

    /// `path` (in the pruned tree's indices) in the file's own indices.
    fn original_path(&self, path: &[Segment]) -> Vec<Segment> {
        let mut path = path.to_vec();
        for (list, cut) in self.removed.iter().rev() {
            if path.len() > list.len() && path[..list.len()] == list[..] {
                if let Segment::Index(i) = &mut path[list.len()] {
                    if *i >= *cut {
                        *i += 1;
                    }
                }
            }
        }
        path
    }
}

/// A node as a plain YAML value: scalars the file left unquoted keep their
/// YAML type (numbers, booleans, null), every other is a string.
fn plain(node: &Node) -> serde_yaml::Value {
    use serde_yaml::Value;
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            if s.may_coerce() {
                if let Some(b) = s.as_bool() {
                    return Value::Bool(b);
                }
                if let Ok(i) = text.parse::<i64>() {
                    return Value::Number(i.into());
                }
                if text.parse::<f64>().is_ok() && text.contains('.') {
                    if let Ok(v) = serde_yaml::from_str::<Value>(text) {
                        return v;
                    }
                }
                if matches!(text, "~" | "null" | "") {
                    return Value::Null;
                }
            }
            Value::String(text.to_string())
        }
        Node::Sequence(seq) => Value::Sequence(seq.iter().map(plain).collect()),
        Node::Mapping(m) => Value::Mapping(
            m.iter()
                .map(|(k, v)| (Value::String(k.as_str().to_string()), plain(v)))
                .collect(),
        ),
    }
}

fn node_mut<'a>(node: &'a mut Node, path: &[Segment]) -> Option<&'a mut Node> {
    let Some((first, rest)) = path.split_first() else {
        return Some(node);
    };
    let next = match (first, node) {
        (Segment::Key(k), Node::Mapping(m)) => m
            .iter_mut()
            .find(|(key, _)| key.as_str() == k)
            .map(|(_, v)| v),
        (Segment::Index(i), Node::Sequence(s)) => s.get_mut(*i),
        _ => None,
    }?;
    node_mut(next, rest)
}

/// Where a mapping's first key is.
fn first_key(node: &Node) -> Option<(usize, usize)> {
    match node {
        Node::Mapping(m) => m
            .keys()
            .next()
            .and_then(|k| k.span().start().map(|m| (m.line(), m.column()))),
        _ => None,
    }
}

fn start(node: &Node) -> Option<(usize, usize)> {
    node.span().start().map(|m| (m.line(), m.column()))
}

/// The field a "missing field `x`" message names.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
}

/// The reader's own messages, worded as the rest of ours.
fn clean_message(m: &str) -> String {
    if let Some(rest) = m.strip_prefix("Unknown field ") {
        format!("unknown field {rest}")
    } else if m == "Value was not a boolean" {
        "not a boolean (true or false)".to_string()
    } else {
        m.to_string()
    }
}

/// A YAML syntax error, at its position (kept inside the text).
fn load_problem(text: &str, file: &str, e: marked_yaml::LoadError) -> Problem {
    use marked_yaml::LoadError as L;
    let (mark, message) = match &e {
        L::TopLevelMustBeMapping(m) => (
            Some(*m),
            "the file must be a mapping of settings".to_string(),
        ),
        L::TopLevelMustBeSequence(m) => (Some(*m), "the file must be a list".to_string()),
        L::UnexpectedAnchor(m) => (Some(*m), "anchors are not supported".to_string()),
        L::MappingKeyMustBeScalar(m) => (Some(*m), "a key must be plain text".to_string()),
        L::UnexpectedTag(m) => (Some(*m), "tags are not supported".to_string()),
        L::ScanError(m, s) => (Some(*m), s.info().to_string()),
        L::DuplicateKey(d) => (
            d.key.span().start().copied(),
            format!("duplicate key `{}`", d.key.as_str()),
        ),
    };
    let (line, column) = mark
        .map(|m| within_text(text, m.line(), m.column()))
        .unwrap_or((1, 1));
    Problem {
        file: file.to_string(),
        line,
        column,
        field: "(syntax)".to_string(),
        message,
    }
}

/// A reader may report an error one line past the end of the input: point
/// at the end of the last line instead.
fn within_text(text: &str, line: usize, column: usize) -> (usize, usize) {
    let lines = text.split('\n').count();
    if line <= lines {
        return (line.max(1), column.max(1));
    }
    let last = text.rsplit('\n').next().unwrap_or("");
    (lines, last.chars().count() + 1)
}

/// The line and column of the node at the field `path` of `text` (or of its
/// nearest ancestor); (1, 1) when the text does not parse.
pub fn locate_path(text: &str, path: &str) -> (usize, usize) {
    match Document::parse(text, "") {
        Ok(doc) => doc.position(&parse_path(path)),
        Err(_) => (1, 1),
    }
}

/// Reads `text` as `T`, with every problem (each at its node's position).
pub fn read_all<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, Vec<Problem>> {
    let mut doc = Document::parse(text, file).map_err(|p| vec![p])?;
    match doc.read::<T>() {
        Some(v) if doc.problems.is_empty() => Ok(v),
        _ => {
            let problems = doc.into_problems();
            if problems.is_empty() {
                // Nothing recorded, yet nothing read: say so rather than nothing.
                Err(vec![Problem {
                    file: file.to_string(),
                    line: 1,
                    column: 1,
                    field: "(top level)".to_string(),
                    message: "cannot be read".to_string(),
                }])
            } else {
                Err(problems)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_and_render_alike() {
        for p in [
            "environments[1].services[0].healthz",
            "listen",
            "a.b[2][3].c",
        ] {
            assert_eq!(render_path(&parse_path(p)), p);
        }
        assert_eq!(render_path(&parse_path("")), "(top level)");
        assert_eq!(
            parse_path("e[1].n"),
            vec![
                Segment::Key("e".into()),
                Segment::Index(1),
                Segment::Key("n".into())
            ]
        );
    }

    /// A scalar is located at itself, a list or mapping at the key holding
    /// it, a list element at its first key, a missing node at its nearest
    /// ancestor, and the top level at its first key.
    #[test]
    fn a_path_is_located_at_its_node_or_the_key_holding_it() {
        let text = "listen: 127.0.0.1:9\nenvironments:\n  - name: prod\n  - { name: staging, boxes: [a, b] }\n";
        assert_eq!(locate_path(text, "listen"), (1, 9));
        assert_eq!(locate_path(text, "environments"), (2, 1));
        assert_eq!(locate_path(text, "environments[0]"), (3, 5));
        assert_eq!(locate_path(text, "environments[1]"), (4, 7));
        assert_eq!(locate_path(text, "environments[1].boxes[1]"), (4, 33));
        assert_eq!(locate_path(text, "environments[7].name"), (2, 1));
        assert_eq!(locate_path("  { listen: x }\n", ""), (1, 5));
        assert_eq!(locate_path("  { listen: x }\n", "web"), (1, 5));
        assert_eq!(locate_path("listen: [", "listen"), (1, 1));
    }

    /// The expanded file keeps each scalar's YAML type: numbers, booleans
    /// and nulls written plain stay so, and text that only looks like a
    /// number in some reader (an exponent, `inf`) stays text.
    #[test]
    fn the_expanded_file_keeps_each_scalars_type() {
        let doc = Document::parse(
            "a: 1.5\nb: 42\nc: true\nd: ~\ne: 1e5\nf: inf\ng: '42'\nh: api.example.net\n",
            "fleet.yaml",
        )
        .unwrap();
        assert_eq!(
            doc.to_yaml(),
            "a: 1.5\nb: 42\nc: true\nd: null\ne: '1e5'\nf: inf\ng: '42'\nh: api.example.net\n"
        );
    }
}
