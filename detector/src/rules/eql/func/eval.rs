//! Evaluating compiled value expressions over one document: every choice of array
//! elements, Elasticsearch's `null` rules, each function's processor.

use super::*;

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
    pub(super) fn empty() -> Self {
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

    pub(super) fn is_const(&self) -> bool {
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
