//! Evaluation: does a flow (anything that can answer [`Subject`]) match?

use crate::compile::{Check, Filter, Node, NumCheck, Pred, StrCheck, canonical};
use crate::fields::Field;
use std::borrow::Cow;
use std::net::IpAddr;

/// Who initiated a flow, as the filter sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    /// A process on this host opened it.
    Local,
    /// The remote opened it.
    Remote,
    /// Not known (the flow's direction is unknown).
    Unknown,
}

/// What a filter asks of a flow. The filter derives the client/server and
/// either-end fields (`fd.cip`, `fd.port`, `fd.net`...) from the plain ones.
pub trait Subject {
    /// Text fields (`proc.name`, `unit`, `fd.proto`...; `proc.cmdline`
    /// joined by spaces). None: not known.
    fn text(&self, field: Field) -> Option<Cow<'_, str>>;
    /// Numeric fields: ids, ports, bytes, `flow.duration` in nanoseconds.
    fn num(&self, field: Field) -> Option<u64>;
    /// `fd.lip` or `fd.rip`.
    fn addr(&self, field: Field) -> Option<IpAddr>;
    /// Who initiated the flow.
    fn initiator(&self) -> Initiator;
    /// Whether the remote is this host.
    fn is_local(&self) -> bool;
    /// Calls `f` with each ancestor's (pid, comm), parent first, until it
    /// returns true; returns whether it did.
    fn any_ancestor(&self, f: &mut dyn FnMut(u32, &str) -> bool) -> bool;
}

impl Filter {
    /// Whether the flow passes.
    pub fn matches(&self, s: &dyn Subject) -> bool {
        eval(&self.root, s)
    }
}

fn eval(n: &Node, s: &dyn Subject) -> bool {
    match n {
        Node::And(xs) => xs.iter().all(|x| eval(x, s)),
        Node::Or(xs) => xs.iter().any(|x| eval(x, s)),
        Node::Not(x) => !eval(x, s),
        Node::Pred(p) => pred(p, s),
    }
}

/// The plain fields a derived one stands for, given who initiated.
fn ends(f: Field, who: Initiator) -> &'static [Field] {
    use Field::*;
    let local_is_client = match who {
        Initiator::Local => Some(true),
        Initiator::Remote => Some(false),
        Initiator::Unknown => None,
    };
    match (f, local_is_client) {
        (Ip | Net, _) => &[Lip, Rip],
        (Port, _) => &[Lport, Rport],
        (Lnet, _) => &[Lip],
        (Rnet, _) => &[Rip],
        (Cip | Cnet, Some(true)) | (Sip | Snet, Some(false)) => &[Lip],
        (Cip | Cnet, Some(false)) | (Sip | Snet, Some(true)) => &[Rip],
        (Cport, Some(true)) | (Sport, Some(false)) => &[Lport],
        (Cport, Some(false)) | (Sport, Some(true)) => &[Rport],
        (Cip | Cnet | Sip | Snet | Cport | Sport, None) => &[],
        _ => &[],
    }
}

fn derived(f: Field) -> bool {
    use Field::*;
    matches!(
        f,
        Ip | Net | Port | Lnet | Rnet | Cip | Cnet | Sip | Snet | Cport | Sport
    )
}

fn pred(p: &Pred, s: &dyn Subject) -> bool {
    check(p.field, &p.check, s)
}

fn check(field: Field, c: &Check, s: &dyn Subject) -> bool {
    if derived(field) {
        return ends(field, s.initiator()).iter().any(|f| check(*f, c, s));
    }
    match c {
        Check::Bool(want) => match field {
            Field::IsLocal => s.is_local() == *want,
            _ => false,
        },
        Check::Net(nets) => s
            .addr(field)
            .map(canonical)
            .is_some_and(|a| nets.iter().any(|n| n.contains(a))),
        Check::Num(c) => match field {
            Field::ProcApid => s.any_ancestor(&mut |pid, _| num(c, u64::from(pid))),
            f => s.num(f).is_some_and(|v| num(c, v)),
        },
        Check::Str(c) => match field {
            Field::ProcAname => s.any_ancestor(&mut |_, comm| text(c, comm)),
            f => s.text(f).is_some_and(|v| text(c, &v)),
        },
    }
}

fn num(c: &NumCheck, v: u64) -> bool {
    match c {
        NumCheck::In(xs) => xs.contains(&v),
        NumCheck::Cmp {
            ord,
            or_equal,
            value,
        } => {
            let o = v.cmp(value);
            o == *ord || (*or_equal && o.is_eq())
        }
    }
}

fn text(c: &StrCheck, v: &str) -> bool {
    match c {
        StrCheck::In(xs) => xs.iter().any(|x| x == v),
        StrCheck::Contains(x) => v.contains(x.as_str()),
        StrCheck::StartsWith(x) => v.starts_with(x.as_str()),
        StrCheck::EndsWith(x) => v.ends_with(x.as_str()),
        StrCheck::Regex(re) => re.is_match(v),
    }
}
