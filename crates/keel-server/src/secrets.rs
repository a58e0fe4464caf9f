//! Every secret the config names by reference, resolved once when the application is built.
//!
//! The config gives some secrets as a file (`url_file`, `password_file`, `auth_token_file`)
//! or an environment variable (`secret_env`, checked and read when the config was parsed).
//! Nothing reads them again while Keel runs: a file is not re-read with a blocking read for
//! every update or page, and a missing or unreadable file stops Keel at start — naming the
//! config key and the file, never the value — instead of being found at the first outage.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use keel_core::config::{Config, Contact, Secret};

/// Where a responders' channel (`[[notify.channel]]`) is sent, and what signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSecret {
    pub url: Secret,
    /// A `webhook` channel's HMAC key (`secret_env`).
    pub signing: Option<Secret>,
}

/// The resolved secrets, by the config entry they belong to.
#[derive(Debug, Default)]
pub struct Secrets {
    /// By channel name.
    channels: HashMap<String, ChannelSecret>,
    /// By (person id, index of the contact in the person's `contacts`).
    contacts: HashMap<(String, usize), Secret>,
    /// `[notify.smtp]` password (`password`/the environment, or `password_file`).
    pub smtp_password: Option<Secret>,
    /// `[paging.twilio]` auth token (`auth_token_env`, or `auth_token_file`).
    pub twilio_auth_token: Option<Secret>,
}

/// Reads a secret file as it is. The error names `key` and the file, not the content.
fn read_file(path: &Path, key: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {key} {}", path.display()))
}

/// A channel URL or SMTP password from its file, without the surrounding whitespace and the
/// trailing newline editors and `echo` add (as these were always read). Contact URLs and the
/// Twilio token go through `SecretSource::resolve`, which drops trailing whitespace.
fn read_trimmed(path: &Path, key: &str) -> anyhow::Result<Secret> {
    Ok(Secret(read_file(path, key)?.trim().to_owned()))
}

impl Secrets {
    /// Resolves every secret of `config`, reading each file once.
    pub fn resolve(config: &Config) -> anyhow::Result<Self> {
        let mut channels = HashMap::new();
        for ch in &config.notify.channels {
            let url = match (&ch.url, &ch.url_file) {
                (Some(u), _) => u.clone(),
                (None, Some(f)) => {
                    read_trimmed(f, &format!("[[notify.channel]] \"{}\" url_file", ch.name))?
                }
                // Parsing requires one of them.
                (None, None) => continue,
            };
            channels.insert(
                ch.name.clone(),
                ChannelSecret {
                    url,
                    signing: ch.secret.clone(),
                },
            );
        }

        let mut contacts = HashMap::new();
        for p in &config.people {
            for (n, c) in p.contacts.iter().enumerate() {
                let source = match c {
                    Contact::Webhook { url, .. }
                    | Contact::Slack { url }
                    | Contact::Discord { url }
                    | Contact::Teams { url } => url,
                    _ => continue,
                };
                let key = format!("[[person]] \"{}\" {} contact's url_file", p.id, c.kind());
                let url = source.resolve(|f| read_file(f, &key))?;
                contacts.insert((p.id.clone(), n), url);
            }
        }

        let smtp_password = match &config.notify.smtp {
            None => None,
            Some(smtp) => match (&smtp.password, &smtp.password_file) {
                (Some(p), _) => Some(p.clone()),
                (None, Some(f)) => Some(read_trimmed(f, "[notify.smtp] password_file")?),
                (None, None) => None,
            },
        };

        let twilio_auth_token = match &config.paging.twilio {
            None => None,
            Some(t) => Some(
                t.auth_token
                    .resolve(|f| read_file(f, "[paging.twilio] auth_token_file"))?,
            ),
        };

        Ok(Secrets {
            channels,
            contacts,
            smtp_password,
            twilio_auth_token,
        })
    }

