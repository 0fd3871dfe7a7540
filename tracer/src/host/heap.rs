//! Giving the allocator's free pages back to the kernel.
//!
//! Start-up parses the kernel's BTF (several MiB of types) and seeds the process table; glibc
//! keeps the freed pages in its heap, where they count in the agent's RSS for as long as it
//! runs. A trim after start-up, and once in a while after bursts, returns them.

/// Returns free heap pages to the kernel. Whether anything was returned.
pub fn trim() -> bool {
    trim_impl()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_impl() -> bool {
    // SAFETY: malloc_trim only walks the allocator's own free lists; no pointer is passed.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_impl() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    fn rss_pages() -> u64 {
        crate::host::proc::rss_pages_and_comm(std::process::id())
            .expect("own statm")
            .0
    }

    #[test]
    fn a_trim_gives_back_free_pages_the_heap_kept() {
        // 256 blocks of 64 KiB (below the mmap threshold: heap memory), the last one kept:
        // the freed 16 MiB lie below a block in use, so free() cannot shrink the heap.
        let mut blocks: Vec<Vec<u8>> = (0..257).map(|i| vec![i as u8; 64 << 10]).collect();
        let pin = blocks.pop();
        drop(blocks);
        let before = rss_pages();
        super::trim();
        let after = rss_pages();
        let page = procfs::page_size();
        assert!(
            before.saturating_sub(after) * page >= 8 << 20,
            "RSS {before} -> {after} pages"
        );
        assert_eq!(pin.map(|b| b.len()), Some(64 << 10));
    }
}
