//! Byte encodings of rows and keys. Both are ours, versioned and documented in
//! `docs/FORMAT.md`: a database written by one version must stay readable by the next.
//!
//! * **Row encoding** ([`encode_row`] / [`decode_row`]): a format byte, a count, then each
//!   value as a one-byte tag followed by a fixed-width or length-prefixed payload. Every
//!   GlueSQL value type round-trips exactly.
//! * **Key encoding** ([`encode_key`] / [`decode_key`]): order-preserving — comparing two
//!   encodings as raw bytes gives the same order as comparing the keys — and self-delimiting,
//!   so an encoded index value followed by an encoded primary key still sorts by value first.

use gluesql_core::chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use gluesql_core::data::{Interval, Key, Point, Value};
use ordered_float::OrderedFloat;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Format byte that starts every encoded row.
pub const ROW_FORMAT_V1: u8 = 1;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct DecodeError {
    /// What was wrong.
    pub what: &'static str,
    /// Offset into the input where it was noticed.
    pub offset: usize,
}

/// A value that the key encoding cannot represent (maps, lists, points).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("values of type {0} cannot be used as a key or index value")]
pub struct UnkeyableValue(pub &'static str);

// ---------------------------------------------------------------------------------------
// Row encoding
// ---------------------------------------------------------------------------------------

mod tag {
    pub const NULL: u8 = 0;
    pub const BOOL: u8 = 1;
    pub const I8: u8 = 2;
    pub const I16: u8 = 3;
    pub const I32: u8 = 4;
    pub const I64: u8 = 5;
    pub const I128: u8 = 6;
    pub const U8: u8 = 7;
    pub const U16: u8 = 8;
    pub const U32: u8 = 9;
    pub const U64: u8 = 10;
    pub const U128: u8 = 11;
    pub const F32: u8 = 12;
    pub const F64: u8 = 13;
    pub const DECIMAL: u8 = 14;
    pub const STR: u8 = 15;
    pub const BYTEA: u8 = 16;
    pub const INET: u8 = 17;
    pub const DATE: u8 = 18;
    pub const TIMESTAMP: u8 = 19;
    pub const TIME: u8 = 20;
    pub const INTERVAL: u8 = 21;
    pub const UUID: u8 = 22;
    pub const MAP: u8 = 23;
    pub const LIST: u8 = 24;
    pub const POINT: u8 = 25;
}

/// Encodes a row (the values of one record, in column order).
pub fn encode_row(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + values.len() * 9);
    out.push(ROW_FORMAT_V1);
    put_varint(&mut out, values.len() as u64);
    for value in values {
        encode_value(&mut out, value);
    }
    out
}

/// Decodes a row written by [`encode_row`].
pub fn decode_row(bytes: &[u8]) -> Result<Vec<Value>, DecodeError> {
    let mut r = Reader::new(bytes);
    match r.u8()? {
        ROW_FORMAT_V1 => {}
        _ => return Err(r.err_at(0, "unknown row format version")),
    }
    let count = r.len()?;
    let mut values = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        values.push(decode_value(&mut r, 0)?);
    }
    if r.pos != bytes.len() {
        return Err(r.err("trailing bytes after row"));
    }
    Ok(values)
}

