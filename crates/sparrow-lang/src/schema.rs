//! Shapes of the runtime keys (`hooks`, `monitor`, `health`, ...), as data.
//!
//! The generator does not act on these keys (the daemon does), but it checks
//! them, so that a wrong duration or a closure in the wrong place is reported
//! by `systemd-sparrow check` rather than by a daemon at 3 a.m. Validation
//! turns a script map into an [`RtValue`] tree the daemon can read without
//! re-checking.

use std::collections::BTreeMap;

use rhai::{Dynamic, FnPtr, ImmutableString, Map};

use crate::closure::Closure;

use crate::names::{closest, normalize};
use crate::sequence_text;
pub use crate::value::command_words;
use crate::value::{self, Issue, Size};

/// A named field of a map shape.
#[derive(Debug)]
pub struct Field {
    /// Canonical name.
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// The value's shape.
    pub shape: Shape,
    /// One line for the reference.
    pub doc: &'static str,
}

/// The shape of a runtime value.
#[derive(Debug)]
pub enum Shape {
    /// A map with these fields (all optional unless a rule says otherwise).
    Map(&'static [Field]),
    /// A map from resource keys (`memory_max`, `cpu_quota`, ...) to values of a shape.
    ResourceMap(&'static Shape),
    /// A closure taking between `.0` and `.1` parameters.
    Closure(usize, usize),
    /// A time span.
    Duration,
    /// An integer in a range.
    Int(i64, i64),
    /// A percentage.
    Percent,
    /// A size or a percentage (change thresholds).
    Threshold,
    /// A string.
    Str,
    /// An `http://` or `https://` URL.
    Url,
    /// An absolute path.
    Path,
    /// A regular expression (Rust's `regex` syntax).
    Regex,
    /// An HTTP request header, `"Name: value"`.
    Header,
    /// A boolean.
    Bool,
    /// One of these words.
    Enum(&'static [&'static str]),
    /// Either shape (tried in order).
    Either(&'static Shape, &'static Shape),
    /// An array of a shape.
    List(&'static Shape),
    /// A startup step: `["desc", "plugin", #{params}]`, a command string, or a closure.
    Step,
    /// A startup sequence: an array of steps, where a string starting with
    /// `begin:` is Sparrow6's text form and expands in place into its task
    /// steps; or one such string, the whole sequence.
    Sequence,
    /// Unit names, or a closure returning them; evaluated at generation time.
    Units,
    /// A command: a string split into words, or an argv array.
    Command,
}

/// A validated runtime value.
#[derive(Debug, Clone)]
pub enum RtValue {
    /// A map, keyed by canonical field name.
    Map(BTreeMap<String, RtValue>),
    /// An array.
    List(Vec<RtValue>),
    /// A closure, callable later.
    Closure(Closure),
    /// A time span: its spelling and microseconds.
    Duration(String, u64),
    /// An integer.
    Int(i64),
    /// A percentage.
    Percent(f64),
    /// A size.
    Size(Size),
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// Unit names.
    Units(Vec<String>),
    /// A startup step that runs a task: description, plugin, parameters.
    Task(String, String, Map),
    /// An argv.
    Command(Vec<String>),
}

impl RtValue {
    /// The field `name` of a map value.
    pub fn get(&self, name: &str) -> Option<&RtValue> {
        match self {
            RtValue::Map(m) => m.get(name),
            _ => None,
        }
    }
}

/// A problem at a path of keys inside a runtime value.
#[derive(Debug, Clone)]
pub struct SchemaError {
    /// Keys from the runtime key down to the offending one, as written.
    pub path: Vec<String>,
    /// What is wrong.
    pub issue: Issue,
}

/// What validation needs from the layers above: closures (to count their
/// parameters) and the resource keys of the vocabulary (for threshold maps).
/// The key table lives above this module, so it is asked, not imported.
pub trait Context {
    /// The closure behind `f`, or `None` when its function cannot be found.
    fn resolve(&self, f: &FnPtr) -> Option<Closure>;
    /// The canonical resource key spelled `raw`, if it is one.
    fn resource_key(&self, raw: &str) -> Option<&'static str>;
    /// Every resource key, for "did you mean".
    fn resource_keys(&self) -> Vec<&'static str>;
}

/// Validates `v` against `shape`. `path` names where `v` is, for errors.
pub fn validate(
    shape: &Shape,
    v: &Dynamic,
    path: &[String],
    arity: &dyn Context,
    errors: &mut Vec<SchemaError>,
) -> Option<RtValue> {
    let fail = |errors: &mut Vec<SchemaError>, issue: Issue| {
        errors.push(SchemaError {
            path: path.to_vec(),
            issue,
        });
        None
    };
    match shape {
        Shape::Map(fields) => {
            let Some(map) = v.read_lock::<Map>().map(|m| m.clone()) else {
                return fail(
                    errors,
                    Issue::new(format!(
                        "expected a map #{{..}}, found {}",
                        value::type_name(v)
                    )),
                );
            };
            let mut out = BTreeMap::new();
            for (raw_key, val) in &map {
                let norm = normalize(raw_key);
                let mut sub = path.to_vec();
                sub.push(raw_key.to_string());
                let Some(field) = fields
                    .iter()
                    .find(|f| f.name == norm || f.aliases.contains(&norm.as_str()))
                else {
                    let names = fields
                        .iter()
                        .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()));
                    let mut issue = Issue::new(format!(
                        "unknown key {:?} in {}",
                        raw_key.as_str(),
                        path.join(".")
                    ));
                    issue = match closest(raw_key, names) {
                        Some(c) => issue.help(format!("did you mean {c:?}?")),
                        None => issue.help(format!(
                            "known keys here: {}",
                            fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                        )),
                    };
                    errors.push(SchemaError { path: sub, issue });
                    continue;
                };
                if out.contains_key(field.name) {
                    errors.push(SchemaError {
                        path: sub,
                        issue: Issue::new(format!(
                            "{:?} is given twice (under another spelling)",
                            field.name
                        )),
                    });
                    continue;
                }
                if let Some(rv) = validate(&field.shape, val, &sub, arity, errors) {
                    out.insert(field.name.to_string(), rv);
                }
            }
            let value = RtValue::Map(out);
            for issue in rules(path, &value) {
                errors.push(SchemaError {
                    path: path.to_vec(),
                    issue,
                });
            }
            Some(value)
        }
        Shape::ResourceMap(inner) => {
            let Some(map) = v.read_lock::<Map>().map(|m| m.clone()) else {
                return fail(
                    errors,
                    Issue::new(format!(
                        "expected a map #{{..}}, found {}",
                        value::type_name(v)
                    )),
                );
            };
            let mut out = BTreeMap::new();
            for (raw_key, val) in &map {
                let mut sub = path.to_vec();
                sub.push(raw_key.to_string());
                match arity.resource_key(raw_key) {
                    Some(k) => {
                        if let Some(rv) = validate(inner, val, &sub, arity, errors) {
                            out.insert(k.to_string(), rv);
                        }
                    }
                    None => {
                        let mut issue =
                            Issue::new(format!("{:?} is not a resource key", raw_key.as_str()));
                        let names = arity.resource_keys();
                        if let Some(c) = closest(raw_key, names.iter().copied()) {
                            issue = issue.help(format!("did you mean {c:?}?"));
                        }
                        errors.push(SchemaError { path: sub, issue });
                    }
                }
            }
            Some(RtValue::Map(out))
        }
        Shape::Closure(min, max) => {
            let Some(f) = value::closure(v) else {
                return fail(
                    errors,
                    Issue::new(format!(
                        "expected a closure such as || {{ .. }}, found {}",
                        value::type_name(v)
                    )),
                );
            };
            match arity.resolve(&f) {
                Some(c) if c.params < *min || c.params > *max => {
                    let want = if min == max {
                        format!("{min}")
                    } else {
                        format!("{min} or {max}")
                    };
                    fail(
                        errors,
                        Issue::new(format!(
                            "this closure takes {} parameter(s); it is called with {want}",
                            c.params
                        )),
                    )
                }
                Some(c) => Some(RtValue::Closure(c)),
                None => fail(
                    errors,
                    Issue::new(format!(
                        "the function {} behind this closure was not found",
                        f.fn_name()
                    )),
                ),
            }
        }
        Shape::Duration => match value::duration(v) {
            Ok((s, us)) => Some(RtValue::Duration(s, us)),
            Err(i) => fail(errors, i),
        },
        Shape::Int(min, max) => match value::integer(v, *min, *max) {
            Ok(n) => Some(RtValue::Int(n)),
            Err(i) => fail(errors, i),
        },
        Shape::Percent => match value::percent(v) {
            Ok(p) => Some(RtValue::Percent(p)),
            Err(i) => fail(errors, i),
        },
        Shape::Threshold => match value::size(v) {
            Ok(s) => Some(RtValue::Size(s)),
            Err(i) => fail(errors, i),
        },
        Shape::Str => match value::text(v) {
            Ok(s) => Some(RtValue::Str(s.text)),
            Err(i) => fail(errors, i),
        },
        Shape::Url => match value::text(v) {
            Ok(s) if s.text.starts_with("http://") || s.text.starts_with("https://") => {
                Some(RtValue::Str(s.text))
            }
            Ok(s) => fail(
                errors,
                Issue::new(format!("{:?} is not an http:// or https:// URL", s.text)),
            ),
            Err(i) => fail(errors, i),
        },
        Shape::Path => match value::text(v) {
            Ok(s) if s.text.starts_with('/') => Some(RtValue::Str(s.text)),
            Ok(s) => fail(
                errors,
                Issue::new(format!("{:?} is not an absolute path", s.text)),
            ),
            Err(i) => fail(errors, i),
        },
        Shape::Regex => {
            value::regex_text(v).map_or_else(|i| fail(errors, i), |r| Some(RtValue::Str(r)))
        }
        Shape::Header => {
            value::header_text(v).map_or_else(|i| fail(errors, i), |h| Some(RtValue::Str(h)))
        }
        Shape::Bool => match value::boolean(v) {
            Ok(b) => Some(RtValue::Bool(b)),
            Err(i) => fail(errors, i),
        },
        Shape::Enum(allowed) => match value::one_of(v, allowed) {
            Ok(s) => Some(RtValue::Str(s.to_string())),
            Err(i) => fail(errors, i),
        },
        Shape::Either(a, b) => {
            let mut first = Vec::new();
            if let Some(rv) = validate(a, v, path, arity, &mut first) {
                if first.is_empty() {
                    return Some(rv);
                }
            }
            let mut second = Vec::new();
            match validate(b, v, path, arity, &mut second) {
                Some(rv) if second.is_empty() => Some(rv),
                _ => {
                    // Report the alternative that matched the value's type.
                    errors.extend(if v.is_fnptr() { second } else { first });
                    None
                }
            }
        }
        Shape::List(inner) => {
            let Some(items) = value::array(v) else {
                return fail(
                    errors,
                    Issue::new(format!(
                        "expected an array [..], found {}",
                        value::type_name(v)
                    )),
                );
            };
            let out = items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let mut sub = path.to_vec();
                    sub.push(format!("[{i}]"));
                    validate(inner, item, &sub, arity, errors)
                })
                .collect();
            Some(RtValue::List(out))
        }
        Shape::Step => step(v, path, arity, errors),
        Shape::Sequence => sequence(v, path, arity, errors),
        Shape::Units => match value::unit_names(v, None) {
            Ok(names) => Some(RtValue::Units(names)),
            Err(i) => fail(errors, i),
        },
        Shape::Command => match value::absolute_command(v) {
            Ok(words) => Some(RtValue::Command(words)),
            Err(i) => fail(errors, i),
        },
    }
}

