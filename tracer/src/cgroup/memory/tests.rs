//! Tests of [`super`]: the memory parsers, the readers and the bounding limit on scratch
//! directories.

use super::*;

#[test]
fn limits() {
    let parse_limit = |t: &str| parse_memory_limit(t).ok().and_then(Limit::bytes);
    assert_eq!(parse_limit("104857600\n"), Some(100 << 20));
    assert_eq!(parse_limit("max\n"), None);
    assert_eq!(parse_limit("9223372036854771712\n"), None, "v1 unlimited");
    assert_eq!(parse_limit("garbage"), None);
    assert_eq!(parse_memory_limit("67108864\n"), Ok(Limit::Bytes(64 << 20)));
    assert_eq!(parse_memory_limit("max\n"), Ok(Limit::Unlimited));
    // 64 KiB pages round differently.
    assert_eq!(
        parse_memory_limit("9223372036854710272"),
        Ok(Limit::Unlimited)
    );
    assert_eq!(parse_memory_limit(""), Err(ParseError::Empty));
    assert_eq!(
        parse_memory_limit("lots\n"),
        Err(ParseError::NotANumber("lots".to_owned()))
    );
    assert!(parse_memory_limit("-1").is_err());
    assert!(parse_memory_limit("1 2").is_err());
}

