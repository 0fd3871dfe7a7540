//! JSON with the keys of every object in sorted order, as a `serde_json::Value` (a
//! `BTreeMap`) orders them, written straight from a `Serialize` type into a byte buffer: the
//! bytes of `json::line(&serde_json::to_value(x))` without building the `Value`.
//!
//! An object's members are written as they come (`"key":value`), each remembered by its key
//! and its bytes; when the object ends they are put in key order (unless they already are), a
//! key given twice keeping its last value as a map insert does. Numbers, and strings with
//! something to escape, are written by serde_json's own serializer with [`InertFormatter`], so
//! escaping and number formatting are exactly the ones of [`super::json::line`]; a string of
//! printable ASCII without `"` or `\` is copied between quotes, as serde_json would write it.
//! What this writer does not handle the way `serde_json::to_value` does (byte strings,
//! 128-bit integers, keys that are not strings, serde_json's private types) is an error, for
//! the caller to take the `Value` path instead.

use serde::ser::{self, Error as _, Impossible, Serialize};
use serde_json::Error;

use super::json::InertFormatter;

type Result<T = ()> = std::result::Result<T, Error>;

/// Buffers reused from one line to the next.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The members of the objects being written, innermost last.
    members: Vec<Member>,
    /// Map keys that were escaped, as they are.
    keys: String,
    /// An object's members while they are put in order.
    tmp: Vec<u8>,
    /// An object's members in key order: (key prefix, index among its members).
    order: Vec<(u64, usize)>,
}

/// Where the text of a member's key is.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// A struct's field name.
    Static(&'static str),
    /// A range of the output: the key between its quotes, nothing in it escaped.
    Out(usize, usize),
    /// A range of [`Scratch::keys`].
    Kept(usize, usize),
}

/// One member of an object: its key and where its `"key":value` is in the output.
#[derive(Debug, Clone, Copy)]
struct Member {
    /// The key's first 8 bytes, big-endian, zero-padded: orders most keys at once.
    prefix: u64,
    key: Key,
    start: usize,
    end: usize,
    /// The next member in key order has the same key, and replaces this one.
    replaced: bool,
}

impl Member {
    fn new(key: Key, text: &str, start: usize) -> Self {
        let mut b = [0u8; 8];
        let n = text.len().min(8);
        b[..n].copy_from_slice(&text.as_bytes()[..n]);
        Member {
            prefix: u64::from_be_bytes(b),
            key,
            start,
            end: start,
            replaced: false,
        }
    }
}

/// Append `value` to `out` as JSON, keys sorted; on error `out` is left as it was.
pub fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>, s: &mut Scratch) -> Result {
    let mark = out.len();
    s.members.clear();
    s.keys.clear();
    let r = value.serialize(&mut Writer { out, s });
    if r.is_err() {
        out.truncate(mark);
    }
    r
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    s: &'a mut Scratch,
}

fn unsupported(what: &str) -> Error {
    Error::custom(format_args!("{what}: not written directly"))
}

/// A string serde_json writes as it is, between quotes: printable ASCII but `"` and `\`
/// (what [`InertFormatter`] escapes is at or above U+007F).
fn plain(s: &str) -> bool {
    let mut chunks = s.as_bytes().chunks_exact(16);
    // Without early exit in a chunk: the compiler checks its 16 bytes at once.
    let escaped =
        |e: bool, &b: &u8| e | (b.wrapping_sub(0x20) > 0x7e - 0x20) | (b == b'"') | (b == b'\\');
    if chunks.any(|c| c.iter().fold(false, escaped)) {
        return false;
    }
    let mut rest = chunks.remainder();
    if let Some((word, tail)) = rest.split_first_chunk::<8>() {
        if escapes(u64::from_le_bytes(*word)) {
            return false;
        }
        rest = tail;
    }
    rest.iter().all(|&b| PLAIN[usize::from(b)])
}

/// Whether one of the 8 bytes of `w` is not [`PLAIN`] (bit tricks that tell whether any byte
/// is below, above or equal to a value).
fn escapes(w: u64) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let above_tilde = (w.wrapping_add(ONES) | w) & HIGH;
    let quote = zero_in(w ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(w ^ (ONES * u64::from(b'\\')));
    below_space | above_tilde | quote | backslash != 0
}

