//! The few `bpf(2)` map commands aya 0.14 does not expose: atomic
//! lookup-and-delete (final counters can't race a late increment) and batch
//! lookup (a scan of N entries in N/1024 syscalls instead of 2N).

use bytemuck::Pod;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// `union bpf_attr` for the *_ELEM commands.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `union bpf_attr` for the *_BATCH commands.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

fn bpf<A>(cmd: libc::c_long, attr: &mut A) -> io::Result<()> {
    // SAFETY: `attr` is a valid, initialized `bpf_attr` prefix for `cmd`
    // whose pointer fields point into live buffers owned by the caller and
    // sized as the kernel expects for this map; the kernel reads and writes
    // at most `size_of::<A>()` bytes of it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            size_of::<A>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn elem<K: Pod, V: Pod>(cmd: libc::c_long, fd: BorrowedFd<'_>, key: &K) -> io::Result<Option<V>> {
    let mut value = V::zeroed();
    let mut attr = ElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        key: std::ptr::from_ref(key) as u64,
        value: std::ptr::from_mut(&mut value) as u64,
        ..ElemAttr::default()
    };
    match bpf(cmd, &mut attr) {
        Ok(()) => Ok(Some(value)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write one entry (BPF_ANY: create or replace).
pub fn update<K: Pod, V: Pod>(fd: BorrowedFd<'_>, key: &K, value: &V) -> io::Result<()> {
    let mut attr = ElemAttr {
        map_fd: fd.as_raw_fd() as u32,
        key: std::ptr::from_ref(key) as u64,
        value: std::ptr::from_ref(value) as u64,
        ..ElemAttr::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr)
}

/// Read one entry.
pub fn lookup<K: Pod, V: Pod>(fd: BorrowedFd<'_>, key: &K) -> io::Result<Option<V>> {
    elem(BPF_MAP_LOOKUP_ELEM, fd, key)
}

/// Read and delete one entry, atomically (hash maps, Linux 5.14+).
pub fn lookup_and_delete<K: Pod, V: Pod>(fd: BorrowedFd<'_>, key: &K) -> io::Result<Option<V>> {
    elem(BPF_MAP_LOOKUP_AND_DELETE_ELEM, fd, key)
}

/// Read every entry of a hash map in batches (Linux 5.6+). Entries added or
/// removed during the walk may or may not be seen, as with any iteration.
pub fn lookup_all<K: Pod, V: Pod>(fd: BorrowedFd<'_>, out: &mut Vec<(K, V)>) -> io::Result<()> {
    // A batch must hold the largest hash bucket; 1024 is far above what a
    // healthy hash map has, and ENOSPC makes us retry with more.
    let mut chunk: usize = 1024;
    let mut keys: Vec<K> = Vec::new();
    let mut values: Vec<V> = Vec::new();
    // the batch token of a hash map is a bucket index (u32); 8 bytes is ample
    let mut in_token = [0u64; 1];
    let mut out_token = [0u64; 1];
    let mut first = true;
    loop {
        keys.resize(chunk, K::zeroed());
        values.resize(chunk, V::zeroed());
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { in_token.as_ptr() as u64 },
            out_batch: out_token.as_mut_ptr() as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: u32::try_from(chunk).unwrap_or(u32::MAX),
            map_fd: fd.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        let r = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
        let got = (attr.count as usize).min(chunk);
        match r {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                out.extend(keys.iter().copied().zip(values.iter().copied()).take(got));
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && chunk < 1 << 20 => {
                chunk *= 4;
                continue;
            }
            Err(e) => return Err(e),
        }
        out.extend(keys.iter().copied().zip(values.iter().copied()).take(got));
        in_token = out_token;
        first = false;
    }
}

/// Make sure `K`/`V` are plain data of the sizes the map was created with:
/// the kernel checks nothing about our buffers beyond the map's sizes.
pub fn check_sizes<K: Pod, V: Pod>(key_size: u32, value_size: u32) -> bool {
    size_of::<K>() == key_size as usize && size_of::<V>() == value_size as usize
}