/// `startup_sequence`: an array of steps, where a string starting with
/// `begin:` is a Sparrow6 text block expanded in place; or one such block.
fn sequence(
    v: &Dynamic,
    path: &[String],
    arity: &dyn Context,
    errors: &mut Vec<SchemaError>,
) -> Option<RtValue> {
    let key = path.last().map_or("startup_sequence", String::as_str);
    let issue = match (v.read_lock::<ImmutableString>(), value::array(v)) {
        (Some(text), _) if sequence_text::is_text_form(&text) => {
            return text_block(&text, key, path, errors).map(RtValue::List)
        }
        (Some(text), _) => Issue::new(format!(
            "a startup_sequence string must be Sparrow6's text form, starting with `begin:`; found {:?}",
            text.chars().take(40).collect::<String>()
        ))
        .help("for one command write a list: [\"/usr/bin/warm-cache\"]"),
        (None, None) => Issue::new(format!(
            "expected an array of steps [..] or a text block starting with `begin:`, found {}",
            value::type_name(v)
        )),
        (None, Some(items)) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let mut sub = path.to_vec();
                sub.push(format!("[{i}]"));
                match item.read_lock::<ImmutableString>() {
                    // Reported at the key: an item has no position of its own.
                    Some(t) if sequence_text::is_text_form(&t) => out.extend(
                        text_block(&t, &format!("{key}[{i}]"), path, errors).unwrap_or_default(),
                    ),
                    _ => out.extend(step(item, &sub, arity, errors)),
                }
            }
            return Some(RtValue::List(out));
        }
    };
    errors.push(SchemaError {
        path: path.to_vec(),
        issue,
    });
    None
}

