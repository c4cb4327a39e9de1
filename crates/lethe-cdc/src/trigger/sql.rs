//! The SQL of trigger mode: the notifying PL/pgSQL function, the per-table triggers that call
//! it, and their removal, generated from the compiled table rules.
//!
//! One function per schema holding a rule's table, `"<schema>"."<channel>_notify"()`, and per
//! table two triggers: `"<channel>_notify"` (`AFTER INSERT OR UPDATE OR DELETE ... FOR EACH
//! ROW`, only the operations some rule fires on) and `"<channel>_notify_truncate"` (`AFTER
//! TRUNCATE ... FOR EACH STATEMENT`). Every name derives from the channel, so installations for
//! different channels on one database do not collide. The trigger arguments are the channel,
//! the table as the rules name it (so a partition's rows are reported under its partitioned
//! table, like `publish_via_partition_root` in replication mode) and the columns the rules
//! read, which the function falls back to when a whole row does not fit in a notification.

use super::Channel;
use crate::rules::{CompiledRules, TableName, TableSpec, quote_ident};
use lethe::event::Operation;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// A SQL string literal (`standard_conforming_strings` is on by default since 9.1, so only
/// quotes need doubling).
pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The function's body. Values travel as text (`jsonb_each_text`), so numbers keep their exact
/// PostgreSQL spelling (`10.50` stays `10.50`, as in replication mode's text tuples) instead of
/// going through a JSON number. The 8000 is PostgreSQL's limit: it refuses a `pg_notify`
/// payload of 8000 bytes or more (default build), which would fail the writing transaction.
const FUNCTION_BODY: &str = r#"
DECLARE
  channel text := TG_ARGV[0];
  tbl text := TG_ARGV[1];
  op text := lower(TG_OP);
  cols text[];
  old_row jsonb;
  new_row jsonb;
  payload text;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify(channel, json_build_object('table', tbl, 'op', op)::text);
    RETURN NULL;
  END IF;
  -- OLD and NEW are only read where they exist, which also keeps PostgreSQL 10 happy.
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    SELECT jsonb_object_agg(key, value) INTO old_row FROM jsonb_each_text(to_jsonb(OLD));
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    SELECT jsonb_object_agg(key, value) INTO new_row FROM jsonb_each_text(to_jsonb(NEW));
  END IF;
  payload := json_build_object('table', tbl, 'op', op, 'old', old_row, 'new', new_row)::text;
  IF octet_length(payload) >= 8000 THEN
    -- Too large for a notification: keep only the columns the rules read and the primary key
    -- (which `{id}` may stand for). The catalog lookup runs only on this rare path.
    cols := TG_ARGV[2:] || ARRAY(
      SELECT a.attname::text FROM pg_index i
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE i.indrelid = TG_RELID AND i.indisprimary);
    SELECT jsonb_object_agg(key, value) INTO old_row FROM jsonb_each(old_row) WHERE key = ANY (cols);
    SELECT jsonb_object_agg(key, value) INTO new_row FROM jsonb_each(new_row) WHERE key = ANY (cols);
    payload := json_build_object('table', tbl, 'op', op, 'old', old_row, 'new', new_row,
                                 'partial', true)::text;
  END IF;
  IF octet_length(payload) >= 8000 THEN
    -- Still too large: no values at all; the listener flushes its targets.
    payload := json_build_object('table', tbl, 'op', op, 'overflow', true)::text;
  END IF;
  PERFORM pg_notify(channel, payload);
  RETURN NULL;
END
"#;

/// The names derived from a channel.
pub(crate) struct Names {
    pub function: String,
    pub row_trigger: String,
    pub truncate_trigger: String,
}

impl Names {
    pub fn new(channel: &Channel) -> Names {
        let c = channel.as_str();
        Names {
            function: format!("{c}_notify"),
            row_trigger: format!("{c}_notify"),
            truncate_trigger: format!("{c}_notify_truncate"),
        }
    }

    /// The function, schema-qualified and quoted.
    pub fn function_in(&self, schema: &str) -> String {
        format!("{}.{}", quote_ident(schema), quote_ident(&self.function))
    }
}

/// Every column the rules of `spec` read, by name: template placeholders, `when` paths and
/// `changed` columns (`old.`/`new.` stripped). `id` is kept as is; the function adds the
/// primary key itself when it has to trim a row.
pub(crate) fn needed_columns(rules: &CompiledRules, spec: &TableSpec) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for &i in &spec.rules {
        let rule = &rules.rules.rules()[i];
        let templates = rule
            .keys()
            .iter()
            .chain(rule.tags())
            .chain(rule.prefixes())
            .chain(rule.globs());
        let paths = templates
            .flat_map(|t| t.placeholders())
            .chain(rule.conditions().iter().map(|c| c.path()))
            .chain(rule.changed().iter().map(String::as_str));
        for path in paths {
            let column = match path.split_once('.') {
                Some(("old" | "new", c)) => c,
                _ => path,
            };
            out.insert(column.to_owned());
        }
    }
    out
}

