//! Which commits of develop are not on main yet: the list a pull request's description shows,
//! and the test of whether a pull request is needed at all.
//!
//! CodeCommit has no `git log main..develop`, only GetCommit, so this walks the graph itself the
//! way git does: from develop's head (interesting) and main's head (uninteresting) at once, newest
//! commit first, marking every ancestor of an uninteresting commit uninteresting, and stopping as
//! soon as no interesting commit is left to visit. A squash merge leaves develop's commits off
//! main, so a squash commit made by this Lambda names the develop head it squashed in a trailer
//! ([`SQUASHED_HEAD_TRAILER`]); the walk treats that commit, and so its ancestors, as already on
//! main. The walk reads at most `budget` commits; beyond that it reports a truncated list.

use std::collections::{BinaryHeap, HashMap};

use anyhow::Result;

/// Trailer line of a squash commit made by this Lambda: `Gitflow-Squashed-Head: <commit id>`.
pub const SQUASHED_HEAD_TRAILER: &str = "Gitflow-Squashed-Head:";

/// What the walk needs of a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: String,
    pub parents: Vec<String>,
    pub message: String,
    pub author: String,
    /// Committer time, seconds since the epoch (0 when unknown).
    pub time: i64,
}

impl CommitInfo {
    /// The first line of the message.
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or("").trim()
    }
}

/// Where commits come from: CodeCommit's GetCommit in production, a map in tests.
pub trait CommitSource {
    fn commit(&mut self, id: &str) -> impl Future<Output = Result<CommitInfo>> + Send;
}

/// The commits of develop that main lacks, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ahead {
    pub commits: Vec<CommitInfo>,
    /// The walk hit its budget: there may be more commits than listed.
    pub truncated: bool,
}

struct Node {
    info: CommitInfo,
    uninteresting: bool,
    visited: bool,
}

/// Walks from `develop_head` and `main_head`; reads at most `budget` commits.
pub async fn commits_ahead(
    source: &mut impl CommitSource,
    develop_head: &str,
    main_head: &str,
    budget: usize,
) -> Result<Ahead> {
    let mut nodes: HashMap<String, Node> = HashMap::new();
    let mut queue: BinaryHeap<(i64, String)> = BinaryHeap::new();
    // A stack of (commit, uninteresting) still to be read or re-marked; main last, so read first.
    let mut pending = vec![(develop_head.to_string(), false), (main_head.to_string(), true)];
    let mut reads = 0;
    let mut truncated = false;
    'walk: loop {
        while let Some((id, uninteresting)) = pending.pop() {
            if let Some(node) = nodes.get_mut(&id) {
                if uninteresting && !node.uninteresting {
                    node.uninteresting = true;
                    if node.visited {
                        pending.extend(follow(&node.info, true));
                    }
                }
                continue;
            }
            if reads == budget {
                truncated = true;
                break 'walk;
            }
            let info = source.commit(&id).await?;
            reads += 1;
            queue.push((info.time, id.clone()));
            nodes.insert(id, Node { info, uninteresting, visited: false });
        }
        if queue.iter().all(|(_, id)| nodes[id].uninteresting) {
            break;
        }
        let Some((_, id)) = queue.pop() else { break };
        let node = nodes.get_mut(&id).expect("queued commits are known");
        node.visited = true;
        pending.extend(follow(&node.info, node.uninteresting));
    }
    let mut commits: Vec<CommitInfo> =
        nodes.into_values().filter(|node| node.visited && !node.uninteresting).map(|node| node.info).collect();
    commits.sort_by(|left, right| right.time.cmp(&left.time).then_with(|| left.id.cmp(&right.id)));
    Ok(Ahead { commits, truncated })
}

/// The commits reached from `info`: its parents, and for an uninteresting commit the develop head
/// its squash trailer names.
fn follow(info: &CommitInfo, uninteresting: bool) -> Vec<(String, bool)> {
    let mut next: Vec<(String, bool)> = info.parents.iter().map(|parent| (parent.clone(), uninteresting)).collect();
    if uninteresting {
        next.extend(squashed_heads(&info.message).map(|id| (id, true)));
    }
    next
}

fn squashed_heads(message: &str) -> impl Iterator<Item = String> + '_ {
    message
        .lines()
        .filter_map(|line| line.trim().strip_prefix(SQUASHED_HEAD_TRAILER))
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
}