/// Append `s` as a JSON string, escaped as [`super::json::line`] escapes it.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    if plain(s) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let mut leaf = serde_json::Serializer::with_formatter(&mut *out, InertFormatter);
        // Writing a string to a `Vec` cannot fail.
        let _ = ser::Serializer::serialize_str(&mut leaf, s);
    }
}

/// The bytes [`plain`] strings are made of.
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    t
};

impl Writer<'_> {
    /// serde_json's serializer for scalars, writing where this one writes.
    fn leaf(&mut self) -> serde_json::Serializer<&mut Vec<u8>, InertFormatter> {
        serde_json::Serializer::with_formatter(&mut *self.out, InertFormatter)
    }

    fn string(&mut self, s: &str) -> Result {
        put_str(self.out, s);
        Ok(())
    }

    /// `"key":` of a member, after its separator; returns where the member starts.
    fn member_key(&mut self, first: bool, key: &str) -> Result<usize> {
        if !first {
            self.out.push(b',');
        }
        let start = self.out.len();
        self.string(key)?;
        self.out.push(b':');
        Ok(start)
    }

    fn begin_object(&mut self, variant: Option<&'static str>) -> Result<Object> {
        if let Some(v) = variant {
            self.out.push(b'{');
            self.member_key(true, v)?;
        }
        self.out.push(b'{');
        Ok(Object {
            start: self.out.len(),
            base: self.s.members.len(),
            keys_base: self.s.keys.len(),
            pending: None,
            variant: variant.is_some(),
        })
    }

    fn begin_array(&mut self, variant: Option<&'static str>) -> Result {
        if let Some(v) = variant {
            self.out.push(b'{');
            self.member_key(true, v)?;
        }
        self.out.push(b'[');
        Ok(())
    }
}

/// An object being written.
struct Object {
    /// Where its first member starts (after `{`).
    start: usize,
    /// Its first member in [`Scratch::members`].
    base: usize,
    keys_base: usize,
    /// A map entry's key, written, waiting for its value.
    pending: Option<Member>,
    /// A struct variant: `{"variant":{...}}`.
    variant: bool,
}

impl Object {
    fn first(&self, w: &Writer) -> bool {
        w.s.members.len() == self.base
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        w: &mut Writer,
        key: &'static str,
        value: &T,
    ) -> Result {
        let start = w.member_key(self.first(w), key)?;
        let m = Member::new(Key::Static(key), key, start);
        value.serialize(&mut *w)?;
        w.s.members.push(Member {
            end: w.out.len(),
            ..m
        });
        Ok(())
    }

    fn key<T: Serialize + ?Sized>(&mut self, w: &mut Writer, key: &T) -> Result {
        let first = self.first(w);
        self.pending = Some(key.serialize(KeyText { w, first })?);
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, w: &mut Writer, value: &T) -> Result {
        let m = self
            .pending
            .take()
            .ok_or_else(|| Error::custom("a map value without its key"))?;
        value.serialize(&mut *w)?;
        w.s.members.push(Member {
            end: w.out.len(),
            ..m
        });
        Ok(())
    }

    /// Put the members in key order and close the object.
    fn end(self, w: &mut Writer) -> Result {
        let Scratch {
            members,
            keys,
            tmp,
            order,
        } = &mut *w.s;
        let members = &mut members[self.base..];
        let text = |k: Key| match k {
            Key::Static(t) => t.as_bytes(),
            Key::Out(i, j) => &w.out[i..j],
            Key::Kept(i, j) => &keys.as_bytes()[i..j],
        };
        let cmp = |a: &Member, b: &Member| {
            a.prefix
                .cmp(&b.prefix)
                .then_with(|| text(a.key).cmp(text(b.key)))
        };
        // Strictly increasing: in order and no key twice, as written.
        if !members.windows(2).all(|p| cmp(&p[0], &p[1]).is_lt()) {
            order.clear();
            order.extend(members.iter().enumerate().map(|(i, m)| (m.prefix, i)));
            // Stable: of equal keys, the one written last comes last and replaces the others.
            order.sort_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| cmp(&members[a.1], &members[b.1]))
            });
            for p in order.windows(2) {
                members[p[0].1].replaced = cmp(&members[p[0].1], &members[p[1].1]).is_eq();
            }
            reorder(w.out, tmp, self.start, members, order);
        }
        w.s.members.truncate(self.base);
        w.s.keys.truncate(self.keys_base);
        w.out.push(b'}');
        if self.variant {
            w.out.push(b'}');
        }
        Ok(())
    }
}

