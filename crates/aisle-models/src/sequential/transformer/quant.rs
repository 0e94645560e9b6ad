//! Int8 item table: symmetric per-row quantisation of the item embeddings, scored with
//! integer dot products. The item table is almost all of the model's weights (the
//! catalogue times the width, against a few thousand weights per layer), so this is where
//! compression pays.

use rayon::prelude::*;

/// Item embeddings as int8 with one scale per item.
#[derive(Clone, Debug, Default)]
pub(super) struct QuantizedTable {
    dim: usize,
    values: Vec<i8>,
    scales: Vec<f32>,
}

fn quantize_row(row: &[f32], out: &mut [i8]) -> f32 {
    let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    for (q, v) in out.iter_mut().zip(row) {
        *q = (v / scale).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

impl QuantizedTable {
    /// Quantises a row-major `[n, dim]` table.
    pub fn new(table: &[f32], dim: usize) -> QuantizedTable {
        let n = table.len() / dim;
        let mut values = vec![0i8; n * dim];
        let scales = values
            .chunks_mut(dim)
            .zip(table.chunks(dim))
            .map(|(q, row)| quantize_row(row, q))
            .collect();
        QuantizedTable {
            dim,
            values,
            scales,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.values.len() + 4 * self.scales.len()
    }

    /// Scores of every item for one hidden state (the query is quantised too).
    pub fn score(&self, hidden: &[f32], scores: &mut [f32]) {
        let mut query = vec![0i8; self.dim];
        let query_scale = quantize_row(hidden, &mut query);
        let query: Vec<i16> = query.into_iter().map(i16::from).collect();
        // Threads only pay off for large catalogues; below that one core is faster.
        const BLOCK: usize = 16_384;
        if scores.len() <= BLOCK {
            score_rows(&self.values, &self.scales, &query, query_scale, scores);
            return;
        }
        let per_block = BLOCK * self.dim;
        scores
            .par_chunks_mut(BLOCK)
            .zip(self.values.par_chunks(per_block))
            .zip(self.scales.par_chunks(BLOCK))
            .for_each(|((out, values), scales)| {
                score_rows(values, scales, &query, query_scale, out);
            });
    }
}

/// Integer dot products of every row with the query. i8 × i16 products summed in i32
/// vectorise to multiply-add instructions; compiled for AVX2 and AVX-512 as well.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn score_rows(values: &[i8], scales: &[f32], query: &[i16], query_scale: f32, out: &mut [f32]) {
    let dim = query.len();
    for ((s, row), scale) in out.iter_mut().zip(values.chunks_exact(dim)).zip(scales) {
        let dot: i32 = row
            .iter()
            .zip(query)
            .map(|(&a, &b)| i32::from(i16::from(a) * b))
            .sum();
        *s = dot as f32 * scale * query_scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_scores_are_close_to_float_scores() {
        let dim = 16;
        let table: Vec<f32> = (0..100 * dim)
            .map(|k| ((k * 37 % 101) as f32 - 50.0) / 30.0)
            .collect();
        let hidden: Vec<f32> = (0..dim).map(|k| (k as f32 - 8.0) / 5.0).collect();
        let q = QuantizedTable::new(&table, dim);
        let mut scores = vec![0f32; 100];
        q.score(&hidden, &mut scores);
        for (i, s) in scores.iter().enumerate() {
            let exact: f32 = table[i * dim..(i + 1) * dim]
                .iter()
                .zip(&hidden)
                .map(|(a, b)| a * b)
                .sum();
            assert!(
                (s - exact).abs() < 0.05 * (1.0 + exact.abs()),
                "{i}: {s} vs {exact}"
            );
        }
        assert_eq!(q.bytes(), 100 * dim + 400);
    }
}