fn encode_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(tag::NULL),
        Value::Bool(v) => out.extend([tag::BOOL, u8::from(*v)]),
        Value::I8(v) => tagged(out, tag::I8, &v.to_le_bytes()),
        Value::I16(v) => tagged(out, tag::I16, &v.to_le_bytes()),
        Value::I32(v) => tagged(out, tag::I32, &v.to_le_bytes()),
        Value::I64(v) => tagged(out, tag::I64, &v.to_le_bytes()),
        Value::I128(v) => tagged(out, tag::I128, &v.to_le_bytes()),
        Value::U8(v) => tagged(out, tag::U8, &v.to_le_bytes()),
        Value::U16(v) => tagged(out, tag::U16, &v.to_le_bytes()),
        Value::U32(v) => tagged(out, tag::U32, &v.to_le_bytes()),
        Value::U64(v) => tagged(out, tag::U64, &v.to_le_bytes()),
        Value::U128(v) => tagged(out, tag::U128, &v.to_le_bytes()),
        Value::F32(v) => tagged(out, tag::F32, &v.to_bits().to_le_bytes()),
        Value::F64(v) => tagged(out, tag::F64, &v.to_bits().to_le_bytes()),
        Value::Decimal(v) => tagged(out, tag::DECIMAL, &v.serialize()),
        Value::Str(v) => {
            out.push(tag::STR);
            put_bytes(out, v.as_bytes());
        }
        Value::Bytea(v) => {
            out.push(tag::BYTEA);
            put_bytes(out, v);
        }
        Value::Inet(IpAddr::V4(v)) => {
            out.extend([tag::INET, 4]);
            out.extend(v.octets());
        }
        Value::Inet(IpAddr::V6(v)) => {
            out.extend([tag::INET, 6]);
            out.extend(v.octets());
        }
        Value::Date(v) => tagged(out, tag::DATE, &v.num_days_from_ce().to_le_bytes()),
        Value::Timestamp(v) => {
            out.push(tag::TIMESTAMP);
            put_datetime_le(out, v);
        }
        Value::Time(v) => {
            out.push(tag::TIME);
            out.extend(v.num_seconds_from_midnight().to_le_bytes());
            out.extend(v.nanosecond().to_le_bytes());
        }
        Value::Interval(Interval::Month(m)) => {
            out.extend([tag::INTERVAL, 0]);
            out.extend(m.to_le_bytes());
        }
        Value::Interval(Interval::Microsecond(us)) => {
            out.extend([tag::INTERVAL, 1]);
            out.extend(us.to_le_bytes());
        }
        Value::Uuid(v) => tagged(out, tag::UUID, &v.to_le_bytes()),
        Value::Map(map) => {
            out.push(tag::MAP);
            put_varint(out, map.len() as u64);
            for (k, v) in map {
                put_bytes(out, k.as_bytes());
                encode_value(out, v);
            }
        }
        Value::List(list) => {
            out.push(tag::LIST);
            put_varint(out, list.len() as u64);
            for v in list {
                encode_value(out, v);
            }
        }
        Value::Point(p) => {
            out.push(tag::POINT);
            out.extend(p.x.to_bits().to_le_bytes());
            out.extend(p.y.to_bits().to_le_bytes());
        }
    }
}

/// Nesting limit for maps and lists, so corrupt input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

