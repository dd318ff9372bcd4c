//! Why a spec was refused before anything ran.

/// A spec the runtime refuses to run. Everything that happens once a stage
/// runs (failures, engine errors, cancellation) is reported in the returned
/// [`Snapshot`](runnerkit_core::Snapshot) instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Two steps share a name.
    #[error("two steps are named {0:?}: step names must be unique")]
    DuplicateStep(String),
    /// A step depends on a name that is not a step of the spec.
    #[error("step {step:?} depends on {dependency:?}, which is not a step of this pipeline")]
    UnknownDependency {
        /// The step declaring the dependency.
        step: String,
        /// The name it depends on.
        dependency: String,
    },
    /// Steps depend on each other in a cycle (names sorted).
    #[error("steps {} depend on each other in a cycle", .0.join(", "))]
    Cycle(Vec<String>),
    /// More steps than the runtime can index.
    #[error("{0} steps are more than a stage can hold")]
    TooManySteps(usize),
    /// `resume` was asked of a pipeline that is a DAG.
    #[error("only a serial pipeline can be resumed from a step index")]
    ResumeNotSerial,
    /// `resume` was asked to start past the last step.
    #[error("cannot resume at step {start}: the pipeline has {len} steps")]
    ResumeOutOfRange {
        /// The index asked for.
        start: usize,
        /// Number of steps that run.
        len: usize,
    },
}
