//! Walks a `keel.toml` document section by section into the typed [`Config`].
//!
//! Every problem is collected rather than returned at the first, so `keel check` can show
//! them all at once. Values come through [`Reader`] (which words type errors and knows the
//! environment layer); cross-references are checked afterwards by `validate.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml_edit::{ImDocument, Item, Table, TomlError, Value};

use super::env::{lookup, EnvLayer, SMTP_PASSWORD_VAR};
use super::model::*;
use super::monitor;
use super::position::Pos;
use super::read::{Field, Reader, Tbl};
use super::validate::{self, Edge, Node, NodeKind, Ref, Refs};
use super::values::{self, Bad};
use super::{keys, suggest, Diagnostic};
use crate::assess::{Criticality, Severity};
use crate::ids::{self, ComponentId, VendorId};

/// Parses and validates a config file, layered with `KEEL_` variables from `env`.
///
/// `file` is only used to label diagnostics. On failure, every problem found is returned,
/// in file order (environment problems, at line 0, first).
pub fn parse(text: &str, file: &str, env: &[(String, String)]) -> Result<Config, Vec<Diagnostic>> {
    let mut r = Reader::new(file, text);
    let (layer, env_problems) = EnvLayer::collect(env);
    for (_, bad) in env_problems {
        r.report(Pos::ENV, bad.message, bad.hint);
    }
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            syntax_error(&mut r, &e);
            return Err(r.finish());
        }
    };
    let root = doc.as_table();
    top_level_keys(&mut r, root);

    let mut refs = Refs::default();
    let t = single(&mut r, root, "server", &layer);
    let server = server(&mut r, &t);
    let t = single(&mut r, root, "page", &layer);
    let page = page(&mut r, &t);
    let mut group_places = Vec::new();
    let components: Vec<Component> = entries(&mut r, root, "component")
        .iter()
        .filter_map(|t| component(&mut r, t, &mut refs, &mut group_places))
        .collect();
    let vendors: Vec<Vendor> = entries(&mut r, root, "vendor")
        .iter()
        .filter_map(|t| vendor(&mut r, t, &mut refs))
        .collect();
    let infra: Vec<Infra> = entries(&mut r, root, "infra")
        .iter()
        .filter_map(|t| infra(&mut r, t, &mut refs))
        .collect();
    let monitors: Vec<Monitor> = entries(&mut r, root, "monitor")
        .iter()
        .filter_map(|t| monitor::monitor(&mut r, t, &mut refs))
        .collect();
    check_groups(&mut r, &group_places, &page.locales, &refs.nodes);
    let t = single(&mut r, root, "incidents", &layer);
    let incidents = incidents(&mut r, &t, &infra, &monitors);
    let t = single(&mut r, root, "severity", &layer);
    let severity = severity(&mut r, &t);
    let runbooks: Vec<Runbook> = entries(&mut r, root, "runbook")
        .iter()
        .filter_map(|t| runbook(&mut r, t, &mut refs))
        .collect();
    let t = single(&mut r, root, "notify", &layer);
    let notify = notify(&mut r, &t, &layer, env, &mut refs);
    let t = single(&mut r, root, "intake", &layer);
    let intake = intake(&mut r, &t, &mut refs);
    let t = single(&mut r, root, "storage", &layer);
    let storage = storage(&mut r, &t);
    let t = single(&mut r, root, "scheduler", &layer);
    let scheduler = scheduler(&mut r, &t);
    let t = single(&mut r, root, "cluster", &layer);
    let cluster = cluster(&mut r, &t);
    let t = single(&mut r, root, "disclosure", &layer);
    let (disclosure, term_places) = disclosure(&mut r, &t);
    let t = single(&mut r, root, "templates", &layer);
    let (templates, template_places) = templates(&mut r, &t);
    let team = super::team_parse::team(&mut r, root, &layer, env, &refs);

    for p in validate::check(&refs) {
        r.report(p.pos, p.message, p.hint);
    }
    if r.has_errors() {
        return Err(r.finish());
    }
    let config = Config {
        server,
        page,
        components,
        vendors,
        infra,
        monitors,
        incidents,
        severity,
        runbooks,
        notify,
        intake,
        storage,
        scheduler,
        cluster,
        disclosure,
        templates,
        people: team.people,
        schedules: team.schedules,
        escalations: team.escalations,
        paging: team.paging,
    };
    // Drafts must never trip the disclosure check, so wording that would is refused here,
    // where the operator can fix it, rather than when an outage needs it.
    let places = WordingPlaces {
        terms: &term_places,
        templates: &template_places,
        nodes: &refs.nodes,
    };
    for p in crate::public::check_wording(&config) {
        let pos = places.of(&p);
        r.report(pos, p.message, Some(p.hint));
    }
    if r.has_errors() {
        return Err(r.finish());
    }
    Ok(config)
}

/// Where the things a wording problem may be blamed on were written.
struct WordingPlaces<'a> {
    /// `[disclosure] confidential_terms` entries.
    terms: &'a [(String, Pos)],
    /// (situation, "title"/"body", locale or "") → the text's place.
    templates: &'a [((Situation, &'static str, String), Pos)],
    nodes: &'a [Node],
}

impl WordingPlaces<'_> {
    /// An operator's template is blamed at its text; Keel's own wording at the term that
    /// trips it (a confidential term, or the node whose id it is), else at the file's top.
    fn of(&self, p: &crate::public::WordingProblem) -> Pos {
        if let Some((situation, field, locale)) = &p.template {
            let found = self
                .templates
                .iter()
                .find(|((s, f, l), _)| s == situation && f == field && l == locale)
                .or_else(|| {
                    self.templates
                        .iter()
                        .find(|((s, f, l), _)| s == situation && f == field && l.is_empty())
                });
            if let Some((_, pos)) = found {
                return *pos;
            }
        }
        let term = p.finding.term.to_lowercase();
        self.terms
            .iter()
            .find(|(t, _)| t.trim().to_lowercase() == term)
            .map(|(_, pos)| *pos)
            .or_else(|| {
                self.nodes
                    .iter()
                    .find(|n| n.id.to_lowercase() == term)
                    .map(|n| n.pos)
            })
            .unwrap_or(Pos { line: 1, column: 1 })
    }
}

