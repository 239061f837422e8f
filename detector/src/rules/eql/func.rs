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

/// A compiled value expression.
#[derive(Debug)]
pub enum VExpr {
    Const(Val<'static>),
    /// The field reference with this slot in its [`Script`]'s field list.
    Field(u8),
    Call(Func, bool, Box<[VExpr]>),
    /// `cidrMatch(ip, blocks…)` with its blocks parsed.
    Cidr(Box<VExpr>, Box<[Cidr]>),
    /// `left <op> constant`, null when either side is.
    Cmp(CmpOp, Box<VExpr>, Val<'static>),
    /// `left == null`: whether the value is null (Elasticsearch's `IsNull`).
    IsNull(Box<VExpr>),
    /// `in`, `in~`, `:`, `like`, `like~`, `regex`, `regex~` on a string value.
    StrTest(Box<VExpr>, StrMatcher),
    /// `in` on a number or boolean value.
    InList(Box<VExpr>, Box<[Val<'static>]>),
}

/// The values a [`Script`]'s field references currently stand for.
pub struct Env<'d> {
    vals: [FieldValue<'d>; MAX_FIELDS],
    idx: [usize; MAX_FIELDS],
}

/// How many elements a field's value offers (a missing field or empty array offers one
/// `null`).
fn choices(v: &FieldValue<'_>) -> usize {
    match v {
        FieldValue::Strs(a) => a.len().max(1),
        FieldValue::StaticStrs(a) => a.len().max(1),
        _ => 1,
    }
}

impl<'d> Env<'d> {
    /// No fields: for folding constants.
    fn empty() -> Self {
        Env {
            vals: [FieldValue::Missing; MAX_FIELDS],
            idx: [0; MAX_FIELDS],
        }
    }

    fn get(&self, slot: u8) -> Val<'d> {
        let i = self.idx[slot as usize];
        match self.vals[slot as usize] {
            FieldValue::Missing => Val::Null,
            FieldValue::Str(s) => Val::Str(Cow::Borrowed(s)),
            FieldValue::Strs(a) => a.get(i).map_or(Val::Null, |s| Val::Str(Cow::Borrowed(s))),
            FieldValue::StaticStrs(a) => a.get(i).map_or(Val::Null, |s| Val::Str(Cow::Borrowed(s))),
            FieldValue::Long(n) => Val::Long(n),
            FieldValue::Bool(b) => Val::Bool(b),
        }
    }
}

fn borrow<'a>(v: &'a Val<'static>) -> Val<'a> {
    match v {
        Val::Str(s) => Val::Str(Cow::Borrowed(s)),
        other => other.clone(),
    }
}

impl VExpr {
    /// Evaluates the expression for the elements `env` currently chooses.
    pub fn eval<'a>(&'a self, env: &Env<'a>) -> Val<'a> {
        match self {
            VExpr::Const(v) => borrow(v),
            VExpr::Field(slot) => env.get(*slot),
            VExpr::Call(f, ci, args) => call(*f, *ci, args, env),
            VExpr::Cidr(ip, blocks) => match ip.eval(env) {
                Val::Str(s) => match s.parse::<IpAddr>() {
                    Ok(ip) => Val::Bool(blocks.iter().any(|b| b.contains(ip))),
                    Err(_) => Val::Null,
                },
                _ => Val::Null,
            },
            VExpr::Cmp(op, l, r) => {
                let l = l.eval(env);
                if l == Val::Null || *r == Val::Null {
                    return Val::Null;
                }
                match value::compare(&l, r) {
                    None => Val::Null,
                    Some(o) => Val::Bool(match op {
                        CmpOp::Eq => o.is_eq(),
                        CmpOp::Neq => o.is_ne(),
                        CmpOp::Lt => o.is_lt(),
                        CmpOp::Le => o.is_le(),
                        CmpOp::Gt => o.is_gt(),
                        CmpOp::Ge => o.is_ge(),
                    }),
                }
            }
            VExpr::IsNull(e) => Val::Bool(e.eval(env) == Val::Null),
            VExpr::StrTest(e, m) => match e.eval(env) {
                Val::Str(s) => Val::Bool(m.matches(&s)),
                _ => Val::Null,
            },
            VExpr::InList(e, list) => {
                let v = e.eval(env);
                if v == Val::Null {
                    return Val::Null;
                }
                Val::Bool(
                    list.iter()
                        .any(|x| value::compare(&v, x).is_some_and(|o| o.is_eq())),
                )
            }
        }
    }

    fn is_const(&self) -> bool {
        matches!(self, VExpr::Const(_))
    }

    /// Relative evaluation cost (for [`super::matcher::Node::order_by_cost`]).
    fn cost(&self) -> u32 {
        match self {
            VExpr::Const(_) | VExpr::Field(_) => 0,
            VExpr::Call(_, ci, args) => {
                4 + 4 * *ci as u32 + args.iter().map(VExpr::cost).sum::<u32>()
            }
            VExpr::Cidr(e, b) => 6 + b.len() as u32 + e.cost(),
            VExpr::Cmp(_, e, _) | VExpr::IsNull(e) => 1 + e.cost(),
            VExpr::StrTest(e, _) => 8 + e.cost(),
            VExpr::InList(e, l) => 1 + l.len() as u32 + e.cost(),
        }
    }
}

fn str_arg<'a>(args: &'a [VExpr], i: usize, env: &Env<'a>) -> Option<Cow<'a, str>> {
    match args.get(i)?.eval(env) {
        Val::Str(s) => Some(s),
        _ => None,
    }
}

fn call<'a>(f: Func, ci: bool, args: &'a [VExpr], env: &Env<'a>) -> Val<'a> {
    if let Some(op) = f.arith() {
        return value::arith(op, &args[0].eval(env), &args[1].eval(env));
    }
    match f {
        Func::Between => {
            let Some(s) = str_arg(args, 0, env) else {
                return Val::Null;
            };
            let (Some(l), Some(r)) = (str_arg(args, 1, env), str_arg(args, 2, env)) else {
                return Val::Null;
            };
            let greedy = match args.get(3).map(|g| g.eval(env)) {
                None => false,
                Some(Val::Bool(b)) => b,
                Some(_) => return Val::Null,
            };
            between(s, &l, &r, greedy, ci)
        }
        Func::Concat => {
            if let [one] = args {
                return match one.eval(env) {
                    Val::Str(s) => Val::Str(s),
                    v => v
                        .to_java_string()
                        .map_or(Val::Null, |s| Val::Str(Cow::Owned(s.into_owned()))),
                };
            }
            let mut out = String::new();
            for a in args.iter() {
                match a.eval(env).to_java_string() {
                    Some(s) => out.push_str(&s),
                    None => return Val::Null,
                }
            }
            Val::Str(Cow::Owned(out))
        }
        Func::EndsWith | Func::StartsWith | Func::StringContains => {
            let (Some(s), Some(p)) = (str_arg(args, 0, env), str_arg(args, 1, env)) else {
                return Val::Null;
            };
            Val::Bool(match f {
                Func::StartsWith => prefix_end(&s, &p, ci).is_some(),
                Func::EndsWith => ends_with(&s, &p, ci),
                _ => !s.is_empty() && !p.is_empty() && find(&s, &p, 0, ci).is_some(),
            })
        }
        Func::IndexOf => {
            let (Some(s), Some(sub)) = (str_arg(args, 0, env), str_arg(args, 1, env)) else {
                return Val::Null;
            };
            let from = args.get(2).map_or(Some(0), |a| match a.eval(env) {
                Val::Null => Some(0),
                v => v.int_value(),
            });
            match from {
                Some(from) => index_of(&s, &sub, from, ci),
                None => Val::Null,
            }
        }
        Func::Length => match str_arg(args, 0, env) {
            Some(s) => Val::Int(utf16_len(&s) as i32),
            None => Val::Null,
        },
        Func::Number => {
            let Some(s) = str_arg(args, 0, env) else {
                return Val::Null;
            };
            let radix = match args.get(1).map(|a| a.eval(env)) {
                None | Some(Val::Null) => None,
                Some(Val::Int(r)) => Some(r),
                Some(_) => return Val::Null,
            };
            number(&s, radix)
        }
        Func::String => match args[0].eval(env) {
            Val::Str(s) => Val::Str(s),
            v => v
                .to_java_string()
                .map_or(Val::Null, |s| Val::Str(Cow::Owned(s.into_owned()))),
        },
        Func::Substring => {
            let Some(s) = str_arg(args, 0, env) else {
                return Val::Null;
            };
            let start = match args[1].eval(env) {
                Val::Null => return Val::Str(s),
                v => match v.int_value() {
                    Some(n) => n as i64,
                    None => return Val::Null,
                },
            };
            let end = match args.get(2).map(|a| a.eval(env)) {
                None | Some(Val::Null) => None,
                Some(v) => match v.int_value() {
                    Some(n) => Some(n as i64),
                    None => return Val::Null,
                },
            };
            Val::Str(substring(s, start, end))
        }
        Func::CidrMatch => Val::Null, // compiled to `VExpr::Cidr`
        Func::Add | Func::Divide | Func::Modulo | Func::Multiply | Func::Subtract => {
            unreachable!("arithmetic handled above")
        }
    }
}

/// Compiles value expressions of one [`Script`], collecting its field references.
pub struct Ctx<'s> {
    schema: &'s dyn Schema,
    fields: Vec<FieldId>,
}

fn type_of(t: FieldType) -> Ty {
    match t {
        FieldType::Keyword => Ty::Str,
        FieldType::Long => Ty::Num,
        FieldType::Boolean => Ty::Bool,
        FieldType::Date => Ty::Date,
    }
}

/// A literal as a constant value (integers that fit are Java `int`s, as Elasticsearch's
/// parser makes them).
pub fn lit_val(l: &LitValue) -> Val<'static> {
    match l {
        LitValue::Str(s) => Val::Str(Cow::Owned(s.clone())),
        LitValue::Int(n) => i32::try_from(*n).map_or(Val::Long(*n), Val::Int),
        LitValue::Float(x) => Val::Double(*x),
        LitValue::Bool(b) => Val::Bool(*b),
        LitValue::Null => Val::Null,
    }
}

fn val_ty(v: &Val<'_>) -> Ty {
    match v {
        Val::Null => Ty::Null,
        Val::Str(_) => Ty::Str,
        Val::Int(_) | Val::Long(_) | Val::Double(_) => Ty::Num,
        Val::Bool(_) => Ty::Bool,
    }
}

/// A folded constant back as a literal (for the plain field tests).
pub fn val_lit(v: Val<'static>, span: Span) -> Lit {
    let value = match v {
        Val::Null => LitValue::Null,
        Val::Str(s) => LitValue::Str(s.into_owned()),
        Val::Int(n) => LitValue::Int(n as i64),
        Val::Long(n) => LitValue::Int(n),
        Val::Double(x) => LitValue::Float(x),
        Val::Bool(b) => LitValue::Bool(b),
    };
    Lit {
        value,
        span,
        content_start: None,
    }
}

impl<'s> Ctx<'s> {
    /// A context resolving fields against `schema`, with no field references yet.
    pub fn new(schema: &'s dyn Schema) -> Self {
        Ctx {
            schema,
            fields: Vec::new(),
        }
    }