fn decode_value(r: &mut Reader<'_>, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(r.err("values nested too deeply"));
    }
    let start = r.pos;
    Ok(match r.u8()? {
        tag::NULL => Value::Null,
        tag::BOOL => match r.u8()? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err(r.err_at(start, "invalid boolean")),
        },
        tag::I8 => Value::I8(i8::from_le_bytes(r.array()?)),
        tag::I16 => Value::I16(i16::from_le_bytes(r.array()?)),
        tag::I32 => Value::I32(i32::from_le_bytes(r.array()?)),
        tag::I64 => Value::I64(i64::from_le_bytes(r.array()?)),
        tag::I128 => Value::I128(i128::from_le_bytes(r.array()?)),
        tag::U8 => Value::U8(u8::from_le_bytes(r.array()?)),
        tag::U16 => Value::U16(u16::from_le_bytes(r.array()?)),
        tag::U32 => Value::U32(u32::from_le_bytes(r.array()?)),
        tag::U64 => Value::U64(u64::from_le_bytes(r.array()?)),
        tag::U128 => Value::U128(u128::from_le_bytes(r.array()?)),
        tag::F32 => Value::F32(f32::from_bits(u32::from_le_bytes(r.array()?))),
        tag::F64 => Value::F64(f64::from_bits(u64::from_le_bytes(r.array()?))),
        tag::DECIMAL => {
            let raw: [u8; 16] = r.array()?;
            // rust_decimal stores the scale in byte 2; above 28 `deserialize` would build an
            // invalid value, so reject it here.
            if raw[2] > 28 {
                return Err(r.err_at(start, "invalid decimal scale"));
            }
            Value::Decimal(Decimal::deserialize(raw))
        }
        tag::STR => {
            let bytes = r.bytes()?;
            Value::Str(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| r.err_at(start, "string is not UTF-8"))?,
            )
        }
        tag::BYTEA => Value::Bytea(r.bytes()?.to_vec()),
        tag::INET => match r.u8()? {
            4 => Value::Inet(IpAddr::V4(Ipv4Addr::from(r.array::<4>()?))),
            6 => Value::Inet(IpAddr::V6(Ipv6Addr::from(r.array::<16>()?))),
            _ => return Err(r.err_at(start, "invalid address family")),
        },
        tag::DATE => Value::Date(
            NaiveDate::from_num_days_from_ce_opt(i32::from_le_bytes(r.array()?))
                .ok_or_else(|| r.err_at(start, "date out of range"))?,
        ),
        tag::TIMESTAMP => {
            let days = i32::from_le_bytes(r.array()?);
            let secs = u32::from_le_bytes(r.array()?);
            let nanos = u32::from_le_bytes(r.array()?);
            Value::Timestamp(
                datetime(days, secs, nanos).ok_or_else(|| r.err_at(start, "invalid timestamp"))?,
            )
        }
        tag::TIME => {
            let secs = u32::from_le_bytes(r.array()?);
            let nanos = u32::from_le_bytes(r.array()?);
            Value::Time(
                NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
                    .ok_or_else(|| r.err_at(start, "invalid time"))?,
            )
        }
        tag::INTERVAL => match r.u8()? {
            0 => Value::Interval(Interval::Month(i32::from_le_bytes(r.array()?))),
            1 => Value::Interval(Interval::Microsecond(i64::from_le_bytes(r.array()?))),
            _ => return Err(r.err_at(start, "invalid interval kind")),
        },
        tag::UUID => Value::Uuid(u128::from_le_bytes(r.array()?)),
        tag::MAP => {
            let count = r.len()?;
            let mut map = BTreeMap::new();
            for _ in 0..count {
                let key_start = r.pos;
                let key = String::from_utf8(r.bytes()?.to_vec())
                    .map_err(|_| r.err_at(key_start, "map key is not UTF-8"))?;
                map.insert(key, decode_value(r, depth + 1)?);
            }
            Value::Map(map)
        }
        tag::LIST => {
            let count = r.len()?;
            let mut list = Vec::with_capacity(count.min(4096));
            for _ in 0..count {
                list.push(decode_value(r, depth + 1)?);
            }
            Value::List(list)
        }
        tag::POINT => {
            let x = f64::from_bits(u64::from_le_bytes(r.array()?));
            let y = f64::from_bits(u64::from_le_bytes(r.array()?));
            Value::Point(Point { x, y })
        }
        _ => return Err(r.err_at(start, "unknown value tag")),
    })
}

fn tagged(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    out.push(tag);
    out.extend_from_slice(payload);
}

fn put_datetime_le(out: &mut Vec<u8>, v: &NaiveDateTime) {
    out.extend(v.date().num_days_from_ce().to_le_bytes());
    out.extend(v.time().num_seconds_from_midnight().to_le_bytes());
    out.extend(v.time().nanosecond().to_le_bytes());
}

fn datetime(days: i32, secs: u32, nanos: u32) -> Option<NaiveDateTime> {
    let date = NaiveDate::from_num_days_from_ce_opt(days)?;
    let time = NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)?;
    Some(NaiveDateTime::new(date, time))
}

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A bounds-checked cursor over encoded bytes, shared by every decoder of the crate: no
/// read can go past the end, and every failure says what and at which offset.
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// A `0`/`1` byte.
    pub(crate) fn flag(&mut self) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.err_at(at, "flag is neither 0 nor 1")),
        }
    }

    /// A big-endian u32.
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian u64.
    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// UTF-8 text with a big-endian u32 length prefix, borrowed.
    pub(crate) fn text(&mut self) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        // Nearly all audit text is ASCII: that check is much cheaper than the validator.
        if !bytes.is_ascii() {
            std::str::from_utf8(bytes).map_err(|_| self.err_at(at, "string is not UTF-8"))?;
        }
        Ok(bytes)
    }

    /// A u32 element count that cannot exceed the remaining data (each element takes at
    /// least `min_size` bytes).
    pub(crate) fn count(&mut self, min_size: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let count = self.u32()? as usize;
        if count > (self.bytes.len() - self.pos) / min_size.max(1) {
            return Err(self.err_at(at, "list longer than the data"));
        }
        Ok(count)
    }

    pub(crate) fn err(&self, what: &'static str) -> DecodeError {
        DecodeError {
            what,
            offset: self.pos,
        }
    }

    pub(crate) fn err_at(&self, offset: usize, what: &'static str) -> DecodeError {
        DecodeError { what, offset }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.err("unexpected end of data"))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.err_at(start, "varint too long"))
    }

    /// A length that must fit in the remaining input (each element takes at least a byte).
    pub(crate) fn len(&mut self) -> Result<usize, DecodeError> {
        let start = self.pos;
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.bytes.len() - self.pos)
            .ok_or_else(|| self.err_at(start, "length exceeds data"))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.len()?;
        self.take(n)
    }
}

