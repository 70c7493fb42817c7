//! The optional review hook: before a viewer's message is accepted, the server POSTs
//! `{"room", "user", "text"}` (JSON) to a URL and waits at most the configured timeout (200 ms by
//! default). A 2xx answer with `{"decision": "allow"}` or `{"decision": "deny"}` decides; any
//! other answer, an error or the timeout applies the configured fallback.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::metrics::ChatMetrics;

/// A decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Deliver.
    Allow,
    /// Refuse.
    Deny,
}

/// Hook settings.
#[derive(Debug, Clone)]
pub struct ReviewSettings {
    /// Where to POST.
    pub url: String,
    /// How long to wait.
    pub timeout: Duration,
    /// What to do when the hook does not answer usefully.
    pub fallback: Decision,
}

/// The hook client.
pub struct Review {
    client: reqwest::Client,
    settings: ReviewSettings,
    metrics: Arc<ChatMetrics>,
}

#[derive(serde::Deserialize)]
struct Answer {
    decision: String,
}

impl Review {
    /// A client for `settings`.
    pub fn new(settings: ReviewSettings, metrics: Arc<ChatMetrics>) -> Review {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Review {
            client,
            settings,
            metrics,
        }
    }

    /// Asks the hook about a message.
    pub async fn check(&self, room: &str, user: &str, text: &str) -> Decision {
        let body = serde_json::json!({ "room": room, "user": user, "text": text }).to_string();
        let request = self
            .client
            .post(&self.settings.url)
            .header("content-type", "application/json")
            .body(body)
            .send();
        let answer = async {
            let response = request.await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let bytes = response.bytes().await.ok()?;
            let answer: Answer = serde_json::from_slice(&bytes).ok()?;
            match answer.decision.to_ascii_lowercase().as_str() {
                "allow" => Some(Decision::Allow),
                "deny" => Some(Decision::Deny),
                _ => None,
            }
        };
        match tokio::time::timeout(self.settings.timeout, answer).await {
            Ok(Some(Decision::Allow)) => {
                self.metrics.review_allow.fetch_add(1, Ordering::Relaxed);
                Decision::Allow
            }
            Ok(Some(Decision::Deny)) => {
                self.metrics.review_deny.fetch_add(1, Ordering::Relaxed);
                Decision::Deny
            }
            _ => {
                self.metrics.review_fallback.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(url = %self.settings.url, "review hook gave no decision; using the fallback");
                self.settings.fallback
            }
        }
    }
}
