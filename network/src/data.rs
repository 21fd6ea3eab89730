//! CIFAR-10 in the official binary layout: records of one label byte and 3,072 pixel bytes
//! (1,024 red, 1,024 green, 1,024 blue, each plane row-major 32×32). Images stay bytes in
//! memory; batches are normalised as they are drawn.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Bytes of one record: the label, then the image.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
/// Bytes of one image, `3 × 32 × 32`.
pub const IMAGE_BYTES: usize = CHANNELS * SIDE * SIDE;
/// Colour channels.
pub const CHANNELS: usize = 3;
/// Image side in pixels.
pub const SIDE: usize = 32;
/// Classes, in label order.
pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
/// Training files, of which at least one must exist.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test file.
pub const TEST_FILE: &str = "test_batch.bin";

/// The sample embedded in the binary: the first 800 training and 200 test records of the
/// files in `../shared/data/cifar-10-batches-bin`, for tests and a run without the data set.
const SAMPLE_TRAIN: &[u8] = include_bytes!("../assets/sample_train.bin");
const SAMPLE_TEST: &[u8] = include_bytes!("../assets/sample_test.bin");

/// Images as bytes and their labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// `n × 3072` bytes, image after image.
    pub images: Vec<u8>,
    /// `n` labels below 10.
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether it holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]
    }

    /// Parses whole records; `name` names the source in errors.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Self> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD_BYTES) {
            return Err(Error::Data(format!(
                "{name}: {} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 records",
                bytes.len()
            )));
        }
        let n = bytes.len() / RECORD_BYTES;
        let mut data = Dataset {
            images: Vec::with_capacity(n * IMAGE_BYTES),
            labels: Vec::with_capacity(n),
        };
        for (i, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
            let label = record[0];
            if usize::from(label) >= CLASSES.len() {
                return Err(Error::Data(format!(
                    "{name}: record {i} has label {label}, expected 0 to 9"
                )));
            }
            data.labels.push(label);
            data.images.extend_from_slice(&record[1..]);
        }
        Ok(data)
    }

    fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Data(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&bytes, &path.display().to_string())
    }

    fn append(&mut self, other: Dataset) {
        self.images.extend(other.images);
        self.labels.extend(other.labels);
    }

    /// The first `n` images (all if fewer).
    pub fn truncated(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.images.truncate(n * IMAGE_BYTES);
        self.labels.truncate(n);
        self
    }
}

/// Where the data came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// CIFAR-10 files in this directory.
    Dir(PathBuf),
    /// The sample embedded in the binary.
    Sample,
}

/// Training and test sets.
pub struct Cifar10 {
    /// Training images.
    pub train: Dataset,
    /// Test images.
    pub test: Dataset,
    /// Where they came from.
    pub source: Source,
}

impl Cifar10 {
    /// Loads the training files that exist in `dir` (at least one) and its test file.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let mut train: Option<Dataset> = None;
        for name in TRAIN_FILES {
            let path = dir.join(name);
            if path.exists() {
                let part = Dataset::read(&path)?;
                match &mut train {
                    Some(t) => t.append(part),
                    None => train = Some(part),
                }
            }
        }
        let train = train.ok_or_else(|| {
            Error::Data(format!(
                "{}: no training file ({} … {})",
                dir.display(),
                TRAIN_FILES[0],
                TRAIN_FILES[4]
            ))
        })?;
        let test_path = dir.join(TEST_FILE);
        if !test_path.exists() {
            return Err(Error::Data(format!(
                "{}: missing {TEST_FILE}",
                dir.display()
            )));
        }
        let test = Dataset::read(&test_path)?;
        Ok(Cifar10 {
            train,
            test,
            source: Source::Dir(dir.to_path_buf()),
        })
    }

    /// The embedded sample.
    pub fn sample() -> Self {
        Cifar10 {
            train: Dataset::parse(SAMPLE_TRAIN, "embedded sample")
                .expect("the embedded sample parses"),
            test: Dataset::parse(SAMPLE_TEST, "embedded sample")
                .expect("the embedded sample parses"),
            source: Source::Sample,
        }
    }

    /// `dir` if it exists, else the embedded sample when `fallback` allows (the default
    /// directory), else an error naming `dir`.
    pub fn load_or_sample(dir: &Path, fallback: bool) -> Result<Self> {
        if dir.exists() {
            Self::load_dir(dir)
        } else if fallback {
            Ok(Self::sample())
        } else {
            Err(Error::Data(format!(
                "{}: no such directory (scripts/fetch_cifar10.sh downloads CIFAR-10)",
                dir.display()
            )))
        }
    }
}
