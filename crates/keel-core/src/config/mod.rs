//! Configuration: parsing `keel.toml` (layered with `KEEL_` environment variables) into the
//! typed [`Config`], reporting every problem at once with file, line and a hint.

mod model;

pub use model::*;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the problem has no place in the file (e.g. an environment variable).
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// The commented example config written by `keel init`.
pub const EXAMPLE: &str = include_str!("../../../../keel.example.toml");