fn syntax_error(r: &mut Reader<'_>, e: &TomlError) {
    let pos = r.pos(e.span(), Pos { line: 1, column: 1 });
    // toml_edit's message is "what\nexpected …"; keep it on one line.
    let detail: Vec<&str> = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let message = if detail.is_empty() {
        "TOML syntax error: missing or incomplete value".to_owned()
    } else {
        format!("TOML syntax error: {}", detail.join(": "))
    };
    let hint = if message.contains("duplicate key") {
        "each key and table may appear once; for several components, vendors, monitors or \
         runbooks write [[component]], [[vendor]], [[monitor]] or [[runbook]] (double \
         brackets) before each"
    } else {
        "check quotes, brackets and `=` around this place (TOML syntax: https://toml.io)"
    };
    r.report(pos, message, Some(hint.to_owned()));
}

/// How a top-level name is written: `[server]` or `[[monitor]]`.
fn header(name: &str) -> String {
    if keys::ARRAYS.contains(&name) {
        format!("[[{name}]]")
    } else {
        format!("[{name}]")
    }
}

fn top_level_keys(r: &mut Reader<'_>, root: &Table) {
    for (k, item) in root.iter() {
        if keys::TOP.contains(&k) {
            continue;
        }
        let pos = r.pos(
            root.key(k).and_then(|k| k.span()).or_else(|| item.span()),
            Pos { line: 1, column: 1 },
        );
        // A key written above the first table header belongs to the root; say where it goes.
        let home = keys::SINGLE_TABLES
            .iter()
            .find(|(_, ks)| ks.contains(&k))
            .map(|(t, _)| *t);
        let hint = match (suggest::closest(k, keys::TOP.iter().copied()), home) {
            (_, Some(t)) if !item.is_table_like() => format!("`{k}` belongs under [{t}]"),
            (Some(c), _) => format!("did you mean `{}`?", header(c)),
            (None, _) => format!(
                "known tables: {}",
                keys::TOP
                    .iter()
                    .map(|t| header(t))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        };
        let what = if item.is_table_like() || item.is_array_of_tables() {
            "table"
        } else {
            "key"
        };
        r.report(pos, format!("unknown top-level {what} `{k}`"), Some(hint));
    }
}

/// A single table such as `[server]`, with the environment layer. Absent is fine: defaults.
fn single<'a>(r: &mut Reader<'_>, root: &'a Table, name: &str, env: &'a EnvLayer) -> Tbl<'a> {
    single_in(r, Some(root), name, name, Pos { line: 1, column: 1 }, env)
}

/// A single table `key` inside `parent` (`[notify.smtp]` in `[notify]`), named `path`.
/// Absent, it keeps `pos` (the parent's place, or [`Pos::ENV`] when only variables set it).
pub(crate) fn single_in<'a>(
    r: &mut Reader<'_>,
    parent: Option<&'a dyn toml_edit::TableLike>,
    key: &str,
    path: &str,
    pos: Pos,
    env: &'a EnvLayer,
) -> Tbl<'a> {
    let name = path;
    let mut tbl = Tbl {
        path: path.to_owned(),
        display: header(path),
        table: None,
        pos,
        env: Some(env),
    };
    let Some((key, item)) = parent.and_then(|p| p.get_key_value(key)) else {
        return tbl;
    };
    tbl.pos = r.pos(item.span().or_else(|| key.span()), tbl.pos);
    match item.as_table_like() {
        Some(t) => tbl.table = Some(t),
        None => {
            let hint = if item.is_array_of_tables() {
                format!("write [{name}] with single brackets; there is only one")
            } else {
                format!("write the keys under a [{name}] header")
            };
            r.report(
                tbl.pos,
                format!("`{name}` must be a table [{name}]"),
                Some(hint),
            );
        }
    }
    tbl
}

/// The entries of an array of tables: `[[name]]` headers, or `name = [{ … }, { … }]`.
pub(crate) fn array_entries<'a>(
    r: &mut Reader<'_>,
    item: &'a Item,
    path: &str,
    fallback: Pos,
) -> Vec<Tbl<'a>> {
    let display = format!("[[{path}]]");
    let entry = |table: &'a dyn toml_edit::TableLike, pos: Pos| Tbl {
        path: path.to_owned(),
        display: display.clone(),
        table: Some(table),
        pos,
        env: None,
    };
    match item {
        Item::ArrayOfTables(a) => a
            .iter()
            .map(|t| entry(t, r.pos(t.span(), fallback)))
            .collect(),
        Item::Value(Value::Array(a)) if a.iter().all(Value::is_inline_table) => a
            .iter()
            .filter_map(|v| {
                v.as_inline_table()
                    .map(|t| entry(t, r.pos(v.span(), fallback)))
            })
            .collect(),
        Item::Table(t) => {
            let pos = r.pos(t.span(), fallback);
            r.report(
                pos,
                format!("`{path}` must be written [[{path}]], with double brackets"),
                Some(format!("each [[{path}]] header starts one more entry; [{path}] means there is only one")),
            );
            // Read it anyway, so its own problems are reported in the same run.
            vec![entry(t, pos)]
        }
        _ => {
            let pos = r.pos(item.span(), fallback);
            r.report(
                pos,
                format!("`{path}` must be an array of tables [[{path}]]"),
                Some(format!(
                    "write a [[{path}]] header followed by its keys, once per entry"
                )),
            );
            Vec::new()
        }
    }
}

fn entries<'a>(r: &mut Reader<'_>, root: &'a Table, name: &str) -> Vec<Tbl<'a>> {
    let Some((key, item)) = root.get_key_value(name) else {
        return Vec::new();
    };
    let fallback = r.pos(key.span(), Pos { line: 1, column: 1 });
    array_entries(r, item, name, fallback)
}

const ID_HINT: &str =
    "ids use lowercase letters, digits, '-' and '_' (at most 64 characters), e.g. \"api-v2\"";

/// Reads `id`, keeping the raw text even when malformed (see [`Refs`]).
pub(crate) fn read_id(
    r: &mut Reader<'_>,
    t: &Tbl<'_>,
    example: &str,
) -> Option<(String, Pos, bool)> {
    let f = t.require(r, "id", example)?;
    let raw = r.string(&f)?;
    let ok = match ids::validate_id(&raw) {
        Ok(()) => true,
        Err(e) => {
            r.bad(&f, Bad::new(format!("bad id {raw:?}: {e}"), ID_HINT));
            false
        }
    };
    Some((raw, f.pos, ok))
}

