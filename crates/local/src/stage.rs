//! A stage's directories on the host: a temporary root holding the home
//! directory, the workspace (unless the host gave one) and the script files.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use runnerkit_core::{Step, Workspace};

use crate::error::Error;

/// The directories one stage uses, all below `root` except a host workspace.
#[derive(Debug, Clone)]
pub(crate) struct StageDirs {
    /// The temporary root; removed by `destroy`.
    pub root: PathBuf,
    /// `HOME` of every step that sets none, under `HomePolicy::PerStage`.
    pub home: PathBuf,
    /// Where steps run (by default) and `DRONE_WORKSPACE`.
    pub workspace: PathBuf,
    /// Where script files are written: `opt` below the root, or a directory
    /// of the root's name in a memory filesystem (see [`memory_dir`]).
    pub scripts: PathBuf,
    /// `scripts` is not below the root, and is removed on its own.
    pub scripts_apart: bool,
    /// True when the workspace is the host's own directory: never created
    /// nor removed by the engine.
    pub host_workspace: bool,
}

impl StageDirs {
    /// The layout below `root`, Drone's exec runner's: `home/drone`,
    /// `drone/src` (plus the workspace `path`) and `opt`; with
    /// `scripts_in`, the scripts go to a directory of the root's name there
    /// instead of `opt`.
    pub fn new(
        root: PathBuf,
        host_path: Option<PathBuf>,
        workspace: &Workspace,
        scripts_in: Option<&Path>,
    ) -> Self {
        let home = root.join("home").join("drone");
        let apart = scripts_in
            .zip(root.file_name())
            .map(|(dir, name)| dir.join(name));
        let scripts_apart = apart.is_some();
        let scripts = apart.unwrap_or_else(|| root.join("opt"));
        let host_workspace = host_path.is_some();
        let workspace = host_path.unwrap_or_else(|| {
            let src = root.join("drone").join("src");
            match workspace.path.trim_start_matches('/') {
                "" => src,
                path => src.join(path),
            }
        });
        Self {
            root,
            home,
            workspace,
            scripts,
            scripts_apart,
            host_workspace,
        }
    }

    /// The script file of `step`. Its name encodes the step's id injectively,
    /// so two steps never share a file whatever their ids contain.
    pub fn script_file(&self, step: &Step) -> PathBuf {
        let id = if step.id.is_empty() {
            &step.name
        } else {
            &step.id
        };
        self.scripts.join(format!("{}.sh", encode(id)))
    }

    /// Creates every directory below the existing root (mode 0700), and
    /// returns the layout as made: scripts that cannot have their directory
    /// apart (it exists already, or the memory filesystem refuses it) go to
    /// `opt` below the root.
    pub async fn create(mut self) -> Result<Self, Error> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || self.create_blocking().map(|()| self))
            .await
            .map_err(|join| Error::StageDir {
                path: root,
                source: io::Error::other(join.to_string()),
            })?
    }

    fn create_blocking(&mut self) -> Result<(), Error> {
        if self.scripts_apart {
            // Not recursive, and never an existing directory: one another
            // user made in a shared `/dev/shm` must not receive our scripts.
            if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&self.scripts) {
                tracing::debug!(path = %self.scripts.display(), error = %e, "scripts go below the stage root");
                self.scripts = self.root.join("opt");
                self.scripts_apart = false;
            }
        }
        let mut paths = vec![&self.home];
        if !self.scripts_apart {
            paths.push(&self.scripts);
        }
        if !self.host_workspace {
            paths.push(&self.workspace);
        }
        for path in paths {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|source| Error::StageDir {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Removes the scripts' directory apart and the root with everything
    /// below it, each even when the other could not be; what is already
    /// gone is fine. An error names the directory it is about.
    pub async fn remove(&self) -> Result<(), Error> {
        let root = self.root.clone();
        let scripts = self.scripts_apart.then(|| self.scripts.clone());
        let removed = tokio::task::spawn_blocking(move || {
            let remove = |dir: PathBuf| remove_tree(&dir).or_else(gone).map_err(|e| (dir, e));
            let scripts = scripts.map_or(Ok(()), remove);
            scripts.and(remove(root))
        })
        .await
        .unwrap_or_else(|join| Err((self.root.clone(), io::Error::other(join.to_string()))));
        removed.map_err(|(path, source)| Error::Remove { path, source })
    }
}

/// A directory that is already gone was removed.
pub(crate) fn gone(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// Where script files go by default: a memory filesystem, the user's
/// `XDG_RUNTIME_DIR` or else `/dev/shm`, when there is one. A step's script
/// is written once and read once; on a disk filesystem making (and later
/// deleting) its file costs a journalled inode, 0.2-0.3 ms on ext4, a third
/// of a short step's whole cost (`benches/host.rs`), against ~15 µs in
/// memory.
pub(crate) fn memory_dir() -> Option<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    runtime
        .into_iter()
        .chain([PathBuf::from("/dev/shm")])
        .find(|p| p.is_dir())
}

/// Removes `root`, first giving the owner write and search rights on every
/// directory below it: a step may have left a read-only directory behind
/// (Go's module cache does), which must not keep its stage on disk.
pub(crate) fn remove_tree(root: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(root) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            grant_owner(root);
            std::fs::remove_dir_all(root)
        }
        other => other,
    }
}

