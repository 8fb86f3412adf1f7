//! The artifact format, `<collection>.milvus.bin`: a magic, then length-prefixed frames.
//!
//! ```text
//! "DRCTLMV1"
//! 'H' u32le len  header: JSON (schema as base64 protobuf, partitions, indexes, …)
//! 'B' u32le len  one batch: an InsertRequest protobuf (partition, field data, rows)
//! …
//! 'E' u32le len  trailer: JSON {"rows": N, "partitions": {name: rows}}
//! ```
//!
//! A batch is the server's own `FieldData` as a query returned it — vectors as packed floats
//! or bytes, bit for bit, the dynamic field's JSON untouched — so a restore sends it back as
//! it came. The trailer makes a truncated artifact detectable.

use super::proto::milvus::InsertRequest;
use super::proto::schema::{field_data, scalar_field, vector_field, FieldData};
use crate::error::{Error, Result};
use crate::source::ByteReader;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::io::AsyncReadExt;

pub const MAGIC: &[u8; 8] = b"DRCTLMV1";
pub const HEADER: u8 = b'H';
pub const BATCH: u8 = b'B';
pub const END: u8 = b'E';
/// No frame drctl writes comes near this; a larger length means a corrupt artifact, and is
/// refused before anything is allocated.
const MAX_FRAME: u32 = 512 << 20;

/// What recreating the collection needs, besides its rows.
#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    pub collection: String,
    pub server_version: String,
    /// `CollectionSchema`, protobuf, base64.
    pub schema: String,
    pub shards_num: i32,
    pub consistency_level: i32,
    pub num_partitions: i64,
    pub properties: Vec<(String, String)>,
    /// Partitions in creation order (`_default` included).
    pub partitions: Vec<String>,
    /// Partitions are derived from a partition-key field: rows are inserted without naming one.
    pub partition_key: bool,
    pub indexes: Vec<Index>,
    /// The hybrid timestamp every page was read at.
    pub guarantee_ts: u64,
}

