//! EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): the linear
//! item-to-item model `B` that best rebuilds each shopper's product set `x_u` from their other
//! products, `min ‖X − XB‖² + λ‖B‖²` with `diag(B) = 0`, whose closed form is
//! `B = I − P · diag(1 / diag(P))` with `P = (XᵀX + λI)⁻¹`. A shopper's score for product `j`
//! is `(x_u B)_j = x_uj − (x_u P)_j / P_jj`. Unlike the neighbour votes (which shoppers are
//! alike) and co-purchase (what shares a basket), every product of the shopper's history
//! weighs every other product jointly, with what the shopper already has explained away: the
//! new-to-you list's strongest single signal on the Instacart sample
//! (docs/benchmarks/recommend-eval.md).
//!
//! `P` is products × products. When there are fewer shoppers than products, the same scores
//! come from a shoppers × shoppers system (Woodbury): with `M = (XXᵀ + λI)⁻¹`,
//! `x_u P = (M X)_u` and `P_jj = (1 − x_jᵀ M x_j) / λ` (`x_j`: product `j`'s buyers). The fit
//! takes the smaller side; when that is above `max_dim`, it keeps the `max_dim` products with
//! the most buyers (the others get no EASE score). Pure code; dense `f64` Cholesky.

use super::ProductIx;
use super::models::{Accumulator, ItemSets};

/// Why a fit failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EaseError {
    /// λ must be a positive, finite number (it makes the system positive definite).
    #[error("EASE regularisation must be positive and finite, got {0}")]
    Lambda(f64),
    /// Rounding broke the Cholesky factorisation (not expected with λ > 0).
    #[error("EASE system is not positive definite at row {0}")]
    NotPositiveDefinite(usize),
}

/// A fitted EASE model over an [`ItemSets`] (binary: bought or not).
#[derive(Debug, Clone)]
pub struct Ease {
    fitted: Fitted,
}

#[derive(Debug, Clone)]
enum Fitted {
    /// Fewer shoppers than products: `M = (XXᵀ + λI)⁻¹` (row-major, shoppers × shoppers) and,
    /// per product, `P_jj` (0: nobody bought it).
    Shoppers { inverse: Vec<f64>, diag: Vec<f64> },
    /// `P = (XᵀX + λI)⁻¹` over `kept` products (row-major, in `kept`'s order); `position[p]`
    /// is `p`'s index in `kept` (`u32::MAX`: not kept).
    Products {
        kept: Vec<ProductIx>,
        position: Vec<u32>,
        inverse: Vec<f64>,
    },
}

impl Ease {
    /// Fits EASE with regularisation `lambda` on `sets`, solving a system of at most
    /// `max_dim` rows (see the module documentation).
    pub fn fit(sets: &ItemSets, lambda: f64, max_dim: usize) -> Result<Ease, EaseError> {
        if lambda.is_nan() || lambda <= 0.0 || lambda.is_infinite() {
            return Err(EaseError::Lambda(lambda));
        }
        let shoppers = sets.sets.len();
        let bought = sets.postings.iter().filter(|p| !p.is_empty()).count();
        let fitted = if shoppers <= bought && shoppers <= max_dim {
            fit_shoppers(sets, lambda)?
        } else {
            fit_products(sets, lambda, max_dim)?
        };
        Ok(Ease { fitted })
    }

    /// Adds `user`'s scores `(x_u B)_j` to `acc` for every product the model covers (their
    /// own products included, scored as the model rebuilds them).
    pub fn scores(&self, sets: &ItemSets, user: usize, acc: &mut Accumulator) {
        match &self.fitted {
            Fitted::Shoppers { inverse, diag } => {
                let n = sets.sets.len();
                let row = &inverse[user * n..(user + 1) * n];
                // (M X)_u = Σ_v M_uv · x_v.
                for (other, &weight) in row.iter().enumerate() {
                    if weight != 0.0 {
                        for &product in &sets.sets[other] {
                            acc.add(product, weight);
                        }
                    }
                }
                let own = &sets.sets[user];
                let touched: Vec<(ProductIx, f64)> = acc.take();
                for (product, mx) in touched {
                    let d = diag[product as usize];
                    if d > 0.0 {
                        let x = if own.binary_search(&product).is_ok() {
                            1.0
                        } else {
                            0.0
                        };
                        acc.add(product, x - mx / d);
                    }
                }
            }
            Fitted::Products {
                kept,
                position,
                inverse,
            } => {
                let m = kept.len();
                // x_u P, and x_u itself (1 on the shopper's kept products).
                let mut xp = vec![0.0; m];
                let mut x = vec![0.0; m];
                for &p in &sets.sets[user] {
                    if let Some(i) = kept_index(position, p) {
                        x[i] = 1.0;
                        axpy(&mut xp, 1.0, &inverse[i * m..(i + 1) * m]);
                    }
                }
                for (j, (&product, &sum)) in kept.iter().zip(&xp).enumerate() {
                    let score = x[j] - sum / inverse[j * m + j];
                    if score != 0.0 {
                        acc.add(product, score);
                    }
                }
            }
        }
    }
}

