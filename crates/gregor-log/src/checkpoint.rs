//! Kafka's checkpoint file format: a version line, a count line, then one
//! entry per line. Written to a temporary file, fsynced and renamed, so a
//! crash leaves either the old or the new file, never a mix.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, LogError, Result};
use crate::topic_partition::TopicPartition;

const VERSION: u32 = 0;

/// Writes `lines` as a checkpoint file at `path` atomically.
pub(crate) fn write_lines(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = format!("{VERSION}\n{}\n", lines.len());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    crate::disk_io::write_atomically(path, text.as_bytes()).context(|| "writing a checkpoint".to_string())
}

/// Reads the entry lines of the checkpoint at `path`; `None` if it does not exist.
pub(crate) fn read_lines(path: &Path) -> Result<Option<Vec<String>>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context(|| format!("reading checkpoint {}", path.display())),
    };
    let bad = |reason: &str| LogError::BadCheckpoint {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut lines = text.lines();
    let version: u32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad("missing version"))?;
    if version != VERSION {
        return Err(bad("unknown version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad("missing entry count"))?;
    let entries: Vec<String> = lines.map(str::to_string).collect();
    if entries.len() != count {
        return Err(bad("entry count does not match the entries"));
    }
    Ok(Some(entries))
}

/// A file of `topic partition offset` lines, as Kafka's
/// `recovery-point-offset-checkpoint` and friends.
#[derive(Debug, Clone)]
pub struct OffsetCheckpointFile {
    path: PathBuf,
}

impl OffsetCheckpointFile {
    /// The checkpoint at `path` (created on first write).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Writes every entry, replacing the file.
    pub fn write(&self, entries: &[(TopicPartition, u64)]) -> Result<()> {
        let lines: Vec<String> = entries
            .iter()
            .map(|(tp, o)| format!("{} {} {o}", tp.topic, tp.partition))
            .collect();
        write_lines(&self.path, &lines)
    }

    /// Reads the entries; an absent file reads as empty.
    pub fn read(&self) -> Result<Vec<(TopicPartition, u64)>> {
        let Some(lines) = read_lines(&self.path)? else {
            return Ok(Vec::new());
        };
        lines
            .iter()
            .map(|line| {
                let mut parts = line.split(' ');
                let parsed = (|| {
                    let topic = parts.next()?.to_string();
                    let partition = parts.next()?.parse().ok()?;
                    let offset = parts.next()?.parse().ok()?;
                    parts
                        .next()
                        .is_none()
                        .then_some((TopicPartition { topic, partition }, offset))
                })();
                parsed.ok_or_else(|| LogError::BadCheckpoint {
                    path: self.path.clone(),
                    reason: format!("bad entry {line:?}"),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip_in_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        let file = OffsetCheckpointFile::new(path.clone());
        assert!(file.read().unwrap().is_empty());
        let entries = vec![
            (TopicPartition::new("orders", 3), 42),
            (TopicPartition::new("a-b", 0), 7),
        ];
        file.write(&entries).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n2\norders 3 42\na-b 0 7\n");
        assert_eq!(file.read().unwrap(), entries);
    }

    #[test]
    fn malformed_files_are_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        std::fs::write(&path, "0\n2\nt 0 1\n").unwrap();
        let err = OffsetCheckpointFile::new(path).read().unwrap_err();
        assert!(err.to_string().contains("entry count"), "{err}");
    }
}
