//! TOML to [`RuleSet`]: deserialization, validation, and errors that point into the file.
//!
//! Loading runs in three passes, each of which can only fail, never apply anything: the
//! TOML grammar (so syntax errors are told apart from schema errors), the schema (serde with
//! `deny_unknown_fields`, so a misspelt key is an error rather than a silently ignored line),
//! then meaning (templates, operations, conditions, durations, ranges). The schema pass keeps
//! values as `toml::Spanned` so the meaning pass can still say which line a bad value is on. The [`RuleSet`] is only assembled after every rule and policy has passed, which
//! is what makes loading all or nothing.

use super::condition::{Condition, Test};
use super::data_policy::{DataPolicy, PolicyTtl};
use super::error::{RuleError, RuleErrorKind};
use super::{Rule, RuleSet};
use crate::event::{FieldValue, Operation, Scope};
use crate::template::{Template, TemplateError, parse_field_path};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    policy: BTreeMap<Spanned<String>, Spanned<RawPolicy>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    entity: Spanned<String>,
    #[serde(default)]
    operations: Vec<Spanned<String>>,
    #[serde(default)]
    when: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    #[serde(default)]
    changed: Vec<Spanned<String>>,
    #[serde(default)]
    keys: Vec<Spanned<String>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    #[serde(default)]
    prefixes: Vec<Spanned<String>>,
    #[serde(default)]
    globs: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    // Durations stay raw values so a bare number gets "needs a unit" rather than a type error.
    ttl: Option<Spanned<toml::Value>>,
    strategy: Option<Spanned<String>>,
    min: Option<Spanned<toml::Value>>,
    max: Option<Spanned<toml::Value>>,
    jitter: Option<Spanned<f64>>,
    early_refresh: Option<Spanned<f64>>,
    recompute: Option<Spanned<toml::Value>>,
    #[serde(default)]
    tags: Vec<Spanned<String>>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
}

/// Parses and validates a whole rule file.
pub(super) fn load(text: &str) -> Result<RuleSet, RuleError> {
    let src = Source { text };
    if let Err(e) = text.parse::<toml::Table>() {
        return Err(src.toml_error(&e, true));
    }
    let raw: RawFile = toml::from_str(text).map_err(|e| src.toml_error(&e, false))?;

    let mut rules = Vec::with_capacity(raw.rule.len());
    let mut lines_by_name: HashMap<String, usize> = HashMap::new();
    for raw_rule in raw.rule {
        let name = &raw_rule.get_ref().name;
        let pos = src.pos(name.span().start);
        if let Some(first) = lines_by_name.insert(name.get_ref().clone(), pos.0) {
            return Err(RuleError::at(
                RuleErrorKind::Duplicate,
                pos,
                format!(
                    "rule name `{}` is already used by the rule on line {first}",
                    name.get_ref()
                ),
            ));
        }
        rules.push(build_rule(&src, raw_rule)?);
    }

    let mut policies = BTreeMap::new();
    for (name, raw_policy) in raw.policy {
        let policy = build_policy(&src, &name, raw_policy)?;
        policies.insert(name.into_inner(), policy);
    }
    Ok(RuleSet::assemble(rules, policies))
}