    /// Compiles one value expression and its static type.
    pub fn value(&mut self, v: &ast::Value) -> Result<(VExpr, Ty), QueryError> {
        match v {
            ast::Value::Lit(l) => {
                let c = lit_val(&l.value);
                let t = val_ty(&c);
                Ok((VExpr::Const(c), t))
            }
            ast::Value::Field(f) => match self.schema.resolve(&f.path) {
                None if f.optional => Ok((VExpr::Const(Val::Null), Ty::Null)),
                None => Err(QueryError::new(
                    f.span,
                    format!(
                        "unknown field `{}` (not in the ECS schema); write `?{}` if it may be absent",
                        f.path, f.path
                    ),
                )),
                Some(def) => {
                    if self.fields.len() >= MAX_FIELDS {
                        return Err(QueryError::new(
                            f.span,
                            format!(
                                "too many field references in one function condition (at most {MAX_FIELDS})"
                            ),
                        ));
                    }
                    self.fields.push(def.id);
                    Ok((VExpr::Field((self.fields.len() - 1) as u8), type_of(def.ty)))
                }
            },
            ast::Value::Call(c) => self.call(c),
        }
    }

    /// Compiles a call: name, `~`, arity and argument types checked; folded when every
    /// argument is constant.
    pub fn call(&mut self, c: &ast::Call) -> Result<(VExpr, Ty), QueryError> {
        let Some(f) = Func::lookup(&c.name) else {
            let known: Vec<_> = ALL.iter().map(|f| f.name()).collect();
            return Err(QueryError::new(
                c.name_span,
                format!(
                    "unknown function `{}` (EQL functions: {})",
                    c.name,
                    known.join(", ")
                ),
            ));
        };
        let name = f.name();
        if c.ci && !f.case_aware() {
            return Err(QueryError::new(
                c.name_span,
                format!("function `{name}` has no case-insensitive form `{name}~`"),
            ));
        }
        let (min, max) = f.arity();
        let n = c.args.len();
        if n < min || max.is_some_and(|m| n > m) {
            let want = match max {
                Some(m) if m == min => format!("{min}"),
                Some(m) => format!("{min} to {m}"),
                None => format!("at least {min}"),
            };
            return Err(QueryError::new(
                c.span,
                format!(
                    "function `{name}` takes {want} argument{}, found {n}",
                    if want == "1" { "" } else { "s" }
                ),
            ));
        }
        let mut args = Vec::with_capacity(n);
        let mut has_null = false;
        for (i, a) in c.args.iter().enumerate() {
            let p = f.param(i);
            let (e, t) = self.value(a)?;
            let bad = |what: &str| {
                QueryError::new(
                    a.span(),
                    format!(
                        "argument {} of `{name}` must be {what}, found {}",
                        i + 1,
                        t.describe()
                    ),
                )
            };
            let ok = match p {
                Param::Str | Param::Ip => matches!(t, Ty::Str | Ty::Null),
                Param::Num => matches!(t, Ty::Num | Ty::Null),
                Param::Int => {
                    matches!(t, Ty::Num | Ty::Null) && !matches!(e, VExpr::Const(Val::Double(_)))
                }
                Param::Bool => matches!(t, Ty::Bool | Ty::Null),
                Param::Any => true,
                Param::CidrLit => {
                    if !e.is_const() {
                        return Err(QueryError::new(
                            a.span(),
                            format!("argument {} of `cidrMatch` must be a literal", i + 1),
                        ));
                    }
                    matches!(t, Ty::Str | Ty::Null)
                }
                Param::Radix => {
                    if !matches!(e, VExpr::Const(Val::Int(_) | Val::Null)) {
                        return Err(QueryError::new(
                            a.span(),
                            "the base of `number` must be an integer literal or null",
                        ));
                    }
                    true
                }
            };
            if !ok {
                return Err(bad(match p {
                    Param::Str => "a string",
                    Param::Ip => "an IP address (a keyword field or a string)",
                    Param::Num => "a number",
                    Param::Int => "an integer",
                    Param::Bool => "a boolean",
                    Param::CidrLit => "a CIDR block string",
                    Param::Any | Param::Radix => "a value",
                }));
            }
            // `FoldNull`: a null literal argument makes the call null (not `number`'s base).
            if t == Ty::Null && p != Param::Radix {
                has_null = true;
            }
            args.push(e);
        }
        if has_null {
            return Ok((VExpr::Const(Val::Null), f.ret()));
        }
        let e = if f == Func::CidrMatch {
            let mut blocks = Vec::with_capacity(n - 1);
            for (a, e) in c.args[1..].iter().zip(&args[1..]) {
                let VExpr::Const(Val::Str(s)) = e else {
                    unreachable!("checked constant strings")
                };
                blocks.push(Cidr::parse(s).ok_or_else(|| {
                    QueryError::new(
                        a.span(),
                        format!("`{s}` is not an IP address or CIDR block"),
                    )
                })?);
            }
            let ip = args.swap_remove(0);
            VExpr::Cidr(Box::new(ip), blocks.into_boxed_slice())
        } else {
            VExpr::Call(f, c.ci, args.into_boxed_slice())
        };
        Ok((fold_const(e), f.ret()))
    }

