//! Reinforcement learning in a simulator: tabular Q-learning for cart recommendations.
//!
//! The update is the product design's `Q(s,a) <- r + γ max_a' Q(s',a')`, taken as a running
//! average with step size `α` because the simulator's responses are random (with `α = 1` and
//! a deterministic environment it is exactly that assignment).
//!
//! The cart simulator ([`CartSimulator`]) is fitted on real carts: the department-to-department
//! transitions of consecutive items and the chance that a cart ends after an item, given the
//! item's department and the cart's size. What a suggestion does is an assumption, stated as
//! such: the shopper takes the suggested department next with `lift` times the chance they
//! would have gone there anyway (capped at 1), else goes on as they would have.

use rand::Rng;
use serde::Serialize;

/// An episodic environment with finite states and actions.
pub trait Environment {
    /// Number of states.
    fn n_states(&self) -> usize;
    /// Number of actions.
    fn n_actions(&self) -> usize;
    /// Starts an episode; returns the first state.
    fn reset(&mut self, rng: &mut dyn rand::RngCore) -> usize;
    /// Takes `action`; returns the reward and the next state, or None when the episode ended.
    fn step(&mut self, action: usize, rng: &mut dyn rand::RngCore) -> (f64, Option<usize>);
}

/// A tabular action-value function learnt by Q-learning with epsilon-greedy exploration.
#[derive(Debug, Clone, Serialize)]
pub struct QLearning {
    /// `Q[s * n_actions + a]`.
    pub q: Vec<f64>,
    n_actions: usize,
    /// Discount.
    pub gamma: f64,
    /// Step size: `visits(s,a)^-alpha_power` when `alpha_power` is set (a decaying step
    /// that averages out the simulator's noise), else this constant.
    pub alpha: f64,
    /// See `alpha`.
    pub alpha_power: Option<f64>,
    /// Exploration while learning.
    pub epsilon: f64,
    visits: Vec<u32>,
}

impl QLearning {
    /// Zero values over `n_states x n_actions`.
    pub fn new(n_states: usize, n_actions: usize, gamma: f64, alpha: f64, epsilon: f64) -> Self {
        Self {
            q: vec![0.0; n_states * n_actions],
            n_actions,
            gamma,
            alpha,
            alpha_power: None,
            epsilon,
            visits: vec![0; n_states * n_actions],
        }
    }

    /// The best action in state `s` (ties to the lowest index).
    pub fn greedy(&self, s: usize) -> usize {
        let row = &self.q[s * self.n_actions..(s + 1) * self.n_actions];
        (0..row.len()).fold(0, |best, a| if row[a] > row[best] { a } else { best })
    }

    /// One update from a transition.
    pub fn update(&mut self, s: usize, a: usize, r: f64, next: Option<usize>) {
        let future = next.map_or(0.0, |n| {
            let row = &self.q[n * self.n_actions..(n + 1) * self.n_actions];
            row.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        });
        let target = r + self.gamma * future;
        let at = s * self.n_actions + a;
        self.visits[at] = self.visits[at].saturating_add(1);
        let step = self
            .alpha_power
            .map_or(self.alpha, |p| f64::from(self.visits[at]).powf(-p));
        let cell = &mut self.q[at];
        *cell += step * (target - *cell);
    }

    /// Learns from `episodes` episodes of `env`.
    pub fn train(
        &mut self,
        env: &mut dyn Environment,
        episodes: usize,
        rng: &mut dyn rand::RngCore,
    ) {
        for _ in 0..episodes {
            let mut s = env.reset(rng);
            loop {
                let a = if rng.random::<f64>() < self.epsilon {
                    rng.random_range(0..self.n_actions)
                } else {
                    self.greedy(s)
                };
                let (r, next) = env.step(a, rng);
                self.update(s, a, r, next);
                match next {
                    Some(n) => s = n,
                    None => break,
                }
            }
        }
    }
}

/// The mean return per episode of `policy` over `episodes` episodes.
pub fn mean_return(
    env: &mut dyn Environment,
    policy: &dyn Fn(usize) -> usize,
    episodes: usize,
    rng: &mut dyn rand::RngCore,
) -> f64 {
    let mut total = 0.0;
    for _ in 0..episodes {
        let mut s = env.reset(rng);
        loop {
            let (r, next) = env.step(policy(s), rng);
            total += r;
            match next {
                Some(n) => s = n,
                None => break,
            }
        }
    }
    total / episodes.max(1) as f64
}

