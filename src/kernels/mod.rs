//! Numeric kernels under the layers: the GEMM wrapper, im2col/col2im with their shape
//! arithmetic, and naive reference versions that the tests use as oracles.

pub mod gemm;
pub mod im2col;
pub mod reference;
