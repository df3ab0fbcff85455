//! `netwho top --tree`: processes under their ancestors, each line with the
//! totals of its whole subtree, largest subtrees first. Ancestors without
//! traffic of their own are shown (dimmed to their name) to place their
//! children.

use netwho_model::ProcKey;
use netwho_model::top::ProcRow;
use std::collections::{BTreeMap, HashMap};

/// One line of the tree.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeLine<'a> {
    /// Its depth in the tree (0: a root).
    pub depth: usize,
    /// The process.
    pub key: ProcKey,
    /// Its command name.
    pub comm: &'a str,
    /// The process's own row (None: an ancestor without traffic).
    pub row: Option<&'a ProcRow>,
    /// Sums over the subtree: sent/s, recv/s, sent, recv, open flows.
    pub sent_rate: f64,
    /// See `sent_rate`.
    pub recv_rate: f64,
    /// See `sent_rate`.
    pub bytes_sent: u64,
    /// See `sent_rate`.
    pub bytes_recv: u64,
    /// See `sent_rate`.
    pub flows_open: u64,
}

#[derive(Default)]
struct Node<'a> {
    comm: &'a str,
    row: Option<&'a ProcRow>,
    parent: Option<ProcKey>,
    children: Vec<ProcKey>,
}

/// The processes under their ancestors (`top --tree`), each subtree's figures summed.
pub fn tree(rows: &[ProcRow]) -> Vec<TreeLine<'_>> {
    let mut nodes: BTreeMap<ProcKey, Node<'_>> = BTreeMap::new();
    for r in rows {
        let n = nodes.entry(r.proc).or_default();
        n.comm = &r.comm;
        n.row = Some(r);
        // link the row to its chain: child -> parent -> grandparent ...
        let mut child = r.proc;
        for (k, comm) in &r.ancestors {
            let a = nodes.entry(*k).or_default();
            if a.row.is_none() {
                a.comm = comm;
            }
            if let Some(c) = nodes.get_mut(&child) {
                if c.parent.is_some() {
                    break; // the rest of the chain is linked already
                }
                c.parent = Some(*k);
            }
            child = *k;
        }
    }
    let links: Vec<(ProcKey, ProcKey)> = nodes
        .iter()
        .filter_map(|(k, n)| n.parent.map(|p| (p, *k)))
        .collect();
    for (p, c) in links {
        if let Some(n) = nodes.get_mut(&p) {
            n.children.push(c);
        }
    }
    // subtree sums, children before parents (deepest first)
    let mut sums: HashMap<ProcKey, (f64, f64, u64, u64, u64)> = HashMap::new();
    fn sum(
        k: ProcKey,
        nodes: &BTreeMap<ProcKey, Node<'_>>,
        sums: &mut HashMap<ProcKey, (f64, f64, u64, u64, u64)>,
        depth: usize,
    ) -> (f64, f64, u64, u64, u64) {
        let Some(n) = nodes.get(&k) else {
            return Default::default();
        };
        let mut s = n.row.map_or(Default::default(), |r| {
            (
                r.sent_rate,
                r.recv_rate,
                r.bytes_sent,
                r.bytes_recv,
                r.flows_open,
            )
        });
        if depth < netwho_model::MAX_ANCESTORS {
            for c in &n.children {
                let t = sum(*c, nodes, sums, depth + 1);
                s = (s.0 + t.0, s.1 + t.1, s.2 + t.2, s.3 + t.3, s.4 + t.4);
            }
        }
        sums.insert(k, s);
        s
    }
    let roots: Vec<ProcKey> = nodes
        .iter()
        .filter(|(_, n)| n.parent.is_none())
        .map(|(k, _)| *k)
        .collect();
    for r in &roots {
        sum(*r, &nodes, &mut sums, 0);
    }
    let total = |k: &ProcKey| sums.get(k).map_or(0, |s| s.2.saturating_add(s.3));
    let mut out = Vec::new();
    let mut stack: Vec<(ProcKey, usize)> = Vec::new();
    let mut sorted_roots = roots;
    sorted_roots.sort_by(|a, b| total(b).cmp(&total(a)).then(a.cmp(b)));
    for r in sorted_roots.into_iter().rev() {
        stack.push((r, 0));
    }
    while let Some((k, depth)) = stack.pop() {
        let Some(n) = nodes.get(&k) else { continue };
        let s = sums.get(&k).copied().unwrap_or_default();
        out.push(TreeLine {
            depth,
            key: k,
            comm: n.comm,
            row: n.row,
            sent_rate: s.0,
            recv_rate: s.1,
            bytes_sent: s.2,
            bytes_recv: s.3,
            flows_open: s.4,
        });
        if depth >= netwho_model::MAX_ANCESTORS {
            continue;
        }
        let mut kids = n.children.clone();
        kids.sort_by(|a, b| total(b).cmp(&total(a)).then(a.cmp(b)));
        for c in kids.into_iter().rev() {
            stack.push((c, depth + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pid: u32) -> ProcKey {
        ProcKey::from_start_ticks(pid, u64::from(pid))
    }

    fn row(pid: u32, comm: &str, sent: u64, chain: &[(u32, &str)]) -> ProcRow {
        ProcRow {
            proc: key(pid),
            pid,
            uid: 0,
            comm: comm.into(),
            sent_rate: sent as f64,
            recv_rate: 0.0,
            bytes_sent: sent,
            bytes_recv: 0,
            flows_open: 1,
            flows_total: 1,
            idle: false,
            rss_bytes: None,
            cpu_pct: None,
            ancestors: chain
                .iter()
                .map(|(p, c)| (key(*p), (*c).to_string()))
                .collect(),
        }
    }

    #[test]
    fn children_sit_under_their_ancestors_with_subtree_totals() {
        let rows = vec![
            row(30, "curl", 100, &[(20, "bash"), (1, "init")]),
            row(31, "wget", 300, &[(20, "bash"), (1, "init")]),
            row(40, "sshd", 50, &[(1, "init")]),
            row(20, "bash", 5, &[(1, "init")]),
        ];
        let t = tree(&rows);
        let lines: Vec<(usize, &str, u64)> =
            t.iter().map(|l| (l.depth, l.comm, l.bytes_sent)).collect();
        assert_eq!(
            lines,
            [
                (0, "init", 455),
                (1, "bash", 405),
                (2, "wget", 300),
                (2, "curl", 100),
                (1, "sshd", 50),
            ]
        );
        assert!(t[0].row.is_none(), "init has no traffic of its own");
    }
}