fn build_rule(src: &Source<'_>, raw: Spanned<RawRule>) -> Result<Rule, RuleError> {
    let header = src.pos(raw.span().start);
    let raw = raw.into_inner();
    let name = non_empty(src, raw.name, "a rule's `name`")?;
    let entity = non_empty(src, raw.entity, &format!("`entity` of rule `{name}`"))?;

    let mut operations = 0u8;
    for op in &raw.operations {
        let parsed = op.get_ref().parse::<Operation>().map_err(|_| {
            RuleError::at(
                RuleErrorKind::BadOperation,
                src.pos(op.span().start),
                format!(
                    "unknown operation `{}` in rule `{name}`; expected one of create, update, \
                     delete, bulk, schema",
                    op.get_ref()
                ),
            )
        })?;
        operations |= parsed.bit();
    }

    let mut conditions = Vec::new();
    for (path, value) in &raw.when {
        if let ("new" | "old", toml::Value::Table(inner)) =
            (path.get_ref().as_str(), value.get_ref())
        {
            // `new.status = 1` unquoted is a TOML dotted key: a table `new` holding `status`.
            let example = inner.keys().next().map_or("status", String::as_str);
            return Err(RuleError::at(
                RuleErrorKind::BadCondition,
                src.pos(path.span().start),
                format!(
                    "`{0}.{example}` in `when` of rule `{name}` must be quoted (\"{0}.{example}\" = ...); \
                     unquoted, TOML reads it as a table `{0}`",
                    path.get_ref()
                ),
            ));
        }
        let field = parse_field_path(path.get_ref()).map_err(|e| {
            RuleError::at(
                RuleErrorKind::BadCondition,
                src.in_string(path.span(), path.get_ref(), e.column()),
                format!(
                    "bad field `{}` in `when` of rule `{name}`: {}",
                    path.get_ref(),
                    e.message()
                ),
            )
        })?;
        let tests = tests_from(value.get_ref()).map_err(|problem| {
            RuleError::at(
                RuleErrorKind::BadCondition,
                src.pos(value.span().start),
                format!(
                    "condition on `{}` in rule `{name}`: {problem}",
                    path.get_ref()
                ),
            )
        })?;
        for test in tests {
            let condition = Condition {
                path: field.clone(),
                test,
            };
            conditions.push((value.span().start, condition));
        }
    }
    // The map is ordered by path; file order reads better in `Rule::conditions`.
    conditions.sort_by_key(|(at, _)| *at);

    let mut changed = Vec::with_capacity(raw.changed.len());
    for field in &raw.changed {
        let pos = |col| src.in_string(field.span(), field.get_ref(), col);
        let path = parse_field_path(field.get_ref()).map_err(|e| {
            RuleError::at(
                RuleErrorKind::BadCondition,
                pos(e.column()),
                format!(
                    "bad field `{}` in `changed` of rule `{name}`: {}",
                    field.get_ref(),
                    e.message()
                ),
            )
        })?;
        if path.scope != Scope::Any {
            return Err(RuleError::at(
                RuleErrorKind::BadCondition,
                pos(1),
                format!(
                    "`changed` of rule `{name}` takes bare field names (it compares old and new \
                     itself): write `{}`, not `{}`",
                    path.name,
                    field.get_ref()
                ),
            ));
        }
        changed.push(path.name);
    }

    let context = |list: &str| format!("`{list}` of rule `{name}`");
    let keys = templates(src, &raw.keys, &context("keys"))?;
    let tags = templates(src, &raw.tags, &context("tags"))?;
    let prefixes = templates(src, &raw.prefixes, &context("prefixes"))?;
    let globs = templates(src, &raw.globs, &context("globs"))?;
    if keys.is_empty() && tags.is_empty() && prefixes.is_empty() && globs.is_empty() {
        return Err(RuleError::at(
            RuleErrorKind::BadValue,
            header,
            format!(
                "rule `{name}` invalidates nothing: give it `keys`, `tags`, `prefixes` or `globs`"
            ),
        ));
    }

    Ok(Rule {
        name,
        entity,
        operations,
        conditions: conditions.into_iter().map(|(_, c)| c).collect(),
        changed,
        keys,
        tags,
        prefixes,
        globs,
        line: header.0,
    })
}

