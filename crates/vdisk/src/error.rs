//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while opening, reading or writing a disk image.
///
/// Variants that come from the image's content name the structure, the byte offset in the image
/// file (or on the virtual disk, where said) and the expected and actual values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused or failed an I/O operation.
    #[error("{path}: cannot {op} at offset {offset:#x}: {source}")]
    Io {
        /// The file or device.
        path: PathBuf,
        /// What was being done ("read", "write", "open", "flush", ...).
        op: &'static str,
        /// Byte offset in the file (0 for operations without one).
        offset: u64,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Another process (or another handle in this one) holds the image: a lock on it, or an
    /// open descriptor for writing.
    #[error("{path}: in use: {holder}; close it first")]
    Locked {
        /// The file or device.
        path: PathBuf,
        /// Who holds it, as far as can be told.
        holder: String,
    },
    /// The file or device cannot be opened for writing (read-only file, device or file system).
    #[error("{path}: the image is read-only and cannot be opened for writing: {source}")]
    ReadOnlyImage {
        /// The file or device.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A write was attempted on a disk that was opened read-only.
    #[error("{path}: the disk was opened read-only; open it for writing to change it")]
    ReadOnlyOpen {
        /// The file or device.
        path: PathBuf,
    },
    /// An access beyond the end of the virtual disk (or of a partition).
    #[error(
        "access of {len} bytes at virtual offset {offset:#x} is beyond the end ({size:#x} bytes)"
    )]
    OutOfRange {
        /// Virtual offset of the access.
        offset: u64,
        /// Its length.
        len: u64,
        /// The size of the disk or partition.
        size: u64,
    },
    /// The image is in a format this crate deliberately does not read.
    #[error(
        "{path}: this is a {format} image, which winrescue does not open; convert it first: {hint}"
    )]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// "qcow2", "VMDK", ...
        format: &'static str,
        /// How to convert it.
        hint: String,
    },
    /// A signature (magic) is not the expected one.
    #[error("at offset {offset:#x}: {structure} signature is {actual:?}, expected {expected:?}")]
    BadSignature {
        /// The structure being read.
        structure: &'static str,
        /// Byte offset in the image file.
        offset: u64,
        /// The expected signature.
        expected: &'static str,
        /// What was found (lossy text).
        actual: String,
    },
    /// A checksum does not match.
    #[error(
        "at offset {offset:#x}: {structure} checksum is {stored:#010x}, computed {computed:#010x}"
    )]
    BadChecksum {
        /// The structure being read.
        structure: &'static str,
        /// Byte offset in the image file.
        offset: u64,
        /// The value stored in the file.
        stored: u32,
        /// The value computed from the data.
        computed: u32,
    },
    /// A field holds a value that is invalid or outside what this crate accepts.
    #[error(
        "at offset {offset:#x}: {structure} field {field} is {actual:#x}, expected {expected}"
    )]
    BadField {
        /// The structure being read.
        structure: &'static str,
        /// The field.
        field: &'static str,
        /// Byte offset of the structure in the image file.
        offset: u64,
        /// What was expected, in words.
        expected: String,
        /// The value found.
        actual: u64,
    },
    /// The file ends before a structure or data block it must contain.
    #[error("{structure} at offset {offset:#x} ({len} bytes) lies beyond the end of the file ({file_size:#x} bytes): the image is truncated")]
    Truncated {
        /// The structure being read.
        structure: &'static str,
        /// Byte offset in the image file.
        offset: u64,
        /// Its length.
        len: u64,
        /// The size of the image file.
        file_size: u64,
    },
    /// A write into space that does not exist in the image file yet (unallocated or partially
    /// present block). winrescue only writes into space that already exists.
    #[error("refusing to write {len} bytes at virtual offset {offset:#x}: {container} block {block} is {state}; winrescue only writes into space that already exists in the image")]
    WriteToUnallocated {
        /// Virtual offset of the write.
        offset: u64,
        /// Its length.
        len: u64,
        /// "VHD" or "VHDX".
        container: &'static str,
        /// Block number.
        block: u64,
        /// The block's state in words.
        state: &'static str,
    },
    /// A differencing VHD whose parent image cannot be found next to it.
    #[error("{child}: differencing image whose parent {parent_name:?} was not found (looked for {tried:?}); put the parent next to it, or merge the chain first (qemu-img convert -O raw {child} OUT.raw)")]
    ParentNotFound {
        /// The child image.
        child: PathBuf,
        /// The parent name recorded in the child.
        parent_name: String,
        /// The paths that were tried.
        tried: Vec<PathBuf>,
    },
    /// The parent found does not carry the unique id the child expects.
    #[error(
        "{parent}: parent image's unique id is {actual}, but the child {child} expects {expected}"
    )]
    ParentMismatch {
        /// The child image.
        child: PathBuf,
        /// The parent image found.
        parent: PathBuf,
        /// The id the child records.
        expected: String,
        /// The parent's id.
        actual: String,
    },
    /// A chain of differencing images that is too long or loops.
    #[error("{path}: chain of differencing images is deeper than {limit} or loops")]
    ParentChain {
        /// The image where the chain was cut.
        path: PathBuf,
        /// The depth limit.
        limit: usize,
    },
    /// A VHDX whose log holds entries that were never replayed.
    #[error("{path}: the VHDX log is not empty (LogGuid {log_guid}): it must be replayed first; attach the disk once in Hyper-V/Windows, or run `qemu-img check -r all {path}`")]
    VhdxLogNotEmpty {
        /// The image.
        path: PathBuf,
        /// The header's LogGuid.
        log_guid: String,
    },
    /// A feature of the image that this crate does not implement.
    #[error("{path}: {what}")]
    Unsupported {
        /// The image.
        path: PathBuf,
        /// What is not supported and what to do about it.
        what: String,
    },
    /// A remote image (a URL) could not be read: the connection, the server or its answers
    /// failed, after the retries transient failures get. The URL is shown redacted.
    #[error("{url}: {reason}")]
    Remote {
        /// The URL, its secrets redacted.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The server refused a request (403 for a wrong or expired SAS, 404, 412, ...).
    #[error("{url}: {reason} ({status}{})", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default())]
    RemoteRefused {
        /// The URL, its secrets redacted.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The service's error code (`x-ms-error-code`), if it gave one.
        code: Option<String>,
        /// What it means.
        reason: String,
    },
    /// The server does not serve byte ranges: winrescue reads a few megabytes of a disk, never
    /// the whole of it.
    #[error("{url}: the server does not serve byte ranges ({why}); winrescue reads only parts of a disk, so it needs a server that answers Range requests with 206 Partial Content")]
    NoRangeSupport {
        /// The URL, its secrets redacted.
        url: String,
        /// What the server did.
        why: String,
    },
    /// A remote image that cannot be written: the SAS is read-only, or the URL is not an Azure
    /// page blob.
    #[error("{url}: cannot be written: {why}; to repair through a URL, create a disk in the upload state (az disk create --for-upload), grant write access to it (az disk grant-access --access-level Write), copy the snapshot into it (azcopy copy) and give that URL")]
    RemoteReadOnly {
        /// The URL, its secrets redacted.
        url: String,
        /// Why.
        why: String,
    },
    /// A partition table that cannot be read.
    #[error("{table} partition table: {reason}")]
    PartitionTable {
        /// "MBR" or "GPT".
        table: &'static str,
        /// What is wrong, with the offset where known.
        reason: String,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
