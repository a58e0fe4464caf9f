//! HTML building for the console: the same approach as the status page (plain string
//! building, every piece of text through one escaping function), with a shared layout.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use keel_core::public::feed::escape_into;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ja => "ja",
        }
    }

    /// `?lang=ja` to keep the language across links, or nothing for English.
    pub fn query(self) -> &'static str {
        match self {
            Lang::En => "",
            Lang::Ja => "?lang=ja",
        }
    }
}

/// The English or Japanese words.
pub fn w(lang: Lang, en: &'static str, ja: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::Ja => ja,
    }
}

/// A page being written.
pub struct Doc {
    pub out: String,
    pub lang: Lang,
}

impl Doc {
    pub fn new(lang: Lang) -> Doc {
        Doc {
            out: String::with_capacity(16 * 1024),
            lang,
        }
    }

    /// Escaped text.
    pub fn t(&mut self, s: &str) -> &mut Self {
        escape_into(&mut self.out, s);
        self
    }

    /// Our own markup.
    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.out.push_str(s);
        self
    }

    /// Words in the page's language, escaped.
    pub fn w(&mut self, en: &'static str, ja: &'static str) -> &mut Self {
        let s = w(self.lang, en, ja);
        self.t(s)
    }

    /// The hidden CSRF field every form carries.
    pub fn csrf(&mut self, token: &str) -> &mut Self {
        self.raw("<input type=\"hidden\" name=\"csrf\" value=\"")
            .t(token)
            .raw("\">")
    }

    /// A `<time>` in UTC, readable in both languages.
    pub fn time(&mut self, at: chrono::DateTime<chrono::Utc>) -> &mut Self {
        self.raw("<time datetime=\"")
            .t(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .raw("\">")
            .t(&at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .raw("</time>")
    }

    /// Opens the document: head, header with navigation and the user, `<main>`.
    /// `incident` marks the page for the refresh script.
    pub fn open(
        &mut self,
        title: &str,
        user: Option<(&str, &str, &str)>,
        refresh: Option<&str>,
    ) -> &mut Self {
        let q = self.lang.query();
        let code = self.lang.code();
        self.raw("<!doctype html>\n<html lang=\"")
            .raw(code)
            .raw("\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"color-scheme\" content=\"light dark\">\n<title>")
            .t(title)
            .raw(" - Keel</title>\n<link rel=\"stylesheet\" href=\"/admin/console.css\">\n");
        if refresh.is_some() {
            self.raw("<script src=\"/admin/console.js\" defer></script>\n");
        }
        self.raw("</head>\n<body");
        if let Some(r) = refresh {
            self.raw(" data-refresh=\"").t(r).raw("\"");
        }
        self.raw(">\n<header class=\"top\"><div class=\"wrap\"><a class=\"brand\" href=\"/admin")
            .raw(q)
            .raw("\">Keel</a>");
        if let Some((name, role, csrf)) = user {
            self.raw("<nav aria-label=\"")
                .w("Console", "コンソール")
                .raw("\"><a href=\"/admin")
                .raw(q)
                .raw("\">")
                .w("Incidents", "インシデント")
                .raw("</a> <a href=\"/admin/monitors")
                .raw(q)
                .raw("\">")
                .w("Monitors", "監視")
                .raw("</a> <a href=\"/admin/maintenance")
                .raw(q)
                .raw("\">")
                .w("Maintenance", "メンテナンス")
                .raw("</a> <a href=\"/admin/oncall")
                .raw(q)
                .raw("\">")
                .w("On call", "オンコール")
                .raw("</a></nav><div class=\"who\"><span>")
                .t(name)
                .raw(" (")
                .t(role)
                .raw(")</span><form method=\"post\" action=\"/admin/logout\">")
                .csrf(csrf)
                .raw("<button class=\"link\">")
                .w("Sign out", "サインアウト")
                .raw("</button></form>");
            let (other, label) = match self.lang {
                Lang::En => ("?lang=ja", "日本語"),
                Lang::Ja => ("?lang=en", "English"),
            };
            let other_code = if self.lang == Lang::En { "ja" } else { "en" };
            self.raw("<a href=\"").raw(other).raw("\" lang=\"");
            self.raw(other_code).raw("\">").raw(label).raw("</a></div>");
        }
        self.raw("</div></header>\n<main class=\"wrap\" id=\"main\">\n")
    }

    pub fn flash(&mut self, kind: &str, text: &str) -> &mut Self {
        self.raw("<p class=\"flash ")
            .raw(kind)
            .raw("\" role=\"")
            .raw(if kind == "error" { "alert" } else { "status" })
            .raw("\">")
            .t(text)
            .raw("</p>\n")
    }

    pub fn close(&mut self) -> &mut Self {
        self.raw("</main>\n</body>\n</html>\n")
    }

    pub fn into_response(self, status: StatusCode) -> Response {
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.out,
        )
            .into_response()
    }
}

/// A page that only says something (403, 404, 503).
pub fn message_page(lang: Lang, status: StatusCode, text: &str) -> Response {
    let heading = match (lang, status.as_u16()) {
        (Lang::Ja, 400) => "入力内容に問題があります",
        (Lang::Ja, 403) => "実行できません",
        (Lang::Ja, 404) => "見つかりません",
        (Lang::Ja, 409) => "実行できませんでした",
        (Lang::Ja, _) => "エラー",
        (Lang::En, _) => status.canonical_reason().unwrap_or("Error"),
    };
    let mut d = Doc::new(lang);
    d.open(heading, None, None)
        .raw("<h1>")
        .t(heading)
        .raw("</h1>")
        .flash("error", text)
        .raw("<p><a href=\"/admin")
        .raw(lang.query())
        .raw("\">")
        .w("Back to the console", "コンソールに戻る")
        .raw("</a></p>")
        .close();
    d.into_response(status)
}

pub fn login_page(
    lang: Lang,
    status: StatusCode,
    csrf: &str,
    error: Option<&str>,
    name: &str,
) -> Response {
    let mut d = Doc::new(lang);
    d.open(w(lang, "Sign in", "サインイン"), None, None)
        .raw("<section class=\"card narrow\"><h1>")
        .w(
            "Sign in to the responder console",
            "対応コンソールにサインイン",
        )
        .raw("</h1>");
    if let Some(e) = error {
        d.flash("error", e);
    }
    d.raw("<form method=\"post\" action=\"/admin/login\" class=\"stack\">")
        .csrf(csrf)
        .raw("<input type=\"hidden\" name=\"lang\" value=\"")
        .raw(lang.code())
        .raw("\"><label for=\"name\">")
        .w("Name", "ユーザー名")
        .raw("</label><input id=\"name\" name=\"name\" autocomplete=\"username\" required value=\"")
        .t(name)
        .raw("\"><label for=\"password\">")
        .w("Password", "パスワード")
        .raw("</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required><button>")
        .w("Sign in", "サインイン")
        .raw("</button></form><p class=\"muted\">")
        .w("Accounts are made with ", "アカウントの作成: ")
        .raw("<code>keel user add NAME --role responder</code></p></section>")
        .close();
    d.into_response(status)
}
