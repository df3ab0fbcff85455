//! Evaluation on a fake flow, and property tests of the parser.

use crate::ast::{Expr, Lit, Op, Test, Value, is_bare_word};
use crate::error::Span;
use crate::{Field, Filter, Initiator, Options, Subject, parse};
use proptest::prelude::*;
use std::borrow::Cow;
use std::net::IpAddr;

struct Fake {
    name: &'static str,
    pid: u32,
    uid: u32,
    user: &'static str,
    cmdline: &'static str,
    lip: &'static str,
    rip: &'static str,
    lport: u16,
    rport: u16,
    who: Initiator,
    local: bool,
    bytes: (u64, u64),
    ancestors: Vec<(u32, &'static str)>,
    loginuid: Option<u32>,
}

fn curl() -> Fake {
    Fake {
        name: "curl",
        pid: 4242,
        uid: 1000,
        user: "alice",
        cmdline: "curl -s --token x https://example.org",
        lip: "10.231.1.1",
        rip: "::ffff:93.184.216.34",
        lport: 40412,
        rport: 443,
        who: Initiator::Local,
        local: false,
        bytes: (79, 1256),
        ancestors: vec![(4000, "bash"), (1, "init")],
        loginuid: None,
    }
}

impl Subject for Fake {
    fn text(&self, f: Field) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(match f {
            Field::ProcName => self.name,
            Field::ProcCmdline => self.cmdline,
            Field::UserName => self.user,
            Field::Proto => "tcp",
            Field::Family => "ipv4",
            Field::Unit => "session-2.scope",
            Field::Direction => match self.who {
                Initiator::Local => "outbound",
                Initiator::Remote => "inbound",
                Initiator::Unknown => "unknown",
            },
            Field::ProcPname => self.ancestors.first().map_or("", |a| a.1),
            _ => return None,
        }))
    }
    fn num(&self, f: Field) -> Option<u64> {
        Some(match f {
            Field::ProcPid => self.pid.into(),
            Field::ProcPpid => self.ancestors.first().map_or(0, |a| a.0).into(),
            Field::UserUid => self.uid.into(),
            Field::UserLoginUid => return self.loginuid.map(u64::from),
            Field::Lport => self.lport.into(),
            Field::Rport => self.rport.into(),
            Field::BytesSent => self.bytes.0,
            Field::BytesRecv => self.bytes.1,
            Field::Bytes => self.bytes.0 + self.bytes.1,
            Field::Duration => 217_000_000,
            _ => return None,
        })
    }
    fn addr(&self, f: Field) -> Option<IpAddr> {
        match f {
            Field::Lip => self.lip.parse().ok(),
            Field::Rip => self.rip.parse().ok(),
            _ => None,
        }
    }
    fn initiator(&self) -> Initiator {
        self.who
    }
    fn is_local(&self) -> bool {
        self.local
    }
    fn any_ancestor(&self, f: &mut dyn FnMut(u32, &str) -> bool) -> bool {
        self.ancestors.iter().any(|(p, c)| f(*p, c))
    }
}

fn m(filter: &str, s: &Fake) -> bool {
    Filter::parse(filter)
        .unwrap_or_else(|e| panic!("{}", e.render(filter)))
        .matches(s)
}

#[test]
fn fields_and_operators() {
    let c = curl();
    for yes in [
        "proc.name = curl",
        "proc.name != wget",
        "proc.name in (wget, curl)",
        "proc.name =~ '^cu.l$'",
        "proc.name startswith cu and proc.name endswith rl",
        "proc.cmdline contains \"--token\"",
        "proc.pid = 4242 and user.uid >= 1000 and user.uid < 1001",
        "user.name in (alice, bob)",
        "proc.ppid = 4000 and proc.pname = bash",
        "proc.apid = 1 and proc.apid = 4000 and proc.aname = init",
        "fd.rip = 93.184.216.34",
        "fd.rnet = 93.184.0.0/16 and fd.rnet != 10.0.0.0/8",
        "fd.lnet = 10.231.0.0/16 and fd.cip = 10.231.1.1 and fd.sip = 93.184.216.34",
        "fd.net = 10.231.0.0/16 and fd.net = 93.0.0.0/8",
        "fd.port = 443 and fd.port = 40412 and fd.sport = 443 and fd.cport = 40412",
        "fd.rport in (80, 443) and fd.lport > 1024",
        "not fd.is_local and fd.is_local = false",
        "fd.proto = TCP and fd.family = ipv4 and fd.direction = outbound",
        "flow.bytes = 1335 and flow.bytes_recv > 1k and flow.bytes_sent <= 79",
        "flow.duration > 200ms and flow.duration < 1",
        "unit = session-2.scope",
        "user.loginuid != 0",
        // `!=` is `not =`: an unknown value differs from every value
        "container.id != x",
        "(proc.name = x or proc.name = curl) and not (fd.rport = 80)",
    ] {
        assert!(m(yes, &c), "{yes} should match");
    }
    for no in [
        "proc.name = curlx",
        "proc.name =~ '^url'",
        "proc.apid = 4242",
        "proc.pid = 1",
        "fd.rnet = 10.0.0.0/8",
        "fd.sip = 10.231.1.1",
        "fd.is_local",
        "fd.direction = inbound",
        "flow.bytes > 1335",
        "user.loginuid = 0",
        "proc.exe = /usr/bin/curl",
    ] {
        assert!(!m(no, &c), "{no} should not match");
    }
}

