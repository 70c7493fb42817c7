//! A room's chat as CSV for the show's host (sans-IO): one row per message, every cell quoted
//! as CSV needs, and cells a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
//! `@`, a tab or a carriage return) prefixed with `'`.

use super::proto::ChatMessage;

/// The header row.
pub const COLUMNS: [&str; 9] = [
    "id",
    "sent_at",
    "media_time_ms",
    "user",
    "role",
    "kind",
    "text",
    "link_url",
    "product_id",
];

/// `cell`, with a leading `'` when a spreadsheet would read it as a formula.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Why the CSV could not be written.
#[derive(Debug, thiserror::Error)]
#[error("chat export: {0}")]
pub struct ExportError(#[from] csv::Error);

/// The CSV of `messages`, header first.
pub fn to_csv(messages: &[ChatMessage]) -> Result<Vec<u8>, ExportError> {
    let mut out = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    out.write_record(COLUMNS)?;
    for m in messages {
        let sent_at = chrono::DateTime::from_timestamp_millis(m.sent_at_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        let media_time = m.media_time_ms.map(|t| t.to_string()).unwrap_or_default();
        let link = m.link.as_ref().map_or("", |l| l.url.as_str());
        let product = m.product.as_ref().map_or("", |p| p.id.as_str());
        out.write_record([
            m.id.to_string().as_str(),
            &sent_at,
            &media_time,
            &neutralise(&m.user),
            m.role.as_str(),
            m.kind.as_str(),
            &neutralise(&m.text),
            &neutralise(link),
            &neutralise(product),
        ])?;
    }
    out.into_inner()
        .map_err(|err| ExportError(csv::Error::from(err.into_error())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::proto::{Link, MessageKind, Role};

    fn message(id: i64, user: &str, text: &str) -> ChatMessage {
        ChatMessage {
            id,
            room: "demo".into(),
            user: user.into(),
            role: Role::Viewer,
            kind: MessageKind::Chat,
            text: text.into(),
            link: None,
            product: None,
            sent_at_ms: 1_800_000_000_123,
            session: None,
            media_time_ms: None,
        }
    }

    #[test]
    fn formulas_are_neutralised_and_cells_quoted() {
        assert_eq!(neutralise("=1+1"), "'=1+1");
        assert_eq!(neutralise("+33 6"), "'+33 6");
        assert_eq!(neutralise("-2"), "'-2");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("\t=x"), "'\t=x");
        assert_eq!(neutralise("a=b"), "a=b");
        assert_eq!(neutralise(""), "");

        let mut host = message(2, "hana", "see \"this\", now\nline two");
        host.role = Role::Host;
        host.kind = MessageKind::Link;
        host.link = Some(Link {
            url: "https://shop.example/a?b=1,2".into(),
            label: None,
        });
        host.media_time_ms = Some(4500);
        let csv = to_csv(&[message(1, "bob", "=HYPERLINK(\"http://evil\")"), host]).unwrap();
        let text = String::from_utf8(csv).unwrap();
        assert_eq!(
            text,
            "id,sent_at,media_time_ms,user,role,kind,text,link_url,product_id\n\
             1,2027-01-15T08:00:00.123Z,,bob,viewer,chat,\"'=HYPERLINK(\"\"http://evil\"\")\",,\n\
             2,2027-01-15T08:00:00.123Z,4500,hana,host,link,\"see \"\"this\"\", now\nline two\",\"https://shop.example/a?b=1,2\",\n"
        );
        // It reads back as the same cells.
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(&rows[1][6], "see \"this\", now\nline two");
        assert_eq!(&rows[0][6], "'=HYPERLINK(\"http://evil\")");
    }
}
