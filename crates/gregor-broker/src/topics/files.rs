//! What a partition directory records of its topic beside the log: the
//! topic id (`partition.metadata`, Kafka's file) and the config overrides
//! (`topic.config`, `key=value` lines).
//!
//! Both are written atomically (`gregor_log::disk_io::write_atomically`: a
//! temporary file, fsynced, renamed, the directory fsynced), so a crash
//! leaves the old file or the new one. Reading one that exists but cannot
//! be read or parsed is an error naming the file, never a silent default:
//! an unreadable `topic.config` taken as "no overrides" would turn a
//! compacted topic into a delete-policy one.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use gregor_log::disk_io::write_atomically;
use uuid::Uuid;

const PARTITION_METADATA: &str = "partition.metadata";
const TOPIC_CONFIG: &str = "topic.config";

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} is corrupt: {reason}", path.display()),
    )
}

/// The file's text; `None` when it does not exist.
fn read_text(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| corrupt(path, "not UTF-8")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(e.kind(), format!("reading {}: {e}", path.display()))),
    }
}

/// The topic id a partition directory records (`None` when it records
/// none). A file without a readable version 0 and topic id is an error.
pub fn read_topic_id(dir: &Path) -> io::Result<Option<Uuid>> {
    let path = dir.join(PARTITION_METADATA);
    let Some(text) = read_text(&path)? else {
        return Ok(None);
    };
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    if field("version: ") != Some("0") {
        return Err(corrupt(&path, "no version 0 line"));
    }
    let id = field("topic_id: ").ok_or_else(|| corrupt(&path, "no topic_id line"))?;
    Uuid::parse_str(id)
        .map(Some)
        .map_err(|e| corrupt(&path, format!("topic id {id:?}: {e}")))
}

/// Writes `bytes` to `path` atomically unless the file holds them already:
/// every start records every partition's files again (the catalog is the
/// authority), and 10,000 partitions × two atomic writes (three fsyncs
/// each) took seconds. A file lost after all (a crash before its
/// directory was synced) is written again at the next start.
fn write_if_changed(path: &Path, bytes: &[u8]) -> io::Result<()> {
    match std::fs::read(path) {
        Ok(current) if current == bytes => Ok(()),
        _ => write_atomically(path, bytes),
    }
}

/// Records the topic id in a partition directory.
pub fn write_topic_id(dir: &Path, id: Uuid) -> io::Result<()> {
    write_if_changed(
        &dir.join(PARTITION_METADATA),
        format!("version: 0\ntopic_id: {id}\n").as_bytes(),
    )
}

/// The config overrides a partition directory records (none when the file
/// does not exist). A line that is not `key=value` is an error.
pub fn read_overrides(dir: &Path) -> io::Result<BTreeMap<String, String>> {
    let path = dir.join(TOPIC_CONFIG);
    let Some(text) = read_text(&path)? else {
        return Ok(BTreeMap::new());
    };
    text.lines()
        .enumerate()
        .map(|(n, l)| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(corrupt(&path, format!("line {} is not key=value", n + 1))),
        })
        .collect()
}

/// Records the config overrides in a partition directory.
pub fn write_overrides(dir: &Path, overrides: &BTreeMap<String, String>) -> io::Result<()> {
    let text: String = overrides.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    write_if_changed(&dir.join(TOPIC_CONFIG), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_files_round_trip_and_absent_ones_read_as_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_topic_id(dir.path()).unwrap(), None);
        assert!(read_overrides(dir.path()).unwrap().is_empty());
        let id = Uuid::new_v4();
        write_topic_id(dir.path(), id).unwrap();
        let overrides = BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
        write_overrides(dir.path(), &overrides).unwrap();
        assert_eq!(read_topic_id(dir.path()).unwrap(), Some(id));
        assert_eq!(read_overrides(dir.path()).unwrap(), overrides);
        assert!(!dir.path().join("topic.config.tmp").exists());
    }

    #[test]
    fn files_already_holding_the_content_are_not_written_again() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let inode = || std::fs::metadata(dir.path().join(PARTITION_METADATA)).unwrap().ino();
        let id = Uuid::new_v4();
        write_topic_id(dir.path(), id).unwrap();
        let first = inode();
        write_topic_id(dir.path(), id).unwrap();
        assert_eq!(inode(), first, "the same content was written again");
        let other = Uuid::new_v4();
        write_topic_id(dir.path(), other).unwrap();
        assert_ne!(inode(), first, "new content replaces the file");
        assert_eq!(read_topic_id(dir.path()).unwrap(), Some(other));
    }

    #[test]
    fn a_broken_topic_config_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for broken in [&b"cleanup.policy"[..], b"\xff\xfe=compact\n", b"=compact\n"] {
            std::fs::write(dir.path().join(TOPIC_CONFIG), broken).unwrap();
            let err = read_overrides(dir.path()).unwrap_err();
            assert!(err.to_string().contains("topic.config"), "{err}");
        }
        // A crash before the first write completed leaves an empty file, which
        // is what `write_atomically` never leaves; an empty one reads as no
        // overrides (there were none written).
        std::fs::write(dir.path().join(TOPIC_CONFIG), b"").unwrap();
        assert!(read_overrides(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn a_broken_partition_metadata_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for broken in ["", "version: 0\n", "version: 0\ntopic_id: nope\n", "topic_id: 1\n"] {
            std::fs::write(dir.path().join(PARTITION_METADATA), broken).unwrap();
            let err = read_topic_id(dir.path()).unwrap_err();
            assert!(err.to_string().contains("partition.metadata"), "{broken:?}: {err}");
        }
    }
}
