//! The execution plan: which steps run and what each waits for, checked
//! before anything runs.
//!
//! Dependencies are stored as *groups*: a group is one step's resolved
//! `depends_on` list, and a step waits for exactly one group. Steps with the
//! same list (the usual shape of generated pipelines: every step of a layer
//! depending on the whole layer before) share one group, so the plan costs
//! O(steps + distinct lists) instead of O(edges), and finishing a step
//! touches only the groups it belongs to. A serial pipeline is the special
//! case where step *i* waits for the group `{i - 1}`.
//!
//! The graph is exposed to petgraph through its visit traits, and petgraph's
//! Tarjan SCC names the steps of every cycle.

use std::sync::Arc;

use petgraph::visit::{GraphBase, IntoNeighbors, IntoNodeIdentifiers, NodeIndexable};
use runnerkit_core::Spec;
use rustc_hash::FxHashMap;

use crate::Error;

const NO_GROUP: u32 = u32::MAX;

/// A validated plan for one spec.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Number of steps: a plan position is the step's spec position (the
    /// compiler leaves out steps that cannot run, so every step is planned).
    len: usize,
    /// Per plan step, the group it waits for, or `NO_GROUP`.
    waits_for: Vec<u32>,
    /// Group → offsets of its members (CSR; the members themselves are only
    /// needed to build `member_of`).
    member_offsets: Vec<u32>,
    /// Group → steps waiting for it (CSR).
    waiter_offsets: Vec<u32>,
    waiters: Vec<u32>,
    /// Step → groups it is a member of (CSR).
    member_of_offsets: Vec<u32>,
    member_of: Vec<u32>,
}

impl Plan {
    /// Checks `spec` and builds its plan: duplicate names, unknown
    /// dependencies and cycles are refused, naming the steps.
    pub(crate) fn new(spec: &Spec) -> Result<Self, Error> {
        let n = spec.steps.len();
        if n >= NO_GROUP as usize {
            return Err(Error::TooManySteps(n));
        }
        let mut by_name: FxHashMap<&str, usize> = FxHashMap::default();
        by_name.reserve(n);
        for (i, step) in spec.steps.iter().enumerate() {
            if by_name.insert(step.name.as_str(), i).is_some() {
                return Err(Error::DuplicateStep(step.name.clone()));
            }
        }
        let mut waits_for = vec![NO_GROUP; n];
        let mut member_offsets = vec![0u32];
        let mut members: Vec<u32> = Vec::new();
        if spec.is_serial() {
            for (p, wait) in waits_for.iter_mut().enumerate().skip(1) {
                members.push(p as u32 - 1);
                member_offsets.push(members.len() as u32);
                *wait = member_offsets.len() as u32 - 2;
            }
        } else {
            // Consecutive steps with the same list share its group: checked
            // by pointer first (a shared `Arc`), then by value.
            let mut previous: Option<(&Arc<[String]>, u32)> = None;
            for (p, step) in spec.steps.iter().enumerate() {
                if step.depends_on.is_empty() {
                    continue;
                }
                if let Some((list, group)) = previous
                    && (Arc::ptr_eq(list, &step.depends_on) || **list == *step.depends_on)
                {
                    waits_for[p] = group;
                    continue;
                }
                let start = members.len();
                for dep in step.depends_on.iter() {
                    let Some(&d) = by_name.get(dep.as_str()) else {
                        return Err(Error::UnknownDependency {
                            step: step.name.clone(),
                            dependency: dep.clone(),
                        });
                    };
                    if d == p {
                        return Err(Error::Cycle(vec![step.name.clone()]));
                    }
                    members.push(d as u32);
                }
                let group = if members.len() == start {
                    NO_GROUP
                } else {
                    members[start..].sort_unstable();
                    let mut len = start;
                    for k in start..members.len() {
                        if k == start || members[k] != members[len - 1] {
                            members[len] = members[k];
                            len += 1;
                        }
                    }
                    members.truncate(len);
                    member_offsets.push(members.len() as u32);
                    member_offsets.len() as u32 - 2
                };
                waits_for[p] = group;
                previous = Some((&step.depends_on, group));
            }
        }

        let groups = member_offsets.len() - 1;
        let (waiter_offsets, waiters) = invert(
            groups,
            waits_for
                .iter()
                .enumerate()
                .filter_map(|(p, &g)| (g != NO_GROUP).then_some((g, p as u32))),
        );
        let (member_of_offsets, member_of) = invert(
            n,
            (0..groups).flat_map(|g| {
                members_of(&member_offsets, &members, g as u32)
                    .iter()
                    .map(move |&m| (m, g as u32))
            }),
        );
        let plan = Self {
            len: n,
            waits_for,
            member_offsets,
            waiter_offsets,
            waiters,
            member_of_offsets,
            member_of,
        };
        plan.check_acyclic(spec)?;
        Ok(plan)
    }

