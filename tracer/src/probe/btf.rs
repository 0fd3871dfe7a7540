//! Just enough of a BTF reader to find the byte offset of a struct member, and the value of an
//! enumerator.
//!
//! aya-ebpf has no CO-RE relocations for Rust programs, so the offsets the programs need
//! (`task_struct.exit_code`, ...) are computed here from `/sys/kernel/btf/vmlinux` and handed to
//! the programs as globals. Format: <https://docs.kernel.org/bpf/btf.html>.

use std::hash::BuildHasher as _;

use hashbrown::HashTable;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BtfError {
    #[error("not BTF data (bad magic)")]
    BadMagic,
    #[error("BTF data truncated at byte {0}")]
    Truncated(usize),
    #[error("unknown BTF type kind {kind} at type id {id}")]
    UnknownKind { kind: u32, id: u32 },
}

const MAGIC: u16 = 0xeb9f;

// BTF kinds (include/uapi/linux/btf.h).
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Debug, Clone)]
struct Member {
    name: u32,
    type_id: u32,
    bit_offset: u32,
}

#[derive(Debug, Clone)]
struct Type {
    name: u32,
    kind: u32,
    /// Referenced type for modifiers and typedefs.
    type_ref: u32,
    /// Its members (struct, union) or parameters (function prototype): where they start in
    /// [`Btf::members`], and how many.
    members_at: u32,
    members_len: u32,
}

/// Parsed type section, enough to resolve struct member offsets.
///
/// Parsed at every start, on one thread while aya parses the same BTF on another: nothing is
/// allocated per type or per name (the kernel's BTF has about 150,000 types, 60,000 functions
/// and 25,000 enumerators). The indexes hold string offsets, hashed and compared through
/// `strings`.
pub struct Btf {
    types: Vec<Type>, // index = type id; id 0 is `void`
    /// Every type's members, in type order.
    members: Vec<Member>,
    strings: Vec<u8>,
    hasher: foldhash::fast::FixedState,
    /// Struct and union type ids, by name (several may share one).
    structs_by_name: HashTable<u32>,
    /// `FUNC` type ids by name, the first of each name.
    funcs_by_name: HashTable<u32>,
    /// Enumerators (name offset, value); C enumerators share one namespace.
    enumerators: Vec<(u32, i64)>,
    /// Indexes into `enumerators` by name, the first of each name.
    enumerators_by_name: HashTable<u32>,
}

fn u32_at(buf: &[u8], at: usize) -> Result<u32, BtfError> {
    buf.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(BtfError::Truncated(at))
}

/// The type section's bounds and the string section of raw BTF, from its header.
fn sections(buf: &[u8]) -> Result<(usize, usize, Vec<u8>), BtfError> {
    let magic = buf.get(0..2).ok_or(BtfError::Truncated(0))?;
    if u16::from_le_bytes([magic[0], magic[1]]) != MAGIC {
        return Err(BtfError::BadMagic);
    }
    let hdr_len = u32_at(buf, 4)? as usize;
    let type_off = u32_at(buf, 8)? as usize;
    let type_len = u32_at(buf, 12)? as usize;
    let str_off = u32_at(buf, 16)? as usize;
    let str_len = u32_at(buf, 20)? as usize;
    let types_start = hdr_len
        .checked_add(type_off)
        .ok_or(BtfError::Truncated(8))?;
    let types_end = types_start
        .checked_add(type_len)
        .ok_or(BtfError::Truncated(12))?;
    let strs_start = hdr_len
        .checked_add(str_off)
        .ok_or(BtfError::Truncated(16))?;
    let strs_end = strs_start
        .checked_add(str_len)
        .ok_or(BtfError::Truncated(20))?;
    if types_end > buf.len() {
        return Err(BtfError::Truncated(types_end));
    }
    let strings = buf
        .get(strs_start..strs_end)
        .ok_or(BtfError::Truncated(strs_end))?
        .to_vec();
    Ok((types_start, types_end, strings))
}

