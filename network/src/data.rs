//! CIFAR-10 in the official binary layout: records of one label byte and 3,072 pixel bytes
//! (1,024 red, 1,024 green, 1,024 blue, each plane row-major 32×32). Images stay bytes in
//! memory; batches are normalised as they are drawn.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
/// The embedded sample's test set, as a run's data fingerprint names it.
pub const SAMPLE_TEST_FILE: &str = "sample_test.bin";

/// Most records one data file may hold: the official files hold 10,000 each; a file of more
/// than ten times that is refused before it is read.
pub const MAX_FILE_RECORDS: u64 = 100_000;

/// The seed of the validation split's fixed shuffle.
const HOLD_OUT_SEED: u64 = 0x005E_ED0F_5B11;

/// The sample embedded in the binary: the first 800 training and 200 test records of the
/// files in `../shared/data/cifar-10-batches-bin`, for tests and a run without the data set.
const SAMPLE_TRAIN: &[u8] = include_bytes!("../assets/sample_train.bin");
const SAMPLE_TEST: &[u8] = include_bytes!("../assets/sample_test.bin");

/// Images as bytes and their labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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

    /// Moves `n` images out into a new set: the last `n` of a fixed shuffle (the same whatever
    /// the run's seed, so that runs compared on it are judged on the same images). The images
    /// kept stay in their order.
    pub fn hold_out(&mut self, n: usize) -> Dataset {
        let order = crate::batch::epoch_order(HOLD_OUT_SEED, 0, self.len());
        let mut held = vec![false; self.len()];
        let mut out = Dataset::default();
        // In the shuffle's order, so that a larger split contains a smaller one.
        for &i in &order[self.len() - n.min(self.len())..] {
            held[i] = true;
            out.images.extend_from_slice(self.image(i));
            out.labels.push(self.labels[i]);
        }
        let mut kept = Dataset::default();
        for (i, _) in held.iter().enumerate().filter(|(_, h)| !**h) {
            kept.images.extend_from_slice(self.image(i));
            kept.labels.push(self.labels[i]);
        }
        *self = kept;
        out
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
        let len = record_file_len(path)?;
        let bytes = read_checked(path, len)?;
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
#[derive(Clone)]
pub struct Cifar10 {
    /// Training images.
    pub train: Dataset,
    /// Test images.
    pub test: Dataset,
    /// Where they came from.
    pub source: Source,
    /// Fingerprints of the files read, in the order read.
    prints: Vec<FilePrint>,
}

impl Cifar10 {
    /// The directory the files were read from (none for the embedded sample).
    pub fn source_dir(&self) -> Option<&Path> {
        match &self.source {
            Source::Dir(dir) => Some(dir),
            Source::Sample => None,
        }
    }

    /// Loads the training files that exist in `dir` (at least one) and its test file.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let mut train: Option<Dataset> = None;
        let mut prints = Vec::new();
        for name in TRAIN_FILES {
            let path = dir.join(name);
            if path.exists() {
                let part = Dataset::read(&path)?;
                prints.push(FilePrint::of_dataset(name, &part));
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
        prints.push(FilePrint::of_dataset(TEST_FILE, &test));
        Ok(Cifar10 {
            train,
            test,
            source: Source::Dir(std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())),
            prints,
        })
    }

    /// The embedded sample.
    pub fn sample() -> Self {
        // The sample is part of the binary: it parses, or no test would pass.
        let train =
            Dataset::parse(SAMPLE_TRAIN, "embedded sample").expect("the embedded sample parses");
        let test =
            Dataset::parse(SAMPLE_TEST, "embedded sample").expect("the embedded sample parses");
        let prints = vec![
            FilePrint::of_dataset("sample_train.bin", &train),
            FilePrint::of_dataset(SAMPLE_TEST_FILE, &test),
        ];
        Cifar10 {
            train,
            test,
            source: Source::Sample,
            prints,
        }
    }

    /// Where the data came from, with a cheap fingerprint of every file (see [`DataSource`]).
    pub fn describe(&self) -> DataSource {
        DataSource {
            dir: match &self.source {
                Source::Sample => None,
                Source::Dir(dir) => Some(dir.clone()),
            },
            files: self.prints.clone(),
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

/// The length of a CIFAR-10 file, checked by its metadata before a byte is read: a regular
/// file of a whole number of records, at most [`MAX_FILE_RECORDS`].
fn record_file_len(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Data(format!("cannot read {}: {e}", path.display())))?;
    let len = meta.len();
    let record = RECORD_BYTES as u64;
    if !meta.is_file() {
        Err(Error::Data(format!(
            "{} is not a regular file",
            path.display()
        )))
    } else if len == 0 || len % record != 0 {
        Err(Error::Data(format!(
            "{}: {len} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 records",
            path.display()
        )))
    } else if len / record > MAX_FILE_RECORDS {
        Err(Error::Data(format!(
            "{}: {} records is more than the {MAX_FILE_RECORDS} a data file may hold (the official files hold 10,000)",
            path.display(),
            len / record
        )))
    } else {
        Ok(len)
    }
}

/// The bytes of `path`, which must be a regular file of at most `max` bytes: checked by its
/// metadata first, so that a FIFO, a device or a huge file costs nothing.
pub fn read_checked(path: &Path, max: u64) -> Result<Vec<u8>> {
    let fail =
        |e: &dyn std::fmt::Display| Error::Data(format!("cannot read {}: {e}", path.display()));
    // Open only what is a regular file: opening a FIFO for reading waits for a writer.
    let meta = std::fs::metadata(path).map_err(|e| fail(&e))?;
    if !meta.is_file() {
        return Err(Error::Data(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if meta.len() > max {
        return Err(Error::Data(format!(
            "{} is {} bytes, more than the {max} expected",
            path.display(),
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .map_err(|e| fail(&e))?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(&e))?;
    if bytes.len() as u64 > max {
        return Err(Error::Data(format!(
            "{} grew past {max} bytes while read",
            path.display()
        )));
    }
    Ok(bytes)
}

/// What a run was trained on: the directory (absent for the embedded sample) and a cheap
/// fingerprint of each file, so that a resumed run finds its data again and refuses other data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// The directory, as an absolute path; `None` for the embedded sample.
    pub dir: Option<PathBuf>,
    /// Every file read.
    pub files: Vec<FilePrint>,
}

impl DataSource {
    /// Where it is, for messages.
    pub fn name(&self) -> String {
        match &self.dir {
            Some(d) => d.display().to_string(),
            None => "the embedded sample".into(),
        }
    }
}

/// One file's size and a hash of its first and last records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePrint {
    /// The file's name.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// FNV-1a (64 bits, hex) of its first and last records.
    pub ends: String,
}

impl FilePrint {
    fn of_dataset(name: &str, data: &Dataset) -> Self {
        let record = |i: usize| std::iter::once(&data.labels[i]).chain(data.image(i));
        let n = data.len();
        FilePrint {
            name: name.into(),
            bytes: (n * RECORD_BYTES) as u64,
            ends: format!("{:016x}", fnv1a(record(0).chain(record(n - 1)))),
        }
    }
}

/// FNV-1a, 64 bits: a cheap hash to tell files apart (not a defence against forgery).
fn fnv1a<'a>(bytes: impl Iterator<Item = &'a u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The name of class `c`, or "?" past the ten.
pub fn class_name(c: usize) -> &'static str {
    CLASSES.get(c).copied().unwrap_or("?")
}

/// Largest image file read (a 32×32 PNG is a few kilobytes).
const MAX_IMAGE_BYTES: u64 = 16 << 20;

/// A 32×32 image file (PNG), as bytes `[3, 32, 32]`: size-checked before it is read,
/// dimensions checked from the header before the pixels are decoded.
pub fn read_image(path: &Path) -> Result<ndarray::Array3<u8>> {
    let bytes = read_checked(path, MAX_IMAGE_BYTES)?;
    decode_image(&bytes, &path.display().to_string())
}

/// [`read_image`] of bytes in memory; `name` names them in errors.
pub fn decode_image(bytes: &[u8], name: &str) -> Result<ndarray::Array3<u8>> {
    let fail =
        |e: &dyn std::fmt::Display| Error::Data(format!("{name}: cannot read the image: {e}"));
    let reader = image::io::Reader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| fail(&e))?;
    let (w, h) = reader.into_dimensions().map_err(|e| fail(&e))?;
    if (w, h) != (SIDE as u32, SIDE as u32) {
        return Err(Error::Data(format!(
            "{name} is {w}×{h} pixels; the network takes {SIDE}×{SIDE} images"
        )));
    }
    let picture = image::load_from_memory(bytes)
        .map_err(|e| fail(&e))?
        .to_rgb8();
    Ok(ndarray::Array3::from_shape_fn(
        (CHANNELS, SIDE, SIDE),
        |(c, r, q)| picture.get_pixel(q as u32, r as u32)[c],
    ))
}

/// Largest side of an image [`decode_resized`] decodes.
pub const MAX_UPLOAD_SIDE: u32 = 4096;

/// A PNG or JPEG image of any size up to [`MAX_UPLOAD_SIDE`] a side, as bytes `[3, 32, 32]`:
/// its centred square, resized. The format is read from the bytes, the dimensions from the
/// header before any pixel is decoded, and the decoder's memory is limited; `name` names the
/// image in errors.
pub fn decode_resized(bytes: &[u8], name: &str) -> Result<ndarray::Array3<u8>> {
    use image::{ImageFormat, imageops::FilterType};
    let fail =
        |e: &dyn std::fmt::Display| Error::Data(format!("{name}: cannot read the image: {e}"));
    let mut reader = image::io::Reader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| fail(&e))?;
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg)) {
        return Err(Error::Data(format!("{name} is not a PNG or JPEG image")));
    }
    let mut limits = image::io::Limits::default();
    limits.max_image_width = Some(MAX_UPLOAD_SIDE);
    limits.max_image_height = Some(MAX_UPLOAD_SIDE);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    let picture = reader.decode().map_err(|e| fail(&e))?.to_rgb8();
    let (w, h) = picture.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::Data(format!("{name} has no pixels")));
    }
    let side = w.min(h);
    let square = image::imageops::crop_imm(&picture, (w - side) / 2, (h - side) / 2, side, side);
    let small = image::imageops::resize(&*square, SIDE as u32, SIDE as u32, FilterType::Triangle);
    Ok(ndarray::Array3::from_shape_fn(
        (CHANNELS, SIDE, SIDE),
        |(c, r, q)| small.get_pixel(q as u32, r as u32)[c],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The split moves whole records, keeps the rest in order, is the same every time, and a
    /// larger split holds a smaller one.
    #[test]
    fn hold_out_moves_a_fixed_part_whole() {
        let sample = Cifar10::sample().train;
        let mut small = sample.clone();
        let held = small.hold_out(40);
        assert_eq!((held.len(), small.len()), (40, sample.len() - 40));
        let mut again = sample.clone();
        assert_eq!(again.hold_out(40), held);
        assert_eq!(again, small);
        let record = |d: &Dataset, i: usize| (d.labels[i], d.image(i).to_vec());
        let all: Vec<_> = (0..sample.len()).map(|i| record(&sample, i)).collect();
        let kept: Vec<_> = (0..small.len()).map(|i| record(&small, i)).collect();
        let out: Vec<_> = (0..held.len()).map(|i| record(&held, i)).collect();
        assert!(out.iter().all(|r| all.contains(r)));
        // The kept records are the others, in their order.
        let rest: Vec<_> = all.iter().filter(|r| !out.contains(r)).cloned().collect();
        assert_eq!(kept, rest);
        let mut large = sample.clone();
        let more = large.hold_out(80);
        assert!(out.iter().all(|r| (0..80).any(|i| record(&more, i) == *r)));
        let mut none = sample.clone();
        assert!(none.hold_out(0).is_empty());
        assert_eq!(none, sample);
    }
}