/// What a table's triggers must be, as installed from the current rules.
pub(crate) struct Expected {
    /// The row trigger's events (`INSERT`, `UPDATE`, `DELETE`); none: no row trigger.
    pub row_ops: Vec<&'static str>,
    /// Whether a truncate trigger is needed.
    pub truncate: bool,
    /// The row trigger's arguments, unquoted: channel, table, columns. The truncate trigger
    /// takes the first two.
    pub args: Vec<String>,
}

impl Expected {
    pub fn of(rules: &CompiledRules, spec: &TableSpec, channel: &Channel) -> Expected {
        let fires = |op| {
            spec.rules
                .iter()
                .any(|&i| rules.rules.rules()[i].applies_to(op))
        };
        let row_ops = [
            (Operation::Create, "INSERT"),
            (Operation::Update, "UPDATE"),
            (Operation::Delete, "DELETE"),
        ]
        .into_iter()
        .filter(|(op, _)| fires(*op))
        .map(|(_, sql)| sql)
        .collect();
        let mut args = vec![channel.as_str().to_owned(), spec.table.to_string()];
        args.extend(needed_columns(rules, spec));
        Expected {
            row_ops,
            truncate: fires(Operation::Bulk),
            args,
        }
    }

    /// `pg_trigger.tgtype` of the row trigger: `ROW` (1) and the event bits (`INSERT` 4,
    /// `DELETE` 8, `UPDATE` 16); AFTER is the absence of `BEFORE` (2).
    pub fn row_tgtype(&self) -> i32 {
        self.row_ops
            .iter()
            .map(|op| match *op {
                "INSERT" => 4,
                "DELETE" => 8,
                _ => 16,
            })
            .fold(1, |a, b| a | b)
    }

    /// `pg_trigger.tgtype` of the truncate trigger: `TRUNCATE` (32), statement level.
    pub const TRUNCATE_TGTYPE: i32 = 32;

    /// `pg_trigger.tgargs`: each argument followed by a NUL.
    pub fn tgargs(args: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        for a in args {
            out.extend_from_slice(a.as_bytes());
            out.push(0);
        }
        out
    }
}

fn schemas(rules: &CompiledRules) -> BTreeSet<&str> {
    rules
        .tables
        .iter()
        .map(|t| t.table.schema.as_str())
        .collect()
}

/// The installation script: one transaction, safe to run again (functions are replaced,
/// triggers dropped and recreated).
pub(crate) fn install(rules: &CompiledRules, channel: &Channel) -> String {
    let names = Names::new(channel);
    let mut sql = String::new();
    let _ = writeln!(
        sql,
        "-- Lethe trigger mode: row changes notified on channel {} (LISTEN {}).\n\
         -- Generated from the [[table]] rules; safe to run again.\nBEGIN;",
        quote_literal(channel.as_str()),
        quote_ident(channel.as_str())
    );
    for schema in schemas(rules) {
        let _ = writeln!(
            sql,
            "\nCREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $lethe${FUNCTION_BODY}$lethe$;",
            names.function_in(schema)
        );
    }
    for spec in &rules.tables {
        let table = spec.table.quoted();
        let function = names.function_in(&spec.table.schema);
        let expected = Expected::of(rules, spec, channel);
        let rule_names: Vec<&str> = spec
            .rules
            .iter()
            .map(|&i| rules.rules.rules()[i].name())
            .collect();
        let _ = writeln!(
            sql,
            "\n-- {}: rules {}",
            spec.table,
            rule_names.join(", ").replace('\n', " ")
        );
        let args: Vec<String> = expected.args.iter().map(|a| quote_literal(a)).collect();
        let _ = writeln!(
            sql,
            "DROP TRIGGER IF EXISTS {} ON {table};",
            quote_ident(&names.row_trigger)
        );
        if !expected.row_ops.is_empty() {
            let _ = writeln!(
                sql,
                "CREATE TRIGGER {} AFTER {} ON {table}\n  FOR EACH ROW EXECUTE FUNCTION {function}({});",
                quote_ident(&names.row_trigger),
                expected.row_ops.join(" OR "),
                args.join(", ")
            );
        }
        let _ = writeln!(
            sql,
            "DROP TRIGGER IF EXISTS {} ON {table};",
            quote_ident(&names.truncate_trigger)
        );
        if expected.truncate {
            let _ = writeln!(
                sql,
                "CREATE TRIGGER {} AFTER TRUNCATE ON {table}\n  FOR EACH STATEMENT EXECUTE FUNCTION {function}({});",
                quote_ident(&names.truncate_trigger),
                args[..2].join(", ")
            );
        }
    }
    sql.push_str("\nCOMMIT;\n");
    sql
}