/// The task steps of a text block; an error names the line in the block.
fn text_block(
    text: &str,
    what: &str,
    path: &[String],
    errors: &mut Vec<SchemaError>,
) -> Option<Vec<RtValue>> {
    let steps = sequence_text::parse(text).map_err(|e| {
        let msg = format!("{what} text, line {}, column {}: {}", e.line, e.col, e.message);
        errors.push(SchemaError {
            path: path.to_vec(),
            issue: Issue::new(msg).help("the text form is a line `begin:`, lines `task-run \"desc\", \"plugin\", %( name => value, .. )` and a line `end:`; see docs/language.md"),
        });
    });
    let task = |s: sequence_text::TextStep| RtValue::Task(s.desc, s.plugin, s.params);
    Some(steps.ok()?.into_iter().map(task).collect())
}

fn step(
    v: &Dynamic,
    path: &[String],
    arity: &dyn Context,
    errors: &mut Vec<SchemaError>,
) -> Option<RtValue> {
    if v.is_fnptr() {
        // A step closure may take the unit's context, as hooks do.
        return validate(&Shape::Closure(0, 1), v, path, arity, errors);
    }
    if v.is_string() {
        return validate(&Shape::Command, v, path, arity, errors);
    }
    let bad = Issue::new(format!(
        "a startup step is [\"description\", \"plugin\", #{{ params }}], a command string, or a closure; found {}",
        value::type_name(v)
    ));
    let Some(items) = value::array(v) else {
        errors.push(SchemaError {
            path: path.to_vec(),
            issue: bad,
        });
        return None;
    };
    let parts = (
        items.first().and_then(|d| d.clone().into_string().ok()),
        items.get(1).and_then(|p| p.clone().into_string().ok()),
        items.get(2).map_or(Some(Map::new()), |m| {
            m.read_lock::<Map>().map(|m| m.clone())
        }),
    );
    match parts {
        (Some(desc), Some(plugin), Some(params)) if items.len() <= 3 => {
            Some(RtValue::Task(desc, plugin, params))
        }
        _ => {
            errors.push(SchemaError {
                path: path.to_vec(),
                issue: bad,
            });
            None
        }
    }
}

