//! A user's shape: an expression of `x` and named parameters (`a * exp(-x / b) + c`), parsed
//! into a tree and checked (known functions, bounded size and depth), never evaluated as code.
//!
//! Written by hand rather than with the query language's SQL parser: the grammar is arithmetic
//! only (`^` for powers, no columns or tables), and a fit evaluates it millions of times, so it
//! compiles to a small tree over a slice of parameter values.

use crate::error::Error;

/// The longest expression accepted, in bytes.
pub const MAX_LEN: usize = 1000;
/// The deepest nesting accepted.
pub const MAX_DEPTH: usize = 32;
/// The most parameters an expression may name.
pub const MAX_PARAMS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Exp,
    Log,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Atan,
    Abs,
    Tanh,
    Erf,
}

impl Func {
    const ALL: [(&'static str, Func); 10] = [
        ("exp", Func::Exp),
        ("log", Func::Log),
        ("sqrt", Func::Sqrt),
        ("sin", Func::Sin),
        ("cos", Func::Cos),
        ("tan", Func::Tan),
        ("atan", Func::Atan),
        ("abs", Func::Abs),
        ("tanh", Func::Tanh),
        ("erf", Func::Erf),
    ];

    fn apply(self, v: f64) -> f64 {
        match self {
            Func::Exp => v.exp(),
            Func::Log => v.ln(),
            Func::Sqrt => v.sqrt(),
            Func::Sin => v.sin(),
            Func::Cos => v.cos(),
            Func::Tan => v.tan(),
            Func::Atan => v.atan(),
            Func::Abs => v.abs(),
            Func::Tanh => v.tanh(),
            Func::Erf => statrs::function::erf::erf(v),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Num(f64),
    X,
    /// Index into the expression's parameters.
    Param(usize),
    Neg(Box<Node>),
    Bin(Op, Box<Node>, Box<Node>),
    Call(Func, Box<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

/// A checked expression of `x` and its parameters, in order of first appearance.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    root: Node,
    params: Vec<String>,
    text: String,
}

impl Expr {
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_LEN {
            return Err(Error::Model(format!(
                "the expression is longer than {MAX_LEN} bytes"
            )));
        }
        let mut p = Parser {
            src: text.as_bytes(),
            pos: 0,
            params: Vec::new(),
            depth: 0,
        };
        let root = p.sum()?;
        p.skip_ws();
        if p.pos < p.src.len() {
            return Err(p.error("expected an operator or the end"));
        }
        if !mentions_x(&root) {
            return Err(Error::Model(format!("`{text}` does not depend on x")));
        }
        Ok(Self {
            root,
            params: p.params,
            text: text.trim().to_owned(),
        })
    }

    /// The parameters' names, in the order `eval` takes their values.
    pub fn params(&self) -> &[String] {
        &self.params
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn eval(&self, x: f64, params: &[f64]) -> f64 {
        eval(&self.root, x, params)
    }
}

fn mentions_x(n: &Node) -> bool {
    match n {
        Node::X => true,
        Node::Num(_) | Node::Param(_) => false,
        Node::Neg(a) | Node::Call(_, a) => mentions_x(a),
        Node::Bin(_, a, b) => mentions_x(a) || mentions_x(b),
    }
}

fn eval(n: &Node, x: f64, p: &[f64]) -> f64 {
    match n {
        Node::Num(v) => *v,
        Node::X => x,
        Node::Param(i) => p.get(*i).copied().unwrap_or(f64::NAN),
        Node::Neg(a) => -eval(a, x, p),
        Node::Call(f, a) => f.apply(eval(a, x, p)),
        Node::Bin(op, a, b) => {
            let (a, b) = (eval(a, x, p), eval(b, x, p));
            match op {
                Op::Add => a + b,
                Op::Sub => a - b,
                Op::Mul => a * b,
                Op::Div => a / b,
                Op::Pow => a.powf(b),
            }
        }
    }
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    params: Vec<String>,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> Error {
        Error::Model(format!("expression, at byte {}: {what}", self.pos + 1))
    }

    fn skip_ws(&mut self) {
        while self.src.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.src.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_DEPTH}")));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn sum(&mut self) -> Result<Node, Error> {
        self.nested(|p| {
            let mut left = p.product()?;
            loop {
                let op = if p.eat(b'+') {
                    Op::Add
                } else if p.eat(b'-') {
                    Op::Sub
                } else {
                    return Ok(left);
                };
                left = Node::Bin(op, Box::new(left), Box::new(p.product()?));
            }
        })
    }

    fn product(&mut self) -> Result<Node, Error> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat(b'*') {
                Op::Mul
            } else if self.eat(b'/') {
                Op::Div
            } else {
                return Ok(left);
            };
            left = Node::Bin(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Node, Error> {
        self.nested(|p| {
            if p.eat(b'-') {
                Ok(Node::Neg(Box::new(p.unary()?)))
            } else if p.eat(b'+') {
                p.unary()
            } else {
                p.power()
            }
        })
    }

    /// `a ^ b`, right-associative; `-x^2` is `-(x^2)`.
    fn power(&mut self) -> Result<Node, Error> {
        let base = self.atom()?;
        if self.eat(b'^') {
            let exponent = self.unary()?;
            return Ok(Node::Bin(Op::Pow, Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Node, Error> {
        self.skip_ws();
        let start = self.pos;
        match self.src.get(self.pos) {
            None => Err(self.error("unexpected end")),
            Some(b'(') => {
                self.pos += 1;
                let inner = self.sum()?;
                if !self.eat(b')') {
                    return Err(self.error("expected `)`"));
                }
                Ok(inner)
            }
            Some(c) if c.is_ascii_digit() || *c == b'.' => {
                while self
                    .src
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
                {
                    self.pos += 1;
                }
                if self
                    .src
                    .get(self.pos)
                    .is_some_and(|c| *c == b'e' || *c == b'E')
                {
                    let mark = self.pos;
                    self.pos += 1;
                    if self
                        .src
                        .get(self.pos)
                        .is_some_and(|c| *c == b'+' || *c == b'-')
                    {
                        self.pos += 1;
                    }
                    if self.src.get(self.pos).is_some_and(u8::is_ascii_digit) {
                        while self.src.get(self.pos).is_some_and(u8::is_ascii_digit) {
                            self.pos += 1;
                        }
                    } else {
                        self.pos = mark;
                    }
                }
                let text = std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("");
                text.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(Node::Num)
                    .ok_or_else(|| self.error(&format!("`{text}` is not a number")))
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                while self
                    .src
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    self.pos += 1;
                }
                let name = std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("");
                if self.eat(b'(') {
                    let Some(&(_, func)) = Func::ALL.iter().find(|(n, _)| *n == name) else {
                        let known: Vec<_> = Func::ALL.iter().map(|(n, _)| *n).collect();
                        return Err(Error::Model(format!(
                            "unknown function `{name}` (known: {})",
                            known.join(", ")
                        )));
                    };
                    let arg = self.sum()?;
                    if !self.eat(b')') {
                        return Err(self.error("expected `)`"));
                    }
                    return Ok(Node::Call(func, Box::new(arg)));
                }
                match name {
                    "x" => Ok(Node::X),
                    "pi" => Ok(Node::Num(std::f64::consts::PI)),
                    _ => {
                        if let Some(i) = self.params.iter().position(|p| p == name) {
                            return Ok(Node::Param(i));
                        }
                        if self.params.len() >= MAX_PARAMS {
                            return Err(self.error(&format!("more than {MAX_PARAMS} parameters")));
                        }
                        self.params.push(name.to_owned());
                        Ok(Node::Param(self.params.len() - 1))
                    }
                }
            }
            Some(_) => Err(self.error("expected a number, `x`, a parameter or `(`")),
        }
    }
}
