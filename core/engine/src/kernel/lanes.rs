//! Four f32 lanes: WebAssembly's `v128` in the component, a plain array elsewhere, so that the
//! kernel's logic is unit tested natively (`cargo test`) and runs as SIMD in the component.

pub(crate) trait Lanes: Copy {
    fn splat(x: f32) -> Self;
    /// # Safety
    /// `p` is valid for reading 4 f32 (any alignment).
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p` is valid for writing 4 f32 (any alignment).
    unsafe fn store(self, p: *mut f32);
    fn add(self, other: Self) -> Self;
    fn sub(self, other: Self) -> Self;
    fn mul(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;
    fn max(self, other: Self) -> Self;
    /// `self` where it is > 0, `alpha * self` elsewhere.
    fn leaky_relu(self, alpha: Self) -> Self;
    fn lane(self, i: usize) -> f32;
    /// Lane `i` in all four lanes.
    fn broadcast(self, i: usize) -> Self;
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) use simd::V128;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use super::Lanes;
    use std::arch::wasm32::*;

    #[derive(Clone, Copy)]
    pub(crate) struct V128(v128);

    impl Lanes for V128 {
        #[inline(always)]
        fn splat(x: f32) -> Self {
            V128(f32x4_splat(x))
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // Volatile only to keep LLVM from hoisting the next records' loads of the matmul
            // loop ahead of this record's arithmetic: wasm has no register limit, so it does,
            // and Cranelift then spills them to x86's 16. Measured: 2-10% faster scoring.
            V128(unsafe { std::ptr::read_volatile(p as *const v128) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { v128_store(p as *mut v128, self.0) }
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            V128(f32x4_add(self.0, o.0))
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            V128(f32x4_sub(self.0, o.0))
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            V128(f32x4_mul(self.0, o.0))
        }
        #[inline(always)]
        fn min(self, o: Self) -> Self {
            V128(f32x4_min(self.0, o.0))
        }
        #[inline(always)]
        fn max(self, o: Self) -> Self {
            V128(f32x4_max(self.0, o.0))
        }
        #[inline(always)]
        fn leaky_relu(self, alpha: Self) -> Self {
            let positive = f32x4_gt(self.0, f32x4_splat(0.0));
            V128(v128_bitselect(self.0, f32x4_mul(self.0, alpha.0), positive))
        }
        #[inline(always)]
        fn lane(self, i: usize) -> f32 {
            match i {
                0 => f32x4_extract_lane::<0>(self.0),
                1 => f32x4_extract_lane::<1>(self.0),
                2 => f32x4_extract_lane::<2>(self.0),
                _ => f32x4_extract_lane::<3>(self.0),
            }
        }
        #[inline(always)]
        fn broadcast(self, i: usize) -> Self {
            V128(match i {
                0 => i32x4_shuffle::<0, 0, 0, 0>(self.0, self.0),
                1 => i32x4_shuffle::<1, 1, 1, 1>(self.0, self.0),
                2 => i32x4_shuffle::<2, 2, 2, 2>(self.0, self.0),
                _ => i32x4_shuffle::<3, 3, 3, 3>(self.0, self.0),
            })
        }
    }
}

/// The same operations lane by lane, for native tests of the kernel.
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Array([f32; 4]);

#[cfg(test)]
impl Array {
    fn zip(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        Array(std::array::from_fn(|i| f(self.0[i], o.0[i])))
    }
}

#[cfg(test)]
impl Lanes for Array {
    fn splat(x: f32) -> Self {
        Array([x; 4])
    }
    unsafe fn load(p: *const f32) -> Self {
        Array(unsafe { std::ptr::read_unaligned(p as *const [f32; 4]) })
    }
    unsafe fn store(self, p: *mut f32) {
        unsafe { std::ptr::write_unaligned(p as *mut [f32; 4], self.0) }
    }
    fn add(self, o: Self) -> Self {
        self.zip(o, |a, b| a + b)
    }
    fn sub(self, o: Self) -> Self {
        self.zip(o, |a, b| a - b)
    }
    fn mul(self, o: Self) -> Self {
        self.zip(o, |a, b| a * b)
    }
    fn min(self, o: Self) -> Self {
        self.zip(o, f32::min)
    }
    fn max(self, o: Self) -> Self {
        self.zip(o, f32::max)
    }
    fn leaky_relu(self, alpha: Self) -> Self {
        self.zip(alpha, |x, a| if x > 0.0 { x } else { a * x })
    }
    fn lane(self, i: usize) -> f32 {
        self.0[i]
    }
    fn broadcast(self, i: usize) -> Self {
        Array([self.0[i]; 4])
    }
}
