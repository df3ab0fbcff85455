//! Type checking: a syntax tree becomes a [`Filter`] whose every literal is
//! already a number, an address, a network or a regex, so evaluation never
//! fails and never parses.

use crate::ast::{Expr, Op, Test, Value};
use crate::error::FilterError;
use crate::fields::{self, Field, Kind};
use std::cmp::Ordering;
use std::net::IpAddr;

/// An IP network; a plain address is a /32 or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The network's address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// `ADDR` or `ADDR/PREFIX`; an IPv4-mapped IPv6 network of at least
    /// /96 (`::ffff:10.1.2.3`, `::ffff:10.0.0.0/104`) is the IPv4 network
    /// it maps (the prefix less 96), as flow records show mapped peers.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let a = a
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(a);
        let addr: IpAddr = a.parse().ok()?;
        // the prefix belongs to the family as written...
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        // ...and is moved with the address once the family is settled
        match canonical(addr) {
            IpAddr::V4(v4) if addr.is_ipv6() => match prefix.checked_sub(96) {
                Some(p) => Some(Cidr {
                    addr: IpAddr::V4(v4),
                    prefix: p,
                }),
                // wider than the mapped space: an IPv6 network as written
                None => Some(Cidr { addr, prefix }),
            },
            canon => Some(Cidr {
                addr: canon,
                prefix,
            }),
        }
    }

    /// Whether `ip` is in the network (an IPv4-mapped address as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32u32.saturating_sub(u32::from(self.prefix)))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), a) => {
                // an IPv4 peer is in an IPv6 network that holds its mapping
                let a = match a {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                let mask = u128::MAX
                    .checked_shl(128u32.saturating_sub(u32::from(self.prefix)))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses are IPv4 addresses (as in the flow record).
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[derive(Clone, Debug)]
pub enum StrCheck {
    /// `=` (one value) or `in`.
    In(Vec<String>),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    Regex(regex_lite::Regex),
}

#[derive(Clone, Debug)]
pub enum NumCheck {
    /// `=` (one value) or `in`.
    In(Vec<u64>),
    /// value `ord` literal, e.g. (Greater, 5) for `> 5`; `or_equal` adds =.
    Cmp {
        ord: Ordering,
        or_equal: bool,
        value: u64,
    },
}

#[derive(Clone, Debug)]
pub enum Check {
    Str(StrCheck),
    Num(NumCheck),
    /// The address is in one of these networks.
    Net(Vec<Cidr>),
    Bool(bool),
}

#[derive(Clone, Debug)]
pub struct Pred {
    pub field: Field,
    pub check: Check,
}

#[derive(Clone, Debug)]
pub enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Pred(Pred),
}

/// How a filter is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `proc.pid = N` also matches N's descendants (`--follow-children`).
    pub follow_children: bool,
}

/// A parsed, type-checked filter.
#[derive(Clone, Debug)]
pub struct Filter {
    pub(crate) source: String,
    pub(crate) expr: Expr,
    pub(crate) root: Node,
    pub(crate) options: Options,
}

impl Filter {
    /// Parse and check `src`. Errors carry the span to point at
    /// ([`FilterError::render`]).
    pub fn parse(src: &str) -> Result<Filter, FilterError> {
        Filter::with_options(src, Options::default())
    }

    /// Parse and check `src` with `options` (an error points at a column).
    pub fn with_options(src: &str, options: Options) -> Result<Filter, FilterError> {
        let expr = crate::parser::parse(src)?;
        let root = node(&expr, options)?;
        Ok(Filter {
            source: src.to_string(),
            expr,
            root,
            options,
        })
    }

    /// The filter as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Flows that pass both: `self and (other)`, joined from the two
    /// checked trees (the joined text is never parsed again, so each part
    /// keeps its own columns and limits). `self`'s options apply.
    #[must_use]
    pub fn and(self, other: Filter) -> Filter {
        Filter {
            source: format!("{} and ({})", self.source, other.source),
            expr: Expr::And(vec![self.expr, other.expr]),
            root: Node::And(vec![self.root, other.root]),
            options: self.options,
        }
    }

    /// The parsed expression.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The options it was made with.
    pub fn options(&self) -> Options {
        self.options
    }

