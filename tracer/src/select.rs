//! Container selection: one selector, by name, id, id prefix, pod, namespace or runtime, for
//! every command that names a container (`watch --container`, `top --container`, `inspect`,
//! `postmortem`, `history --container`), with Docker's rules.
//!
//! A selector is `TERM`, `NAMESPACE/TERM`, `RUNTIME/TERM` or `RUNTIME/NAMESPACE/TERM`, so a
//! journal key (`docker/<id>`, `containerd/<namespace>/<id>`, `runc/<id>`) is a selector too.
//! `RUNTIME` is one of `docker`, `containerd`, `runc`, `crio`, `podman`; `NAMESPACE` is a
//! containerd namespace or a Kubernetes pod's namespace. `TERM` matches a container, from the
//! strongest match to the weakest ([`Match`]):
//!
//! 1. its full id;
//! 2. its exact name;
//! 3. its Kubernetes pod's name;
//! 4. a prefix of its id, of [`MIN_PREFIX`] characters or more.
//!
//! Everything compares case-sensitively, as Docker does. Among candidates only the strongest
//! kind of match counts ([`Selector::best`]): an exact name wins over a container whose id
//! merely starts with it. A command that needs one container ([`Selector::resolve`]) fails
//! with [`SelectError::Ambiguous`], listing the candidates, when several remain. A live
//! filter ([`Selector::selects`]) takes every container that matches at all, since the
//! containers it will see are not known in advance.
//!
//! Pure: callers hand over their own candidates through [`Selectable`].

use std::{borrow::Cow, fmt};

use crate::container::{short_id, Runtime};

/// The shortest id prefix a selector accepts.
pub const MIN_PREFIX: usize = 3;

const RUNTIMES: [Runtime; 5] = [
    Runtime::Docker,
    Runtime::Containerd,
    Runtime::Runc,
    Runtime::CriO,
    Runtime::Podman,
];

/// The journal key of a container: `containerd/<namespace>/<id>`, else `<runtime>/<id>`.
pub fn key(runtime: &str, namespace: Option<&str>, id: &str) -> String {
    // Made for every live container several times a tick: `join` sizes it first, one
    // allocation.
    match (runtime, namespace) {
        ("containerd", Some(ns)) => ["containerd", ns, id].join("/"),
        _ => [runtime, id].join("/"),
    }
}

/// What a selector looks at in a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Candidate<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
    /// `docker`, `containerd`, ... (any string: journal rows can say `unknown`).
    pub runtime: &'a str,
    /// containerd namespace.
    pub namespace: Option<&'a str>,
    /// Kubernetes pod name and namespace.
    pub pod: Option<(Cow<'a, str>, Cow<'a, str>)>,
}

impl Candidate<'_> {
    /// The journal key.
    pub fn key(&self) -> String {
        key(self.runtime, self.namespace, self.id)
    }

    fn describe(&self) -> Described {
        Described {
            name: self.name.map(str::to_owned),
            id: self.id.to_owned(),
            runtime: self.runtime.to_owned(),
            key: self.key(),
        }
    }
}

/// Something a selector can match: a live container, a journal row.
pub trait Selectable {
    fn candidate(&self) -> Candidate<'_>;
}

impl<T: Selectable + ?Sized> Selectable for &T {
    fn candidate(&self) -> Candidate<'_> {
        (**self).candidate()
    }
}

impl<T: Selectable + ?Sized> Selectable for std::sync::Arc<T> {
    fn candidate(&self) -> Candidate<'_> {
        (**self).candidate()
    }
}

impl Selectable for Candidate<'_> {
    fn candidate(&self) -> Candidate<'_> {
        self.clone()
    }
}

/// How a selector matched a container, strongest first (the order compares so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Match {
    /// The full id (so also the journal key).
    Id,
    /// The exact name.
    Name,
    /// The Kubernetes pod's name.
    Pod,
    /// A prefix of the id ([`MIN_PREFIX`] characters or more).
    Prefix,
}

impl Match {
    /// Anything but an id prefix.
    pub fn is_exact(self) -> bool {
        self != Match::Prefix
    }
}

/// A container named by a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    raw: String,
    runtime: Option<Runtime>,
    namespace: Option<String>,
    term: String,
}

/// The strongest matches among candidates, in the candidates' order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Best<T> {
    pub level: Match,
    pub items: Vec<T>,
}

/// One of several containers a selector names, for an error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub name: Option<String>,
    pub id: String,
    pub runtime: String,
    pub key: String,
}

