//! What the tests of the `runnerkit` binary share: a workspace holding a
//! pipeline file, and one run of the binary in it.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_runnerkit");

/// A fresh directory holding `pipeline` as `.drone.yml` and each of `files`
/// (name, text) beside it.
pub fn workspace(pipeline: &str, files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rk-cli-test-")
        .tempdir()
        .unwrap();
    std::fs::write(dir.path().join(".drone.yml"), pipeline).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// How one run of the binary ended.
pub struct Run {
    /// Its exit code.
    pub code: i32,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

impl Run {
    /// Everything it printed, stdout first.
    pub fn printed(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The `--json` result: stdout is one JSON object on one line.
    pub fn json(&self) -> Value {
        assert_eq!(
            self.stdout.lines().count(),
            1,
            "stdout must be one line: {}",
            self.printed()
        );
        serde_json::from_str(&self.stdout).unwrap()
    }
}

/// The rows of the summary table in `text`, each split into its columns
/// (the reason column may hold several words).
pub fn summary(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip_while(|l| !l.starts_with("STEP "))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// Runs `runnerkit ARGS` in `dir`, without colours.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    run_with(dir, args, &[])
}

/// [`run`] with `env` set for the process.
pub fn run_with(dir: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        code: out.status.code().expect("runnerkit exited by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// `runnerkit exec ARGS` in `dir`.
pub fn exec(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    run(dir, &all)
}
