//! The scoring pieces next-basket models are made of, and the published baselines built from
//! them: global popularity, P-TopFreq (a shopper's own purchase counts), TIFU-KNN (Hu et al.,
//! SIGIR 2020, as the "Next Basket Recommendation Reality Check" code implements it) and UP-CF@r
//! (Faggioli et al., UMAP 2020). Definitions: ../shared/reference/commerce.md and
//! docs/recommendations.md. All pure; vectors are sparse (`(product, value)` lists).

use super::{Baskets, ProductIx};

/// A sparse vector over products: `(product, value)`, each product once.
pub type Sparse = Vec<(ProductIx, f64)>;

/// A dense accumulator over products that remembers which entries it touched, so that many
/// sparse sums cost only what they touch.
#[derive(Debug, Clone)]
pub struct Accumulator {
    values: Vec<f64>,
    marked: Vec<bool>,
    touched: Vec<ProductIx>,
}

impl Accumulator {
    /// Zero over `len` products.
    pub fn new(len: usize) -> Self {
        Accumulator {
            values: vec![0.0; len],
            marked: vec![false; len],
            touched: Vec::new(),
        }
    }

    /// Adds `value` at `product`.
    pub fn add(&mut self, product: ProductIx, value: f64) {
        let i = product as usize;
        if !self.marked[i] {
            self.marked[i] = true;
            self.touched.push(product);
        }
        self.values[i] += value;
    }

    /// Adds `scale · vector`.
    pub fn add_scaled(&mut self, vector: &[(ProductIx, f64)], scale: f64) {
        for &(product, value) in vector {
            self.add(product, value * scale);
        }
    }

    /// The value at `product`.
    pub fn get(&self, product: ProductIx) -> f64 {
        self.values[product as usize]
    }

    /// The largest value, 1 when there is none above 0 (a divisor).
    pub fn max(&self) -> f64 {
        let max = self
            .touched
            .iter()
            .map(|&p| self.values[p as usize])
            .fold(0.0, f64::max);
        if max > 0.0 { max } else { 1.0 }
    }

    /// The non-zero entries, in the order they were first touched.
    pub fn entries(&self) -> impl Iterator<Item = (ProductIx, f64)> + '_ {
        self.touched
            .iter()
            .map(|&p| (p, self.values[p as usize]))
            .filter(|e| e.1 != 0.0)
    }

    /// The non-zero entries in the order they were first touched, leaving the accumulator at
    /// zero.
    pub fn take(&mut self) -> Sparse {
        let out = self.entries().collect();
        self.clear();
        out
    }

    /// Back to zero.
    pub fn clear(&mut self) {
        for &product in &self.touched {
            self.values[product as usize] = 0.0;
            self.marked[product as usize] = false;
        }
        self.touched.clear();
    }
}

/// Global popularity: each product's number of baskets, and the products in popularity order
/// (ties by first appearance), which breaks every other model's ties and fills short lists.
#[derive(Debug, Clone)]
pub struct Popularity {
    /// Baskets holding each product.
    pub counts: Vec<u32>,
    /// Products, most popular first.
    pub order: Vec<ProductIx>,
    /// Each product's position in `order`.
    pub rank: Vec<u32>,
}

impl Popularity {
    /// Counts over every basket of `data`.
    pub fn new(data: &Baskets) -> Popularity {
        let mut counts = vec![0u32; data.products()];
        for history in data.histories() {
            for basket in history {
                for &product in basket {
                    counts[product as usize] += 1;
                }
            }
        }
        let mut order: Vec<ProductIx> = (0..counts.len() as ProductIx).collect();
        order.sort_by(|a, b| counts[*b as usize].cmp(&counts[*a as usize]).then(a.cmp(b)));
        let mut rank = vec![0u32; counts.len()];
        for (position, &product) in order.iter().enumerate() {
            rank[product as usize] = position as u32;
        }
        Popularity {
            counts,
            order,
            rank,
        }
    }

