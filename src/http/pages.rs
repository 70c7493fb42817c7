//! The web pages cuecast serves: the viewer app (`/`, `/shows/{id}`, `/embed/shows/{id}`) and the
//! host studio (`/studio`), built from `web/` (`npm ci && npm run build`) into `web.dir`.
//!
//! The HTML entry points are served `no-cache` with the shop's theme (`[web]`: name, logo, accent
//! colour, font) written into them where the page has `<!--cuecast:site-->`: CSS variables and a
//! JSON blob the scripts read, so the pages carry the shop's brand without a second request.
//! Hashed build output under `/assets/` is immutable. A server whose assets were not built answers
//! the pages with a 503 page that says how to build them; the API and HLS are unaffected.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tower_http::services::ServeDir;

use crate::setting::Invalid;

/// Where the theme goes in each HTML entry point.
const SITE_MARKER: &str = "<!--cuecast:site-->";
/// Longest shop name, characters.
const MAX_SHOP_NAME: usize = 80;

/// `[web]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The built web assets (`web/dist` after `npm run build` in `web/`).
    pub dir: PathBuf,
    /// The shop's name, shown in the header and the page titles.
    pub shop_name: String,
    /// The shop's logo (an http(s) URL or a path on this server); empty: the name only.
    pub logo_url: String,
    /// The accent colour (`#rgb` or `#rrggbb`): buttons, badges, links.
    pub accent: String,
    /// The font stack (CSS `font-family`).
    pub font: String,
    /// Who may frame the embed (`/embed/shows/{id}`): CSP `frame-ancestors` sources, e.g.
    /// `["https://shop.example"]`; `["*"]` lets any site embed it. The other pages may only be
    /// framed by cuecast's own origin.
    pub embed_ancestors: Vec<String>,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[web]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        let name = self.shop_name.trim();
        if name.is_empty() || name.chars().count() > MAX_SHOP_NAME {
            let reason = format!("must be 1 to {MAX_SHOP_NAME} characters");
            return Err(Invalid::new("shop_name", reason));
        }
        let logo = &self.logo_url;
        if !(logo.is_empty()
            || logo.starts_with("https://")
            || logo.starts_with("http://")
            || (logo.starts_with('/') && !logo.starts_with("//")))
        {
            let reason = "must be empty, an http(s) URL or a path starting with /";
            return Err(Invalid::new("logo_url", reason));
        }
        if !is_hex_colour(&self.accent) {
            return Err(Invalid::new("accent", "must be #rgb or #rrggbb"));
        }
        for (i, source) in self.embed_ancestors.iter().enumerate() {
            if !is_frame_source(source) {
                let reason = "must be `*`, `'self'` or an origin such as https://shop.example";
                return Err(Invalid::new(format!("embed_ancestors[{i}]"), reason));
            }
        }
        if !is_font_stack(&self.font) {
            let reason =
                "must be a font-family list: letters, digits, spaces, commas, quotes, hyphens";
            return Err(Invalid::new("font", reason));
        }
        Ok(())
    }

    /// What the pages are told about the shop: CSS variables and a JSON blob, ready to go where
    /// [`SITE_MARKER`] is.
    fn site_head(&self) -> String {
        let site = serde_json::json!({
            "shop_name": self.shop_name.trim(),
            "logo_url": self.logo_url,
            "accent": self.accent,
        });
        // Inside <script>, `<` must not start `</script>` or `<!--`: JSON allows \u003c.
        let json = site.to_string().replace('<', "\\u003c");
        format!(
            "<style>:root{{--accent:{accent};--font:{font}}}</style>\
             <script id=\"cuecast-site\" type=\"application/json\">{json}</script>",
            accent = self.accent,
            font = self.font,
        )
    }
}