fn server(r: &mut Reader<'_>, t: &Tbl<'_>) -> ServerConfig {
    r.unknown_keys(t, keys::SERVER);
    let d = ServerConfig::default();
    let listen: Option<SocketAddr> = t
        .get(r, "listen")
        .and_then(|f| r.parsed(&f, values::socket_addr));
    ServerConfig {
        listen: listen.unwrap_or(d.listen),
        data_dir: t
            .get(r, "data_dir")
            .and_then(|f| r.nonempty(&f))
            .map_or(d.data_dir, PathBuf::from),
        database_url: t
            .get(r, "database_url")
            .and_then(|f| r.parsed(&f, values::database_url))
            .map(Secret),
        header_read_timeout: t
            .get(r, "header_read_timeout")
            .and_then(|f| r.duration(&f, false))
            .unwrap_or(d.header_read_timeout),
    }
}

fn page(r: &mut Reader<'_>, t: &Tbl<'_>) -> PageConfig {
    r.unknown_keys(t, keys::PAGE);
    let d = PageConfig::default();
    let title = t
        .get(r, "title")
        .and_then(|f| r.nonempty(&f))
        .unwrap_or(d.title);
    let mut locales = d.locales;
    if let Some(f) = t.get(r, "locales") {
        if let Some(list) = r.strings(&f) {
            if list.is_empty() {
                r.report(
                    f.pos,
                    format!("{}: needs at least one locale", f.name),
                    Some("write locales = [\"en\"]".into()),
                );
            }
            let mut seen = Vec::new();
            for (l, pos) in list {
                if let Err(bad) = values::locale(&l) {
                    r.report(pos, format!("{}: {}", f.name, bad.message), bad.hint);
                } else if seen.contains(&l) {
                    r.report(
                        pos,
                        format!("{}: locale {l:?} is listed twice", f.name),
                        None,
                    );
                } else {
                    seen.push(l);
                }
            }
            locales = seen;
        }
    }
    let base_url = t.get(r, "base_url").and_then(|f| {
        r.parsed(&f, values::http_url)
            .map(|u| u.trim_end_matches('/').to_owned())
    });
    let export_dir = t
        .get(r, "export_dir")
        .and_then(|f| r.nonempty(&f))
        .map(PathBuf::from);
    PageConfig {
        title,
        locales,
        base_url,
        export_dir,
    }
}

/// `[disclosure]`, with the place of each confidential term (to blame it when it makes
/// Keel's own wording unpublishable).
fn disclosure(r: &mut Reader<'_>, t: &Tbl<'_>) -> (DisclosureConfig, Vec<(String, Pos)>) {
    r.unknown_keys(t, keys::DISCLOSURE);
    let mut terms = Vec::new();
    let mut places = Vec::new();
    if let Some(f) = t.get(r, "confidential_terms") {
        for (term, pos) in r.strings(&f).unwrap_or_default() {
            let chars = term.trim().chars().count();
            if chars < crate::public::MIN_TERM_CHARS {
                r.report(
                    pos,
                    format!("{}: {term:?} is too short to look for", f.name),
                    Some(format!(
                        "terms need at least {} characters; a single letter would refuse every text",
                        crate::public::MIN_TERM_CHARS
                    )),
                );
                continue;
            }
            places.push((term.clone(), pos));
            terms.push(term);
        }
    }
    (
        DisclosureConfig {
            confidential_terms: terms,
        },
        places,
    )
}

