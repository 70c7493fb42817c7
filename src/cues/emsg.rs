//! In-band timed metadata: the `emsg` box (ISO/IEC 23009-1 §5.10.3.3, version 1) carrying an
//! ID3v2.4 tag (id3.org id3v2.4.0-structure / -frames), as CMAF and AOM "ID3 in CMAF" define:
//! scheme_id_uri `https://aomedia.org/emsg/ID3`, value empty, message_data = one complete ID3
//! tag. Pure writers (and a reader, for tests and tools); no I/O.
//!
//! emsg v1 layout (all big-endian):
//! ```text
//! size u32 | "emsg" | version u8 = 1 | flags u24 = 0 | timescale u32 | presentation_time u64 |
//! event_duration u32 (0xFFFFFFFF = unknown) | id u32 | scheme_id_uri (UTF-8, NUL) |
//! value (UTF-8, NUL) | message_data
//! ```

/// Scheme of ID3-in-emsg (AOM "Carriage of ID3 Timed Metadata in CMAF").
pub const ID3_SCHEME: &str = "https://aomedia.org/emsg/ID3";
/// `event_duration` of an event whose duration is unknown.
pub const UNKNOWN_DURATION: u32 = 0xFFFF_FFFF;
/// Largest size an ID3 syncsafe integer holds (28 bits).
pub const MAX_SYNCSAFE: usize = (1 << 28) - 1;

/// One `emsg` box (version 1: absolute presentation time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emsg {
    /// Ticks per second of `presentation_time` and `event_duration` (the track's timescale).
    pub timescale: u32,
    /// When the event starts, on the track's media timeline.
    pub presentation_time: u64,
    /// How long it lasts, ticks; [`UNKNOWN_DURATION`] if open-ended.
    pub event_duration: u32,
    /// Identifies the event within the scheme (repeats are the same event).
    pub id: u32,
    /// The scheme, e.g. [`ID3_SCHEME`].
    pub scheme_id_uri: String,
    /// Sub-scheme value (empty for ID3).
    pub value: String,
    /// The payload (for ID3: a complete ID3v2.4 tag).
    pub message_data: Vec<u8>,
}

impl Emsg {
    /// The box bytes. `None` if a string contains NUL or the box exceeds 4 GiB.
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        if self.scheme_id_uri.contains('\0') || self.value.contains('\0') {
            return None;
        }
        let size = 8
            + 4
            + 4
            + 8
            + 4
            + 4
            + self.scheme_id_uri.len()
            + 1
            + self.value.len()
            + 1
            + self.message_data.len();
        let size32 = u32::try_from(size).ok()?;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&size32.to_be_bytes());
        out.extend_from_slice(b"emsg");
        out.extend_from_slice(&[1, 0, 0, 0]);
        out.extend_from_slice(&self.timescale.to_be_bytes());
        out.extend_from_slice(&self.presentation_time.to_be_bytes());
        out.extend_from_slice(&self.event_duration.to_be_bytes());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(self.scheme_id_uri.as_bytes());
        out.push(0);
        out.extend_from_slice(self.value.as_bytes());
        out.push(0);
        out.extend_from_slice(&self.message_data);
        Some(out)
    }

    /// Reads one version-1 `emsg` box (exactly `bytes`); `None` if malformed.
    pub fn parse(bytes: &[u8]) -> Option<Emsg> {
        let size = usize::try_from(u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?)).ok()?;
        if size != bytes.len() || bytes.get(4..8)? != b"emsg" || *bytes.get(8)? != 1 {
            return None;
        }
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
        };
        let timescale = u32_at(12)?;
        let presentation_time = u64::from_be_bytes(bytes.get(16..24)?.try_into().ok()?);
        let event_duration = u32_at(24)?;
        let id = u32_at(28)?;
        let rest = bytes.get(32..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        let scheme_id_uri = String::from_utf8(rest[..end].to_vec()).ok()?;
        let rest = &rest[end + 1..];
        let end = rest.iter().position(|&b| b == 0)?;
        let value = String::from_utf8(rest[..end].to_vec()).ok()?;
        Some(Emsg {
            timescale,
            presentation_time,
            event_duration,
            id,
            scheme_id_uri,
            value,
            message_data: rest[end + 1..].to_vec(),
        })
    }
}

