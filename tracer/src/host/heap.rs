//! Giving the allocator's free pages back to the kernel.
//!
//! Start-up parses the kernel's BTF (several MiB of types) and seeds the process table; glibc
//! keeps the freed pages in its heap, where they count in the agent's RSS for as long as it
//! runs. A trim after start-up, and once in a while after bursts, returns them.
//!
//! glibc also gives each new thread an arena of its own (up to eight per CPU). The agent's few
//! threads (the event loop, the journal's writer, start-up's helpers) allocate little, but each
//! arena keeps its own slack between live blocks, which no trim can return: 1.4 MiB of the
//! agent's 25 MiB with 100 containers. One arena holds the same blocks with less; the threads'
//! caches (tcache) keep most small allocations off its lock.

/// Has every thread allocate from the one main arena, unless the environment already chose
/// (`MALLOC_ARENA_MAX`, or `arena_max` in `GLIBC_TUNABLES`: glibc reads those itself). Called
/// first thing in `main`, before any thread starts. Whether the limit was set here.
pub fn one_arena() -> bool {
    let chosen = |name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    if !arenas_left_to_us(
        chosen("MALLOC_ARENA_MAX").as_deref(),
        chosen("GLIBC_TUNABLES").as_deref(),
    ) {
        return false;
    }
    one_arena_impl()
}

/// Whether the environment leaves the arena count to the program.
fn arenas_left_to_us(arena_max: Option<&str>, tunables: Option<&str>) -> bool {
    arena_max.is_none()
        && !tunables.is_some_and(|t| {
            t.split(':')
                .any(|kv| kv.split('=').next() == Some("glibc.malloc.arena_max"))
        })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_arena_impl() -> bool {
    // SAFETY: mallopt only sets one of the allocator's parameters; M_ARENA_MAX takes a count.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_arena_impl() -> bool {
    false
}

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

#[cfg(test)]
mod choice_tests {
    use super::arenas_left_to_us;

    #[test]
    fn the_environment_s_arena_choice_wins() {
        assert!(arenas_left_to_us(None, None));
        assert!(arenas_left_to_us(None, Some("glibc.malloc.tcache_count=0")));
        assert!(!arenas_left_to_us(Some("4"), None));
        assert!(!arenas_left_to_us(Some(""), None));
        assert!(!arenas_left_to_us(
            None,
            Some("glibc.malloc.check=0:glibc.malloc.arena_max=2")
        ));
        // A prefix of the name is another tunable.
        assert!(arenas_left_to_us(None, Some("glibc.malloc.arena_maxx=2")));
    }
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
