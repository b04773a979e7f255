//! A power cut, simulated (test builds and the `fault-injection` feature).
//!
//! [`PowerLoss::start`] watches one directory tree. From then on every file
//! operation of [`crate::disk_io`] under it is recorded against the model
//! of a disk that keeps only what was made durable:
//!
//! - a file's bytes as of its last `fsync`/`fdatasync` (or `msync` of its
//!   mapping), plus a random prefix of the writes and length changes made
//!   since — the last kept write possibly torn (a random prefix of it);
//! - a file whose bytes were written through a memory mapping and not
//!   synced: either that, or everything the mapping holds (the kernel may
//!   have written its pages back, or not);
//! - a directory's names as of its last `fsync`: a file created, renamed or
//!   removed since is, after the crash, where the last directory sync saw
//!   it (a file never named by a synced directory is gone).
//!
//! The crash happens just before the `crash_at`-th operation;
//! [`PowerLoss::restore_into`] writes what the disk then held into another
//! directory, where the code under test recovers from it. Files are known
//! by their inode; the model keeps a descriptor of each open so that no
//! inode number is reused while it runs. One simulation runs at a time
//! (others wait in `start`).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());
static STATE: Mutex<Option<Disk>> = Mutex::new(None);

fn state() -> MutexGuard<'static, Option<Disk>> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

struct FileModel {
    handle: File,
    durable: Option<Vec<u8>>,
    pending: Vec<Pending>,
    mapped: bool,
}

#[derive(Clone, Copy)]
enum Entry {
    File(usize),
    Dir,
}

/// What a crash left: relative path → file bytes (`None`: a directory).
type Image = Vec<(PathBuf, Option<Vec<u8>>)>;

struct Disk {
    root: PathBuf,
    operations: u64,
    crash_at: Option<u64>,
    rng: u64,
    files: Vec<FileModel>,
    by_inode: HashMap<(u64, u64), usize>,
    dirs: HashMap<PathBuf, BTreeMap<OsString, Entry>>,
    image: Option<Image>,
}

fn read_all(file: &File) -> Vec<u8> {
    let len = file.metadata().map_or(0, |m| m.len()) as usize;
    let mut bytes = vec![0u8; len];
    let mut at = 0;
    while at < len {
        match file.read_at(&mut bytes[at..], at as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => at += n,
        }
    }
    bytes.truncate(at);
    bytes
}

impl Disk {
    fn next_random(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_random() % (n as u64 + 1)) as usize
    }

    fn inode(file: &File) -> Option<(u64, u64)> {
        file.metadata().ok().map(|m| (m.dev(), m.ino()))
    }

    fn id_of(&self, file: &File) -> Option<usize> {
        Self::inode(file).and_then(|i| self.by_inode.get(&i).copied())
    }

    fn add_file(&mut self, file: &File, durable: Option<Vec<u8>>) -> Option<usize> {
        let inode = Self::inode(file)?;
        let handle = file.try_clone().ok()?;
        self.files.push(FileModel {
            handle,
            durable,
            pending: Vec::new(),
            mapped: false,
        });
        let id = self.files.len() - 1;
        self.by_inode.insert(inode, id);
        Some(id)
    }

    /// Records the directory's present names as durable.
    fn sync_dir(&mut self, dir: &Path) {
        let Ok(listing) = std::fs::read_dir(dir) else { return };
        let mut names = BTreeMap::new();
        for entry in listing.flatten() {
            let path = entry.path();
            let entry_kind = if path.is_dir() {
                Some(Entry::Dir)
            } else {
                File::open(&path)
                    .ok()
                    .and_then(|f| self.id_of(&f).or_else(|| self.add_file(&f, None)).map(Entry::File))
            };
            if let Some(kind) = entry_kind {
                names.insert(entry.file_name(), kind);
            }
        }
        self.dirs.insert(dir.to_path_buf(), names);
    }

    /// Everything under `dir` counts as durable (the start of a simulation).
    fn adopt(&mut self, dir: &Path) {
        if let Ok(listing) = std::fs::read_dir(dir) {
            for entry in listing.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    self.adopt(&path);
                } else if let Ok(f) = File::open(&path) {
                    let bytes = read_all(&f);
                    self.add_file(&f, Some(bytes));
                }
            }
        }
        self.sync_dir(dir);
    }

    fn file_image(&mut self, id: usize) -> Vec<u8> {
        let coin = self.next_random() & 1 == 1;
        if self.files[id].mapped && coin {
            return read_all(&self.files[id].handle);
        }
        let keep = self.below(self.files[id].pending.len());
        let tear = self.next_random();
        let model = &self.files[id];
        let mut bytes = model.durable.clone().unwrap_or_default();
        for (i, op) in model.pending[..keep].iter().enumerate() {
            match op {
                Pending::Write(at, data) => {
                    let len = if i + 1 == keep {
                        (tear % (data.len() as u64 + 1)) as usize
                    } else {
                        data.len()
                    };
                    let end = *at as usize + len;
                    if bytes.len() < end {
                        bytes.resize(end, 0);
                    }
                    bytes[*at as usize..end].copy_from_slice(&data[..len]);
                }
                Pending::SetLen(len) => bytes.resize(*len as usize, 0),
            }
        }
        bytes
    }

    fn dir_image(&mut self, dir: &Path, relative: &Path, out: &mut Image) {
        let names = self.dirs.get(dir).cloned().unwrap_or_default();
        for (name, entry) in names {
            let rel = relative.join(&name);
            match entry {
                Entry::Dir => {
                    out.push((rel.clone(), None));
                    self.dir_image(&dir.join(&name), &rel, out);
                }
                Entry::File(id) => {
                    let bytes = self.file_image(id);
                    out.push((rel, Some(bytes)));
                }
            }
        }
    }

    fn capture(&mut self) {
        let mut image = Vec::new();
        let root = self.root.clone();
        self.dir_image(&root, Path::new(""), &mut image);
        self.image = Some(image);
    }
}