    /// The field references made so far (slot order).
    pub fn into_fields(self) -> Box<[FieldId]> {
        self.fields.into_boxed_slice()
    }
}

/// Evaluates an expression whose inputs are all constants.
pub fn fold_const(e: VExpr) -> VExpr {
    let constant = match &e {
        VExpr::Call(_, _, args) => args.iter().all(VExpr::is_const),
        VExpr::Cidr(ip, _) => ip.is_const(),
        VExpr::Cmp(_, l, _) | VExpr::IsNull(l) | VExpr::StrTest(l, _) | VExpr::InList(l, _) => {
            l.is_const()
        }
        VExpr::Const(_) | VExpr::Field(_) => false,
    };
    if !constant {
        return e;
    }
    let v = e.eval(&Env::empty()).into_owned();
    VExpr::Const(v)
}

/// A condition on functions of fields, evaluated as Elasticsearch's multi-value aware
/// script query: true when some choice of one element per field reference makes `expr`
/// true (a missing field or empty array is `null`).
#[derive(Debug)]
pub struct Script {
    expr: VExpr,
    fields: Box<[FieldId]>,
}

impl Script {
    /// `expr` must be boolean-valued; `fields` are the slots' field ids.
    pub fn new(expr: VExpr, fields: Box<[FieldId]>) -> Self {
        debug_assert!(fields.len() <= MAX_FIELDS);
        Script { expr, fields }
    }

