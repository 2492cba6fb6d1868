//! Parquet parts of a scale-out run: written to a temporary name beside the
//! final one and renamed (a rerun of the task writes the same bytes: no
//! timestamp, a fixed `created_by`), and read back by column name.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Int32Array, Int64Array, LargeStringArray, RecordBatch, StringArray, StringViewArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};
use crate::write::{TempPath, temp_beside};

/// Rows buffered before they are handed to the Parquet writer.
pub(crate) const BATCH_ROWS: usize = 1 << 20;

/// A Parquet part being written.
pub(crate) struct PartWriter {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    tmp: TempPath,
    dest: PathBuf,
}

/// A schema of non-null INT64 columns, then nullable UTF8 ones.
pub(crate) fn schema(ints: &[&str], strings: &[&str]) -> SchemaRef {
    let ints = ints.iter().map(|n| Field::new(*n, DataType::Int64, false));
    let strings = strings.iter().map(|n| Field::new(*n, DataType::Utf8, true));
    Arc::new(Schema::new(ints.chain(strings).collect::<Vec<_>>()))
}

impl PartWriter {
    /// Starts `dest` (its folder is created); the columns named in `delta`
    /// are delta-encoded (positions: increasing), the others plain; zstd.
    pub(crate) fn create(dest: &Path, schema: SchemaRef, delta: &[&str]) -> Result<PartWriter> {
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_dictionary_enabled(false)
            .set_created_by(format!("newsdedup {}", env!("CARGO_PKG_VERSION")));
        for col in delta {
            props = props.set_column_encoding(ColumnPath::from(*col), Encoding::DELTA_BINARY_PACKED);
        }
        let (file, tmp) = temp_beside(dest)?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props.build()))
            .map_err(|e| Error::invalid(dest, e.to_string()))?;
        Ok(PartWriter { writer, schema, tmp, dest: dest.to_path_buf() })
    }

    /// Writes one batch of columns (in the schema's order).
    pub(crate) fn write(&mut self, columns: Vec<ArrayRef>) -> Result<()> {
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| self.error(e))?;
        self.writer.write(&batch).map_err(|e| self.error(e))
    }

    /// Writes `cols` of INT64 values (emptied).
    pub(crate) fn write_ints(&mut self, cols: &mut [Vec<i64>]) -> Result<()> {
        if cols.first().is_none_or(Vec::is_empty) {
            return Ok(());
        }
        let arrays = cols.iter_mut().map(|c| Arc::new(Int64Array::from(std::mem::take(c))) as ArrayRef).collect();
        self.write(arrays)
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::invalid(&self.dest, format!("writing Parquet: {e}"))
    }

    /// Finishes the file and gives it its final name; returns its size.
    pub(crate) fn commit(self) -> Result<u64> {
        let PartWriter { writer, tmp, dest, .. } = self;
        let file = writer.into_inner().map_err(|e| Error::invalid(&dest, format!("writing Parquet: {e}")))?;
        file.sync_all().map_err(|e| Error::io(&dest, e))?;
        let bytes = file.metadata().map_err(|e| Error::io(&dest, e))?.len();
        tmp.persist(&dest)?;
        Ok(bytes)
    }
}

/// A Parquet file read whole, by column name.
pub(crate) struct Columns {
    path: PathBuf,
    batches: Vec<RecordBatch>,
}

impl Columns {
    /// Reads every row of `path`; an error names it.
    pub(crate) fn read(path: &Path) -> Result<Columns> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let bad = |e: parquet::errors::ParquetError| Error::invalid(path, format!("not a readable Parquet file: {e}"));
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(bad)?.build().map_err(bad)?;
        let batches = reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::invalid(path, format!("not a readable Parquet file: {e}")))?;
        Ok(Columns { path: path.to_path_buf(), batches })
    }

    /// The number of rows.
    pub(crate) fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    fn column(&self, name: &str) -> Result<Vec<&ArrayRef>> {
        self.batches
            .iter()
            .map(|b| b.column_by_name(name).ok_or_else(|| Error::invalid(&self.path, format!("no column {name:?}"))))
            .collect()
    }

    /// An integer column (INT64 or INT32); `None` for a null.
    pub(crate) fn ints(&self, name: &str) -> Result<Vec<Option<i64>>> {
        let mut out = Vec::with_capacity(self.rows());
        for a in self.column(name)? {
            if let Some(a) = a.as_any().downcast_ref::<Int64Array>() {
                out.extend(a.iter());
            } else if let Some(a) = a.as_any().downcast_ref::<Int32Array>() {
                out.extend(a.iter().map(|v| v.map(i64::from)));
            } else if a.data_type() == &DataType::Null {
                out.extend(std::iter::repeat_n(None, a.len()));
            } else {
                let msg = format!("column {name:?} is {} (INT64 expected)", a.data_type());
                return Err(Error::invalid(&self.path, msg));
            }
        }
        Ok(out)
    }

    /// An integer column without nulls.
    pub(crate) fn ints_not_null(&self, name: &str) -> Result<Vec<i64>> {
        let values = self.ints(name)?;
        values
            .iter()
            .enumerate()
            .map(|(row, v)| v.ok_or_else(|| Error::invalid(&self.path, format!("column {name:?}: null at row {row}"))))
            .collect()
    }

    /// A text column (any Arrow string type); `None` for a null.
    pub(crate) fn strings(&self, name: &str) -> Result<Vec<Option<String>>> {
        let mut out = Vec::with_capacity(self.rows());
        for a in self.column(name)? {
            let any = a.as_any();
            if let Some(a) = any.downcast_ref::<StringArray>() {
                out.extend(a.iter().map(|s| s.map(str::to_owned)));
            } else if let Some(a) = any.downcast_ref::<LargeStringArray>() {
                out.extend(a.iter().map(|s| s.map(str::to_owned)));
            } else if let Some(a) = any.downcast_ref::<StringViewArray>() {
                out.extend(a.iter().map(|s| s.map(str::to_owned)));
            } else if a.data_type() == &DataType::Null {
                out.extend(std::iter::repeat_n(None, a.len()));
            } else {
                let msg = format!("column {name:?} is {} (UTF8 expected)", a.data_type());
                return Err(Error::invalid(&self.path, msg));
            }
        }
        Ok(out)
    }
}
