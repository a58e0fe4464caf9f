//! The one way Keel POSTs a notification over HTTP, and what a failure means.
//!
//! Every HTTP channel (subscriber webhooks, Slack, Discord, Teams) shares this: a client
//! with timeouts and no redirects, and one classification of outcomes so the outbox knows
//! whether to retry. Errors never carry the URL: chat webhook URLs *are* credentials (the
//! token is in the path) and errors end up in the dead-letter list.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use url::Url;

use crate::guard::{GuardError, GuardedResolver};

/// Why a notification was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Trying again later may work: a timeout, a refused connection, a 5xx, 408 or 429.
    #[error("{reason}")]
    Retryable {
        reason: String,
        /// What the receiver asked for (`Retry-After` in seconds), if anything.
        retry_after: Option<Duration>,
    },
    /// Trying again cannot work: a 4xx, a refused target, a payload Keel cannot read.
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        SendError::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_))
    }
}

/// Timeouts for HTTP deliveries.
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    /// The whole request, connect to last byte of the response (default 10 s).
    pub timeout: Duration,
    /// TCP and TLS connect (default 5 s, never above `timeout`).
    pub connect_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Builds a client for deliveries. With a resolver, host names resolve only through it and
/// proxies from the environment are ignored (a proxy would resolve the name itself, past the
/// guard).
pub fn client(
    opts: HttpOptions,
    resolver: Option<Arc<GuardedResolver>>,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("Keel/", env!("CARGO_PKG_VERSION")))
        .timeout(opts.timeout)
        .connect_timeout(opts.connect_timeout.min(opts.timeout))
        // A redirect could lead anywhere (including past the guard); receivers must answer
        // 2xx at the URL they gave us, as Statuspage also requires.
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(30));
    if let Some(r) = resolver {
        b = b.dns_resolver(r).no_proxy();
    }
    b.build()
}

/// POSTs a JSON body and classifies the outcome. Returns the 2xx status on success.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &Url,
    body: Vec<u8>,
    mut headers: HeaderMap,
) -> Result<u16, SendError> {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    send(client.post(url.clone()).headers(headers).body(body)).await
}

/// Sends a prepared request and classifies the outcome, for channels whose requests are not
/// plain JSON (a form post with Basic auth): 2xx is delivered; 408, 429 and 5xx are retryable
/// (with the receiver's `Retry-After`); any other 4xx is permanent; a transport failure is
/// retryable unless the guard refused the address for good.
pub(crate) async fn send(req: reqwest::RequestBuilder) -> Result<u16, SendError> {
    let resp = req.send().await.map_err(request_error)?;
    let status = resp.status();
    if status.is_success() {
        return Ok(status.as_u16());
    }
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let snippet = body_snippet(resp).await;
    let reason = if snippet.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {snippet}")
    };
    let code = status.as_u16();
    if status.is_client_error() && code != 408 && code != 429 {
        Err(SendError::Permanent(reason))
    } else {
        Err(SendError::Retryable {
            reason,
            retry_after,
        })
    }
}

/// The start of an error response, one line, for the error message (Slack, for one, says
/// what was wrong in the body: `invalid_payload`, `channel_is_archived`).
async fn body_snippet(mut resp: reqwest::Response) -> String {
    const MAX: usize = 200;
    let mut buf = Vec::new();
    while buf.len() < MAX {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&buf[..buf.len().min(MAX)]).into_owned();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Maps a transport error, without its URL, to retryable or permanent.
fn request_error(e: reqwest::Error) -> SendError {
    // A refusal by the guard surfaces as a connect error whose cause is our GuardError.
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(g) = s.downcast_ref::<GuardError>() {
            return if g.is_transient() {
                SendError::retryable(g.to_string())
            } else {
                SendError::Permanent(g.to_string())
            };
        }
        source = s.source();
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut reason = what.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    SendError::retryable(reason)
}
