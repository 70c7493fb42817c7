//! AMF0 (Action Message Format 0) decoder and encoder.
//!
//! Implements the value types of the *AMF0 File Format Specification* (Adobe, 2007) that RTMP
//! command and data messages use. Type markers (§2.1):
//!
//! | marker | type          | support                                   |
//! |--------|---------------|-------------------------------------------|
//! | 0x00   | number        | [`Value::Number`]                         |
//! | 0x01   | boolean       | [`Value::Boolean`]                        |
//! | 0x02   | string        | [`Value::String`]                         |
//! | 0x03   | object        | [`Value::Object`]                         |
//! | 0x05   | null          | [`Value::Null`]                           |
//! | 0x06   | undefined     | [`Value::Undefined`]                      |
//! | 0x08   | ECMA array    | [`Value::EcmaArray`]                      |
//! | 0x0A   | strict array  | [`Value::StrictArray`]                    |
//! | 0x0B   | date          | [`Value::Date`]                           |
//! | 0x0C   | long string   | [`Value::String`]                         |
//! | 0x07   | reference     | error ([`Amf0Error::ReferenceNotSupported`]) |
//! | 0x11   | AVM+ (AMF3)   | error ([`Amf0Error::Amf3NotSupported`])   |
//! | other  |               | error ([`Amf0Error::UnsupportedMarker`])  |
//!
//! Input comes from the network, so the decoder bounds nesting ([`MAX_DEPTH`]), string length
//! ([`MAX_STRING_LEN`]) and the number of properties/elements per container ([`MAX_PROPERTIES`]),
//! and never pre-allocates from a length field. Strings are decoded as UTF-8; invalid sequences are
//! replaced with U+FFFD rather than rejected, because some encoders write Latin-1 metadata.

use bytes::BufMut;

/// Deepest nesting of objects/arrays accepted by the decoder.
pub const MAX_DEPTH: usize = 32;
/// Longest string (bytes) accepted by the decoder, for both string and long string.
pub const MAX_STRING_LEN: usize = 1 << 20;
/// Most properties (objects, ECMA arrays) or elements (strict arrays) in one container.
pub const MAX_PROPERTIES: usize = 4096;

/// AMF0 type markers (AMF0 spec §2.1).
mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const REFERENCE: u8 = 0x07;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0A;
    pub const DATE: u8 = 0x0B;
    pub const LONG_STRING: u8 = 0x0C;
    pub const AVMPLUS: u8 = 0x11;
}

/// Errors from decoding AMF0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Amf0Error {
    /// The input ended in the middle of a value.
    #[error("AMF0 value truncated")]
    Truncated,
    /// A reference marker (0x07); cuecast does not keep a reference table.
    #[error("AMF0 reference values are not supported")]
    ReferenceNotSupported,
    /// An AVM+ marker (0x11) switching to AMF3.
    #[error("AMF0 switch to AMF3 is not supported")]
    Amf3NotSupported,
    /// A marker that is unknown or reserved (movieclip, recordset, XML, typed object, …).
    #[error("unsupported AMF0 type marker 0x{0:02x}")]
    UnsupportedMarker(u8),
    /// An object-end marker where a value was expected.
    #[error("unexpected AMF0 object-end marker")]
    UnexpectedObjectEnd,
    /// Containers nested deeper than [`MAX_DEPTH`].
    #[error("AMF0 nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// A string longer than [`MAX_STRING_LEN`].
    #[error("AMF0 string of {0} bytes exceeds the limit of {MAX_STRING_LEN}")]
    StringTooLong(usize),
    /// A container with more than [`MAX_PROPERTIES`] entries.
    #[error("AMF0 container exceeds {MAX_PROPERTIES} entries")]
    TooManyProperties,
}