fn build_policy(
    src: &Source<'_>,
    name: &Spanned<String>,
    raw: Spanned<RawPolicy>,
) -> Result<DataPolicy, RuleError> {
    let raw = raw.into_inner();
    let ctx = format!("policy `{}`", name.get_ref());
    if name.get_ref().trim().is_empty() {
        return Err(RuleError::at(
            RuleErrorKind::BadValue,
            src.pos(name.span().start),
            "a policy's name cannot be empty",
        ));
    }

    let ttl = raw
        .ttl
        .as_ref()
        .map(|v| duration(src, v, "ttl", &ctx))
        .transpose()?;
    let min = raw
        .min
        .as_ref()
        .map(|v| duration(src, v, "min", &ctx))
        .transpose()?;
    let max = raw
        .max
        .as_ref()
        .map(|v| duration(src, v, "max", &ctx))
        .transpose()?;
    let strategy = match &raw.strategy {
        None => None,
        Some(s) => Some(match s.get_ref().as_str() {
            "fixed" | "sliding" | "adaptive" | "never" => s,
            other => {
                return Err(RuleError::at(
                    RuleErrorKind::BadValue,
                    src.pos(s.span().start),
                    format!(
                        "unknown strategy `{other}` in {ctx}; expected one of fixed, sliding, \
                         adaptive, never"
                    ),
                ));
            }
        }),
    };
    let word = strategy.map(|s| s.get_ref().as_str());

    // min and max mean something only to the adaptive strategy; elsewhere they are a mistake.
    if word != Some("adaptive") {
        if let Some(bound) = raw.min.as_ref().or(raw.max.as_ref()) {
            return Err(RuleError::at(
                RuleErrorKind::BadValue,
                src.pos(bound.span().start),
                format!("`min` and `max` in {ctx} apply only to strategy = \"adaptive\""),
            ));
        }
    }
    let needs_ttl = |s: &Spanned<String>| {
        RuleError::at(
            RuleErrorKind::MissingField,
            src.pos(s.span().start),
            format!("strategy \"{}\" in {ctx} needs a `ttl`", s.get_ref()),
        )
    };
    let policy_ttl = match (strategy, ttl) {
        (None, None) => None,
        (None, Some(t)) => Some(PolicyTtl::Fixed(t)),
        (Some(s), ttl) => Some(match (s.get_ref().as_str(), ttl) {
            ("never", None) => PolicyTtl::Never,
            ("never", Some(_)) => {
                let at = raw.ttl.as_ref().map_or(0, |v| v.span().start);
                return Err(RuleError::at(
                    RuleErrorKind::BadValue,
                    src.pos(at),
                    format!("{ctx} has strategy = \"never\", so it takes no `ttl`"),
                ));
            }
            (_, None) => return Err(needs_ttl(s)),
            ("fixed", Some(t)) => PolicyTtl::Fixed(t),
            ("sliding", Some(t)) => PolicyTtl::Sliding(t),
            (_, Some(base)) => adaptive(src, &ctx, s, &raw, base, min, max)?,
        }),
    };

    let jitter = match &raw.jitter {
        Some(j) if !(0.0..1.0).contains(j.get_ref()) => {
            return Err(RuleError::at(
                RuleErrorKind::BadValue,
                src.pos(j.span().start),
                format!("`jitter` in {ctx} must be in [0, 1), not {}", j.get_ref()),
            ));
        }
        j => j.as_ref().map(|j| *j.get_ref()),
    };
    let early_refresh_beta = match &raw.early_refresh {
        Some(b) if !(b.get_ref().is_finite() && *b.get_ref() > 0.0) => {
            return Err(RuleError::at(
                RuleErrorKind::BadValue,
                src.pos(b.span().start),
                format!(
                    "`early_refresh` in {ctx} must be a positive number (1.0 is usual), not {}",
                    b.get_ref()
                ),
            ));
        }
        b => b.as_ref().map(|b| *b.get_ref()),
    };
    let recompute = raw
        .recompute
        .as_ref()
        .map(|v| duration(src, v, "recompute", &ctx))
        .transpose()?;
    if let (Some(v), None) = (&raw.recompute, early_refresh_beta) {
        return Err(RuleError::at(
            RuleErrorKind::BadValue,
            src.pos(v.span().start),
            format!("`recompute` in {ctx} applies only with `early_refresh`"),
        ));
    }

    Ok(DataPolicy {
        name: name.get_ref().clone(),
        ttl: policy_ttl,
        jitter,
        early_refresh_beta,
        early_refresh_recompute: recompute,
        tags: templates(src, &raw.tags, &format!("`tags` of {ctx}"))?,
        depends_on: templates(src, &raw.depends_on, &format!("`depends_on` of {ctx}"))?,
    })
}

fn adaptive(
    src: &Source<'_>,
    ctx: &str,
    strategy: &Spanned<String>,
    raw: &RawPolicy,
    base: Duration,
    min: Option<Duration>,
    max: Option<Duration>,
) -> Result<PolicyTtl, RuleError> {
    let (Some(min), Some(max)) = (min, max) else {
        return Err(RuleError::at(
            RuleErrorKind::MissingField,
            src.pos(strategy.span().start),
            format!("strategy \"adaptive\" in {ctx} needs both `min` and `max`"),
        ));
    };
    let at = |v: &Option<Spanned<toml::Value>>| src.pos(v.as_ref().map_or(0, |v| v.span().start));
    if min > max {
        return Err(RuleError::at(
            RuleErrorKind::BadDuration,
            at(&raw.min),
            format!("`min` ({min:?}) in {ctx} is longer than `max` ({max:?})"),
        ));
    }
    if !(min..=max).contains(&base) {
        return Err(RuleError::at(
            RuleErrorKind::BadDuration,
            at(&raw.ttl),
            format!("`ttl` ({base:?}) in {ctx} is outside [`min`, `max`] = [{min:?}, {max:?}]"),
        ));
    }
    Ok(PolicyTtl::Adaptive { base, min, max })
}

