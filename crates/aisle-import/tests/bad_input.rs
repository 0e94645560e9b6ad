//! Bad input: every case names file, line and field, and leaves the store as it was.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aisle_core::Event;
use aisle_import::{Adapter, ImportOptions, Mapping, Source, TableFormat, import};
use aisle_store::{ReadStore, RedbStore};

const GOOD: &str = "user,item,event,ts\nu1,i1,view,1000\nu2,i2,purchase,2000\n";

fn csv_source() -> Source {
    Source::Table {
        format: TableFormat::Csv,
        mapping: Mapping::default(),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write fixture");
    path
}

fn snapshot(store: &RedbStore) -> (aisle_store::StoreCounts, Vec<Event>) {
    let mut events = Vec::new();
    store.scan_events(&mut |e| events.push(e)).expect("scan");
    (store.counts().expect("counts"), events)
}

/// A store holding the GOOD file, and a scratch directory for bad files.
fn seeded() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("store")).expect("open");
    let good = write(dir.path(), "good.csv", GOOD.as_bytes());
    import(&store, &csv_source(), &[good], &ImportOptions::default()).expect("good file imports");
    (dir, store)
}

/// Imports `bad` strictly and checks the error names `file`, `line` and `field`, and that
/// the store did not change. Returns the message.
fn rejects(
    source: &Source,
    file_name: &str,
    bytes: &[u8],
    line: &str,
    field: Option<&str>,
) -> String {
    let (dir, store) = seeded();
    let before = snapshot(&store);
    let bad = write(dir.path(), file_name, bytes);
    let options = ImportOptions {
        strict: true,
        ..ImportOptions::default()
    };
    let err = import(&store, source, std::slice::from_ref(&bad), &options)
        .expect_err("bad input is rejected");
    let message = err.to_string();
    assert!(
        message.contains(&bad.display().to_string()),
        "names the file: {message}"
    );
    assert!(message.contains(line), "names the line ({line}): {message}");
    if let Some(field) = field {
        assert!(
            message.contains(&format!("`{field}`")),
            "names the field {field}: {message}"
        );
    }
    assert!(
        snapshot(&store) == before,
        "the store is unchanged after: {message}"
    );
    message
}

#[test]
fn truncated_csv_row() {
    let msg = rejects(
        &csv_source(),
        "cut.csv",
        b"user,item,event,ts\nu3,i3,view,3000\nu4,i4",
        ":3:",
        None,
    );
    assert!(msg.contains("expected 4 fields, found 2"), "{msg}");
}

#[test]
fn truncated_gzip_file() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..2000 {
        writeln!(
            gz,
            "{}",
            if i == 0 {
                "user,item,event,ts".to_string()
            } else {
                format!("u{i},i{i},view,{i}")
            }
        )
        .expect("write");
    }
    let bytes = gz.finish().expect("gzip");
    let msg = rejects(
        &csv_source(),
        "cut.csv.gz",
        &bytes[..bytes.len() / 2],
        ":",
        None,
    );
    assert!(msg.contains("truncated"), "{msg}");
}

#[test]
fn wrong_column_type() {
    let msg = rejects(
        &csv_source(),
        "types.csv",
        b"user,item,event,ts\nu3,i3,view,3000\nu4,i4,view,yesterday\n",
        ":3:",
        Some("ts"),
    );
    assert!(msg.contains("\"yesterday\""), "{msg}");
}

#[test]
fn invalid_utf8() {
    rejects(
        &csv_source(),
        "latin1.csv",
        b"user,item,event,ts\nu\xe9\xff,i3,view,3000\n",
        ":2:",
        Some("user"),
    );
}

