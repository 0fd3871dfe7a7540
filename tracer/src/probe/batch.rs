//! Reading a whole per-CPU map (hash or array) in a few system calls (`BPF_MAP_LOOKUP_BATCH`).
//!
//! aya's map iterator costs two system calls per entry (next key, then lookup). The session
//! reads the capability de-duplication map every second and the run-queue map every throttle
//! tick: with thousands of slots that was most of an idle agent's CPU. The kernel's batch
//! lookup copies many entries per call (hash maps since Linux 5.6); where it is refused, the
//! caller falls back to iterating.

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd},
};

/// `BPF_MAP_LOOKUP_BATCH` in `enum bpf_cmd`.
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// Entries asked for per call. A call fails with `ENOSPC` only when one hash bucket holds more
/// entries than that, and then it is retried with room for more.
const CHUNK: usize = 256;

/// The `batch` member of `union bpf_attr`. The kernel accepts a shorter attribute than its
/// own, provided that what it has beyond it is zero.
#[repr(C)]
#[derive(Default)]
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

/// Every entry of the per-CPU hash or array map `fd` (key `K`, `u32` for an array; value `V`
/// on each of `cpus` possible CPUs). Errors with the kernel's error when it refuses batch
/// lookups (too old, or another map type): the caller then iterates.
pub fn per_cpu_entries<K: Copy, V: Copy>(
    fd: BorrowedFd<'_>,
    cpus: usize,
) -> io::Result<Vec<(K, Vec<V>)>> {
    // Each CPU's value is 8-byte aligned in the kernel's per-CPU copy-out.
    let stride = size_of::<V>().next_multiple_of(8);
    let mut chunk = CHUNK;
    let mut out = Vec::new();
    // The kernel's batch position (a bucket index); `None` before the first call.
    let mut position: Option<u64> = None;
    loop {
        let mut keys = vec![0u8; chunk * size_of::<K>()];
        let mut values = vec![0u8; chunk * stride * cpus];
        let mut next = 0u64;
        let mut attr = BatchAttr {
            in_batch: position
                .as_ref()
                .map_or(0, |p| std::ptr::from_ref(p) as u64),
            out_batch: std::ptr::from_mut(&mut next) as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: u32::try_from(chunk).unwrap_or(u32::MAX),
            map_fd: u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX),
            ..BatchAttr::default()
        };
        // SAFETY: `attr` points at buffers of `count` keys and `count × cpus` values of the
        // map's sizes (the caller's `K` and `V` are the map's key and value types) and at
        // 8-byte batch positions, all alive for the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                std::ptr::from_mut(&mut attr),
                size_of::<BatchAttr>(),
            )
        };
        let err = (ret < 0).then(io::Error::last_os_error);
        let done = match &err {
            None => false,
            Some(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
            Some(e) if e.raw_os_error() == Some(libc::ENOSPC) && attr.count == 0 => {
                chunk *= 4;
                continue;
            }
            Some(_) => return Err(err.unwrap_or_else(io::Error::last_os_error)),
        };
        let got = usize::try_from(attr.count).unwrap_or(0).min(chunk);
        out.extend((0..got).map(|i| entry(&keys, &values, i, cpus, stride)));
        if done {
            return Ok(out);
        }
        position = Some(next);
    }
}