// ---------------------------------------------------------------------------------------
// Key encoding (order-preserving, self-delimiting)
// ---------------------------------------------------------------------------------------

mod ktag {
    pub const BOOL: u8 = 0x10;
    pub const I8: u8 = 0x20;
    pub const I16: u8 = 0x21;
    pub const I32: u8 = 0x22;
    pub const I64: u8 = 0x23;
    pub const I128: u8 = 0x24;
    pub const U8: u8 = 0x28;
    pub const U16: u8 = 0x29;
    pub const U32: u8 = 0x2A;
    pub const U64: u8 = 0x2B;
    pub const U128: u8 = 0x2C;
    pub const F32: u8 = 0x30;
    pub const F64: u8 = 0x31;
    pub const DECIMAL: u8 = 0x38;
    pub const STR: u8 = 0x40;
    pub const BYTEA: u8 = 0x48;
    pub const DATE: u8 = 0x50;
    pub const TIMESTAMP: u8 = 0x51;
    pub const TIME: u8 = 0x52;
    pub const INTERVAL: u8 = 0x58;
    pub const UUID: u8 = 0x60;
    pub const INET: u8 = 0x68;
    /// NULL sorts after every value, as GlueSQL orders `Key::None`.
    pub const NONE: u8 = 0xF0;
}