impl Header {
    /// The counts before any batch is read: every partition the export covers, at zero, so
    /// an empty partition counts as the trailer counts it.
    pub fn zero_counts(&self) -> Trailer {
        let names: Vec<String> = if self.partition_key {
            vec![super::BY_KEY.to_string()]
        } else {
            self.partitions.clone()
        };
        Trailer {
            rows: 0,
            partitions: names.into_iter().map(|p| (p, 0)).collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Index {
    pub field: String,
    pub name: String,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Trailer {
    pub rows: u64,
    pub partitions: BTreeMap<String, u64>,
}

pub fn frame(tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.push(tag);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A batch frame, the message encoded in place (a page is megabytes: no second copy).
pub fn batch_frame(batch: &InsertRequest) -> Vec<u8> {
    let len = batch.encoded_len();
    let mut out = Vec::with_capacity(len + 5);
    out.push(BATCH);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    batch
        .encode(&mut out)
        .expect("a Vec grows to hold the message");
    out
}

/// Reads an artifact frame by frame; every malformation is an error naming what was wrong.
pub struct Frames {
    r: ByteReader,
    pub frames: u64,
}

impl Frames {
    pub async fn open(mut r: ByteReader) -> Result<Frames> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)
            .await
            .map_err(|_| Error::failed("not a drctl Milvus export: too short for its magic"))?;
        if &magic != MAGIC {
            return Err(Error::failed("not a drctl Milvus export (wrong magic)"));
        }
        Ok(Frames { r, frames: 0 })
    }

    /// The next frame, or `None` at a clean end of the stream.
    pub async fn next(&mut self) -> Result<Option<(u8, Vec<u8>)>> {
        let mut head = [0u8; 5];
        match self.r.read(&mut head[..1]).await? {
            0 => return Ok(None),
            _ => self.r.read_exact(&mut head[1..]).await.map_err(|_| self.truncated())?,
        };
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        if !matches!(head[0], HEADER | BATCH | END) || len > MAX_FRAME {
            return Err(Error::failed(format!(
                "frame {}: not a frame (tag {:#04x}, length {len}): the export is corrupt",
                self.frames + 1,
                head[0]
            )));
        }
        let mut buf = vec![0u8; len as usize];
        self.r.read_exact(&mut buf).await.map_err(|_| self.truncated())?;
        self.frames += 1;
        Ok(Some((head[0], buf)))
    }

    fn truncated(&self) -> Error {
        Error::failed(format!(
            "the export ends inside frame {}: it is truncated",
            self.frames + 1
        ))
    }

    pub async fn header(&mut self) -> Result<Header> {
        match self.next().await? {
            Some((HEADER, h)) => serde_json::from_slice(&h)
                .map_err(|e| Error::failed(format!("the export's header is not valid: {e}"))),
            _ => Err(Error::failed("the export does not start with its header")),
        }
    }
}

/// Decode one batch, checking that every column has the rows it claims.
pub fn decode_batch(bytes: &[u8], frame: u64) -> Result<InsertRequest> {
    let b = InsertRequest::decode(bytes)
        .map_err(|e| Error::failed(format!("frame {frame}: not a valid batch: {e}")))?;
    for f in &b.fields_data {
        let n = column_len(f);
        if n != b.num_rows as usize {
            return Err(Error::failed(format!(
                "frame {frame}: field {} holds {n} values for {} rows",
                f.field_name, b.num_rows
            )));
        }
    }
    Ok(b)
}

/// The batches of an export, in order, each decoded and checked. `next` returns `None` only
/// once the trailer has been read, has matched the rows counted per partition, and nothing
/// follows it; every malformation before that is an error. Structure checks and restores
/// read through this one reader, so they agree on what a whole export is.
pub struct Batches {
    frames: Frames,
    seen: Trailer,
}

impl Batches {
    /// Open an export and read its header.
    pub async fn open(raw: ByteReader) -> Result<(Header, Batches)> {
        let mut frames = Frames::open(raw).await?;
        let header = frames.header().await?;
        let seen = header.zero_counts();
        Ok((header, Batches { frames, seen }))
    }

    pub async fn next(&mut self) -> Result<Option<InsertRequest>> {
        let seen = &mut self.seen;
        match self.frames.next().await? {
            Some((BATCH, bytes)) => {
                let b = decode_batch(&bytes, self.frames.frames)?;
                seen.rows += b.num_rows as u64;
                *seen.partitions.entry(b.partition_name.clone()).or_default() += b.num_rows as u64;
                Ok(Some(b))
            }
            Some((END, bytes)) => {
                let t: Trailer = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::failed(format!("the export's trailer is not valid: {e}")))?;
                if self.frames.next().await?.is_some() {
                    return Err(Error::failed("data after the export's trailer"));
                }
                if t != *seen {
                    return Err(Error::failed(format!(
                        "the trailer says {} rows {:?}, the export holds {} {:?}",
                        t.rows, t.partitions, seen.rows, seen.partitions
                    )));
                }
                Ok(None)
            }
            Some(_) => Err(Error::failed("a second header inside the export")),
            None => Err(Error::failed(format!(
                "no trailer after {} rows: the export is truncated",
                seen.rows
            ))),
        }
    }

    /// Rows counted so far, per partition (all of them once `next` returned `None`).
    pub fn counts(&self) -> &Trailer {
        &self.seen
    }
}

/// Read a whole export: the header, every batch decoded, and a trailer that counts them.
/// Returns the header and the counts.
pub async fn check(raw: ByteReader) -> Result<(Header, Trailer)> {
    let (header, mut batches) = Batches::open(raw).await?;
    while batches.next().await?.is_some() {}
    let Batches { seen, .. } = batches;
    Ok((header, seen))
}

/// How many rows one column holds.
pub fn column_len(f: &FieldData) -> usize {
    match &f.field {
        Some(field_data::Field::Scalars(s)) => {
            use scalar_field::Data::*;
            match &s.data {
                Some(BoolData(a)) => a.data.len(),
                Some(IntData(a)) => a.data.len(),
                Some(LongData(a)) => a.data.len(),
                Some(FloatData(a)) => a.data.len(),
                Some(DoubleData(a)) => a.data.len(),
                Some(StringData(a)) => a.data.len(),
                Some(BytesData(a)) => a.data.len(),
                Some(ArrayData(a)) => a.data.len(),
                Some(JsonData(a)) => a.data.len(),
                _ => s.valid_data.len(),
            }
        }
        Some(field_data::Field::Vectors(v)) => {
            use vector_field::Data::*;
            let dim = v.dim.max(1) as usize;
            match &v.data {
                Some(FloatVector(a)) => a.data.len() / dim,
                Some(BinaryVector(b)) => b.len() / dim.div_ceil(8),
                Some(Float16Vector(b)) | Some(Bfloat16Vector(b)) => b.len() / (2 * dim),
                Some(Int8Vector(b)) => b.len() / dim,
                Some(SparseFloatVector(s)) => s.contents.len(),
                _ => v.valid_data.len(),
            }
        }
        _ => f.valid_data.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::milvus::proto::schema::{FloatArray, LongArray, ScalarField, VectorField};

    fn batch(rows: i64) -> Vec<u8> {
        let pk = FieldData {
            field_name: "id".into(),
            field: Some(field_data::Field::Scalars(ScalarField {
                data: Some(scalar_field::Data::LongData(LongArray {
                    data: (0..rows).collect(),
                })),
                ..Default::default()
            })),
            ..Default::default()
        };
        let v = FieldData {
            field_name: "v".into(),
            field: Some(field_data::Field::Vectors(VectorField {
                dim: 2,
                data: Some(vector_field::Data::FloatVector(FloatArray {
                    data: (0..rows * 2).map(|i| i as f32 + 0.1).collect(),
                })),
                ..Default::default()
            })),
            ..Default::default()
        };
        InsertRequest {
            partition_name: "_default".into(),
            fields_data: vec![pk, v],
            num_rows: rows as u32,
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn export(rows: &[i64], trailer: u64) -> Vec<u8> {
        export_with(rows, trailer, &["_default"])
    }

    /// An export whose batches all go to `_default`, of a collection with `partitions`.
    fn export_with(rows: &[i64], trailer: u64, partitions: &[&str]) -> Vec<u8> {
        let h = Header {
            collection: "c".into(),
            server_version: "v".into(),
            schema: String::new(),
            shards_num: 1,
            consistency_level: 0,
            num_partitions: 0,
            properties: vec![],
            partitions: partitions.iter().map(|p| p.to_string()).collect(),
            partition_key: false,
            indexes: vec![],
            guarantee_ts: 1,
        };
        let mut out = MAGIC.to_vec();
        out.extend(frame(HEADER, &serde_json::to_vec(&h).unwrap()));
        for r in rows {
            let b = InsertRequest::decode(&batch(*r)[..]).unwrap();
            out.extend(batch_frame(&b));
        }
        let mut t = Trailer {
            rows: trailer,
            partitions: partitions.iter().map(|p| (p.to_string(), 0)).collect(),
        };
        t.partitions.insert("_default".into(), trailer);
        out.extend(frame(END, &serde_json::to_vec(&t).unwrap()));
        out
    }

    async fn run(bytes: Vec<u8>) -> Result<(Header, Trailer)> {
        check(Box::new(std::io::Cursor::new(bytes))).await
    }

    #[tokio::test]
    async fn a_whole_export_counts_its_rows_and_every_cut_is_refused() {
        let good = export(&[3, 2], 5);
        let (_, t) = run(good.clone()).await.unwrap();
        assert_eq!(t.rows, 5);
        for cut in [4, 10, good.len() / 2, good.len() - 1] {
            let e = run(good[..cut].to_vec()).await.unwrap_err();
            assert!(
                e.message().contains("truncated") || e.message().contains("too short"),
                "cut at {cut}: {}",
                e.message()
            );
        }
        let e = run(export(&[3, 2], 6)).await.unwrap_err();
        assert!(e.message().contains("the trailer says 6 rows"), "{}", e.message());
    }

    #[tokio::test]
    async fn an_empty_partition_counts_as_the_trailer_counts_it() {
        let (_, t) = run(export_with(&[3], 3, &["_default", "empty"])).await.unwrap();
        assert_eq!(t.partitions["empty"], 0);
        assert_eq!(t.partitions["_default"], 3);
    }

    #[tokio::test]
    async fn a_column_short_of_its_rows_is_refused() {
        let mut b = InsertRequest::decode(&batch(3)[..]).unwrap();
        b.num_rows = 4;
        let e = decode_batch(&b.encode_to_vec(), 7).unwrap_err();
        assert!(e.message().contains("frame 7: field id holds 3 values for 4 rows"), "{}", e.message());
    }
}
