//! What an account may do: the capabilities a login token carries and the admin grants (chat's
//! roles, hosting shows, and the shop's backend reporting purchases).

use serde::{Deserialize, Serialize};

/// Capabilities a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Post messages.
    Send,
    /// Delete messages, time out and ban users, set slow mode; post links.
    Moderate,
    /// Post links and product cards, pin messages; read show analytics.
    Host,
    /// The shop's backend: reports purchases (`POST /api/events`).
    Shop,
}

impl Capability {
    /// The name used in tokens, config and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Send => "send",
            Capability::Moderate => "moderate",
            Capability::Host => "host",
            Capability::Shop => "shop",
        }
    }

    /// Parses a capability name.
    pub fn parse(name: &str) -> Option<Capability> {
        match name {
            "send" => Some(Capability::Send),
            "moderate" => Some(Capability::Moderate),
            "host" => Some(Capability::Host),
            "shop" => Some(Capability::Shop),
            _ => None,
        }
    }
}
