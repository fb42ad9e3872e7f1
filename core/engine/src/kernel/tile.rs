//! One tile of tract's fused f32 matrix multiply: `MR` = 8 rows by `NR` columns, each column
//! held as two vectors of four rows, so the accumulators are `2 * NR` vectors (8 for the GEMM
//! tile, 2 for the matrix-vector one).
//!
//! tract hands a kernel a list of operations (`FusedKerSpec`) ending in `Done`; their meaning
//! is that of tract's portable kernel (`tract_linalg::generic::mmm`): the operand comes first,
//! so `ScalarSub(s)` is `s - acc` and `ScalarSubF(s)` is `acc - s`.

use tract_onnx::tract_core::tract_linalg::mmm::{FusedKerSpec, OutputStoreKer};

use super::lanes::Lanes;

/// Rows per tile: two vectors of four.
pub(crate) const MR: usize = 8;

/// The accumulators: `[column][upper or lower four rows]`.
type Tile<L, const NR: usize> = [[L; 2]; NR];

/// Runs one tile's operations. 0 when done; 1 for an operation this kernel does not do (the
/// quantized ones and 16-bit operands, which `can_fuse` keeps away from it).
///
/// # Safety
/// The pointers in `specs` are what tract passes a kernel of this shape: packed panels of at
/// least `k` records of `MR` (A) and `NR` (B) f32, row and column vectors of `MR` and `NR` f32,
/// and output tiles of `MR` x `NR` f32 at the given strides.
pub(crate) unsafe fn run<L: Lanes, const NR: usize>(specs: &[FusedKerSpec<f32>]) -> isize {
    let mut acc: Tile<L, NR> = [[L::splat(0.0); 2]; NR];
    for spec in specs {
        unsafe {
            match *spec {
                FusedKerSpec::Done => return 0,
                FusedKerSpec::Clear => acc = [[L::splat(0.0); 2]; NR],
                FusedKerSpec::AddMatMul {
                    k,
                    pa,
                    pb,
                    packing: 0,
                } => add_mat_mul(&mut acc, k, pa as *const f32, pb as *const f32),
                FusedKerSpec::ScalarMin(s) => scalar(&mut acc, s, |s, x| s.min(x)),
                FusedKerSpec::ScalarMax(s) => scalar(&mut acc, s, |s, x| s.max(x)),
                FusedKerSpec::ScalarAdd(s) => scalar(&mut acc, s, |s, x| s.add(x)),
                FusedKerSpec::ScalarMul(s) => scalar(&mut acc, s, |s, x| s.mul(x)),
                FusedKerSpec::ScalarSub(s) => scalar(&mut acc, s, |s, x| s.sub(x)),
                FusedKerSpec::ScalarSubF(s) => scalar(&mut acc, s, |s, x| x.sub(s)),
                FusedKerSpec::LeakyRelu(a) => scalar(&mut acc, a, |a, x| x.leaky_relu(a)),
                FusedKerSpec::PerRowMin(r) => per_row(&mut acc, r, |r, x| r.min(x)),
                FusedKerSpec::PerRowMax(r) => per_row(&mut acc, r, |r, x| r.max(x)),
                FusedKerSpec::PerRowAdd(r) => per_row(&mut acc, r, |r, x| r.add(x)),
                FusedKerSpec::PerRowMul(r) => per_row(&mut acc, r, |r, x| r.mul(x)),
                FusedKerSpec::PerRowSub(r) => per_row(&mut acc, r, |r, x| r.sub(x)),
                FusedKerSpec::PerRowSubF(r) => per_row(&mut acc, r, |r, x| x.sub(r)),
                FusedKerSpec::PerColMin(c) => per_col(&mut acc, c, |c, x| c.min(x)),
                FusedKerSpec::PerColMax(c) => per_col(&mut acc, c, |c, x| c.max(x)),
                FusedKerSpec::PerColAdd(c) => per_col(&mut acc, c, |c, x| c.add(x)),
                FusedKerSpec::PerColMul(c) => per_col(&mut acc, c, |c, x| c.mul(x)),
                FusedKerSpec::PerColSub(c) => per_col(&mut acc, c, |c, x| c.sub(x)),
                FusedKerSpec::PerColSubF(c) => per_col(&mut acc, c, |c, x| x.sub(c)),
                FusedKerSpec::AddRowColProducts(rows, cols) => {
                    let rows = [L::load(rows), L::load(rows.add(4))];
                    for (c, column) in acc.iter_mut().enumerate() {
                        let col = L::splat(*cols.add(c));
                        for (x, r) in column.iter_mut().zip(rows) {
                            *x = x.add(r.mul(col));
                        }
                    }
                }
                FusedKerSpec::AddUnicast(other) if other.item_size == 4 => {
                    let tile = read_tile::<L, NR>(&other);
                    for (column, other) in acc.iter_mut().zip(tile) {
                        for (x, o) in column.iter_mut().zip(other) {
                            *x = x.add(o);
                        }
                    }
                }
                FusedKerSpec::Store(out) if out.item_size == 4 => write_tile(&acc, &out),
                _ => return 1,
            }
        }
    }
    0
}