/// The shoppers-side (Woodbury) fit.
fn fit_shoppers(sets: &ItemSets, lambda: f64) -> Result<Fitted, EaseError> {
    let n = sets.sets.len();
    let mut gram = vec![0.0; n * n];
    let mut counts = Vec::new();
    for user in 0..n {
        sets.common_counts(user, &mut counts);
        for (other, &common) in counts.iter().enumerate() {
            gram[user * n + other] = f64::from(common);
        }
        gram[user * n + user] += lambda;
    }
    let inverse = spd_inverse(gram, n)?;
    // P_jj = (1 − Σ_{v,w buy j} M_vw) / λ.
    let diag = sets
        .postings
        .iter()
        .map(|buyers| {
            if buyers.is_empty() {
                return 0.0;
            }
            let quad: f64 = buyers
                .iter()
                .map(|&v| {
                    let row = &inverse[v as usize * n..(v as usize + 1) * n];
                    buyers.iter().map(|&w| row[w as usize]).sum::<f64>()
                })
                .sum();
            (1.0 - quad) / lambda
        })
        .collect();
    Ok(Fitted::Shoppers { inverse, diag })
}

/// The products-side fit over the `max_dim` products with the most buyers (ties by index).
fn fit_products(sets: &ItemSets, lambda: f64, max_dim: usize) -> Result<Fitted, EaseError> {
    let mut kept: Vec<ProductIx> = (0..sets.postings.len() as ProductIx)
        .filter(|&p| !sets.postings[p as usize].is_empty())
        .collect();
    kept.sort_by(|&a, &b| {
        sets.postings[b as usize]
            .len()
            .cmp(&sets.postings[a as usize].len())
            .then(a.cmp(&b))
    });
    kept.truncate(max_dim);
    kept.sort_unstable();
    let mut position = vec![u32::MAX; sets.postings.len()];
    for (i, &p) in kept.iter().enumerate() {
        position[p as usize] = i as u32;
    }
    let m = kept.len();
    let mut gram = vec![0.0; m * m];
    let mut own = Vec::new();
    for set in &sets.sets {
        own.clear();
        own.extend(set.iter().filter_map(|&p| kept_index(&position, p)));
        for &i in &own {
            let row = &mut gram[i * m..(i + 1) * m];
            for &j in &own {
                row[j] += 1.0;
            }
        }
    }
    for i in 0..m {
        gram[i * m + i] += lambda;
    }
    let inverse = spd_inverse(gram, m)?;
    Ok(Fitted::Products {
        kept,
        position,
        inverse,
    })
}

/// `product`'s row in a products-side fit, if kept.
fn kept_index(position: &[u32], product: ProductIx) -> Option<usize> {
    match position[product as usize] {
        u32::MAX => None,
        i => Some(i as usize),
    }
}

/// Rows handled together by [`spd_inverse`]'s loops: each earlier row is read once per block
/// of rows instead of once per row (at 3,000 rows a triangle is 36 MB, far beyond the caches).
const BLOCK: usize = 32;

