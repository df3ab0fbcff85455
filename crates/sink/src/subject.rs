//! A flow as the filter language sees it.

use netwho_model::record::Context;
use netwho_model::{Direction, Flow, MonoNs};
use netwho_query::{Field, Initiator, Subject, canonical};
use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

/// One flow, its context and the time, for [`netwho_query::Filter::matches`].
#[derive(Debug)]
pub struct FlowSubject<'a> {
    /// The flow.
    pub flow: &'a Flow,
    /// Its names, hash and resources.
    pub ctx: &'a Context,
    /// The time of the event (an open flow's duration runs to it).
    pub now: MonoNs,
    /// This host's addresses (`fd.is_local`).
    pub local: &'a HashSet<IpAddr>,
}

impl Subject for FlowSubject<'_> {
    fn text(&self, field: Field) -> Option<Cow<'_, str>> {
        let f = self.flow;
        let n = &*self.ctx.names;
        Some(match field {
            Field::ProcName => Cow::Borrowed(f.comm.as_str()),
            Field::ProcExe => Cow::Borrowed(f.proc.exe.as_str()),
            Field::ProcCmdline => Cow::Owned(f.proc.cmdline.join(" ")),
            Field::ProcPname => match f.proc.ancestors().next() {
                Some(a) => Cow::Borrowed(a.comm.as_str()),
                None => Cow::Borrowed(f.proc.parent_comm.as_str()),
            },
            Field::ProcSha256 => Cow::Borrowed(self.ctx.exe_sha256.as_deref()?),
            Field::UserName => Cow::Borrowed(n.user.as_str()),
            Field::GroupName => Cow::Borrowed(n.group.as_str()),
            Field::Unit => Cow::Borrowed(n.unit.as_str()),
            Field::Cgroup => Cow::Borrowed(n.cgroup.as_str()),
            Field::ContainerId => Cow::Borrowed(n.container_id.as_str()),
            Field::Proto => f.proto.name(),
            Field::Family => Cow::Borrowed(f.family().name()),
            Field::Direction => Cow::Borrowed(f.direction.name()),
            Field::CommunityId => Cow::Owned(netwho_model::community::of_flow(
                f,
                self.ctx.community_seed,
            )?),
            Field::Rname => Cow::Borrowed(f.remote_name.as_deref()?.rname.as_deref()?),
            Field::RnameSource => Cow::Borrowed(f.remote_name.as_deref()?.source?.name()),
            Field::Sni => Cow::Borrowed(f.remote_name.as_deref()?.sni.as_deref()?),
            Field::Alpn => Cow::Borrowed(f.remote_name.as_deref()?.alpn.as_deref()?),
            _ => return None,
        })
    }

    fn num(&self, field: Field) -> Option<u64> {
        let f = self.flow;
        Some(match field {
            Field::ProcPid => f.key.proc.tgid.into(),
            Field::ProcPpid => f.proc.ppid.into(),
            Field::UserUid => f.uid.into(),
            Field::UserLoginUid => f.proc.login_uid?.into(),
            Field::GroupGid => f.gid.into(),
            Field::Lport => f.local.port.into(),
            Field::Rport => f.remote.port.into(),
            Field::Bytes => f.payload.bytes_sent.saturating_add(f.payload.bytes_recv),
            Field::BytesSent => f.payload.bytes_sent,
            Field::BytesRecv => f.payload.bytes_recv,
            Field::Duration => f.closed.unwrap_or(self.now).since(f.opened),
            _ => return None,
        })
    }

    fn addr(&self, field: Field) -> Option<IpAddr> {
        let f = self.flow;
        if f.packet {
            return None;
        }
        match field {
            Field::Lip => Some(f.local.addr),
            Field::Rip => Some(f.remote.addr),
            _ => None,
        }
    }

    fn initiator(&self) -> Initiator {
        match self.flow.direction {
            Direction::Outbound => Initiator::Local,
            Direction::Inbound => Initiator::Remote,
            _ => Initiator::Unknown,
        }
    }

    /// The traffic never left the network namespace, as netwho can tell:
    /// the remote is loopback or the flow's own address, or both ends are
    /// addresses of this host's namespace (netwho's). A question about the
    /// pair of addresses, so both ends of a connection get the same answer
    /// (a veth connection between a container and the host is not local
    /// from either side: the container's address is not the host's).
    fn is_local(&self) -> bool {
        let f = self.flow;
        if f.packet || f.remote.is_unspecified() {
            return false;
        }
        let (r, l) = (canonical(f.remote.addr), canonical(f.local.addr));
        r.is_loopback() || r == l || (self.local.contains(&r) && self.local.contains(&l))
    }

    fn any_ancestor(&self, f: &mut dyn FnMut(u32, &str) -> bool) -> bool {
        self.flow.proc.ancestors().any(|a| f(a.key.tgid, &a.comm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netwho_model::Endpoint;

    fn local(laddr: [u8; 4], raddr: [u8; 4], host: &HashSet<IpAddr>) -> bool {
        let mut f = Flow::example(7, 1, Endpoint::new(raddr.into(), 80));
        f.local = Endpoint::new(laddr.into(), 40000);
        let ctx = Context::default();
        FlowSubject {
            flow: &f,
            ctx: &ctx,
            now: MonoNs(0),
            local: host,
        }
        .is_local()
    }

    /// Both ends of a connection get the same answer: on the host,
    /// between the host and a namespace over a veth pair, inside a
    /// namespace, over loopback.
    #[test]
    fn is_local_is_the_same_from_both_ends() {
        // the host has 10.231.9.1 (its veth end) and 192.168.1.5
        let host: HashSet<IpAddr> = [[10, 231, 9, 1], [192, 168, 1, 5], [127, 0, 0, 1]]
            .into_iter()
            .map(IpAddr::from)
            .collect();
        let pairs = [
            ([192, 168, 1, 5], [10, 231, 9, 1], true), // host to host
            ([10, 231, 9, 1], [10, 231, 9, 2], false), // host to namespace
            ([10, 231, 9, 2], [10, 231, 9, 2], true),  // inside the namespace
            ([127, 0, 0, 1], [127, 0, 0, 1], true),    // loopback
            ([192, 168, 1, 5], [93, 184, 216, 34], false), // the Internet
        ];
        for (a, b, want) in pairs {
            assert_eq!(local(a, b, &host), want, "{a:?} -> {b:?}");
            assert_eq!(local(b, a, &host), want, "{b:?} -> {a:?}");
        }
    }

    /// The names filters see: a name, its source, the server name; a flow
    /// without them matches none of their values.
    #[test]
    fn names_filter_by_what_the_records_carry() {
        use netwho_model::names::{RemoteName, RnameSource};
        let host = HashSet::new();
        let mut f = Flow::example(7, 1, Endpoint::new([192, 0, 2, 7].into(), 443));
        let ctx = Context::default();
        let check = |f: &Flow, q: &str| {
            let filter = netwho_query::Filter::parse(q).unwrap_or_else(|e| panic!("{e}"));
            filter.matches(&FlowSubject {
                flow: f,
                ctx: &ctx,
                now: MonoNs(0),
                local: &host,
            })
        };
        assert!(!check(&f, "fd.rname endswith .example"));
        assert!(!check(&f, "fd.rname_source = none"));
        f.remote_name = Some(std::sync::Arc::new(RemoteName {
            rname: Some("www.a.example".into()),
            source: Some(RnameSource::Dns),
            sni: Some("api.a.example".into()),
            alpn: Some("h2,http/1.1".into()),
        }));
        assert!(check(
            &f,
            "fd.rname endswith .a.example and fd.rname_source = dns"
        ));
        assert!(check(&f, "fd.sni =~ '^api\\.' and fd.alpn contains h2"));
        assert!(!check(&f, "fd.sni = www.a.example"));
        f.remote_name = Some(std::sync::Arc::new(RemoteName {
            source: Some(RnameSource::None),
            ..RemoteName::default()
        }));
        assert!(check(&f, "fd.rname_source = none"));
        assert!(!check(&f, "fd.rname_source in (dns, shared)"));
    }

    /// `fd.community_id` matches the id the flow's records carry, with
    /// the run's seed, from either end of the connection.
    #[test]
    fn community_id_filters_by_the_records_id() {
        let host = HashSet::new();
        let mut f = Flow::example(7, 1, Endpoint::new([93, 184, 216, 34].into(), 443));
        f.local = Endpoint::new([10, 0, 0, 5].into(), 40412);
        // (corelight's communityid package gives this for the tuple)
        let id = "1:OiHIYNeKzaNKlMed1mfsmhHBvP0=";
        let filter = |s: &str| netwho_query::Filter::parse(s).unwrap_or_else(|e| panic!("{e}"));
        let yes = filter(&format!("fd.community_id = '{id}'"));
        let prefix = filter("fd.community_id startswith '1:OiHI'");
        let mut ctx = Context::default();
        let subject = |f: &Flow, ctx: &Context| {
            let s = FlowSubject {
                flow: f,
                ctx,
                now: MonoNs(0),
                local: &host,
            };
            (yes.matches(&s), prefix.matches(&s))
        };
        assert_eq!(subject(&f, &ctx), (true, true));
        // the server's end of the same connection
        let mut back = f.clone();
        std::mem::swap(&mut back.local, &mut back.remote);
        assert_eq!(subject(&back, &ctx), (true, true));
        // another seed is another id
        ctx.community_seed = 7;
        assert_eq!(subject(&f, &ctx), (false, false));
        // a socket's aggregate of many remotes has none: never equal
        ctx.community_seed = 0;
        f.remote = Endpoint::new([0, 0, 0, 0].into(), 0);
        assert_eq!(subject(&f, &ctx), (false, false));
    }
}