impl fmt::Display for Described {
    /// `web (id 1ed420a3b4c5, docker, key docker/<id>)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (id {}, {}, key {})",
            self.name.as_deref().unwrap_or("-"),
            short_id(&self.id),
            self.runtime,
            self.key
        )
    }
}

/// Why a selector does not name one container. The messages are not escaped for a
/// terminal: callers do that.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error(
        "{0:?} is not a container selector (NAME, ID, ID prefix, POD, NAMESPACE/NAME or \
         RUNTIME/[NAMESPACE/]ID)"
    )]
    Invalid(String),
    #[error("no container matches \"{pattern}\"")]
    NotFound { pattern: String },
    #[error(
        "\"{pattern}\" matches {} containers: {}",
        candidates.len(),
        candidates.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    Ambiguous {
        pattern: String,
        candidates: Vec<Described>,
    },
}

impl Selector {
    /// `TERM`, `NAMESPACE/TERM`, `RUNTIME/TERM` or `RUNTIME/NAMESPACE/TERM` (see the module
    /// documentation). Empty parts and more than three are refused.
    pub fn parse(s: &str) -> Result<Selector, SelectError> {
        let invalid = || SelectError::Invalid(s.to_owned());
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(invalid());
        }
        let runtime = |p: &str| RUNTIMES.into_iter().find(|r| r.as_str() == p);
        let (runtime, namespace, term) = match parts.as_slice() {
            [term] => (None, None, *term),
            [first, term] => match runtime(first) {
                Some(rt) => (Some(rt), None, *term),
                None => (None, Some(*first), *term),
            },
            [rt, ns, term] => (Some(runtime(rt).ok_or_else(invalid)?), Some(*ns), *term),
            _ => return Err(invalid()),
        };
        Ok(Selector {
            raw: s.to_owned(),
            runtime,
            namespace: namespace.map(str::to_owned),
            term: term.to_owned(),
        })
    }

    /// The selector as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// How `c` matches, if it does.
    pub fn matches(&self, c: &Candidate<'_>) -> Option<Match> {
        if self.runtime.is_some_and(|rt| rt.as_str() != c.runtime) {
            return None;
        }
        if let Some(ns) = self.namespace.as_deref() {
            let pod_ns = c.pod.as_ref().map(|(_, pns)| pns.as_ref());
            if c.namespace != Some(ns) && pod_ns != Some(ns) {
                return None;
            }
        }
        let t = self.term.as_str();
        if c.id == t {
            Some(Match::Id)
        } else if c.name == Some(t) {
            Some(Match::Name)
        } else if c.pod.as_ref().is_some_and(|(name, _)| name == t) {
            Some(Match::Pod)
        } else if t.chars().count() >= MIN_PREFIX && c.id.starts_with(t) {
            Some(Match::Prefix)
        } else {
            None
        }
    }

    /// Whether `c` matches at all: the rule of a live filter.
    pub fn selects(&self, c: &impl Selectable) -> bool {
        self.matches(&c.candidate()).is_some()
    }

    /// The indices of the strongest matches, in order; `None` when nothing matches.
    pub fn best_indices<T: Selectable>(&self, items: &[T]) -> Option<(Match, Vec<usize>)> {
        let hits: Vec<(usize, Match)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, c)| self.matches(&c.candidate()).map(|m| (i, m)))
            .collect();
        let level = hits.iter().map(|(_, m)| *m).min()?;
        let best = hits
            .into_iter()
            .filter(|(_, m)| *m == level)
            .map(|(i, _)| i)
            .collect();
        Some((level, best))
    }

    /// The strongest matches, in order (Docker's rule: a full id beats a name, a name a pod,
    /// a pod an id prefix); `None` when nothing matches.
    pub fn best<T: Selectable>(&self, items: Vec<T>) -> Option<Best<T>> {
        let (level, keep) = self.best_indices(&items)?;
        let items = items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(i))
            .map(|(_, t)| t)
            .collect();
        Some(Best { level, items })
    }

    /// The index of the one container the selector names: the single strongest match.
    /// Several (an ambiguous prefix, a name in two namespaces): [`SelectError::Ambiguous`].
    pub fn resolve<T: Selectable>(&self, items: &[T]) -> Result<usize, SelectError> {
        match self.best_indices(items) {
            None => Err(self.not_found()),
            Some((_, hits)) if hits.len() == 1 => Ok(hits[0]),
            Some((_, hits)) => Err(self.ambiguous(hits.iter().map(|&i| &items[i]))),
        }
    }

    pub fn not_found(&self) -> SelectError {
        SelectError::NotFound {
            pattern: self.raw.clone(),
        }
    }

    /// The error listing `candidates`.
    pub fn ambiguous<T: Selectable>(&self, candidates: impl IntoIterator<Item = T>) -> SelectError {
        SelectError::Ambiguous {
            pattern: self.raw.clone(),
            candidates: candidates
                .into_iter()
                .map(|c| c.candidate().describe())
                .collect(),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1ed420a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f";
    const ID2: &str = "1ed4ffa3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f";

    fn c<'a>(runtime: &'a str, id: &'a str, name: Option<&'a str>) -> Candidate<'a> {
        Candidate {
            id,
            name,
            runtime,
            namespace: (runtime == "containerd").then_some("default"),
            pod: None,
        }
    }

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    fn best(s: &str, all: &[Candidate<'_>]) -> Option<(Match, Vec<usize>)> {
        sel(s).best_indices(all)
    }

    #[test]
    fn keys_name_a_namespace_only_for_containerd() {
        assert_eq!(key("docker", None, "abc"), "docker/abc");
        assert_eq!(key("docker", Some("ns"), "abc"), "docker/abc");
        assert_eq!(
            key("containerd", Some("k8s.io"), "abc"),
            "containerd/k8s.io/abc"
        );
        assert_eq!(key("containerd", None, "abc"), "containerd/abc");
        assert_eq!(key("runc", None, "box"), "runc/box");
    }

    #[test]
    fn parse_forms() {
        let s = sel("web");
        assert_eq!(
            (s.runtime, s.namespace.as_deref(), s.term.as_str()),
            (None, None, "web")
        );
        let s = sel("docker/1ed4");
        assert_eq!(s.runtime, Some(Runtime::Docker));
        assert_eq!(s.term, "1ed4");
        let s = sel("prod/web-1");
        assert_eq!((s.runtime, s.namespace.as_deref()), (None, Some("prod")));
        let s = sel("containerd/default/x");
        assert_eq!(
            (s.runtime, s.namespace.as_deref(), s.term.as_str()),
            (Some(Runtime::Containerd), Some("default"), "x")
        );
        assert_eq!(s.as_str(), "containerd/default/x");
        assert_eq!(s.to_string(), "containerd/default/x");
        for bad in ["", "/", "a/", "/a", "a//b", "a/b/c/d", "notaruntime/ns/x"] {
            assert_eq!(
                Selector::parse(bad),
                Err(SelectError::Invalid(bad.to_owned())),
                "{bad:?}"
            );
        }
        // Runtime keywords are case-sensitive, as in journal keys: this is a namespace.
        assert_eq!(sel("Docker/x").namespace.as_deref(), Some("Docker"));
    }

    #[test]
    fn exact_name_beats_a_name_that_is_a_prefix_of_another() {
        let all = [
            c("docker", ID, Some("web")),
            c("docker", ID2, Some("web-1")),
        ];
        assert_eq!(best("web", &all), Some((Match::Name, vec![0])));
        assert_eq!(best("web-1", &all), Some((Match::Name, vec![1])));
        // Names never match by prefix.
        assert_eq!(best("we", &all), None);
        assert_eq!(sel("we").resolve(&all), Err(sel("we").not_found()));
    }

    #[test]
    fn exact_name_beats_an_id_prefix_and_full_id_beats_a_name() {
        let all = [c("runc", "1ed4-runc", Some("db")), c("runc", "dbx", None)];
        assert_eq!(sel("db").resolve(&all), Ok(0));
        // A container named like another's full id: the id wins.
        let all = [c("runc", "abc", Some("x")), c("runc", "zzz", Some("abc"))];
        assert_eq!(best("abc", &all), Some((Match::Id, vec![0])));
    }

    #[test]
    fn id_prefixes_unique_ambiguous_and_too_short() {
        let all = [
            c("docker", ID, Some("web")),
            c("docker", ID2, Some("db")),
            c("runc", "runc-1", None),
        ];
        assert_eq!(sel("1ed420").resolve(&all), Ok(0));
        assert_eq!(sel(ID2).resolve(&all), Ok(1));
        assert_eq!(best("1ed4", &all), Some((Match::Prefix, vec![0, 1])));
        let err = sel("1ed4").resolve(&all).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "\"1ed4\" matches 2 containers: web (id 1ed420a3b4c5, docker, key docker/{ID}), \
                 db (id 1ed4ffa3b4c5, docker, key docker/{ID2})"
            )
        );
        let SelectError::Ambiguous { candidates, .. } = err else {
            panic!("ambiguous")
        };
        assert_eq!(candidates[1].name.as_deref(), Some("db"));
        // Fewer than MIN_PREFIX characters: not a prefix.
        assert_eq!(best("1e", &all), None);
        assert_eq!(sel("run").resolve(&all), Ok(2));
        // Unnamed containers are listed with a dash.
        let twins = [c("runc", "runc-1", None), c("runc", "runc-2", None)];
        assert!(sel("runc-")
            .resolve(&twins)
            .unwrap_err()
            .to_string()
            .contains("- (id runc-1, runc, key runc/runc-1)"));
    }

    #[test]
    fn case_sensitive_as_docker() {
        let all = [c("docker", ID, Some("Web"))];
        assert_eq!(best("web", &all), None);
        assert_eq!(best("Web", &all), Some((Match::Name, vec![0])));
        assert_eq!(best("1ED420", &all), None);
    }

    #[test]
    fn pods_and_namespaces() {
        let pod = |id, name, pod: &'static str, ns: &'static str| Candidate {
            id,
            name: Some(name),
            runtime: "containerd",
            namespace: Some("k8s.io"),
            pod: Some((Cow::Borrowed(pod), Cow::Borrowed(ns))),
        };
        let all = [
            pod("aaa111", "app", "web-1", "prod"),
            pod("aaa222", "sidecar", "web-1", "prod"),
            pod("bbb111", "app", "web-1", "staging"),
        ];
        // A pod's name names its containers: several, so inspect refuses it.
        assert_eq!(best("web-1", &all), Some((Match::Pod, vec![0, 1, 2])));
        assert_eq!(best("prod/web-1", &all), Some((Match::Pod, vec![0, 1])));
        assert_eq!(sel("staging/web-1").resolve(&all), Ok(2));
        // NAMESPACE/NAME: the pod namespace or the containerd namespace.
        assert_eq!(sel("prod/sidecar").resolve(&all), Ok(1));
        assert_eq!(best("k8s.io/app", &all), Some((Match::Name, vec![0, 2])));
        assert_eq!(best("other/app", &all), None);
        // A container name beats a pod name.
        let mixed = [
            pod("ccc", "x", "app", "prod"),
            pod("ddd", "app", "y", "prod"),
        ];
        assert_eq!(sel("app").resolve(&mixed), Ok(1));
    }

    #[test]
    fn runtime_restriction_and_journal_keys() {
        let all = [
            c("docker", ID, Some("web")),
            c("containerd", "web", Some("web")),
            Candidate {
                namespace: Some("other"),
                ..c("containerd", "web", Some("web"))
            },
            c("runc", "1ed4-runc", Some("db")),
        ];
        // The id "web" of two containerd containers beats the docker container's name.
        assert_eq!(best("web", &all), Some((Match::Id, vec![1, 2])));
        assert_eq!(sel("docker/web").resolve(&all), Ok(0));
        assert_eq!(sel("other/web").resolve(&all), Ok(2));
        assert_eq!(sel("containerd/default/web").resolve(&all), Ok(1));
        assert_eq!(sel(&format!("docker/{ID}")).resolve(&all), Ok(0));
        assert_eq!(sel(&all[2].key()).resolve(&all), Ok(2));
        assert_eq!(all[2].key(), "containerd/other/web");
        // A runtime narrows an ambiguous prefix.
        assert_eq!(best("1ed4", &all), Some((Match::Prefix, vec![0, 3])));
        assert_eq!(sel("runc/1ed4").resolve(&all), Ok(3));
        assert_eq!(best("podman/1ed4", &all), None);
        // A live filter takes every match, whatever its strength.
        let s = sel("web");
        assert_eq!(all.iter().filter(|c| s.selects(*c)).count(), 3);
    }

    #[test]
    fn best_keeps_items_in_order() {
        let all = vec![
            c("docker", ID2, Some("a")),
            c("docker", ID, Some("b")),
            c("docker", "1ed4x", Some("1ed4")),
        ];
        let b = sel("1ed4").best(all).unwrap();
        assert_eq!(b.level, Match::Name);
        assert_eq!(b.items.len(), 1);
        assert_eq!(b.items[0].id, "1ed4x");
    }
}