/// A running simulation; dropping it stops the recording.
pub struct PowerLoss {
    _serial: MutexGuard<'static, ()>,
}

impl PowerLoss {
    /// Starts modelling the disk under `root` (what it holds now counts as
    /// durable). The crash comes just before operation number `crash_at`
    /// (1 is the first; `None`: no crash until [`PowerLoss::restore_into`]).
    /// `seed` decides which unsynced writes survive.
    pub fn start(root: &Path, crash_at: Option<u64>, seed: u64) -> Self {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut disk = Disk {
            root: root.to_path_buf(),
            operations: 0,
            crash_at,
            rng: seed,
            files: Vec::new(),
            by_inode: HashMap::new(),
            dirs: HashMap::new(),
            image: None,
        };
        disk.adopt(root);
        *state() = Some(disk);
        Self { _serial: serial }
    }

    /// File operations seen so far.
    pub fn operations(&self) -> u64 {
        state().as_ref().map_or(0, |d| d.operations)
    }

    /// True once the crash point has passed.
    pub fn crashed(&self) -> bool {
        state().as_ref().is_some_and(|d| d.image.is_some())
    }

    /// Writes into `into` (an empty directory) what the disk held after the
    /// crash — a crash now, if the crash point was not reached.
    pub fn restore_into(&self, into: &Path) -> io::Result<()> {
        let image = {
            let mut guard = state();
            let disk = guard.as_mut().expect("a running simulation");
            if disk.image.is_none() {
                disk.capture();
            }
            disk.image.clone().unwrap_or_default()
        };
        for (rel, bytes) in image {
            let path = into.join(rel);
            match bytes {
                None => std::fs::create_dir_all(&path)?,
                Some(bytes) => std::fs::write(&path, bytes)?,
            }
        }
        Ok(())
    }
}

impl Drop for PowerLoss {
    fn drop(&mut self) {
        *state() = None;
    }
}

fn with_disk(path: Option<&Path>, f: impl FnOnce(&mut Disk)) {
    let mut guard = state();
    if let Some(disk) = guard.as_mut() {
        if path.is_none_or(|p| p.starts_with(&disk.root)) {
            f(disk);
        }
    }
}

impl Disk {
    fn count(&mut self) {
        self.operations += 1;
        if self.image.is_none() && Some(self.operations) == self.crash_at {
            self.capture();
        }
    }
}

pub(super) fn crash_point_at(path: &Path) {
    with_disk(Some(path), Disk::count);
}

pub(super) fn crash_point_on(file: &File) {
    with_disk(None, |disk| {
        if disk.id_of(file).is_some() {
            disk.count();
        }
    });
}

pub(super) fn opened(path: &Path, file: &File, truncated: bool) {
    with_disk(Some(path), |disk| match disk.id_of(file) {
        Some(id) if truncated => disk.files[id].pending.push(Pending::SetLen(0)),
        Some(_) => {}
        None => {
            disk.add_file(file, None);
        }
    });
}

pub(super) fn wrote(file: &File, position: u64, bytes: &[u8]) {
    with_disk(None, |disk| {
        if let Some(id) = disk.id_of(file) {
            disk.files[id].pending.push(Pending::Write(position, bytes.to_vec()));
        }
    });
}

pub(super) fn set_len(file: &File, len: u64) {
    with_disk(None, |disk| {
        if let Some(id) = disk.id_of(file) {
            disk.files[id].pending.push(Pending::SetLen(len));
        }
    });
}

pub(super) fn synced(file: &File) {
    with_disk(None, |disk| {
        if let Some(id) = disk.id_of(file) {
            let model = &mut disk.files[id];
            model.durable = Some(read_all(&model.handle));
            model.pending.clear();
        }
    });
}

pub(super) fn mapped(file: &File) {
    with_disk(None, |disk| {
        if let Some(id) = disk.id_of(file) {
            disk.files[id].mapped = true;
        }
    });
}

pub(super) fn synced_dir(dir: &Path) {
    with_disk(Some(dir), |disk| disk.sync_dir(dir));
}