#[test]
fn limit_settings_keep_no_limit_apart_from_no_data() {
    assert_eq!(parse_memory_limit("67108864\n"), Ok(Limit::Bytes(64 << 20)));
    assert_eq!(parse_memory_limit("max\n"), Ok(Limit::Unlimited));
    assert_eq!(
        parse_memory_limit("9223372036854771712\n"),
        Ok(Limit::Unlimited),
        "v1 unlimited"
    );
    assert!(parse_memory_limit("").is_err());
    assert!(parse_memory_limit("-1").is_err());
    assert_eq!(Limit::Bytes(5).bytes(), Some(5));
    assert_eq!(Limit::Unlimited.bytes(), None);

    let d = std::env::temp_dir().join(format!("ctrace-limit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let (v1, v2) = (MemoryDir::V1(d.clone()), MemoryDir::V2(d.clone()));
    assert_eq!((v1.read_limit(), v2.read_limit()), (None, None), "no files");
    std::fs::write(d.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
    std::fs::write(d.join("memory.max"), "67108864\n").unwrap();
    assert_eq!(v1.read_limit(), Some(Limit::Unlimited));
    assert_eq!(v2.read_limit(), Some(Limit::Bytes(64 << 20)));
    std::fs::write(d.join("memory.max"), "max\n").unwrap();
    assert_eq!(v2.read_limit(), Some(Limit::Unlimited));
    assert_eq!(MemoryDir::V2(d.join("gone")).read_limit(), None);
    let _ = std::fs::remove_dir_all(&d);
}

/// A limit above the container (a pod's) bounds it when lower than its own; the nearest
/// wins a tie; with no limit anywhere, the container's own directory.
fn bound(dir: MemoryDir, depth: u32, limit: Option<u64>) -> Bounding {
    Bounding { dir, depth, limit }
}

#[test]
fn the_lowest_limit_up_the_tree_bounds_a_cgroup() {
    let root = std::env::temp_dir().join(format!("ctrace-bound-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let leaf = root.join("memory/pod/ctr");
    std::fs::create_dir_all(&leaf).unwrap();
    let limit = |dir: &Path, v: &str| {
        std::fs::write(dir.join("memory.limit_in_bytes"), v).unwrap();
    };
    let mounts = Mounts {
        v2: None,
        v1: [("memory".to_owned(), root.join("memory"))].into(),
    };
    let pod = root.join("memory/pod");
    limit(&leaf, "9223372036854771712\n");
    limit(&pod, "9223372036854771712\n");
    assert_eq!(
        mounts.memory_bounding("/pod/ctr"),
        Some(bound(MemoryDir::V1(leaf.clone()), 0, None)),
        "no limit anywhere: its own"
    );
    limit(&leaf, "104857600\n");
    limit(&pod, "50331648\n");
    assert_eq!(
        mounts.memory_bounding("/pod/ctr"),
        Some(bound(MemoryDir::V1(pod.clone()), 1, Some(48 << 20)))
    );
    limit(&leaf, "50331648\n");
    assert_eq!(
        mounts.memory_bounding("/pod/ctr"),
        Some(bound(MemoryDir::V1(leaf.clone()), 0, Some(48 << 20))),
        "a tie: the nearest"
    );
    // An unreadable ancestor is no limit; an escape is refused.
    std::fs::remove_file(pod.join("memory.limit_in_bytes")).unwrap();
    limit(&leaf, "104857600\n");
    assert_eq!(
        mounts.memory_bounding("/pod/ctr"),
        Some(bound(MemoryDir::V1(leaf.clone()), 0, Some(100 << 20)))
    );
    assert_eq!(mounts.memory_bounding("/pod/../../etc"), None);
    // Pure v2, systemd driver: a pod slice's `memory.max` above the container's scope.
    let v2root = root.join("unified");
    let slice = v2root.join("kubepods.slice/kubepods-pod1.slice");
    let scope = slice.join("cri-containerd-abc.scope");
    std::fs::create_dir_all(&scope).unwrap();
    std::fs::write(v2root.join("kubepods.slice/memory.max"), "max\n").unwrap();
    std::fs::write(slice.join("memory.max"), "67108864\n").unwrap();
    std::fs::write(scope.join("memory.max"), "max\n").unwrap();
    let v2 = Mounts {
        v2: Some(v2root.clone()),
        v1: BTreeMap::new(),
    };
    let path = "/kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope";
    assert_eq!(
        v2.memory_bounding(path),
        Some(bound(MemoryDir::V2(slice.clone()), 1, Some(64 << 20)))
    );
    std::fs::write(scope.join("memory.max"), "33554432\n").unwrap();
    assert_eq!(
        v2.memory_bounding(path),
        Some(bound(MemoryDir::V2(scope.clone()), 0, Some(32 << 20)))
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn reads_v1_and_v2_directories() {
    let d = std::env::temp_dir().join(format!("ctrace-mem-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("memory.limit_in_bytes"), "104857600\n").unwrap();
    std::fs::write(d.join("memory.usage_in_bytes"), "104800000\n").unwrap();
    std::fs::write(d.join("memory.max_usage_in_bytes"), "104857600\n").unwrap();
    std::fs::write(d.join("memory.failcnt"), "345\n").unwrap();
    std::fs::write(
        d.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    )
    .unwrap();
    let v1 = MemoryDir::V1(d.clone()).read();
    assert_eq!(v1.limit_bytes, Some(100 << 20));
    assert_eq!(
        (v1.failcnt, v1.oom_kills, v1.oom_events),
        (Some(345), Some(1), None)
    );
    let v2 = MemoryDir::V2(d.clone()).read();
    assert_eq!(
        v2,
        MemoryStats::default(),
        "v2 files absent: no data, not zero"
    );
    std::fs::write(d.join("memory.max"), "max\n").unwrap();
    std::fs::write(d.join("memory.current"), "4096\n").unwrap();
    std::fs::write(
        d.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
    )
    .unwrap();
    let v2 = MemoryDir::V2(d.clone()).read();
    assert_eq!(
        (v2.limit_bytes, v2.usage_bytes, v2.oom_kills, v2.max_events),
        (None, Some(4096), Some(1), Some(3))
    );
    assert_eq!(v2.breakdown, None, "no memory.stat: no breakdown");
    let _ = std::fs::remove_dir_all(&d);
}

/// A v2 `memory.stat` of a `-m 64m` container whose /dev/shm was filled (Linux 6.x).
const V2_STAT: &str = "\
anon 1261568
file 65810432
kernel 1335296
kernel_stack 49152
pagetables 110592
sec_pagetables 0
percpu 0
sock 4096
vmalloc 0
shmem 65011712
zswap 0
file_mapped 0
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
inactive_anon 65863680
active_anon 409600
inactive_file 602112
active_file 196608
unevictable 0
slab_reclaimable 688128
slab_unreclaimable 442368
slab 1130496
pgfault 17271
";

#[test]
fn breakdown_from_a_v2_memory_stat() {
    let b = MemoryBreakdown::from_v2(&parse_flat_keyed(V2_STAT), Some(0));
    assert_eq!(
        b,
        MemoryBreakdown {
            anon: Some(1261568),
            file: Some(65810432),
            file_active: Some(196608),
            file_inactive: Some(602112),
            shmem: Some(65011712),
            kernel: Some(1335296),
            sock: Some(4096),
            swap: Some(0),
            stale: false,
            victim_anon_added: false,
        }
    );
    // `file` includes shmem: the page cache alone is the rest.
    assert_eq!(b.file_without_shmem(), Some(65810432 - 65011712));
    // Before Linux 5.18 there is no `kernel`: its parts add up; without swap
    // accounting there is no memory.swap.current.
    let old = "anon 4096\nfile 0\nkernel_stack 16384\nslab 8192\npagetables 4096\n";
    let b = MemoryBreakdown::from_v2(&parse_flat_keyed(old), None);
    assert_eq!((b.kernel, b.swap, b.sock), (Some(28672), None, None));
    assert_eq!((b.anon, b.file, b.shmem), (Some(4096), Some(0), None));
    let none = MemoryBreakdown::from_v2(&parse_flat_keyed(""), None);
    assert_eq!(none, MemoryBreakdown::default(), "unknown, never 0");
    assert_eq!(none.file_without_shmem(), None);
}

/// A v1 `memory.stat` of a `-m 32m` container whose `tail /dev/zero` holds its memory.
const V1_STAT: &str = "\
cache 540672
rss 32854016
rss_huge 0
shmem 0
mapped_file 0
dirty 0
writeback 0
swap 0
inactive_anon 32841728
active_anon 12288
inactive_file 405504
active_file 135168
unevictable 0
hierarchical_memory_limit 33554432
hierarchical_memsw_limit 67108864
total_cache 540672
total_rss 32854016
total_rss_huge 0
total_shmem 0
total_mapped_file 0
total_swap 0
total_inactive_anon 32841728
total_active_anon 12288
total_inactive_file 405504
total_active_file 135168
";

#[test]
fn breakdown_from_a_v1_memory_stat() {
    let b = MemoryBreakdown::from_v1(
        &parse_flat_keyed(V1_STAT),
        Some(155648),
        Some(33554432 + 1048576),
        Some(33554432),
    );
    assert_eq!(
        b,
        MemoryBreakdown {
            anon: Some(32854016),
            file: Some(540672),
            file_active: Some(135168),
            file_inactive: Some(405504),
            shmem: Some(0),
            kernel: Some(155648),
            sock: None,
            swap: Some(1048576),
            stale: false,
            victim_anon_added: false,
        }
    );
    // The hierarchical totals win over the cgroup's own figures; without them, the own.
    let own = "rss 100\ncache 300\nshmem 200\ntotal_rss 1000\n";
    let b = MemoryBreakdown::from_v1(&parse_flat_keyed(own), None, None, Some(4096));
    assert_eq!(
        (b.anon, b.file, b.shmem),
        (Some(1000), Some(300), Some(200))
    );
    assert_eq!(b.file_without_shmem(), Some(100));
    assert_eq!(
        (b.kernel, b.swap),
        (None, None),
        "no kmem, no memsw: unknown"
    );
}

#[test]
fn reads_the_breakdown_with_the_other_figures() {
    let d = std::env::temp_dir().join(format!("ctrace-stat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("memory.stat"), V1_STAT).unwrap();
    std::fs::write(d.join("memory.usage_in_bytes"), "33554432\n").unwrap();
    std::fs::write(d.join("memory.memsw.usage_in_bytes"), "33554432\n").unwrap();
    std::fs::write(d.join("memory.kmem.usage_in_bytes"), "155648\n").unwrap();
    let b = MemoryDir::V1(d.clone()).read().breakdown.unwrap();
    assert_eq!(
        (b.anon, b.kernel, b.swap),
        (Some(32854016), Some(155648), Some(0))
    );
    std::fs::write(d.join("memory.stat"), V2_STAT).unwrap();
    std::fs::write(d.join("memory.swap.current"), "8192\n").unwrap();
    let b = MemoryDir::V2(d.clone()).read().breakdown.unwrap();
    assert_eq!((b.shmem, b.swap), (Some(65011712), Some(8192)));
    let _ = std::fs::remove_dir_all(&d);
}