/// Entry `i` of a batch: its key and its value on each CPU.
fn entry<K: Copy, V: Copy>(
    keys: &[u8],
    values: &[u8],
    i: usize,
    cpus: usize,
    stride: usize,
) -> (K, Vec<V>) {
    let k = &keys[i * size_of::<K>()..][..size_of::<K>()];
    // SAFETY: `k` holds `size_of::<K>()` bytes the kernel wrote from a key of the map, whose
    // type is `K` (a plain-old-data type of tracer-common); read unaligned.
    let key = unsafe { std::ptr::read_unaligned(k.as_ptr().cast::<K>()) };
    let per_cpu = (0..cpus)
        .map(|cpu| {
            let v = &values[(i * cpus + cpu) * stride..][..size_of::<V>()];
            // SAFETY: as for the key, for one CPU's copy of the value.
            unsafe { std::ptr::read_unaligned(v.as_ptr().cast::<V>()) }
        })
        .collect();
    (key, per_cpu)
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};

    use super::*;

    /// `BPF_MAP_CREATE`, `BPF_MAP_UPDATE_ELEM` and `BPF_MAP_TYPE_PERCPU_HASH`.
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
    const PERCPU_HASH: u32 = 5;

    fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
        // SAFETY: `attr` is the command's attribute, alive for the call.
        let r =
            unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size_of::<T>()) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    /// A new map of the kernel's `map_type`; `None` without the privilege to create maps.
    fn create(map_type: u32, key_size: u32, value_size: u32, entries: u32) -> Option<OwnedFd> {
        #[repr(C)]
        struct Create {
            map_type: u32,
            key_size: u32,
            value_size: u32,
            max_entries: u32,
        }
        let mut attr = Create {
            map_type,
            key_size,
            value_size,
            max_entries: entries,
        };
        match bpf(BPF_MAP_CREATE, &mut attr) {
            // SAFETY: the kernel returned a new descriptor that nothing else owns.
            Ok(fd) => Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
            Err(e) => {
                println!("SKIP: cannot create a BPF map here ({e}): run as root");
                None
            }
        }
    }

    /// Writes the value at `value` (every CPU's copy, as the kernel lays them out) under the
    /// key at `key`.
    fn update<K>(fd: &OwnedFd, key: &K, value: *const u8) {
        #[repr(C)]
        struct Update {
            map_fd: u32,
            _pad: u32,
            key: u64,
            value: u64,
            flags: u64,
        }
        let mut attr = Update {
            map_fd: fd.as_raw_fd() as u32,
            _pad: 0,
            key: std::ptr::from_ref(key) as u64,
            value: value as u64,
            flags: 0,
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).expect("update");
    }

    /// A per-CPU hash map of `u64` keys and `[u32; 3]` values: 12 bytes, which the kernel
    /// pads to 16 per CPU, the case the stride is for.
    fn map(entries: u32) -> Option<OwnedFd> {
        create(PERCPU_HASH, 8, 12, entries)
    }

    fn put(fd: &OwnedFd, key: u64, per_cpu: &[[u32; 3]]) {
        // Each CPU's 12 bytes padded to 16, as the kernel expects them.
        let mut values = vec![0u8; per_cpu.len() * 16];
        for (cpu, v) in per_cpu.iter().enumerate() {
            for (j, word) in v.iter().enumerate() {
                values[cpu * 16 + j * 4..][..4].copy_from_slice(&word.to_ne_bytes());
            }
        }
        update(fd, &key, values.as_ptr());
    }

    #[test]
    fn a_batch_read_returns_every_entry_with_each_cpus_value() {
        let cpus = aya::util::nr_cpus().expect("possible CPUs");
        // More entries than one call takes, so that reading goes on from the batch position.
        let n = CHUNK as u64 * 3 + 17;
        let Some(fd) = map(n as u32) else { return };
        for key in 0..n {
            let per_cpu: Vec<[u32; 3]> = (0..cpus as u32)
                .map(|cpu| [key as u32, cpu, 0xdead_0000 | cpu])
                .collect();
            put(&fd, key, &per_cpu);
        }
        let mut got = per_cpu_entries::<u64, [u32; 3]>(fd.as_fd(), cpus).expect("batch lookup");
        got.sort_by_key(|(k, _)| *k);
        assert_eq!(got.len() as u64, n);
        for (i, (key, values)) in got.iter().enumerate() {
            assert_eq!(*key, i as u64);
            assert_eq!(values.len(), cpus);
            for (cpu, v) in values.iter().enumerate() {
                assert_eq!(*v, [*key as u32, cpu as u32, 0xdead_0000 | cpu as u32]);
            }
        }
    }

    #[test]
    fn an_empty_map_reads_as_empty() {
        let Some(fd) = map(8) else { return };
        let cpus = aya::util::nr_cpus().expect("possible CPUs");
        let got = per_cpu_entries::<u64, [u32; 3]>(fd.as_fd(), cpus).expect("batch lookup");
        assert!(got.is_empty());
    }

    #[test]
    fn a_map_that_is_not_a_hash_is_refused_for_the_caller_to_iterate() {
        let cpus = aya::util::nr_cpus().expect("possible CPUs");
        // Not a map at all: the kernel's error comes back.
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(per_cpu_entries::<u64, u64>(file.as_fd(), cpus).is_err());
    }

    #[test]
    fn a_per_cpu_array_reads_every_slot_in_one_batch() {
        const PERCPU_ARRAY: u32 = 6;
        let cpus = aya::util::nr_cpus().expect("possible CPUs");
        let Some(fd) = create(PERCPU_ARRAY, 4, 8, 40) else {
            return;
        };
        let values = |slot: u32| -> Vec<u64> {
            (0..cpus as u64)
                .map(|cpu| u64::from(slot) * 100 + cpu)
                .collect()
        };
        for slot in 0..40u32 {
            update(&fd, &slot, values(slot).as_ptr().cast());
        }
        let got = per_cpu_entries::<u32, u64>(fd.as_fd(), cpus).expect("batch lookup");
        assert_eq!(got.len(), 40);
        for (slot, v) in got {
            assert_eq!(v, values(slot), "slot {slot}");
        }
    }
}