type TemplatePlaces = Vec<((Situation, &'static str, String), Pos)>;

/// `[templates]`: `next_update` and one `[templates.<situation>]` per overridden situation,
/// every placeholder checked.
fn templates(r: &mut Reader<'_>, t: &Tbl<'_>) -> (TemplatesConfig, TemplatePlaces) {
    r.unknown_keys(t, keys::TEMPLATES);
    let d = TemplatesConfig::default();
    let next_update = t
        .get(r, "next_update")
        .and_then(|f| r.duration(&f, false))
        .unwrap_or(d.next_update);
    let mut overrides = std::collections::BTreeMap::new();
    let mut places = Vec::new();
    for situation in Situation::ALL {
        let Some((key, item)) = t.table.and_then(|tl| tl.get_key_value(situation.as_str())) else {
            continue;
        };
        let pos = r.pos(item.span().or_else(|| key.span()), t.pos);
        let path = format!("templates.{situation}");
        let Some(table) = item.as_table_like() else {
            r.report(
                pos,
                format!("`{path}` must be a table"),
                Some(format!(
                    "write [{path}] followed by title = {{ en = \"…\" }} and body = {{ en = \"…\" }}"
                )),
            );
            continue;
        };
        let sub = Tbl {
            path: path.clone(),
            display: format!("[{path}]"),
            table: Some(table),
            pos,
            env: None,
        };
        r.unknown_keys(&sub, keys::TEMPLATE);
        let mut read = |field: &'static str| -> Option<LocalizedText> {
            let f = sub.get(r, field)?;
            let (text, at) = r.localized_at(&f)?;
            let mut ok = true;
            for (locale, place) in at {
                let value = text.by_locale.get(&locale).map_or("", String::as_str);
                if let Err(e) = crate::public::validate_template(value) {
                    let name = if locale.is_empty() {
                        format!("`{path}.{field}`")
                    } else {
                        format!("`{path}.{field}.{locale}`")
                    };
                    r.report(place, format!("{name}: {}", e.message), Some(e.hint));
                    ok = false;
                }
                places.push(((situation, field, locale), place));
            }
            ok.then_some(text)
        };
        let title = read("title");
        let body = read("body");
        if title.is_some() || body.is_some() {
            overrides.insert(situation, TemplateOverride { title, body });
        }
    }
    (
        TemplatesConfig {
            next_update,
            overrides,
        },
        places,
    )
}

/// Where each component's `group` was written: (the group, its place, the component's id).
type GroupPlaces = Vec<(LocalizedText, Pos, String)>;

fn component(
    r: &mut Reader<'_>,
    t: &Tbl<'_>,
    refs: &mut Refs,
    groups: &mut GroupPlaces,
) -> Option<Component> {
    r.unknown_keys(t, keys::COMPONENT);
    let id = read_id(r, t, "id = \"api\"");
    if let Some((raw, pos, _)) = &id {
        refs.nodes.push(Node {
            id: raw.clone(),
            kind: NodeKind::Component,
            pos: *pos,
        });
    }
    let name = t.get(r, "name").and_then(|f| r.localized(&f));
    let users = t
        .get(r, "users")
        .map_or(Some(0), |f| r.uint(&f, 0, u64::MAX));
    let depends_on = depends_on(r, t, id.as_ref().map(|(raw, _, _)| raw.as_str()), refs);
    let workaround = t.get(r, "workaround").and_then(|f| r.localized(&f));
    let public = t.get(r, "public").map_or(Some(true), |f| r.bool(&f));
    let criticality = t
        .get(r, "criticality")
        .map_or(Some(Criticality::Normal), |f| {
            r.parsed(&f, values::criticality)
        });
    if let (Some((raw, _, _)), Some(false)) = (&id, public) {
        refs.internal.push(raw.clone());
    }
    let mut alternatives = Vec::new();
    if let Some(f) = t.get(r, "alternatives") {
        for (alt, pos) in r.strings(&f).unwrap_or_default() {
            refs.alternatives.push(Edge {
                from: id
                    .as_ref()
                    .map(|(raw, _, _)| raw.clone())
                    .unwrap_or_default(),
                to: Ref {
                    name: alt.clone(),
                    pos,
                },
            });
            if !alternatives.contains(&alt) {
                alternatives.push(alt);
            }
        }
    }

    let group = match t.get(r, "group") {
        None => Some(None),
        Some(f) => r.localized_at(&f).and_then(|(text, places)| {
            let mut ok = true;
            for (locale, pos) in &places {
                if text.by_locale[locale].trim().is_empty() {
                    r.report(
                        *pos,
                        format!("{}: may not be empty", f.name),
                        Some("name the group, or leave `group` out to show the component at the top level".into()),
                    );
                    ok = false;
                }
            }
            if let (true, Some((raw, _, _))) = (ok, &id) {
                groups.push((text.clone(), f.pos, raw.clone()));
            }
            ok.then_some(Some(text))
        }),
    };

    let id = ComponentId::parse(id?.0).ok()?;
    Some(Component {
        name: name.unwrap_or_else(|| LocalizedText::plain(id.as_str())),
        id,
        users: users?,
        depends_on,
        workaround,
        public: public?,
        criticality: criticality?,
        alternatives,
        group: group?,
    })
}

/// A group is one `group` value: two values that differ but read the same in one of the page's
/// languages (`"Europe"` and `{ en = "Europe", ja = "欧州" }`) would show two groups of the
/// same name, so the second is refused; so is a group whose id is already a node's.
fn check_groups(r: &mut Reader<'_>, groups: &GroupPlaces, locales: &[String], nodes: &[Node]) {
    let mut seen: Vec<&(LocalizedText, Pos, String)> = Vec::new();
    for g in groups {
        let (text, pos, component) = g;
        if seen.iter().any(|s| s.0 == *text) {
            continue;
        }
        let clash = seen.iter().find_map(|s| {
            locales
                .iter()
                .find(|l| s.0.get(l) == text.get(l))
                .map(|l| (s, l))
        });
        if let Some((first, locale)) = clash {
            r.report(
                *pos,
                format!(
                    "`group` of component `{component}` reads {:?} in {locale}, like the group of \
                     component `{}` (line {}), but is written differently",
                    text.get(locale),
                    first.2,
                    first.1.line
                ),
                Some("write the same `group` value for every component of one group".into()),
            );
            continue;
        }
        let id = group_id(text);
        if let Some(node) = nodes.iter().find(|n| n.id == id) {
            r.report(
                *pos,
                format!(
                    "the id of group {:?} ({id}) is already the id of `{}`",
                    text.get(""),
                    node.id
                ),
                Some("rename the group or that node".into()),
            );
        }
        seen.push(g);
    }
}

/// `depends_on` of a node, deduplicated; every entry is recorded for the reference and
/// cycle checks under `from` (the node's raw id, when it has one).
fn depends_on(r: &mut Reader<'_>, t: &Tbl<'_>, from: Option<&str>, refs: &mut Refs) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(f) = t.get(r, "depends_on") {
        for (dep, pos) in r.strings(&f).unwrap_or_default() {
            if let Some(from) = from {
                refs.depends.push(Edge {
                    from: from.to_owned(),
                    to: Ref {
                        name: dep.clone(),
                        pos,
                    },
                });
            }
            if !out.contains(&dep) {
                out.push(dep);
            }
        }
    }
    out
}

fn infra(r: &mut Reader<'_>, t: &Tbl<'_>, refs: &mut Refs) -> Option<Infra> {
    r.unknown_keys(t, keys::INFRA);
    let id = read_id(r, t, "id = \"network\"");
    if let Some((raw, pos, _)) = &id {
        refs.nodes.push(Node {
            id: raw.clone(),
            kind: NodeKind::Infra,
            pos: *pos,
        });
    }
    let name = t.get(r, "name").and_then(|f| r.localized(&f));
    let depends_on = depends_on(r, t, id.as_ref().map(|(raw, _, _)| raw.as_str()), refs);
    let canary = t.get(r, "canary").map_or(Some(false), |f| r.bool(&f));

    let id = ComponentId::parse(id?.0).ok()?;
    Some(Infra {
        name: name.unwrap_or_else(|| LocalizedText::plain(id.as_str())),
        id,
        depends_on,
        canary: canary?,
    })
}

fn vendor(r: &mut Reader<'_>, t: &Tbl<'_>, refs: &mut Refs) -> Option<Vendor> {
    r.unknown_keys(t, keys::VENDOR);
    let id = read_id(r, t, "id = \"payments\"");
    if let Some((raw, pos, _)) = &id {
        refs.nodes.push(Node {
            id: raw.clone(),
            kind: NodeKind::Vendor,
            pos: *pos,
        });
    }
    let name = t.get(r, "name").and_then(|f| r.nonempty(&f));
    let status_url = t
        .require(
            r,
            "status_url",
            "status_url = \"https://status.example.com/api/v2/summary.json\"",
        )
        .and_then(|f| r.parsed(&f, values::http_url));
    let interval = t
        .get(r, "interval")
        .map_or(Some(Duration::from_secs(60)), |f| r.duration(&f, false));
    let timeout = t
        .get(r, "timeout")
        .map_or(Some(Duration::from_secs(10)), |f| r.duration(&f, false));
    let confidential = t.get(r, "confidential").map_or(Some(false), |f| r.bool(&f));
    let components = match t.get(r, "components") {
        None => Some(Vec::new()),
        Some(f) => r
            .strings(&f)
            .map(|v| v.into_iter().map(|(s, _)| s).collect()),
    };
    let format = t.get(r, "format").map_or(Some(VendorFormat::Auto), |f| {
        r.parsed(&f, values::vendor_format)
    });

    let id = VendorId::parse(id?.0).ok()?;
    Some(Vendor {
        name: name.unwrap_or_else(|| id.as_str().to_owned()),
        id,
        status_url: status_url?,
        interval: interval?,
        timeout: timeout?,
        confidential: confidential?,
        components: components?,
        format: format?,
    })
}