    /// The best `n` of `scores` (positive scores only, ties by popularity), without the
    /// products `exclude` names, best first.
    pub fn ranked(
        &self,
        scores: &[(ProductIx, f64)],
        n: usize,
        exclude: impl Fn(ProductIx) -> bool,
    ) -> Vec<(ProductIx, f64)> {
        let mut ranked: Vec<(ProductIx, f64)> = scores
            .iter()
            .copied()
            .filter(|&(product, score)| score > 0.0 && !exclude(product))
            .collect();
        let by_score = |a: &(ProductIx, f64), b: &(ProductIx, f64)| {
            b.1.total_cmp(&a.1)
                .then(self.rank[a.0 as usize].cmp(&self.rank[b.0 as usize]))
        };
        if ranked.len() > n {
            ranked.select_nth_unstable_by(n, by_score);
            ranked.truncate(n);
        }
        ranked.sort_by(by_score);
        ranked
    }

    /// [`Popularity::ranked`] filled up to `n` from the popular products. Each entry:
    /// product, score (0 for filler), whether it is filler.
    pub fn top(
        &self,
        scores: &[(ProductIx, f64)],
        n: usize,
        exclude: impl Fn(ProductIx) -> bool,
    ) -> Vec<(ProductIx, f64, bool)> {
        let ranked = self.ranked(scores, n, &exclude);
        let mut out: Vec<(ProductIx, f64, bool)> =
            ranked.iter().map(|&(p, s)| (p, s, false)).collect();
        if out.len() < n {
            let chosen: std::collections::HashSet<ProductIx> =
                ranked.iter().map(|&(p, _)| p).collect();
            for &product in &self.order {
                if out.len() == n {
                    break;
                }
                if !chosen.contains(&product) && !exclude(product) {
                    out.push((product, 0.0, true));
                }
            }
        }
        out
    }
}

/// P-TopFreq's scores: how many of the shopper's baskets hold each product.
pub fn purchase_counts(history: &[Vec<ProductIx>]) -> Vec<(ProductIx, u32)> {
    let mut counts: std::collections::BTreeMap<ProductIx, u32> = Default::default();
    for basket in history {
        for &product in basket {
            *counts.entry(product).or_default() += 1;
        }
    }
    counts.into_iter().collect()
}

/// TIFU-KNN's group sizes for `n` baskets in `m` groups: with `n < m` every basket is its own
/// group; otherwise the first `m − e` groups get ⌊n/m⌋ baskets and the last `e` get ⌈n/m⌉,
/// `e = round((n/m − ⌊n/m⌋)·m)`.
pub fn tifu_group_sizes(n: usize, m: usize) -> Vec<usize> {
    let m = m.max(1);
    if n < m {
        return vec![1; n];
    }
    let floor = n / m;
    let ratio = n as f64 / m as f64;
    let e = ((ratio - floor as f64) * m as f64).round() as usize;
    let mut sizes = vec![floor; m - e];
    sizes.extend(std::iter::repeat_n(floor + 1, e));
    sizes
}

/// TIFU-KNN's user vector: basket `j` of `n` decayed by `basket_decay^(n−j)`, the baskets split
/// in order into groups ([`tifu_group_sizes`]), each group the mean of its baskets, and the user
/// vector `Σ_g group_decay^(m'−1−g) · group_g / m'`.
pub fn tifu_vector(
    history: &[Vec<ProductIx>],
    basket_decay: f64,
    group_decay: f64,
    groups: usize,
) -> Sparse {
    let n = history.len();
    let sizes = tifu_group_sizes(n, groups);
    let m = sizes.len();
    let mut out: std::collections::BTreeMap<ProductIx, f64> = Default::default();
    let mut start = 0;
    for (g, &size) in sizes.iter().enumerate() {
        let group_weight = group_decay.powi((m - 1 - g) as i32) / m as f64 / size as f64;
        for (j, basket) in history[start..start + size].iter().enumerate() {
            let position = start + j + 1; // 1-based
            let weight = basket_decay.powi((n - position) as i32) * group_weight;
            for &product in basket {
                *out.entry(product).or_default() += weight;
            }
        }
        start += size;
    }
    out.into_iter().collect()
}