/// The removal script: drops the triggers of every rule table that exists, then the functions.
/// A function another table still uses (installed from a different configuration with the same
/// channel) makes PostgreSQL refuse the drop, which rolls the whole script back.
pub(crate) fn uninstall(tables: &[TableName], channel: &Channel) -> String {
    let names = Names::new(channel);
    let mut sql = String::from("-- Lethe trigger mode: removal.\nBEGIN;\n");
    for table in tables {
        // A missing table has no triggers; DROP TRIGGER would fail on it even with IF EXISTS.
        let drops = [&names.row_trigger, &names.truncate_trigger]
            .iter()
            .map(|t| {
                let stmt = format!(
                    "DROP TRIGGER IF EXISTS {} ON {}",
                    quote_ident(t),
                    table.quoted()
                );
                format!("    EXECUTE {};\n", quote_literal(&stmt))
            })
            .collect::<String>();
        let _ = write!(
            sql,
            "DO $lethe$ BEGIN\n  IF to_regclass({}) IS NOT NULL THEN\n{drops}  END IF;\nEND $lethe$;\n",
            quote_literal(&table.quoted())
        );
    }
    let schemas: BTreeSet<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
    for schema in schemas {
        let _ = writeln!(
            sql,
            "DROP FUNCTION IF EXISTS {}();",
            names.function_in(schema)
        );
    }
    sql.push_str("COMMIT;\n");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CdcConfig;

    fn compile(rules: &str) -> CompiledRules {
        let cfg = CdcConfig::from_toml(&format!("connection = \"host=x\"\n{rules}")).unwrap();
        CompiledRules::compile(&cfg.tables).unwrap()
    }

    #[test]
    fn install_script_is_idempotent_and_names_what_rules_read() {
        let rules = compile(
            "[[table]]\ntable = \"shop.products\"\nkeys = [\"p:{id}\"]\ntags = [\"c:{old.category_id}\"]\n\
             [[table]]\ntable = \"shop.products\"\nname = \"prices\"\noperations = [\"update\"]\n\
             changed = [\"price\"]\nwhen = { status = \"live\" }\nkeys = [\"price:{id}\"]\n\
             [[table]]\ntable = \"settings\"\noperations = [\"update\", \"truncate\"]\ntags = [\"settings\"]\n",
        );
        let channel = Channel::new("lethe").unwrap();
        let sql = install(&rules, &channel);
        assert!(
            sql.starts_with("-- Lethe") && sql.contains("BEGIN;") && sql.ends_with("COMMIT;\n")
        );
        // One function per schema, replaced rather than created.
        assert_eq!(sql.matches("CREATE OR REPLACE FUNCTION").count(), 2);
        assert!(sql.contains("CREATE OR REPLACE FUNCTION \"shop\".\"lethe_notify\"()"));
        assert!(sql.contains("CREATE OR REPLACE FUNCTION \"public\".\"lethe_notify\"()"));
        // Every CREATE TRIGGER is preceded by its DROP ... IF EXISTS.
        assert_eq!(sql.matches("DROP TRIGGER IF EXISTS").count(), 4);
        assert!(sql.contains(
            "CREATE TRIGGER \"lethe_notify\" AFTER INSERT OR UPDATE OR DELETE ON \"shop\".\"products\"\n  \
             FOR EACH ROW EXECUTE FUNCTION \"shop\".\"lethe_notify\"('lethe', 'shop.products', \
             'category_id', 'id', 'price', 'status');"
        ), "{sql}");
        // Only the operations the rules fire on.
        assert!(
            sql.contains("AFTER UPDATE ON \"public\".\"settings\""),
            "{sql}"
        );
        assert!(sql.contains(
            "CREATE TRIGGER \"lethe_notify_truncate\" AFTER TRUNCATE ON \"public\".\"settings\""
        ));
        assert_eq!(sql.matches("AFTER TRUNCATE").count(), 2);
        assert!(sql.contains("pg_notify(channel, payload)"));
    }

    #[test]
    fn names_and_literals_are_quoted() {
        let rules = compile("[[table]]\ntable = \"we\\\"ird.it's\"\ntags = [\"t\"]\n");
        let channel = Channel::new("my chan").unwrap();
        let sql = install(&rules, &channel);
        assert!(sql.contains("ON \"we\"\"ird\".\"it's\""), "{sql}");
        assert!(sql.contains("('my chan', 'we\"ird.it''s')"), "{sql}");
        assert!(sql.contains("\"my chan_notify_truncate\""));
        let tables: Vec<_> = rules.table_names().cloned().collect();
        let sql = uninstall(&tables, &channel);
        assert!(
            sql.contains("to_regclass('\"we\"\"ird\".\"it''s\"')"),
            "{sql}"
        );
        assert!(
            sql.contains(
                "EXECUTE 'DROP TRIGGER IF EXISTS \"my chan_notify\" ON \"we\"\"ird\".\"it''s\"';"
            ),
            "{sql}"
        );
        assert!(sql.contains("DROP FUNCTION IF EXISTS \"we\"\"ird\".\"my chan_notify\"();"));
    }
}
