//! Data gathering and pure logic behind `ctrace inspect`: a container's capabilities,
//! namespaces and process tree, and the comparison of two containers.
//!
//! - [`caps`]: `/proc/<pid>/status` (capability sets, no_new_privs, seccomp, ids) and the
//!   OCI default capability set.
//! - [`namespaces`]: `/proc/<pid>/ns/*` inodes and which namespaces are shared with the host
//!   or with other containers.
//! - [`proctree`]: `/proc/<pid>/stat`, the process tree of a container and its text rendering.
//! - [`resources`]: limits and usage from the cgroup files (v1 and v2), each value known,
//!   "no limit", or unknown with the reason.
//! - [`diff`]: differences between two containers, as rows and as a side-by-side table.
//! - [`report`]: the report of one container, which [`gather`](gather()) fills in from all of
//!   the above and the journal, and [`render`](render()) shows to people.
//!
//! The parsers are pure and never panic on any input; the functions that read `/proc`
//! tolerate processes that exit while they are being read.

pub mod caps;
pub mod diff;
pub mod gather;
pub mod namespaces;
pub mod proctree;
pub mod render;
pub mod report;
pub mod resources;

#[cfg(test)]
mod tests;

pub use crate::{
    cgroup::{CgroupDir, Reading},
    host::proc::is_vanished,
};

pub use self::{
    caps::{
        cap_number, describe_diff, parse_status, read_proc_caps, read_status, read_status_at,
        CapSet, ProcCaps, ProcStatus, SeccompMode, OCI_DEFAULT_CAPS,
    },
    diff::{cap_summary, diff, render_side_by_side, ContainerView, DiffRow},
    gather::{diff_labels, gather, read_incidents, Env, HostCaps, Target},
    namespaces::{
        compare, parse_ns_link, read_host_ns, read_host_ns_at, read_ns, read_ns_at, HostNs,
        HostNsSource, NsSet, NsShare, NsType,
    },
    proctree::{
        all_parents, descendants, parse_cmdline, parse_pid_list, parse_stat, process_tree,
        process_tree_at, process_tree_from_root, process_tree_from_root_at, read_cgroup_pids,
        read_stat_at, render_tree, tree_rows, ProcNode, ProcTree, StatLine, TreeRow, UserNames,
    },
    render::render,
    report::{
        diff_json, runtime_default, Capabilities, Change, Comparison, Identity, Incident,
        Incidents, Namespaces, Report, SetView, INCIDENT_LIMIT, RUNC_SPEC_DEFAULT_CAPS,
    },
    resources::{read_resources, Resources},
};