/// The inverse of the symmetric positive definite `n × n` matrix `a` (row-major), through its
/// Cholesky factor `L` (`a = L Lᵀ`, `a⁻¹ = L⁻ᵀ L⁻¹`). Only the lower triangle of `a` is read.
/// Each of the three steps takes the rows in blocks of 32.
pub fn spd_inverse(mut a: Vec<f64>, n: usize) -> Result<Vec<f64>, EaseError> {
    assert_eq!(a.len(), n * n, "spd_inverse: a is not n × n");
    // Cholesky in place (lower triangle): L_ij = (a_ij − L_i,<j · L_j,<j) / L_jj, L_ii the
    // square root of the same with j = i.
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let (done, block) = a.split_at_mut(start * n);
        // Columns left of the block: every earlier row is complete.
        for j in 0..start {
            let row_j = &done[j * n..j * n + j + 1];
            for row_i in block[..(end - start) * n].chunks_exact_mut(n) {
                row_i[j] = (row_i[j] - dot(&row_i[..j], &row_j[..j])) / row_j[j];
            }
        }
        // The block's own triangle.
        for i in start..end {
            for j in start..=i {
                let (earlier, from_i) = block.split_at_mut((i - start) * n);
                let row_i = &mut from_i[..n];
                let reduced = if j == i {
                    row_i[i] - dot(&row_i[..i], &row_i[..i])
                } else {
                    let row_j = &earlier[(j - start) * n..(j - start) * n + j + 1];
                    (row_i[j] - dot(&row_i[..j], &row_j[..j])) / row_j[j]
                };
                if j == i {
                    if reduced.is_nan() || reduced <= 0.0 {
                        return Err(EaseError::NotPositiveDefinite(i));
                    }
                    row_i[i] = reduced.sqrt();
                } else {
                    row_i[j] = reduced;
                }
            }
        }
    }
    // W = L⁻¹ (lower triangular): row i = (e_i − Σ_{k<i} L_ik · W_k) / L_ii, row k of W
    // non-zero on 0..=k only.
    let mut inv = vec![0.0; n * n];
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let (done, block) = inv.split_at_mut(start * n);
        for (k, w_k) in done.chunks_exact(n).enumerate() {
            for (i, w_i) in (start..end).zip(block.chunks_exact_mut(n)) {
                axpy(&mut w_i[..=k], -a[i * n + k], &w_k[..=k]);
            }
        }
        for i in start..end {
            let (earlier, from_i) = block.split_at_mut((i - start) * n);
            let w_i = &mut from_i[..n];
            for (k, w_k) in (start..i).zip(earlier.chunks_exact(n)) {
                axpy(&mut w_i[..=k], -a[i * n + k], &w_k[..=k]);
            }
            w_i[i] += 1.0;
            let d = a[i * n + i];
            for t in &mut w_i[..=i] {
                *t /= d;
            }
        }
    }
    // a⁻¹ = Wᵀ W: entry (i, j) = Σ_{k ≥ max(i,j)} W_ki · W_kj, the dot product of columns i
    // and j of W. The columns are transposed into `a` (no longer needed) so that they are
    // rows; the upper triangle goes into `inv`'s buffer, then is mirrored.
    for i in 0..n {
        for k in 0..n {
            a[i * n + k] = if k >= i { inv[k * n + i] } else { 0.0 };
        }
    }
    let columns = a;
    let mut out = inv;
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        for j in start..n {
            let c_j = &columns[j * n..(j + 1) * n];
            for i in start..end.min(j + 1) {
                out[i * n + j] = dot(&columns[i * n + j..(i + 1) * n], &c_j[j..]);
            }
        }
    }
    for i in 0..n {
        for j in 0..i {
            out[i * n + j] = out[j * n + i];
        }
    }
    Ok(out)
}

/// `y += alpha · x` (over the shorter length).
fn axpy(y: &mut [f64], alpha: f64, x: &[f64]) {
    if alpha != 0.0 {
        for (t, &v) in y.iter_mut().zip(x) {
            *t += alpha * v;
        }
    }
}

