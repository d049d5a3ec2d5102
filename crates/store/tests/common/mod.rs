//! Test doubles for llmos-store: a fake `python -m pip download`, fake wheels, fake
//! catalog entries, and a tiny loopback HTTP server.
#![allow(dead_code)] // each test file uses a different subset
#![allow(clippy::unwrap_used)] // test support: a failed setup should fail the test loudly

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use llmos_store::{CatalogEntry, ModelKind, Part, PinnedFile, Store};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

pub fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic bytes: the GGUF magic, then a pattern seeded by `seed`.
pub fn gguf_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut v: Vec<u8> = b"GGUF".to_vec();
    let mut x = seed as u32 | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push((x >> 8) as u8 % 7); // low entropy, so deflate has something to do
    }
    v.truncate(len);
    v
}

/// A scratch cache root plus a fake python whose "pip" serves wheels from `wheels/`.
///
/// Controls: while `state/hold` exists, the fake pip waits (after writing its pid to
/// `state/pip.pid`); each call appends its requirement to `state/calls`.
pub struct Fixture {
    _tmp: Option<tempfile::TempDir>,
    /// Holds `home/` (the cache root), `wheels/`, `state/` and `fake-python`.
    pub dir: PathBuf,
    /// False in a re-opened fixture: the wheels already exist.
    write_wheels: bool,
    pub root: PathBuf,
    pub wheels: PathBuf,
    pub state: PathBuf,
    pub python: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let mut fx = Fixture::reopen(tmp.path());
        fx._tmp = Some(tmp);
        fx.write_wheels = true;
        fs::create_dir_all(&fx.wheels).unwrap();
        fs::create_dir_all(&fx.state).unwrap();
        fx.write_fake_python();
        fx
    }

    /// The fixture another process created in `dir` (nothing is written).
    pub fn reopen(dir: &Path) -> Fixture {
        Fixture {
            _tmp: None,
            dir: dir.to_path_buf(),
            write_wheels: false,
            root: dir.join("home"),
            wheels: dir.join("wheels"),
            state: dir.join("state"),
            python: dir.join("fake-python"),
        }
    }

    fn write_fake_python(&self) {
        let (state, wheels, python) = (&self.state, &self.wheels, &self.python);
        let script = format!(
            r#"#!/bin/sh
# Stand-in for `python3 -m pip download ... REQ... --dest DIR` in llmos-store tests.
dest=""; specs=""
echo "$@" >> "{state}/args"
while [ $# -gt 0 ]; do
  case "$1" in
    --dest|-d) dest="$2"; shift 2 ;;
    *==*) specs="$specs $1"; shift ;;
    *) shift ;;
  esac
done
echo $specs >> "{state}/calls"
n=$(wc -l < "{state}/calls")
echo $$ > "{state}/pip-$n.pid"
echo $$ > "{state}/pip.pid"
# Held calls give up after 30 s, so a test whose pull fails to kill pip ends anyway.
i=0
while [ $i -lt 600 ] && {{ [ -e "{state}/hold" ] || [ -e "{state}/hold-$n" ]; }}; do sleep 0.05; i=$((i+1)); done
for spec in $specs; do
  pkg="${{spec%%==*}}"
  if [ ! -f "{wheels}/$pkg.whl" ]; then
    echo "ERROR: Could not find a version that satisfies the requirement $spec (from versions: none)" >&2
    echo "ERROR: No matching distribution found for $spec" >&2
    exit 1
  fi
done
for spec in $specs; do
  pkg="${{spec%%==*}}"
  cp "{wheels}/$pkg.whl" "$dest/$(echo "$pkg" | tr - _)-1.0-py3-none-any.whl"
  echo "Saved $dest/$pkg"