    /// The fields the condition reads.
    pub fn fields(&self) -> &[FieldId] {
        &self.fields
    }

    /// Whether the condition holds for `doc`. Allocates only for functions that build new
    /// strings (`concat`, `string` of a number, case-insensitive `between`).
    pub fn eval(&self, doc: &dyn Document) -> bool {
        let mut env = Env::empty();
        for (i, id) in self.fields.iter().enumerate() {
            env.vals[i] = doc.field(*id);
        }
        self.exists(&mut env)
    }

    /// [`Script::eval`] over a partial view: `None` when a field it reads is unknown.
    pub fn eval3(&self, probe: &dyn crate::rules::Probe) -> Option<bool> {
        let mut env = Env::empty();
        for (i, id) in self.fields.iter().enumerate() {
            env.vals[i] = probe.field(*id)?;
        }
        Some(self.exists(&mut env))
    }

    fn exists(&self, env: &mut Env<'_>) -> bool {
        let k = self.fields.len();
        loop {
            if self.expr.eval(env) == Val::Bool(true) {
                return true;
            }
            // Next choice of elements (an odometer over the slots).
            let mut i = 0;
            loop {
                if i == k {
                    return false;
                }
                env.idx[i] += 1;
                if env.idx[i] < choices(&env.vals[i]) {
                    break;
                }
                env.idx[i] = 0;
                i += 1;
            }
        }
    }

    /// Relative evaluation cost.
    pub fn cost(&self) -> u32 {
        4 + self.expr.cost()
    }
}

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
