//! Compares the pure-Rust SM2 implementations on the operations the ledger
//! repeats: verifying (operator tier), signing (wallets, operators) and SM3.
//! Every crate gets its key parsed once up front, as the ledger does.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ecny::certs::{sm3, KeyPair, Verifier};
use gmcrypto_core::sm2::{sign_with_id, verify_with_id, Sm2PrivateKey, DEFAULT_SIGNER_ID};
use sm2::elliptic_curve::common::getrandom::SysRng;

/// A typical signed payment: ids, amount, idempotency key and a digest.
const MESSAGE: &[u8] =
    b"pay wallet 1001 -> wallet 2002 amount 66.60 CNY key 7 digest 0123456789abcdef";

fn signer() -> KeyPair {
    KeyPair::from_seed(b"bench/sm2_crates")
}

fn efficient_key_pair(key_pair: &KeyPair) -> efficient_sm2::KeyPair {
    efficient_sm2::KeyPair::new(&key_pair.secret_bytes()).expect("valid secret")
}

fn gmcrypto_key(key_pair: &KeyPair) -> Sm2PrivateKey {
    Sm2PrivateKey::from_bytes_be(&key_pair.secret_bytes()).expect("valid secret")
}

fn split_r_s(bytes: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&bytes[..32]);
    s.copy_from_slice(&bytes[32..]);
    (r, s)
}

fn bench_verify(c: &mut Criterion) {
    let key_pair = signer();
    let signature = key_pair.sign(MESSAGE);
    let (r, s) = split_r_s(&signature.0);
    let mut group = c.benchmark_group("sm2_verify");
    group.throughput(Throughput::Elements(1));

    let verifier = Verifier::new(&key_pair.public_key()).expect("valid key");
    group.bench_function("rustcrypto_sm2", |b| {
        b.iter(|| verifier.verify(black_box(MESSAGE), black_box(&signature)))
    });

    let efficient_public = efficient_key_pair(&key_pair).public_key();
    let efficient_signature = efficient_sm2::Signature::new(&r, &s).expect("valid signature");
    group.bench_function("efficient_sm2", |b| {
        b.iter(|| efficient_signature.verify(black_box(&efficient_public), black_box(MESSAGE)))
    });

    let gmcrypto_public = gmcrypto_key(&key_pair).public_key();
    let der = gmcrypto_core::asn1::encode_sig(&r, &s);
    group.bench_function("gmcrypto_core", |b| {
        b.iter(|| {
            verify_with_id(
                &gmcrypto_public,
                DEFAULT_SIGNER_ID,
                black_box(MESSAGE),
                black_box(&der),
            )
        })
    });
    group.finish();
}

fn bench_sign(c: &mut Criterion) {
    let key_pair = signer();
    let mut group = c.benchmark_group("sm2_sign");
    group.throughput(Throughput::Elements(1));

    group.bench_function("rustcrypto_sm2", |b| {
        b.iter(|| key_pair.sign(black_box(MESSAGE)))
    });

    let efficient = efficient_key_pair(&key_pair);
    group.bench_function("efficient_sm2", |b| {
        b.iter(|| efficient.sign(black_box(MESSAGE)))
    });

    let gmcrypto = gmcrypto_key(&key_pair);
    group.bench_function("gmcrypto_core", |b| {
        b.iter(|| {
            sign_with_id(
                &gmcrypto,
                DEFAULT_SIGNER_ID,
                black_box(MESSAGE),
                &mut SysRng,
            )
        })
    });
    group.finish();
}

fn bench_sm3(c: &mut Criterion) {
    let input = [0x5au8; 64];
    let mut group = c.benchmark_group("sm3_64_bytes");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rustcrypto_sm3", |b| b.iter(|| sm3(black_box(&input))));
    group.bench_function("gmcrypto_core", |b| {
        b.iter(|| gmcrypto_core::sm3::hash(black_box(&input)))
    });
    group.finish();
}

fn short_runs() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = sm2_crates;
    config = short_runs();
    targets = bench_verify, bench_sign, bench_sm3
}
criterion_main!(sm2_crates);