    /// Whether any test names `field` (a caller can skip work the filter
    /// does not need).
    pub fn uses(&self, field: Field) -> bool {
        fn walk(n: &Node, field: Field) -> bool {
            match n {
                Node::And(xs) | Node::Or(xs) => xs.iter().any(|x| walk(x, field)),
                Node::Not(x) => walk(x, field),
                Node::Pred(p) => p.field == field,
            }
        }
        walk(&self.root, field)
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.expr)
    }
}

fn node(e: &Expr, opts: Options) -> Result<Node, FilterError> {
    Ok(match e {
        Expr::And(xs) => Node::And(xs.iter().map(|x| node(x, opts)).collect::<Result<_, _>>()?),
        Expr::Or(xs) => Node::Or(xs.iter().map(|x| node(x, opts)).collect::<Result<_, _>>()?),
        Expr::Not(x) => Node::Not(Box::new(node(x, opts)?)),
        Expr::Test(t) => test(t, opts)?,
    })
}

fn ops_of(kind: Kind) -> &'static [Op] {
    use Op::*;
    match kind {
        Kind::Str => &[Eq, Ne, Contains, StartsWith, EndsWith, In, Regex],
        Kind::Enum(_) | Kind::Addr | Kind::Net | Kind::Bool => &[Eq, Ne, In],
        Kind::Num | Kind::Bytes | Kind::Duration => &[Eq, Ne, Lt, Le, Gt, Ge, In],
    }
}

fn is_port(f: Field) -> bool {
    matches!(
        f,
        Field::Lport | Field::Rport | Field::Cport | Field::Sport | Field::Port
    )
}

