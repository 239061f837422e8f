//! EQL functions, as Elasticsearch has them: the registry (names, arity, argument types,
//! which accept `~`), compile-time checks, and evaluation over one document.
//!
//! Semantics follow Elasticsearch's EQL (x-pack/plugin/eql, `expression/function/scalar`),
//! read from its `*FunctionProcessor` classes, `EqlFunctionRegistry`, `QueryTranslator` and
//! the function reference:
//!
//! - A `null` argument gives `null` (the optimizer's `FoldNull` folds a call with a literal
//!   `null` argument to `null`), except `number`'s base, where `null` means the default.
//!   A missing field is `null`, as is a `?field` the schema does not know.
//! - Where Elasticsearch throws at run time (a non-IP value for `cidrMatch`, an unparsable
//!   `number`, integer overflow or division by zero, `between` with a greedy right bound
//!   before the left one), the value here is `null`: the event cannot match, where
//!   Elasticsearch would fail the whole search.
//! - Strings are measured and indexed in UTF-16 code units, as Java does.
//! - Case-insensitive variants (`startsWith~`, `endsWith~`, `stringContains~`, `indexOf~`,
//!   `between~`, the functions extending `CaseInsensitiveScalarFunction`) fold each character
//!   to its simple lowercase, like the rest of this engine (Java's `toLowerCase(ROOT)` differs
//!   only for the few characters whose lowercase is longer than one character).
//!
//! A condition built on functions is evaluated the way Elasticsearch's
//! `MultiValueAwareScriptQuery` does (`QueryTranslator.toQuery`, `Scripts.multiValueDocValuesRewrite`,
//! `InternalEqlScriptUtils.multiValueDocValues`): each field reference ranges over every
//! element of the field's value (a missing field or empty array is one `null`), and the
//! condition is true when some choice of elements makes it `true`. `not` and `!=` negate that
//! whole test, so they are true when no choice does (and when the field is missing), as for
//! plain field tests. See [`Script`].

use std::borrow::Cow;
use std::net::IpAddr;

use super::QueryError;
use super::ast::{self, CmpOp, Lit, LitValue};
use super::lexer::Span;
use super::matcher::StrMatcher;
use super::strfn::{Cidr, between, ends_with, find, index_of, number, prefix_end, substring};
use super::value::{self, Arith, Val, utf16_len};
use crate::ecs::field::{Document, FieldId, FieldType, FieldValue, Schema};

/// Most field references one function condition may make: each multiplies the choices of
/// elements to try, and the evaluator keeps them on the stack.
pub const MAX_FIELDS: usize = 8;

/// The static type of a value expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    Num,
    Bool,
    /// A `date` field: a string in documents, but not one for string functions (as in
    /// Elasticsearch, where `length(@timestamp)` is a type error); `string()` converts it.
    Date,
    /// The `null` literal (or an unknown `?field`): fits any parameter.
    Null,
}

impl Ty {
    /// How the type reads in an error message.
    pub fn describe(self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Num => "a number",
            Ty::Bool => "a boolean",
            Ty::Date => "a date",
            Ty::Null => "null",
        }
    }
}

/// Every function Elasticsearch's EQL has (`EqlFunctionRegistry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Add,
    Between,
    CidrMatch,
    Concat,
    Divide,
    EndsWith,
    IndexOf,
    Length,
    Modulo,
    Multiply,
    Number,
    StartsWith,
    String,
    StringContains,
    Substring,
    Subtract,
}

/// What a parameter accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Param {
    Str,
    Num,
    /// A number that is not a floating-point literal (positions).
    Int,
    Bool,
    /// Any type (`string`, `concat`).
    Any,
    /// An IP address: a string-valued field (this schema types `ip` fields as keywords) or
    /// literal.
    Ip,
    /// A CIDR block or an address, as a string literal (Elasticsearch requires them
    /// foldable).
    CidrLit,
    /// `number`'s radix: an integer literal or `null`.
    Radix,
}

const ALL: &[Func] = &[
    Func::Add,
    Func::Between,
    Func::CidrMatch,
    Func::Concat,
    Func::Divide,
    Func::EndsWith,
    Func::IndexOf,
    Func::Length,
    Func::Modulo,
    Func::Multiply,
    Func::Number,
    Func::StartsWith,
    Func::String,
    Func::StringContains,
    Func::Substring,
    Func::Subtract,
];