/// One ID3v2.4 frame this server writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id3Frame {
    /// `TXXX` user-defined text: UTF-8 (encoding byte 3), description, NUL, value.
    Txxx {
        /// What the value is (e.g. `com.cuecast.cue`).
        description: String,
        /// The text (e.g. the cue JSON).
        value: String,
    },
    /// `PRIV` private frame: owner identifier (ISO-8859-1 / ASCII), NUL, binary data.
    Priv {
        /// Owner, e.g. `com.cuecast`.
        owner: String,
        /// Opaque bytes.
        data: Vec<u8>,
    },
}

/// 28-bit syncsafe integer (7 bits per byte, high bit clear).
fn syncsafe(value: usize) -> Option<[u8; 4]> {
    if value > MAX_SYNCSAFE {
        return None;
    }
    Some([
        ((value >> 21) & 0x7f) as u8,
        ((value >> 14) & 0x7f) as u8,
        ((value >> 7) & 0x7f) as u8,
        (value & 0x7f) as u8,
    ])
}

/// A complete ID3v2.4 tag (10-byte header, no extended header, no unsynchronisation, no
/// padding) holding `frames`. Frame sizes are syncsafe as v2.4 requires. `None` if a
/// description/owner contains NUL or the tag exceeds 256 MiB.
pub fn id3_tag(frames: &[Id3Frame]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    for frame in frames {
        let (id, content): (&[u8; 4], Vec<u8>) = match frame {
            Id3Frame::Txxx { description, value } => {
                if description.contains('\0') {
                    return None;
                }
                let mut c = Vec::with_capacity(2 + description.len() + value.len());
                c.push(3); // UTF-8
                c.extend_from_slice(description.as_bytes());
                c.push(0);
                c.extend_from_slice(value.as_bytes());
                (b"TXXX", c)
            }
            Id3Frame::Priv { owner, data } => {
                if owner.contains('\0') || !owner.is_ascii() {
                    return None;
                }
                let mut c = Vec::with_capacity(1 + owner.len() + data.len());
                c.extend_from_slice(owner.as_bytes());
                c.push(0);
                c.extend_from_slice(data);
                (b"PRIV", c)
            }
        };
        body.extend_from_slice(id);
        body.extend_from_slice(&syncsafe(content.len())?);
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&content);
    }
    let mut tag = Vec::with_capacity(10 + body.len());
    tag.extend_from_slice(b"ID3");
    tag.extend_from_slice(&[4, 0, 0]); // v2.4.0, no flags
    tag.extend_from_slice(&syncsafe(body.len())?);
    tag.extend_from_slice(&body);
    Some(tag)
}

