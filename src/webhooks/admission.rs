//! The publish admission hook (as SRS's `on_publish`, OvenMediaEngine's AdmissionWebhooks):
//! before a publish starts, cuecast POSTs `{"stream", "key", "protocol", "peer"}` (signed like
//! every webhook) and the answer `{"allow": bool, "stream": optional, "reason": optional}`
//! decides. [`decide`] is the pure rule; [`AdmissionHook::check`] the HTTP call at the edge.
//!
//! The key is sent as the publisher gave it: the hook is the shop's own system, which issued it.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;

use super::config::check_url;
use super::sign::Secret;
use crate::setting::Invalid;

/// What a hook that gives no usable answer (timeout, connection error, a body that is not an
/// answer) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    /// Admit (a configured key still needs its configured stream).
    Allow,
    /// Refuse.
    Deny,
}

/// `[webhooks.admission]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionConfig {
    /// Where to POST; empty = no hook (the configured keys decide alone).
    pub url: String,
    /// The signing secret (`whsec_` + base64), as for the endpoints.
    pub secret: String,
    /// How long the publisher waits for the answer, milliseconds.
    pub timeout_ms: u64,
    /// What no usable answer means.
    pub on_timeout: OnTimeout,
}

impl AdmissionConfig {
    /// The hook's settings, or `None` when it is off; keys relative to `[webhooks.admission]`.
    pub fn settings(&self, allow_private: bool) -> Result<Option<AdmissionSettings>, Invalid> {
        if self.url.is_empty() {
            return Ok(None);
        }
        let url = check_url(&self.url, allow_private).map_err(|r| Invalid::new("url", r))?;
        let secret = Secret::parse(&self.secret).map_err(|r| Invalid::new("secret", r))?;
        if !(1..=30_000).contains(&self.timeout_ms) {
            return Err(Invalid::new("timeout_ms", "must be 1 to 30000"));
        }
        Ok(Some(AdmissionSettings {
            url,
            secret,
            timeout: Duration::from_millis(self.timeout_ms),
            on_timeout: self.on_timeout,
            allow_private,
        }))
    }
}

/// The hook's settings.
#[derive(Debug, Clone)]
pub struct AdmissionSettings {
    /// Where to POST.
    pub url: reqwest::Url,
    /// Signing key.
    pub secret: Secret,
    /// How long to wait.
    pub timeout: Duration,
    /// What no usable answer means.
    pub on_timeout: OnTimeout,
    /// Private targets allowed (checked again at connect time).
    pub allow_private: bool,
}

/// A publish asking to start.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdmissionRequest {
    /// The stream the key maps to in the config, if it does.
    pub stream: Option<String>,
    /// The key as the publisher gave it.
    pub key: String,
    /// `rtmp`, `rtmps` or `srt`.
    pub protocol: String,
    /// The publisher's address.
    pub peer: SocketAddr,
}

/// What the hook said, or that it said nothing usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer: its body.
    Answered(Vec<u8>),
    /// No answer within the timeout.
    TimedOut,
    /// The request failed (connection refused, address refused, ...).
    Failed(String),
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Publish to this (configured) stream.
    Admit(String),
    /// Refuse, for this reason (logged, and told to the publisher).
    Refuse(String),
}

#[derive(Deserialize)]
struct Answer {
    allow: bool,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// The rule: an answer body `{"allow": ...}` decides whatever its HTTP status; with `allow`,
/// the publish goes to the answer's `stream` (which must be a known stream: `known`) or
/// else to the key's configured stream; anything else applies `on_timeout`, which admits only
/// a configured key.
pub fn decide(
    configured: Option<&str>,
    known: impl Fn(&str) -> bool,
    outcome: &Outcome,
    on_timeout: OnTimeout,
) -> Decision {
    let fallback = |why: String| match (on_timeout, configured) {
        (OnTimeout::Allow, Some(name)) => Decision::Admit(name.to_string()),
        (OnTimeout::Allow, None) => Decision::Refuse(format!("{why}; unknown stream key")),
        (OnTimeout::Deny, _) => Decision::Refuse(why),
    };
    match outcome {
        Outcome::TimedOut => fallback("admission hook did not answer in time".into()),
        Outcome::Failed(err) => fallback(format!("admission hook failed: {err}")),
        Outcome::Answered(body) => match serde_json::from_slice::<Answer>(body) {
            Err(err) => fallback(format!(
                "admission hook answer is not {{\"allow\": bool}}: {err}"
            )),
            Ok(Answer {
                allow: false,
                reason,
                ..
            }) => Decision::Refuse(reason.unwrap_or_else(|| "denied by the admission hook".into())),
            Ok(Answer {
                allow: true,
                stream: Some(name),
                ..
            }) if known(&name) => Decision::Admit(name),
            Ok(Answer {
                allow: true,
                stream: Some(name),
                ..
            }) => Decision::Refuse(format!(
                "admission hook mapped the key to `{name}`, which is not a configured stream"
            )),
            Ok(Answer {
                allow: true,
                stream: None,
                ..
            }) => match configured {
                Some(name) => Decision::Admit(name.to_string()),
                None => Decision::Refuse(
                    "unknown stream key (the admission hook allowed it without a `stream`)".into(),
                ),
            },
        },
    }
}

/// The hook client.
pub struct AdmissionHook {
    settings: AdmissionSettings,
    client: reqwest::Client,
}

impl AdmissionHook {
    /// A client for `settings` (no redirects, the guarded resolver).
    pub fn new(settings: AdmissionSettings) -> AdmissionHook {
        let client = super::delivery::client(settings.timeout, settings.allow_private);
        AdmissionHook { settings, client }
    }