    /// Number of steps in the plan.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Number of dependency groups.
    pub(crate) fn groups(&self) -> usize {
        self.member_offsets.len() - 1
    }

    /// The group step `p` waits for.
    pub(crate) fn waits_for(&self, p: usize) -> Option<u32> {
        let g = self.waits_for[p];
        (g != NO_GROUP).then_some(g)
    }

    /// How many steps group `g` waits for.
    pub(crate) fn group_size(&self, g: u32) -> u32 {
        self.member_offsets[g as usize + 1] - self.member_offsets[g as usize]
    }

    /// Steps waiting for group `g`.
    pub(crate) fn waiters(&self, g: u32) -> &[u32] {
        let g = g as usize;
        &self.waiters[self.waiter_offsets[g] as usize..self.waiter_offsets[g + 1] as usize]
    }

    /// Groups step `p` belongs to.
    pub(crate) fn member_of(&self, p: usize) -> &[u32] {
        &self.member_of[self.member_of_offsets[p] as usize..self.member_of_offsets[p + 1] as usize]
    }

    /// Kahn's algorithm over the groups; on a leftover, petgraph's Tarjan SCC
    /// names the cycles.
    fn check_acyclic(&self, spec: &Spec) -> Result<(), Error> {
        let mut remaining: Vec<u32> = (0..self.groups() as u32)
            .map(|g| self.group_size(g))
            .collect();
        let mut queue: Vec<u32> = (0..self.len())
            .filter(|&p| self.waits_for(p).is_none())
            .map(|p| p as u32)
            .collect();
        let mut done = 0;
        while let Some(p) = queue.pop() {
            done += 1;
            for &g in self.member_of(p as usize) {
                remaining[g as usize] -= 1;
                if remaining[g as usize] == 0 {
                    queue.extend_from_slice(self.waiters(g));
                }
            }
        }
        if done == self.len() {
            return Ok(());
        }
        let mut names: Vec<String> = petgraph::algo::tarjan_scc(self)
            .into_iter()
            .filter(|scc| scc.len() > 1 || self.neighbors(scc[0]).any(|n| n == scc[0]))
            .flatten()
            .map(|p| spec.steps[p as usize].name.clone())
            .collect();
        names.sort();
        Err(Error::Cycle(names))
    }
}

fn members_of<'a>(offsets: &[u32], members: &'a [u32], g: u32) -> &'a [u32] {
    let g = g as usize;
    &members[offsets[g] as usize..offsets[g + 1] as usize]
}

/// Builds a CSR adjacency of `rows` rows from `(row, value)` pairs, in two
/// passes over a cloneable iterator (count, then fill).
fn invert<I>(rows: usize, pairs: I) -> (Vec<u32>, Vec<u32>)
where
    I: Iterator<Item = (u32, u32)> + Clone,
{
    let mut offsets = vec![0u32; rows + 1];
    for (row, _) in pairs.clone() {
        offsets[row as usize + 1] += 1;
    }
    for r in 0..rows {
        offsets[r + 1] += offsets[r];
    }
    let mut fill = offsets.clone();
    let mut values = vec![0u32; offsets[rows] as usize];
    for (row, value) in pairs {
        values[fill[row as usize] as usize] = value;
        fill[row as usize] += 1;
    }
    (offsets, values)
}

// petgraph's view of the plan: nodes are plan steps, an edge runs from a
// step to every step that waits for a group it is in.
impl GraphBase for Plan {
    type EdgeId = ();
    type NodeId = u32;
}

impl<'a> IntoNeighbors for &'a Plan {
    type Neighbors = Box<dyn Iterator<Item = u32> + 'a>;
    fn neighbors(self, p: u32) -> Self::Neighbors {
        Box::new(
            self.member_of(p as usize)
                .iter()
                .flat_map(move |&g| self.waiters(g).iter().copied()),
        )
    }
}