/// The sparse dot product of two vectors sorted by product.
pub fn dot(a: &[(ProductIx, f64)], b: &[(ProductIx, f64)]) -> f64 {
    let (mut i, mut j, mut sum) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

/// UP-CF's asymmetric cosine of two shoppers with `nu` and `nv` distinct products, `common` of
/// them shared: `common / (nu^alpha · nv^(1−alpha))`.
pub fn asymmetric_cosine(common: usize, nu: usize, nv: usize, alpha: f64) -> f64 {
    if common == 0 || nu == 0 || nv == 0 {
        return 0.0;
    }
    common as f64 / ((nu as f64).powf(alpha) * (nv as f64).powf(1.0 - alpha))
}

/// UP-CF@r's user-wise popularity: the share of the shopper's last `r` baskets (or all, when
/// fewer) holding each product.
pub fn recent_share(history: &[Vec<ProductIx>], r: usize) -> Sparse {
    let r = r.max(1);
    let recent = &history[history.len().saturating_sub(r)..];
    let denominator = r.min(history.len()).max(1) as f64;
    purchase_counts(recent)
        .into_iter()
        .map(|(product, count)| (product, count as f64 / denominator))
        .collect()
}

/// [`recent_share`] with the baskets weighted by recency: the last basket 1, the one before
/// `decay`, then `decay²`…, divided by the sum of the weights (so `decay` 1 is `recent_share`
/// exactly), sorted by product. A product of the last basket counts more than one bought nine
/// baskets ago.
pub fn decayed_share(history: &[Vec<ProductIx>], r: usize, decay: f64) -> Sparse {
    if decay == 1.0 {
        return recent_share(history, r);
    }
    let recent = &history[history.len().saturating_sub(r.max(1))..];
    let mut weights: Vec<(ProductIx, f64)> = Vec::new();
    let mut total = 0.0;
    let mut weight = 1.0;
    for basket in recent.iter().rev() {
        total += weight;
        let mut products = basket.clone();
        products.sort_unstable();
        products.dedup();
        weights.extend(products.into_iter().map(|p| (p, weight)));
        weight *= decay;
    }
    weights.sort_unstable_by_key(|w| w.0);
    let mut out: Sparse = Vec::new();
    for (product, weight) in weights {
        match out.last_mut() {
            Some(last) if last.0 == product => last.1 += weight,
            _ => out.push((product, weight)),
        }
    }
    let total = if total > 0.0 { total } else { 1.0 };
    for entry in &mut out {
        entry.1 /= total;
    }
    out
}

/// Each shopper's distinct products (sorted), and for each product the shoppers who bought it:
/// the sets the similarity of two shoppers is computed on.
#[derive(Debug, Clone)]
pub struct ItemSets {
    /// Per shopper, their distinct products, sorted.
    pub sets: Vec<Vec<ProductIx>>,
    /// Per product, the shoppers holding it, ascending.
    pub postings: Vec<Vec<u32>>,
}

impl ItemSets {
    /// The sets of every shopper of `data`.
    pub fn new(data: &Baskets) -> ItemSets {
        let mut postings = vec![Vec::new(); data.products()];
        let sets: Vec<Vec<ProductIx>> = data
            .histories()
            .iter()
            .enumerate()
            .map(|(user, history)| {
                let mut set: Vec<ProductIx> = history.iter().flatten().copied().collect();
                set.sort_unstable();
                set.dedup();
                for &product in &set {
                    postings[product as usize].push(user as u32);
                }
                set
            })
            .collect();
        ItemSets { sets, postings }
    }

    /// For `user`, the products shared with every other shopper (indexed by shopper; `counts`
    /// is reused scratch space of one entry per shopper, left as the answer).
    pub fn common_counts(&self, user: usize, counts: &mut Vec<u32>) {
        counts.clear();
        counts.resize(self.sets.len(), 0);
        for &product in &self.sets[user] {
            for &other in &self.postings[product as usize] {
                counts[other as usize] += 1;
            }
        }
    }

    /// The `k` shoppers most similar to `user` by the asymmetric cosine with `alpha` (ties by
    /// index), `user` itself included first with similarity 1 when `with_self`; only shoppers
    /// sharing a product.
    pub fn neighbours(
        &self,
        user: usize,
        k: usize,
        alpha: f64,
        with_self: bool,
        scratch: &mut Vec<u32>,
    ) -> Vec<(usize, f64)> {
        self.common_counts(user, scratch);
        let nu = self.sets[user].len();
        let mut out: Vec<(usize, f64)> = scratch
            .iter()
            .enumerate()
            .filter(|&(other, &common)| other != user && common > 0)
            .map(|(other, &common)| {
                let sim = asymmetric_cosine(common as usize, nu, self.sets[other].len(), alpha);
                (other, sim)
            })
            .collect();
        let order = |a: &(usize, f64), b: &(usize, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let k_others = if with_self { k.saturating_sub(1) } else { k };
        if out.len() > k_others {
            out.select_nth_unstable_by(k_others, order);
            out.truncate(k_others);
        }
        out.sort_by(order);
        if with_self {
            out.insert(0, (user, 1.0));
        }
        out
    }
}

/// TIFU-KNN fitted on every shopper: their user vectors and the scores it gives.
#[derive(Debug, Clone)]
pub struct TifuKnn {
    /// Each shopper's user vector.
    pub vectors: Vec<Sparse>,
    /// Squared norms of `vectors`.
    norms: Vec<f64>,
    /// Per product, `(shopper, value)` of the vectors holding it.
    postings: Vec<Vec<(u32, f64)>>,
    /// Neighbours averaged.
    k: usize,
    /// Weight of the shopper's own vector.
    alpha: f64,
}

impl TifuKnn {
    /// User vectors with decays `basket_decay` (r_b), `group_decay` (r_g) and `groups` (m);
    /// `k` neighbours, blend `alpha`.
    pub fn fit(
        data: &Baskets,
        basket_decay: f64,
        group_decay: f64,
        groups: usize,
        k: usize,
        alpha: f64,
    ) -> TifuKnn {
        let vectors: Vec<Sparse> = data
            .histories()
            .iter()
            .map(|history| tifu_vector(history, basket_decay, group_decay, groups))
            .collect();
        let norms = vectors.iter().map(|v| dot(v, v)).collect();
        let mut postings = vec![Vec::new(); data.products()];
        for (user, vector) in vectors.iter().enumerate() {
            for &(product, value) in vector {
                postings[product as usize].push((user as u32, value));
            }
        }
        TifuKnn {
            vectors,
            norms,
            postings,
            k,
            alpha,
        }
    }

    /// The `k` other shoppers nearest to `user` by Euclidean distance (ties by index).
    pub fn neighbours(&self, user: usize) -> Vec<usize> {
        let mut dots = vec![0.0; self.vectors.len()];
        for &(product, value) in &self.vectors[user] {
            for &(other, other_value) in &self.postings[product as usize] {
                dots[other as usize] += value * other_value;
            }
        }
        let own = self.norms[user];
        let mut distances: Vec<(usize, f64)> = dots
            .iter()
            .enumerate()
            .filter(|&(other, _)| other != user)
            .map(|(other, &d)| (other, own + self.norms[other] - 2.0 * d))
            .collect();
        let order = |a: &(usize, f64), b: &(usize, f64)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0));
        if distances.len() > self.k {
            distances.select_nth_unstable_by(self.k, order);
            distances.truncate(self.k);
        }
        distances.into_iter().map(|(other, _)| other).collect()
    }

    /// `alpha · u + (1 − alpha) · mean of the neighbours' vectors`.
    pub fn scores(&self, user: usize, acc: &mut Accumulator) -> Sparse {
        let neighbours = self.neighbours(user);
        acc.add_scaled(&self.vectors[user], self.alpha);
        if !neighbours.is_empty() {
            let scale = (1.0 - self.alpha) / neighbours.len() as f64;
            for other in neighbours {
                acc.add_scaled(&self.vectors[other], scale);
            }
        }
        acc.take()
    }
}