/// Rules that tie several fields together.
fn rules(path: &[String], v: &RtValue) -> Vec<Issue> {
    let mut out = Vec::new();
    // The top-level key as written: `health` or its alias.
    let top = path.first().map(|s| normalize(s));
    if path.len() == 1 && matches!(top.as_deref(), Some("health" | "health_check")) {
        let has = |f: &str| v.get(f).is_some();
        match v.get("type") {
            Some(RtValue::Str(t)) if t == "http" && !has("url") => out.push(
                Issue::new("an http check needs `url`")
                    .help("add url: \"http://127.0.0.1:8080/health\""),
            ),
            Some(RtValue::Str(t)) if t == "tcp" && !has("port") => {
                out.push(Issue::new("a tcp check needs `port`"))
            }
            Some(RtValue::Str(t)) if t == "exec" && !has("command") => {
                out.push(Issue::new("an exec check needs `command`"))
            }
            None if !has("check") => out.push(Issue::new(
                "a health check needs `type` (http, tcp, exec) or a `check` closure",
            )),
            _ => {}
        }
    }
    if let (Some(RtValue::Duration(_, t)), Some(RtValue::Duration(_, w))) =
        (v.get("threshold"), v.get("window"))
    {
        if !(500_000..=10_000_000).contains(w) {
            out.push(Issue::new(
                "a PSI window must be between 500ms and 10s (a kernel limit)",
            ));
        }
        if t >= w {
            out.push(Issue::new(
                "a PSI threshold must be shorter than its window",
            ));
        }
    }
    out
}

/// Writes a Markdown description of a shape (for `docs/keys.md`).
pub fn describe(shape: &Shape, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    match shape {
        Shape::Map(fields) => {
            for f in *fields {
                let aliases = if f.aliases.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (alias {})",
                        f.aliases
                            .iter()
                            .map(|a| format!("`{a}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                out.push_str(&format!(
                    "{indent}- `{}`{aliases}: {} — {}\n",
                    f.name,
                    short(&f.shape),
                    f.doc
                ));
                if matches!(f.shape, Shape::Map(_)) {
                    describe(&f.shape, depth + 1, out);
                }
            }
        }
        other => out.push_str(&format!("{indent}- {}\n", short(other))),
    }
}

fn short(shape: &Shape) -> String {
    match shape {
        Shape::Map(_) => "map".into(),
        Shape::ResourceMap(_) => "map of resource key → size or percentage".into(),
        Shape::Closure(a, b) if a == b => format!("closure ({a} parameter(s))"),
        Shape::Closure(a, b) => format!("closure ({a}..{b} parameters)"),
        Shape::Duration => "duration".into(),
        Shape::Int(a, b) => format!("integer {a}..{b}"),
        Shape::Percent => "percentage".into(),
        Shape::Threshold => "size or percentage".into(),
        Shape::Str => "string".into(),
        Shape::Url => "URL".into(),
        Shape::Path => "absolute path".into(),
        Shape::Regex => "regex".into(),
        Shape::Header => "\"Name: value\"".into(),
        Shape::Bool => "boolean".into(),
        Shape::Enum(v) => v
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(" \\| "),
        Shape::Either(a, b) => format!("{} or {}", short(a), short(b)),
        Shape::List(inner) => format!("array of {}", short(inner)),
        Shape::Step => "step".into(),
        Shape::Sequence => "array of step, or Sparrow6 text `begin: .. end:`".into(),
        Shape::Units => "unit names, or a closure returning them".into(),
        Shape::Command => "command (string or argv array)".into(),
    }
}
