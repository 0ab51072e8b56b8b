//! `weights fetch` against a local HTTP server that behaves like the hub's resolve endpoint:
//! `X-Linked-ETag` (SHA-256) on HEAD, ranges on GET, and connections that drop midway.
#![cfg(not(target_arch = "wasm32"))]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use medfocus::fetch::{FetchError, Fetcher, FileStatus, ModelEntry, RemoteFile, Silent};
use sha2::{Digest, Sha256};

/// What the fake hub serves and how it misbehaves.
#[derive(Clone)]
struct Hub {
    files: Vec<(String, Vec<u8>, String)>,
    /// Cut the body of the first N GETs after this many bytes.
    cut_first_gets: usize,
    cut_after: usize,
    gets: Arc<AtomicUsize>,
    ranges: Arc<Mutex<Vec<String>>>,
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn handle(mut stream: TcpStream, hub: &Hub) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
            range = value.trim().trim_end_matches('-').parse::<usize>().ok();
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let Some((_, body, declared)) = hub.files.iter().find(|(url, _, _)| url == path) else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    };
    if method == "HEAD" {
        let head = format!(
            "HTTP/1.1 302 Found\r\nlocation: /cdn{path}\r\nx-linked-etag: \"{declared}\"\r\nx-linked-size: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        return;
    }
    let get_index = hub.gets.fetch_add(1, Ordering::SeqCst);
    let start = range.unwrap_or(0).min(body.len());
    if let Some(start) = range {
        hub.ranges.lock().unwrap().push(format!("bytes={start}-"));
    }
    let slice = &body[start..];
    let status = if range.is_some() {
        "206 Partial Content"
    } else {
        "200 OK"
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        slice.len()
    );
    let _ = stream.write_all(head.as_bytes());
    if get_index < hub.cut_first_gets {
        let _ = stream.write_all(&slice[..hub.cut_after.min(slice.len())]);
        let _ = stream.flush();
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return;
    }
    let _ = stream.write_all(slice);
}

/// Serves until the test ends; returns the base URL.
fn serve(hub: Hub) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten().take(64) {
            let hub = hub.clone();
            thread::spawn(move || handle(stream, &hub));
        }
    });
    format!("http://{address}")
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("medfocus-fetch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn weights_bytes() -> Vec<u8> {
    (0..300_000u32)
        .flat_map(|i| (i.wrapping_mul(2_654_435_761)).to_le_bytes())
        .collect()
}

fn entry() -> ModelEntry {
    ModelEntry {
        name: "tiny",
        description: "test",
        files: vec![
            RemoteFile {
                repo: "org/tiny",
                path: "weights.bin",
                local: "weights.bin",
                sha256: None,
            },
            RemoteFile {
                repo: "org/text",
                path: "vocab.txt",
                local: "text/vocab.txt",
                sha256: None,
            },
        ],
    }
}

fn hub(cut_first_gets: usize, corrupt: bool) -> Hub {
    let weights = weights_bytes();
    let declared = if corrupt {
        sha256(b"something else")
    } else {
        sha256(&weights)
    };
    let vocab = b"[PAD]\n[UNK]\n".to_vec();
    Hub {
        files: vec![
            (
                "/org/tiny/resolve/main/weights.bin".into(),
                weights,
                declared,
            ),
            (
                "/org/text/resolve/main/vocab.txt".into(),
                vocab.clone(),
                sha256(&vocab),
            ),
        ],
        cut_first_gets,
        cut_after: 100_000,
        gets: Arc::new(AtomicUsize::new(0)),
        ranges: Arc::new(Mutex::new(Vec::new())),
    }
}

#[test]
fn downloads_checks_and_keeps_what_is_complete() {
    let url = serve(hub(0, false));
    let dir = tempdir("full");
    let fetcher = Fetcher::new(&url);
    let statuses = fetcher.fetch(&entry(), &dir, &mut Silent).unwrap();
    assert_eq!(
        statuses,
        vec![FileStatus::Downloaded, FileStatus::Downloaded]
    );
    assert_eq!(
        std::fs::read(dir.join("weights.bin")).unwrap(),
        weights_bytes()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("text/vocab.txt")).unwrap(),
        "[PAD]\n[UNK]\n"
    );
    let recorded = std::fs::read_to_string(dir.join("weights.bin.sha256")).unwrap();
    assert_eq!(recorded.trim(), sha256(&weights_bytes()));
    let again = fetcher.fetch(&entry(), &dir, &mut Silent).unwrap();
    assert_eq!(
        again,
        vec![FileStatus::AlreadyPresent, FileStatus::AlreadyPresent]
    );
}

#[test]
fn an_interrupted_download_resumes_with_a_range_request() {
    let hub = hub(1, false);
    let ranges = hub.ranges.clone();
    let url = serve(hub);
    let dir = tempdir("resume");
    let fetcher = Fetcher::new(&url);
    let first = fetcher.fetch(&entry(), &dir, &mut Silent).unwrap_err();
    assert!(
        matches!(
            first,
            FetchError::Incomplete { .. } | FetchError::Unreachable { .. }
        ),
        "{first}"
    );
    assert!(first.to_string().contains("again"), "{first}");
    assert_eq!(
        std::fs::metadata(dir.join("weights.bin.part"))
            .unwrap()
            .len(),
        100_000
    );
    let statuses = fetcher.fetch(&entry(), &dir, &mut Silent).unwrap();
    assert_eq!(statuses[0], FileStatus::Resumed);
    assert_eq!(ranges.lock().unwrap().as_slice(), ["bytes=100000-"]);
    assert_eq!(
        std::fs::read(dir.join("weights.bin")).unwrap(),
        weights_bytes()
    );
    assert!(!dir.join("weights.bin.part").exists());
}

#[test]
fn a_checksum_mismatch_deletes_the_download() {
    let url = serve(hub(0, true));
    let dir = tempdir("corrupt");
    let error = Fetcher::new(&url)
        .fetch(&entry(), &dir, &mut Silent)
        .unwrap_err();
    assert!(matches!(error, FetchError::Checksum { .. }), "{error}");
    assert!(!dir.join("weights.bin").exists() && !dir.join("weights.bin.part").exists());
}

#[test]
fn an_unreachable_hub_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempdir("offline");
    let error = Fetcher::new(&format!("http://127.0.0.1:{port}"))
        .fetch(&entry(), &dir, &mut Silent)
        .unwrap_err();
    assert!(matches!(error, FetchError::Unreachable { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("not reachable from this machine"),
        "{error}"
    );

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_medfocus"))
        .args([
            "weights",
            "fetch",
            "biomedclip",
            "--hub-url",
            &format!("http://127.0.0.1:{port}"),
            "--dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not reachable"), "{stderr}");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_medfocus"))
        .args(["weights", "fetch", "no-such-model"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("known: biomedclip"));
}

#[test]
fn missing_files_on_the_hub_are_reported_by_status() {
    let url = serve(hub(0, false));
    let dir = tempdir("missing");
    let mut model = entry();
    model.files[0].path = "nope.bin";
    let error = Fetcher::new(&url)
        .fetch(&model, &dir, &mut Silent)
        .unwrap_err();
    assert!(
        matches!(error, FetchError::Http { status: 404, .. }),
        "{error}"
    );
}