/// UP-CF@r fitted on every shopper.
#[derive(Debug, Clone)]
pub struct UpCf {
    sets: ItemSets,
    shares: Vec<Sparse>,
    k: usize,
    alpha: f64,
    locality: f64,
}

impl UpCf {
    /// Recency window `r`, locality `q`, similarity `alpha`, `k` neighbours (the shopper itself
    /// among them, with similarity 1).
    pub fn fit(data: &Baskets, r: usize, q: f64, alpha: f64, k: usize) -> UpCf {
        UpCf {
            sets: ItemSets::new(data),
            shares: data
                .histories()
                .iter()
                .map(|history| recent_share(history, r))
                .collect(),
            k,
            alpha,
            locality: q,
        }
    }

    /// `Σ_v sim(u,v)^q · UWP_r(v,i)` over the neighbours `v`.
    pub fn scores(&self, user: usize, acc: &mut Accumulator, scratch: &mut Vec<u32>) -> Sparse {
        for (other, sim) in self
            .sets
            .neighbours(user, self.k, self.alpha, true, scratch)
        {
            acc.add_scaled(&self.shares[other], sim.powf(self.locality));
        }
        acc.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn group_sizes_follow_the_reality_check_split() {
        assert_eq!(tifu_group_sizes(2, 3), vec![1, 1]); // n < m: one basket per group
        assert_eq!(tifu_group_sizes(3, 3), vec![1, 1, 1]);
        assert_eq!(tifu_group_sizes(7, 3), vec![2, 2, 3]); // e = round(1/3·3) = 1
        assert_eq!(tifu_group_sizes(8, 3), vec![2, 3, 3]); // e = 2
        assert_eq!(tifu_group_sizes(9, 3), vec![3, 3, 3]);
        assert_eq!(tifu_group_sizes(0, 3), Vec::<usize>::new());
        assert_eq!(tifu_group_sizes(5, 1), vec![5]);
    }

    #[test]
    fn tifu_vector_decays_baskets_over_the_whole_history_and_groups() {
        // n = 4 baskets of one product each (0, 1, 2, 3), m = 3: groups [1], [1], [2].
        let history = vec![vec![0], vec![1], vec![2], vec![3]];
        let v = tifu_vector(&history, 0.5, 0.1, 3);
        // group 0: basket 1 decayed 0.5^3, weight 0.1^2 / 3
        // group 1: basket 2 decayed 0.5^2, weight 0.1^1 / 3
        // group 2: baskets 3, 4 decayed 0.5, 1, mean (/2), weight 1 / 3
        let expected = [
            (0, 0.125 * 0.01 / 3.0),
            (1, 0.25 * 0.1 / 3.0),
            (2, 0.5 / 2.0 / 3.0),
            (3, 1.0 / 2.0 / 3.0),
        ];
        assert_eq!(v.len(), 4);
        for ((p, x), (q, y)) in v.iter().zip(expected) {
            assert_eq!(*p, q);
            assert!(close(*x, y), "{p}: {x} vs {y}");
        }
    }

    #[test]
    fn tifu_vector_with_fewer_baskets_than_groups_uses_one_group_each() {
        // n = 2 < m = 3: m' = 2, u = r_g · b1 · r_b / 2 + b2 / 2.
        let history = vec![vec![0, 1], vec![1]];
        let v = tifu_vector(&history, 0.9, 0.7, 3);
        assert!(close(v[0].1, 0.7 * 0.9 / 2.0));
        assert!(close(v[1].1, 0.7 * 0.9 / 2.0 + 0.5));
    }

    #[test]
    fn asymmetric_cosine_weights_the_two_set_sizes() {
        // 2 shared, |N_u| = 4, |N_v| = 16, alpha .75: 2 / (4^.75 · 16^.25) = 2 / (2.828 · 2)
        let sim = asymmetric_cosine(2, 4, 16, 0.75);
        assert!(close(sim, 2.0 / (4f64.powf(0.75) * 2.0)));
        assert!(close(asymmetric_cosine(3, 3, 3, 0.3), 1.0));
        assert_eq!(asymmetric_cosine(0, 3, 3, 0.5), 0.0);
        // Asymmetric: swapping the sizes changes it.
        assert!(asymmetric_cosine(2, 16, 4, 0.75) < sim);
    }

    #[test]
    fn recent_share_counts_the_last_r_baskets() {
        let history = vec![vec![0], vec![0, 1], vec![1], vec![1, 2]];
        assert_eq!(recent_share(&history, 2), vec![(1, 1.0), (2, 0.5)]);
        // Fewer baskets than r: divided by their number.
        assert_eq!(recent_share(&history[..1], 10), vec![(0, 1.0)]);
    }

    #[test]
    fn decayed_share_weights_recent_baskets_more_and_is_recent_share_at_one() {
        let history = vec![vec![0], vec![0, 1], vec![1], vec![1, 2]];
        assert_eq!(decayed_share(&history, 3, 1.0), recent_share(&history, 3));
        // Last three baskets with weights .25, .5, 1 (sum 1.75): 0 in the first, 1 in all,
        // 2 in the last.
        let shares = decayed_share(&history, 3, 0.5);
        let expected = [(0, 0.25 / 1.75), (1, 1.0), (2, 1.0 / 1.75)];
        assert_eq!(shares.len(), 3);
        for ((p, got), (q, want)) in shares.iter().zip(expected) {
            assert_eq!(*p, q);
            assert!((got - want).abs() < 1e-12, "{shares:?}");
        }
    }

    #[test]
    fn upcf_scores_sum_neighbour_shares_with_locality() {
        let mut data = Baskets::new();
        data.push("u", ["a", "b"]);
        data.push("v", ["a", "c"]);
        data.push("w", ["d"]);
        let model = UpCf::fit(&data, 10, 2.0, 0.5, 10);
        let mut acc = Accumulator::new(data.products());
        let scores = model.scores(0, &mut acc, &mut Vec::new());
        // self: a, b at 1; v: sim = 1 / (2^.5 · 2^.5) = .5, squared .25 on a, c; w shares nothing.
        let a = data.product_ix("a").unwrap();
        let c = data.product_ix("c").unwrap();
        let d = data.product_ix("d").unwrap();
        let get = |p| scores.iter().find(|(q, _)| *q == p).map(|x| x.1);
        assert!(close(get(a).unwrap(), 1.25));
        assert!(close(get(c).unwrap(), 0.25));
        assert_eq!(get(d), None);
    }

    #[test]
    fn tifu_knn_blends_own_vector_with_the_nearest_others() {
        let mut data = Baskets::new();
        data.push("u", ["a"]);
        data.push("near", ["a", "b"]);
        data.push("far", ["c", "d", "e"]);
        let model = TifuKnn::fit(&data, 0.9, 0.7, 3, 1, 0.7);
        assert_eq!(model.neighbours(0), vec![1]);
        let mut acc = Accumulator::new(data.products());
        let scores = model.scores(0, &mut acc);
        // u = a (one basket, one group): 1; near: a, b at 1; blend .7 · u + .3 · near.
        assert_eq!(scores.len(), 2);
        assert!(close(scores[0].1, 1.0));
        assert!(close(scores[1].1, 0.3));
    }

    #[test]
    fn popularity_top_breaks_ties_by_popularity_and_fills() {
        let mut data = Baskets::new();
        data.push("u", ["a", "b", "c"]);
        data.push("v", ["c", "b"]);
        data.push("w", ["c"]);
        let pop = Popularity::new(&data);
        let [a, b, c] = ["a", "b", "c"].map(|p| data.product_ix(p).unwrap());
        assert_eq!(pop.order, vec![c, b, a]);
        let top = pop.top(&[(a, 1.0), (b, 1.0)], 3, |_| false);
        assert_eq!(top, vec![(b, 1.0, false), (a, 1.0, false), (c, 0.0, true)]);
        let top = pop.top(&[(a, 1.0)], 3, |p| p == c);
        assert_eq!(top, vec![(a, 1.0, false), (b, 0.0, true)]);
    }
}
