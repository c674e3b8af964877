//! RFC 4180 CSV, as much as the exports need: fields quoted when they hold a comma, a quote or a
//! line break, quotes doubled inside. Small enough to keep rather than take a dependency for.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CsvError {
    #[error("line {line}: a quoted field is not closed")]
    UnclosedQuote { line: usize },
    #[error("line {line}: expected {expected} fields, found {found}")]
    FieldCount {
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("line {line}: the header is not {expected:?}")]
    Header { line: usize, expected: String },
    #[error("line {line}: {what} {text:?} does not parse")]
    Field {
        line: usize,
        what: &'static str,
        text: String,
    },
}

impl CsvError {
    pub fn code(&self) -> &'static str {
        "CSV_MALFORMED"
    }
}

/// One record, fields quoted as needed, ended by CRLF as RFC 4180 says.
pub fn record(fields: &[&str]) -> String {
    let mut line = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push_str("\r\n");
    line
}

/// Every record of a document, each a list of fields. Quoted fields may span lines.
pub fn parse(text: &str) -> Result<Vec<Vec<String>>, CsvError> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut line) = (false, 1);
    let mut chars = text.chars().peekable();
    let mut at_record_start = true;
    while let Some(c) = chars.next() {
        at_record_start = false;
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                line += usize::from(c == '\n');
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                line += 1;
                at_record_start = true;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(CsvError::UnclosedQuote { line });
    }
    if !at_record_start {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// The records after a header that must be exactly `header`, each with as many fields.
pub fn parse_table(text: &str, header: &[&str]) -> Result<Vec<Vec<String>>, CsvError> {
    let mut records = parse(text)?.into_iter();
    let expected = header.join(",");
    match records.next() {
        Some(first) if first == header => {}
        _ => return Err(CsvError::Header { line: 1, expected }),
    }
    let mut rows = Vec::new();
    for (index, row) in records.enumerate() {
        if row.len() != header.len() {
            return Err(CsvError::FieldCount {
                line: index + 2,
                expected: header.len(),
                found: row.len(),
            });
        }
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_quotes_and_line_breaks_round_trip() {
        let fields = ["plain", "a, b", "say \"hi\"", "two\nlines", ""];
        let text = record(&fields);
        assert_eq!(
            text,
            "plain,\"a, b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n"
        );
        assert_eq!(
            parse(&text).unwrap(),
            vec![fields.map(String::from).to_vec()]
        );
    }

    #[test]
    fn a_header_must_match_and_rows_must_be_complete() {
        let header = ["x", "y"];
        let good = format!("{}{}", record(&header), record(&["1", "2"]));
        assert_eq!(parse_table(&good, &header).unwrap(), vec![vec!["1", "2"]]);
        let short = format!("{}1\r\n", record(&header));
        assert_eq!(
            parse_table(&short, &header).unwrap_err(),
            CsvError::FieldCount {
                line: 2,
                expected: 2,
                found: 1
            }
        );
        assert!(matches!(
            parse_table("a,b\r\n", &header),
            Err(CsvError::Header { .. })
        ));
        assert_eq!(
            parse("\"open").unwrap_err(),
            CsvError::UnclosedQuote { line: 1 }
        );
    }
}
