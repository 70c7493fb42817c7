//! Link policy for viewers' text: what counts as a link, which domains are allowed, and how
//! disallowed links are stripped. Pure functions.
//!
//! A link is a whitespace-separated token that has a scheme (`http://…`, `https://…`, any
//! `xyz://…`), starts with `www.`, or looks like a host name with an alphabetic top-level domain
//! (`shop.example/path`, `evil.io`). Numbers such as `3.50` are not links.

/// What replaces a stripped link.
pub const STRIPPED: &str = "[link removed]";

/// Outcome of applying the policy to a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filtered {
    /// The text with disallowed links replaced by [`STRIPPED`].
    pub text: String,
    /// How many links were removed.
    pub removed: usize,
}

/// The host of a link token, lower-cased, if the token is a link.
pub fn link_host(token: &str) -> Option<String> {
    let punctuation = |c: char| {
        matches!(
            c,
            '(' | ')' | '<' | '>' | '"' | '\'' | ',' | '!' | '?' | ';' | ':'
        )
    };
    let token = token
        .trim_start_matches(punctuation)
        .trim_end_matches(|c: char| punctuation(c) || c == '.');
    let (rest, has_scheme) = match token.find("://") {
        Some(pos) => {
            let scheme = &token[..pos];
            if scheme.is_empty()
                || !scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
            {
                return None;
            }
            (&token[pos + 3..], true)
        }
        None => (token, false),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    };
    let host = host.to_ascii_lowercase();
    if has_scheme {
        return (!host.is_empty()).then_some(host);
    }
    if host.starts_with("www.") && host.len() > 4 {
        return Some(host);
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 {
        return None;
    }
    let valid_label = |l: &str| {
        !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-') && !l.starts_with('-')
    };
    let tld = labels.last().copied().unwrap_or("");
    (labels.iter().all(|l| valid_label(l))
        && tld.chars().count() >= 2
        && tld.chars().all(char::is_alphabetic))
    .then_some(host)
}

/// True when `host` is an allowlisted domain or one of its subdomains.
pub fn is_allowed(host: &str, allowlist: &[String]) -> bool {
    let host = host.trim_end_matches('.');
    allowlist.iter().any(|domain| {
        let domain = domain.trim_start_matches('.').to_ascii_lowercase();
        host == domain || host.ends_with(&format!(".{domain}"))
    })
}

/// Replaces every link outside `allowlist` by [`STRIPPED`]; whitespace is kept as written.
pub fn strip_links(text: &str, allowlist: &[String]) -> Filtered {
    let mut out = String::with_capacity(text.len());
    let mut removed = 0;
    let mut token_start = None;
    let flush = |out: &mut String, token: &str, removed: &mut usize| match link_host(token) {
        Some(host) if !is_allowed(&host, allowlist) => {
            out.push_str(STRIPPED);
            *removed += 1;
        }
        _ => out.push_str(token),
    };
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some(start) = token_start.take() {
                flush(&mut out, &text[start..i], &mut removed);
            }
            out.push(c);
        } else if token_start.is_none() {
            token_start = Some(i);
        }
    }
    if let Some(start) = token_start {
        flush(&mut out, &text[start..], &mut removed);
    }
    Filtered { text: out, removed }
}

/// True when `url` is an absolute http(s) URL with a host (for attached links and cards).
pub fn is_web_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty()
                && url.len() <= 2048
                && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow() -> Vec<String> {
        vec!["shop.example".to_string()]
    }

    #[test]
    fn detects_links() {
        assert_eq!(link_host("https://Evil.io/x?y"), Some("evil.io".into()));
        assert_eq!(link_host("www.evil.io"), Some("www.evil.io".into()));
        assert_eq!(link_host("evil.io/buy"), Some("evil.io".into()));
        assert_eq!(link_host("(evil.io)."), Some("evil.io".into()));
        assert_eq!(link_host("user@evil.io:8080"), Some("evil.io".into()));
        assert_eq!(link_host("ftp://files"), Some("files".into()));
        assert_eq!(link_host("3.50"), None);
        assert_eq!(link_host("hello"), None);
        assert_eq!(link_host("end."), None);
        assert_eq!(link_host("v1.2"), None);
        assert_eq!(link_host("e.g."), None);
    }

    #[test]
    fn allowlist_matches_domain_and_subdomains() {
        assert!(is_allowed("shop.example", &allow()));
        assert!(is_allowed("www.shop.example", &allow()));
        assert!(!is_allowed("evilshop.example", &allow()));
        assert!(!is_allowed("shop.example.evil.io", &allow()));
    }

    #[test]
    fn strips_only_disallowed_links() {
        let f = strip_links(
            "buy at https://evil.io/x or shop.example/mug  now 3.50",
            &allow(),
        );
        assert_eq!(
            f.text,
            "buy at [link removed] or shop.example/mug  now 3.50"
        );
        assert_eq!(f.removed, 1);
        let f = strip_links("no links here", &allow());
        assert_eq!(f.removed, 0);
        assert_eq!(f.text, "no links here");
    }

    #[test]
    fn web_urls() {
        assert!(is_web_url("https://shop.example/mug"));
        assert!(is_web_url("HTTP://shop.example"));
        assert!(!is_web_url("javascript:alert(1)"));
        assert!(!is_web_url("https://"));
        assert!(!is_web_url("https://a b"));
    }
}