fn is_hex_colour(value: &str) -> bool {
    let Some(hex) = value.strip_prefix('#') else {
        return false;
    };
    matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// A CSP source that `frame-ancestors` takes and that cannot smuggle another directive in.
fn is_frame_source(value: &str) -> bool {
    if value == "*" || value == "'self'" {
        return true;
    }
    let Some((scheme, host)) = value.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*'))
}

fn is_font_stack(value: &str) -> bool {
    !value.trim().is_empty()
        && value.len() <= 200
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | ',' | '"' | '\'' | '-'))
}

/// The HTML entry points of the build (vite's multi-page input, `web/vite.config.ts`).
#[derive(Debug, Clone, Copy)]
enum Page {
    /// `index.html`: live now, upcoming, replays.
    Home,
    /// `show.html`: one show, live or replay (also embedded).
    Show,
    /// `studio.html`: the host studio.
    Studio,
}

impl Page {
    fn file(self) -> &'static str {
        match self {
            Page::Home => "index.html",
            Page::Show => "show.html",
            Page::Studio => "studio.html",
        }
    }
}

struct Pages {
    dir: PathBuf,
    site_head: String,
    /// `Content-Security-Policy` of the embed: who may frame it.
    embed_policy: HeaderValue,
}

/// `Content-Security-Policy` of every page but the embed: framed by this origin only
/// (clickjacking), as `X-Frame-Options: SAMEORIGIN` says to older browsers.
const OWN_FRAMES_ONLY: &str = "frame-ancestors 'self'";

impl Pages {
    async fn render(&self, page: Page, embed: bool) -> Response {
        let mut response = self.html(page).await;
        let headers = response.headers_mut();
        if embed {
            headers.insert(header::CONTENT_SECURITY_POLICY, self.embed_policy.clone());
        } else {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(OWN_FRAMES_ONLY),
            );
            headers.insert(
                header::X_FRAME_OPTIONS,
                HeaderValue::from_static("SAMEORIGIN"),
            );
        }
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        );
        response
    }

    async fn html(&self, page: Page) -> Response {
        let path = self.dir.join(page.file());
        match tokio::fs::read_to_string(&path).await {
            Ok(html) => {
                let html = html.replacen(SITE_MARKER, &self.site_head, 1);
                (
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    html,
                )
                    .into_response()
            }
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "web page not built");
                not_built(&self.dir)
            }
        }
    }
}

/// The answer for pages when `web.dir` holds no build.
fn not_built(dir: &Path) -> Response {
    let dir = html_escape(&dir.display().to_string());
    let body = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>cuecast</title>\
         <h1>The web pages are not built</h1><p>Build them with <code>npm ci &amp;&amp; npm run \
         build</code> in <code>web/</code> (<code>.ci/serve</code> does it), or point \
         <code>web.dir</code> at a build. Looked in <code>{dir}</code>.</p></html>"
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn home(State(pages): State<Arc<Pages>>) -> Response {
    pages.render(Page::Home, false).await
}

async fn show(State(pages): State<Arc<Pages>>) -> Response {
    pages.render(Page::Show, false).await
}

async fn embed(State(pages): State<Arc<Pages>>) -> Response {
    pages.render(Page::Show, true).await
}

async fn studio(State(pages): State<Arc<Pages>>) -> Response {
    pages.render(Page::Studio, false).await
}

/// A top-level file of the build (`favicon.svg`, `embed.js`): served `no-cache` (its name does
/// not change with its content); anything else 404 as the rest of the server does.
async fn top_level(State(pages): State<Arc<Pages>>, uri: Uri) -> Response {
    let name = uri.path().trim_start_matches('/');
    let is_plain_name = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    let ext = name.rsplit_once('.').map(|(_, ext)| ext);
    let Some(kind) = ext.and_then(content_type).filter(|_| is_plain_name) else {
        return super::not_found().await;
    };
    match tokio::fs::read(pages.dir.join(name)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => super::not_found().await,
    }
}

fn content_type(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        _ => return None,
    })
}