/// The type at byte `at` (type id `id`), and where the next one starts; enumerators are
/// collected into `enumerators`.
fn parse_type(
    buf: &[u8],
    at: usize,
    id: u32,
    members: &mut Vec<Member>,
    enumerators: &mut Vec<(u32, i64)>,
) -> Result<(Type, usize), BtfError> {
    let mut at = at;
    let name = u32_at(buf, at)?;
    let info = u32_at(buf, at + 4)?;
    let size_or_type = u32_at(buf, at + 8)?;
    at += 12;
    let vlen = (info & 0xffff) as usize;
    let kind = (info >> 24) & 0x1f;
    let kind_flag = info >> 31 == 1;
    let members_at = members.len();
    let extra = match kind {
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION => {
            for i in 0..vlen {
                let m = at + i * 12;
                let raw_off = u32_at(buf, m + 8)?;
                members.push(Member {
                    name: u32_at(buf, m)?,
                    type_id: u32_at(buf, m + 4)?,
                    bit_offset: if kind_flag {
                        raw_off & 0x00ff_ffff
                    } else {
                        raw_off
                    },
                });
            }
            vlen * 12
        }
        KIND_ENUM => {
            for i in 0..vlen {
                let e = at + i * 8;
                let raw = u32_at(buf, e + 4)?;
                // kind_flag: signed values.
                let val = if kind_flag {
                    i64::from(raw as i32)
                } else {
                    i64::from(raw)
                };
                enumerators.push((u32_at(buf, e)?, val));
            }
            vlen * 8
        }
        KIND_ENUM64 => {
            for i in 0..vlen {
                let e = at + i * 12;
                let lo = u64::from(u32_at(buf, e + 4)?);
                let hi = u64::from(u32_at(buf, e + 8)?);
                enumerators.push((u32_at(buf, e)?, (hi << 32 | lo) as i64));
            }
            vlen * 12
        }
        KIND_FUNC_PROTO => {
            // Parameters: name and type, kept as members without offsets.
            for i in 0..vlen {
                let p = at + i * 8;
                members.push(Member {
                    name: u32_at(buf, p)?,
                    type_id: u32_at(buf, p + 4)?,
                    bit_offset: 0,
                });
            }
            vlen * 8
        }
        KIND_DATASEC => vlen * 12,
        KIND_PTR | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_FUNC
        | 16 | KIND_TYPE_TAG => 0,
        _ => return Err(BtfError::UnknownKind { kind, id }),
    };
    at += extra;
    // At most 0xffff members per type (`vlen`), and a type section of at most 4 GiB.
    let members_len = (members.len() - members_at) as u32;
    Ok((
        Type {
            name,
            kind,
            type_ref: size_or_type,
            members_at: members_at as u32,
            members_len,
        },
        at,
    ))
}

impl Btf {
    /// Parse raw BTF (little endian, as in `/sys/kernel/btf/vmlinux`).
    pub fn parse(buf: &[u8]) -> Result<Self, BtfError> {
        let (types_start, types_end, strings) = sections(buf)?;
        // A type takes at least 12 bytes; most have no members.
        let mut types = Vec::with_capacity((types_end - types_start) / 16);
        types.push(Type {
            name: 0,
            kind: 0,
            type_ref: 0,
            members_at: 0,
            members_len: 0,
        });
        let mut members = Vec::new();
        let mut enumerators = Vec::new();
        let mut at = types_start;
        while at < types_end {
            let (t, next) =
                parse_type(buf, at, types.len() as u32, &mut members, &mut enumerators)?;
            types.push(t);
            at = next;
        }
        if at != types_end {
            return Err(BtfError::Truncated(types_end));
        }
        Ok(Self::indexed(types, members, strings, enumerators))
    }

    /// The parsed types with their lookups by name.
    fn indexed(
        types: Vec<Type>,
        members: Vec<Member>,
        strings: Vec<u8>,
        enumerators: Vec<(u32, i64)>,
    ) -> Self {
        let mut btf = Self {
            types,
            members,
            strings,
            hasher: foldhash::fast::FixedState::default(),
            structs_by_name: HashTable::new(),
            funcs_by_name: HashTable::new(),
            enumerators,
            enumerators_by_name: HashTable::new(),
        };
        let (mut structs, mut funcs, mut enums) =
            (HashTable::new(), HashTable::new(), HashTable::new());
        for (i, &(name, _)) in btf.enumerators.iter().enumerate() {
            btf.index_first(&mut enums, name, i as u32, Self::enumerator_name);
        }
        for (id, t) in btf.types.iter().enumerate() {
            if t.kind == KIND_STRUCT || t.kind == KIND_UNION {
                let name = btf.name(t.name);
                if !name.is_empty() {
                    let hash = btf.hasher.hash_one(name);
                    structs.insert_unique(hash, id as u32, |&id: &u32| {
                        btf.hasher.hash_one(btf.name(btf.type_name(id)))
                    });
                }
            } else if t.kind == KIND_FUNC {
                btf.index_first(&mut funcs, t.name, id as u32, Self::type_name);
            }
        }
        btf.structs_by_name = structs;
        btf.funcs_by_name = funcs;
        btf.enumerators_by_name = enums;
        btf
    }