#[test]
fn empty_file() {
    let msg = rejects(&csv_source(), "empty.csv", b"", "", None);
    assert!(msg.contains("empty"), "{msg}");
    let msg = rejects(
        &csv_source(),
        "header_only.csv",
        b"user,item,event,ts\n",
        "",
        None,
    );
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn unknown_event_kind() {
    let msg = rejects(
        &csv_source(),
        "kinds.csv",
        b"user,item,event,ts\nu3,i3,wishlist,3000\n",
        ":2:",
        Some("event"),
    );
    assert!(msg.contains("unknown event kind \"wishlist\""), "{msg}");
}

#[test]
fn declared_custom_kind_is_accepted() {
    let (dir, store) = seeded();
    let file = write(
        dir.path(),
        "kinds.csv",
        b"user,item,event,ts\nu3,i3,wishlist,3000\n",
    );
    let mut mapping = Mapping::default();
    mapping.custom_kinds.push("wishlist".into());
    let source = Source::Table {
        format: TableFormat::Csv,
        mapping,
    };
    import(&store, &source, &[file], &ImportOptions::default()).expect("declared kind imports");
    assert_eq!(
        store.custom_kinds().expect("kinds"),
        vec!["wishlist".to_string()]
    );
}

#[test]
fn missing_required_column() {
    let msg = rejects(
        &csv_source(),
        "columns.csv",
        b"customer,item,event,ts\nu3,i3,view,3000\n",
        ":1:",
        None,
    );
    assert!(
        msg.contains("required column `user` is missing")
            && msg.contains("customer, item, event, ts"),
        "{msg}"
    );
}

#[test]
fn invalid_json_line() {
    let source = Source::Table {
        format: TableFormat::Jsonl,
        mapping: Mapping::default(),
    };
    let msg = rejects(
        &source,
        "events.jsonl",
        b"{\"user\":\"u3\",\"item\":\"i3\",\"event\":\"view\",\"ts\":3000}\n{\"user\":\"u4\",\n",
        ":2:",
        None,
    );
    assert!(msg.contains("not valid JSON"), "{msg}");
}

#[test]
fn adapter_rows_name_their_field() {
    let source = Source::Adapter(Adapter::Yoochoose);
    rejects(
        &source,
        "clicks.txt",
        b"SessionId\tItemId\tTime\n1\t214\t1396860669.2\n1\tabc\t1396860670\n",
        ":3:",
        Some("ItemId"),
    );
}

#[test]
fn lenient_import_skips_and_counts_bad_rows() {
    let (dir, store) = seeded();
    let file = write(
        dir.path(),
        "mixed.csv",
        b"user,item,event,ts\nu3,i3,view,3000\nu4,i4,view,soon\nu5,i5,teleport,4000\nu6,i6,click,5000\n",
    );
    let report = import(
        &store,
        &csv_source(),
        std::slice::from_ref(&file),
        &ImportOptions::default(),
    )
    .expect("lenient import");
    assert_eq!((report.rows_read, report.rows_skipped), (4, 2));
    assert_eq!(report.write.events_added, 2);
    let lines: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4]);
    assert_eq!(report.errors[0].field.as_deref(), Some("ts"));
    assert_eq!(store.counts().expect("counts").events, 4);
}

#[test]
fn a_file_with_only_bad_rows_imports_nothing_even_when_lenient() {
    let (dir, store) = seeded();
    let before = snapshot(&store);
    let file = write(
        dir.path(),
        "bad.csv",
        b"user,item,event,ts\nu3,i3,view,never\n",
    );
    let err = import(&store, &csv_source(), &[file], &ImportOptions::default())
        .expect_err("nothing importable");
    assert!(err.to_string().contains(":2:"), "{err}");
    assert!(snapshot(&store) == before);
}