impl Func {
    /// The function of this name; names are case-insensitive (`startswith`, `startsWith`).
    pub fn lookup(name: &str) -> Option<Func> {
        ALL.iter()
            .copied()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The name as the reference documents it.
    pub fn name(self) -> &'static str {
        match self {
            Func::Add => "add",
            Func::Between => "between",
            Func::CidrMatch => "cidrMatch",
            Func::Concat => "concat",
            Func::Divide => "divide",
            Func::EndsWith => "endsWith",
            Func::IndexOf => "indexOf",
            Func::Length => "length",
            Func::Modulo => "modulo",
            Func::Multiply => "multiply",
            Func::Number => "number",
            Func::StartsWith => "startsWith",
            Func::String => "string",
            Func::StringContains => "stringContains",
            Func::Substring => "substring",
            Func::Subtract => "subtract",
        }
    }

    /// Least and most arguments (`None`: any number).
    fn arity(self) -> (usize, Option<usize>) {
        match self {
            Func::Add
            | Func::Divide
            | Func::Modulo
            | Func::Multiply
            | Func::Subtract
            | Func::EndsWith
            | Func::StartsWith
            | Func::StringContains => (2, Some(2)),
            Func::Between => (3, Some(4)),
            Func::CidrMatch => (2, None),
            Func::Concat => (1, None),
            Func::IndexOf | Func::Substring => (2, Some(3)),
            Func::Length | Func::String => (1, Some(1)),
            Func::Number => (1, Some(2)),
        }
    }

    /// Whether `name~(…)` is allowed (the functions extending
    /// `CaseInsensitiveScalarFunction`; `EqlFunctionResolution.CASE_INSENSITIVE` refuses
    /// the rest).
    fn case_aware(self) -> bool {
        matches!(
            self,
            Func::Between
                | Func::EndsWith
                | Func::IndexOf
                | Func::StartsWith
                | Func::StringContains
        )
    }

    fn param(self, i: usize) -> Param {
        match (self, i) {
            (Func::Add | Func::Divide | Func::Modulo | Func::Multiply | Func::Subtract, _) => {
                Param::Num
            }
            (Func::Between, 3) => Param::Bool,
            (Func::Between, _) => Param::Str,
            (Func::CidrMatch, 0) => Param::Ip,
            (Func::CidrMatch, _) => Param::CidrLit,
            (Func::Concat | Func::String, _) => Param::Any,
            (Func::EndsWith | Func::StartsWith | Func::StringContains | Func::Length, _) => {
                Param::Str
            }
            (Func::IndexOf, 2) | (Func::Substring, 1 | 2) => Param::Int,
            (Func::IndexOf | Func::Substring, _) => Param::Str,
            (Func::Number, 0) => Param::Str,
            (Func::Number, _) => Param::Radix,
        }
    }

    /// The result type.
    fn ret(self) -> Ty {
        match self {
            Func::Add
            | Func::Divide
            | Func::Modulo
            | Func::Multiply
            | Func::Subtract
            | Func::IndexOf
            | Func::Length
            | Func::Number => Ty::Num,
            Func::Between | Func::Concat | Func::String | Func::Substring => Ty::Str,
            Func::CidrMatch | Func::EndsWith | Func::StartsWith | Func::StringContains => Ty::Bool,
        }
    }

    fn arith(self) -> Option<Arith> {
        Some(match self {
            Func::Add => Arith::Add,
            Func::Subtract => Arith::Sub,
            Func::Multiply => Arith::Mul,
            Func::Divide => Arith::Div,
            Func::Modulo => Arith::Mod,
            _ => return None,
        })
    }
}

mod ctx;
mod eval;

pub use ctx::{Ctx, fold_const, lit_val, val_lit};
pub use eval::{Env, Script, VExpr};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_elasticsearch_function_is_registered() {
        for name in [
            "add",
            "between",
            "cidrMatch",
            "concat",
            "divide",
            "endsWith",
            "indexOf",
            "length",
            "modulo",
            "multiply",
            "number",
            "startsWith",
            "string",
            "stringContains",
            "substring",
            "subtract",
        ] {
            let f = Func::lookup(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(f.name(), name);
            assert_eq!(Func::lookup(&name.to_ascii_lowercase()), Some(f));
            assert_eq!(Func::lookup(&name.to_ascii_uppercase()), Some(f));
        }
        assert_eq!(
            Func::lookup("wildcard"),
            None,
            "removed from Elasticsearch in 7.x"
        );
        assert_eq!(Func::lookup("match"), None);
    }
}
