//! Draws payment requests as QR codes — PNG for a till's screen, a courier's device or a printed
//! stand, SVG for web checkouts, Unicode half blocks for a terminal — and reads QR codes back out
//! of a PNG, so a test or a support tool sees exactly what a wallet's camera would.
//!
//! Every code is error-correction level M (about 15 % of the modules may be damaged) with the
//! four-module quiet zone the QR standard asks for. Any PNG this module renders is within what
//! [`decode_png`] accepts.

use std::io::Cursor;

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};
use thiserror::Error;

use super::emvco::{MerchantQr, QrError};
use super::payment_code::PaymentCode;

/// Byte-mode capacity of a version-40 code at level M: any text up to this renders.
pub const QR_TEXT_BYTES_MAX: usize = 2331;
/// Light border around the code, in modules, as ISO/IEC 18004 asks.
pub const QR_QUIET_ZONE_MODULES: u32 = 4;
/// Largest module edge in pixels: a version-40 code then still fits [`DECODE_IMAGE_SIDE_PX_MAX`].
pub const QR_MODULE_PX_MAX: u32 = 20;
/// Widest or tallest PNG that [`decode_png`] reads.
pub const DECODE_IMAGE_SIDE_PX_MAX: u32 = 4096;
/// Largest PNG file that [`decode_png`] reads.
pub const DECODE_PNG_BYTES_MAX: usize = 16 << 20;
/// The PNG decoder's own allocations: a full-size RGBA image and its chunks.
pub const DECODE_MEMORY_BYTES_MAX: usize = 96 << 20;

/// Modules on a side of a version-40 code.
const VERSION_40_SIDE_MODULES: u32 = 177;
const LUMA_DARK: u8 = 0;
const LUMA_LIGHT: u8 = 255;

const _: () = assert!(
    (VERSION_40_SIDE_MODULES + 2 * QR_QUIET_ZONE_MODULES) * QR_MODULE_PX_MAX
        <= DECODE_IMAGE_SIDE_PX_MAX
);

/// Why a QR could not be drawn or read; `code()` is stable across releases.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RenderError {
    #[error("QR text is {bytes} bytes; at most {QR_TEXT_BYTES_MAX} fit one code")]
    TooLong { bytes: usize },
    #[error("module size {module_px} px; choose 1 to {QR_MODULE_PX_MAX}")]
    ModulePx { module_px: u32 },
    #[error("cannot render the QR: {0}")]
    RenderFailed(String),
    #[error("cannot read the image as a PNG: {0}")]
    ImageUnreadable(String),
    #[error("no QR code could be read from the image ({damaged} found but too damaged to decode)")]
    NotFound { damaged: usize },
    #[error(transparent)]
    Payload(#[from] QrError),
}

impl RenderError {
    /// Machine-readable code shown alike by the API, the CLI and web pages.
    pub fn code(&self) -> &'static str {
        match self {
            RenderError::TooLong { .. } => "QR_TOO_LONG",
            RenderError::ModulePx { .. } => "QR_MODULE_PX_INVALID",
            RenderError::RenderFailed(_) => "QR_RENDER_FAILED",
            RenderError::ImageUnreadable(_) => "QR_IMAGE_UNREADABLE",
            RenderError::NotFound { .. } => "QR_NOT_FOUND",
            RenderError::Payload(error) => error.code(),
        }
    }
}

/// A grayscale PNG of `text`, each module `module_px` pixels square.
pub fn render_png(text: &str, module_px: u32) -> Result<Vec<u8>, RenderError> {
    check_module_px(module_px)?;
    let code = encode(text)?;
    let (side_px, pixels) = luma_pixels(&code, module_px);
    write_gray_png(side_px, side_px, &pixels)
}