fn incidents(
    r: &mut Reader<'_>,
    t: &Tbl<'_>,
    infra: &[Infra],
    monitors: &[Monitor],
) -> IncidentsConfig {
    r.unknown_keys(t, keys::INCIDENTS);
    let d = IncidentsConfig {
        canary_grace: canary_confirmation(infra, monitors),
        ..IncidentsConfig::default()
    };
    // Zero is meaningful for each: publish at once, resolve at once, never reopen.
    let mut window = |key: &str, default: Duration| {
        t.get(r, key)
            .and_then(|f| r.duration(&f, true))
            .unwrap_or(default)
    };
    IncidentsConfig {
        publish_after: window("publish_after", d.publish_after),
        stability_window: window("stability_window", d.stability_window),
        recurrence_window: window("recurrence_window", d.recurrence_window),
        canary_grace: window("canary_grace", d.canary_grace),
    }
}

/// The longest a canary's monitor can take to confirm a failure that starts right after one
/// of its checks passed: the next check comes after `interval`, then `confirmations - 1`
/// retries `retry_interval` apart, each failing at worst by `timeout`. Zero without canary
/// monitors (nothing to wait for).
fn canary_confirmation(infra: &[Infra], monitors: &[Monitor]) -> Duration {
    monitors
        .iter()
        .filter(|m| infra.iter().any(|i| i.canary && i.id == m.component))
        .map(|m| {
            m.interval
                + m.timeout * m.confirmations
                + m.retry_interval * m.confirmations.saturating_sub(1)
        })
        .max()
        .unwrap_or(Duration::ZERO)
}

fn severity(r: &mut Reader<'_>, t: &Tbl<'_>) -> SeverityConfig {
    r.unknown_keys(t, keys::SEVERITY);
    let d = SeverityConfig::default();
    // Each share with the name and place to blame if the three are out of order; `None`
    // when the written value was refused (already reported).
    let mut share = |key: &str, default: f64| match t.get(r, key) {
        None => Some((default, None)),
        Some(f) => r.float(&f, 0.0, 1.0).map(|x| (x, Some((f.name, f.pos)))),
    };
    let sev1 = share("sev1_user_share", d.sev1_user_share);
    let sev2 = share("sev2_user_share", d.sev2_user_share);
    let sev3 = share("sev3_user_share", d.sev3_user_share);
    for (higher, lower, hk, lk) in [
        (&sev1, &sev2, "sev1_user_share", "sev2_user_share"),
        (&sev2, &sev3, "sev2_user_share", "sev3_user_share"),
    ] {
        let (Some((h, h_at)), Some((l, l_at))) = (higher, lower) else {
            continue;
        };
        if h >= l {
            continue;
        }
        // Blame the key that was written; when both were, the second one.
        let Some((_, pos)) = l_at.as_ref().or(h_at.as_ref()) else {
            continue;
        };
        let written = |at: &Option<(String, Pos)>, key: &str| match at {
            Some((n, _)) => n.clone(),
            None => format!("the default `{key}`"),
        };
        r.report(
            *pos,
            format!(
                "{} ({l}) is larger than {} ({h})",
                written(l_at, lk),
                written(h_at, hk)
            ),
            Some(
                "a worse severity needs a larger share of users: sev1_user_share ≥ \
                 sev2_user_share ≥ sev3_user_share (defaults 0.5, 0.2, 0.05)"
                    .into(),
            ),
        );
    }
    let mut level = |key: &str, default: Severity| {
        t.get(r, key)
            .and_then(|f| r.parsed(&f, values::severity))
            .unwrap_or(default)
    };
    let critical_min = level("critical_min", d.critical_min);
    let high_min = level("high_min", d.high_min);
    let internal_max = level("internal_max", d.internal_max);
    // "none" is accepted so an environment variable can lift a cap set in the file.
    let vendor_max = t
        .get(r, "vendor_max")
        .and_then(|f| {
            r.parsed(&f, |s| {
                if s.trim().eq_ignore_ascii_case("none") {
                    Ok(None)
                } else {
                    values::severity(s).map(Some)
                }
            })
        })
        .unwrap_or(d.vendor_max);
    SeverityConfig {
        sev1_user_share: sev1.map_or(d.sev1_user_share, |(x, _)| x),
        sev2_user_share: sev2.map_or(d.sev2_user_share, |(x, _)| x),
        sev3_user_share: sev3.map_or(d.sev3_user_share, |(x, _)| x),
        critical_min,
        high_min,
        internal_max,
        vendor_max,
    }
}

fn runbook(r: &mut Reader<'_>, t: &Tbl<'_>, refs: &mut Refs) -> Option<Runbook> {
    r.unknown_keys(t, keys::RUNBOOK);
    let id = read_id(r, t, "id = \"restart-db\"");
    if let Some((raw, pos, _)) = &id {
        refs.runbooks.push(Ref {
            name: raw.clone(),
            pos: *pos,
        });
    }
    let label = id.as_ref().map_or_else(
        || "[[runbook]]".to_owned(),
        |(raw, _, _)| format!("runbook `{raw}`"),
    );
    let component = match t.get(r, "component") {
        None => Some(None),
        Some(f) => r.string(&f).map(|name| {
            refs.runbook_nodes.push(Edge {
                from: id
                    .as_ref()
                    .map(|(raw, _, _)| raw.clone())
                    .unwrap_or_default(),
                to: Ref {
                    name: name.clone(),
                    pos: f.pos,
                },
            });
            Some(name)
        }),
    };
    let failure_kind = match t.get(r, "failure_kind") {
        None => Some(None),
        Some(f) => r.parsed(&f, values::failure_kind).map(Some),
    };
    if t.get(r, "component").is_none() && t.get(r, "failure_kind").is_none() {
        r.report(
            t.pos,
            format!("{label} does not say what it is for"),
            Some(
                "add component = \"db\" (a component, vendor or infra id), failure_kind = \
                 \"tcp\", or both"
                    .into(),
            ),
        );
    }
    let example = "steps = [\"Check the database host\", \"Restart the database\"]";
    let steps = t.require(r, "steps", example).and_then(|f| {
        let items = r.array(&f, false)?;
        if items.is_empty() {
            r.report(
                f.pos,
                format!("{}: a runbook needs at least one step", f.name),
                Some(format!("write {example}")),
            );
            return None;
        }
        let mut ok = true;
        let mut steps = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match runbook_step(r, item, i + 1, refs) {
                Some(step) => steps.push(step),
                None => ok = false,
            }
        }
        ok.then_some(steps)
    });

    Some(Runbook {
        id: id?.0,
        component: component?,
        failure_kind: failure_kind?,
        steps: steps?,
    })
}

