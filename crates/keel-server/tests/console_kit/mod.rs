//! Harnesses shared by the console tests.
#![allow(dead_code)]

pub mod cdp;
pub mod http;

/// The config both console suites run on: a public component resting on a confidential vendor
/// (for the disclosure check) and a runbook for declared incidents.
pub const CONFIG: &str = r#"
[page]
title = "Acme Status"
locales = ["en", "ja"]

[incidents]
publish_after = "1h"

[[component]]
id = "search"
name = { en = "Search", ja = "検索サービス" }
users = 15000
depends_on = ["payments"]

[[vendor]]
id = "payments"
name = "Payments provider"
status_url = "http://127.0.0.1:9/api/v2/summary.json"
interval = "60s"
confidential = true

[[runbook]]
id = "declared"
failure_kind = "manual"
steps = ["Post in #incidents", "Check the search cluster's dashboards"]
"#;
