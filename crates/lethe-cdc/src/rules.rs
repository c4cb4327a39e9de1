//! Table rules: `[[table]]` entries compiled into the engine's [`RuleSet`], checked against the
//! database catalog, and the mapping from a decoded row change to a [`lethe::event::Event`].
//!
//! Each `[[table]]` entry becomes one engine `[[rule]]` whose entity is the table's entity name,
//! so the engine's evaluation (conditions, `changed`, templates, glob escaping, deduplication)
//! is reused unchanged; this module adds what only a database knows: that the table and every
//! column a rule names exist, which columns identify a row, and whether PostgreSQL will send
//! the old values a rule reads.

use crate::config::TableRule;
use crate::error::{Error, ErrorKind, Result};
use lethe::Invalidation;
use lethe::rules::{Rule, RuleSet};
use lethe::{event::Event, event::FieldValue, event::Operation};
use std::collections::{BTreeSet, HashMap};

/// A table as rules name it: schema and table, unquoted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    /// The schema (`public` when the rule did not say).
    pub schema: String,
    /// The table.
    pub name: String,
}

impl TableName {
    /// Splits `schema.table`; a bare `table` is in `public`.
    pub fn parse(text: &str) -> Result<TableName> {
        let (schema, name) = match text.split_once('.') {
            Some((s, n)) => (s, n),
            None => ("public", text),
        };
        if schema.is_empty() || name.is_empty() || name.contains('.') {
            return Err(Error::new(
                ErrorKind::Config,
                format!("table `{text}` is not of the form schema.table or table"),
            ));
        }
        Ok(TableName {
            schema: schema.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The name quoted for SQL (`"public"."products"`).
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Quotes an identifier for SQL, doubling embedded quotes.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// What the catalog says about a table, as far as the rules care.
#[derive(Clone, Debug)]
pub(crate) struct TableCatalog {
    /// Column names in attribute order.
    pub columns: Vec<String>,
    /// Primary key columns, in key order.
    pub primary_key: Vec<String>,
    /// `pg_class.relreplident`: `d` default (primary key), `f` full, `i` index, `n` nothing.
    pub replica_identity: char,
    /// The columns of the replica identity index (for `i`).
    pub identity_index: Vec<String>,
}

impl TableCatalog {
    /// Columns whose old values PostgreSQL sends on update and delete.
    fn identity_columns(&self) -> BTreeSet<&str> {
        match self.replica_identity {
            'f' => self.columns.iter().map(String::as_str).collect(),
            'd' => self.primary_key.iter().map(String::as_str).collect(),
            'i' => self.identity_index.iter().map(String::as_str).collect(),
            _ => BTreeSet::new(),
        }
    }
}

/// One table the rules cover.
#[derive(Clone, Debug)]
pub(crate) struct TableSpec {
    pub table: TableName,
    pub entity: String,
    /// Indices into the rule set of the rules for this table.
    pub rules: Vec<usize>,
    /// The one-column primary key, whose value becomes the event id. Filled from the catalog.
    pub id_column: Option<String>,
    /// Identity columns: on an update without an old tuple these did not change, so their old
    /// values are the new ones. Filled from the catalog.
    pub identity: Vec<String>,
}

/// The compiled rules: the engine's rule set plus the table mapping.
#[derive(Clone, Debug)]
pub(crate) struct CompiledRules {
    pub rules: RuleSet,
    pub tables: Vec<TableSpec>,
    /// Each rule's version column, by rule index.
    pub versions: Vec<Option<String>>,
}

impl CompiledRules {
    /// Compiles `[[table]]` entries into engine rules. Fails on the first bad entry, naming it.
    pub fn compile(entries: &[TableRule]) -> Result<CompiledRules> {
        let mut doc = toml::Table::new();
        let mut rules = Vec::new();
        let mut tables: Vec<TableSpec> = Vec::new();
        let mut names = BTreeSet::new();
        let mut versions = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let table = TableName::parse(&entry.table)?;
            let name = entry
                .name
                .clone()
                .unwrap_or_else(|| format!("{} #{}", entry.table, i + 1));
            if !names.insert(name.clone()) {
                return Err(Error::new(
                    ErrorKind::Rule,
                    format!("two table rules are named `{name}`; names must be unique"),
                ));
            }
            // `products` and `public.products` are the same table, so they get the same entity.
            let entity = entry
                .entity
                .clone()
                .unwrap_or_else(|| match table.schema.as_str() {
                    "public" => table.name.clone(),
                    _ => table.to_string(),
                });
            match tables.iter_mut().find(|t| t.table == table) {
                Some(spec) if spec.entity != entity => {
                    return Err(Error::new(
                        ErrorKind::Rule,
                        format!(
                            "table rule `{name}`: table {table} is already mapped to entity \
                             `{}`, not `{entity}`",
                            spec.entity
                        ),
                    ));
                }
                Some(spec) => spec.rules.push(i),
                None => tables.push(TableSpec {
                    table,
                    entity: entity.clone(),
                    rules: vec![i],
                    id_column: None,
                    identity: Vec::new(),
                }),
            }
            let mut rule = toml::Table::new();
            rule.insert("name".into(), name.clone().into());
            rule.insert("entity".into(), entity.into());
            if let Some(ops) = &entry.operations {
                for op in ops {
                    // Table rules speak SQL: `create`, `bulk` and `schema` are engine names for
                    // events a table never sends under those names.
                    if !matches!(
                        op.to_ascii_lowercase().as_str(),
                        "insert" | "update" | "delete" | "truncate"
                    ) {
                        return Err(Error::new(
                            ErrorKind::Rule,
                            format!(
                                "table rule `{name}`: unknown operation `{op}`; expected insert, \
                                 update, delete or truncate"
                            ),
                        ));
                    }
                }
                rule.insert("operations".into(), strings(ops));
            }
            if !entry.changed.is_empty() {
                rule.insert("changed".into(), strings(&entry.changed));
            }
            if let Some(when) = &entry.when {
                rule.insert("when".into(), toml::Value::Table(when.clone()));
            }
            for (key, list) in [
                ("keys", &entry.keys),
                ("tags", &entry.tags),
                ("prefixes", &entry.prefixes),
                ("globs", &entry.globs),
            ] {
                if !list.is_empty() {
                    rule.insert(key.into(), strings(list));
                }
            }
            rules.push(toml::Value::Table(rule));
            versions.push(entry.version.clone());
        }
        doc.insert("rule".into(), toml::Value::Array(rules));
        let text = toml::to_string(&doc)
            .map_err(|e| Error::new(ErrorKind::Rule, format!("table rules: {e}")))?;
        let rules = RuleSet::from_toml(&text).map_err(|e| {
            // The engine's line numbers refer to generated text, so only its message (which
            // names the rule) is kept.
            Error::new(ErrorKind::Rule, format!("table rule: {}", e.message()))
        })?;
        Ok(CompiledRules {
            rules,
            tables,
            versions,
        })
    }

    /// Every table the rules name.
    pub fn table_names(&self) -> impl Iterator<Item = &TableName> {
        self.tables.iter().map(|t| &t.table)
    }

    /// Checks every rule against the catalog (every table and column exists; `{id}` has a
    /// column to come from; old values a rule reads are ones PostgreSQL sends) and records each
    /// table's id column and identity columns.
    pub fn check_catalog(&mut self, catalog: &HashMap<TableName, TableCatalog>) -> Result<()> {
        for spec in &mut self.tables {
            let Some(cat) = catalog.get(&spec.table) else {
                let first = &self.rules.rules()[spec.rules[0]];
                return Err(Error::new(
                    ErrorKind::Catalog,
                    format!(
                        "rule `{}` names table {}, which does not exist",
                        first.name(),
                        spec.table
                    ),
                ));
            };
            spec.id_column = match cat.primary_key.as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            };
            let identity = cat.identity_columns();
            if identity.is_empty() {
                // Publishing such a table makes PostgreSQL refuse its UPDATEs and DELETEs,
                // which would break the application rather than just this runner.
                return Err(Error::new(
                    ErrorKind::Catalog,
                    format!(
                        "table {} has no replica identity (no primary key, or REPLICA IDENTITY \
                         NOTHING): once published, PostgreSQL refuses its UPDATEs and DELETEs; \
                         add a primary key or run `ALTER TABLE {} REPLICA IDENTITY FULL`",
                        spec.table,
                        spec.table.quoted()
                    ),
                ));
            }
            spec.identity = identity.iter().map(|s| (*s).to_owned()).collect();
            for &i in &spec.rules {
                let rule = &self.rules.rules()[i];
                check_rule(rule, &spec.table, cat, &identity, spec.id_column.is_some())?;
                if let Some(col) = &self.versions[i] {
                    if !cat.columns.contains(col) {
                        return Err(Error::new(
                            ErrorKind::Catalog,
                            format!(
                                "rule `{}` names version column `{col}`, which table {} does \
                                 not have",
                                rule.name(),
                                spec.table
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The fences a row change sets: each key rendered by a matching rule with a version
    /// column, at the new row's version (on a delete, the old row's + 1: anything read before
    /// the delete is older). Nothing when the value is missing or not an integer.
    pub fn fences(&self, spec: &TableSpec, event: &Event) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for &i in &spec.rules {
            let Some(col) = &self.versions[i] else {
                continue;
            };
            let version = match event.operation {
                Operation::Delete => event.old.get(col).and_then(as_version).map(|v| v + 1),
                _ => event.new.get(col).and_then(as_version),
            };
            let Some(version) = version else { continue };
            let rule = &self.rules.rules()[i];
            if !rule.matches(event) {
                continue;
            }
            for target in rule.render(event) {
                if let Invalidation::Key(k) = target {
                    out.push((k.as_str().to_owned(), version));
                }
            }
        }
        out
    }

    /// What a truncate of this table invalidates: the rules' literal templates, and whether any
    /// rule firing on truncate has a template that needs a row (which a truncate does not
    /// have), in which case only flushing the keyspace is safe.
    pub fn truncate_targets(&self, spec: &TableSpec) -> (Vec<Invalidation<String>>, bool) {
        let event = Event::new(spec.entity.clone(), Operation::Bulk);
        let mut needs_flush = false;
        for &i in &spec.rules {
            let rule = &self.rules.rules()[i];
            if !rule.applies_to(Operation::Bulk) {
                continue;
            }
            let templates = rule
                .keys()
                .iter()
                .chain(rule.tags())
                .chain(rule.prefixes())
                .chain(rule.globs());
            if templates.into_iter().any(|t| !t.is_literal()) {
                needs_flush = true;
            }
        }
        (self.rules.evaluate(&event), needs_flush)
    }
}

fn strings(list: &[String]) -> toml::Value {
    toml::Value::Array(list.iter().cloned().map(toml::Value::String).collect())
}

/// One rule against its table's catalog entry.
fn check_rule(
    rule: &Rule,
    table: &TableName,
    cat: &TableCatalog,
    identity: &BTreeSet<&str>,
    has_id: bool,
) -> Result<()> {
    let has_column = |c: &str| cat.columns.iter().any(|x| x == c);
    let missing = |c: &str| {
        Error::new(
            ErrorKind::Catalog,
            format!(
                "rule `{}` names column `{c}`, which table {table} does not have",
                rule.name()
            ),
        )
    };
    let needs_full = |c: &str, why: &str| {
        Error::new(
            ErrorKind::Catalog,
            format!(
                "rule `{}` {why} column `{c}` of {table}, which PostgreSQL sends only with \
                 REPLICA IDENTITY FULL (the table's identity is {}): run `ALTER TABLE {} \
                 REPLICA IDENTITY FULL`",
                rule.name(),
                identity_name(cat.replica_identity),
                table.quoted()
            ),
        )
    };
    let fires_on_update = rule.applies_to(Operation::Update);
    let fires_on_delete = rule.applies_to(Operation::Delete);
    // Every path a rule reads: template placeholders and `when` conditions.
    let templates = rule
        .keys()
        .iter()
        .chain(rule.tags())
        .chain(rule.prefixes())
        .chain(rule.globs());
    let paths = templates
        .flat_map(|t| t.placeholders())
        .chain(rule.conditions().iter().map(|c| c.path()));
    for path in paths {
        let (scope, column) = match path.split_once('.') {
            Some(("old", c)) => ("old", c),
            Some(("new", c)) => ("new", c),
            _ => ("", path),
        };
        if scope.is_empty() && column == "id" && !has_column("id") {
            if has_id {
                continue;
            }
            return Err(Error::new(
                ErrorKind::Catalog,
                format!(
                    "rule `{}` uses `{{id}}`, but table {table} has neither a column `id` nor a \
                     one-column primary key: name the key columns instead",
                    rule.name()
                ),
            ));
        }
        if !has_column(column) {
            return Err(missing(column));
        }
        let reads_old = match scope {
            "old" => fires_on_update || fires_on_delete,
            // A bare name reads the old value on a delete.
            "" => fires_on_delete,
            _ => false,
        };
        if reads_old && !identity.contains(column) {
            return Err(needs_full(column, "reads the old value of"));
        }
    }
    for column in rule.changed() {
        if !has_column(column) {
            return Err(missing(column));
        }
        if fires_on_update && !identity.contains(column.as_str()) {
            return Err(needs_full(column, "compares old and new values of"));
        }
    }
    Ok(())
}

fn identity_name(c: char) -> &'static str {
    match c {
        'd' => "DEFAULT",
        'f' => "FULL",
        'i' => "USING INDEX",
        _ => "NOTHING",
    }
}

/// A column value as decoded from the stream.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Column {
    /// SQL NULL.
    Null,
    /// A value the stream did not send (an unchanged TOASTed value, or a non-identity column of
    /// a key-only old row): unknown, not null.
    Unknown,
    /// The value in PostgreSQL's text representation.
    Text(String),
}

/// A version column's value as a version: a non-negative integer (or integer text).
fn as_version(v: &FieldValue) -> Option<u64> {
    match v {
        FieldValue::Int(i) => u64::try_from(*i).ok(),
        FieldValue::Text(t) => t.parse().ok(),
        _ => None,
    }
}

/// Converts a column's text to a field value by type: integers and booleans become typed so
/// conditions compare them naturally, everything else stays text (numeric text still compares
/// as a number in the engine).
pub(crate) fn field_value(type_oid: u32, text: &str) -> FieldValue {
    const BOOL: u32 = 16;
    const INT8: u32 = 20;
    const INT2: u32 = 21;
    const INT4: u32 = 23;
    const FLOAT4: u32 = 700;
    const FLOAT8: u32 = 701;
    match type_oid {
        BOOL => FieldValue::Bool(text == "t"),
        INT2 | INT4 | INT8 => text
            .parse()
            .map_or_else(|_| FieldValue::Text(text.to_owned()), FieldValue::Int),
        FLOAT4 | FLOAT8 => text
            .parse()
            .map_or_else(|_| FieldValue::Text(text.to_owned()), FieldValue::Float),
        _ => FieldValue::Text(text.to_owned()),
    }
}

/// Builds the event for one row change. `columns` are (name, type OID) in relation order;
/// `old` is absent when PostgreSQL sent no old row (an update that left the identity alone).
pub(crate) fn row_event(
    spec: &TableSpec,
    operation: Operation,
    columns: &[(String, u32)],
    old: Option<&[Column]>,
    new: Option<&[Column]>,
) -> Event {
    let mut event = Event::new(spec.entity.clone(), operation);
    let put = |side: &[Column], into_old: bool, event: &mut Event| {
        for ((name, oid), col) in columns.iter().zip(side) {
            let value = match col {
                Column::Null => FieldValue::Null,
                Column::Unknown => continue,
                Column::Text(t) => field_value(*oid, t),
            };
            if into_old {
                event.old.insert(name.clone(), value);
            } else {
                event.new.insert(name.clone(), value);
            }
        }
    };
    if let Some(old) = old {
        put(old, true, &mut event);
    }
    if let Some(new) = new {
        put(new, false, &mut event);
    }
    if operation == Operation::Update {
        // An unchanged TOASTed value is not resent; it equals the old one when that is known.
        // Without an old row the identity did not change, so its old values are the new ones.
        for (name, _) in columns {
            let both = (event.old.get(name).cloned(), event.new.get(name).cloned());
            match both {
                (Some(o), None) => {
                    event.new.insert(name.clone(), o);
                }
                (None, Some(n)) if old.is_none() && spec.identity.contains(name) => {
                    event.old.insert(name.clone(), n);
                }
                _ => {}
            }
        }
    }
    if let Some(id_col) = &spec.id_column {
        let value = event.new.get(id_col).or_else(|| event.old.get(id_col));
        if let Some(v) = value.filter(|v| !v.is_null()) {
            event.id = Some(v.to_string());
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn products() -> TableCatalog {
        TableCatalog {
            columns: vec!["id".into(), "category_id".into(), "price".into()],
            primary_key: vec!["id".into()],
            replica_identity: 'd',
            identity_index: vec![],
        }
    }

    fn compile(toml_text: &str) -> Result<CompiledRules> {
        let cfg = crate::CdcConfig::from_toml(&format!("connection = \"host=x\"\n{toml_text}"))?;
        let mut rules = CompiledRules::compile(&cfg.tables)?;
        let catalog = HashMap::from([(TableName::parse("public.products")?, products())]);
        rules.check_catalog(&catalog)?;
        Ok(rules)
    }

    #[test]
    fn missing_tables_and_columns_are_named() {
        let err = compile("[[table]]\ntable = \"prodcts\"\nkeys = [\"p:{id}\"]\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Catalog);
        assert!(err.to_string().contains("public.prodcts"), "{err}");
        let err =
            compile("[[table]]\ntable = \"products\"\nkeys = [\"p:{catgory}\"]\n").unwrap_err();
        assert!(err.to_string().contains("column `catgory`"), "{err}");
        let err =
            compile("[[table]]\ntable = \"products\"\nchanged = [\"nope\"]\nkeys = [\"k\"]\n")
                .unwrap_err();
        assert!(err.to_string().contains("column `nope`"), "{err}");
    }

    #[test]
    fn tables_without_identity_are_refused() {
        let cfg = crate::CdcConfig::from_toml(
            "connection = \"host=x\"\n[[table]]\ntable = \"logs\"\ntags = [\"logs\"]\n",
        )
        .unwrap();
        let mut rules = CompiledRules::compile(&cfg.tables).unwrap();
        let mut logs = products();
        logs.primary_key.clear();
        let catalog = HashMap::from([(TableName::parse("logs").unwrap(), logs.clone())]);
        let err = rules.check_catalog(&catalog).unwrap_err();
        assert!(err.to_string().contains("no replica identity"), "{err}");
        logs.replica_identity = 'f';
        let catalog = HashMap::from([(TableName::parse("logs").unwrap(), logs)]);
        rules.check_catalog(&catalog).unwrap();
    }

    #[test]
    fn old_non_key_values_need_full_identity() {
        let err = compile("[[table]]\ntable = \"products\"\ntags = [\"c:{old.category_id}\"]\n")
            .unwrap_err();
        assert!(err.to_string().contains("REPLICA IDENTITY FULL"), "{err}");
        assert!(err.to_string().contains("category_id"), "{err}");
        // Old key columns are always sent.
        compile("[[table]]\ntable = \"products\"\nkeys = [\"p:{old.id}\"]\n").unwrap();
        // New values need nothing.
        compile(
            "[[table]]\ntable = \"products\"\noperations = [\"insert\", \"update\"]\ntags = [\"c:{new.category_id}\"]\n",
        )
        .unwrap();
    }

    #[test]
    fn update_events_fill_unchanged_and_identity_values() {
        let rules = compile("[[table]]\ntable = \"products\"\nkeys = [\"p:{id}\"]\n").unwrap();
        let spec = &rules.tables[0];
        let cols = vec![
            ("id".to_owned(), 23),
            ("category_id".to_owned(), 23),
            ("price".to_owned(), 1700),
        ];
        let new = [
            Column::Text("7".into()),
            Column::Text("5".into()),
            Column::Unknown,
        ];
        let e = row_event(spec, Operation::Update, &cols, None, Some(&new));
        assert_eq!(e.id.as_deref(), Some("7"));
        assert_eq!(e.old.get("id"), Some(&FieldValue::Int(7)));
        assert_eq!(e.old.get("category_id"), None);
        assert_eq!(e.new.get("price"), None);
        assert_eq!(rules.rules.evaluate(&e), [Invalidation::Key("p:7".into())]);
    }

    #[test]
    fn truncate_with_row_templates_asks_for_a_flush() {
        let rules = compile(
            "[[table]]\ntable = \"products\"\nkeys = [\"p:{id}\"]\ntags = [\"products\"]\n",
        )
        .unwrap();
        let (targets, flush) = rules.truncate_targets(&rules.tables[0]);
        assert_eq!(targets, [Invalidation::Tag("products".into())]);
        assert!(flush);
        let rules = compile("[[table]]\ntable = \"products\"\ntags = [\"products\"]\n").unwrap();
        assert!(!rules.truncate_targets(&rules.tables[0]).1);
    }

    #[test]
    fn version_rules_fence_the_keys_they_render() {
        // `price` stands in for a version column here.
        let rules = compile(
            "[[table]]\ntable = \"products\"\nkeys = [\"p:{id}\"]\ntags = [\"all\"]\n\
             version = \"price\"\n\
             [[table]]\ntable = \"products\"\nname = \"unversioned\"\nkeys = [\"q:{id}\"]\n",
        )
        .unwrap();
        let spec = &rules.tables[0];
        let cols = vec![("id".to_owned(), 23), ("price".to_owned(), 20)];
        let row = |price: &str| [Column::Text("7".into()), Column::Text(price.into())];
        let update = row_event(spec, Operation::Update, &cols, None, Some(&row("12")));
        // Keys of the versioned rule only; tags and the other rule's keys are not fenced.
        assert_eq!(rules.fences(spec, &update), [("p:7".to_owned(), 12)]);
        // A delete fences past the old version: anything read before it is older.
        let delete = row_event(spec, Operation::Delete, &cols, Some(&row("12")), None);
        assert_eq!(rules.fences(spec, &delete), [("p:7".to_owned(), 13)]);
        // No usable version, no fence.
        let bad = row_event(spec, Operation::Update, &cols, None, Some(&row("x")));
        assert!(rules.fences(spec, &bad).is_empty());
        let negative = row_event(spec, Operation::Update, &cols, None, Some(&row("-1")));
        assert!(rules.fences(spec, &negative).is_empty());
        let err =
            compile("[[table]]\ntable = \"products\"\nkeys = [\"p:{id}\"]\nversion = \"rev\"\n")
                .unwrap_err();
        assert!(err.to_string().contains("version column `rev`"), "{err}");
    }
}