    /// Adds `entry` (named by the string at `name`) to `table` unless an entry of that name is
    /// there already; `name_of` gives an entry's name offset.
    fn index_first(
        &self,
        table: &mut HashTable<u32>,
        name: u32,
        entry: u32,
        name_of: fn(&Self, u32) -> u32,
    ) {
        let name = self.name(name);
        if name.is_empty() {
            return;
        }
        let hash = self.hasher.hash_one(name);
        let eq = |&e: &u32| self.name(name_of(self, e)) == name;
        let rehash = |&e: &u32| self.hasher.hash_one(self.name(name_of(self, e)));
        if let hashbrown::hash_table::Entry::Vacant(v) = table.entry(hash, eq, rehash) {
            v.insert(entry);
        }
    }

    /// The name offset of type `id` (0, the empty name, for none).
    fn type_name(&self, id: u32) -> u32 {
        self.types.get(id as usize).map_or(0, |t| t.name)
    }

    /// The name offset of enumerator `i` (0, the empty name, for none).
    fn enumerator_name(&self, i: u32) -> u32 {
        self.enumerators.get(i as usize).map_or(0, |e| e.0)
    }

    /// The entry of `table` named `name`, the first of that name.
    fn lookup(
        &self,
        table: &HashTable<u32>,
        name: &str,
        name_of: fn(&Self, u32) -> u32,
    ) -> Option<u32> {
        table
            .find(self.hasher.hash_one(name), |&e| {
                self.name(name_of(self, e)) == name
            })
            .copied()
    }