/// Write again the members after `start` in `order`, but those replaced.
fn reorder(
    out: &mut Vec<u8>,
    tmp: &mut Vec<u8>,
    start: usize,
    members: &[Member],
    order: &[(u64, usize)],
) {
    tmp.clear();
    tmp.extend_from_slice(&out[start..]);
    out.truncate(start);
    let mut first = true;
    for m in order
        .iter()
        .map(|&(_, i)| &members[i])
        .filter(|m| !m.replaced)
    {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&tmp[m.start - start..m.end - start]);
    }
}

/// An array being written.
struct Array {
    first: bool,
    variant: bool,
}

impl Array {
    fn element<T: Serialize + ?Sized>(&mut self, w: &mut Writer, value: &T) -> Result {
        if !std::mem::take(&mut self.first) {
            w.out.push(b',');
        }
        value.serialize(w)
    }

    fn end(self, w: &mut Writer) -> Result {
        w.out.push(b']');
        if self.variant {
            w.out.push(b'}');
        }
        Ok(())
    }
}

/// A compound being written, with the writer it writes with.
struct Compound<'b, 'a, C> {
    w: &'b mut Writer<'a>,
    c: C,
}

macro_rules! leaf {
    ($($f:ident($t:ty)),* $(,)?) => {
        $(fn $f(self, v: $t) -> Result {
            ser::Serializer::$f(&mut self.leaf(), v)
        })*
    };
}

impl<'b, 'a> ser::Serializer for &'b mut Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'b, 'a, Array>;
    type SerializeTuple = Compound<'b, 'a, Array>;
    type SerializeTupleStruct = Compound<'b, 'a, Array>;
    type SerializeTupleVariant = Compound<'b, 'a, Array>;
    type SerializeMap = Compound<'b, 'a, Object>;
    type SerializeStruct = Compound<'b, 'a, Object>;
    type SerializeStructVariant = Compound<'b, 'a, Object>;

    leaf!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f64(f64),
        serialize_char(char),
    );

    fn serialize_str(self, v: &str) -> Result {
        self.string(v)
    }

    /// As `serde_json::to_value` does: an `f32` becomes the `f64` it is.
    fn serialize_f32(self, v: f32) -> Result {
        self.serialize_f64(f64::from(v))
    }

    fn serialize_i128(self, _: i128) -> Result {
        Err(unsupported("i128"))
    }

    fn serialize_u128(self, _: u128) -> Result {
        Err(unsupported("u128"))
    }

    fn serialize_bytes(self, _: &[u8]) -> Result {
        Err(unsupported("bytes"))
    }

    fn serialize_none(self) -> Result {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result {
        self.serialize_unit()
    }

    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result {
        private(name)?;
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result {
        self.out.push(b'{');
        self.member_key(true, variant)?;
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        self.begin_array(None)?;
        let c = Array {
            first: true,
            variant: false,
        };
        Ok(Compound { w: self, c })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        private(name)?;
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        self.begin_array(Some(variant))?;
        let c = Array {
            first: true,
            variant: true,
        };
        Ok(Compound { w: self, c })
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        let c = self.begin_object(None)?;
        Ok(Compound { w: self, c })
    }

    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        private(name)?;
        let c = self.begin_object(None)?;
        Ok(Compound { w: self, c })
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        let c = self.begin_object(Some(variant))?;
        Ok(Compound { w: self, c })
    }
}

/// serde_json's own types (`RawValue`, arbitrary-precision numbers) are the `Value` path's.
fn private(name: &str) -> Result {
    if name.starts_with("$serde_json::private::") {
        return Err(unsupported(name));
    }
    Ok(())
}

/// The four sequence shapes serde tells apart are one JSON array here: each element in turn.
macro_rules! array_compound {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_, '_, Array> {
            type Ok = ();
            type Error = Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
                self.c.element(self.w, value)
            }

            fn end(self) -> Result {
                self.c.end(self.w)
            }
        }
    )*};
}

array_compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_, Object> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result {
        self.c.key(self.w, key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.c.value(self.w, value)
    }

    fn end(self) -> Result {
        self.c.end(self.w)
    }
}

/// A struct and a struct variant are one JSON object here: each field a member.
macro_rules! struct_compound {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Compound<'_, '_, Object> {
            type Ok = ();
            type Error = Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result {
                self.c.field(self.w, key, value)
            }

            fn end(self) -> Result {
                self.c.end(self.w)
            }
        }
    )*};
}