/// One step: a string, or `{ text = "…", when_healthy = ["backup-db"] }`. Guard nodes are
/// recorded for the reference check, which runs once every node is known.
fn runbook_step(
    r: &mut Reader<'_>,
    item: &Field<'_>,
    n: usize,
    refs: &mut Refs,
) -> Option<RunbookStep> {
    let empty = |r: &mut Reader<'_>, pos| {
        r.report(
            pos,
            format!("{}: step {n} is empty", item.name),
            Some("write what to do, or remove the empty entry".into()),
        );
    };
    let Some(table) = item.table_like() else {
        let text = match item.toml_value() {
            Some(Value::String(_)) | None => r.string(item)?,
            Some(_) => {
                r.report(
                    item.pos,
                    format!(
                        "{}: step {n} must be a string or a table, found {}",
                        item.name,
                        super::read::value_type(item.toml_value()?)
                    ),
                    Some(
                        "write \"Check the DB\" or { text = \"Fail over to backup-db\", \
                         when_healthy = [\"backup-db\"] }"
                            .into(),
                    ),
                );
                return None;
            }
        };
        if text.trim().is_empty() {
            empty(r, item.pos);
            return None;
        }
        return Some(RunbookStep::plain(text));
    };
    let t = Tbl {
        path: "runbook.steps".into(),
        display: format!("step {n} of {}", item.name),
        table: Some(table),
        pos: item.pos,
        env: None,
    };
    r.unknown_keys(&t, keys::RUNBOOK_STEP);
    let text = t
        .require(r, "text", "text = \"Fail over to backup-db\"")
        .and_then(|f| r.string(&f));
    if text.as_ref().is_some_and(|s| s.trim().is_empty()) {
        empty(r, item.pos);
        return None;
    }
    let mut when_healthy = Vec::new();
    if let Some(f) = t.get(r, "when_healthy") {
        for (node, pos) in r.strings(&f)? {
            refs.step_guards.push(Ref {
                name: node.clone(),
                pos,
            });
            if !when_healthy.contains(&node) {
                when_healthy.push(node);
            }
        }
    }
    Some(RunbookStep {
        text: text?,
        when_healthy,
    })
}

fn notify(
    r: &mut Reader<'_>,
    t: &Tbl<'_>,
    layer: &EnvLayer,
    env: &[(String, String)],
    refs: &mut Refs,
) -> NotifyConfig {
    r.unknown_keys(t, keys::NOTIFY);
    let d = NotifyConfig::default();
    let allow_private_targets = t
        .get(r, "allow_private_targets")
        .and_then(|f| r.bool(&f))
        .unwrap_or(d.allow_private_targets);
    // Each duration with the name and place to blame if the lease is too short; `None` when
    // the written value was refused (already reported).
    let mut span = |key: &str, default: Duration| match t.get(r, key) {
        None => Some((default, None)),
        Some(f) => r.duration(&f, false).map(|x| (x, Some((f.name, f.pos)))),
    };
    let timeout = span("timeout", d.timeout);
    let lease = span("lease", d.lease);
    if let (Some((tm, tm_at)), Some((ls, ls_at))) = (&timeout, &lease) {
        let blame = ls_at.as_ref().or(tm_at.as_ref());
        if ls <= tm {
            if let Some((_, pos)) = blame {
                let written = |at: &Option<(String, Pos)>, key: &str| match at {
                    Some((n, _)) => n.clone(),
                    None => format!("the default `{key}`"),
                };
                r.report(
                    *pos,
                    format!(
                        "{} ({}) must be longer than {} ({})",
                        written(ls_at, "notify.lease"),
                        humantime::format_duration(*ls),
                        written(tm_at, "notify.timeout"),
                        humantime::format_duration(*tm)
                    ),
                    Some(
                        "a claimed notification is reserved for `lease`; a send still running \
                         when it ends may be sent again by another worker. Keep lease well \
                         above timeout (defaults \"5m\" and \"10s\")"
                            .into(),
                    ),
                );
            }
        }
    }
    let retry_attempts = t
        .get(r, "retry_attempts")
        .and_then(|f| r.uint(&f, 1, 100))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(d.retry_attempts);
    let workers = t
        .get(r, "workers")
        .and_then(|f| r.uint(&f, 1, 64))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(d.workers);

    let st = single_in(r, t.table, "smtp", "notify.smtp", Pos::ENV, layer);
    let smtp = (st.table.is_some() || layer.sets_table("notify.smtp"))
        .then(|| smtp(r, &st, env))
        .flatten();

    let mut channels = Vec::new();
    if let Some((key, item)) = t.table.and_then(|tl| tl.get_key_value("channel")) {
        let fallback = r.pos(key.span(), t.pos);
        for ct in array_entries(r, item, "notify.channel", fallback) {
            if let Some(c) = channel(r, &ct, env, refs) {
                channels.push(c);
            }
        }
    }

    NotifyConfig {
        allow_private_targets,
        timeout: timeout.map_or(d.timeout, |(x, _)| x),
        retry_attempts,
        lease: lease.map_or(d.lease, |(x, _)| x),
        workers,
        smtp,
        channels,
    }
}