    fn name(&self, off: u32) -> &str {
        let Some(rest) = self.strings.get(off as usize..) else {
            return "";
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    /// The members (or parameters) of `t`.
    fn members(&self, t: &Type) -> &[Member] {
        let at = t.members_at as usize;
        self.members
            .get(at..at + t.members_len as usize)
            .unwrap_or(&[])
    }

    /// Skip typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..32 {
            let t = self.types.get(id as usize)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.type_ref;
                }
                _ => return Some(t),
            }
        }
        None
    }

    /// Byte offset of `member` in `struct name`, looking into anonymous structs and unions
    /// (where the kernel keeps many `task_struct` fields). `None` if absent or a bitfield.
    pub fn member_offset(&self, name: &str, member: &str) -> Option<u32> {
        // Structs of one name in type order, as the kernel's BTF lists them.
        let mut ids: Vec<u32> = self
            .structs_by_name
            .iter_hash(self.hasher.hash_one(name))
            .copied()
            .filter(|&id| self.name(self.type_name(id)) == name)
            .collect();
        ids.sort_unstable();
        ids.iter()
            .filter_map(|&id| self.types.get(id as usize))
            .find_map(|t| self.find_member(t, member, 0))
    }

    /// The parameters of kernel function `name` as its BTF prototype declares them: each
    /// parameter's name and its type's name after typedefs and qualifiers (`int`, `unsigned
    /// int`; empty for pointers and anonymous types). `None` when the function is not in BTF
    /// (not built, inlined everywhere, or static and not traceable).
    pub fn func_params(&self, name: &str) -> Option<Vec<(String, String)>> {
        let func = self.lookup(&self.funcs_by_name, name, Self::type_name)?;
        let func = self.types.get(func as usize)?;
        let proto = self.types.get(func.type_ref as usize)?;
        if proto.kind != KIND_FUNC_PROTO {
            return None;
        }
        Some(
            self.members(proto)
                .iter()
                .map(|p| {
                    (
                        self.name(p.name).to_owned(),
                        self.param_type(p.type_id).to_owned(),
                    )
                })
                .collect(),
        )
    }

    /// The arguments of tracepoint `name` as its BTF-typed programs get them (the prototype of
    /// `btf_trace_<name>`, without its leading `void *`): each type's name after typedefs and
    /// qualifiers, as [`Btf::func_params`] gives them (empty for pointers). `None` when the
    /// kernel's BTF has no such tracepoint.
    pub fn tracepoint_args(&self, name: &str) -> Option<Vec<String>> {
        let typedef = format!("btf_trace_{name}");
        let t = self
            .types
            .iter()
            .find(|t| t.kind == KIND_TYPEDEF && self.name(t.name) == typedef)?;
        let ptr = self.types.get(t.type_ref as usize)?;
        let proto = self.resolve(ptr.type_ref)?;
        if ptr.kind != KIND_PTR || proto.kind != KIND_FUNC_PROTO {
            return None;
        }
        Some(
            self.members(proto)
                .iter()
                .skip(1)
                .map(|p| self.param_type(p.type_id).to_owned())
                .collect(),
        )
    }

    /// A parameter's type as [`Btf::func_params`] and [`Btf::tracepoint_args`] name it: an
    /// integer's or enum's name after typedefs and qualifiers, empty for anything else.
    fn param_type(&self, id: u32) -> &str {
        self.resolve(id)
            .filter(|t| t.kind == KIND_INT || t.kind == KIND_ENUM)
            .map_or("", |t| self.name(t.name))
    }

    /// Value of the enumerator `name` (`memory_cgrp_id`, ...).
    pub fn enum_value(&self, name: &str) -> Option<i64> {
        let i = self.lookup(&self.enumerators_by_name, name, Self::enumerator_name)?;
        self.enumerators.get(i as usize).map(|e| e.1)
    }

    fn find_member(&self, t: &Type, member: &str, depth: u32) -> Option<u32> {
        if depth > 8 {
            return None;
        }
        for m in self.members(t) {
            let mname = self.name(m.name);
            if mname == member {
                return (m.bit_offset % 8 == 0).then_some(m.bit_offset / 8);
            }
            if mname.is_empty() {
                if let Some(inner) = self.resolve(m.type_id) {
                    if let Some(off) = self.find_member(inner, member, depth + 1) {
                        return Some(m.bit_offset / 8 + off);
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny BTF blob builder for tests.
    #[derive(Default)]
    pub struct Builder {
        types: Vec<u8>,
        strings: Vec<u8>,
        /// Types pushed so far: the id of the last one.
        last_id: u32,
    }

    impl Builder {
        pub fn new() -> Self {
            Self {
                types: Vec::new(),
                strings: vec![0],
                last_id: 0,
            }
        }
        pub fn str(&mut self, s: &str) -> u32 {
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }
        fn push(&mut self, name: u32, kind: u32, vlen: u32, size_or_type: u32) {
            self.last_id += 1;
            for v in [name, kind << 24 | vlen, size_or_type] {
                self.types.extend_from_slice(&v.to_le_bytes());
            }
        }
        pub fn int(&mut self, name: &str, size: u32) {
            let n = self.str(name);
            self.push(n, KIND_INT, 0, size);
            self.types.extend_from_slice(&(size * 8).to_le_bytes());
        }
        pub fn ptr(&mut self, to: u32) {
            self.push(0, 2, 0, to);
        }
        pub fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) {
            let n = if name.is_empty() { 0 } else { self.str(name) };
            self.push(n, KIND_STRUCT, members.len() as u32, size);
            for &(mname, ty, bit_off) in members {
                let mn = if mname.is_empty() { 0 } else { self.str(mname) };
                for v in [mn, ty, bit_off] {
                    self.types.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        pub fn enumeration(&mut self, name: &str, values: &[(&str, i32)]) {
            let n = if name.is_empty() { 0 } else { self.str(name) };
            // kind_flag set: signed values.
            self.push(n, KIND_ENUM | 1 << 7, values.len() as u32, 4);
            for &(vname, v) in values {
                let vn = self.str(vname);
                self.types.extend_from_slice(&vn.to_le_bytes());
                self.types.extend_from_slice(&v.to_le_bytes());
            }
        }
        pub fn func(&mut self, name: &str, ret: u32, params: &[(&str, u32)]) {
            self.push(0, KIND_FUNC_PROTO, params.len() as u32, ret);
            for &(pname, ty) in params {
                let pn = self.str(pname);
                self.types.extend_from_slice(&pn.to_le_bytes());
                self.types.extend_from_slice(&ty.to_le_bytes());
            }
            let proto_id = self.last_id;
            let n = self.str(name);
            self.push(n, KIND_FUNC, 1, proto_id);
        }
        /// A function prototype alone (as a tracepoint's typedef points at); its id.
        pub fn proto(&mut self, ret: u32, params: &[u32]) -> u32 {
            self.push(0, KIND_FUNC_PROTO, params.len() as u32, ret);
            for &ty in params {
                self.types.extend_from_slice(&0u32.to_le_bytes());
                self.types.extend_from_slice(&ty.to_le_bytes());
            }
            self.last_id
        }
        pub fn typedef(&mut self, name: &str, to: u32) {
            let n = self.str(name);
            self.push(n, KIND_TYPEDEF, 0, to);
        }
        pub fn build(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&MAGIC.to_le_bytes());
            out.push(1); // version
            out.push(0); // flags
            for v in [
                24u32,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strings.len() as u32,
            ] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    fn task_btf() -> Vec<u8> {
        let mut b = Builder::new();
        b.int("int", 4); // 1
        b.strukt("task_struct", 0, &[]); // 2 (forward-ish, empty: must be skipped)
        b.ptr(4); // 3
                  // 4: anonymous struct holding tgid, as randstruct layouts do
        b.strukt("", 8, &[("pid", 1, 0), ("tgid", 1, 32)]);
        b.strukt(
            "task_struct",
            64,
            &[
                ("state", 1, 0),
                ("", 4, 64),
                ("real_parent", 3, 128),
                ("exit_code", 1, 192),
            ],
        ); // 5
        b.enumeration(
            "cgroup_subsys_id",
            &[("cpu_cgrp_id", 1), ("memory_cgrp_id", 4)],
        ); // 6
        b.enumeration("", &[("NEGATIVE_ONE", -1)]); // 7
        b.build()
    }

    #[test]
    fn finds_enumerator_values() {
        let btf = Btf::parse(&task_btf()).unwrap();
        assert_eq!(btf.enum_value("memory_cgrp_id"), Some(4));
        assert_eq!(btf.enum_value("cpu_cgrp_id"), Some(1));
        assert_eq!(btf.enum_value("NEGATIVE_ONE"), Some(-1));
        assert_eq!(btf.enum_value("cgroup_subsys_id"), None);
        // Still a struct member reader after the enums.
        assert_eq!(btf.member_offset("task_struct", "exit_code"), Some(24));
    }

    #[test]
    fn finds_direct_and_anonymous_members() {
        let btf = Btf::parse(&task_btf()).unwrap();
        assert_eq!(btf.member_offset("task_struct", "state"), Some(0));
        assert_eq!(btf.member_offset("task_struct", "tgid"), Some(12));
        assert_eq!(btf.member_offset("task_struct", "real_parent"), Some(16));
        assert_eq!(btf.member_offset("task_struct", "exit_code"), Some(24));
        assert_eq!(btf.member_offset("task_struct", "nope"), None);
        assert_eq!(btf.member_offset("nope", "pid"), None);
    }

    #[test]
    fn names_shared_by_types_resolve_to_the_first_in_type_order() {
        let mut b = Builder::new();
        b.int("int", 4); // 1
        b.strukt("dup", 8, &[("y", 1, 0)]); // 2
        b.strukt("dup", 16, &[("x", 1, 0), ("y", 1, 64)]); // 3
        b.enumeration("first", &[("SHARED", 1)]); // 4
        b.enumeration("second", &[("SHARED", 2), ("OWN", 3)]); // 5
        b.func("twice", 1, &[("a", 1)]); // 6, 7
        b.func("twice", 1, &[("b", 1), ("c", 1)]); // 8, 9
                                                   // Enough names for the indexes to grow several times.
        for i in 0..1000u32 {
            b.strukt(&format!("s{i}"), 8 * (i + 1), &[("m", 1, 64 * i)]);
        }
        let btf = Btf::parse(&b.build()).unwrap();
        assert_eq!(btf.member_offset("dup", "y"), Some(0));
        // A member only the second struct of the name has.
        assert_eq!(btf.member_offset("dup", "x"), Some(0));
        assert_eq!(btf.enum_value("SHARED"), Some(1));
        assert_eq!(btf.enum_value("OWN"), Some(3));
        let params = btf.func_params("twice").unwrap();
        assert_eq!(params, [("a".to_owned(), "int".to_owned())]);
        for i in [0u32, 1, 499, 999] {
            assert_eq!(btf.member_offset(&format!("s{i}"), "m"), Some(8 * i));
        }
        assert_eq!(btf.member_offset("s1000", "m"), None);
    }

    #[test]
    fn finds_function_parameters() {
        let mut b = Builder::new();
        b.int("int", 4); // 1
        b.int("unsigned int", 4); // 2
        b.strukt("cred", 8, &[]); // 3
        b.ptr(3); // 4
                  // 6.1 to 6.18: int cap_capable(const struct cred *cred, struct user_namespace
                  // *targ_ns, int cap, unsigned int opts)
        b.func(
            "cap_capable",
            1,
            &[("cred", 4), ("targ_ns", 4), ("cap", 1), ("opts", 2)],
        ); // 5, 6
        let btf = Btf::parse(&b.build()).unwrap();
        let params = btf.func_params("cap_capable").unwrap();
        let names: Vec<_> = params
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("cred", ""),
                ("targ_ns", ""),
                ("cap", "int"),
                ("opts", "unsigned int")
            ]
        );
        assert_eq!(btf.func_params("oom_kill_process"), None);
        // A struct of the same name is not a function.
        assert_eq!(btf.func_params("cred"), None);
    }

    /// `cap_capable`'s tracepoint as 6.13 to 6.18 declare it, and one whose `cap` is unsigned.
    pub fn cap_tracepoint_btf(cap_type: &str) -> Vec<u8> {
        let mut b = Builder::new();
        b.int("int", 4); // 1
        b.int(cap_type, 4); // 2
        b.strukt("cred", 8, &[]); // 3
        b.ptr(3); // 4
        b.ptr(0); // 5: void *
        let proto = b.proto(0, &[5, 4, 4, 4, 2, 1]); // 6
        b.ptr(proto); // 7
        b.typedef("btf_trace_cap_capable", 7); // 8
        b.build()
    }

    #[test]
    fn finds_tracepoint_arguments() {
        let btf = Btf::parse(&cap_tracepoint_btf("int")).unwrap();
        assert_eq!(
            btf.tracepoint_args("cap_capable").unwrap(),
            ["", "", "", "int", "int"]
        );
        assert_eq!(btf.tracepoint_args("signal_generate"), None);
        let btf = Btf::parse(&cap_tracepoint_btf("unsigned int")).unwrap();
        assert_eq!(
            btf.tracepoint_args("cap_capable").unwrap(),
            ["", "", "", "unsigned int", "int"]
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(Btf::parse(&[]).err(), Some(BtfError::Truncated(0)));
        assert_eq!(Btf::parse(&[0, 0, 1, 0]).err(), Some(BtfError::BadMagic));
        let good = task_btf();
        for cut in [4, 23, 30, good.len() - 1] {
            assert!(Btf::parse(&good[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        let good = task_btf();
        let mut state = 0x1234_5678u32;
        for i in 0..2000 {
            let mut buf = good.clone();
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let pos = 24 + (state as usize % (buf.len() - 24));
            buf[pos] = (state >> 16) as u8;
            if i % 3 == 0 {
                buf.truncate(pos);
            }
            if let Ok(btf) = Btf::parse(&buf) {
                let _ = btf.member_offset("task_struct", "tgid");
            }
        }
    }

    #[test]
    fn this_kernel_has_the_task_members_we_need() {
        let Ok(raw) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            crate::test_support::skip("no /sys/kernel/btf/vmlinux on this machine");
            return;
        };
        let btf = Btf::parse(&raw).expect("kernel BTF parses");
        for m in ["real_parent", "tgid", "exit_code", "pid"] {
            assert!(
                btf.member_offset("task_struct", m).is_some(),
                "task_struct.{m}"
            );
        }
        // What the OOM victim's memory counters are read through.
        assert!(btf.enum_value("memory_cgrp_id").is_some());
        assert_eq!(btf.member_offset("mem_cgroup", "css"), Some(0));
        for m in ["usage", "failcnt", "watermark", "max", "parent"] {
            assert!(
                btf.member_offset("page_counter", m).is_some(),
                "page_counter.{m}"
            );
        }
    }
}