/// A standalone SVG document of `text`, each module `module_px` user units square.
pub fn render_svg(text: &str, module_px: u32) -> Result<String, RenderError> {
    check_module_px(module_px)?;
    let code = encode(text)?;
    Ok(code
        .render::<svg::Color>()
        .quiet_zone(true)
        .module_dimensions(module_px, module_px)
        .build())
}

/// `text` as a QR drawn in a terminal with Unicode half blocks: each line holds two rows of
/// modules, quiet zone included. Light modules are the drawn ones and dark ones are left blank,
/// so the code reads right on a dark terminal background, the usual kind; elsewhere use the PNG.
pub fn render_half_blocks(text: &str) -> Result<String, RenderError> {
    let code = encode(text)?;
    let width = code.width();
    let quiet = QR_QUIET_ZONE_MODULES as usize;
    let side = width + 2 * quiet;
    let colors = code.to_colors();
    let light = |x: usize, y: usize| {
        let inside = quiet..quiet + width;
        !(inside.contains(&x)
            && inside.contains(&y)
            && colors[(y - quiet) * width + (x - quiet)] == Color::Dark)
    };
    let mut drawing = String::with_capacity(side.div_ceil(2) * (side * 3 + 1));
    for top in (0..side).step_by(2) {
        for x in 0..side {
            // Below an odd last row is the terminal's own background.
            let lower = top + 1 < side && light(x, top + 1);
            drawing.push(match (light(x, top), lower) {
                (true, true) => '\u{2588}',
                (true, false) => '\u{2580}',
                (false, true) => '\u{2584}',
                (false, false) => ' ',
            });
        }
        drawing.push('\n');
    }
    Ok(drawing)
}

/// The texts of every QR code found in a PNG, in the order the detector met them.
pub fn decode_png(bytes: &[u8]) -> Result<Vec<String>, RenderError> {
    let (width, height, luma) = read_luma(bytes)?;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| luma[y * width + x]);
    let grids = image.detect_grids();
    let found = grids.len();
    let texts: Vec<String> = grids
        .iter()
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect();
    if texts.is_empty() {
        return Err(RenderError::NotFound { damaged: found });
    }
    Ok(texts)
}

/// A merchant's payment request as a PNG.
pub fn merchant_qr_png(qr: &MerchantQr, module_px: u32) -> Result<Vec<u8>, RenderError> {
    render_png(&qr.encode()?, module_px)
}

/// A merchant's payment request as an SVG.
pub fn merchant_qr_svg(qr: &MerchantQr, module_px: u32) -> Result<String, RenderError> {
    render_svg(&qr.encode()?, module_px)
}

/// A wallet's one-time payment code as a PNG.
pub fn payment_code_png(code: &PaymentCode, module_px: u32) -> Result<Vec<u8>, RenderError> {
    render_png(&code.qr_text, module_px)
}

/// A wallet's one-time payment code as an SVG.
pub fn payment_code_svg(code: &PaymentCode, module_px: u32) -> Result<String, RenderError> {
    render_svg(&code.qr_text, module_px)
}

fn check_module_px(module_px: u32) -> Result<(), RenderError> {
    if (1..=QR_MODULE_PX_MAX).contains(&module_px) {
        Ok(())
    } else {
        Err(RenderError::ModulePx { module_px })
    }
}

fn encode(text: &str) -> Result<QrCode, RenderError> {
    let too_long = RenderError::TooLong { bytes: text.len() };
    if text.len() > QR_TEXT_BYTES_MAX {
        return Err(too_long);
    }
    QrCode::with_error_correction_level(text, EcLevel::M).map_err(|error| match error {
        qrcode::types::QrError::DataTooLong => too_long,
        other => RenderError::RenderFailed(other.to_string()),
    })
}