/// `[notify.smtp]`, given in the file or by `KEEL_NOTIFY__SMTP__*` variables.
fn smtp(r: &mut Reader<'_>, t: &Tbl<'_>, env: &[(String, String)]) -> Option<SmtpConfig> {
    // A password written in the file gets its own message rather than "unknown key".
    if let Some((k, _)) = t.table.and_then(|tl| tl.get_key_value("password")) {
        let pos = r.pos(k.span(), t.pos);
        r.report(
            pos,
            format!(
                "`notify.smtp.password`: secrets never live in the file: use password_file or \
                 {SMTP_PASSWORD_VAR}"
            ),
            Some(format!(
                "put the password in a file only Keel can read and write password_file = \
                 \"/run/secrets/smtp-password\", or set {SMTP_PASSWORD_VAR}; then remove this line"
            )),
        );
    }
    let mut allowed = keys::NOTIFY_SMTP.to_vec();
    allowed.push("password");
    r.unknown_keys(t, &allowed);

    let host = t
        .require(r, "host", "host = \"smtp.example.com\"")
        .and_then(|f| r.parsed(&f, values::host));
    let tls_f = t.get(r, "tls");
    let tls = match &tls_f {
        None => Some(SmtpTlsMode::default()),
        Some(f) => r.parsed(f, values::smtp_tls),
    };
    let port = match t.get(r, "port") {
        None => Some(None),
        Some(f) => r
            .uint(&f, 1, u64::from(u16::MAX))
            .and_then(|p| u16::try_from(p).ok())
            .map(Some),
    };
    let from = t
        .require(r, "from", "from = \"Keel Status <status@example.com>\"")
        .and_then(|f| r.parsed(&f, values::sender));
    let username_f = t.get(r, "username");
    let username = match &username_f {
        None => Some(None),
        Some(f) => r.nonempty(f).map(Some),
    };
    let password_file = match t.get(r, "password_file") {
        None => Some(None),
        Some(f) => r.nonempty(&f).map(|p| Some(PathBuf::from(p))),
    };
    let password = match lookup(env, SMTP_PASSWORD_VAR) {
        None => Some(None),
        Some("") => {
            r.report(
                Pos::ENV,
                format!("{SMTP_PASSWORD_VAR} is set but empty"),
                Some("set it to the SMTP password, or unset it".into()),
            );
            None
        }
        Some(p) => Some(Some(Secret(p.to_owned()))),
    };
    let timeout = t
        .get(r, "timeout")
        .map_or(Some(Duration::from_secs(10)), |f| r.duration(&f, false));
    let pool_size = t
        .get(r, "pool_size")
        .map_or(Some(4), |f| r.uint(&f, 1, 64))
        .and_then(|n| u32::try_from(n).ok());

    if let (Some(f), Some(Some(_)), Some(None), Some(None)) =
        (&username_f, &username, &password, &password_file)
    {
        r.report(
            f.pos,
            format!("{}: a username is set but no password", f.name),
            Some(format!(
                "set {SMTP_PASSWORD_VAR}, or write password_file = \"/run/secrets/smtp-password\""
            )),
        );
    }
    if let (Some(SmtpTlsMode::None), Some(Some(_)), Some(h)) = (tls, &username, &host) {
        if !is_loopback_host(h) {
            let pos = tls_f.as_ref().map_or(t.pos, |f| f.pos);
            r.report(
                pos,
                format!(
                    "[notify.smtp] tls = \"none\" with a username would send the password in \
                     clear to {h}"
                ),
                Some(
                    "use tls = \"starttls\" or \"tls\"; plain SMTP with credentials is allowed \
                     only to loopback"
                        .into(),
                ),
            );
        }
    }

    let tls = tls?;
    Some(SmtpConfig {
        host: host?,
        port: port?.unwrap_or_else(|| tls.default_port()),
        from: from?,
        tls,
        username: username?,
        password: password?,
        password_file: password_file?,
        timeout: timeout?,
        pool_size: pool_size?,
    })
}

/// `localhost` or a loopback IP: where plain SMTP with credentials does not cross a network.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One `[[notify.channel]]`.
fn channel(
    r: &mut Reader<'_>,
    t: &Tbl<'_>,
    env: &[(String, String)],
    refs: &mut Refs,
) -> Option<ChannelConfig> {
    r.unknown_keys(t, keys::NOTIFY_CHANNEL);
    let name = t
        .require(r, "name", "name = \"ops\"")
        .and_then(|f| r.nonempty(&f).map(|n| (n, f.pos)));
    if let Some((n, pos)) = &name {
        refs.channels.push(Ref {
            name: n.clone(),
            pos: *pos,
        });
    }
    let label = name.as_ref().map_or_else(
        || "[[notify.channel]]".to_owned(),
        |(n, _)| format!("channel `{n}`"),
    );
    let kind = t
        .require(
            r,
            "kind",
            "kind = \"slack\" (slack, discord, teams or webhook)",
        )
        .and_then(|f| r.parsed(&f, values::channel_kind));

    let card_f = t.get(r, "card");
    let card = match &card_f {
        None => Some(TeamsCard::default()),
        Some(f) => r.parsed(f, values::teams_card),
    };
    if let (Some(f), Some(k)) = (&card_f, kind) {
        if k != ChannelKind::Teams {
            r.report(
                f.pos,
                format!(
                    "{label}: `card` only applies to kind = \"teams\", not \"{}\"",
                    k.as_str()
                ),
                Some("remove card, or set kind = \"teams\"".into()),
            );
        }
    }
    let secret_f = t.get(r, "secret_env");
    let mut secret = None;
    let secret_env = match &secret_f {
        None => Some(None),
        Some(f) => r.parsed(f, values::env_var_name).map(|var| {
            // On another kind the key itself is the mistake (reported below).
            if kind == Some(ChannelKind::Webhook) {
                let state = match lookup(env, &var) {
                    None => Some("not set"),
                    Some("") => Some("empty"),
                    Some(v) => {
                        secret = Some(Secret(v.to_string()));
                        None
                    }
                };
                if let Some(state) = state {
                    r.report(
                        f.pos,
                        format!("{}: environment variable {var} is {state}", f.name),
                        Some(format!(
                            "set {var} to the secret the receiver checks signatures with"
                        )),
                    );
                }
            }
            Some(var)
        }),
    };
    if let (Some(f), Some(k)) = (&secret_f, kind) {
        if k != ChannelKind::Webhook {
            r.report(
                f.pos,
                format!(
                    "{label}: `secret_env` only applies to kind = \"webhook\", not \"{}\"",
                    k.as_str()
                ),
                Some(
                    "Slack, Discord and Teams URLs carry their own token; remove secret_env".into(),
                ),
            );
        }
    }

    let url_f = t.get(r, "url");
    let env_f = t.get(r, "url_env");
    let file_f = t.get(r, "url_file");
    let given: Vec<&Field<'_>> = [&url_f, &env_f, &file_f]
        .into_iter()
        .filter_map(Option::as_ref)
        .collect();
    let sources_ok = match given.as_slice() {
        [] => {
            r.report(
                t.pos,
                format!("{label} has no URL"),
                Some(
                    "add url_env = \"SLACK_WEBHOOK_URL\" (a variable holding the URL), url_file = \
                     \"/run/secrets/slack-url\", or url = \"https://hooks.slack.com/services/…\""
                        .into(),
                ),
            );
            false
        }
        [_] => true,
        [_, second, ..] => {
            r.report(
                second.pos,
                format!("{label}: give only one of url, url_env and url_file"),
                Some("the webhook URL must come from one place; remove the others".into()),
            );
            false
        }
    };
    let mut url = match &url_f {
        None => Some(None),
        Some(f) => r.parsed(f, values::secret_url).map(|u| Some(Secret(u))),
    };
    let url_env = match &env_f {
        None => Some(None),
        Some(f) => r.parsed(f, values::env_var_name).map(Some),
    };
    if let (Some(f), Some(Some(var))) = (&env_f, &url_env) {
        url = match lookup(env, var) {
            None => {
                r.report(
                    f.pos,
                    format!("{}: environment variable {var} is not set", f.name),
                    Some(format!(
                        "set {var} to the channel's webhook URL, or use url_file"
                    )),
                );
                None
            }
            Some(text) => match values::secret_url(text) {
                Ok(u) => Some(Some(Secret(u))),
                Err(bad) => {
                    r.report(
                        f.pos,
                        format!("{}: environment variable {var}: {}", f.name, bad.message),
                        bad.hint,
                    );
                    None
                }
            },
        };
    }
    let url_file = match &file_f {
        None => Some(None),
        Some(f) => r.nonempty(f).map(|p| Some(PathBuf::from(p))),
    };

    if !sources_ok {
        return None;
    }
    Some(ChannelConfig {
        name: name?.0,
        kind: kind?,
        url: url?,
        url_env: url_env?,
        url_file: url_file?,
        card: card?,
        secret_env: secret_env?,
        secret,
    })
}

