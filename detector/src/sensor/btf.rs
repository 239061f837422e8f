//! A small reader for the kernel's BTF (`/sys/kernel/btf/vmlinux`): just enough to find
//! struct member offsets (descending into anonymous members), struct sizes, enum values and
//! function-prototype arity.
//!
//! aya-obj parses BTF too, but the accessors we need (`type_by_id`, `string_at`) are private
//! in the pinned version; this reader is ~250 lines and has no dependency.

use std::collections::HashMap;

/// Why BTF could not be read or a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("BTF data is malformed: {0}")]
    Malformed(&'static str),
    #[error("kernel BTF has no {kind} named `{name}`")]
    NoType { kind: &'static str, name: String },
    #[error("kernel BTF: `{ty}` has no member `{member}` (this kernel lacks the field)")]
    NoMember { ty: String, member: String },
    #[error("kernel BTF: `{ty}.{member}` is a bitfield, not a byte-addressable field")]
    Bitfield { ty: String, member: String },
}

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// One BTF type: the common header plus the offset of its trailing data in `types`.
#[derive(Clone, Copy, Debug)]
struct Type {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    size_or_type: u32,
    /// Byte offset of the kind-specific data following the 12-byte header.
    extra: usize,
}

/// A struct or union member.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    name_off: u32,
    type_id: u32,
    /// Offset in bits from the start of the enclosing type.
    bit_offset: u32,
    /// Non-zero for bitfields (when the enclosing type has `kind_flag`).
    bitfield_size: u32,
}

/// Parsed BTF: types by id and the string table.
pub struct Btf {
    data: Vec<u8>,
    str_start: usize,
    str_len: usize,
    /// Index 0 is the implicit `void`.
    types: Vec<Type>,
    by_name: HashMap<(u32, String), u32>,
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, BtfError> {
    let b = data
        .get(at..at + 4)
        .ok_or(BtfError::Malformed("read past end"))?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl Btf {
    /// Parses raw little-endian BTF (as in `/sys/kernel/btf/vmlinux`).
    pub fn parse(data: Vec<u8>) -> Result<Self, BtfError> {
        if data.len() < 24 {
            return Err(BtfError::Malformed("shorter than the header"));
        }
        if u16::from_le_bytes([data[0], data[1]]) != 0xeb9f {
            return Err(BtfError::Malformed("bad magic (not little-endian BTF)"));
        }
        let hdr_len = u32_at(&data, 4)? as usize;
        let type_off = u32_at(&data, 8)? as usize;
        let type_len = u32_at(&data, 12)? as usize;
        let str_off = u32_at(&data, 16)? as usize;
        let str_len = u32_at(&data, 20)? as usize;
        let type_start = hdr_len
            .checked_add(type_off)
            .ok_or(BtfError::Malformed("type offset"))?;
        let type_end = type_start
            .checked_add(type_len)
            .ok_or(BtfError::Malformed("type length"))?;
        let str_start = hdr_len
            .checked_add(str_off)
            .ok_or(BtfError::Malformed("string offset"))?;
        if type_end > data.len() || str_start.saturating_add(str_len) > data.len() {
            return Err(BtfError::Malformed("section beyond end of data"));
        }
        let mut types = vec![Type {
            name_off: 0,
            kind: 0,
            vlen: 0,
            kind_flag: false,
            size_or_type: 0,
            extra: 0,
        }];
        let mut at = type_start;
        while at < type_end {
            let name_off = u32_at(&data, at)?;
            let info = u32_at(&data, at + 4)?;
            let size_or_type = u32_at(&data, at + 8)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = info & 0xffff;
            let extra_len = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen as usize,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen as usize,
                _ => return Err(BtfError::Malformed("unknown type kind")),
            };
            types.push(Type {
                name_off,
                kind,
                vlen,
                kind_flag: info >> 31 == 1,
                size_or_type,
                extra: at + 12,
            });
            at += 12 + extra_len;
        }
        if at != type_end {
            return Err(BtfError::Malformed("type section length"));
        }
        let mut btf = Btf {
            data,
            str_start,
            str_len,
            types,
            by_name: HashMap::new(),
        };
        let mut by_name = HashMap::new();
        for (id, t) in btf.types.iter().enumerate().skip(1) {
            if t.name_off != 0 {
                let name = btf.str_at(t.name_off)?.to_owned();
                by_name.entry((t.kind, name)).or_insert(id as u32);
            }
        }
        btf.by_name = by_name;
        Ok(btf)
    }

    fn str_at(&self, off: u32) -> Result<&str, BtfError> {
        let off = off as usize;
        if off >= self.str_len {
            return Err(BtfError::Malformed("string offset out of range"));
        }
        let s = &self.data[self.str_start + off..self.str_start + self.str_len];
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).map_err(|_| BtfError::Malformed("non-UTF-8 name"))
    }

