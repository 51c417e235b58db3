//! Reading request traces in the formats mokabench and libCacheSim use, plain or zstd-compressed (`.zst`):
//!
//! - **ARC** (`.lis`, Megiddo and Modha): lines `START_BLOCK NUMBER_OF_BLOCKS IGNORED REQUEST_NUMBER`; a line
//!   expands to `NUMBER_OF_BLOCKS` requests for consecutive keys from `START_BLOCK`.
//! - **LIRS** (`.trc`, `.txt`, Jiang and Zhang): one key per line; blank lines and lines starting with `#` or
//!   `*` (some LIRS traces end with one) are skipped.
//! - **CSV** (`.csv`, libCacheSim's csv reader): comma-separated, an optional header row; the key is the
//!   column named `obj_id` (or `object_id`, `key`, `id`) in a header, else the column `--csv-column` gives
//!   (1-based, libCacheSim's `obj-id-col`), default 2 (libCacheSim's `timestamp,obj_id,...` layout).
//!
//! Keys that are not unsigned integers (LIRS and CSV) are hashed to 64 bits with a fixed hash, so a trace
//! maps to the same keys on every run.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{bail, ensure, Context as _};

/// A trace's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    /// From the file name: `.lis` is ARC, `.csv` is CSV, anything else LIRS (after removing `.zst`).
    Auto,
    /// ARC `.lis`.
    Arc,
    /// LIRS: one key per line.
    Lirs,
    /// libCacheSim CSV.
    Csv,
}

/// One trace, expanded into its request keys.
pub struct Trace {
    /// The file name without its format extensions.
    pub name: String,
    /// The requests, in order.
    pub keys: Vec<u64>,
}

/// How to read a trace.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// The format, or `Auto`.
    pub format: TraceFormat,
    /// CSV: the 1-based key column when there is no recognisable header.
    pub csv_column: usize,
    /// Stop after this many requests (after expansion).
    pub limit: Option<usize>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            format: TraceFormat::Auto,
            csv_column: 2,
            limit: None,
        }
    }
}

/// The format `Auto` picks for `path`, and the name without extensions.
fn resolve(path: &Path, format: TraceFormat) -> (TraceFormat, String) {
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("trace")
        .to_owned();
    let bare = file.strip_suffix(".zst").unwrap_or(&file);
    let (detected, name) = if let Some(stem) = bare.strip_suffix(".lis") {
        (TraceFormat::Arc, stem)
    } else if let Some(stem) = bare.strip_suffix(".csv") {
        (TraceFormat::Csv, stem)
    } else {
        let stem = [".trc", ".txt"]
            .iter()
            .find_map(|ext| bare.strip_suffix(ext))
            .unwrap_or(bare);
        (TraceFormat::Lirs, stem)
    };
    let format = if format == TraceFormat::Auto {
        detected
    } else {
        format
    };
    (format, name.to_owned())
}

