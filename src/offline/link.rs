//! How long one tap takes: the NFC link (ISO/IEC 14443) plus the secure elements' work.
//!
//! Air time follows ISO/IEC 14443 Type A: carrier fc = 13.56 MHz (-2), one bit lasts 128/fc at
//! 106 kbit/s, 64/fc at 212 and 32/fc at 424 (-2); each byte is 8 data bits and an odd parity
//! bit, each frame has a start and an end bit (-3); an ISO/IEC 14443-4 I-block adds a 1-byte
//! PCB and the 2-byte CRC_A, and a card announcing FSCI = 8 accepts frames of 256 bytes (-4),
//! so a longer APDU is sent as chained I-blocks, each acknowledged by a 3-byte R(ACK). Between
//! frames the minimum frame delay time is about 1172/fc ≈ 86 µs (-3). Every APDU is charged to
//! the NFC link, as when one reader relays between two cards; a phone's own SE sits on a faster
//! internal bus, so this errs slow. The SE's SM2 times, its per-APDU overhead, persistent write
//! time and the phone's per-APDU software turnaround are parameters, not measurements.
//!
//! SM2 on a secure element's ECC coprocessor takes, across current parts, roughly 20–80 ms to
//! sign and 40–100 ms to verify (a verification is two scalar multiplications against the
//! signature's one, so 1.3–2× a signature). Within that range the figure depends on the chip, its
//! clock and its side-channel countermeasures; we have measured none. The defaults take the
//! middle of the range (50 ms sign, 70 ms verify); [`LinkParams::slow_se`] and
//! [`LinkParams::fast_se`] are its two ends, so a reader sees how far the tap time moves.
//!
//! The SM2 work sits on one chain, each step waiting for the one before: the payee signs its
//! challenge for this payer's tap, the payer checks the payee's device certificate and that
//! signature, signs, the payee checks the payment and signs a receipt, the payer checks the
//! receipt. At mid-range SE speeds that chain alone is 500 ms between known operators and 360 ms
//! between known peers. Signing the challenge costs one signature and one verification more than
//! an unsigned challenge (about 120 ms at mid-range speeds, 60 ms on a fast SE): the price of a
//! card that pays no reader without a genuine SE, and only in the tap the challenge was made for.
//! The protocol keeps verify-before-debit; with an ECC coprocessor a tap between known peers
//! stays under 300 ms.

use std::fmt;

use crate::offline::protocol::Exchange;

/// ISO/IEC 14443-2 carrier frequency.
pub const CARRIER_HZ: u64 = 13_560_000;
/// Data bits plus the odd parity bit of ISO/IEC 14443-3 Type A.
pub const AIR_BITS_PER_BYTE: u64 = 9;
/// Start-of-frame and end-of-frame.
pub const FRAME_DELIMITER_BITS: u64 = 2;
/// ISO/IEC 14443-4 PCB (no CID, no NAD) and ISO/IEC 14443-3 CRC_A.
pub const BLOCK_OVERHEAD_BYTES: usize = 1 + 2;
/// Largest frame for FSCI = 8 (FSC = 256), what current secure elements announce.
pub const FRAME_BYTES_MAX: usize = 256;
/// An R(ACK) block acknowledging one chained I-block: PCB and CRC_A.
pub const ACK_FRAME_BYTES: usize = 3;
/// Minimum frame delay time, 1172/fc, in nanoseconds.
pub const FRAME_DELAY_NS: u64 = 1_172 * 1_000_000_000 / CARRIER_HZ;

/// SE SM2 signature: the middle of the 20–80 ms range of current secure elements.
pub const SE_SM2_SIGN_US_DEFAULT: u64 = 50_000;
/// SE SM2 verification: the middle of the 40–100 ms range, two scalar multiplications.
pub const SE_SM2_VERIFY_US_DEFAULT: u64 = 70_000;
/// The slow end of the range: an older or heavily protected secure element.
pub const SE_SM2_SIGN_US_SLOW: u64 = 80_000;
pub const SE_SM2_VERIFY_US_SLOW: u64 = 100_000;
/// The fast end of the range: a current SE with a dedicated ECC coprocessor.
pub const SE_SM2_SIGN_US_FAST: u64 = 20_000;
pub const SE_SM2_VERIFY_US_FAST: u64 = 40_000;
/// Card operating system dispatch and APDU buffer handling per command.
pub const SE_APDU_OVERHEAD_US_DEFAULT: u64 = 1_000;
/// One journaled field write to EEPROM/flash, commit included.
pub const NVM_WRITE_US_DEFAULT: u64 = 1_000;
/// A phone's NFC stack and app between two APDUs.
pub const HOST_TURNAROUND_US_DEFAULT: u64 = 2_000;