struct_compound!(SerializeStruct, SerializeStructVariant);

/// A map key, written as a member's `"key":`: strings (and what serde writes as one) only.
struct KeyText<'w, 'a> {
    w: &'w mut Writer<'a>,
    first: bool,
}

macro_rules! not_a_key {
    ($($f:ident($($t:ty),*)),* $(,)?) => {
        $(fn $f(self, $(_: $t),*) -> Result<Member> {
            Err(unsupported("a key that is not a string"))
        })*
    };
}

impl ser::Serializer for KeyText<'_, '_> {
    type Ok = Member;
    type Error = Error;
    type SerializeSeq = Impossible<Member, Error>;
    type SerializeTuple = Impossible<Member, Error>;
    type SerializeTupleStruct = Impossible<Member, Error>;
    type SerializeTupleVariant = Impossible<Member, Error>;
    type SerializeMap = Impossible<Member, Error>;
    type SerializeStruct = Impossible<Member, Error>;
    type SerializeStructVariant = Impossible<Member, Error>;

    fn serialize_str(self, v: &str) -> Result<Member> {
        let start = self.w.member_key(self.first, v)?;
        let key = if plain(v) {
            Key::Out(start + 1, start + 1 + v.len())
        } else {
            let keys = &mut self.w.s.keys;
            keys.push_str(v);
            Key::Kept(keys.len() - v.len(), keys.len())
        };
        Ok(Member::new(key, v, start))
    }

    fn serialize_char(self, v: char) -> Result<Member> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Member> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Member> {
        private(name)?;
        value.serialize(self)
    }