/// Cart sizes are bucketed: each size up to 24 items its own bucket, then 25 and more.
pub const SIZE_BUCKETS: usize = 26;

/// The size bucket of a cart with `size` items.
pub fn size_bucket(size: usize) -> usize {
    size.min(SIZE_BUCKETS - 1)
}

/// A shopper filling a cart, fitted on real carts (see the module's notes).
#[derive(Debug, Clone, Serialize)]
pub struct CartSimulator {
    /// Departments (actions); the state "nothing in the cart yet" is department `n`.
    pub departments: usize,
    /// `transition[d][d']`: the chance the next item is from `d'` after one from `d`
    /// (row `departments`: the first item).
    pub transition: Vec<Vec<f64>>,
    /// `stop[d][b]`: the chance the cart ends after an item of department `d` in size bucket `b`.
    pub stop: Vec<Vec<f64>>,
    /// How much a suggestion raises the chance of its department being next.
    pub lift: f64,
    /// Reward of an accepted suggestion (the item is added).
    pub add_reward: f64,
    #[serde(skip)]
    state: (usize, usize),
}

impl CartSimulator {
    /// Fits the transitions and stop chances on carts given as department sequences
    /// (items in the order they were added), with add-one smoothing.
    pub fn fit(carts: &[Vec<usize>], departments: usize, lift: f64) -> Self {
        let n = departments;
        let mut transition = vec![vec![1.0; n]; n + 1];
        let mut ends = vec![vec![1.0; SIZE_BUCKETS]; n];
        let mut seen = vec![vec![2.0; SIZE_BUCKETS]; n];
        for cart in carts {
            let mut last = n;
            for (i, &d) in cart.iter().enumerate() {
                if d >= n {
                    continue;
                }
                transition[last][d] += 1.0;
                let b = size_bucket(i + 1);
                seen[d][b] += 1.0;
                if i + 1 == cart.len() {
                    ends[d][b] += 1.0;
                }
                last = d;
            }
        }
        for row in &mut transition {
            let total: f64 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= total);
        }
        let stop = ends
            .iter()
            .zip(&seen)
            .map(|(e, s)| e.iter().zip(s).map(|(a, b)| a / b).collect())
            .collect();
        Self {
            departments: n,
            transition,
            stop,
            lift,
            add_reward: 1.0,
            state: (n, 0),
        }
    }

    /// The state index of (last department, size bucket).
    pub fn state_of(&self, last: usize, size_bucket: usize) -> usize {
        last * SIZE_BUCKETS + size_bucket
    }

    /// The last department of a state.
    pub fn last_of(&self, state: usize) -> usize {
        state / SIZE_BUCKETS
    }

    /// (last department, cart size) of the cart under way.
    pub(crate) fn current(&self) -> (usize, usize) {
        self.state
    }

    /// The shopper adds an item of `next` to a cart of `size`; the cart may end there.
    /// Returns the new size and the next state (None: the cart ended).
    pub(crate) fn advance(
        &mut self,
        next: usize,
        size: usize,
        rng: &mut dyn rand::RngCore,
    ) -> (usize, Option<usize>) {
        let size = size + 1;
        self.state = (next, size);
        let ended = rng.random::<f64>() < self.stop[next][size_bucket(size)];
        (
            size,
            (!ended).then(|| self.state_of(next, size_bucket(size))),
        )
    }

    fn accept(&self, last: usize, action: usize) -> f64 {
        (self.lift * self.transition[last][action]).min(1.0)
    }

    /// The chance the next department is `next` when `action` was suggested after `last`.
    fn next_probability(&self, last: usize, action: usize, next: usize) -> f64 {
        let row = &self.transition[last];
        let accept = self.accept(last, action);
        if next == action {
            accept
        } else {
            (1.0 - accept) * row[next] / (1.0 - row[action]).max(f64::MIN_POSITIVE)
        }
    }

    /// The best policy of this simulator by value iteration on its own model (the state is
    /// exact here: last department and cart size), with `gamma` as Q-learning's; returns the
    /// best action per state index of [`Environment`]. It is the ceiling Q-learning can
    /// approach, and says how much any policy can gain over the myopic one.
    pub fn optimal_policy(&self, gamma: f64) -> Vec<usize> {
        let (n, b) = (self.departments, SIZE_BUCKETS);
        let mut v = vec![0.0; (n + 1) * b];
        let mut best = vec![0usize; (n + 1) * b];
        for _ in 0..500 {
            let mut delta: f64 = 0.0;
            for last in 0..=n {
                for size in 0..b {
                    let next_size = size_bucket(size + 1);
                    let value_of = |a: usize| -> f64 {
                        (0..n)
                            .map(|next| {
                                let p = self.next_probability(last, a, next);
                                let reward = if next == a { self.add_reward } else { 0.0 };
                                let go_on = 1.0 - self.stop[next][next_size];
                                p * (reward + gamma * go_on * v[next * b + next_size])
                            })
                            .sum()
                    };
                    let (a_best, value) =
                        (0..n)
                            .map(|a| (a, value_of(a)))
                            .fold(
                                (0, f64::NEG_INFINITY),
                                |acc, x| if x.1 > acc.1 { x } else { acc },
                            );
                    let at = last * b + size;
                    delta = delta.max((value - v[at]).abs());
                    v[at] = value;
                    best[at] = a_best;
                }
            }
            if delta < 1e-9 {
                break;
            }
        }
        best
    }
}

