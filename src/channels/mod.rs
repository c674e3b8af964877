//! Payment channels: how a payment request travels between a merchant and a wallet.
//!
//! - [`emvco`]: the merchant-presented QR (EMVCo MPM) — static on a shop's stand (the payer enters
//!   the amount), dynamic for one order at a till, a courier's device (cash on delivery) or a web
//!   checkout (amount, order id, expiry). The wallet scans it and pays.
//! - [`ndef`]: the same request as an NDEF URI record on the NFC "tap zone" of the merchant's
//!   stand, also as a Type 4 Tag NDEF file; the wallet taps it and pays.
//! - [`payment_code`]: the consumer-presented one-time code (18 digits and a QR) the wallet shows;
//!   the merchant's scan gun reads it, the operator names the paying wallet, and the registration
//!   center charges each code once.
//! - [`render`]: any of these as a QR image (PNG, SVG, terminal half blocks), and QR codes read
//!   back out of a PNG.
//!
//! - [`payment_request`]: the command a wallet signs to pay a merchant's request, or a terminal's
//!   reading of a payment code becomes.
//! - [`acquiring`]: the merchants behind these requests, their terminals (tills, scan guns, couriers'
//!   handhelds, web checkouts), the orders they present, and the payments and refunds they book.
//!
//! All of them are pure formats and checks: time is handed in, nothing reads a clock or the network.

pub mod acquiring;
pub mod emvco;
pub mod ndef;
pub mod payment_code;
pub mod payment_request;
pub mod render;

pub use emvco::{crc16_ccitt_false, Mcc, MerchantQr, QrError, QrKind};
pub use ndef::{read_tap_zone, write_tap_zone, NdefError, NdefRecord};
pub use payment_code::{
    CodeError, CodeMarks, CodeRead, GuessLimiter, OperatorCodeSecret, PaymentCode,
    PaymentCodeIssuer, PaymentCodeVerifier,
};
pub use render::{
    decode_png, merchant_qr_png, merchant_qr_svg, payment_code_png, payment_code_svg,
    render_half_blocks, render_png, render_svg, RenderError,
};
