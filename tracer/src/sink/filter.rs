//! Which records a watch shows: by container ([`Selector`]: name, id or id prefix, pod,
//! `NAMESPACE/NAME`, `RUNTIME/ID`), runtime, and whether host processes are included. By
//! default only what touches a container is shown. A live stream cannot know which containers
//! will come, so a selector keeps every container it matches at all ([`Selector::selects`]).

use crate::{
    container::Runtime,
    explain::Incident,
    resolve::{Attribution, Attrs, Container},
    select::Selector,
};

#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Container selectors; empty: any container.
    pub containers: Vec<Selector>,
    /// Runtimes; empty: any.
    pub runtimes: Vec<Runtime>,
    /// Show events of host processes that touch no container.
    pub include_host: bool,
}

impl Filter {
    /// Whether a container is selected by `--container`/`--runtime`.
    pub fn selects(&self, c: &Container) -> bool {
        let by_name = self.containers.is_empty() || self.containers.iter().any(|s| s.selects(c));
        let by_runtime = self.runtimes.is_empty() || self.runtimes.contains(&c.runtime);
        by_name && by_runtime
    }

    fn narrowed(&self) -> bool {
        !self.containers.is_empty() || !self.runtimes.is_empty()
    }

    fn attribution(&self, a: &Attribution) -> bool {
        a.container().is_some_and(|c| self.selects(c))
    }

    /// An event passes when one of its tasks is in a selected container, or, with
    /// `include_host` and no container selection, always.
    pub fn event(&self, attrs: &Attrs) -> bool {
        if self.attribution(&attrs.process)
            || attrs.other.as_ref().is_some_and(|o| self.attribution(o))
        {
            return true;
        }
        self.include_host && !self.narrowed()
    }

    pub fn incident(&self, i: &Incident) -> bool {
        let parties: Vec<&Attribution> = match i {
            Incident::Kill(k) => vec![&k.sender.attribution, &k.target.attribution],
            Incident::Oom(o) => vec![&o.victim.attribution, &o.trigger.attribution],
            Incident::ContainerStart { container, .. }
            | Incident::ContainerStop { container, .. } => {
                return self.selects(container);
            }
            Incident::RestartLoop(l) => return self.selects(&l.container),
        };
        parties.iter().any(|a| self.attribution(a)) || (self.include_host && !self.narrowed())
    }

    pub fn container(&self, c: &Container) -> bool {
        self.selects(c)
    }
}

/// Parse `--runtime` values.
pub fn parse_runtime(s: &str) -> Result<Runtime, String> {
    match s.to_ascii_lowercase().as_str() {
        "docker" => Ok(Runtime::Docker),
        "containerd" | "ctr" => Ok(Runtime::Containerd),
        "runc" => Ok(Runtime::Runc),
        "crio" | "cri-o" => Ok(Runtime::CriO),
        "podman" => Ok(Runtime::Podman),
        other => Err(format!(
            "unknown runtime {other:?} (known: docker, containerd, runc, crio, podman)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn c(name: &str, id: &str, rt: Runtime) -> Attribution {
        Attribution::Container(Arc::new(Container::named(id, name, rt)))
    }

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    fn attrs(p: Attribution, o: Option<Attribution>) -> Attrs {
        Attrs {
            process: p,
            other: o,
        }
    }

    #[test]
    fn default_shows_what_touches_a_container() {
        let f = Filter::default();
        assert!(f.event(&attrs(c("web", "abc", Runtime::Docker), None)));
        assert!(!f.event(&attrs(Attribution::Host, None)));
        assert!(
            f.event(&attrs(
                Attribution::Host,
                Some(c("web", "abc", Runtime::Docker))
            )),
            "host kills a container"
        );
        let host = Filter {
            include_host: true,
            ..Filter::default()
        };
        assert!(host.event(&attrs(Attribution::Host, None)));
    }

    #[test]
    fn by_name_id_prefix_and_runtime() {
        let f = Filter {
            containers: vec![sel("web"), sel("9f0a")],
            ..Filter::default()
        };
        assert!(f.event(&attrs(c("web", "abc", Runtime::Docker), None)));
        assert!(f.event(&attrs(c("other", "9f0a3b", Runtime::Runc), None)));
        assert!(!f.event(&attrs(c("other", "123", Runtime::Runc), None)));
        let host = Filter {
            containers: vec![sel("web")],
            include_host: true,
            ..Filter::default()
        };
        assert!(
            !host.event(&attrs(Attribution::Host, None)),
            "--container narrows even with --host"
        );
        let rt = Filter {
            runtimes: vec![Runtime::Containerd],
            ..Filter::default()
        };
        assert!(!rt.event(&attrs(c("web", "abc", Runtime::Docker), None)));
        assert!(rt.event(&attrs(c("r1", "r1", Runtime::Containerd), None)));
        assert_eq!(parse_runtime("CTR"), Ok(Runtime::Containerd));
        assert!(parse_runtime("lxc").is_err());
    }
}