/// Records per trip of the loop in `add_mat_mul`. wasmtime checks the epoch (the host's bound
/// on a call's time) at every loop header, and its slow path is a call after which no vector
/// register survives, so Cranelift keeps the accumulators in memory across the header: a load
/// and a store of each per trip. Four records per trip pay that once per 4 x 32 multiply-adds.
const UNROLL: usize = 4;

/// `acc += A · B` over `k` records: A's record is `MR` rows, B's is `NR` columns.
#[inline(always)]
unsafe fn add_mat_mul<L: Lanes, const NR: usize>(
    acc: &mut Tile<L, NR>,
    k: usize,
    a: *const f32,
    b: *const f32,
) {
    let mut i = 0;
    while i + UNROLL <= k {
        for u in 0..UNROLL {
            unsafe { add_record(acc, a, b, i + u) };
        }
        i += UNROLL;
    }
    while i < k {
        unsafe { add_record(acc, a, b, i) };
        i += 1;
    }
}

#[inline(always)]
unsafe fn add_record<L: Lanes, const NR: usize>(
    acc: &mut Tile<L, NR>,
    a: *const f32,
    b: *const f32,
    i: usize,
) {
    unsafe {
        let rows = [L::load(a.add(MR * i)), L::load(a.add(MR * i + 4))];
        // Four columns: one load and a shuffle each. (Cranelift makes a splat from memory a
        // scalar load, a move and a broadcast.)
        let cols = (NR == 4).then(|| L::load(b.add(NR * i)));
        for (c, column) in acc.iter_mut().enumerate() {
            let b = match cols {
                Some(cols) => cols.broadcast(c),
                None => L::splat(*b.add(NR * i + c)),
            };
            for (x, r) in column.iter_mut().zip(rows) {
                *x = x.add(r.mul(b));
            }
        }
    }
}

#[inline(always)]
fn scalar<L: Lanes, const NR: usize>(acc: &mut Tile<L, NR>, s: f32, f: impl Fn(L, L) -> L) {
    let s = L::splat(s);
    acc.iter_mut().flatten().for_each(|x| *x = f(s, *x));
}

#[inline(always)]
unsafe fn per_row<L: Lanes, const NR: usize>(
    acc: &mut Tile<L, NR>,
    rows: *const f32,
    f: impl Fn(L, L) -> L,
) {
    let rows = unsafe { [L::load(rows), L::load(rows.add(4))] };
    for column in acc.iter_mut() {
        for (x, r) in column.iter_mut().zip(rows) {
            *x = f(r, *x);
        }
    }
}

#[inline(always)]
unsafe fn per_col<L: Lanes, const NR: usize>(
    acc: &mut Tile<L, NR>,
    cols: *const f32,
    f: impl Fn(L, L) -> L,
) {
    for (c, column) in acc.iter_mut().enumerate() {
        let col = L::splat(unsafe { *cols.add(c) });
        column.iter_mut().for_each(|x| *x = f(col, *x));
    }
}

/// The address of row `r`, column `c` of a tile.
fn at(tile: &OutputStoreKer, r: usize, c: usize) -> *mut f32 {
    tile.ptr
        .wrapping_offset(tile.row_byte_stride * r as isize + tile.col_byte_stride * c as isize)
        as *mut f32
}

unsafe fn read_tile<L: Lanes, const NR: usize>(tile: &OutputStoreKer) -> Tile<L, NR> {
    std::array::from_fn(|c| {
        std::array::from_fn(|half| unsafe {
            if tile.row_byte_stride == 4 {
                L::load(at(tile, 4 * half, c))
            } else {
                let mut lanes = [0f32; 4];
                for (i, lane) in lanes.iter_mut().enumerate() {
                    *lane = *at(tile, 4 * half + i, c);
                }
                L::load(lanes.as_ptr())
            }
        })
    })
}