fn non_empty(src: &Source<'_>, value: Spanned<String>, what: &str) -> Result<String, RuleError> {
    if value.get_ref().trim().is_empty() {
        return Err(RuleError::at(
            RuleErrorKind::BadValue,
            src.pos(value.span().start),
            format!("{what} cannot be empty"),
        ));
    }
    Ok(value.into_inner())
}

fn templates(
    src: &Source<'_>,
    raw: &[Spanned<String>],
    context: &str,
) -> Result<Vec<Template>, RuleError> {
    raw.iter()
        .map(|t| {
            Template::parse(t.get_ref()).map_err(|e: TemplateError| {
                RuleError::at(
                    RuleErrorKind::BadTemplate,
                    src.in_string(t.span(), t.get_ref(), e.column()),
                    format!(
                        "bad template `{}` in {context}: {}",
                        t.get_ref(),
                        e.message()
                    ),
                )
            })
        })
        .collect()
}

fn duration(
    src: &Source<'_>,
    value: &Spanned<toml::Value>,
    what: &str,
    ctx: &str,
) -> Result<Duration, RuleError> {
    let fail = |problem: String| {
        RuleError::at(
            RuleErrorKind::BadDuration,
            src.pos(value.span().start),
            format!("`{what}` in {ctx}: {problem}"),
        )
    };
    let text = match value.get_ref() {
        toml::Value::String(s) => s,
        toml::Value::Integer(n) => {
            return Err(fail(format!(
                "`{n}` needs a unit, e.g. \"{n}s\" (units: ms, s, m, h, d)"
            )));
        }
        other => {
            return Err(fail(format!(
                "expected a duration such as \"30s\", not a {}",
                other.type_str()
            )));
        }
    };
    let d = parse_duration(text).map_err(fail)?;
    if d.is_zero() {
        return Err(fail(format!(
            "\"{text}\" is zero; durations must be positive"
        )));
    }
    Ok(d)
}

/// Parses `250ms`, `30s`, `5m`, `1h30m`, `1h 30m`, `2d`: whole numbers each followed by a unit
/// (ms, s, m, h, d), summed.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("empty duration; write e.g. \"30s\"".to_owned());
    }
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "\"{text}\" is not a duration; write e.g. \"30s\" or \"1h30m\""
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("\"{text}\" is too long"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!(
                    "\"{text}\": `{number}` needs a unit (ms, s, m, h, d)"
                ));
            }
            unit => {
                return Err(format!(
                    "\"{text}\": unknown unit `{unit}` (use ms, s, m, h or d)"
                ));
            }
        };
        total_ms = number
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("\"{text}\" is too long"))?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(Duration::from_millis(total_ms))
}

/// Condition values: a bare scalar means equality; a table holds named comparisons.
fn tests_from(value: &toml::Value) -> Result<Vec<Test>, String> {
    match value {
        toml::Value::Table(table) => {
            if table.is_empty() {
                return Err("empty comparison table; write e.g. { gt = 18 }".to_owned());
            }
            table.iter().map(|(op, arg)| comparison(op, arg)).collect()
        }
        toml::Value::Array(_) => Err(
            "a list is not a value; to match any of several values write { in = [...] }".to_owned(),
        ),
        other => scalar(other).map(|v| vec![Test::Eq(v)]),
    }
}

