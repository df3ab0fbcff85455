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

    fn is_local(&self) -> bool {
        let f = self.flow;
        if f.packet || f.remote.is_unspecified() {
            return false;
        }
        let r = canonical(f.remote.addr);
        r.is_loopback() || r == canonical(f.local.addr) || self.local.contains(&r)
    }

    fn any_ancestor(&self, f: &mut dyn FnMut(u32, &str) -> bool) -> bool {
        self.flow.proc.ancestors().any(|a| f(a.key.tgid, &a.comm))
    }
}