/// Reads the frames of an ID3v2.4 tag written by [`id3_tag`] (TXXX in UTF-8, PRIV); other
/// frames are skipped. `None` if malformed.
pub fn parse_id3(tag: &[u8]) -> Option<Vec<Id3Frame>> {
    if tag.get(0..3)? != b"ID3" || *tag.get(3)? != 4 {
        return None;
    }
    let read_syncsafe = |b: &[u8]| -> Option<usize> {
        let b: [u8; 4] = b.try_into().ok()?;
        if b.iter().any(|x| x & 0x80 != 0) {
            return None;
        }
        Some(b.iter().fold(0usize, |acc, x| (acc << 7) | usize::from(*x)))
    };
    let size = read_syncsafe(tag.get(6..10)?)?;
    let mut body = tag.get(10..10 + size)?;
    let mut frames = Vec::new();
    while body.len() >= 10 {
        let id = &body[0..4];
        let len = read_syncsafe(&body[4..8])?;
        let content = body.get(10..10 + len)?;
        match id {
            b"TXXX" => {
                let (&encoding, rest) = content.split_first()?;
                if encoding != 3 {
                    return None;
                }
                let end = rest.iter().position(|&b| b == 0)?;
                frames.push(Id3Frame::Txxx {
                    description: String::from_utf8(rest[..end].to_vec()).ok()?,
                    value: String::from_utf8(rest[end + 1..].to_vec()).ok()?,
                });
            }
            b"PRIV" => {
                let end = content.iter().position(|&b| b == 0)?;
                frames.push(Id3Frame::Priv {
                    owner: String::from_utf8(content[..end].to_vec()).ok()?,
                    data: content[end + 1..].to_vec(),
                });
            }
            _ => {}
        }
        body = &body[10 + len..];
    }
    Some(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emsg_exact_bytes_and_round_trip() {
        let emsg = Emsg {
            timescale: 90_000,
            presentation_time: 0x0000_0001_0000_0002,
            event_duration: 1_350_000,
            id: 7,
            scheme_id_uri: ID3_SCHEME.into(),
            value: String::new(),
            message_data: vec![0xAA, 0xBB],
        };
        let bytes = emsg.to_bytes().expect("writes");
        let mut expected = Vec::new();
        expected.extend_from_slice(&(32u32 + 28 + 1 + 1 + 2).to_be_bytes());
        expected.extend_from_slice(b"emsg");
        expected.extend_from_slice(&[1, 0, 0, 0]);
        expected.extend_from_slice(&[0x00, 0x01, 0x5F, 0x90]); // 90000
        expected.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        expected.extend_from_slice(&[0x00, 0x14, 0x99, 0x70]); // 1350000
        expected.extend_from_slice(&[0, 0, 0, 7]);
        expected.extend_from_slice(b"https://aomedia.org/emsg/ID3\0");
        expected.push(0);
        expected.extend_from_slice(&[0xAA, 0xBB]);
        assert_eq!(bytes, expected);
        assert_eq!(Emsg::parse(&bytes), Some(emsg));
        assert_eq!(Emsg::parse(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn emsg_rejects_nul_in_strings() {
        let emsg = Emsg {
            timescale: 1,
            presentation_time: 0,
            event_duration: UNKNOWN_DURATION,
            id: 0,
            scheme_id_uri: "a\0b".into(),
            value: String::new(),
            message_data: Vec::new(),
        };
        assert_eq!(emsg.to_bytes(), None);
    }

    #[test]
    fn id3_exact_bytes_and_round_trip() {
        let frames = vec![
            Id3Frame::Txxx {
                description: "d".into(),
                value: "{}".into(),
            },
            Id3Frame::Priv {
                owner: "o".into(),
                data: vec![1],
            },
        ];
        let tag = id3_tag(&frames).expect("writes");
        let expected: Vec<u8> = [
            b"ID3".as_slice(),
            &[4, 0, 0],
            &[0, 0, 0, 28], // 10 + 5 + 10 + 3
            b"TXXX",
            &[0, 0, 0, 5, 0, 0],
            &[3, b'd', 0, b'{', b'}'],
            b"PRIV",
            &[0, 0, 0, 3, 0, 0],
            &[b'o', 0, 1],
        ]
        .concat();
        assert_eq!(tag, expected);
        assert_eq!(parse_id3(&tag), Some(frames));
    }

    #[test]
    fn id3_sizes_are_syncsafe() {
        let value = "x".repeat(300);
        let tag = id3_tag(&[Id3Frame::Txxx {
            description: String::new(),
            value: value.clone(),
        }])
        .expect("writes");
        // Frame content 1 + 0 + 1 + 300 = 302 = 0b10_0101110 → [0, 0, 2, 46].
        assert_eq!(&tag[14..18], &[0, 0, 2, 46]);
        assert!(tag[6..10].iter().all(|b| b & 0x80 == 0));
        assert_eq!(
            parse_id3(&tag),
            Some(vec![Id3Frame::Txxx {
                description: String::new(),
                value
            }])
        );
        assert_eq!(syncsafe(MAX_SYNCSAFE + 1), None);
    }
}