/// The pages' routes: `/`, `/shows/{id}`, `/embed/shows/{id}`, `/studio[/...]`, `/assets/...`
/// and the build's top-level files.
pub fn router(config: &Config) -> Router {
    if !config.dir.join(Page::Home.file()).is_file() {
        tracing::warn!(
            dir = %config.dir.display(),
            "web assets are not built (npm ci && npm run build in web/): the pages answer 503"
        );
    }
    let ancestors = match config.embed_ancestors.as_slice() {
        [] => "'none'".to_string(),
        sources => sources.join(" "),
    };
    let embed_policy = HeaderValue::from_str(&format!("frame-ancestors {ancestors}"))
        .unwrap_or_else(|_| HeaderValue::from_static(OWN_FRAMES_ONLY));
    let pages = Arc::new(Pages {
        dir: config.dir.clone(),
        site_head: config.site_head(),
        embed_policy,
    });
    let assets = Router::new()
        .nest_service("/assets", ServeDir::new(config.dir.join("assets")))
        .layer(axum::middleware::map_response(immutable));
    Router::new()
        .route("/", get(home))
        .route("/shows/{id}", get(show))
        .route("/embed/shows/{id}", get(embed))
        .route("/studio", get(studio))
        .route("/studio/{*rest}", get(studio))
        .route("/{file}", get(top_level))
        .with_state(pages)
        .merge(assets)
}

/// Vite names every file under `assets/` by its content hash: cache them for good.
async fn immutable(mut response: Response) -> Response {
    if response.status().is_success() {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            dir: PathBuf::from("web/dist"),
            shop_name: "Maison <Lune>".into(),
            logo_url: "/logo.svg".into(),
            accent: "#c2185b".into(),
            font: "\"Inter\", system-ui, sans-serif".into(),
            embed_ancestors: vec!["https://shop.example".into(), "'self'".into()],
        }
    }

    #[test]
    fn theme_goes_in_as_variables_and_escaped_json() {
        let head = config().site_head();
        assert!(head.contains("--accent:#c2185b"));
        assert!(head.contains("--font:\"Inter\", system-ui, sans-serif"));
        assert!(head.contains("Maison \\u003cLune>"), "{head}");
        assert!(!head.contains("<Lune"));
    }

    #[test]
    fn validation_names_the_key() {
        assert!(config().validate().is_ok());
        let bad = |f: fn(&mut Config)| {
            let mut c = config();
            f(&mut c);
            c.validate().map_err(|e| e.to_string())
        };
        let err = bad(|c| c.accent = "red;}body{display:none".into()).unwrap_err();
        assert!(err.contains("accent"), "{err}");
        let err = bad(|c| c.font = "x;}</style><script>".into()).unwrap_err();
        assert!(err.contains("font"), "{err}");
        let err = bad(|c| c.logo_url = "javascript:alert(1)".into()).unwrap_err();
        assert!(err.contains("logo_url"), "{err}");
        let err = bad(|c| c.logo_url = "//evil.example/x.png".into()).unwrap_err();
        assert!(err.contains("logo_url"), "{err}");
        let err = bad(|c| c.shop_name = "  ".into()).unwrap_err();
        assert!(err.contains("shop_name"), "{err}");
        let err = bad(|c| c.embed_ancestors = vec!["*; script-src *".into()]).unwrap_err();
        assert!(err.contains("embed_ancestors[0]"), "{err}");
        let err = bad(|c| c.embed_ancestors = vec!["javascript:x".into()]).unwrap_err();
        assert!(err.contains("embed_ancestors[0]"), "{err}");
        assert!(bad(|c| c.embed_ancestors = vec!["*".into()]).is_ok());
        assert!(bad(|c| c.embed_ancestors = vec!["https://*.shop.example:8443".into()]).is_ok());
        assert!(bad(|c| c.accent = "#abc".into()).is_ok());
        assert!(bad(|c| c.logo_url = String::new()).is_ok());
    }

    #[test]
    fn only_known_kinds_of_top_level_files() {
        assert_eq!(content_type("js"), Some("text/javascript; charset=utf-8"));
        assert_eq!(content_type("html"), None);
        assert_eq!(content_type("toml"), None);
    }
}
