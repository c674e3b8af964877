//! NDEF messages as a phone reads them from a tap-zone tag (and the Type 4 Tag file around
//! them). Whatever parses is within the limits, writes back to a message that parses to the
//! same records, and a tap-zone message carries exactly what the QR of the same request does.

#![no_main]

use ecny::channels::emvco::{Mcc, MerchantQr, QrKind};
use ecny::channels::ndef::{
    encode_message, parse_message, read_tap_zone, tap_zone_text, type4_message, type4_ndef_file,
    write_tap_zone, NdefRecord, Tnf, NDEF_MESSAGE_BYTES_MAX, NDEF_RECORDS_MAX,
};
use ecny::ids::{MerchantId, OperatorId};
use ecny::Amount;
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: ecny_fuzz::write_seeds_if_asked(seeds), |data: &[u8]| {
    message(data);
    if let Ok(inner) = type4_message(data) {
        assert!(inner.len() <= NDEF_MESSAGE_BYTES_MAX);
        message(inner);
        let file = type4_ndef_file(inner).expect("a message read from a file fits one");
        assert_eq!(type4_message(&file), Ok(inner));
    }
});

fn message(bytes: &[u8]) {
    let Ok(records) = parse_message(bytes) else {
        return;
    };
    assert!((1..=NDEF_RECORDS_MAX).contains(&records.len()));
    let written = encode_message(&records).expect("parsed records encode");
    assert!(written.len() <= bytes.len(), "a rewrite never grows");
    assert_eq!(parse_message(&written), Ok(records));
    let text = tap_zone_text(bytes);
    if let Ok(request) = read_tap_zone(bytes) {
        let payload = text.expect("a request read from the tag has its text");
        assert_eq!(MerchantQr::parse(&payload).as_ref(), Ok(&request));
        let tag = write_tap_zone(&request).expect("a parsed request writes");
        assert_eq!(read_tap_zone(&tag), Ok(request));
    }
}

/// Tap-zone tags as the project writes them, in a Type 4 file, beside an app record, and with
/// a long record and an id.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let stand = MerchantQr {
        kind: QrKind::Static,
        operator: OperatorId(1),
        merchant: MerchantId(7),
        name: "Noodle Stand".to_string(),
        city: "Suzhou".to_string(),
        mcc: Mcc::new(5812).expect("a category"),
    };
    let order = MerchantQr {
        kind: QrKind::Dynamic {
            amount: Amount::from_fen(2_850),
            order_id: "NS-0042".to_string(),
            expires_at_s: 1_733_961_600,
        },
        ..stand.clone()
    };
    let tag = write_tap_zone(&stand).expect("writes");
    let uri = NdefRecord::payment_request(&order.encode().expect("encodes"));
    let app = NdefRecord {
        tnf: Tnf::External,
        record_type: b"android.com:pkg".to_vec(),
        id: Vec::new(),
        payload: b"cn.ecny.wallet".to_vec(),
    };
    let long = NdefRecord {
        tnf: Tnf::Media,
        record_type: b"text/plain".to_vec(),
        id: b"note".to_vec(),
        payload: vec![b'x'; 300],
    };
    vec![
        ("static", tag.clone()),
        ("dynamic", write_tap_zone(&order).expect("writes")),
        ("type4-file", type4_ndef_file(&tag).expect("fits")),
        (
            "with-app-record",
            encode_message(&[uri.clone(), app]).expect("encodes"),
        ),
        (
            "long-record-with-id",
            encode_message(&[long, uri]).expect("encodes"),
        ),
    ]
}