/// One luma byte per pixel, row by row, the code centred in its quiet zone.
fn luma_pixels(code: &QrCode, module_px: u32) -> (u32, Vec<u8>) {
    let width = code.width();
    let quiet = QR_QUIET_ZONE_MODULES as usize;
    let px = module_px as usize;
    let side_px = (width + 2 * quiet) * px;
    let mut pixels = vec![LUMA_LIGHT; side_px * side_px];
    for (index, color) in code.to_colors().iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (left, top) = ((index % width + quiet) * px, (index / width + quiet) * px);
        for row in top..top + px {
            let start = row * side_px + left;
            pixels[start..start + px].fill(LUMA_DARK);
        }
    }
    let side_px = u32::try_from(side_px).expect("a version-40 code at QR_MODULE_PX_MAX fits u32");
    (side_px, pixels)
}

fn write_gray_png(width_px: u32, height_px: u32, pixels: &[u8]) -> Result<Vec<u8>, RenderError> {
    debug_assert_eq!(pixels.len(), width_px as usize * height_px as usize);
    let failed = |error: png::EncodingError| RenderError::RenderFailed(error.to_string());
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width_px, height_px);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(pixels).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}

/// Decodes any PNG to one luma byte per pixel; transparency is laid over white, like paper.
fn read_luma(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), RenderError> {
    let unreadable = |error: png::DecodingError| RenderError::ImageUnreadable(error.to_string());
    if bytes.len() > DECODE_PNG_BYTES_MAX {
        let why = format!("{} bytes; at most {DECODE_PNG_BYTES_MAX}", bytes.len());
        return Err(RenderError::ImageUnreadable(why));
    }
    let limits = png::Limits {
        bytes: DECODE_MEMORY_BYTES_MAX,
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let header = decoder.read_header_info().map_err(unreadable)?;
    let (width, height) = (header.width, header.height);
    if width > DECODE_IMAGE_SIDE_PX_MAX || height > DECODE_IMAGE_SIDE_PX_MAX {
        let why = format!("{width}×{height} px; at most {DECODE_IMAGE_SIDE_PX_MAX} a side");
        return Err(RenderError::ImageUnreadable(why));
    }
    let mut reader = decoder.read_info().map_err(unreadable)?;
    let size = reader.output_buffer_size().ok_or_else(|| {
        RenderError::ImageUnreadable(format!("{width}×{height} px does not fit memory"))
    })?;
    let mut buffer = vec![0; size];
    let frame = reader.next_frame(&mut buffer).map_err(unreadable)?;
    let luma = to_luma(frame.color_type, &buffer[..frame.buffer_size()])?;
    debug_assert_eq!(luma.len(), width as usize * height as usize);
    Ok((width as usize, height as usize, luma))
}

fn to_luma(color: png::ColorType, samples: &[u8]) -> Result<Vec<u8>, RenderError> {
    let luma = match color {
        png::ColorType::Grayscale => samples.to_vec(),
        png::ColorType::GrayscaleAlpha => samples
            .chunks_exact(2)
            .map(|p| over_white(p[0], p[1]))
            .collect(),
        png::ColorType::Rgb => samples
            .chunks_exact(3)
            .map(|p| rgb_luma(p[0], p[1], p[2]))
            .collect(),
        png::ColorType::Rgba => samples
            .chunks_exact(4)
            .map(|p| over_white(rgb_luma(p[0], p[1], p[2]), p[3]))
            .collect(),
        png::ColorType::Indexed => {
            let why = "a palette image the decoder did not expand".to_string();
            return Err(RenderError::ImageUnreadable(why));
        }
    };
    Ok(luma)
}

/// ITU-R BT.601 weights, in thousandths.
fn rgb_luma(red: u8, green: u8, blue: u8) -> u8 {
    let weighted = 299 * u32::from(red) + 587 * u32::from(green) + 114 * u32::from(blue);
    (weighted / 1000) as u8
}

fn over_white(luma: u8, alpha: u8) -> u8 {
    let (luma, alpha) = (u32::from(luma), u32::from(alpha));
    ((luma * alpha + u32::from(LUMA_LIGHT) * (255 - alpha)) / 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::emvco::{Mcc, QrKind};
    use crate::channels::payment_code::{
        OperatorCodeSecret, PaymentCodeIssuer, PaymentCodeVerifier,
    };
    use crate::ids::{MerchantId, OperatorId, WalletId};
    use proptest::prelude::*;

    /// 2024-05-01 12:00:00 UTC.
    const NOON_S: u64 = 1_714_564_800;
    const SHOP_TILL: u64 = 7;
    /// A size a till's screen would use.
    const TILL_MODULE_PX: u32 = 6;

    fn snack_shop_order() -> MerchantQr {
        MerchantQr {
            kind: QrKind::Dynamic {
                amount: "66.60".parse().unwrap(),
                order_id: "SZ20240501-0007".to_string(),
                expires_at_s: NOON_S + 300,
            },
            operator: OperatorId(3),
            merchant: MerchantId(42),
            name: "Lao Wang Snacks".to_string(),
            city: "Shenzhen".to_string(),
            mcc: Mcc::new(5814).unwrap(),
        }
    }

    fn code_secret() -> OperatorCodeSecret {
        OperatorCodeSecret::from_bytes([0x5a; 32])
    }

    fn svg_attribute(svg: &str, name: &str) -> u32 {
        let start = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        let end = start + svg[start..].find('"').unwrap();
        svg[start..end].parse().unwrap()
    }

    fn dark_modules(text: &str) -> usize {
        let code = QrCode::with_error_correction_level(text, EcLevel::M).unwrap();
        code.to_colors()
            .iter()
            .filter(|c| **c == Color::Dark)
            .count()
    }

    #[test]
    fn a_till_qr_for_66_60_is_scanned_back_from_its_png() {
        let qr = snack_shop_order();
        let png = merchant_qr_png(&qr, TILL_MODULE_PX).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let texts = decode_png(&png).unwrap();
        assert_eq!(texts, [qr.encode().unwrap()]);
        assert_eq!(MerchantQr::parse(&texts[0]), Ok(qr));
    }

    #[test]
    fn a_payment_code_is_scanned_from_its_png_and_redeems() {
        let issuer = PaymentCodeIssuer::new(OperatorId(3), &code_secret()).unwrap();
        let code = issuer.code_for(WalletId(7), NOON_S);
        let texts = decode_png(&payment_code_png(&code, 4).unwrap()).unwrap();
        assert_eq!(texts, [code.qr_text.as_str()]);
        let mut verifier = PaymentCodeVerifier::new(OperatorId(3), &code_secret()).unwrap();
        let read = verifier.identify(&texts[0], SHOP_TILL, NOON_S).unwrap();
        assert_eq!(read.wallet, WalletId(7));
    }

    #[test]
    fn the_png_is_the_module_matrix_inside_a_four_module_quiet_zone() {
        let text = snack_shop_order().encode().unwrap();
        let code = QrCode::with_error_correction_level(&text, EcLevel::M).unwrap();
        let px = 3;
        let (side_px, height_px, luma) = read_luma(&render_png(&text, px).unwrap()).unwrap();
        let side_modules = code.width() + 2 * QR_QUIET_ZONE_MODULES as usize;
        assert_eq!((side_px, height_px), (side_modules * 3, side_modules * 3));
        let quiet = QR_QUIET_ZONE_MODULES as usize;
        for y in 0..side_modules {
            for x in 0..side_modules {
                let inside = quiet..quiet + code.width();
                let dark = inside.contains(&x)
                    && inside.contains(&y)
                    && code[(x - quiet, y - quiet)] == Color::Dark;
                let centre = luma[(y * 3 + 1) * side_px + x * 3 + 1];
                assert_eq!(centre == LUMA_DARK, dark, "module ({x}, {y})");
            }
        }
    }

    #[test]
    fn the_svg_draws_one_square_per_dark_module() {
        let qr = snack_shop_order();
        let text = qr.encode().unwrap();
        let svg = merchant_qr_svg(&qr, 5).unwrap();
        assert!(
            svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>"), "{svg}");
        let code = QrCode::with_error_correction_level(&text, EcLevel::M).unwrap();
        let side = (code.width() as u32 + 2 * QR_QUIET_ZONE_MODULES) * 5;
        assert_eq!(svg_attribute(&svg, "width"), side);
        assert_eq!(svg_attribute(&svg, "height"), side);
        let path = &svg[svg.find(" d=\"").unwrap()..];
        assert_eq!(path.matches('M').count(), dark_modules(&text));
        let issuer = PaymentCodeIssuer::new(OperatorId(3), &code_secret()).unwrap();
        let code = issuer.code_for(WalletId(7), NOON_S);
        let svg = payment_code_svg(&code, 5).unwrap();
        assert!(svg.contains("<svg "), "{svg}");
    }

    #[test]
    fn the_half_block_drawing_is_the_module_matrix_and_scans() {
        let text = snack_shop_order().encode().unwrap();
        let code = QrCode::with_error_correction_level(&text, EcLevel::M).unwrap();
        let drawing = render_half_blocks(&text).unwrap();
        let quiet = QR_QUIET_ZONE_MODULES as usize;
        let side = code.width() + 2 * quiet;
        let lines: Vec<&str> = drawing.lines().collect();
        assert_eq!(lines.len(), side.div_ceil(2));
        // Read the drawing back, two module rows a line, as light (true) or dark.
        let mut light = vec![vec![false; side]; side];
        for (line_index, line) in lines.iter().enumerate() {
            assert_eq!(line.chars().count(), side, "line {line_index}");
            for (x, cell) in line.chars().enumerate() {
                let (upper, lower) = match cell {
                    '\u{2588}' => (true, true),
                    '\u{2580}' => (true, false),
                    '\u{2584}' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected {other:?}"),
                };
                light[2 * line_index][x] = upper;
                if 2 * line_index + 1 < side {
                    light[2 * line_index + 1][x] = lower;
                }
            }
        }
        for (y, row) in light.iter().enumerate() {
            for (x, is_light) in row.iter().enumerate() {
                let inside = quiet..quiet + code.width();
                let dark = inside.contains(&x)
                    && inside.contains(&y)
                    && code[(x - quiet, y - quiet)] == Color::Dark;
                assert_eq!(*is_light, !dark, "module ({x}, {y})");
            }
        }
        // What a camera sees of it on a dark screen scans as the text.
        let px = 4;
        let mut pixels = vec![LUMA_LIGHT; side * px * side * px];
        for (y, row) in light.iter().enumerate() {
            for (x, is_light) in row.iter().enumerate() {
                if !is_light {
                    for line in y * px..(y + 1) * px {
                        let start = line * side * px + x * px;
                        pixels[start..start + px].fill(LUMA_DARK);
                    }
                }
            }
        }
        let side_px = (side * px) as u32;
        let png = write_gray_png(side_px, side_px, &pixels).unwrap();
        assert_eq!(decode_png(&png).unwrap(), [text]);
        let too_long = "x".repeat(QR_TEXT_BYTES_MAX + 1);
        assert_eq!(
            render_half_blocks(&too_long).unwrap_err().code(),
            "QR_TOO_LONG"
        );
    }

    #[test]
    fn text_beyond_a_version_40_code_is_too_long() {
        let longest = "x".repeat(QR_TEXT_BYTES_MAX);
        assert!(render_png(&longest, 1).is_ok());
        let too_long = "x".repeat(QR_TEXT_BYTES_MAX + 1);
        let error = render_png(&too_long, 1).unwrap_err();
        assert_eq!(error.code(), "QR_TOO_LONG");
        assert!(error.to_string().contains("2332 bytes"), "{error}");
        let error = render_svg(&too_long, 1).unwrap_err();
        assert_eq!(error.code(), "QR_TOO_LONG");
    }

    #[test]
    fn a_module_size_outside_the_range_is_refused() {
        for module_px in [0, QR_MODULE_PX_MAX + 1] {
            let error = render_png("28", module_px).unwrap_err();
            assert_eq!(error.code(), "QR_MODULE_PX_INVALID");
            let error = render_svg("28", module_px).unwrap_err();
            assert_eq!(error.code(), "QR_MODULE_PX_INVALID");
        }
    }

    #[test]
    fn an_invalid_merchant_qr_keeps_its_own_code() {
        let mut qr = snack_shop_order();
        qr.name.clear();
        let error = merchant_qr_png(&qr, TILL_MODULE_PX).unwrap_err();
        assert_eq!(error.code(), "QR_FIELD_INVALID");
        assert!(error.to_string().contains("merchant name"), "{error}");
    }

    #[test]
    fn a_blank_png_has_no_qr() {
        let blank = write_gray_png(200, 120, &[LUMA_LIGHT; 200 * 120]).unwrap();
        let error = decode_png(&blank).unwrap_err();
        assert_eq!(error, RenderError::NotFound { damaged: 0 });
        assert_eq!(error.code(), "QR_NOT_FOUND");
    }

    #[test]
    fn garbage_and_cut_files_are_unreadable() {
        let error = decode_png(b"not a picture at all").unwrap_err();
        assert_eq!(error.code(), "QR_IMAGE_UNREADABLE");
        let png = merchant_qr_png(&snack_shop_order(), TILL_MODULE_PX).unwrap();
        let error = decode_png(&png[..png.len() / 2]).unwrap_err();
        assert_eq!(error.code(), "QR_IMAGE_UNREADABLE");
        let wide = DECODE_IMAGE_SIDE_PX_MAX + 1;
        let banner = write_gray_png(wide, 1, &vec![LUMA_LIGHT; wide as usize]).unwrap();
        let error = decode_png(&banner).unwrap_err();
        assert_eq!(error.code(), "QR_IMAGE_UNREADABLE");
        assert!(error.to_string().contains("4097×1"), "{error}");
    }

    #[test]
    fn a_code_on_a_transparent_background_reads_as_on_paper() {
        let text = snack_shop_order().encode().unwrap();
        let (side_px, _, luma) = read_luma(&render_png(&text, 4).unwrap()).unwrap();
        let rgba: Vec<u8> = luma
            .iter()
            .flat_map(|&l| {
                if l == LUMA_DARK {
                    [0, 0, 0, 255]
                } else {
                    [0; 4]
                }
            })
            .collect();
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, side_px as u32, side_px as u32);
        encoder.set_color(png::ColorType::Rgba);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&rgba).unwrap();
        writer.finish().unwrap();
        assert_eq!(decode_png(&png).unwrap(), [text]);
    }

    /// Writes `$ECNY_QR_OUT/snack-shop.png` and the text it must scan as, for an outside reader
    /// (`.ci/run` checks it with zbarimg); without the variable it only checks our own reader.
    #[test]
    fn the_snack_shop_png_scans_for_an_outside_reader() {
        let text = snack_shop_order().encode().unwrap();
        let png = render_png(&text, TILL_MODULE_PX).unwrap();
        assert_eq!(decode_png(&png).unwrap(), [text.as_str()]);
        if let Some(dir) = std::env::var_os("ECNY_QR_OUT") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("snack-shop.png"), &png).unwrap();
            std::fs::write(dir.join("snack-shop.txt"), format!("{text}\n")).unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        #[test]
        fn short_ascii_texts_round_trip(text in "[ -~]{1,80}", module_px in 2..=8u32) {
            let png = render_png(&text, module_px).unwrap();
            prop_assert_eq!(decode_png(&png).unwrap(), [text]);
        }
    }
}