/// Appends the order-preserving encoding of `key`.
pub fn encode_key_into(out: &mut Vec<u8>, key: &Key) {
    match key {
        Key::Bool(v) => out.extend([ktag::BOOL, u8::from(*v)]),
        Key::I8(v) => tagged(out, ktag::I8, &((*v as u8) ^ 0x80).to_be_bytes()),
        Key::I16(v) => tagged(out, ktag::I16, &((*v as u16) ^ (1 << 15)).to_be_bytes()),
        Key::I32(v) => tagged(out, ktag::I32, &((*v as u32) ^ (1 << 31)).to_be_bytes()),
        Key::I64(v) => tagged(out, ktag::I64, &((*v as u64) ^ (1 << 63)).to_be_bytes()),
        Key::I128(v) => tagged(out, ktag::I128, &((*v as u128) ^ (1 << 127)).to_be_bytes()),
        Key::U8(v) => tagged(out, ktag::U8, &v.to_be_bytes()),
        Key::U16(v) => tagged(out, ktag::U16, &v.to_be_bytes()),
        Key::U32(v) => tagged(out, ktag::U32, &v.to_be_bytes()),
        Key::U64(v) => tagged(out, ktag::U64, &v.to_be_bytes()),
        Key::U128(v) => tagged(out, ktag::U128, &v.to_be_bytes()),
        Key::F32(v) => {
            let bits = v.0.to_bits();
            let ordered = if bits >> 31 == 1 {
                !bits
            } else {
                bits ^ (1 << 31)
            };
            tagged(out, ktag::F32, &ordered.to_be_bytes());
        }
        Key::F64(v) => {
            let bits = v.0.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits ^ (1 << 63)
            };
            tagged(out, ktag::F64, &ordered.to_be_bytes());
        }
        Key::Decimal(d) => {
            // (integer part, fraction scaled to 28 digits), both sign-flipped big-endian:
            // lexicographic order of the pair is numeric order, for negatives too.
            let trunc = d.trunc().mantissa() / 10i128.pow(d.trunc().scale());
            let fract = d.fract();
            let fract_scaled = fract.mantissa() * 10i128.pow(28 - fract.scale());
            out.push(ktag::DECIMAL);
            out.extend(((trunc as u128) ^ (1 << 127)).to_be_bytes());
            out.extend(((fract_scaled as u128) ^ (1 << 127)).to_be_bytes());
        }
        Key::Str(s) => {
            out.push(ktag::STR);
            put_escaped(out, s.as_bytes());
        }
        Key::Bytea(b) => {
            out.push(ktag::BYTEA);
            put_escaped(out, b);
        }
        Key::Date(d) => tagged(
            out,
            ktag::DATE,
            &((d.num_days_from_ce() as u32) ^ (1 << 31)).to_be_bytes(),
        ),
        Key::Timestamp(t) => {
            out.push(ktag::TIMESTAMP);
            out.extend(((t.date().num_days_from_ce() as u32) ^ (1 << 31)).to_be_bytes());
            out.extend(t.time().num_seconds_from_midnight().to_be_bytes());
            out.extend(t.time().nanosecond().to_be_bytes());
        }
        Key::Time(t) => {
            out.push(ktag::TIME);
            out.extend(t.num_seconds_from_midnight().to_be_bytes());
            out.extend(t.nanosecond().to_be_bytes());
        }
        Key::Interval(Interval::Month(m)) => {
            out.extend([ktag::INTERVAL, 0]);
            out.extend(((*m as u32) ^ (1 << 31)).to_be_bytes());
        }
        Key::Interval(Interval::Microsecond(us)) => {
            out.extend([ktag::INTERVAL, 1]);
            out.extend(((*us as u64) ^ (1 << 63)).to_be_bytes());
        }
        Key::Uuid(v) => tagged(out, ktag::UUID, &v.to_be_bytes()),
        Key::Inet(IpAddr::V4(v)) => {
            out.extend([ktag::INET, 4]);
            out.extend(v.octets());
        }
        Key::Inet(IpAddr::V6(v)) => {
            out.extend([ktag::INET, 6]);
            out.extend(v.octets());
        }
        Key::None => out.push(ktag::NONE),
    }
}

/// The order-preserving encoding of `key`.
pub fn encode_key(key: &Key) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    encode_key_into(&mut out, key);
    out
}

/// Converts a value into a key, refusing the types a key cannot hold.
pub fn value_to_key(value: &Value) -> Result<Key, UnkeyableValue> {
    match value {
        Value::Map(_) => Err(UnkeyableValue("MAP")),
        Value::List(_) => Err(UnkeyableValue("LIST")),
        Value::Point(_) => Err(UnkeyableValue("POINT")),
        // Every other variant converts infallibly; `Key::try_from` only rejects the three
        // above.
        other => Key::try_from(other.clone()).map_err(|_| UnkeyableValue("UNKNOWN")),
    }
}

