//! The part of a filter the kernel can apply: conditions that every
//! matching flow must meet and that the kernel can check when a socket is
//! created (who creates it, in which cgroup, which protocol) or when a flow
//! starts (its ports). Traffic outside the scope is never counted, so it
//! costs almost nothing; the whole filter still decides in userspace. The
//! scope is a necessary condition, never a stricter one: anything the
//! kernel cannot check exactly is left out of it.

use crate::compile::{Check, Filter, Node, NumCheck, StrCheck};
use crate::fields::Field;
use std::collections::BTreeSet;
use std::fmt;

/// Sets of allowed values; `None` in a dimension: no restriction. A flow
/// is in scope when it meets every restricted dimension.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// User ids.
    pub uids: Option<BTreeSet<u32>>,
    /// User names still to resolve to uids (they join `uids`).
    pub user_names: BTreeSet<String>,
    /// Group ids.
    pub gids: Option<BTreeSet<u32>>,
    /// Group names still to resolve to gids (they join `gids`).
    pub group_names: BTreeSet<String>,
    /// Systemd unit names: cgroups with this name, now or created later,
    /// and everything below them.
    pub units: Option<BTreeSet<String>>,
    /// Cgroup paths, and everything below them (same dimension as units).
    pub cgroups: BTreeSet<String>,
    /// Processes (tgids).
    pub pids: Option<BTreeSet<u32>>,
    /// `pids` includes their descendants, now and forked later.
    pub descendants: bool,
    /// Protocol names.
    pub protos: Option<BTreeSet<String>>,
    /// Local or remote port.
    pub ports: Option<BTreeSet<u16>>,
}

fn add<T: Ord>(dim: &mut Option<BTreeSet<T>>, values: impl IntoIterator<Item = T>) {
    dim.get_or_insert_with(BTreeSet::new).extend(values);
}

impl Scope {
    /// Whether nothing is restricted.
    pub fn is_empty(&self) -> bool {
        *self == Scope::default()
    }

    /// Whether the cgroup dimension is restricted.
    pub fn by_cgroup(&self) -> bool {
        self.units.is_some() || !self.cgroups.is_empty()
    }

    /// Whether the uid dimension is restricted.
    pub fn by_uid(&self) -> bool {
        self.uids.is_some() || !self.user_names.is_empty()
    }

    /// Whether the gid dimension is restricted.
    pub fn by_gid(&self) -> bool {
        self.gids.is_some() || !self.group_names.is_empty()
    }
}

impl Filter {
    /// The kernel scope of this filter (empty when nothing can be
    /// scoped: `or` at the top, or only fields the kernel cannot see).
    pub fn scope(&self) -> Scope {
        let mut s = Scope::default();
        let top: &[Node] = match &self.root {
            Node::And(xs) => xs,
            other => std::slice::from_ref(other),
        };
        for n in top {
            // `proc.pid = N` with --follow-children is (pid or apid)
            let (n, follow) = match n {
                Node::Or(xs)
                    if xs.len() == 2
                        && matches!(&xs[1], Node::Pred(p) if p.field == Field::ProcApid) =>
                {
                    (&xs[0], true)
                }
                n => (n, false),
            };
            let Node::Pred(p) = n else { continue };
            match &p.check {
                Check::Num(NumCheck::In(vals)) => {
                    let u32s = || vals.iter().filter_map(|v| u32::try_from(*v).ok());
                    match p.field {
                        Field::UserUid => add(&mut s.uids, u32s()),
                        Field::GroupGid => add(&mut s.gids, u32s()),
                        Field::ProcPid | Field::ProcApid => {
                            add(&mut s.pids, u32s());
                            s.descendants |= follow || p.field == Field::ProcApid;
                        }
                        Field::Lport | Field::Rport | Field::Port | Field::Cport | Field::Sport => {
                            add(
                                &mut s.ports,
                                vals.iter().filter_map(|v| u16::try_from(*v).ok()),
                            );
                        }
                        _ => {}
                    }
                }
                Check::Str(StrCheck::In(vals)) => match p.field {
                    Field::UserName => s.user_names.extend(vals.iter().cloned()),
                    Field::GroupName => s.group_names.extend(vals.iter().cloned()),
                    Field::Unit => add(&mut s.units, vals.iter().cloned()),
                    Field::Cgroup => s.cgroups.extend(vals.iter().cloned()),
                    Field::Proto => add(&mut s.protos, vals.iter().cloned()),
                    _ => {}
                },
                _ => {}
            }
        }
        s
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(xs: impl IntoIterator<Item = T>) -> String {
            xs.into_iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
        let mut parts = Vec::new();
        if self.by_uid() {
            let mut v: Vec<String> = self.uids.iter().flatten().map(u32::to_string).collect();
            v.extend(self.user_names.iter().cloned());
            parts.push(format!("uid in ({})", v.join(", ")));
        }
        if self.by_gid() {
            let mut v: Vec<String> = self.gids.iter().flatten().map(u32::to_string).collect();
            v.extend(self.group_names.iter().cloned());
            parts.push(format!("gid in ({})", v.join(", ")));
        }
        if self.by_cgroup() {
            let mut v: Vec<String> = self.units.iter().flatten().cloned().collect();
            v.extend(self.cgroups.iter().cloned());
            parts.push(format!("cgroup under ({})", v.join(", ")));
        }
        if let Some(p) = &self.pids {
            let what = if self.descendants {
                "pid or ancestor in"
            } else {
                "pid in"
            };
            parts.push(format!("{what} ({})", list(p)));
        }
        if let Some(p) = &self.protos {
            parts.push(format!("proto in ({})", list(p)));
        }
        if let Some(p) = &self.ports {
            parts.push(format!("port in ({})", list(p)));
        }
        if parts.is_empty() {
            f.write_str("everything")
        } else {
            f.write_str(&parts.join(" and "))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Filter, Options};

    fn scope(s: &str) -> String {
        Filter::parse(s).unwrap().scope().to_string()
    }

    #[test]
    fn only_necessary_conditions_are_scoped() {
        assert_eq!(scope("user.uid = 1000"), "uid in (1000)");
        assert_eq!(
            scope("user.name in (alice, bob) and fd.proto = tcp and fd.rport = 443"),
            "uid in (alice, bob) and proto in (tcp) and port in (443)"
        );
        assert_eq!(
            scope("unit = nginx.service and proc.name = x"),
            "cgroup under (nginx.service)"
        );
        // alternatives, negations and ranges cannot be scoped
        assert_eq!(scope("user.uid = 1 or fd.rport = 2"), "everything");
        assert_eq!(scope("not user.uid = 1"), "everything");
        assert_eq!(scope("user.uid != 1"), "everything");
        assert_eq!(scope("user.uid > 1000"), "everything");
        assert_eq!(scope("proc.apid = 7"), "pid or ancestor in (7)");
        assert_eq!(scope("proc.pid = 7"), "pid in (7)");
        let f = Filter::with_options(
            "proc.pid = 7 and fd.proto = udp",
            Options {
                follow_children: true,
            },
        )
        .unwrap();
        assert_eq!(
            f.scope().to_string(),
            "pid or ancestor in (7) and proto in (udp)"
        );
    }
}