/// ISO/IEC 14443 bit rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BitRate {
    Kbps106,
    Kbps212,
    Kbps424,
}

impl BitRate {
    pub const ALL: [BitRate; 3] = [BitRate::Kbps106, BitRate::Kbps212, BitRate::Kbps424];

    /// Carrier cycles per bit: fc/128 is about 106 kbit/s.
    pub fn carrier_cycles_per_bit(self) -> u64 {
        match self {
            BitRate::Kbps106 => 128,
            BitRate::Kbps212 => 64,
            BitRate::Kbps424 => 32,
        }
    }

    /// The nominal rate; the exact one is fc divided by the cycles per bit.
    pub fn kbit_s(self) -> u64 {
        match self {
            BitRate::Kbps106 => 106,
            BitRate::Kbps212 => 212,
            BitRate::Kbps424 => 424,
        }
    }

    fn bits_ns(self, bits: u64) -> u64 {
        bits * self.carrier_cycles_per_bit() * 1_000_000_000 / CARRIER_HZ
    }
}

/// Everything the model needs besides the transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkParams {
    pub bit_rate: BitRate,
    pub se_sm2_sign_us: u64,
    pub se_sm2_verify_us: u64,
    pub se_apdu_overhead_us: u64,
    pub nvm_write_us: u64,
    pub host_turnaround_us: u64,
}

impl LinkParams {
    pub fn at(bit_rate: BitRate) -> LinkParams {
        LinkParams {
            bit_rate,
            se_sm2_sign_us: SE_SM2_SIGN_US_DEFAULT,
            se_sm2_verify_us: SE_SM2_VERIFY_US_DEFAULT,
            se_apdu_overhead_us: SE_APDU_OVERHEAD_US_DEFAULT,
            nvm_write_us: NVM_WRITE_US_DEFAULT,
            host_turnaround_us: HOST_TURNAROUND_US_DEFAULT,
        }
    }

    /// The slow end of the SE SM2 range.
    pub fn slow_se(bit_rate: BitRate) -> LinkParams {
        LinkParams {
            se_sm2_sign_us: SE_SM2_SIGN_US_SLOW,
            se_sm2_verify_us: SE_SM2_VERIFY_US_SLOW,
            ..LinkParams::at(bit_rate)
        }
    }

    /// The fast end of the SE SM2 range.
    pub fn fast_se(bit_rate: BitRate) -> LinkParams {
        LinkParams {
            se_sm2_sign_us: SE_SM2_SIGN_US_FAST,
            se_sm2_verify_us: SE_SM2_VERIFY_US_FAST,
            ..LinkParams::at(bit_rate)
        }
    }
}

/// The modeled time of one tap, by where it goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapTime {
    pub apdus: usize,
    pub command_bytes: usize,
    pub response_bytes: usize,
    pub air_us: u64,
    pub host_us: u64,
    pub se_io_us: u64,
    pub crypto_us: u64,
}

impl TapTime {
    pub fn total_us(&self) -> u64 {
        self.air_us + self.host_us + self.se_io_us + self.crypto_us
    }

    pub fn bytes(&self) -> usize {
        self.command_bytes + self.response_bytes
    }
}

impl fmt::Display for TapTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} APDUs, {} bytes ({} out, {} back): air {:.1} ms, phones {:.1} ms, SE I/O {:.1} ms, SM2 {:.1} ms, total {:.1} ms",
            self.apdus,
            self.bytes(),
            self.command_bytes,
            self.response_bytes,
            self.air_us as f64 / 1e3,
            self.host_us as f64 / 1e3,
            self.se_io_us as f64 / 1e3,
            self.crypto_us as f64 / 1e3,
            self.total_us() as f64 / 1e3,
        )
    }
}