/// Decodes one key from the front of `bytes`, returning it and the number of bytes read.
pub fn decode_key_prefix(bytes: &[u8]) -> Result<(Key, usize), DecodeError> {
    let mut r = Reader::new(bytes);
    let key = match r.u8()? {
        ktag::BOOL => match r.u8()? {
            0 => Key::Bool(false),
            1 => Key::Bool(true),
            _ => return Err(r.err_at(0, "invalid boolean key")),
        },
        ktag::I8 => Key::I8((u8::from_be_bytes(r.array()?) ^ 0x80) as i8),
        ktag::I16 => Key::I16((u16::from_be_bytes(r.array()?) ^ (1 << 15)) as i16),
        ktag::I32 => Key::I32((u32::from_be_bytes(r.array()?) ^ (1 << 31)) as i32),
        ktag::I64 => Key::I64((u64::from_be_bytes(r.array()?) ^ (1 << 63)) as i64),
        ktag::I128 => Key::I128((u128::from_be_bytes(r.array()?) ^ (1 << 127)) as i128),
        ktag::U8 => Key::U8(u8::from_be_bytes(r.array()?)),
        ktag::U16 => Key::U16(u16::from_be_bytes(r.array()?)),
        ktag::U32 => Key::U32(u32::from_be_bytes(r.array()?)),
        ktag::U64 => Key::U64(u64::from_be_bytes(r.array()?)),
        ktag::U128 => Key::U128(u128::from_be_bytes(r.array()?)),
        ktag::F32 => {
            let o = u32::from_be_bytes(r.array()?);
            let bits = if o >> 31 == 1 { o ^ (1 << 31) } else { !o };
            Key::F32(OrderedFloat(f32::from_bits(bits)))
        }
        ktag::F64 => {
            let o = u64::from_be_bytes(r.array()?);
            let bits = if o >> 63 == 1 { o ^ (1 << 63) } else { !o };
            Key::F64(OrderedFloat(f64::from_bits(bits)))
        }
        ktag::DECIMAL => {
            let trunc = (u128::from_be_bytes(r.array()?) ^ (1 << 127)) as i128;
            let fract = (u128::from_be_bytes(r.array()?) ^ (1 << 127)) as i128;
            let trunc = Decimal::try_from_i128_with_scale(trunc, 0)
                .map_err(|_| r.err_at(0, "decimal key out of range"))?;
            let fract = Decimal::try_from_i128_with_scale(fract, 28)
                .map_err(|_| r.err_at(0, "decimal key out of range"))?;
            Key::Decimal(
                trunc
                    .checked_add(fract)
                    .ok_or_else(|| r.err_at(0, "decimal key out of range"))?
                    .normalize(),
            )
        }
        ktag::STR => {
            let raw = take_escaped(&mut r)?;
            Key::Str(String::from_utf8(raw).map_err(|_| r.err_at(0, "string key is not UTF-8"))?)
        }
        ktag::BYTEA => Key::Bytea(take_escaped(&mut r)?),
        ktag::DATE => Key::Date(
            NaiveDate::from_num_days_from_ce_opt(
                (u32::from_be_bytes(r.array()?) ^ (1 << 31)) as i32,
            )
            .ok_or_else(|| r.err_at(0, "date key out of range"))?,
        ),
        ktag::TIMESTAMP => {
            let days = (u32::from_be_bytes(r.array()?) ^ (1 << 31)) as i32;
            let secs = u32::from_be_bytes(r.array()?);
            let nanos = u32::from_be_bytes(r.array()?);
            Key::Timestamp(
                datetime(days, secs, nanos).ok_or_else(|| r.err_at(0, "invalid timestamp key"))?,
            )
        }
        ktag::TIME => {
            let secs = u32::from_be_bytes(r.array()?);
            let nanos = u32::from_be_bytes(r.array()?);
            Key::Time(
                NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
                    .ok_or_else(|| r.err_at(0, "invalid time key"))?,
            )
        }
        ktag::INTERVAL => match r.u8()? {
            0 => Key::Interval(Interval::Month(
                (u32::from_be_bytes(r.array()?) ^ (1 << 31)) as i32,
            )),
            1 => Key::Interval(Interval::Microsecond(
                (u64::from_be_bytes(r.array()?) ^ (1 << 63)) as i64,
            )),
            _ => return Err(r.err_at(0, "invalid interval key")),
        },
        ktag::UUID => Key::Uuid(u128::from_be_bytes(r.array()?)),
        ktag::INET => match r.u8()? {
            4 => Key::Inet(IpAddr::V4(Ipv4Addr::from(r.array::<4>()?))),
            6 => Key::Inet(IpAddr::V6(Ipv6Addr::from(r.array::<16>()?))),
            _ => return Err(r.err_at(0, "invalid address family in key")),
        },
        ktag::NONE => Key::None,
        _ => return Err(r.err_at(0, "unknown key tag")),
    };
    Ok((key, r.pos))
}

/// Decodes a key that fills `bytes` exactly.
pub fn decode_key(bytes: &[u8]) -> Result<Key, DecodeError> {
    let (key, used) = decode_key_prefix(bytes)?;
    if used != bytes.len() {
        return Err(DecodeError {
            what: "trailing bytes after key",
            offset: used,
        });
    }
    Ok(key)
}

/// Writes `bytes` with `0x00` escaped as `0x00 0xFF` and a `0x00 0x01` terminator, so that
/// shorter strings sort before their extensions and the encoding is self-delimiting.
fn put_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend([0x00, 0x01]);
}