    /// How long a publisher waits for the answer.
    pub fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    /// Asks the hook about `request`; `known` tells the stream names (configured and hosts').
    pub async fn check(
        &self,
        request: &AdmissionRequest,
        known: impl Fn(&str) -> bool,
    ) -> Decision {
        let outcome = tokio::time::timeout(self.settings.timeout, self.call(request))
            .await
            .unwrap_or(Outcome::TimedOut);
        decide(
            request.stream.as_deref(),
            known,
            &outcome,
            self.settings.on_timeout,
        )
    }

    async fn call(&self, request: &AdmissionRequest) -> Outcome {
        let body = match serde_json::to_vec(request) {
            Ok(body) => body,
            Err(err) => return Outcome::Failed(err.to_string()),
        };
        let id = format!("msg_{:024x}", rand::random::<u128>() >> 32);
        let timestamp = Utc::now().timestamp();
        let signature = self.settings.secret.sign(&id, timestamp, &body);
        let response = self
            .client
            .post(self.settings.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match response {
            Ok(response) => match response.bytes().await {
                Ok(bytes) => Outcome::Answered(bytes.to_vec()),
                Err(err) => Outcome::Failed(err.to_string()),
            },
            Err(err) if err.is_timeout() => Outcome::TimedOut,
            Err(err) => Outcome::Failed(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> bool {
        matches!(name, "demo" | "second")
    }

    fn answered(body: &str) -> Outcome {
        Outcome::Answered(body.as_bytes().to_vec())
    }

    #[test]
    fn an_answer_decides_and_may_map_the_stream() {
        let allow = OnTimeout::Allow;
        assert_eq!(
            decide(Some("demo"), known, &answered(r#"{"allow": true}"#), allow),
            Decision::Admit("demo".into())
        );
        assert_eq!(
            decide(
                None,
                known,
                &answered(r#"{"allow": true, "stream": "second"}"#),
                allow
            ),
            Decision::Admit("second".into())
        );
        assert_eq!(
            decide(
                Some("demo"),
                known,
                &answered(r#"{"allow": false, "reason": "show not booked"}"#),
                allow
            ),
            Decision::Refuse("show not booked".into())
        );
        assert!(matches!(
            decide(Some("demo"), known, &answered(r#"{"allow": true, "stream": "../x"}"#), allow),
            Decision::Refuse(reason) if reason.contains("not a configured stream")
        ));
        assert!(matches!(
            decide(None, known, &answered(r#"{"allow": true}"#), allow),
            Decision::Refuse(reason) if reason.contains("unknown stream key")
        ));
    }

    #[test]
    fn no_usable_answer_follows_on_timeout() {
        for outcome in [
            Outcome::TimedOut,
            Outcome::Failed("connection refused".into()),
            answered("<html>502</html>"),
        ] {
            assert_eq!(
                decide(Some("demo"), known, &outcome, OnTimeout::Allow),
                Decision::Admit("demo".into()),
                "{outcome:?}"
            );
            assert!(matches!(
                decide(Some("demo"), known, &outcome, OnTimeout::Deny),
                Decision::Refuse(_)
            ));
            assert!(matches!(
                decide(None, known, &outcome, OnTimeout::Allow),
                Decision::Refuse(_)
            ));
        }
    }
}