fn test(t: &Test, opts: Options) -> Result<Node, FilterError> {
    let (field, kind) = Field::lookup(&t.field).ok_or_else(|| {
        let hint = match fields::suggest(&t.field) {
            Some(s) => format!(" (did you mean {s}?)"),
            None => " (netwho log --help lists the fields)".to_string(),
        };
        FilterError::new(t.field_span, format!("unknown field '{}'{hint}", t.field))
    })?;
    let Some((op, op_span)) = t.op else {
        if kind == Kind::Bool {
            return Ok(Node::Pred(Pred {
                field,
                check: Check::Bool(true),
            }));
        }
        return Err(FilterError::new(
            t.field_span,
            format!(
                "{} needs an operator and a value (only true/false fields stand alone)",
                t.field
            ),
        ));
    };
    let allowed = ops_of(kind);
    if !allowed.contains(&op) {
        let list: Vec<&str> = allowed.iter().map(|o| o.text()).collect();
        return Err(FilterError::new(
            op_span,
            format!("{} takes {}, not '{}'", t.field, list.join(" "), op.text()),
        ));
    }
    let check = match kind {
        Kind::Str | Kind::Enum(_) => Check::Str(str_check(op, &t.values, kind)?),
        Kind::Num | Kind::Bytes | Kind::Duration => {
            let nums = t
                .values
                .iter()
                .map(|v| number(v, kind, is_port(field)))
                .collect::<Result<Vec<_>, _>>()?;
            Check::Num(num_check(op, nums))
        }
        Kind::Addr | Kind::Net => Check::Net(
            t.values
                .iter()
                .map(|v| {
                    Cidr::parse(v.lit.text()).ok_or_else(|| {
                        FilterError::new(
                            v.span,
                            format!(
                                "'{}' is not an IP address or network (like 10.0.0.0/8 or fd00::/64)",
                                v.lit.text()
                            ),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        Kind::Bool => {
            let v = &t.values[0];
            match v.lit.text() {
                "true" => Check::Bool(true),
                "false" => Check::Bool(false),
                other => {
                    return Err(FilterError::new(
                        v.span,
                        format!("{} is true or false, not '{other}'", t.field),
                    ));
                }
            }
        }
    };
    let mut pred = Node::Pred(Pred { field, check });
    if field == Field::ProcPid && opts.follow_children {
        // the process or any of its ancestors
        if let Node::Pred(Pred { check, .. }) = &pred {
            let anc = Node::Pred(Pred {
                field: Field::ProcApid,
                check: check.clone(),
            });
            pred = Node::Or(vec![pred, anc]);
        }
    }
    Ok(if op == Op::Ne {
        Node::Not(Box::new(pred))
    } else {
        pred
    })
}

fn str_check(op: Op, values: &[Value], kind: Kind) -> Result<StrCheck, FilterError> {
    let mut texts = Vec::with_capacity(values.len());
    for v in values {
        let s = v.lit.text();
        if let Kind::Enum(words) = kind {
            let lower = s.to_ascii_lowercase();
            if !words.contains(&lower.as_str()) {
                return Err(FilterError::new(
                    v.span,
                    format!("'{s}' is not one of {}", words.join(", ")),
                ));
            }
            texts.push(lower);
        } else {
            texts.push(s.to_string());
        }
    }
    let one = || texts.first().cloned().unwrap_or_default();
    Ok(match op {
        Op::Contains => StrCheck::Contains(one()),
        Op::StartsWith => StrCheck::StartsWith(one()),
        Op::EndsWith => StrCheck::EndsWith(one()),
        Op::Regex => {
            let v = &values[0];
            let re = regex_lite::Regex::new(v.lit.text()).map_err(|e| {
                let first = e.to_string();
                let first = first.lines().last().unwrap_or("").trim().to_string();
                FilterError::new(v.span, format!("not a valid regular expression: {first}"))
            })?;
            StrCheck::Regex(re)
        }
        _ => StrCheck::In(texts),
    })
}

fn num_check(op: Op, nums: Vec<u64>) -> NumCheck {
    let value = nums.first().copied().unwrap_or(0);
    let cmp = |ord, or_equal| NumCheck::Cmp {
        ord,
        or_equal,
        value,
    };
    match op {
        Op::Lt => cmp(Ordering::Less, false),
        Op::Le => cmp(Ordering::Less, true),
        Op::Gt => cmp(Ordering::Greater, false),
        Op::Ge => cmp(Ordering::Greater, true),
        _ => NumCheck::In(nums),
    }
}

const BYTE_UNITS: &[(&str, f64)] = &[
    ("", 1.0),
    ("b", 1.0),
    ("k", 1e3),
    ("kb", 1e3),
    ("m", 1e6),
    ("mb", 1e6),
    ("g", 1e9),
    ("gb", 1e9),
    ("t", 1e12),
    ("tb", 1e12),
    ("kib", 1024.0),
    ("mib", 1_048_576.0),
    ("gib", 1_073_741_824.0),
    ("tib", 1_099_511_627_776.0),
];

const TIME_UNITS: &[(&str, f64)] = &[
    ("", 1e9),
    ("s", 1e9),
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("ms", 1e6),
    ("m", 60e9),
    ("min", 60e9),
    ("h", 3600e9),
    ("d", 86_400e9),
];

/// `s` as a count of bytes: a number with an optional unit (K, M, G, T,
/// KiB, MiB, GiB, TiB; case does not matter). For command-line options.
pub fn parse_bytes(s: &str) -> Option<u64> {
    scaled(s, BYTE_UNITS)
}

/// `s` as a duration in nanoseconds: seconds, or a number with a unit
/// (ns, us, ms, s, m, min, h, d). For command-line options.
pub fn parse_duration_ns(s: &str) -> Option<u64> {
    scaled(s, TIME_UNITS)
}

/// A number followed by one of `units`, scaled, in range, rounded.
fn scaled(s: &str, units: &[(&str, f64)]) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let x: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale = units.iter().find(|(u, _)| *u == unit).map(|(_, f)| *f)?;
    let n = (x * scale).round();
    // in range and rounded: the conversion is exact
    (0.0..1.8e19).contains(&n).then_some(n as u64)
}

/// A literal as a number: ports and ids as integers, bytes and durations
/// (in nanoseconds) with their units.
fn number(v: &Value, kind: Kind, port: bool) -> Result<u64, FilterError> {
    let s = v.lit.text().trim();
    let bad = |why: &str| FilterError::new(v.span, format!("'{s}' {why}"));
    if kind == Kind::Num {
        let n: u64 = s.parse().map_err(|_| bad("is not a whole number"))?;
        if port && n > 65_535 {
            return Err(bad("is not a port (0 to 65535)"));
        }
        return Ok(n);
    }
    let (units, what) = if kind == Kind::Bytes {
        (
            BYTE_UNITS,
            "bytes: a number with an optional unit (K, M, G, KiB, MiB, GiB)",
        )
    } else {
        (
            TIME_UNITS,
            "a duration: a number of seconds, or with a unit (ns, us, ms, s, m, h, d)",
        )
    };
    scaled(s, units).ok_or_else(|| bad(&format!("is not {what} in range")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Lit;

    fn err(s: &str) -> String {
        Filter::parse(s).unwrap_err().message
    }

    #[test]
    fn values_are_typed_when_read() {
        assert!(err("proc.nme = x").contains("did you mean proc.name?"));
        assert!(err("proc.name < x").contains("proc.name takes = != contains"));
        assert!(err("fd.rport = 70000").contains("not a port"));
        assert!(err("fd.rip = 10.0.0.300").contains("not an IP address"));
        assert!(err("fd.rnet = 10.0.0.0/33").contains("not an IP address"));
        assert!(err("fd.proto = tcpp").contains("not one of tcp, udp"));
        // every protocol a record can name (model's table, and unknown)
        for p in netwho_model::PROTO_NAMES.iter().chain(&["unknown"]) {
            assert!(Filter::parse(&format!("fd.proto = {p}")).is_ok(), "{p}");
        }
        assert_eq!(netwho_model::Proto::Unknown.name(), "unknown");
        assert!(err("proc.name =~ 'a('").contains("not a valid regular expression"));
        assert!(err("flow.bytes > 10 parsecs").contains("expected 'and'"));
        assert!(err("flow.bytes > 10q").contains("is not bytes"));
        assert!(err("flow.duration > 1fortnight").contains("is not a duration"));
        assert!(err("proc.name").contains("needs an operator"));
        assert!(err("fd.is_local = maybe").contains("true or false"));
        let e = Filter::parse("proc.name = x and usr.name = y").unwrap_err();
        assert_eq!((e.span.start, e.span.end), (18, 26));
    }

    #[test]
    fn units_scale() {
        let v = |s: &str, k| {
            number(
                &Value {
                    lit: Lit::Word(s.into()),
                    span: Default::default(),
                },
                k,
                false,
            )
            .unwrap()
        };
        assert_eq!(v("1.5k", Kind::Bytes), 1500);
        assert_eq!(v("2MiB", Kind::Bytes), 2 << 20);
        assert_eq!(v("250ms", Kind::Duration), 250_000_000);
        assert_eq!(v("2", Kind::Duration), 2_000_000_000);
        assert_eq!(v("1h", Kind::Duration), 3_600_000_000_000);
    }

    #[test]
    fn networks() {
        let n = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let n = Cidr::parse("fd00:231::/64").unwrap();
        assert!(n.contains("fd00:231::5".parse().unwrap()));
        assert!(!n.contains("fd00:232::5".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        assert_eq!(Cidr::parse("[::1]").unwrap().prefix, 128);
    }

    #[test]
    fn mapped_networks_mean_the_ipv4_network_they_map() {
        let one = Cidr::parse("::ffff:10.1.2.3").unwrap();
        assert_eq!(one.prefix, 32);
        assert!(one.contains("10.1.2.3".parse().unwrap()));
        assert!(one.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!one.contains("10.1.2.4".parse().unwrap()));
        assert!(!one.contains("192.0.2.1".parse().unwrap()));
        let net = Cidr::parse("::ffff:10.1.0.0/112").unwrap();
        assert_eq!((net.addr, net.prefix), ("10.1.0.0".parse().unwrap(), 16));
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        // all of the mapped space is every IPv4 address, and only those
        let all = Cidr::parse("::ffff:0.0.0.0/96").unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        assert!(!all.contains("fd00:231::1".parse().unwrap()));
        // wider than it: an IPv6 network that also holds the mapped space
        let wide = Cidr::parse("::/64").unwrap();
        assert!(wide.contains("::5".parse().unwrap()));
        assert!(wide.contains("10.1.2.3".parse().unwrap()));
        assert!(!wide.contains("fd00:231::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("::ffff:10.0.0.0/129").is_none());
    }
}