fn grant_owner(dir: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let mut perms = meta.permissions();
    perms.set_mode(perms.mode() | 0o700);
    // Best effort: whatever cannot be fixed shows up in the removal's error.
    let _ = std::fs::set_permissions(dir, perms);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            grant_owner(&entry.path());
        }
    }
}

/// Picks a fresh root below `base` for stage `id` and creates it (mode 0700),
/// never reusing a directory that exists. `record` hears each path before
/// the directory is made, so a teardown finds it even if this future is
/// dropped half-way.
pub(crate) async fn create_root(
    base: &Path,
    id: &str,
    record: impl Fn(&Path),
) -> Result<PathBuf, Error> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let readable: String = encode(id).chars().take(40).collect();
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root = base.join(format!("runnerkit-{readable}-{}-{n}", std::process::id()));
        record(&root);
        let attempt = root.clone();
        let made = tokio::task::spawn_blocking(move || {
            std::fs::DirBuilder::new().mode(0o700).create(&attempt)
        })
        .await
        .unwrap_or_else(|join| Err(io::Error::other(join.to_string())));
        match made {
            Ok(()) => return Ok(root),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(Error::StageDir { path: root, source }),
        }
    }
}

/// Letters, digits, `-` and `.` as they are; any other byte as `_xx` (hex).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    if out.starts_with('.') {
        out.replace_range(0..1, "_2e");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_injective_and_path_safe() {
        assert_eq!(encode("build-1.2"), "build-1.2");
        assert_eq!(encode("a/b"), "a_2fb");
        assert_eq!(encode("a_2fb"), "a_5f2fb");
        assert_eq!(encode(".."), "_2e.");
        assert_ne!(encode("a b"), encode("a_b"));
    }

    #[test]
    fn layout_follows_drones_exec_runner() {
        let ws = Workspace {
            base: "/drone/src".into(),
            path: "/github.com/o/r".into(),
            host_path: None,
        };
        let d = StageDirs::new(PathBuf::from("/t/r"), None, &ws, None);
        assert_eq!(d.home, Path::new("/t/r/home/drone"));
        assert_eq!(d.workspace, Path::new("/t/r/drone/src/github.com/o/r"));
        assert_eq!(
            d.script_file(&Step::named("x y")),
            Path::new("/t/r/opt/x_20y.sh")
        );
        let d = StageDirs::new(
            PathBuf::from("/t/r"),
            Some(PathBuf::from("/src")),
            &ws,
            None,
        );
        assert_eq!(d.workspace, Path::new("/src"));
        assert!(d.host_workspace);
        let d = StageDirs::new(PathBuf::from("/t/r"), None, &ws, Some(Path::new("/m")));
        assert_eq!(d.script_file(&Step::named("a")), Path::new("/m/r/a.sh"));
        assert!(d.scripts_apart);
    }

    #[tokio::test]
    async fn roots_are_fresh_and_removal_survives_read_only_dirs() {
        let base = std::env::temp_dir().join(format!("rk-stage-test-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let a = create_root(&base, "same", |_| ()).await.unwrap();
        let b = create_root(&base, "same", |_| ()).await.unwrap();
        assert_ne!(a, b);
        let memory = base.join("memory");
        std::fs::create_dir(&memory).unwrap();
        let dirs = StageDirs::new(a.clone(), None, &Workspace::default(), Some(&memory));
        let dirs = dirs.create().await.unwrap();
        assert!(dirs.scripts_apart);
        assert!(dirs.scripts.starts_with(&memory) && dirs.scripts.is_dir());
        // The same directory apart, taken already: the scripts stay home.
        let taken = StageDirs::new(a.clone(), None, &Workspace::default(), Some(&memory));
        let taken = taken.create().await.unwrap();
        assert!(!taken.scripts_apart);
        assert_eq!(taken.scripts, a.join("opt"));
        let locked = dirs.workspace.join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::write(locked.join("f"), "x").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        dirs.remove().await.unwrap();
        assert!(!a.exists());
        assert!(!dirs.scripts.exists(), "the scripts apart are removed too");
        dirs.remove().await.unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }
}
