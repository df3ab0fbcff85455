//! `netwho pcap`: the packets of the flows a filter selects, each with its
//! process, into a pcapng file readable by root only.

use crate::args::PcapArgs;
use crate::failure::{Failure, cannot_start};
use anyhow::Context as _;
use netwho_export::pcapng::PcapSink;
use netwho_pipeline::Sink;
use netwho_sink::output::Output;
use netwho_store::private::{Access, create};

/// The pcapng sink for `netwho pcap`, its file created (owner only).
pub fn sink(p: &PcapArgs) -> Result<Box<dyn Sink>, Failure> {
    let f = create(&p.write, Access::OWNER, p.overwrite)
        .with_context(|| {
            if p.write.exists() && !p.overwrite {
                format!(
                    "{} exists: choose another file, or add --overwrite",
                    p.write.display()
                )
            } else {
                format!("creating {}", p.write.display())
            }
        })
        .map_err(cannot_start)?;
    log::info!(
        "capturing packets into {} (snap length {} bytes)",
        p.write.display(),
        p.snaplen
    );
    Ok(Box::new(
        PcapSink::new(Output::spawn(Box::new(f)), p.snaplen, p.duration).with_names(if_name),
    ))
}

/// An interface's name, when it is in netwho's own network namespace
/// (others' names would need entering them, a privilege netwho has dropped
/// by then: they are written as `ifN@netnsM`).
fn if_name(netns: u32, ifindex: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let own = std::fs::metadata("/proc/self/ns/net").ok()?.ino();
    if u64::from(netns) != own || ifindex == 0 {
        return None;
    }
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes into buf
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success buf holds a NUL-terminated name
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(
        name.to_string_lossy()
            .chars()
            .filter(|c| !c.is_control())
            .collect(),
    )
}