impl IntoNodeIdentifiers for &Plan {
    type NodeIdentifiers = std::ops::Range<u32>;
    fn node_identifiers(self) -> Self::NodeIdentifiers {
        0..self.len() as u32
    }
}

impl NodeIndexable for Plan {
    fn node_bound(&self) -> usize {
        self.len()
    }
    fn to_index(&self, p: u32) -> usize {
        p as usize
    }
    fn from_index(&self, i: usize) -> u32 {
        i as u32
    }
}

#[cfg(test)]
mod tests {
    use runnerkit_core::Step;

    use super::*;

    fn spec(steps: &[(&str, &[&str])]) -> Spec {
        Spec {
            steps: steps
                .iter()
                .map(|(name, deps)| Step {
                    depends_on: deps.iter().map(|d| d.to_string()).collect(),
                    ..Step::named(*name)
                })
                .collect(),
            ..Spec::default()
        }
    }

    #[test]
    fn serial_steps_form_a_chain() {
        let plan = Plan::new(&spec(&[("a", &[]), ("b", &[]), ("c", &[])])).unwrap();
        assert_eq!(plan.waits_for(0), None);
        let g = plan.waits_for(2).unwrap();
        assert_eq!(plan.group_size(g), 1);
        assert_eq!(plan.member_of(1), &[g]);
    }

    #[test]
    fn identical_dependency_lists_share_a_group() {
        let plan = Plan::new(&spec(&[
            ("a", &[]),
            ("b", &[]),
            ("c", &["a", "b"]),
            ("d", &["a", "b"]),
            ("e", &["c"]),
        ]))
        .unwrap();
        assert_eq!(plan.groups(), 2);
        assert_eq!(plan.waits_for(2), plan.waits_for(3));
        let g = plan.waits_for(2).unwrap();
        assert_eq!(plan.waiters(g), &[2, 3]);
        assert_eq!(plan.group_size(g), 2);
    }

    #[test]
    fn a_shared_list_is_one_group_and_still_checked() {
        let layer: Arc<[String]> = ["a".to_owned(), "b".to_owned()].into();
        let mut s = spec(&[("a", &[]), ("b", &[]), ("c", &[]), ("d", &[])]);
        s.steps[2].depends_on = layer.clone();
        s.steps[3].depends_on = layer;
        let plan = Plan::new(&s).unwrap();
        assert_eq!(plan.groups(), 1);
        assert_eq!(plan.waiters(0), &[2, 3]);

        // A step whose (shared) list names itself is a cycle, even when the
        // step before it with the same list was fine.
        let err = Plan::new(&spec(&[("x", &["y"]), ("y", &["y"])])).unwrap_err();
        assert!(
            matches!(&err, Error::Cycle(names) if names == &["y"]),
            "{err}"
        );
    }

    #[test]
    fn unknown_dependencies_are_named() {
        let err = Plan::new(&spec(&[("a", &[]), ("b", &["nope"])])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "step \"b\" depends on \"nope\", which is not a step of this pipeline"
        );
    }

    #[test]
    fn cycles_are_named() {
        let err = Plan::new(&spec(&[
            ("a", &["c"]),
            ("b", &["a"]),
            ("c", &["b"]),
            ("d", &[]),
        ]))
        .unwrap_err();
        assert!(
            matches!(&err, Error::Cycle(names) if names == &["a", "b", "c"]),
            "{err}"
        );
        let err = Plan::new(&spec(&[("a", &["a"])])).unwrap_err();
        assert!(
            matches!(&err, Error::Cycle(names) if names == &["a"]),
            "{err}"
        );
        // A self-dependency hidden in a shared dependency list.
        let err = Plan::new(&spec(&[("x", &["y"]), ("y", &["y"])])).unwrap_err();
        assert!(
            matches!(&err, Error::Cycle(names) if names == &["y"]),
            "{err}"
        );
    }

    #[test]
    fn duplicate_names_are_refused() {
        let err = Plan::new(&spec(&[("a", &[]), ("a", &[])])).unwrap_err();
        assert!(matches!(err, Error::DuplicateStep(n) if n == "a"));
    }
}
