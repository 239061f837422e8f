//! Types shared by the kernel programs (`detector-ebpf`) and the daemon (`detector`).
//!
//! Everything here is `no_std` and `#[repr(C)]`: the layout is the wire format of the ring
//! buffer, so both sides must agree byte for byte.
#![no_std]
