//! Reading a vendor's JSON by hand, keeping the path to every value.
//!
//! Status documents are outside input whose shape drifts between vendors and years, so the
//! parsers walk a `serde_json::Value` instead of deriving structs: a missing or mistyped field
//! becomes a [`VendorError`] that names it (`components[3].status: expected a string`), and
//! fields Keel does not need can be anything at all.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::VendorError;

/// A value in the document and the path that leads to it.
#[derive(Clone, Copy)]
pub(crate) struct Node<'a> {
    pub value: &'a Value,
    path: Path<'a>,
}

/// A path kept as a chain of borrowed steps, rendered only when an error needs it.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => {
                let p = parent.render();
                if p.is_empty() {
                    (*key).to_string()
                } else {
                    format!("{p}.{key}")
                }
            }
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Node<'a> {
    pub fn root(value: &'a Value) -> Self {
        Node {
            value,
            path: Path::Root,
        }
    }

    pub fn path(&self) -> String {
        self.path.render()
    }

    pub fn error(&self, reason: impl Into<String>) -> VendorError {
        VendorError::Field {
            path: self.path(),
            reason: reason.into(),
        }
    }

    fn expected(&self, what: &str) -> VendorError {
        self.error(format!("expected {what}, found {}", kind(self.value)))
    }

    pub fn as_object(&self) -> Result<&'a Map<String, Value>, VendorError> {
        self.value
            .as_object()
            .ok_or_else(|| self.expected("an object"))
    }

    pub fn as_str(&self) -> Result<&'a str, VendorError> {
        self.value.as_str().ok_or_else(|| self.expected("a string"))
    }

    /// The key's value, treating `null` like absence (vendors use both for "none").
    ///
    /// The returned node borrows `self`'s path, so callers keep the parent node alive while
    /// they work with the child; the parsers are written top-down so that this holds.
    pub fn get<'s>(&'s self, key: &'s str) -> Option<Node<'s>>
    where
        'a: 's,
    {
        let v = self.value.as_object()?.get(key)?;
        if v.is_null() {
            return None;
        }
        Some(Node {
            value: v,
            path: Path::Key(&self.path, key),
        })
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn req<'s>(&'s self, key: &'s str) -> Result<Node<'s>, VendorError>
    where
        'a: 's,
    {
        self.get(key).ok_or_else(|| VendorError::Field {
            path: Path::Key(&self.path, key).render(),
            reason: "missing".into(),
        })
    }

    pub fn req_str<'s>(&'s self, key: &'s str) -> Result<&'s str, VendorError>
    where
        'a: 's,
    {
        let n = self.req(key)?;
        n.value.as_str().ok_or_else(|| n.expected("a string"))
    }

    pub fn opt_str<'s>(&'s self, key: &'s str) -> Result<Option<&'s str>, VendorError>
    where
        'a: 's,
    {
        match self.get(key) {
            None => Ok(None),
            Some(n) => n
                .value
                .as_str()
                .map(Some)
                .ok_or_else(|| n.expected("a string")),
        }
    }

    /// An identifier that some vendors send as a number (Slack, Heroku) and others as a string.
    pub fn opt_id<'s>(&'s self, key: &'s str) -> Result<Option<String>, VendorError>
    where
        'a: 's,
    {
        match self.get(key) {
            None => Ok(None),
            Some(n) => match n.value {
                Value::String(s) => Ok(Some(s.clone())),
                Value::Number(x) => Ok(Some(x.to_string())),
                _ => Err(n.expected("a string or number")),
            },
        }
    }

    pub fn opt_bool<'s>(&'s self, key: &'s str) -> Result<Option<bool>, VendorError>
    where
        'a: 's,
    {
        match self.get(key) {
            None => Ok(None),
            Some(n) => n
                .value
                .as_bool()
                .map(Some)
                .ok_or_else(|| n.expected("a boolean")),
        }
    }

    /// The items of an array, each with its indexed path. Callers pass a closure because the
    /// item nodes borrow this node's path.
    pub fn each<T>(
        &self,
        mut f: impl FnMut(Node<'_>) -> Result<T, VendorError>,
    ) -> Result<Vec<T>, VendorError> {
        let items = self
            .value
            .as_array()
            .ok_or_else(|| self.expected("an array"))?;
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            out.push(f(Node {
                value: v,
                path: Path::Index(&self.path, i),
            })?);
        }
        Ok(out)
    }

    /// Like [`each`](Self::each) over an optional array key: absent or `null` is empty.
    pub fn each_in<T>(
        &self,
        key: &str,
        f: impl FnMut(Node<'_>) -> Result<T, VendorError>,
    ) -> Result<Vec<T>, VendorError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(n) => n.each(f),
        }
    }

    /// A timestamp, read leniently: a time Keel cannot read is dropped rather than failing the
    /// whole document, because times only decorate the health a page reports.
    pub fn opt_time(&self, key: &str) -> Option<DateTime<Utc>> {
        let s = self.get(key)?.value.as_str()?;
        parse_time(s)
    }
}

/// RFC 3339 as most vendors send it.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
