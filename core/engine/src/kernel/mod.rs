//! The f32 matrix-multiply kernels tract runs in the scoring component.
//!
//! tract's wasm kernels were tuned where wasm runs on 32 vector registers (ARM). Here wasmtime's
//! Cranelift compiles them for x86's 16 `xmm` registers, and with the host's bound on a call's
//! time (epoch interruption) every loop header checks the epoch, with a call on its slow path
//! after which no vector register survives. In the disassembled loop of tract's GEMM kernel
//! (8x8: 16 accumulator vectors) every accumulator is on the stack: 16 loads and 16 stores for
//! every 32 multiplies and adds. These kernels tile 8 rows by 4 columns (8 accumulators) and 8
//! by 1 (for one row of input), and run four records of `k` per trip of the loop, so the
//! accumulators go through memory once per 128 multiply-adds. docs/performance.md has the measures.
//!
//! They plug in through tract-linalg's public registries (no patch to tract): each kernel is
//! submitted to `mmm_routines` with a boost over tract's own wasm kernels, which decides for a
//! dynamic batch size (the model's `N`, where tract asks no tier); a tier in `mmm_tiers`, above
//! tract's, names them where `n` is known. Both share tract's `[k][8]` packing of the weights,
//! so the two run from the same packed weights, picked per call by `n`.

mod lanes;
mod tile;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod register {
    use super::lanes::V128;
    use super::tile::{MR, run};
    use tract_onnx::prelude::DatumType;
    use tract_onnx::tract_core::tract_linalg::isa::{Arch, IsaSet};
    use tract_onnx::tract_core::tract_linalg::mmm::{
        DynKernel, FusedSpec, MatMatMul, Query, Suitable,
    };
    use tract_onnx::tract_core::tract_linalg::mmm_routines::MmmRoutine;
    use tract_onnx::tract_core::tract_linalg::mmm_tiers::MmmTier;
    use tract_onnx::tract_core::tract_linalg::pack::Packing;

    const GEMM: &str = "edgescore_wasm_f32_8x4";
    const GEMV: &str = "edgescore_wasm_f32_8x1";

    fn kernel<const NR: usize>(name: &str) -> Box<dyn MatMatMul> {
        let mut kernel = DynKernel::<MR, NR, f32>::new(
            name,
            |specs| unsafe { run::<V128, NR>(specs) },
            f32::packing(MR),
            f32::packing(NR),
        )
        // Above tract's wasm kernels (boost 0) wherever both could run.
        .with_boost(|| 1)
        .with_can_fuse(can_fuse);
        kernel.arch = Some(Arch::Wasm32Simd128);
        kernel.mmm()
    }

    /// What `tile::run` does: everything but the integer operations and 16-bit operands.
    fn can_fuse(spec: &FusedSpec) -> bool {
        match spec {
            FusedSpec::QScale(..) | FusedSpec::RoundingShiftRight(..) | FusedSpec::ShiftLeft(_) => {
                false
            }
            FusedSpec::AddUnicast(store) | FusedSpec::Store(store) => store.item_size() == 4,
            _ => true,
        }
    }

    inventory::submit! { MmmRoutine { make: || kernel::<4>(GEMM) } }
    inventory::submit! { MmmRoutine { make: || kernel::<1>(GEMV) } }

    fn preferred(_: &IsaSet, dt: DatumType, query: &Query, _: &[Suitable]) -> Option<&'static str> {
        match (dt, query.n) {
            (DatumType::F32, Some(1)) => Some(GEMV),
            (DatumType::F32, _) => Some(GEMM),
            _ => None,
        }
    }

    inventory::submit! {
        MmmTier {
            arch: Some(Arch::Wasm32Simd128),
            // tract's own wasm tier is 1.
            precedence: 2,
            name: "edgescore-wasm-x86-registers",
            applies: |_| true,
            preferred,
        }
    }
}
