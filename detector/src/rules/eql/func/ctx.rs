//! Compiling value expressions: names, arity and argument types checked, constants folded.

use super::*;

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
