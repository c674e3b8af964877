//! EMVCo merchant-presented QR payloads as a wallet scans them. Whatever `MerchantQr::parse`
//! accepts is a valid request that encodes to a payload reading back the same; the data-object
//! frame accounts for every character; and any request that encodes reads back as itself.

#![no_main]

use ecny::channels::emvco::{data_objects, verify_crc, Mcc, MerchantQr, QrKind};
use ecny::ids::{MerchantId, OperatorId};
use ecny::Amount;
use ecny_fuzz::{Script, ScriptWriter};
use libfuzzer_sys::fuzz_target;

/// Marks an input that is a request's fields rather than a payload: never the first byte of UTF-8.
const FIELDS_MARK: u8 = 0xFF;

// An input is a scanned payload, or `FIELDS_MARK` and a request's fields as a till fills them
// in (see `read_request`), which must encode to a payload reading back as the same request.
fuzz_target!(init: ecny_fuzz::write_seeds_if_asked(seeds), |data: &[u8]| {
    match data.split_first() {
        Some((&FIELDS_MARK, fields)) => {
            if let Some(request) = read_request(&mut Script::new(fields)) {
                encoded(request);
            }
        }
        _ => {
            if let Ok(payload) = std::str::from_utf8(data) {
                scanned(payload);
            }
        }
    }
});

fn scanned(payload: &str) {
    if let Ok(objects) = data_objects(payload) {
        let framed: String = objects
            .iter()
            .map(|o| format!("{:02}{:02}{}", o.id, o.value.chars().count(), o.value))
            .collect();
        assert_eq!(framed, payload, "the frame lost or invented characters");
    }
    let Ok(request) = MerchantQr::parse(payload) else {
        return;
    };
    assert!(verify_crc(payload).is_ok());
    request.validate().expect("a parsed request is valid");
    let again = request.encode().expect("a parsed request encodes");
    assert_eq!(MerchantQr::parse(&again), Ok(request.clone()));
    let _ = request.check_fresh(u64::MAX);
}

fn encoded(request: MerchantQr) {
    if let Ok(payload) = request.encode() {
        assert_eq!(MerchantQr::parse(&payload), Ok(request), "{payload}");
    }
}

/// A merchant's request as a till fills it in: operator (u16), merchant (u32), category (u16),
/// name and city (byte strings), then a kind byte; a dynamic one (odd) adds the amount in fen
/// (i64), the order id (byte string) and the expiry (u64).
fn read_request(s: &mut Script<'_>) -> Option<MerchantQr> {
    let operator = OperatorId(s.u16()?);
    let merchant = MerchantId(s.u32()?);
    let mcc = Mcc::new(s.u16()? % 10_000).expect("below 10000");
    let name = s.text()?.to_string();
    let city = s.text()?.to_string();
    let kind = match s.u8()? % 2 {
        0 => QrKind::Static,
        _ => QrKind::Dynamic {
            amount: Amount::from_fen(s.i64()?),
            order_id: s.text()?.to_string(),
            expires_at_s: s.u64()?,
        },
    };
    Some(MerchantQr {
        kind,
        operator,
        merchant,
        name,
        city,
        mcc,
    })
}

fn write_request(request: &MerchantQr) -> Vec<u8> {
    let mut w = ScriptWriter::new();
    w.u8(FIELDS_MARK)
        .u16(request.operator.0)
        .u32(request.merchant.0)
        .u16(request.mcc.code());
    w.bytes(request.name.as_bytes())
        .bytes(request.city.as_bytes());
    match &request.kind {
        QrKind::Static => w.u8(0),
        QrKind::Dynamic {
            amount,
            order_id,
            expires_at_s,
        } => w
            .u8(1)
            .i64(amount.fen())
            .bytes(order_id.as_bytes())
            .u64(*expires_at_s),
    };
    w.take()
}

/// A shop's static and dynamic codes as the project writes them, the same as fields, and
/// payloads of other networks that the reader must refuse or skip.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let snack_shop = MerchantQr {
        kind: QrKind::Static,
        operator: OperatorId(3),
        merchant: MerchantId(42),
        name: "Lao Wang Snacks".to_string(),
        city: "Shenzhen".to_string(),
        mcc: Mcc::new(5814).expect("a category"),
    };
    let order = MerchantQr {
        kind: QrKind::Dynamic {
            amount: Amount::from_fen(6_660),
            order_id: "SZ20240501-0007".to_string(),
            expires_at_s: 1_714_550_400,
        },
        ..snack_shop.clone()
    };
    let payload = |request: &MerchantQr| request.encode().expect("encodes").into_bytes();
    vec![
        ("static", payload(&snack_shop)),
        ("dynamic", payload(&order)),
        ("static-fields", write_request(&snack_shop)),
        ("dynamic-fields", write_request(&order)),
        // EMV QRCPS-MPM v1.1, Appendix A.
        ("emv-spec-example", "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A".as_bytes().to_vec()),
        // Thai PromptPay, static.
        ("promptpay", b"00020101021129370016A000000677010111011300660000000005802TH530376463048956".to_vec()),
    ]
}