fn comparison(op: &str, arg: &toml::Value) -> Result<Test, String> {
    let number = || match arg {
        toml::Value::Integer(i) => Ok(*i as f64),
        toml::Value::Float(x) if !x.is_nan() => Ok(*x),
        other => Err(format!(
            "`{op}` compares numbers, not a {}",
            describe(other)
        )),
    };
    Ok(match op {
        "eq" => Test::Eq(scalar(arg)?),
        "ne" => Test::Ne(scalar(arg)?),
        "gt" => Test::Gt(number()?),
        "ge" => Test::Ge(number()?),
        "lt" => Test::Lt(number()?),
        "le" => Test::Le(number()?),
        "in" => match arg {
            toml::Value::Array(items) if !items.is_empty() => {
                Test::In(items.iter().map(scalar).collect::<Result<_, _>>()?)
            }
            toml::Value::Array(_) => return Err("`in` needs at least one value".to_owned()),
            other => return Err(format!("`in` takes a list, not a {}", describe(other))),
        },
        "present" => match arg {
            toml::Value::Boolean(b) => Test::Present(*b),
            other => {
                return Err(format!(
                    "`present` takes true or false, not a {}",
                    describe(other)
                ));
            }
        },
        other => {
            return Err(format!(
                "unknown comparison `{other}`; expected one of eq, ne, gt, ge, lt, le, in, present"
            ));
        }
    })
}

fn scalar(value: &toml::Value) -> Result<FieldValue, String> {
    Ok(match value {
        toml::Value::String(s) => FieldValue::Text(s.clone()),
        toml::Value::Integer(i) => FieldValue::Int(*i),
        toml::Value::Float(x) => FieldValue::Float(*x),
        toml::Value::Boolean(b) => FieldValue::Bool(*b),
        other => return Err(format!("cannot compare with a {}", describe(other))),
    })
}

fn describe(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::Table(_) => "table",
        toml::Value::Array(_) => "list",
        other => other.type_str(),
    }
}

/// The file's text, for turning byte offsets from spans into lines and columns.
struct Source<'a> {
    text: &'a str,
}

impl Source<'_> {
    /// 1-based line and character column of a byte offset.
    fn pos(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// Position of the 1-based character `column` of `value`, which was read from the string
    /// at `span`. Exact when the string is written plainly (`"..."` or `'...'` without escapes);
    /// otherwise the characters and the bytes in the file do not line up, so it falls back to
    /// the string's start.
    fn in_string(&self, span: Range<usize>, value: &str, column: usize) -> (usize, usize) {
        let raw = self.text.get(span.clone()).unwrap_or("");
        let plain = raw.len() == value.len() + 2
            && (raw.starts_with('"') || raw.starts_with('\''))
            && raw.get(1..raw.len() - 1) == Some(value);
        if !plain {
            return self.pos(span.start);
        }
        let inner = value
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(value.len(), |(i, _)| i);
        self.pos(span.start + 1 + inner)
    }

    fn toml_error(&self, e: &toml::de::Error, grammar: bool) -> RuleError {
        let span = e.span();
        let message = e.message().trim();
        let (kind, message) = if grammar {
            if message.starts_with("duplicate key") {
                let what = span.clone().and_then(|s| self.text.get(s)).unwrap_or("");
                (
                    RuleErrorKind::Duplicate,
                    format!("`{}` is defined twice", what.trim()),
                )
            } else {
                (RuleErrorKind::Syntax, format!("invalid TOML: {message}"))
            }
        } else if message.starts_with("unknown field") {
            (RuleErrorKind::UnknownField, message.to_owned())
        } else if message.starts_with("missing field") {
            (RuleErrorKind::MissingField, message.to_owned())
        } else {
            (RuleErrorKind::BadValue, message.to_owned())
        };
        match span {
            Some(s) => RuleError::at(kind, self.pos(s.start), message),
            None => RuleError::new(kind, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        let ok = [
            ("250ms", 250),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("2d", 172_800_000),
            ("1h30m", 5_400_000),
            (" 1h 30m ", 5_400_000),
            ("1m 500ms", 60_500),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in [
            "",
            "5",
            "m",
            "5x",
            "1.5s",
            "-1s",
            "s5",
            "99999999999999999999s",
            "5w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse_duration("5x").unwrap_err().contains("`x`"));
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let src = Source {
            text: "a = 1\nbé = \"x{\"\n",
        };
        assert_eq!(src.pos(0), (1, 1));
        assert_eq!(src.pos(6), (2, 1));
        assert_eq!(src.pos(10), (2, 4), "é is one column");
        // The string `"x{"` spans bytes 12..16; its second character is at column 8.
        assert_eq!(src.in_string(12..16, "x{", 2), (2, 8));
        // An escaped string falls back to its start.
        let src = Source {
            text: "k = \"\\u0078{\"",
        };
        assert_eq!(src.in_string(4..13, "x{", 2), (1, 5));
    }
}
