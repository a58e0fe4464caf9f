//! Signed acknowledge links: the one-click way out of a page.
//!
//! A link names the incident, the escalation cycle and the person paged, and when it stops
//! working; an HMAC-SHA256 under the deployment's shared secret (the store makes it once, so
//! every instance checks what any instance signed) proves Keel wrote it. Nothing is stored
//! per link, so a page costs no row, and a link for an old cycle cannot acknowledge a relapse.

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use keel_core::incident::IncidentId;
use sha2::Sha256;

/// The shared secret's name in the store.
pub const SECRET_NAME: &str = "acknowledge-links";

/// Bytes of the MAC kept in the link: 128 bits cannot be guessed, and the link stays short
/// enough for an SMS.
const MAC_BYTES: usize = 16;

/// What a valid link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckLink {
    pub incident: IncidentId,
    pub cycle: u32,
    pub person: String,
    pub expires: DateTime<Utc>,
}

/// Why a link was refused. Shown to whoever clicked it, so it says nothing about the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error(
        "this acknowledge link is not valid (it was changed, cut short, or not made by this Keel)"
    )]
    Invalid,
    #[error("this acknowledge link expired at {0}; acknowledge in the console or with `keel incident ack` instead")]
    Expired(String),
}

impl AckLink {
    /// The token that goes in the URL (`/ack/{token}`): `incident.cycle.person.expires.mac`.
    pub fn sign(&self, secret: &str) -> String {
        let body = self.body();
        let mac = hex::encode(&mac(secret, &body)[..MAC_BYTES]);
        format!("{body}.{mac}")
    }

    /// Reads and checks a token at `now`: the MAC first (a forged link learns nothing,
    /// not even whether it expired), then the expiry.
    pub fn verify(token: &str, secret: &str, now: DateTime<Utc>) -> Result<AckLink, LinkError> {
        let (body, mac_hex) = token.rsplit_once('.').ok_or(LinkError::Invalid)?;
        let given = hex::decode(mac_hex).map_err(|_| LinkError::Invalid)?;
        if given.len() != MAC_BYTES {
            return Err(LinkError::Invalid);
        }
        let mut check = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
            .expect("HMAC accepts keys of any length");
        check.update(body.as_bytes());
        // Constant-time comparison of the kept prefix.
        check
            .verify_truncated_left(&given)
            .map_err(|_| LinkError::Invalid)?;
        let link = parse_body(body).ok_or(LinkError::Invalid)?;
        if now >= link.expires {
            return Err(LinkError::Expired(
                link.expires.format("%Y-%m-%d %H:%M UTC").to_string(),
            ));
        }
        Ok(link)
    }

    fn body(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.incident,
            self.cycle,
            self.person,
            self.expires.timestamp()
        )
    }
}

fn parse_body(body: &str) -> Option<AckLink> {
    let mut parts = body.split('.');
    let incident = parts.next()?.parse().ok()?;
    let cycle = parts.next()?.parse().ok()?;
    let person = parts.next()?.to_string();
    let expires = Utc.timestamp_opt(parts.next()?.parse().ok()?, 0).single()?;
    if parts.next().is_some() || person.is_empty() {
        return None;
    }
    Some(AckLink {
        incident,
        cycle,
        person,
        expires,
    })
}

fn mac(secret: &str, body: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    m.update(body.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Whether a person id can travel in a link: config ids are letters, digits, `-` and `_`, so
/// the `.` separator never appears inside one.
pub fn linkable(person: &str) -> bool {
    !person.is_empty()
        && person
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_796_000_000 + secs, 0).unwrap()
    }

    fn link() -> AckLink {
        AckLink {
            incident: IncidentId(12),
            cycle: 2,
            person: "carol".into(),
            expires: at(3600),
        }
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let token = link().sign("s3cret");
        assert_eq!(AckLink::verify(&token, "s3cret", at(0)), Ok(link()));
        assert_eq!(AckLink::verify(&token, "s3cret", at(3599)), Ok(link()));
        assert!(matches!(
            AckLink::verify(&token, "s3cret", at(3600)),
            Err(LinkError::Expired(_))
        ));
    }

    #[test]
    fn forged_or_damaged_links_are_invalid() {
        let token = link().sign("s3cret");
        // Another secret (another deployment) did not sign it.
        assert_eq!(
            AckLink::verify(&token, "other", at(0)),
            Err(LinkError::Invalid)
        );
        // Any changed field breaks the MAC: another incident, cycle, person, or a later expiry.
        for forged in [
            token.replacen("12.", "13.", 1),
            token.replacen(".2.", ".3.", 1),
            token.replacen("carol", "carl", 1),
            token.replacen(
                &at(3600).timestamp().to_string(),
                &at(99_999).timestamp().to_string(),
                1,
            ),
        ] {
            assert_ne!(forged, token);
            assert_eq!(
                AckLink::verify(&forged, "s3cret", at(0)),
                Err(LinkError::Invalid),
                "{forged}"
            );
        }
        // An expired forgery is still just invalid: the MAC is checked first.
        let mut old = link();
        old.expires = at(-10);
        let forged = old.sign("other");
        assert_eq!(
            AckLink::verify(&forged, "s3cret", at(0)),
            Err(LinkError::Invalid)
        );
        for junk in [
            "",
            ".",
            "abc",
            "12.2.carol.1796003600",
            "12.2.carol.x.00",
            "1.2.3.4.5.zz",
        ] {
            assert_eq!(
                AckLink::verify(junk, "s3cret", at(0)),
                Err(LinkError::Invalid),
                "{junk:?}"
            );
        }
        let cut = &token[..token.len() - 2];
        assert_eq!(
            AckLink::verify(cut, "s3cret", at(0)),
            Err(LinkError::Invalid)
        );
    }

    #[test]
    fn only_config_ids_travel_in_links() {
        assert!(linkable("carol") && linkable("on-call_2"));
        assert!(!linkable("") && !linkable("a.b") && !linkable("a/b") && !linkable("ä"));
    }
}