fn take_escaped(r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    loop {
        match r.u8()? {
            0 => match r.u8()? {
                0xFF => out.push(0),
                0x01 => return Ok(out),
                _ => return Err(r.err("invalid escape in key")),
            },
            b => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_values() -> Vec<Value> {
        let ts = NaiveDate::from_ymd_opt(2024, 2, 29)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 58, 123_456))
            .map(Value::Timestamp)
            .unwrap_or(Value::Null);
        vec![
            Value::Null,
            Value::Bool(true),
            Value::I8(-3),
            Value::I16(-300),
            Value::I32(70_000),
            Value::I64(i64::MIN),
            Value::I128(i128::MAX),
            Value::U8(255),
            Value::U16(65_535),
            Value::U32(7),
            Value::U64(u64::MAX),
            Value::U128(1 << 100),
            Value::F32(-1.5),
            Value::F64(std::f64::consts::PI),
            Value::Decimal(Decimal::new(-12345, 3)),
            Value::Str("héllo\0world".into()),
            Value::Bytea(vec![0, 1, 2, 255]),
            Value::Inet(
                "10.0.0.1"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ),
            Value::Inet(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            Value::Date(NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default()),
            ts,
            Value::Time(NaiveTime::from_hms_nano_opt(1, 2, 3, 4).unwrap_or_default()),
            Value::Interval(Interval::Month(-14)),
            Value::Interval(Interval::Microsecond(86_400_000_000)),
            Value::Uuid(0x1234_5678_9abc_def0_1234_5678_9abc_def0),
            Value::Map(BTreeMap::from([
                ("a".to_owned(), Value::I64(1)),
                (
                    "b".to_owned(),
                    Value::List(vec![Value::Null, Value::Str("x".into())]),
                ),
            ])),
            Value::List(vec![]),
            Value::Point(Point { x: 1.0, y: -2.5 }),
        ]
    }

    #[test]
    fn every_value_type_round_trips() {
        let values = sample_values();
        let bytes = encode_row(&values);
        let back = decode_row(&bytes).expect("round trip");
        assert_eq!(format!("{values:?}"), format!("{back:?}"));
    }

    #[test]
    fn truncated_or_garbled_rows_are_errors_not_panics() {
        let bytes = encode_row(&sample_values());
        for cut in 0..bytes.len() {
            assert!(decode_row(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xA5;
            let _ = decode_row(&b); // must not panic
        }
        assert!(decode_row(&[9, 0]).is_err());
        assert!(decode_row(&[ROW_FORMAT_V1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]).is_err());
    }

    fn ordered_keys() -> Vec<Vec<Key>> {
        let d = |s: &str| Key::Decimal(s.parse().unwrap_or_default());
        vec![
            vec![
                Key::I64(i64::MIN),
                Key::I64(-2),
                Key::I64(-1),
                Key::I64(0),
                Key::I64(1),
                Key::I64(i64::MAX),
            ],
            vec![Key::I8(-128), Key::I8(-1), Key::I8(0), Key::I8(127)],
            vec![Key::U32(0), Key::U32(1), Key::U32(u32::MAX)],
            vec![
                Key::F64(OrderedFloat(f64::NEG_INFINITY)),
                Key::F64(OrderedFloat(-2.5)),
                Key::F64(OrderedFloat(-0.0)),
                Key::F64(OrderedFloat(0.5)),
                Key::F64(OrderedFloat(f64::INFINITY)),
            ],
            vec![
                d("-10.5"),
                d("-10.25"),
                d("-1"),
                d("-0.75"),
                d("0"),
                d("0.001"),
                d("1.5"),
                d("2"),
                d("1000000.1"),
            ],
            vec![
                Key::Str(String::new()),
                Key::Str("a".into()),
                Key::Str("a\0".into()),
                Key::Str("a\0b".into()),
                Key::Str("ab".into()),
                Key::Str("b".into()),
            ],
            vec![
                Key::Bytea(vec![]),
                Key::Bytea(vec![0]),
                Key::Bytea(vec![0, 0]),
                Key::Bytea(vec![1]),
            ],
            vec![
                Key::Interval(Interval::Month(-1)),
                Key::Interval(Interval::Month(3)),
            ],
        ]
    }

    #[test]
    fn key_encoding_preserves_order_and_round_trips() {
        for group in ordered_keys() {
            for pair in group.windows(2) {
                let (a, b) = (encode_key(&pair[0]), encode_key(&pair[1]));
                assert!(a < b, "{:?} should sort before {:?}", pair[0], pair[1]);
            }
            for key in group {
                assert_eq!(decode_key(&encode_key(&key)).expect("decode"), key);
            }
        }
    }

    #[test]
    fn keys_are_self_delimiting_and_null_sorts_last() {
        let mut composite = encode_key(&Key::Str("ab\0".into()));
        encode_key_into(&mut composite, &Key::I64(7));
        let (first, used) = decode_key_prefix(&composite).expect("first");
        assert_eq!(first, Key::Str("ab\0".into()));
        assert_eq!(decode_key(&composite[used..]).expect("second"), Key::I64(7));
        assert!(encode_key(&Key::I64(i64::MAX)) < encode_key(&Key::None));
        assert!(encode_key(&Key::Str("zzz".into())) < encode_key(&Key::None));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::I64),
                any::<i128>().prop_map(Value::I128),
                any::<u64>().prop_map(Value::U64),
                any::<f64>().prop_map(Value::F64),
                any::<f32>().prop_map(Value::F32),
                (any::<i64>(), 0u32..=28).prop_map(|(m, s)| Value::Decimal(Decimal::new(m, s))),
                ".{0,24}".prop_map(Value::Str),
                proptest::collection::vec(any::<u8>(), 0..24).prop_map(Value::Bytea),
                any::<u128>().prop_map(Value::Uuid),
                (-100_000i32..3_000_000, 0u32..86_400, 0u32..1_000_000_000)
                    .prop_map(|(d, s, n)| datetime(d, s, n).map_or(Value::Null, Value::Timestamp)),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            scalar().prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
                    proptest::collection::btree_map(".{0,6}", inner, 0..4).prop_map(Value::Map),
                ]
            })
        }

        proptest! {
            #[test]
            fn rows_round_trip(values in proptest::collection::vec(value(), 0..8)) {
                let back = decode_row(&encode_row(&values)).expect("decode");
                // Debug output compares NaN payloads and -0.0 exactly, unlike `==`.
                prop_assert_eq!(format!("{values:?}"), format!("{back:?}"));
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
                let _ = decode_row(&bytes);
                let _ = decode_key(&bytes);
            }

            #[test]
            fn int_key_order_matches(a in any::<i64>(), b in any::<i64>()) {
                let (ka, kb) = (encode_key(&Key::I64(a)), encode_key(&Key::I64(b)));
                prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
            }

            #[test]
            fn float_key_order_matches(a in any::<f64>(), b in any::<f64>()) {
                prop_assume!(!a.is_nan() && !b.is_nan());
                let (ka, kb) = (encode_key(&Key::F64(OrderedFloat(a))), encode_key(&Key::F64(OrderedFloat(b))));
                prop_assert_eq!(a.total_cmp(&b), ka.cmp(&kb));
            }

            #[test]
            fn decimal_key_order_matches(a in any::<i64>(), sa in 0u32..=18, b in any::<i64>(), sb in 0u32..=18) {
                let (da, db) = (Decimal::new(a, sa), Decimal::new(b, sb));
                let (ka, kb) = (encode_key(&Key::Decimal(da)), encode_key(&Key::Decimal(db)));
                prop_assert_eq!(da.cmp(&db), ka.cmp(&kb));
                prop_assert_eq!(decode_key(&ka).expect("decode"), Key::Decimal(da));
            }

            #[test]
            fn string_key_order_matches_with_suffix(a in ".{0,12}", b in ".{0,12}", pa in any::<i64>(), pb in any::<i64>()) {
                let mut ka = encode_key(&Key::Str(a.clone()));
                encode_key_into(&mut ka, &Key::I64(pa));
                let mut kb = encode_key(&Key::Str(b.clone()));
                encode_key_into(&mut kb, &Key::I64(pb));
                prop_assert_eq!(a.cmp(&b).then(pa.cmp(&pb)), ka.cmp(&kb));
            }
        }
    }
}