/// Writes a small Parquet file with string columns `names` and the given rows.
fn parquet_file(path: &Path, names: &[&str], rows: &[&[&str]]) {
    use parquet::data_type::{ByteArray, ByteArrayType};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    let fields: Vec<String> = names
        .iter()
        .map(|n| format!("REQUIRED BYTE_ARRAY {n} (UTF8);"))
        .collect();
    let schema = Arc::new(
        parse_message_type(&format!("message events {{ {} }}", fields.join(" "))).expect("schema"),
    );
    let file = std::fs::File::create(path).expect("create");
    let mut writer =
        SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build()))
            .expect("writer");
    let mut group = writer.next_row_group().expect("row group");
    let mut column = 0;
    while let Some(mut col) = group.next_column().expect("column") {
        let values: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(r[column])).collect();
        col.typed::<ByteArrayType>()
            .write_batch(&values, None, None)
            .expect("write");
        col.close().expect("close column");
        column += 1;
    }
    group.close().expect("close group");
    writer.close().expect("close file");
}

#[test]
fn parquet_imports_and_reports_bad_values() {
    let (dir, store) = seeded();
    let source = Source::Table {
        format: TableFormat::Parquet,
        mapping: Mapping::default(),
    };
    let good = dir.path().join("events.parquet");
    parquet_file(
        &good,
        &["user", "item", "event", "ts"],
        &[
            &["u7", "i7", "click", "7000"],
            &["u8", "i8", "view", "8000"],
        ],
    );
    let report =
        import(&store, &source, &[good], &ImportOptions::default()).expect("parquet imports");
    assert_eq!(report.write.events_added, 2);
    assert!(store.user_id("u8").expect("lookup").is_some());

    let before = snapshot(&store);
    let bad = dir.path().join("bad.parquet");
    parquet_file(
        &bad,
        &["user", "item", "event", "ts"],
        &[
            &["u9", "i9", "click", "9000"],
            &["u10", "i10", "view", "later"],
        ],
    );
    let strict = ImportOptions {
        strict: true,
        ..ImportOptions::default()
    };
    let err = import(&store, &source, std::slice::from_ref(&bad), &strict).expect_err("bad value");
    let msg = err.to_string();
    assert!(
        msg.contains(&bad.display().to_string()) && msg.contains(":2:") && msg.contains("`ts`"),
        "{msg}"
    );
    assert!(snapshot(&store) == before);

    let missing = dir.path().join("missing.parquet");
    parquet_file(
        &missing,
        &["customer", "item", "event", "ts"],
        &[&["u9", "i9", "click", "9000"]],
    );
    let err = import(&store, &source, &[missing], &strict).expect_err("missing column");
    assert!(
        err.to_string()
            .contains("required column `user` is missing"),
        "{err}"
    );
}

#[test]
fn items_csv_with_mapping_and_attributes() {
    let (dir, store) = seeded();
    let file = write(
        dir.path(),
        "catalogue.csv",
        b"sku,name,category,brand,price,colour\ni1,Red mug,Home > Kitchen > Mugs,Acme,4.5,red\ni9,Blue cup,,,,blue\n",
    );
    let mapping =
        Mapping::from_toml("entity = \"items\"\n[columns]\nid = \"sku\"\n").expect("mapping");
    let source = Source::Table {
        format: TableFormat::Csv,
        mapping,
    };
    let report = import(&store, &source, &[file], &ImportOptions::default()).expect("items import");
    assert_eq!(
        (report.write.items_created, report.write.records_updated),
        (1, 1)
    );
    let mug = store
        .item(store.item_id("i1").expect("lookup").expect("i1"))
        .expect("get")
        .expect("record");
    assert_eq!(mug.title, "Red mug");
    assert_eq!(mug.category, vec!["Home", "Kitchen", "Mugs"]);
    assert_eq!((mug.brand.as_deref(), mug.price), (Some("Acme"), Some(4.5)));
    assert_eq!(
        mug.attributes.get("colour").map(String::as_str),
        Some("red")
    );
    let cup = store
        .item(store.item_id("i9").expect("lookup").expect("i9"))
        .expect("get")
        .expect("record");
    assert_eq!((cup.brand, cup.price, cup.category.len()), (None, None, 0));
}