/// Seconds since the epoch from CodeCommit's `UserInfo.date` (`"1484167798 -0800"`).
pub fn parse_time(date: &str) -> i64 {
    date.split_whitespace().next().and_then(|seconds| seconds.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use anyhow::anyhow;

    use super::*;

    /// An in-memory commit graph; counts reads.
    pub(crate) struct Graph {
        pub commits: HashMap<String, CommitInfo>,
        pub reads: usize,
    }

    impl Graph {
        /// `spec`: `(id, parents, time, message)`.
        pub(crate) fn new(spec: &[(&str, &[&str], i64, &str)]) -> Graph {
            let commits = spec
                .iter()
                .map(|(id, parents, time, message)| {
                    let info = CommitInfo {
                        id: id.to_string(),
                        parents: parents.iter().map(|parent| parent.to_string()).collect(),
                        message: message.to_string(),
                        author: "Mary Major".into(),
                        time: *time,
                    };
                    (id.to_string(), info)
                })
                .collect();
            Graph { commits, reads: 0 }
        }
    }

    impl CommitSource for Graph {
        async fn commit(&mut self, id: &str) -> Result<CommitInfo> {
            self.reads += 1;
            self.commits.get(id).cloned().ok_or_else(|| anyhow!("no commit {id}"))
        }
    }

    async fn ids(graph: &mut Graph, develop: &str, main: &str, budget: usize) -> (Vec<String>, bool) {
        let ahead = commits_ahead(graph, develop, main, budget).await.unwrap();
        (ahead.commits.into_iter().map(|commit| commit.id).collect(), ahead.truncated)
    }

    fn check(spec: &[(&str, &[&str], i64, &str)], develop: &str, main: &str, budget: usize, expect: (&[&str], bool)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut graph = Graph::new(spec);
        let got = runtime.block_on(ids(&mut graph, develop, main, budget));
        let expect = (expect.0.iter().map(|id| id.to_string()).collect::<Vec<_>>(), expect.1);
        assert_eq!(got, expect, "develop {develop}, main {main}, budget {budget}");
        assert!(graph.reads <= budget, "read {} commits with budget {budget}", graph.reads);
    }

    /// root <- m1 <- d1 <- d2 (develop), main at m1: a fast-forwardable develop.
    const LINEAR: &[(&str, &[&str], i64, &str)] = &[
        ("root", &[], 100, "init"),
        ("m1", &["root"], 200, "m1"),
        ("d1", &["m1"], 300, "d1"),
        ("d2", &["d1"], 400, "d2"),
    ];

    #[test]
    fn linear_history() {
        check(LINEAR, "d2", "m1", 50, (&["d2", "d1"], false));
        check(LINEAR, "m1", "m1", 50, (&[], false));
        // Develop behind main: nothing to merge.
        check(LINEAR, "d1", "d2", 50, (&[], false));
        // The budget bounds the walk and says so.
        check(LINEAR, "d2", "root", 2, (&["d2"], true));
    }

    /// Develop merged a feature branch forked before main's head, and main got a hotfix:
    ///   root <- m1 <- hotfix (main)
    ///   root <- m1 <- d1 <- merge(d1, f1) (develop);  f1's parent is root
    const MERGES: &[(&str, &[&str], i64, &str)] = &[
        ("root", &[], 100, "init"),
        ("m1", &["root"], 200, "m1"),
        ("f1", &["root"], 250, "feature"),
        ("d1", &["m1"], 300, "d1"),
        ("merge", &["d1", "f1"], 400, "Merge feature"),
        ("hotfix", &["m1"], 500, "hotfix"),
    ];

    #[test]
    fn merge_commits_and_diverged_main() {
        check(MERGES, "merge", "hotfix", 50, (&["merge", "d1", "f1"], false));
        check(MERGES, "merge", "m1", 50, (&["merge", "d1", "f1"], false));
    }

    /// After a squash merge, main's squash commit names the develop head it took; only newer
    /// develop commits are ahead.
    ///   root <- d1 <- d2 <- d3 (develop);  root <- s1 (main, squash of d2)
    const SQUASHED: &[(&str, &[&str], i64, &str)] = &[
        ("root", &[], 100, "init"),
        ("d1", &["root"], 200, "d1"),
        ("d2", &["d1"], 300, "d2"),
        ("s1", &["root"], 350, "Merge develop into main\n\nGitflow-Squashed-Head: d2\n"),
        ("d3", &["d2"], 400, "d3"),
    ];

    #[test]
    fn squash_trailer_marks_squashed_commits_as_on_main() {
        check(SQUASHED, "d3", "s1", 50, (&["d3"], false));
        check(SQUASHED, "d2", "s1", 50, (&[], false));
    }

    #[test]
    fn times_and_subjects() {
        assert_eq!(parse_time("1484167798 -0800"), 1484167798);
        assert_eq!(parse_time(""), 0);
        assert_eq!(parse_time("yesterday"), 0);
        let commit = CommitInfo {
            id: "a".into(),
            parents: vec![],
            message: "  Fix it \n\nbody".into(),
            author: "x".into(),
            time: 0,
        };
        assert_eq!(commit.subject(), "Fix it");
    }

    #[test]
    fn a_missing_commit_is_an_error() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut graph = Graph::new(&[("d1", &["gone"], 300, "d1"), ("m1", &[], 200, "m1")]);
        let error = runtime.block_on(commits_ahead(&mut graph, "d1", "m1", 50)).unwrap_err();
        assert!(error.to_string().contains("no commit gone"));
    }
}