fn intake(r: &mut Reader<'_>, t: &Tbl<'_>, refs: &mut Refs) -> IntakeConfig {
    r.unknown_keys(t, keys::INTAKE);
    let d = IntakeConfig::default();
    let component_label = t
        .get(r, "component_label")
        .and_then(|f| r.nonempty(&f))
        .unwrap_or(d.component_label);
    let max_body_bytes = t
        .get(r, "max_body_bytes")
        .and_then(|f| {
            let n = r.size(&f)?;
            let n = usize::try_from(n).ok();
            if n.is_none() {
                r.report(
                    f.pos,
                    format!("{}: too large for this machine", f.name),
                    None,
                );
            }
            n
        })
        .unwrap_or(d.max_body_bytes);
    let mut routes = Vec::new();
    if let Some((key, item)) = t.table.and_then(|tl| tl.get_key_value("route")) {
        let fallback = r.pos(key.span(), t.pos);
        for rt in array_entries(r, item, "intake.route", fallback) {
            if let Some(route) = intake_route(r, &rt, refs) {
                routes.push(route);
            }
        }
    }
    IntakeConfig {
        component_label,
        routes,
        max_body_bytes,
    }
}

fn intake_route(r: &mut Reader<'_>, t: &Tbl<'_>, refs: &mut Refs) -> Option<IntakeRoute> {
    r.unknown_keys(t, keys::INTAKE_ROUTE);
    let labels = t
        .require(r, "labels", "labels = { service = \"checkout\" }")
        .and_then(|f| {
            let labels = r.string_table(&f)?;
            if labels.is_empty() {
                r.report(
                    f.pos,
                    format!("{}: a route needs at least one label", f.name),
                    Some("an empty matcher would send every alert to this component".into()),
                );
                return None;
            }
            Some(labels.into_iter().collect())
        });
    let component = t
        .require(r, "component", "component = \"api\"")
        .and_then(|f| {
            let name = r.string(&f)?;
            refs.route_components.push(Edge {
                from: String::new(),
                to: Ref {
                    name: name.clone(),
                    pos: f.pos,
                },
            });
            ComponentId::parse(name).ok()
        });
    Some(IntakeRoute {
        labels: labels?,
        component: component?,
    })
}

fn storage(r: &mut Reader<'_>, t: &Tbl<'_>) -> StorageConfig {
    r.unknown_keys(t, keys::STORAGE);
    let d = StorageConfig::default();
    let mut keep = |key: &str, default: Duration| {
        t.get(r, key)
            .and_then(|f| r.duration(&f, false))
            .unwrap_or(default)
    };
    let rollup_retention = keep("rollup_retention", d.rollup_retention);
    let daily_retention = keep("daily_retention", d.daily_retention);
    let outbox_retention = match t.get(r, "outbox_retention") {
        None => d.outbox_retention,
        Some(f) => match r.duration(&f, false) {
            Some(v) if v < MIN_OUTBOX_RETENTION => {
                r.report(
                    f.pos,
                    format!(
                        "{} ({}) is shorter than a day",
                        f.name,
                        humantime::format_duration(v)
                    ),
                    Some(
                        "delivered notifications are remembered so that one restarting Keel \
                         never sends an update twice; keep them at least \"1d\" (default \"30d\")"
                            .into(),
                    ),
                );
                d.outbox_retention
            }
            Some(v) => v,
            None => d.outbox_retention,
        },
    };
    StorageConfig {
        rollup_retention,
        daily_retention,
        outbox_retention,
    }
}

fn cluster(r: &mut Reader<'_>, t: &Tbl<'_>) -> ClusterConfig {
    r.unknown_keys(t, keys::CLUSTER);
    let d = ClusterConfig::default();
    let lease = t
        .get(r, "lease")
        .and_then(|f| {
            let v = r.duration(&f, false)?;
            if v < Duration::from_secs(1) {
                r.report(
                    f.pos,
                    format!("{}: {v:?} is too short", f.name),
                    Some(
                        "at least \"1s\": instances renew every third of it over the database"
                            .into(),
                    ),
                );
                return None;
            }
            Some(v)
        })
        .unwrap_or(d.lease);
    ClusterConfig { lease }
}

fn scheduler(r: &mut Reader<'_>, t: &Tbl<'_>) -> SchedulerConfig {
    r.unknown_keys(t, keys::SCHEDULER);
    let d = SchedulerConfig::default();
    let max_concurrency = t
        .get(r, "max_concurrency")
        .and_then(|f| r.uint(&f, 1, 1_000_000))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(d.max_concurrency);
    let jitter = t
        .get(r, "jitter")
        .and_then(|f| r.float(&f, 0.0, 1.0))
        .unwrap_or(d.jitter);
    SchedulerConfig {
        max_concurrency,
        jitter,
    }
}
