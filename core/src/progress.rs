//! Progress reports: what a build is doing and how far it has got, for the callback the CLI
//! renders and the bindings forward.

use std::fmt;
use std::sync::Arc;

/// A progress callback. Called from the thread running the build.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// What a build is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Reading, archiving and compressing the program into its layer.
    Layer,
    /// Writing the image to an output.
    Write,
}

impl Stage {
    /// The stable lowercase name (`layer`, `write`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Layer => "layer",
            Stage::Write => "write",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A progress event: `current` of `total` bytes done in `stage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// What is being done.
    pub stage: Stage,
    /// Bytes done so far.
    pub current: u64,
    /// Bytes to do, when known.
    pub total: Option<u64>,
}

/// Call `progress`, if any, with `current` of `total` bytes done in `stage`.
pub(crate) fn report(progress: Option<&ProgressFn>, stage: Stage, current: u64, total: Option<u64>) {
    if let Some(progress) = progress {
        progress(&Progress { stage, current, total });
    }
}
