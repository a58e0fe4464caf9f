//! Validated identifiers.
//!
//! Ids appear in URLs, metrics labels and SQL rows, so they are restricted to a small, safe
//! alphabet at the edge (config, API) and carried as distinct types afterwards, so a vendor id
//! cannot be passed where a component id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an id may not be empty")]
    Empty,
    #[error("an id may be at most 64 characters long")]
    TooLong,
    #[error("an id may contain only lowercase letters, digits, '-' and '_' (found {0:?})")]
    BadChar(char),
}

/// Checks the shared id alphabet: `[a-z0-9_-]{1,64}`.
pub fn validate_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > 64 {
        return Err(IdError::TooLong);
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(IdError::BadChar(c));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates an id.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate_id(&s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        // So an id compares with the text it came from, without a parse on the other side.
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A component: something customers use or something it depends on.
    ComponentId
);
id_type!(
    /// A monitor: one check run on a schedule.
    MonitorId
);
id_type!(
    /// A third-party dependency whose public status Keel polls.
    VendorId
);
id_type!(
    /// A node of the dependency graph: a component, or a vendor (whose id names its node).
    /// What a signal, a source state or a rollup speaks about; both kinds share the alphabet
    /// and the graph's one namespace, so either converts into it, never back.
    NodeId
);

impl From<ComponentId> for NodeId {
    fn from(id: ComponentId) -> NodeId {
        NodeId(id.0)
    }
}

impl From<&ComponentId> for NodeId {
    fn from(id: &ComponentId) -> NodeId {
        NodeId(id.0.clone())
    }
}

impl From<VendorId> for NodeId {
    fn from(id: VendorId) -> NodeId {
        NodeId(id.0)
    }
}

impl From<&VendorId> for NodeId {
    fn from(id: &VendorId) -> NodeId {
        NodeId(id.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_safe_alphabet() {
        assert!(ComponentId::parse("api-v2_eu").is_ok());
    }

    #[test]
    fn refuses_bad_ids_with_a_reason() {
        assert_eq!(ComponentId::parse(""), Err(IdError::Empty));
        assert_eq!(ComponentId::parse("Api"), Err(IdError::BadChar('A')));
        assert_eq!(ComponentId::parse("a b"), Err(IdError::BadChar(' ')));
        assert_eq!(ComponentId::parse("x".repeat(65)), Err(IdError::TooLong));
    }
}