/// Reads the trace at `path`.
pub fn read(path: &Path, options: &ReadOptions) -> anyhow::Result<Trace> {
    let (format, name) = resolve(path, options.format);
    let file = File::open(path).with_context(|| format!("opening trace {}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "zst") {
        Box::new(
            zstd::stream::read::Decoder::new(file)
                .with_context(|| format!("starting zstd decoding of {}", path.display()))?,
        )
    } else {
        Box::new(file)
    };
    let limit = options.limit.unwrap_or(usize::MAX);
    let mut keys = Vec::new();
    let mut csv_column = None;
    for (index, line) in BufReader::new(reader).lines().enumerate() {
        if keys.len() >= limit {
            break;
        }
        let number = index + 1;
        let line = line.with_context(|| format!("reading {} at line {number}", path.display()))?;
        let at = || format!("{}:{number}", path.display());
        match format {
            TraceFormat::Arc => arc_line(&line, limit, &mut keys).with_context(at)?,
            TraceFormat::Lirs => {
                let field = line.trim();
                if !(field.is_empty() || field.starts_with('#') || field.starts_with('*')) {
                    keys.push(key_from(field));
                }
            }
            TraceFormat::Csv | TraceFormat::Auto => {
                if line.trim().is_empty() {
                    continue;
                }
                let fields: Vec<&str> = line.split(',').map(str::trim).collect();
                let column = match csv_column {
                    Some(column) => column,
                    None => {
                        let named = fields.iter().position(|f| {
                            ["obj_id", "object_id", "key", "id"]
                                .contains(&f.to_ascii_lowercase().as_str())
                        });
                        if let Some(column) = named {
                            csv_column = Some(column);
                            continue; // the header row
                        }
                        ensure!(options.csv_column >= 1, "--csv-column is 1-based");
                        csv_column = Some(options.csv_column - 1);
                        options.csv_column - 1
                    }
                };
                let Some(field) = fields.get(column) else {
                    bail!("{}: no column {} in {line:?}", at(), column + 1);
                };
                keys.push(key_from(field));
            }
        }
    }
    ensure!(
        !keys.is_empty(),
        "trace {} holds no requests",
        path.display()
    );
    Ok(Trace { name, keys })
}

/// Expands one ARC line into `keys`, stopping at `limit`.
fn arc_line(line: &str, limit: usize, keys: &mut Vec<u64>) -> anyhow::Result<()> {
    let mut fields = line.split_ascii_whitespace();
    let Some(start) = fields.next() else {
        return Ok(()); // blank line
    };
    let start: u64 = start
        .parse()
        .with_context(|| format!("bad START_BLOCK {start:?}"))?;
    let Some(count) = fields.next() else {
        bail!("missing NUMBER_OF_BLOCKS in {line:?}");
    };
    let count: u64 = count
        .parse()
        .with_context(|| format!("bad NUMBER_OF_BLOCKS {count:?}"))?;
    for offset in 0..count {
        if keys.len() >= limit {
            break;
        }
        keys.push(start.wrapping_add(offset));
    }
    Ok(())
}

/// An integer key as itself, anything else through a fixed hash (SipHash with zero keys).
fn key_from(field: &str) -> u64 {
    field.parse().unwrap_or_else(|_| {
        #[allow(deprecated)] // SipHasher's fixed keys are the point: the same key on every run.
        let mut hasher = std::hash::SipHasher::new();
        field.hash(&mut hasher);
        hasher.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(
        dir: &Path,
        name: &str,
        text: &str,
        compress: bool,
    ) -> anyhow::Result<std::path::PathBuf> {
        let path = dir.join(name);
        if compress {
            std::fs::write(&path, zstd::encode_all(text.as_bytes(), 3)?)?;
        } else {
            std::fs::write(&path, text)?;
        }
        Ok(path)
    }

    #[test]
    fn reads_each_format_plain_and_compressed() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let options = ReadOptions::default();

        let arc = write(dir.path(), "tiny.lis.zst", "10 3 0 0\n\n11 2 0 1\n", true)?;
        let trace = read(&arc, &options)?;
        assert_eq!(trace.name, "tiny");
        assert_eq!(trace.keys, [10, 11, 12, 11, 12]);
        let limited = ReadOptions {
            limit: Some(4),
            ..ReadOptions::default()
        };
        assert_eq!(read(&arc, &limited)?.keys, [10, 11, 12, 11]);

        let lirs = write(
            dir.path(),
            "loop.trc",
            "# comment\n5\n6\n\n5\nabc\n*\n",
            false,
        )?;
        let trace = read(&lirs, &options)?;
        assert_eq!(trace.name, "loop");
        assert_eq!(&trace.keys[..3], [5, 6, 5]);
        assert_eq!(trace.keys[3], key_from("abc"));
        assert_eq!(key_from("abc"), key_from("abc"));

        let csv = write(
            dir.path(),
            "w.csv.zst",
            "timestamp,obj_id,obj_size\n1,42,10\n2,43,10\n3,42,5\n",
            true,
        )?;
        assert_eq!(read(&csv, &options)?.keys, [42, 43, 42]);
        let headless = write(dir.path(), "h.csv", "1,7,10\n2,8,10\n", false)?;
        assert_eq!(read(&headless, &options)?.keys, [7, 8]);
        let third = ReadOptions {
            csv_column: 3,
            ..ReadOptions::default()
        };
        assert_eq!(read(&headless, &third)?.keys, [10, 10]);

        // Forcing a format overrides the name.
        let forced = ReadOptions {
            format: TraceFormat::Lirs,
            ..ReadOptions::default()
        };
        assert_eq!(read(&headless, &forced)?.keys.len(), 2);
        Ok(())
    }

    #[test]
    fn bad_input_is_an_error_naming_the_line() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let message = |path: &Path, options: &ReadOptions| {
            read(path, options)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        };
        let arc = write(dir.path(), "bad.lis", "10 x 0 0\n", false)?;
        let err = message(&arc, &ReadOptions::default());
        assert!(err.contains(":1: bad NUMBER_OF_BLOCKS"), "{err}");
        let short = write(dir.path(), "short.csv", "1,2\n1\n", false)?;
        let err = message(&short, &ReadOptions::default());
        assert!(err.contains(":2: no column 2"), "{err}");
        let empty = write(dir.path(), "empty.txt", "\n# nothing\n", false)?;
        assert!(message(&empty, &ReadOptions::default()).contains("holds no requests"));
        assert!(!message(&dir.path().join("missing.lis"), &ReadOptions::default()).is_empty());
        Ok(())
    }
}