unsafe fn write_tile<L: Lanes, const NR: usize>(acc: &Tile<L, NR>, tile: &OutputStoreKer) {
    for (c, column) in acc.iter().enumerate() {
        for (half, x) in column.iter().enumerate() {
            unsafe {
                // Rows next to each other (a row-major output whose rows are the tile's
                // columns, as the model's `[N, features]` outputs are): one vector store.
                if tile.row_byte_stride == 4 {
                    x.store(at(tile, 4 * half, c));
                } else {
                    for i in 0..4 {
                        *at(tile, 4 * half + i, c) = x.lane(i);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::lanes::Array;
    use proptest::prelude::*;

    /// The tile by plain arithmetic in f64, row-major `[MR][NR]`.
    fn naive(a: &[f32], b: &[f32], k: usize, nr: usize) -> Vec<f64> {
        let mut c = vec![0f64; MR * nr];
        for i in 0..k {
            for r in 0..MR {
                for j in 0..nr {
                    c[r * nr + j] += a[MR * i + r] as f64 * b[nr * i + j] as f64;
                }
            }
        }
        c
    }

    fn store(out: &mut [f32], row_stride: usize, col_stride: usize) -> OutputStoreKer {
        OutputStoreKer {
            ptr: out.as_mut_ptr() as *mut u8,
            row_byte_stride: 4 * row_stride as isize,
            col_byte_stride: 4 * col_stride as isize,
            item_size: 4,
        }
    }

    fn run_tile<const NR: usize>(specs: &[FusedKerSpec<f32>]) -> isize {
        unsafe { run::<Array, NR>(specs) }
    }

    fn check<const NR: usize>(k: usize, a: &[f32], b: &[f32], row_major: bool) {
        let (row_stride, col_stride) = if row_major { (NR, 1) } else { (1, MR) };
        let mut out = vec![f32::NAN; MR * NR];
        let specs = [
            FusedKerSpec::Clear,
            FusedKerSpec::AddMatMul {
                k,
                pa: a.as_ptr() as *const u8,
                pb: b.as_ptr() as *const u8,
                packing: 0,
            },
            FusedKerSpec::Store(store(&mut out, row_stride, col_stride)),
            FusedKerSpec::Done,
        ];
        assert_eq!(run_tile::<NR>(&specs), 0);
        let expected = naive(a, b, k, NR);
        for r in 0..MR {
            for c in 0..NR {
                let got = out[r * row_stride + c * col_stride] as f64;
                let want = expected[r * NR + c];
                let scale: f64 = (0..k)
                    .map(|i| (a[MR * i + r] as f64 * b[NR * i + c] as f64).abs())
                    .sum();
                assert!(
                    (got - want).abs() <= 1e-5 * scale + 1e-30,
                    "row {r} col {c}: {got} against {want}"
                );
            }
        }
    }

    fn panels(nr: usize) -> impl Strategy<Value = (usize, Vec<f32>, Vec<f32>)> {
        (0usize..40).prop_flat_map(move |k| {
            (
                Just(k),
                proptest::collection::vec(-10f32..10.0, MR * k),
                proptest::collection::vec(-10f32..10.0, nr * k),
            )
        })
    }

    proptest! {
        #[test]
        fn the_gemm_tile_is_the_product((k, a, b) in panels(4), row_major: bool) {
            check::<4>(k, &a, &b, row_major);
        }

        #[test]
        fn the_gemv_tile_is_the_product((k, a, b) in panels(1), row_major: bool) {
            check::<1>(k, &a, &b, row_major);
        }
    }

    /// Every fused operation against its meaning in tract's portable kernel, on a tile holding
    /// `10 * row + col`, stored column-major.
    #[test]
    fn fused_operations_mean_what_tract_means() {
        const NR: usize = 4;
        let start = |r: usize, c: usize| (10 * r + c) as f32;
        fn row(i: usize) -> f32 {
            i as f32 - 3.5
        }
        fn col(j: usize) -> f32 {
            2.0 - j as f32
        }
        let rows: Vec<f32> = (0..MR).map(row).collect();
        let cols: Vec<f32> = (0..NR).map(col).collect();
        let (r, c) = (rows.as_ptr(), cols.as_ptr());
        // Each operation and its value at (x, row i, column j).
        type Meaning = fn(f32, usize, usize) -> f32;
        let cases: [(FusedKerSpec<f32>, Meaning); 19] = [
            (FusedKerSpec::ScalarMin(12.0), |x, _, _| x.min(12.0)),
            (FusedKerSpec::ScalarMax(12.0), |x, _, _| x.max(12.0)),
            (FusedKerSpec::ScalarAdd(1.5), |x, _, _| x + 1.5),
            (FusedKerSpec::ScalarMul(-2.0), |x, _, _| x * -2.0),
            (FusedKerSpec::ScalarSub(5.0), |x, _, _| 5.0 - x),
            (FusedKerSpec::ScalarSubF(5.0), |x, _, _| x - 5.0),
            (FusedKerSpec::PerRowAdd(r), |x, i, _| x + row(i)),
            (FusedKerSpec::PerRowMul(r), |x, i, _| x * row(i)),
            (FusedKerSpec::PerRowSub(r), |x, i, _| row(i) - x),
            (FusedKerSpec::PerRowSubF(r), |x, i, _| x - row(i)),
            (FusedKerSpec::PerRowMin(r), |x, i, _| x.min(row(i))),
            (FusedKerSpec::PerRowMax(r), |x, i, _| x.max(row(i))),
            (FusedKerSpec::PerColAdd(c), |x, _, j| x + col(j)),
            (FusedKerSpec::PerColMul(c), |x, _, j| x * col(j)),
            (FusedKerSpec::PerColSub(c), |x, _, j| col(j) - x),
            (FusedKerSpec::PerColSubF(c), |x, _, j| x - col(j)),
            (FusedKerSpec::PerColMin(c), |x, _, j| x.min(col(j))),
            (FusedKerSpec::PerColMax(c), |x, _, j| x.max(col(j))),
            (FusedKerSpec::AddRowColProducts(r, c), |x, i, j| {
                x + row(i) * col(j)
            }),
        ];
        for (spec, meaning) in cases {
            let mut tile: Vec<f32> = (0..NR)
                .flat_map(|c| (0..MR).map(move |r| start(r, c)))
                .collect();
            let mut out = vec![f32::NAN; MR * NR];
            let specs = [
                FusedKerSpec::Clear,
                FusedKerSpec::AddUnicast(store(&mut tile, 1, MR)),
                spec,
                FusedKerSpec::Store(store(&mut out, 1, MR)),
                FusedKerSpec::Done,
            ];
            assert_eq!(run_tile::<NR>(&specs), 0, "{spec:?}");
            for rix in 0..MR {
                for cix in 0..NR {
                    let want = meaning(start(rix, cix), rix, cix);
                    assert_eq!(out[cix * MR + rix], want, "{spec:?} at row {rix} col {cix}");
                }
            }
        }
    }

    #[test]
    fn leaky_relu_scales_what_is_not_positive() {
        let mut tile: Vec<f32> = (0..MR).map(|r| r as f32 - 4.0).collect();
        let mut out = vec![f32::NAN; MR];
        let specs = [
            FusedKerSpec::Clear,
            FusedKerSpec::AddUnicast(store(&mut tile, 1, MR)),
            FusedKerSpec::LeakyRelu(0.5),
            FusedKerSpec::Store(store(&mut out, 1, MR)),
            FusedKerSpec::Done,
        ];
        assert_eq!(run_tile::<1>(&specs), 0);
        assert_eq!(out, [-2.0, -1.5, -1.0, -0.5, 0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn what_it_does_not_do_is_refused_not_ignored() {
        let specs = [
            FusedKerSpec::Clear,
            FusedKerSpec::ShiftLeft(1),
            FusedKerSpec::Done,
        ];
        assert_eq!(run_tile::<4>(&specs), 1);
        let mut half = vec![0u16; MR * 4];
        let f16_store = OutputStoreKer {
            ptr: half.as_mut_ptr() as *mut u8,
            row_byte_stride: 2,
            col_byte_stride: 2 * MR as isize,
            item_size: 2,
        };
        assert_eq!(
            run_tile::<4>(&[FusedKerSpec::Store(f16_store), FusedKerSpec::Done]),
            1
        );
    }
}