/// Air time of one APDU or response of `bytes`, including the chaining acknowledgements and
/// the frame delay after every frame.
pub fn air_time_ns(bytes: usize, bit_rate: BitRate) -> u64 {
    let payload_max = FRAME_BYTES_MAX - BLOCK_OVERHEAD_BYTES;
    let frames = bytes.div_ceil(payload_max).max(1);
    let frame_bits = |payload: usize| {
        (payload + BLOCK_OVERHEAD_BYTES) as u64 * AIR_BITS_PER_BYTE + FRAME_DELIMITER_BITS
    };
    let data_bits: u64 = (0..frames)
        .map(|index| frame_bits((bytes - index * payload_max).min(payload_max)))
        .sum();
    let acks = (frames - 1) as u64;
    let ack_bits = acks * (ACK_FRAME_BYTES as u64 * AIR_BITS_PER_BYTE + FRAME_DELIMITER_BITS);
    let delays = (frames as u64 + acks) * FRAME_DELAY_NS;
    bit_rate.bits_ns(data_bits + ack_bits) + delays
}

/// The modeled time of the exchanges in `transcript`.
pub fn tap_time(transcript: &[Exchange], params: &LinkParams) -> TapTime {
    let mut time = TapTime::default();
    for exchange in transcript {
        time.apdus += 1;
        time.command_bytes += exchange.command_bytes;
        time.response_bytes += exchange.response_bytes;
        let air_ns = air_time_ns(exchange.command_bytes, params.bit_rate)
            + air_time_ns(exchange.response_bytes, params.bit_rate);
        time.air_us += air_ns.div_ceil(1_000);
        time.host_us += params.host_turnaround_us;
        let writes = u64::from(exchange.cost.persistent_writes);
        time.se_io_us += params.se_apdu_overhead_us + writes * params.nvm_write_us;
        time.crypto_us += u64::from(exchange.cost.sm2_signs) * params.se_sm2_sign_us
            + u64::from(exchange.cost.sm2_verifies) * params.se_sm2_verify_us;
    }
    time
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::certs::KeyPair;
    use crate::offline::profiles::WalletForm;
    use crate::offline::protocol::Relay;
    use crate::offline::testkit::{World, NOW_S};
    use std::time::Instant;

    /// How much the two SEs of a tap have seen before.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Caches {
        /// First contact: neither knows the other's operator nor device.
        Cold,
        /// Each has met the other's operator before, not this device.
        KnownOperators,
        /// The two have paid each other before.
        KnownPeers,
    }

    const CACHES: [Caches; 3] = [Caches::Cold, Caches::KnownOperators, Caches::KnownPeers];

    fn one_payment_transcript(caches: Caches) -> Vec<Exchange> {
        let world = World::new();
        let mut payer = world.wallet(0, WalletForm::PhoneEse, 1, Amount::from_yuan(100));
        let mut payee = world.wallet(1, WalletForm::PhoneEse, 2, Amount::from_yuan(5));
        let small = Amount::from_fen(1);
        match caches {
            Caches::Cold => {}
            Caches::KnownOperators => {
                let mut other_shop = world.wallet(1, WalletForm::PhoneEse, 3, Amount::ZERO);
                let mut other_customer = world.wallet(0, WalletForm::PhoneEse, 4, small);
                let mut relay = Relay::new();
                relay
                    .pay(&mut payer, &mut other_shop, small, NOW_S)
                    .unwrap();
                relay
                    .pay(&mut other_customer, &mut payee, small, NOW_S)
                    .unwrap();
            }
            Caches::KnownPeers => {
                Relay::new()
                    .pay(&mut payer, &mut payee, small, NOW_S)
                    .unwrap();
            }
        }
        let mut relay = Relay::new();
        relay
            .pay(&mut payer, &mut payee, Amount::from_fen(6_660), NOW_S)
            .unwrap();
        relay.transcript().to_vec()
    }

    fn sm2_operations(transcript: &[Exchange]) -> (u32, u32, u32) {
        let signs: u32 = transcript.iter().map(|e| e.cost.sm2_signs).sum();
        let verifies: u32 = transcript.iter().map(|e| e.cost.sm2_verifies).sum();
        let writes: u32 = transcript.iter().map(|e| e.cost.persistent_writes).sum();
        (signs, verifies, writes)
    }

    #[test]
    fn bit_rates_and_frame_timing_follow_iso_14443() {
        assert_eq!(
            CARRIER_HZ / BitRate::Kbps106.carrier_cycles_per_bit(),
            105_937
        );
        assert_eq!(BitRate::Kbps424.kbit_s(), 424);
        assert_eq!(FRAME_DELAY_NS, 86_430);
        // A 5-byte GET DATA at 106 kbit/s: 8 bytes on air, 74 bits of 9.44 µs, plus one delay.
        assert_eq!(air_time_ns(5, BitRate::Kbps106), 698_525 + 86_430);
        // 260 bytes need two I-blocks and one R(ACK).
        let chained = air_time_ns(260, BitRate::Kbps424);
        assert!(chained > air_time_ns(253, BitRate::Kbps424) + 2 * FRAME_DELAY_NS);
    }

    #[test]
    fn a_payment_costs_three_signatures_and_seven_verifications_cold_five_or_three_warm() {
        let expected = [(3, 7, 19), (3, 5, 19), (3, 3, 17)];
        for (caches, expected) in CACHES.into_iter().zip(expected) {
            let transcript = one_payment_transcript(caches);
            assert_eq!(sm2_operations(&transcript), expected, "{caches:?}");
            assert_eq!(transcript.len(), 12, "{caches:?}");
        }
    }

    #[test]
    fn modeled_tap_time_at_each_bit_rate() {
        for step in &one_payment_transcript(Caches::Cold) {
            println!(
                "{:<32} {:?}: {:>3} bytes out, {:>3} back, {:?}",
                step.step, step.side, step.command_bytes, step.response_bytes, step.cost
            );
        }
        for caches in CACHES {
            let transcript = one_payment_transcript(caches);
            let (signs, verifies, _) = sm2_operations(&transcript);
            println!("{caches:?}: {signs} SM2 signatures, {verifies} verifications");
            let mut previous_air = u64::MAX;
            for bit_rate in BitRate::ALL {
                let time = tap_time(&transcript, &LinkParams::at(bit_rate));
                println!("  {} kbit/s: {time}", bit_rate.kbit_s());
                assert!(time.air_us < previous_air);
                previous_air = time.air_us;
                assert_eq!(time.apdus, 12);
            }
            for (end, params) in [
                ("slow SE", LinkParams::slow_se(BitRate::Kbps424)),
                ("fast SE", LinkParams::fast_se(BitRate::Kbps424)),
            ] {
                println!("  424 kbit/s, {end}: {}", tap_time(&transcript, &params));
            }
        }
    }

    #[test]
    fn caches_take_sm2_time_off_the_tap_and_nothing_else() {
        let params = LinkParams::at(BitRate::Kbps424);
        let times: Vec<TapTime> = CACHES
            .iter()
            .map(|caches| tap_time(&one_payment_transcript(*caches), &params))
            .collect();
        let verify_us = params.se_sm2_verify_us;
        assert_eq!(times[0].crypto_us - times[1].crypto_us, 2 * verify_us);
        assert_eq!(times[1].crypto_us - times[2].crypto_us, 2 * verify_us);
        assert_eq!(times[0].bytes(), times[2].bytes());
        assert!(times[2].crypto_us > times[2].air_us, "SM2 still dominates");
    }

    #[test]
    fn host_sm2_speed_for_comparison() {
        let key = KeyPair::from_seed(b"timing");
        let digest = [7u8; 32];
        let rounds = 20u32;
        let started = Instant::now();
        let signatures: Vec<_> = (0..rounds).map(|_| key.sign(&digest)).collect();
        let sign = started.elapsed() / rounds;
        let public_key = key.public_key();
        let started = Instant::now();
        for signature in &signatures {
            public_key.verify(&digest, signature).unwrap();
        }
        let verify = started.elapsed() / rounds;
        println!(
            "this machine: SM2 sign {sign:?}, verify {verify:?}; modeled SE: sign {} ms, verify {} ms",
            SE_SM2_SIGN_US_DEFAULT / 1_000,
            SE_SM2_VERIFY_US_DEFAULT / 1_000
        );
        let host = LinkParams {
            se_sm2_sign_us: sign.as_micros() as u64,
            se_sm2_verify_us: verify.as_micros() as u64,
            ..LinkParams::at(BitRate::Kbps424)
        };
        println!(
            "with this machine's SM2: {}",
            tap_time(&one_payment_transcript(Caches::Cold), &host)
        );
    }
}
