//! What an account may do in chat: the capabilities a login token carries and the admin grants.

use serde::{Deserialize, Serialize};

/// Capabilities a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Post messages.
    Send,
    /// Delete messages, time out and ban users, set slow mode; post links.
    Moderate,
    /// Post links and product cards, pin messages.
    Host,
}

impl Capability {
    /// The name used in tokens, config and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Send => "send",
            Capability::Moderate => "moderate",
            Capability::Host => "host",
        }
    }

    /// Parses a capability name.
    pub fn parse(name: &str) -> Option<Capability> {
        match name {
            "send" => Some(Capability::Send),
            "moderate" => Some(Capability::Moderate),
            "host" => Some(Capability::Host),
            _ => None,
        }
    }
}