    not_a_key!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Member> {
        Err(unsupported("a key that is not a string"))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Member> {
        Err(unsupported("a key that is not a string"))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(unsupported("a key that is not a string"))
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(unsupported("a key that is not a string"))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(unsupported("a key that is not a string"))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(unsupported("a key that is not a string"))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(unsupported("a key that is not a string"))
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(unsupported("a key that is not a string"))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(unsupported("a key that is not a string"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::ser::{SerializeMap, SerializeStruct};

    use super::*;
    use crate::sink::json::line;

    /// A JSON document as a `Serialize` type may give it: objects as entries in any order,
    /// keys possibly repeated, numbers of every width.
    #[derive(Debug, Clone)]
    enum Node {
        Null,
        Bool(bool),
        I(i64),
        U(u64),
        Small(i8, u16),
        F(f64),
        F32(f32),
        S(String),
        Unit(Unit),
        Array(Vec<Node>),
        Map(Vec<(String, Node)>),
        /// A struct of fields named as `FIELDS`, with one of `Node`s values.
        Struct(Vec<(usize, Node)>),
        Variant(Box<Node>),
    }

    #[derive(Debug, Clone, Copy, serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Unit {
        OomKilled,
        Exited,
    }

    const FIELDS: [&str; 6] = ["type", "ts", "container", "a", "", "z\u{2028}"];

    impl Serialize for Node {
        fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            match self {
                Node::Null => s.serialize_none(),
                Node::Bool(b) => s.serialize_bool(*b),
                Node::I(n) => s.serialize_i64(*n),
                Node::U(n) => s.serialize_u64(*n),
                Node::Small(a, b) => (a, b).serialize(s),
                Node::F(f) => s.serialize_f64(*f),
                Node::F32(f) => s.serialize_f32(*f),
                Node::S(t) => s.serialize_str(t),
                Node::Unit(u) => u.serialize(s),
                Node::Array(a) => a.serialize(s),
                Node::Map(m) => {
                    let mut map = s.serialize_map(Some(m.len()))?;
                    for (k, v) in m {
                        map.serialize_entry(k, v)?;
                    }
                    map.end()
                }
                Node::Struct(f) => {
                    let mut st = s.serialize_struct("Node", f.len())?;
                    for (i, v) in f {
                        st.serialize_field(FIELDS[*i], v)?;
                    }
                    st.end()
                }
                Node::Variant(v) => s.serialize_newtype_variant("Node", 0, "variant", v),
            }
        }
    }

    fn text() -> impl Strategy<Value = String> {
        "\\PC{0,6}|[\\x00-\\x{a0}\\x{200b}-\\x{206f}\\x{180e}\\x{feff}]{0,6}|[ab]{0,2}"
    }

    fn node() -> impl Strategy<Value = Node> {
        let leaf = prop_oneof![
            Just(Node::Null),
            any::<bool>().prop_map(Node::Bool),
            any::<i64>().prop_map(Node::I),
            any::<u64>().prop_map(Node::U),
            (any::<i8>(), any::<u16>()).prop_map(|(a, b)| Node::Small(a, b)),
            any::<f64>().prop_map(Node::F),
            prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), Just(0.1)]
                .prop_map(Node::F),
            any::<f32>().prop_map(Node::F32),
            text().prop_map(Node::S),
            prop_oneof![Just(Unit::OomKilled), Just(Unit::Exited)].prop_map(Node::Unit),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Node::Array),
                prop::collection::vec((text(), inner.clone()), 0..6).prop_map(Node::Map),
                prop::collection::vec((0..FIELDS.len(), inner.clone()), 0..6)
                    .prop_map(Node::Struct),
                inner.prop_map(|n| Node::Variant(Box::new(n))),
            ]
        })
    }

    /// The bytes of the `Value` path.
    fn via_value<T: Serialize>(x: &T) -> String {
        line(&serde_json::to_value(x).unwrap())
    }

    fn direct<T: Serialize>(x: &T) -> String {
        let mut out = Vec::new();
        write(x, &mut out, &mut Scratch::default()).unwrap();
        String::from_utf8(out).unwrap()
    }

    proptest! {
        #[test]
        fn any_document_is_written_as_the_value_path_writes_it(n in node()) {
            prop_assert_eq!(direct(&n), via_value(&n));
            // A `Value` (keys already in order) too.
            let v = serde_json::to_value(&n).unwrap();
            prop_assert_eq!(direct(&v), line(&v));
        }
    }

    proptest! {
        /// The fast check of what is written as it is agrees with a byte by byte one.
        #[test]
        fn plain_strings_are_those_of_printable_ascii(s in "[ -~]{0,40}|\\PC{0,40}|[\\x00-\\x{a0}]{0,40}", at in 0..40usize) {
            let slow = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
            prop_assert_eq!(plain(&s), slow(&s));
            // One byte made printable or not, anywhere.
            for c in ['a', '"', '\\', '\x7f', '\x1f', '\u{80}', '~', ' '] {
                let mut t: String = s.chars().filter(|c| c.is_ascii()).collect();
                t.insert(at.min(t.len()), c);
                prop_assert_eq!(plain(&t), slow(&t), "{:?}", t);
            }
        }
    }

    #[test]
    fn keys_are_sorted_and_the_last_of_a_repeated_key_wins() {
        let n = Node::Map(vec![
            ("b".into(), Node::U(1)),
            (
                "a".into(),
                Node::Map(vec![("y".into(), Node::Null), ("x".into(), Node::Null)]),
            ),
            ("b".into(), Node::U(2)),
            ("a\u{0}".into(), Node::Bool(true)),
            ("\u{1b}".into(), Node::Array(vec![])),
        ]);
        assert_eq!(
            direct(&n),
            r#"{"\u001b":[],"a":{"x":null,"y":null},"a\u0000":true,"b":2}"#
        );
        assert_eq!(direct(&n), via_value(&n));
    }

    #[test]
    fn what_it_does_not_write_is_an_error_and_leaves_the_buffer_as_it_was() {
        let mut out = b"kept".to_vec();
        let mut s = Scratch::default();
        let bytes = serde_bytes_like(&[1, 2]);
        assert!(write(&bytes, &mut out, &mut s).is_err());
        let mut m = std::collections::BTreeMap::new();
        m.insert(1u32, "one");
        assert!(write(&vec![Node::Null], &mut out, &mut s).is_ok());
        assert!(write(&m, &mut out, &mut s).is_err(), "an integer key");
        assert!(write(&1u128, &mut out, &mut s).is_err());
        assert_eq!(out, b"kept[null]");
        // The caller's fallback writes what serde_json does.
        let mut out = Vec::new();
        crate::sink::json::write_line(&m, &mut out);
        assert_eq!(out, via_value(&m).as_bytes());
    }

    /// A value serialised as bytes.
    fn serde_bytes_like(b: &[u8]) -> impl Serialize + '_ {
        struct Bytes<'a>(&'a [u8]);
        impl Serialize for Bytes<'_> {
            fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        Bytes(b)
    }
}