/// An ordered list of named properties (AMF0 anonymous object or ECMA array).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object(pub Vec<(String, Value)>);

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// The value of the first property named `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The string value of property `key`, if it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// Appends a property (builder style).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.0.push((key.into(), value.into()));
        self
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no properties.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// IEEE-754 double (marker 0x00).
    Number(f64),
    /// Boolean (marker 0x01).
    Boolean(bool),
    /// UTF-8 string (markers 0x02 and 0x0C; encoded as long string when over 65535 bytes).
    String(String),
    /// Anonymous object (marker 0x03).
    Object(Object),
    /// Null (marker 0x05).
    Null,
    /// Undefined (marker 0x06).
    Undefined,
    /// ECMA (associative) array (marker 0x08); the count hint is not kept.
    EcmaArray(Object),
    /// Strict (dense) array (marker 0x0A).
    StrictArray(Vec<Value>),
    /// Date (marker 0x0B): milliseconds since the epoch and the (reserved) time zone field.
    Date {
        /// Milliseconds since 1970-01-01 UTC.
        millis: f64,
        /// Time zone offset field; the spec says it should be 0.
        timezone: i16,
    },
}

impl Value {
    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a number value.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The properties, if this is an object or ECMA array.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) | Value::EcmaArray(o) => Some(o),
            _ => None,
        }
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Number(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Boolean(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<Object> for Value {
    fn from(v: Object) -> Self {
        Value::Object(v)
    }
}

/// Decodes AMF0 values from a byte slice.
#[derive(Debug)]
pub struct Decoder<'a> {
    /// Bytes not yet decoded.
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// A decoder over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    /// True when all input has been consumed.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Bytes not yet decoded.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    /// Decodes the next value.
    pub fn decode(&mut self) -> Result<Value, Amf0Error> {
        self.value(0)
    }

    /// Decodes values until the input is exhausted.
    pub fn decode_all(&mut self) -> Result<Vec<Value>, Amf0Error> {
        let mut values = Vec::new();
        while !self.is_empty() {
            if values.len() >= MAX_PROPERTIES {
                return Err(Amf0Error::TooManyProperties);
            }
            values.push(self.decode()?);
        }
        Ok(values)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        if self.rest.len() < n {
            return Err(Amf0Error::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Amf0Error> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    fn string_of_len(&mut self, len: usize) -> Result<String, Amf0Error> {
        if len > MAX_STRING_LEN {
            return Err(Amf0Error::StringTooLong(len));
        }
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    /// A UTF-8 string with a 16-bit length (object keys, string values).
    fn short_string(&mut self) -> Result<String, Amf0Error> {
        let len = usize::from(self.u16()?);
        self.string_of_len(len)
    }

    fn value(&mut self, depth: usize) -> Result<Value, Amf0Error> {
        match self.u8()? {
            marker::NUMBER => Ok(Value::Number(self.f64()?)),
            marker::BOOLEAN => Ok(Value::Boolean(self.u8()? != 0)),
            marker::STRING => Ok(Value::String(self.short_string()?)),
            marker::LONG_STRING => {
                let len = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
                Ok(Value::String(self.string_of_len(len)?))
            }
            marker::OBJECT => Ok(Value::Object(self.properties(depth + 1)?)),
            marker::NULL => Ok(Value::Null),
            marker::UNDEFINED => Ok(Value::Undefined),
            marker::ECMA_ARRAY => {
                // The count is only a hint (encoders often write 0); the end marker terminates.
                let _count = self.u32()?;
                Ok(Value::EcmaArray(self.properties(depth + 1)?))
            }
            marker::STRICT_ARRAY => {
                let depth = depth + 1;
                if depth > MAX_DEPTH {
                    return Err(Amf0Error::TooDeep);
                }
                let count = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
                if count > MAX_PROPERTIES {
                    return Err(Amf0Error::TooManyProperties);
                }
                // Every element takes at least one byte: never allocate past the input.
                let mut items = Vec::with_capacity(count.min(self.rest.len()));
                for _ in 0..count {
                    items.push(self.value(depth)?);
                }
                Ok(Value::StrictArray(items))
            }
            marker::DATE => {
                let millis = self.f64()?;
                let timezone = i16::from_be_bytes(self.array()?);
                Ok(Value::Date { millis, timezone })
            }
            marker::OBJECT_END => Err(Amf0Error::UnexpectedObjectEnd),
            marker::REFERENCE => Err(Amf0Error::ReferenceNotSupported),
            marker::AVMPLUS => Err(Amf0Error::Amf3NotSupported),
            other => Err(Amf0Error::UnsupportedMarker(other)),
        }
    }

    /// Properties up to and including the `00 00 09` end marker (AMF0 spec §2.5).
    fn properties(&mut self, depth: usize) -> Result<Object, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        let mut props = Vec::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() && self.rest.first() == Some(&marker::OBJECT_END) {
                self.take(1)?;
                return Ok(Object(props));
            }
            if props.len() >= MAX_PROPERTIES {
                return Err(Amf0Error::TooManyProperties);
            }
            let value = self.value(depth)?;
            props.push((key, value));
        }
    }
}

/// Decodes every value in `input`.
pub fn decode_all(input: &[u8]) -> Result<Vec<Value>, Amf0Error> {
    Decoder::new(input).decode_all()
}

/// Appends the AMF0 encoding of `value` to `out`.
pub fn encode(out: &mut impl BufMut, value: &Value) {
    match value {
        Value::Number(n) => {
            out.put_u8(marker::NUMBER);
            out.put_f64(*n);
        }
        Value::Boolean(b) => {
            out.put_u8(marker::BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.put_u8(marker::STRING);
                out.put_u16(len);
                out.put_slice(s.as_bytes());
            }
            Err(_) => {
                out.put_u8(marker::LONG_STRING);
                out.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
                out.put_slice(s.as_bytes());
            }
        },
        Value::Object(o) => {
            out.put_u8(marker::OBJECT);
            encode_properties(out, o);
        }
        Value::Null => out.put_u8(marker::NULL),
        Value::Undefined => out.put_u8(marker::UNDEFINED),
        Value::EcmaArray(o) => {
            out.put_u8(marker::ECMA_ARRAY);
            out.put_u32(u32::try_from(o.len()).unwrap_or(u32::MAX));
            encode_properties(out, o);
        }
        Value::StrictArray(items) => {
            out.put_u8(marker::STRICT_ARRAY);
            out.put_u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
            for item in items {
                encode(out, item);
            }
        }
        Value::Date { millis, timezone } => {
            out.put_u8(marker::DATE);
            out.put_f64(*millis);
            out.put_i16(*timezone);
        }
    }
}

/// Appends the encodings of `values` in order.
pub fn encode_all(out: &mut impl BufMut, values: &[Value]) {
    for value in values {
        encode(out, value);
    }
}

fn encode_properties(out: &mut impl BufMut, object: &Object) {
    for (key, value) in &object.0 {
        // Keys have a 16-bit length; longer keys are truncated at a char boundary.
        let mut end = key.len().min(usize::from(u16::MAX));
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        out.put_u16(u16::try_from(end).unwrap_or(u16::MAX));
        out.put_slice(key.as_bytes().get(..end).unwrap_or_default());
        encode(out, value);
    }
    out.put_u16(0);
    out.put_u8(marker::OBJECT_END);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: Value) {
        let mut buf = Vec::new();
        encode(&mut buf, &value);
        let decoded = decode_all(&buf).expect("decode");
        assert_eq!(decoded, vec![value]);
    }

    #[test]
    fn round_trips_every_type() {
        round_trip(Value::Number(1.5));
        round_trip(Value::Boolean(true));
        round_trip(Value::String("héllo".into()));
        round_trip(Value::String("x".repeat(70_000)));
        round_trip(Value::Null);
        round_trip(Value::Undefined);
        round_trip(Value::Date {
            millis: 1.7e12,
            timezone: 0,
        });
        let obj = Object::new()
            .with("app", "live")
            .with("n", 3.0)
            .with("nested", Object::new().with("a", Value::Null));
        round_trip(Value::Object(obj.clone()));
        round_trip(Value::EcmaArray(obj.clone()));
        round_trip(Value::StrictArray(vec![
            Value::Number(1.0),
            Value::Object(obj),
            Value::StrictArray(vec![]),
        ]));
    }

    #[test]
    fn decodes_known_bytes() {
        // "connect", 1.0, {app: "live"}
        let bytes = [
            0x02, 0x00, 0x07, b'c', b'o', b'n', b'n', b'e', b'c', b't', 0x00, 0x3f, 0xf0, 0, 0, 0,
            0, 0, 0, 0x03, 0x00, 0x03, b'a', b'p', b'p', 0x02, 0x00, 0x04, b'l', b'i', b'v', b'e',
            0x00, 0x00, 0x09,
        ];
        let values = decode_all(&bytes).expect("decode");
        assert_eq!(values[0], Value::from("connect"));
        assert_eq!(values[1], Value::Number(1.0));
        let obj = values[2].as_object().expect("object");
        assert_eq!(obj.get_str("app"), Some("live"));
        assert_eq!(obj.get("missing"), None);
    }

    #[test]
    fn ecma_array_count_is_only_a_hint() {
        let mut buf = vec![marker::ECMA_ARRAY, 0, 0, 0, 0];
        buf.extend_from_slice(&[0, 1, b'k', marker::NULL, 0, 0, marker::OBJECT_END]);
        let values = decode_all(&buf).expect("decode");
        assert_eq!(
            values,
            vec![Value::EcmaArray(Object::new().with("k", Value::Null))]
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(decode_all(&[0x00, 1, 2]), Err(Amf0Error::Truncated));
        assert_eq!(decode_all(&[0x02, 0, 5, b'a']), Err(Amf0Error::Truncated));
        assert_eq!(
            decode_all(&[0x07, 0, 1]),
            Err(Amf0Error::ReferenceNotSupported)
        );
        assert_eq!(decode_all(&[0x11, 0]), Err(Amf0Error::Amf3NotSupported));
        assert_eq!(decode_all(&[0x04]), Err(Amf0Error::UnsupportedMarker(4)));
        assert_eq!(decode_all(&[0x0F]), Err(Amf0Error::UnsupportedMarker(0x0F)));
        assert_eq!(decode_all(&[0x09]), Err(Amf0Error::UnexpectedObjectEnd));
        // Object without end marker.
        assert_eq!(
            decode_all(&[0x03, 0, 1, b'a', 0x05]),
            Err(Amf0Error::Truncated)
        );
        // Long string claiming 4 GiB.
        assert_eq!(
            decode_all(&[0x0C, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(Amf0Error::StringTooLong(0xFFFF_FFFF))
        );
        // Strict array claiming 4 billion elements: refused, not allocated.
        assert_eq!(
            decode_all(&[0x0A, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(Amf0Error::TooManyProperties)
        );
        assert_eq!(
            decode_all(&[0x0A, 0x00, 0x00, 0x10, 0x00]),
            Err(Amf0Error::Truncated)
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut deep = Vec::new();
        for _ in 0..(MAX_DEPTH + 1) {
            deep.extend_from_slice(&[marker::STRICT_ARRAY, 0, 0, 0, 1]);
        }
        deep.push(marker::NULL);
        assert_eq!(decode_all(&deep), Err(Amf0Error::TooDeep));

        let mut objects = Vec::new();
        for _ in 0..10_000 {
            objects.extend_from_slice(&[marker::OBJECT, 0, 1, b'a']);
        }
        assert_eq!(decode_all(&objects), Err(Amf0Error::TooDeep));
    }

    #[test]
    fn property_count_is_bounded() {
        let mut buf = vec![marker::OBJECT];
        for _ in 0..=MAX_PROPERTIES {
            buf.extend_from_slice(&[0, 1, b'a', marker::NULL]);
        }
        buf.extend_from_slice(&[0, 0, marker::OBJECT_END]);
        assert_eq!(decode_all(&buf), Err(Amf0Error::TooManyProperties));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let values = decode_all(&[0x02, 0, 2, 0xC3, 0x28]).expect("decode");
        assert_eq!(values, vec![Value::from("\u{FFFD}(")]);
    }
}