/// `Σ a_k · b_k` over the shorter length, in four independent sums (so the compiler can use
/// vector lanes; the rounding differs from a single running sum only in the last bits).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut lanes = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (a4.remainder(), b4.remainder());
    for (x, y) in a4.zip(b4) {
        for lane in 0..4 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commerce::recommend::basket::Baskets;

    fn product_ix(data: &Baskets, id: &str) -> ProductIx {
        data.product_ix(id).expect("product")
    }

    fn dense(ease: &Ease, sets: &ItemSets, user: usize, products: usize) -> Vec<f64> {
        let mut acc = Accumulator::new(products);
        ease.scores(sets, user, &mut acc);
        (0..products as ProductIx).map(|p| acc.get(p)).collect()
    }

    #[test]
    fn spd_inverse_inverts() {
        // A 3 × 3 SPD matrix and its inverse checked by multiplication.
        let a = vec![4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let inv = spd_inverse(a.clone(), 3).expect("spd");
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-12, "({i},{j}) = {v}");
            }
        }
        assert_eq!(
            spd_inverse(vec![1.0, 2.0, 2.0, 1.0], 2),
            Err(EaseError::NotPositiveDefinite(1))
        );
    }

    #[test]
    fn spd_inverse_inverts_a_larger_gram_matrix() {
        // XᵀX + λI for a pseudo-random 0/1 matrix X (60 rows, 40 columns).
        let (rows, n) = (60, 40);
        let mut state = 0x2545_f491_u64;
        let x: Vec<f64> = (0..rows * n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                if (state >> 33).is_multiple_of(4) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let mut a = vec![0.0; n * n];
        for r in 0..rows {
            for i in 0..n {
                for j in 0..n {
                    a[i * n + j] += x[r * n + i] * x[r * n + j];
                }
            }
        }
        for i in 0..n {
            a[i * n + i] += 0.5;
        }
        let inv = spd_inverse(a.clone(), n).expect("spd");
        for i in 0..n {
            for j in 0..n {
                let v: f64 = (0..n).map(|k| a[i * n + k] * inv[k * n + j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-9, "({i},{j}) = {v}");
                assert_eq!(inv[i * n + j], inv[j * n + i]);
            }
        }
    }

    fn shop() -> Baskets {
        let mut data = Baskets::new();
        // Shoppers who buy pasta buy sauce, half of them bread; "c" has pasta only.
        for user in ["a", "b", "d", "e"] {
            data.push(user, ["pasta", "sauce"]);
        }
        data.push("a", ["bread"]);
        data.push("b", ["bread"]);
        data.push("f", ["milk", "bread"]);
        data.push("g", ["milk", "eggs"]);
        data.push("g", ["bread"]);
        data.push("c", ["pasta"]);
        data
    }

    #[test]
    fn pasta_buyers_get_sauce_first() {
        let data = shop();
        let sets = ItemSets::new(&data);
        let ease = Ease::fit(&sets, 1.0, 1000).expect("fit");
        let c = data.user_ix("c").expect("c");
        let scores = dense(&ease, &sets, c, data.products());
        let score = |id: &str| scores[product_ix(&data, id) as usize];
        assert!(score("sauce") > score("bread"), "{scores:?}");
        assert!(score("bread") > score("eggs"), "{scores:?}");
        assert!(score("bread") > score("milk"), "{scores:?}");
    }

    #[test]
    fn both_sides_give_the_same_scores_and_the_cap_keeps_the_most_bought() {
        let data = shop();
        let sets = ItemSets::new(&data);
        // 7 shoppers, 5 products: the products side is the smaller one.
        let products = Ease::fit(&sets, 2.0, 6).expect("products side");
        assert!(matches!(products.fitted, Fitted::Products { .. }));
        // The shoppers side, taken when there are fewer shoppers than products: add products.
        let mut wide = shop();
        for i in 0..5 {
            wide.push("h", [format!("extra{i}").as_str()]);
        }
        let wide_sets = ItemSets::new(&wide);
        let dual = Ease::fit(&wide_sets, 2.0, 100).expect("shoppers side");
        assert!(matches!(dual.fitted, Fitted::Shoppers { .. }));
        // 8 shoppers, 10 products, cap 5: the products side over the five most bought
        // (bread, pasta, sauce, milk, eggs; the extras have one buyer each).
        let primal = Ease::fit(&wide_sets, 2.0, 5).expect("products side");
        assert!(matches!(primal.fitted, Fitted::Products { .. }));
        // Uncapped, the products side gives the shoppers side's scores.
        let full = fit_products(&wide_sets, 2.0, usize::MAX).expect("full");
        let full = Ease { fitted: full };
        for user in 0..wide.users() {
            let a = dense(&dual, &wide_sets, user, wide.products());
            let b = dense(&full, &wide_sets, user, wide.products());
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-9, "user {user}: {a:?} vs {b:?}");
            }
        }
        // The capped fit scores only the kept products.
        let capped = dense(&primal, &wide_sets, 0, wide.products());
        let extra = product_ix(&wide, "extra0") as usize;
        assert_eq!(capped[extra], 0.0);
        assert!(capped[product_ix(&wide, "bread") as usize] != 0.0);
    }

    #[test]
    fn lambda_must_be_positive() {
        let sets = ItemSets::new(&shop());
        for lambda in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                Ease::fit(&sets, lambda, 10),
                Err(EaseError::Lambda(_))
            ));
        }
    }
}