    /// The channel's URL and signing key; `None` for a channel the config does not have.
    pub fn channel(&self, name: &str) -> Option<&ChannelSecret> {
        self.channels.get(name)
    }

    /// The URL of a person's `n`th contact (webhook and chat contacts only).
    pub fn contact_url(&self, person: &str, n: usize) -> Option<&Secret> {
        self.contacts.get(&(person.to_string(), n))
    }
}

#[cfg(test)]
mod tests {
    use super::Secrets;

    fn config(body: &str, env: &[(&str, &str)]) -> keel_core::config::Config {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"/tmp/keel-secrets-test\"\n\n{body}"
        );
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        keel_core::config::parse(&text, "test.toml", &env).unwrap_or_else(|d| {
            panic!(
                "{}",
                d.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
    }

    fn channel(extra: &str) -> String {
        format!("[[notify.channel]]\nname = \"ops\"\nkind = \"webhook\"\n{extra}\n")
    }

    #[test]
    fn a_url_file_is_read_once_and_its_trailing_newline_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ops-url");
        std::fs::write(&f, "https://hooks.example.com/ops\n").unwrap();
        let cfg = config(&channel(&format!("url_file = \"{}\"", f.display())), &[]);
        let s = Secrets::resolve(&cfg).unwrap();
        // Gone or changed afterwards: what was read at build stays.
        std::fs::write(&f, "https://elsewhere.example.com/\n").unwrap();
        std::fs::remove_file(&f).unwrap();
        let ch = s.channel("ops").unwrap();
        assert_eq!(ch.url.expose(), "https://hooks.example.com/ops");
        assert!(ch.signing.is_none());
    }

    #[test]
    fn a_channel_signing_key_comes_from_the_environment_the_config_was_read_in() {
        let cfg = config(
            &channel("url = \"https://hooks.example.com/ops\"\nsecret_env = \"OPS_SECRET\""),
            &[("OPS_SECRET", "s3cret-value")],
        );
        let s = Secrets::resolve(&cfg).unwrap();
        let ch = s.channel("ops").unwrap();
        assert_eq!(ch.url.expose(), "https://hooks.example.com/ops");
        assert_eq!(ch.signing.as_ref().unwrap().expose(), "s3cret-value");
    }

    #[test]
    fn an_unset_signing_variable_is_a_config_error_naming_it() {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n{}",
            channel("url = \"https://hooks.example.com/ops\"\nsecret_env = \"OPS_SECRET\"")
        );
        let errs = keel_core::config::parse(&text, "test.toml", &[]).unwrap_err();
        let all: String = errs.iter().map(|d| d.to_string()).collect();
        assert!(all.contains("OPS_SECRET is not set"), "{all}");
    }

    #[test]
    fn a_missing_url_file_is_an_error_naming_the_key_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("missing");
        let cfg = config(&channel(&format!("url_file = \"{}\"", f.display())), &[]);
        let e = format!("{:#}", Secrets::resolve(&cfg).unwrap_err());
        assert!(
            e.starts_with(&format!(
                "cannot read [[notify.channel]] \"ops\" url_file {}",
                f.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn a_missing_contact_url_file_is_an_error_naming_the_person_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ann-slack");
        let body = format!(
            "[[person]]\nid = \"ann\"\ntimezone = \"UTC\"\ncontacts = [ {{ kind = \"slack\", url_file = \"{}\" }} ]\n",
            f.display()
        );
        let cfg = config(&body, &[]);
        let e = format!("{:#}", Secrets::resolve(&cfg).unwrap_err());
        assert!(
            e.contains("[[person]] \"ann\" slack contact's url_file")
                && e.contains(&f.display().to_string()),
            "{e}"
        );
        std::fs::write(&f, "https://hooks.slack.com/services/T/B/x\n").unwrap();
        let s = Secrets::resolve(&cfg).unwrap();
        assert_eq!(
            s.contact_url("ann", 0).unwrap().expose(),
            "https://hooks.slack.com/services/T/B/x"
        );
    }
}
