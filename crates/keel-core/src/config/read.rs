//! Reading typed values out of TOML items or environment variables, reporting every
//! problem with its place instead of stopping at the first.
//!
//! [`Reader`] collects diagnostics; [`Tbl`] is one table being read (with the environment
//! layer when it is a single table); [`Field`] is one value, from the file or from a
//! variable. The section walkers in `parse.rs` and `monitor.rs` only say which key is which
//! type; the wording of type errors lives here, once.

use std::collections::BTreeMap;
use std::time::Duration;

use toml_edit::{Item, TableLike, Value};

use super::env::EnvLayer;
use super::model::LocalizedText;
use super::position::{LineIndex, Pos};
use super::values::{self, Bad};
use super::{suggest, Diagnostic};

/// Collects diagnostics while the document is walked.
pub(crate) struct Reader<'a> {
    pub file: &'a str,
    lines: LineIndex<'a>,
    diags: Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a str, text: &'a str) -> Self {
        Reader {
            file,
            lines: LineIndex::new(text),
            diags: Vec::new(),
        }
    }

    pub fn pos(&self, span: Option<std::ops::Range<usize>>, fallback: Pos) -> Pos {
        self.lines.span_pos(span, fallback)
    }

    pub fn report(&mut self, pos: Pos, message: impl Into<String>, hint: Option<String>) {
        let file = if pos.line == 0 {
            super::ENV_FILE
        } else {
            self.file
        };
        self.diags.push(Diagnostic {
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
            hint,
        });
    }

    /// Reports a refused value, naming the field it came from.
    pub fn bad(&mut self, f: &Field<'_>, bad: Bad) {
        self.report(f.pos, format!("{}: {}", f.name, bad.message), bad.hint);
    }

    pub fn has_errors(&self) -> bool {
        !self.diags.is_empty()
    }

    /// The diagnostics in file order; environment problems (line 0) come first.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|d| (d.line, d.column));
        self.diags
    }

    fn wrong_type(&mut self, f: &Field<'_>, expected: &str, hint: &str) {
        let found = f.found();
        self.report(
            f.pos,
            format!("{}: expected {expected}, found {found}", f.name),
            Some(hint.to_owned()),
        );
    }

    pub fn string(&mut self, f: &Field<'_>) -> Option<String> {
        match f.env_text() {
            Some(t) => Some(t.to_owned()),
            None => match f.value().and_then(Value::as_str) {
                Some(s) => Some(s.to_owned()),
                None => {
                    self.wrong_type(
                        f,
                        "a string",
                        "put the value in double quotes: key = \"value\"",
                    );
                    None
                }
            },
        }
    }

    /// A string that must not be empty (names, hosts, labels).
    pub fn nonempty(&mut self, f: &Field<'_>) -> Option<String> {
        let s = self.string(f)?;
        if s.trim().is_empty() {
            self.report(f.pos, format!("{}: may not be empty", f.name), None);
            return None;
        }
        Some(s)
    }

    /// A string run through one of the pure parsers in `values.rs`.
    pub fn parsed<T>(
        &mut self,
        f: &Field<'_>,
        parse: impl FnOnce(&str) -> Result<T, Bad>,
    ) -> Option<T> {
        let s = self.string(f)?;
        match parse(&s) {
            Ok(v) => Some(v),
            Err(bad) => {
                self.bad(f, bad);
                None
            }
        }
    }

    pub fn bool(&mut self, f: &Field<'_>) -> Option<bool> {
        let hint = "write true or false, without quotes";
        match f.env_text() {
            Some(t) => match t.trim().to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => {
                    self.report(
                        f.pos,
                        format!("{}: expected true or false, found {t:?}", f.name),
                        Some(hint.into()),
                    );
                    None
                }
            },
            None => match f.value().and_then(Value::as_bool) {
                Some(b) => Some(b),
                None => {
                    self.wrong_type(f, "a boolean", hint);
                    None
                }
            },
        }
    }

    /// A whole number within `min..=max`.
    pub fn uint(&mut self, f: &Field<'_>, min: u64, max: u64) -> Option<u64> {
        let hint = "write a whole number, without quotes";
        let n = match f.env_text() {
            Some(t) => match t.trim().parse::<i64>() {
                Ok(n) => n,
                Err(_) => {
                    self.report(
                        f.pos,
                        format!("{}: expected a whole number, found {t:?}", f.name),
                        Some(hint.into()),
                    );
                    return None;
                }
            },
            None => match f.value().and_then(Value::as_integer) {
                Some(n) => n,
                None => {
                    self.wrong_type(f, "an integer", hint);
                    return None;
                }
            },
        };
        match u64::try_from(n) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.report(
                    f.pos,
                    format!("{}: {n} is out of range", f.name),
                    Some(format!("it must be between {min} and {max}")),
                );
                None
            }
        }
    }

    /// A number, whole or not, within `min..=max`.
    pub fn float(&mut self, f: &Field<'_>, min: f64, max: f64) -> Option<f64> {
        let hint = "write a number such as 0.1, without quotes";
        let x = match f.env_text() {
            Some(t) => match t.trim().parse::<f64>() {
                Ok(x) => x,
                Err(_) => {
                    self.report(
                        f.pos,
                        format!("{}: expected a number, found {t:?}", f.name),
                        Some(hint.into()),
                    );
                    return None;
                }
            },
            None => match f.value() {
                Some(Value::Float(x)) => *x.value(),
                // Lossless for any integer a person would write here.
                #[allow(clippy::cast_precision_loss)]
                Some(Value::Integer(n)) => *n.value() as f64,
                _ => {
                    self.wrong_type(f, "a number", hint);
                    return None;
                }
            },
        };
        if (min..=max).contains(&x) {
            Some(x)
        } else {
            self.report(
                f.pos,
                format!("{}: {x} is out of range", f.name),
                Some(format!("it must be between {min} and {max}")),
            );
            None
        }
    }

    /// A duration string. `allow_zero` is for windows where zero means "at once".
    pub fn duration(&mut self, f: &Field<'_>, allow_zero: bool) -> Option<Duration> {
        if matches!(f.src, Src::Item(_) | Src::Value(_))
            && f.value().and_then(Value::as_str).is_none()
        {
            let hint = match f.value().and_then(Value::as_integer) {
                Some(n) => format!("did you mean \"{n}s\"? {}", values::DURATION_HINT),
                None => values::DURATION_HINT.to_owned(),
            };
            self.wrong_type(f, "a duration string", &hint);
            return None;
        }
        let d = self.parsed(f, values::duration)?;
        if d.is_zero() && !allow_zero {
            self.report(
                f.pos,
                format!("{}: must be longer than zero", f.name),
                Some(values::DURATION_HINT.to_owned()),
            );
            return None;
        }
        Some(d)
    }

    /// A byte size: an integer, or a string such as "1MiB".
    pub fn size(&mut self, f: &Field<'_>) -> Option<u64> {
        let n = match f.env_text() {
            Some(t) => values::size(t),
            None => match f.value() {
                Some(Value::Integer(n)) => u64::try_from(*n.value()).map_err(|_| {
                    Bad::new(format!("{} is not a size", n.value()), values::SIZE_HINT)
                }),
                Some(Value::String(s)) => values::size(s.value()),
                _ => {
                    self.wrong_type(f, "a size", values::SIZE_HINT);
                    return None;
                }
            },
        };
        match n {
            Ok(0) => {
                self.report(
                    f.pos,
                    format!("{}: must be larger than zero", f.name),
                    Some(values::SIZE_HINT.into()),
                );
                None
            }
            Ok(n) => Some(n),
            Err(bad) => {
                self.bad(f, bad);
                None
            }
        }
    }

    /// An array (from the environment: a comma-separated list), as its elements.
    pub fn array<'f>(&mut self, f: &Field<'f>, single_ok: bool) -> Option<Vec<Field<'f>>> {
        match f.env_text() {
            Some(t) => Some(
                t.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Field {
                        name: f.name.clone(),
                        pos: f.pos,
                        src: Src::EnvOwned(s.to_owned()),
                    })
                    .collect(),
            ),
            None => match f.value() {
                Some(Value::Array(a)) => Some(
                    a.iter()
                        .map(|v| Field {
                            name: f.name.clone(),
                            pos: self.pos(v.span(), f.pos),
                            src: Src::Value(v),
                        })
                        .collect(),
                ),
                Some(_) if single_ok => Some(vec![Field {
                    name: f.name.clone(),
                    pos: f.pos,
                    src: f.src.clone(),
                }]),
                _ => {
                    self.wrong_type(f, "an array", "write a list in brackets: [\"a\", \"b\"]");
                    None
                }
            },
        }
    }

    /// An array of strings, each with its place (for cross-reference errors).
    pub fn strings(&mut self, f: &Field<'_>) -> Option<Vec<(String, Pos)>> {
        let items = self.array(f, false)?;
        let mut out = Vec::new();
        let mut ok = true;
        for item in &items {
            match self.string(item) {
                Some(s) => out.push((s, item.pos)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// A table whose values are all strings (`headers`, `labels`), in file order.
    pub fn string_table(&mut self, f: &Field<'_>) -> Option<Vec<(String, String)>> {
        let Some(t) = f.table_like() else {
            self.wrong_type(f, "a table of strings", "write { name = \"value\" }");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (k, item) in t.iter() {
            let sub = Field::sub(self, f, t, k, item);
            match self.string(&sub) {
                Some(v) => out.push((k.to_owned(), v)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// `name = "API"` or `name = { en = "API", ja = "API" }`.
    pub fn localized(&mut self, f: &Field<'_>) -> Option<LocalizedText> {
        self.localized_at(f).map(|(text, _)| text)
    }

    /// Like [`Reader::localized`], with the place of each locale's text (the plain text's
    /// locale is `""`), for problems found inside one of them later.
    pub fn localized_at(&mut self, f: &Field<'_>) -> Option<(LocalizedText, Vec<(String, Pos)>)> {
        if let Some(t) = f.env_text() {
            return Some((LocalizedText::plain(t), vec![(String::new(), f.pos)]));
        }
        if let Some(s) = f.value().and_then(Value::as_str) {
            return Some((LocalizedText::plain(s), vec![(String::new(), f.pos)]));
        }
        let Some(t) = f.table_like() else {
            self.wrong_type(
                f,
                "a string or a table of locales",
                "write \"text\" or { en = \"text\", ja = \"テキスト\" }",
            );
            return None;
        };
        let mut by_locale = BTreeMap::new();
        let mut places = Vec::new();
        let mut ok = true;
        for (k, item) in t.iter() {
            let sub = Field::sub(self, f, t, k, item);
            if let Err(bad) = values::locale(k) {
                self.report(
                    sub.key_pos,
                    format!("{}: {}", sub.name, bad.message),
                    bad.hint,
                );
                ok = false;
                continue;
            }
            match self.string(&sub) {
                Some(v) => {
                    by_locale.insert(k.to_owned(), v);
                    places.push((k.to_owned(), sub.pos));
                }
                None => ok = false,
            }
        }
        if ok && by_locale.is_empty() {
            self.report(
                f.pos,
                format!("{}: no text given", f.name),
                Some("write { en = \"text\" }".into()),
            );
            return None;
        }
        ok.then_some((LocalizedText { by_locale }, places))
    }

    /// Reports every key of `t` not in `allowed`, with a did-you-mean.
    pub fn unknown_keys(&mut self, tbl: &Tbl<'_>, allowed: &[&str]) {
        let Some(t) = tbl.table else { return };
        for (k, _) in t.iter() {
            if !allowed.contains(&k) {
                let pos = self.pos(t.key(k).and_then(|k| k.span()), tbl.pos);
                self.report(
                    pos,
                    format!("unknown key `{k}` in {}", tbl.display),
                    Some(suggest::hint(k, allowed, "known keys here")),
                );
            }
        }
    }
}

/// Where a value came from.
#[derive(Clone)]
pub(crate) enum Src<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Env(&'a str),
    /// One element of a comma-separated environment list.
    EnvOwned(String),
}

/// One value to read, with the name and place to report problems under.
pub(crate) struct Field<'a> {
    /// "`server.listen`" for the file, "KEEL_SERVER__LISTEN" for the environment.
    pub name: String,
    pub pos: Pos,
    pub src: Src<'a>,
}

/// A key of a sub-table, with the key's own place for "this key is wrong" problems.
pub(crate) struct SubField<'a> {
    pub name: String,
    pub key_pos: Pos,
    field: Field<'a>,
}

impl<'a> std::ops::Deref for SubField<'a> {
    type Target = Field<'a>;
    fn deref(&self) -> &Field<'a> {
        &self.field
    }
}

impl<'a> Field<'a> {
    fn value(&self) -> Option<&'a Value> {
        match self.src {
            Src::Item(Item::Value(v)) | Src::Value(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a table, whether written `[x]` or `{ … }`.
    pub fn table_like(&self) -> Option<&'a dyn TableLike> {
        match self.src {
            Src::Item(i) => i.as_table_like(),
            Src::Value(Value::InlineTable(t)) => Some(t as &dyn TableLike),
            _ => None,
        }
    }

    /// The value as TOML, for `json_equals` (which takes any value).
    pub fn toml_value(&self) -> Option<&'a Value> {
        self.value()
    }

    pub fn env_text(&self) -> Option<&str> {
        match &self.src {
            Src::Env(t) => Some(t),
            Src::EnvOwned(t) => Some(t),
            _ => None,
        }
    }

    /// The TOML type name, for "expected …, found …".
    fn found(&self) -> &'static str {
        match self.src {
            Src::Env(_) | Src::EnvOwned(_) => "text",
            Src::Item(Item::Table(_)) => "a table",
            Src::Item(Item::ArrayOfTables(_)) => "an array of tables",
            Src::Item(Item::None) => "nothing",
            Src::Item(Item::Value(v)) | Src::Value(v) => value_type(v),
        }
    }

    fn sub<'t>(
        r: &Reader<'_>,
        parent: &Field<'_>,
        t: &'t dyn TableLike,
        k: &str,
        item: &'t Item,
    ) -> SubField<'t> {
        let key_pos = r.pos(t.key(k).and_then(|k| k.span()), parent.pos);
        let inner = parent.name.trim_matches('`');
        let name = format!("`{inner}.{k}`");
        SubField {
            name: name.clone(),
            key_pos,
            field: Field {
                name,
                pos: r.pos(item.span(), key_pos),
                src: Src::Item(item),
            },
        }
    }
}

pub(crate) fn value_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}

/// One table being read: a single table (with its environment layer), one entry of an
/// array of tables, or an inline table.
pub(crate) struct Tbl<'a> {
    /// "server", "monitor", "intake.route": the prefix of field names.
    pub path: String,
    /// "[server]", "[[monitor]]": how the table is named in messages.
    pub display: String,
    /// `None` when the table is absent from the file (defaults, and the environment, apply).
    pub table: Option<&'a dyn TableLike>,
    /// The header's place, for "missing key" problems.
    pub pos: Pos,
    /// Set for single tables: the environment variables that override their keys.
    pub env: Option<&'a EnvLayer>,
}

impl<'a> Tbl<'a> {
    /// The value of `key`: from the environment when a variable sets it, else from the file.
    pub fn get(&self, r: &Reader<'_>, key: &str) -> Option<Field<'a>> {
        if let Some(ev) = self.env.and_then(|e| e.get(&self.path, key)) {
            return Some(Field {
                name: ev.var.clone(),
                pos: Pos::ENV,
                src: Src::Env(&ev.text),
            });
        }
        let t = self.table?;
        let (k, item) = t.get_key_value(key)?;
        let key_pos = r.pos(k.span(), self.pos);
        Some(Field {
            name: format!("`{}.{key}`", self.path),
            pos: r.pos(item.span(), key_pos),
            src: Src::Item(item),
        })
    }

    /// Like [`Tbl::get`], but reports the key as missing.
    pub fn require(&self, r: &mut Reader<'_>, key: &str, example: &str) -> Option<Field<'a>> {
        let f = self.get(r, key);
        if f.is_none() {
            r.report(
                self.pos,
                format!("{} is missing required key `{key}`", self.display),
                Some(format!("add {example}")),
            );
        }
        f
    }
}