done
exit 0
"#,
            state = state.display(),
            wheels = wheels.display(),
        );
        fs::write(python, script).unwrap();
        fs::set_permissions(python, fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn store(&self) -> Store {
        Store::open(Some(self.root.clone()))
            .unwrap()
            .with_python(&self.python)
            .with_pip_args(Vec::new())
    }

    /// Writes `wheels/<package>.whl` holding `files` (name, bytes); deflated if `deflate`.
    pub fn add_wheel(&self, package: &str, files: &[(&str, &[u8])], deflate: bool) {
        if !self.write_wheels {
            return;
        }
        let path = self.wheels.join(format!("{package}.whl"));
        let mut zip = ZipWriter::new(fs::File::create(path).unwrap());
        let method = if deflate {
            CompressionMethod::Deflated
        } else {
            CompressionMethod::Stored
        };
        let opts = SimpleFileOptions::default().compression_method(method);
        let pkg_dir = package.replace('-', "_");
        zip.start_file(format!("{pkg_dir}/__init__.py"), opts)
            .unwrap();
        zip.write_all(b"").unwrap();
        for (name, bytes) in files {
            zip.start_file(*name, opts).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.start_file(format!("{pkg_dir}-1.0.dist-info/RECORD"), opts)
            .unwrap();
        zip.finish().unwrap();
    }

    /// A GGUF model of `parts.len()` wheels `<name>-partN`, each holding
    /// `<pkg>/data/partNN.bin`; returns its entry and the joined bytes.
    pub fn multipart_model(
        &self,
        name: &str,
        part_sizes: &[usize],
        seed: u8,
    ) -> (CatalogEntry, Vec<u8>) {
        let whole = gguf_bytes(part_sizes.iter().sum(), seed);
        let mut parts = Vec::new();
        let mut offset = 0;
        for (i, &size) in part_sizes.iter().enumerate() {
            let package = leak(format!("{name}-part{}", i + 1));
            let member = leak(format!(
                "{}/data/part{:02}.bin",
                package.replace('-', "_"),
                i + 1
            ));
            self.add_wheel(
                package,
                &[(member, &whole[offset..offset + size])],
                i % 2 == 0,
            );
            parts.push(Part {
                package,
                version: "1.0",
                member,
                bytes: size as u64,
            });
            offset += size;
        }
        let entry = CatalogEntry {
            name: leak(name.to_string()),
            aliases: &[],
            description: "test model",
            kind: ModelKind::Gguf,
            sha256: leak(sha256_hex(&whole)),
            bytes: whole.len() as u64,
            parts: Box::leak(parts.into_boxed_slice()),
            files: &[],
        };
        (entry, whole)
    }

    /// A directory model in one wheel, files under `<pkg>/model/`.
    pub fn directory_model(&self, name: &str, files: &[(&str, Vec<u8>)]) -> CatalogEntry {
        let package = leak(format!("{name}-pkg"));
        let prefix = leak(format!("{}/model/", package.replace('-', "_")));
        let members: Vec<(String, &[u8])> = files
            .iter()
            .map(|(p, b)| (format!("{prefix}{p}"), b.as_slice()))
            .collect();
        let refs: Vec<(&str, &[u8])> = members.iter().map(|(p, b)| (p.as_str(), *b)).collect();
        self.add_wheel(package, &refs, true);
        let mut pinned: Vec<PinnedFile> = files
            .iter()
            .map(|(p, b)| PinnedFile {
                path: leak(p.to_string()),
                sha256: leak(sha256_hex(b)),
                bytes: b.len() as u64,
            })
            .collect();
        pinned.sort_by(|a, b| a.path.cmp(b.path));
        let manifest: String = pinned
            .iter()
            .map(|f| format!("{}  {}\n", f.sha256, f.path))
            .collect();
        let total: u64 = pinned.iter().map(|f| f.bytes).sum();
        CatalogEntry {
            name: leak(name.to_string()),
            aliases: &[],
            description: "test directory model",
            kind: ModelKind::Directory,
            sha256: leak(sha256_hex(manifest.as_bytes())),
            bytes: total,
            parts: Box::leak(
                vec![Part {
                    package,
                    version: "1.0",
                    member: prefix,
                    bytes: total,
                }]
                .into_boxed_slice(),
            ),
            files: Box::leak(pinned.into_boxed_slice()),
        }
    }

    pub fn hold(&self) {
        fs::write(self.state.join("hold"), b"").unwrap();
    }

    /// Makes the `n`th pip call (from 1) wait until [`Fixture::release`].
    pub fn hold_call(&self, n: usize) {
        fs::write(self.state.join(format!("hold-{n}")), b"").unwrap();
    }

    pub fn release(&self) {
        for entry in fs::read_dir(&self.state).unwrap().flatten() {
            if entry.file_name().to_string_lossy().starts_with("hold-") {
                let _ = fs::remove_file(entry.path());
            }
        }
        let _ = fs::remove_file(self.state.join("hold"));
    }

    /// Waits until the fake pip has started; returns its pid.
    pub fn wait_for_pip(&self) -> u32 {
        self.wait_for_pip_call(0)
    }

    /// Waits until the `n`th pip call (from 1; 0 = any) has started; returns its pid.
    pub fn wait_for_pip_call(&self, n: usize) -> u32 {
        let pidfile = if n == 0 {
            self.state.join("pip.pid")
        } else {
            self.state.join(format!("pip-{n}.pid"))
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(pid) = fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "the fake pip never started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every argument of every pip call, one line per call.
    pub fn pip_args(&self) -> Vec<String> {
        fs::read_to_string(self.state.join("args"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn pip_calls(&self) -> Vec<String> {
        fs::read_to_string(self.state.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Names in `<root>/tmp` (work in progress, or leftovers).
    pub fn tmp_entries(&self) -> Vec<String> {
        names_in(&self.root.join("tmp"))
    }

    pub fn model_entries(&self) -> Vec<String> {
        names_in(&self.root.join("models"))
    }

    /// The invariant every failed or interrupted pull must keep.
    pub fn assert_no_leftovers(&self) {
        assert_eq!(
            self.tmp_entries(),
            Vec::<String>::new(),
            "temp dirs left behind"
        );
        assert_eq!(
            self.model_entries(),
            Vec::<String>::new(),
            "half a model in the cache"
        );
    }
}

pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// What the loopback server answers for one path.
#[derive(Clone)]
pub enum Reply {
    Ok(Vec<u8>),
    /// Announces `len` bytes but sends only `body`, then closes.
    Truncated {
        body: Vec<u8>,
        len: usize,
    },
}

/// Serves `routes` on 127.0.0.1 (404 for anything else) from a background thread.
/// The loop is bounded: it stops after 30 s or 50 connections.
pub fn serve(routes: Vec<(&'static str, Reply)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut served = 0;
        while Instant::now() < deadline && served < 50 {
            match listener.accept() {
                Ok((stream, _)) => {
                    served += 1;
                    let _ = answer(stream, &routes);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    format!("http://{addr}")
}

fn answer(mut stream: TcpStream, routes: &[(&'static str, Reply)]) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    match routes.iter().find(|(p, _)| *p == path).map(|(_, r)| r) {
        Some(Reply::Ok(body)) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(body)?;
        }
        Some(Reply::Truncated { body, len }) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            )?;
            stream.write_all(body)?;
        }
        None => {
            let body = b"not found";
            write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(body)?;
        }
    }
    stream.flush()
}