impl Environment for CartSimulator {
    fn n_states(&self) -> usize {
        (self.departments + 1) * SIZE_BUCKETS
    }

    fn n_actions(&self) -> usize {
        self.departments
    }

    fn reset(&mut self, _rng: &mut dyn rand::RngCore) -> usize {
        self.state = (self.departments, 0);
        self.state_of(self.departments, 0)
    }

    fn step(&mut self, action: usize, rng: &mut dyn rand::RngCore) -> (f64, Option<usize>) {
        let (last, size) = self.state;
        let row = &self.transition[last];
        let accept = self.accept(last, action);
        let (next, reward) = if rng.random::<f64>() < accept {
            (action, self.add_reward)
        } else {
            // As they would have gone on, the suggested department left out.
            let rest = 1.0 - row[action];
            let mut u = rng.random::<f64>() * rest;
            let mut pick = if action == 0 {
                1.min(self.departments - 1)
            } else {
                0
            };
            for (d, p) in row.iter().enumerate() {
                if d == action {
                    continue;
                }
                if u < *p {
                    pick = d;
                    break;
                }
                u -= p;
            }
            (pick, 0.0)
        };
        (reward, self.advance(next, size, rng).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// A chain where the immediate reward misleads: action 0 pays 1 and ends, action 1 pays
    /// nothing now but leads to a state paying 5.
    struct Chain(usize);

    impl Environment for Chain {
        fn n_states(&self) -> usize {
            2
        }
        fn n_actions(&self) -> usize {
            2
        }
        fn reset(&mut self, _: &mut dyn rand::RngCore) -> usize {
            self.0 = 0;
            0
        }
        fn step(&mut self, a: usize, _: &mut dyn rand::RngCore) -> (f64, Option<usize>) {
            match (self.0, a) {
                (0, 0) => (1.0, None),
                (0, _) => {
                    self.0 = 1;
                    (0.0, Some(1))
                }
                _ => (5.0, None),
            }
        }
    }

    #[test]
    fn q_learning_looks_past_the_immediate_reward() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut q = QLearning::new(2, 2, 0.9, 0.5, 0.2);
        q.train(&mut Chain(0), 500, &mut rng);
        assert_eq!(q.greedy(0), 1, "{:?}", q.q);
        assert!((q.q[1] - 0.9 * 5.0).abs() < 0.1, "Q(0,1) = γ·5: {:?}", q.q);
    }

    #[test]
    fn the_cart_simulator_reproduces_its_carts() {
        // Carts that go 0 -> 1 -> 2 and end.
        let carts = vec![vec![0, 1, 2]; 500];
        let mut sim = CartSimulator::fit(&carts, 3, 1.0);
        assert!(
            sim.transition[3][0] > 0.99 - 0.01 && sim.transition[0][1] > 0.98,
            "{:?}",
            sim.transition
        );
        let mut rng = StdRng::seed_from_u64(1);
        let mut lengths = 0.0f64;
        for _ in 0..2_000 {
            let mut s = Some(sim.reset(&mut rng));
            let mut n = 0.0;
            while let Some(state) = s {
                let last = sim.last_of(state);
                let suggest = if last == 3 { 0 } else { (last + 1) % 3 };
                s = sim.step(suggest, &mut rng).1;
                n += 1.0;
            }
            lengths += n;
        }
        let mean = lengths / 2_000.0;
        assert!((mean - 3.0).abs() < 0.3, "mean cart length {mean}");
    }
}
