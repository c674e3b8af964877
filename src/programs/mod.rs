//! Programmable money as the seeds use it: smart contracts from vetted templates (escrow, prepaid
//! fees released per delivered unit, scheduled and recurring payments).

pub mod contracts;
