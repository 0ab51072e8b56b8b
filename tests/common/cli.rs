//! Helpers for the tests that run the `medfocus` binary (native only: the browser suite shares
//! `common` but has no binary).

use std::path::PathBuf;
use std::process::{Command, Output};

/// A committed fixture's path (`tests/fixtures/<relative>`), as an argument.
pub fn fixture(relative: &str) -> String {
    super::manifest()
        .join("tests/fixtures")
        .join(relative)
        .display()
        .to_string()
}

/// `medfocus --device cpu <args>`, not yet started.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_medfocus"));
    command.args(["--device", "cpu"]).args(args);
    command
}

/// `medfocus --device cpu <args>`, run to the end.
pub fn medfocus(args: &[&str]) -> Output {
    command(args).output().expect("run medfocus")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `medfocus <args>` run to the end, which must succeed; how long it took.
pub fn timed(args: &[String]) -> std::time::Duration {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let output = medfocus(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    started.elapsed()
}

/// Every file under `dir`, recursively (none if it does not exist).
pub fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Seeded moments for killing runs (xorshift, so a failure replays).
pub struct Moments(u64);

impl Moments {
    pub fn seeded(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next moment within `duration`.
    pub fn within(&mut self, duration: std::time::Duration) -> std::time::Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        duration.mul_f64((self.0 % 1000) as f64 / 1000.0)
    }
}

/// Starts `medfocus <args>` and SIGKILLs it after `moment`; whether it was still running then.
pub fn kill_at(args: &[&str], moment: std::time::Duration) -> bool {
    let mut child = command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start medfocus");
    std::thread::sleep(moment);
    let running = child.try_wait().ok().flatten().is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// A fresh scratch folder per test (`<temp>/medfocus-<name>-<pid>`).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("medfocus-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