    fn ty(&self, id: u32) -> Result<&Type, BtfError> {
        self.types
            .get(id as usize)
            .ok_or(BtfError::Malformed("type id out of range"))
    }

    /// Follows typedefs and qualifiers to the underlying type.
    fn resolve(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..32 {
            let t = self.ty(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_or_type
                }
                _ => return Ok(id),
            }
        }
        Err(BtfError::Malformed("qualifier chain too long"))
    }

    fn members(&self, id: u32) -> Result<Vec<Member>, BtfError> {
        let t = self.ty(id)?;
        if t.kind != KIND_STRUCT && t.kind != KIND_UNION {
            return Ok(Vec::new());
        }
        (0..t.vlen as usize)
            .map(|i| {
                let at = t.extra + 12 * i;
                let raw = u32_at(&self.data, at + 8)?;
                let (bit_offset, bitfield_size) = if t.kind_flag {
                    (raw & 0xff_ffff, raw >> 24)
                } else {
                    (raw, 0)
                };
                Ok(Member {
                    name_off: u32_at(&self.data, at)?,
                    type_id: u32_at(&self.data, at + 4)?,
                    bit_offset,
                    bitfield_size,
                })
            })
            .collect()
    }

    /// Id of the struct named `name`.
    pub fn struct_id(&self, name: &str) -> Result<u32, BtfError> {
        self.by_name
            .get(&(KIND_STRUCT, name.to_owned()))
            .copied()
            .ok_or_else(|| BtfError::NoType {
                kind: "struct",
                name: name.to_owned(),
            })
    }

    /// Size in bytes of the struct named `name`.
    pub fn struct_size(&self, name: &str) -> Result<u32, BtfError> {
        Ok(self.ty(self.struct_id(name)?)?.size_or_type)
    }

    /// Finds `member` in type `id`, searching anonymous struct/union members too.
    /// Returns (bit offset, member).
    fn find_member(&self, id: u32, member: &str) -> Result<Option<(u32, Member)>, BtfError> {
        for m in self.members(self.resolve(id)?)? {
            if m.name_off == 0 {
                if let Some((off, found)) = self.find_member(m.type_id, member)? {
                    return Ok(Some((m.bit_offset + off, found)));
                }
            } else if self.str_at(m.name_off)? == member {
                return Ok(Some((m.bit_offset, m)));
            }
        }
        Ok(None)
    }

    /// Byte offset of a dotted member path in struct `ty`, e.g. `("file", "f_path.mnt")`.
    /// Each step may be inside anonymous members; each step but the last must be an
    /// embedded struct or union (not a pointer).
    pub fn offset_of(&self, ty: &str, path: &str) -> Result<u32, BtfError> {
        let mut id = self.struct_id(ty)?;
        let mut bits = 0u32;
        let mut ty_name = ty.to_owned();
        for step in path.split('.') {
            let (off, m) = self
                .find_member(id, step)?
                .ok_or_else(|| BtfError::NoMember {
                    ty: ty_name.clone(),
                    member: step.to_owned(),
                })?;
            if m.bitfield_size != 0 || off % 8 != 0 {
                return Err(BtfError::Bitfield {
                    ty: ty_name,
                    member: step.to_owned(),
                });
            }
            bits += off;
            id = self.resolve(m.type_id)?;
            ty_name = format!("{ty_name}.{step}");
        }
        Ok(bits / 8)
    }

    /// Like [`Btf::offset_of`], trying each alternative member path in turn (fields that
    /// kernels renamed, e.g. `kernfs_node.parent` → `__parent`).
    pub fn offset_of_any(&self, ty: &str, paths: &[&str]) -> Result<u32, BtfError> {
        let mut last = None;
        for p in paths {
            match self.offset_of(ty, p) {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(BtfError::Malformed("no alternatives given")))
    }

    /// Value of the enumerator `name` in enum `enum_name`.
    pub fn enum_value(&self, enum_name: &str, name: &str) -> Result<i64, BtfError> {
        let id = self
            .by_name
            .get(&(KIND_ENUM, enum_name.to_owned()))
            .copied()
            .ok_or_else(|| BtfError::NoType {
                kind: "enum",
                name: enum_name.to_owned(),
            })?;
        let t = *self.ty(id)?;
        for i in 0..t.vlen as usize {
            let at = t.extra + 8 * i;
            if self.str_at(u32_at(&self.data, at)?)? == name {
                return Ok(i64::from(u32_at(&self.data, at + 4)? as i32));
            }
        }
        Err(BtfError::NoMember {
            ty: format!("enum {enum_name}"),
            member: name.to_owned(),
        })
    }

    /// Number of parameters of the function-pointer typedef `name` (e.g. the
    /// `btf_trace_<tracepoint>` typedefs, whose first parameter is the `void *` context).
    pub fn typedef_fn_params(&self, name: &str) -> Result<u32, BtfError> {
        let id = self
            .by_name
            .get(&(KIND_TYPEDEF, name.to_owned()))
            .copied()
            .ok_or_else(|| BtfError::NoType {
                kind: "typedef",
                name: name.to_owned(),
            })?;
        let mut t = *self.ty(self.resolve(id)?)?;
        if t.kind == KIND_PTR {
            t = *self.ty(self.resolve(t.size_or_type)?)?;
        }
        if t.kind != KIND_FUNC_PROTO {
            return Err(BtfError::Malformed("typedef is not a function pointer"));
        }
        Ok(t.vlen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tiny BTF blob: `struct inner { int a; int b; }`,
    /// `struct outer { int x; union { struct inner in; long y; }; struct inner *p; }`.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0a\0b\0inner\0outer\0x\0in\0y\0p\0long\0".to_vec();
        let s = |name: &str| -> u32 {
            let pat = format!("\0{name}\0");
            strings
                .windows(pat.len())
                .position(|w| w == pat.as_bytes())
                .unwrap() as u32
                + 1
        };
        let mut types = Vec::new();
        let mut push = |v: u32| types.extend_from_slice(&v.to_le_bytes());
        // 1: int
        push(s("int"));
        push(KIND_INT << 24);
        push(4);
        push(32);
        // 2: struct inner
        push(s("inner"));
        push(KIND_STRUCT << 24 | 2);
        push(8);
        push(s("a"));
        push(1);
        push(0);
        push(s("b"));
        push(1);
        push(32);
        // 3: long
        push(s("long"));
        push(KIND_INT << 24);
        push(8);
        push(64);
        // 4: anonymous union { struct inner in; long y; }
        push(0);
        push(KIND_UNION << 24 | 2);
        push(8);
        push(s("in"));
        push(2);
        push(0);
        push(s("y"));
        push(3);
        push(0);
        // 5: ptr to inner
        push(0);
        push(KIND_PTR << 24);
        push(2);
        // 6: struct outer
        push(s("outer"));
        push(KIND_STRUCT << 24 | 3);
        push(24);
        push(s("x"));
        push(1);
        push(0);
        push(0);
        push(4);
        push(64);
        push(s("p"));
        push(5);
        push(128);
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.push(1);
        out.push(0);
        out.extend_from_slice(&24u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(types.len() as u32).to_le_bytes());
        out.extend_from_slice(&(types.len() as u32).to_le_bytes());
        out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        out.extend_from_slice(&types);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn offsets_descend_into_anonymous_members() {
        let btf = Btf::parse(sample()).unwrap();
        assert_eq!(btf.offset_of("outer", "x").unwrap(), 0);
        assert_eq!(btf.offset_of("outer", "in").unwrap(), 8);
        assert_eq!(btf.offset_of("outer", "in.b").unwrap(), 12);
        assert_eq!(btf.offset_of("outer", "y").unwrap(), 8);
        assert_eq!(btf.offset_of("outer", "p").unwrap(), 16);
        assert_eq!(btf.struct_size("outer").unwrap(), 24);
        assert!(matches!(
            btf.offset_of("outer", "nope"),
            Err(BtfError::NoMember { .. })
        ));
        assert!(matches!(
            btf.offset_of("missing", "x"),
            Err(BtfError::NoType { .. })
        ));
        assert_eq!(btf.offset_of_any("outer", &["zz", "p"]).unwrap(), 16);
    }

    #[test]
    fn malformed_blobs_are_errors_not_panics() {
        let good = sample();
        for cut in 0..good.len() {
            let _ = Btf::parse(good[..cut].to_vec());
        }
        assert!(Btf::parse(vec![0; 100]).is_err());
        let mut bad = good.clone();
        bad[24 + 4 + 3] = 0x1f; // first type: unknown kind
        assert!(Btf::parse(bad).is_err());
    }
}
