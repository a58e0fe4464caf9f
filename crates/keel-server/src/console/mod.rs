//! The responder console (`/admin`); its pages come in the next commit.

pub mod password;
