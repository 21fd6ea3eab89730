/// Scratch memory for kernels that need it (im2col matrices, padded copies, broadcast
/// products). It grows to the largest request and keeps that size, so reusing one `Scratch`
/// per layer makes every call after the first allocation-free.
///
/// Kernels never read what an earlier call left in it.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    buf: Vec<f32>,
}

impl Scratch {
    /// An empty scratch; the first kernel call sizes it.
    pub fn new() -> Self {
        Self::default()
    }

    /// A scratch of `len` elements, all NaN: tests use it to show that no kernel reads
    /// scratch memory it has not written.
    pub fn poisoned(len: usize) -> Self {
        Self {
            buf: vec![f32::NAN; len],
        }
    }

    /// How many elements it holds now.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether it holds nothing yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// `N` disjoint buffers of the given lengths, growing the scratch if it is too small.
    /// Their contents are unspecified.
    pub(crate) fn parts<const N: usize>(&mut self, lens: [usize; N]) -> [&mut [f32]; N] {
        let total = lens.iter().sum();
        if self.buf.len() < total {
            self.buf.resize(total, 0.0);
        }
        let mut rest = &mut self.buf[..total];
        lens.map(|len| {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(len);
            rest = tail;
            part
        })
    }
}