#[test]
fn client_and_server_follow_the_initiator() {
    let mut s = curl();
    s.who = Initiator::Remote;
    assert!(m(
        "fd.sip = 10.231.1.1 and fd.sport = 40412 and fd.cport = 443",
        &s
    ));
    s.who = Initiator::Unknown;
    assert!(!m("fd.sip = 10.231.1.1", &s));
    assert!(!m("fd.cip = 93.184.216.34", &s));
    assert!(m("fd.ip = 10.231.1.1", &s));
}

#[test]
fn follow_children_widens_pid() {
    let s = curl();
    let f = Filter::with_options(
        "proc.pid = 4000",
        Options {
            follow_children: true,
        },
    )
    .unwrap();
    assert!(f.matches(&s));
    assert!(!Filter::parse("proc.pid = 4000").unwrap().matches(&s));
}

// ---- parse → print → parse ----

fn word() -> impl Strategy<Value = String> {
    "[a-z0-9_./:-]{1,12}".prop_filter("bare word", |w| is_bare_word(w))
}

fn lit() -> impl Strategy<Value = Lit> {
    prop_oneof![
        word().prop_map(Lit::Word),
        any::<String>().prop_map(Lit::Quoted),
    ]
}

fn test_expr() -> impl Strategy<Value = Expr> {
    let v = |l| Value {
        lit: l,
        span: Span::default(),
    };
    (
        word(),
        proptest::option::of(0..Op::ALL.len()),
        proptest::collection::vec(lit(), 1..4),
    )
        .prop_map(move |(field, op, lits)| {
            let op = op.map(|i| Op::ALL[i]);
            let values = match op {
                None => Vec::new(),
                Some(Op::In) => lits.into_iter().map(v).collect(),
                Some(_) => lits.into_iter().take(1).map(v).collect(),
            };
            Expr::Test(Test {
                field,
                field_span: Span::default(),
                op: op.map(|o| (o, Span::default())),
                values,
            })
        })
}

fn expr() -> impl Strategy<Value = Expr> {
    test_expr().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

proptest! {
    #[test]
    fn print_then_parse_is_identity(e in expr()) {
        let printed = e.to_string();
        let back = parse(&printed).map_err(|err| TestCaseError::fail(err.render(&printed)))?;
        prop_assert_eq!(back, e);
    }

    /// The fuzz target's body: any input gives a filter or an error whose
    /// span lies inside the input, never a panic.
    #[test]
    fn arbitrary_input_never_panics(s in any::<String>()) {
        crate::fuzz_parse(s.as_bytes());
    }

    #[test]
    fn near_miss_input_never_panics(s in "[a-z. =!<>~()',\"0-9/:]{0,40}") {
        crate::fuzz_parse(s.as_bytes());
    }

    /// Long inputs built of nesting and chains (the hostile shapes: deep
    /// parentheses, runs of `not`, very long `and` chains and lists),
    /// around and past the length and depth limits, on a small stack.
    #[test]
    fn long_nested_input_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("("), Just(")"), Just("not "), Just(" and "), Just(" or "),
                Just("proc.pid = 1"), Just("fd.rport in (1,2,3)"), Just("\"x\""),
            ],
            0..400,
        ),
        repeat in 1usize..120,
    ) {
        let s = parts.concat().repeat(repeat);
        std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || crate::fuzz_parse(s.as_bytes()))
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .join()
            .map_err(|_| TestCaseError::fail("panicked"))?;
    }
}
