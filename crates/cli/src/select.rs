//! The flows a command is about, from its command line: the filter
//! expression (checked before anything starts) and the options that add
//! to it.

use crate::args::{ProtoArg, SelectArgs};
use crate::failure::{Failure, cannot_start};
use netwho_query::{Filter, Options};

/// `-p tcp,udp` as a filter expression.
pub fn protos_filter(protos: &[ProtoArg]) -> Option<String> {
    let mut names: Vec<&str> = Vec::new();
    for p in protos {
        match p {
            ProtoArg::Tcp => names.push("tcp"),
            ProtoArg::Udp => names.push("udp"),
            ProtoArg::Icmp => names.extend(["icmp", "icmpv6"]),
        }
    }
    names.dedup();
    (!names.is_empty()).then(|| format!("fd.proto in ({})", names.join(", ")))
}

/// The filter of a command: parsed and checked before anything starts, so
/// a bad one exits 2 with the expression and a caret under the problem.
/// `extra` (from options like `-p`) is joined to it with `and`.
pub fn read_filter(select: &SelectArgs, extra: Option<String>) -> Result<Option<Filter>, Failure> {
    let opts = Options {
        follow_children: select.follow_children,
    };
    let parse = |src: &str| {
        Filter::with_options(src, opts)
            .map_err(|e| cannot_start(anyhow::anyhow!("{}", e.render(src))))
    };
    let given = select
        .expression()
        .map_err(|e| cannot_start(anyhow::anyhow!(e)))?;
    Ok(match (given, extra) {
        (None, None) => None,
        (Some(g), None) => Some(parse(&g)?),
        (None, Some(x)) => Some(parse(&x)?),
        // each part checked alone, so the user's columns are its own
        (Some(g), Some(x)) => Some(parse(&x)?.and(parse(&g)?)),
    })
}
