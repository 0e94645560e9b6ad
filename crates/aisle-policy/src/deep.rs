//! Deep Q-learning in candle: DQN for one suggestion at a time, and SlateQ for slates.
//!
//! Both learn a network from state features to one value per action (department), with an
//! experience replay buffer, a target network copied every `target_every` gradient steps,
//! the Huber loss and Adam, as in Mnih et al. (2015).
//!
//! - [`Dqn`]: `Q(s, a) <- r + γ Q_target(s', argmax_a' Q(s', a'))` on the action taken
//!   (double DQN, van Hasselt et al. 2016: the max of noisy estimates otherwise inflates
//!   the values, and with long carts and γ near 1 that swamps the differences between
//!   suggestions).
//! - [`SlateQ`] (Ie et al., 2019): the network holds item-wise values `Q̄(s, i)`: the return
//!   when the shopper takes item `i` as a suggestion. A slate's value is the sum over items of
//!   the chance the shopper picks each (the simulator's choice model, known to the learner)
//!   times its item value, less the reward missed when the pick was not suggested:
//!   `Q(s, A) = Σ_j P(j | s, A) Q̄(s, j) − P(no suggestion taken | s, A)`. The TD target of the
//!   item actually picked is `1 + γ max_A' Q_target(s', A')`, so every transition teaches
//!   the value of what the shopper did, suggested or not. The best slate is found greedily,
//!   one item at a time (the paper's greedy method).

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::rl::{CartSimulator, Environment};

/// Errors from the tensor library.
pub type Result<T> = std::result::Result<T, candle_core::Error>;

/// Settings shared by DQN and SlateQ.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DeepConfig {
    /// Discount.
    pub gamma: f64,
    /// Hidden layer widths (two layers).
    pub hidden: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Transitions kept for replay.
    pub replay: usize,
    /// Transitions per gradient step.
    pub batch: usize,
    /// Environment steps between gradient steps.
    pub train_every: usize,
    /// Gradient steps between copies into the target network.
    pub target_every: usize,
    /// Environment steps before learning starts.
    pub warmup: usize,
    /// Exploration: from 1 down to `epsilon_end` over the first `epsilon_decay` steps.
    pub epsilon_end: f64,
    /// See `epsilon_end`.
    pub epsilon_decay: usize,
    /// Simulator steps between refreshes of the greedy choice per state that the agent acts
    /// on (the states are few: one batched pass over all of them is cheaper than a pass per
    /// step, and acting on a network a few hundred steps old changes little).
    pub act_refresh: usize,
    /// Seed of the weights, the replay sampling and exploration.
    pub seed: u64,
}

impl Default for DeepConfig {
    fn default() -> Self {
        Self {
            gamma: 1.0,
            hidden: 64,
            learning_rate: 1e-3,
            replay: 50_000,
            batch: 64,
            train_every: 4,
            target_every: 500,
            warmup: 2_000,
            epsilon_end: 0.05,
            epsilon_decay: 100_000,
            act_refresh: 250,
            seed: 1,
        }
    }
}

/// A two-hidden-layer network from state features to one value per action.
struct QNet {
    layers: Vec<(Var, Var)>,
    target: Vec<(Tensor, Tensor)>,
    device: Device,
}

impl QNet {
    fn new(inputs: usize, hidden: usize, outputs: usize, rng: &mut StdRng) -> Result<Self> {
        let device = Device::Cpu;
        let mut layers = Vec::new();
        for (fan_in, fan_out) in [(inputs, hidden), (hidden, hidden), (hidden, outputs)] {
            // Glorot-uniform from our own seeded generator: runs repeat exactly.
            let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
            let w: Vec<f32> = (0..fan_in * fan_out)
                .map(|_| rng.random_range(-limit..limit))
                .collect();
            layers.push((
                Var::from_vec(w, (fan_in, fan_out), &device)?,
                Var::from_vec(vec![0.0f32; fan_out], fan_out, &device)?,
            ));
        }
        let mut net = Self {
            layers,
            target: Vec::new(),
            device,
        };
        net.sync_target()?;
        Ok(net)
    }

    fn sync_target(&mut self) -> Result<()> {
        self.target = self
            .layers
            .iter()
            .map(|(w, b)| Ok((w.as_tensor().copy()?, b.as_tensor().copy()?)))
            .collect::<Result<_>>()?;
        Ok(())
    }

    fn forward_with(layers: &[(Tensor, Tensor)], x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (k, (w, b)) in layers.iter().enumerate() {
            h = h.matmul(w)?.broadcast_add(b)?;
            if k + 1 < layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    fn online(&self) -> Vec<(Tensor, Tensor)> {
        self.layers
            .iter()
            .map(|(w, b)| (w.as_tensor().clone(), b.as_tensor().clone()))
            .collect()
    }

    fn vars(&self) -> Vec<Var> {
        self.layers
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }

    /// Values of a batch of feature rows, from the online or the target network.
    fn values(&self, rows: &[f32], n_rows: usize, target: bool) -> Result<Vec<Vec<f32>>> {
        let x = Tensor::from_slice(rows, (n_rows, rows.len() / n_rows.max(1)), &self.device)?;
        let out = if target {
            Self::forward_with(&self.target, &x)?
        } else {
            Self::forward_with(&self.online(), &x)?
        };
        out.to_vec2()
    }
}

/// The Huber loss of `prediction` against `target` (both `(n,)`), mean over the batch.
fn huber(prediction: &Tensor, target: &Tensor) -> Result<Tensor> {
    let error = (prediction - target)?.abs()?;
    let small = error.clamp(0.0f32, 1.0f32)?;
    let quadratic = (small.sqr()? * 0.5)?;
    (quadratic + (error - small)?)?.mean_all()
}

/// The value of a next state from the target network's values of it and the online
/// network's (empty unless asked for).
type Bootstrap<'a> = dyn Fn(usize, &[f32], &[f32]) -> f32 + 'a;

/// One transition: the state, the action learnt on, its target's parts. States are kept as
/// the simulator's indices; their features are made when a batch is drawn.
#[derive(Clone, Copy)]
struct Transition {
    state: usize,
    action: usize,
    reward: f32,
    /// The next state, or None at the episode's end.
    next: Option<usize>,
}

struct Replay {
    items: Vec<Transition>,
    capacity: usize,
    at: usize,
}

impl Replay {
    fn push(&mut self, t: Transition) {
        if self.items.len() < self.capacity {
            self.items.push(t);
        } else {
            self.items[self.at] = t;
            self.at = (self.at + 1) % self.capacity;
        }
    }
}

/// The cart simulator's state as features: one-hot last department (or "empty cart") and
/// one-hot size bucket.
pub fn cart_features(sim: &CartSimulator, state: usize) -> Vec<f32> {
    let buckets = crate::rl::SIZE_BUCKETS;
    let mut f = vec![0.0f32; sim.departments + 1 + buckets];
    f[sim.last_of(state)] = 1.0;
    f[sim.departments + 1 + state % buckets] = 1.0;
    f
}

/// What a training run did, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct TrainingLog {
    /// Environment steps taken.
    pub steps: usize,
    /// Gradient steps taken.
    pub updates: usize,
    /// Mean loss of the last 1,000 gradient steps.
    pub final_loss: f64,
}

fn epsilon_at(config: &DeepConfig, step: usize) -> f64 {
    let f = (step as f64 / config.epsilon_decay.max(1) as f64).min(1.0);
    1.0 + f * (config.epsilon_end - 1.0)
}

/// Shared training loop: `act` picks what the agent does in a state given the network's
/// values and epsilon; `learn` turns one step into the transition to learn on; `target_of`
/// makes the bootstrapped value of a next state from the target network's values.
struct Learner {
    net: QNet,
    optimizer: AdamW,
    replay: Replay,
    config: DeepConfig,
    rng: StdRng,
    losses: Vec<f64>,
    updates: usize,
}

impl Learner {
    fn new(config: DeepConfig, inputs: usize, outputs: usize) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let net = QNet::new(inputs, config.hidden, outputs, &mut rng)?;
        let optimizer = AdamW::new(
            net.vars(),
            ParamsAdamW {
                lr: config.learning_rate,
                weight_decay: 0.0,
                ..ParamsAdamW::default()
            },
        )?;
        Ok(Self {
            net,
            optimizer,
            replay: Replay {
                items: Vec::new(),
                capacity: config.replay,
                at: 0,
            },
            config,
            rng,
            losses: Vec::new(),
            updates: 0,
        })
    }

    /// One gradient step on a sampled batch. `bootstrap` maps a next state and the target
    /// network's values of it (and the online network's, when `online_too`) to its value.
    fn update(
        &mut self,
        sim: &CartSimulator,
        online_too: bool,
        bootstrap: &Bootstrap<'_>,
    ) -> Result<()> {
        let batch = self.sample();
        let next: Vec<usize> = batch.iter().filter_map(|t| t.next).collect();
        let rows: Vec<f32> = next.iter().flat_map(|&s| cart_features(sim, s)).collect();
        let (target, online) = if next.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let target = self.net.values(&rows, next.len(), true)?;
            let online = if online_too {
                self.net.values(&rows, next.len(), false)?
            } else {
                vec![Vec::new(); next.len()]
            };
            (target, online)
        };
        let gamma = self.config.gamma as f32;
        let mut k = 0;
        let targets: Vec<f32> = batch
            .iter()
            .map(|t| {
                let future = t.next.map_or(0.0, |s| {
                    k += 1;
                    bootstrap(s, &target[k - 1], &online[k - 1])
                });
                t.reward + gamma * future
            })
            .collect();
        self.fit(sim, &batch, &targets)
    }

    /// One gradient step of the Huber loss between the values of the actions learnt on and
    /// their targets; copies into the target network on schedule.
    fn fit(&mut self, sim: &CartSimulator, batch: &[Transition], targets: &[f32]) -> Result<()> {
        let n = batch.len();
        let states: Vec<f32> = batch
            .iter()
            .flat_map(|t| cart_features(sim, t.state))
            .collect();
        let actions: Vec<u32> = batch.iter().map(|t| t.action as u32).collect();
        let device = &self.net.device;
        let x = Tensor::from_slice(&states, (n, states.len() / n.max(1)), device)?;
        let q = QNet::forward_with(&self.net.online(), &x)?;
        let index = Tensor::from_slice(&actions, (n, 1), device)?;
        let taken = q.gather(&index, 1)?.squeeze(1)?;
        let y = Tensor::from_slice(targets, n, device)?;
        let loss = huber(&taken, &y)?;
        self.optimizer.backward_step(&loss)?;
        self.losses.push(f64::from(loss.to_scalar::<f32>()?));
        if self.losses.len() > 1_000 {
            self.losses.remove(0);
        }
        self.updates += 1;
        if self.updates.is_multiple_of(self.config.target_every) {
            self.net.sync_target()?;
        }
        Ok(())
    }

    /// A batch drawn from the replay buffer, with replacement.
    fn sample(&mut self) -> Vec<Transition> {
        (0..self.config.batch)
            .map(|_| self.replay.items[self.rng.random_range(0..self.replay.items.len())])
            .collect()
    }

    fn log(&self, steps: usize) -> TrainingLog {
        TrainingLog {
            steps,
            updates: self.updates,
            final_loss: self.losses.iter().sum::<f64>() / self.losses.len().max(1) as f64,
        }
    }
}

fn argmax(values: &[f32]) -> usize {
    (0..values.len()).fold(0, |best, a| if values[a] > values[best] { a } else { best })
}

/// A DQN trained on the cart simulator, tabulated after training: its greedy action per state.
#[derive(Debug, Clone, Serialize)]
pub struct Dqn {
    /// The greedy action of every state of the simulator.
    pub policy: Vec<usize>,
    /// How training went.
    pub log: TrainingLog,
}

impl Dqn {
    /// Trains for `steps` environment steps.
    pub fn train(sim: &CartSimulator, config: DeepConfig, steps: usize) -> Result<Self> {
        let mut env = sim.clone();
        let n_actions = env.n_actions();
        let mut learner = Learner::new(config, cart_features(sim, 0).len(), n_actions)?;
        let mut env_rng = StdRng::seed_from_u64(config.seed ^ 0xD0_0D);
        let mut s = env.reset(&mut env_rng);
        let mut greedy = greedy_table(&learner.net, sim)?;
        for step in 0..steps {
            if step % config.act_refresh.max(1) == 0 {
                greedy = greedy_table(&learner.net, sim)?;
            }
            let a = if learner.rng.random::<f64>() < epsilon_at(&config, step) {
                learner.rng.random_range(0..n_actions)
            } else {
                greedy[s]
            };
            let (r, next) = env.step(a, &mut env_rng);
            learner.replay.push(Transition {
                state: s,
                action: a,
                reward: r as f32,
                next,
            });
            s = match next {
                Some(n) => n,
                None => env.reset(&mut env_rng),
            };
            if step >= config.warmup && step.is_multiple_of(config.train_every) {
                // Double DQN: the online network picks the next action, the target values
                // it, which keeps the max of noisy estimates from inflating the values.
                learner.update(sim, true, &|_, target, online| target[argmax(online)])?;
            }
        }
        let policy = greedy_table(&learner.net, sim)?;
        Ok(Self {
            policy,
            log: learner.log(steps),
        })
    }
}

/// The greedy action of every state of the simulator.
fn greedy_table(net: &QNet, sim: &CartSimulator) -> Result<Vec<usize>> {
    let n_states = sim.n_states();
    let rows: Vec<f32> = (0..n_states).flat_map(|s| cart_features(sim, s)).collect();
    Ok(net
        .values(&rows, n_states, false)?
        .iter()
        .map(|v| argmax(v))
        .collect())
}

/// The best slate of every state of the simulator under the network's item values.
fn slate_table(net: &QNet, sim: &CartSimulator, size: usize) -> Result<Vec<Vec<usize>>> {
    let n_states = sim.n_states();
    let rows: Vec<f32> = (0..n_states).flat_map(|s| cart_features(sim, s)).collect();
    Ok(net
        .values(&rows, n_states, false)?
        .iter()
        .enumerate()
        .map(|(s, v)| sim.best_slate(sim.last_of(s), size, v))
        .collect())
}

/// The slate version of the cart task: the simulator suggests `slate` departments at once.
impl CartSimulator {
    /// The chance the next item is from each department when `slate` is suggested after
    /// `last`: a conditional logit in which suggested departments weigh `lift` times their
    /// usual chance (an assumption, as for one suggestion).
    pub fn slate_choice(&self, last: usize, slate: &[usize]) -> Vec<f64> {
        let mut w = self.transition[last].clone();
        for &d in slate {
            w[d] *= self.lift;
        }
        let total: f64 = w.iter().sum();
        w.iter_mut().for_each(|v| *v /= total);
        w
    }

    /// The value of `slate` in a state from item values: `Σ_j P(j) Q̄(j) − P(none taken)`.
    pub fn slate_value(&self, last: usize, slate: &[usize], item_values: &[f32]) -> f64 {
        let p = self.slate_choice(last, slate);
        let taken: f64 = slate.iter().map(|&d| p[d]).sum();
        p.iter()
            .zip(item_values)
            .map(|(p, &q)| p * f64::from(q))
            .sum::<f64>()
            - (1.0 - taken)
    }

    /// The best slate of `size` for item values, built greedily: each step adds the
    /// department that raises the slate's value most.
    pub fn best_slate(&self, last: usize, size: usize, item_values: &[f32]) -> Vec<usize> {
        let mut slate: Vec<usize> = Vec::with_capacity(size);
        for _ in 0..size.min(self.departments) {
            let mut best = (usize::MAX, f64::NEG_INFINITY);
            for d in 0..self.departments {
                if slate.contains(&d) {
                    continue;
                }
                slate.push(d);
                let v = self.slate_value(last, &slate, item_values);
                slate.pop();
                if v > best.1 {
                    best = (d, v);
                }
            }
            slate.push(best.0);
        }
        slate
    }

    /// Shows `slate`; the shopper picks the next department by [`Self::slate_choice`].
    /// Returns the reward (1 when the pick was suggested), the department picked and the
    /// next state, or None when the cart ended.
    pub fn step_slate(
        &mut self,
        slate: &[usize],
        rng: &mut dyn rand::RngCore,
    ) -> (f64, usize, Option<usize>) {
        let (last, size) = self.current();
        let p = self.slate_choice(last, slate);
        let mut u = rng.random::<f64>();
        let mut next = p.len() - 1;
        for (d, &pd) in p.iter().enumerate() {
            if u < pd {
                next = d;
                break;
            }
            u -= pd;
        }
        let reward = if slate.contains(&next) {
            self.add_reward
        } else {
            0.0
        };
        let (_, state) = self.advance(next, size, rng);
        (reward, next, state)
    }

    /// The slate optimum by value iteration on the simulator's own model, with greedy slate
    /// search as SlateQ uses: the ceiling SlateQ can approach.
    pub fn optimal_slates(&self, size: usize, gamma: f64) -> Vec<Vec<usize>> {
        let (n, b) = (self.departments, crate::rl::SIZE_BUCKETS);
        let mut v = vec![0.0f64; (n + 1) * b];
        let mut item = vec![0.0f32; n];
        for _ in 0..300 {
            let mut delta: f64 = 0.0;
            for last in 0..=n {
                for bucket in 0..b {
                    let next_bucket = crate::rl::size_bucket(bucket + 1);
                    for (j, q) in item.iter_mut().enumerate() {
                        let go_on = 1.0 - self.stop[j][next_bucket];
                        *q = (self.add_reward + gamma * go_on * v[j * b + next_bucket]) as f32;
                    }
                    let slate = self.best_slate(last, size, &item);
                    let value = self.slate_value(last, &slate, &item);
                    let at = last * b + bucket;
                    delta = delta.max((value - v[at]).abs());
                    v[at] = value;
                }
            }
            if delta < 1e-7 {
                break;
            }
        }
        (0..(n + 1) * b)
            .map(|s| {
                let (last, bucket) = (s / b, s % b);
                let next_bucket = crate::rl::size_bucket(bucket + 1);
                let item: Vec<f32> = (0..n)
                    .map(|j| {
                        let go_on = 1.0 - self.stop[j][next_bucket];
                        (self.add_reward + gamma * go_on * v[j * b + next_bucket]) as f32
                    })
                    .collect();
                self.best_slate(last, size, &item)
            })
            .collect()
    }
}

/// The mean return per cart of a slate policy (state index to slate).
pub fn mean_slate_return(
    sim: &CartSimulator,
    policy: &dyn Fn(usize) -> Vec<usize>,
    episodes: usize,
    rng: &mut dyn rand::RngCore,
) -> f64 {
    let mut env = sim.clone();
    let mut total = 0.0;
    for _ in 0..episodes {
        let mut s = env.reset(rng);
        loop {
            let (r, _, next) = env.step_slate(&policy(s), rng);
            total += r;
            match next {
                Some(n) => s = n,
                None => break,
            }
        }
    }
    total / episodes.max(1) as f64
}

/// SlateQ trained on the cart simulator's slate task, tabulated after training.
#[derive(Debug, Clone, Serialize)]
pub struct SlateQ {
    /// The slate it shows in every state.
    pub policy: Vec<Vec<usize>>,
    /// How training went.
    pub log: TrainingLog,
}

impl SlateQ {
    /// Trains for `steps` simulator steps with slates of `size`.
    pub fn train(
        sim: &CartSimulator,
        size: usize,
        config: DeepConfig,
        steps: usize,
    ) -> Result<Self> {
        let mut env = sim.clone();
        let n = sim.departments;
        let mut learner = Learner::new(config, cart_features(sim, 0).len(), n)?;
        let mut env_rng = StdRng::seed_from_u64(config.seed ^ 0x51A7E);
        let mut s = env.reset(&mut env_rng);
        let mut greedy = slate_table(&learner.net, sim, size)?;
        for step in 0..steps {
            if step % config.act_refresh.max(1) == 0 {
                greedy = slate_table(&learner.net, sim, size)?;
            }
            let slate = if learner.rng.random::<f64>() < epsilon_at(&config, step) {
                let mut slate = Vec::with_capacity(size);
                while slate.len() < size.min(n) {
                    let d = learner.rng.random_range(0..n);
                    if !slate.contains(&d) {
                        slate.push(d);
                    }
                }
                slate
            } else {
                greedy[s].clone()
            };
            let (_, picked, next) = env.step_slate(&slate, &mut env_rng);
            // The item value of what the shopper picked: had it been suggested, 1 now.
            learner.replay.push(Transition {
                state: s,
                action: picked,
                reward: sim.add_reward as f32,
                next,
            });
            s = match next {
                Some(n) => n,
                None => env.reset(&mut env_rng),
            };
            if step >= config.warmup && step.is_multiple_of(config.train_every) {
                // A next state is worth its best slate under the target network.
                learner.update(sim, false, &|next, target, _| {
                    let last = sim.last_of(next);
                    let slate = sim.best_slate(last, size, target);
                    sim.slate_value(last, &slate, target) as f32
                })?;
            }
        }
        let policy = slate_table(&learner.net, sim, size)?;
        Ok(Self {
            policy,
            log: learner.log(steps),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rl::mean_return;

    /// Carts over three departments where the most likely next department (what a myopic
    /// policy suggests) usually ends the cart, and the less likely one keeps it going.
    fn trap() -> CartSimulator {
        let mut carts = Vec::new();
        for _ in 0..300 {
            carts.push(vec![0, 1]); // 1 ends carts
        }
        for _ in 0..200 {
            carts.push(vec![0, 2, 2, 2, 2, 2, 2, 2, 0]); // 2 leads on
        }
        CartSimulator::fit(&carts, 3, 1.5)
    }

    #[test]
    fn dqn_learns_the_long_term_suggestion_where_the_myopic_one_ends_carts() {
        let sim = trap();
        let config = DeepConfig {
            epsilon_decay: 20_000,
            warmup: 500,
            ..DeepConfig::default()
        };
        let dqn = Dqn::train(&sim, config, 40_000).expect("trains");
        let myopic = |s: usize| {
            let row = &sim.transition[sim.last_of(s)];
            argmax(&row.iter().map(|&v| v as f32).collect::<Vec<_>>())
        };
        let optimal = sim.optimal_policy(1.0);
        let eval = |policy: &dyn Fn(usize) -> usize| {
            let mut env = sim.clone();
            mean_return(&mut env, policy, 20_000, &mut StdRng::seed_from_u64(7))
        };
        let (d, m, o) = (
            eval(&|s| dqn.policy[s]),
            eval(&myopic),
            eval(&|s| optimal[s]),
        );
        assert!(
            o > m * 1.05,
            "the trap rewards planning: optimum {o}, myopic {m}"
        );
        assert!(
            d > m,
            "DQN {d} beats myopic {m} (optimum {o}); {:?}",
            dqn.log
        );
        assert!(d > 0.95 * o, "DQN {d} is near the optimum {o}");
    }

    #[test]
    fn slateq_approaches_the_slate_optimum_and_beats_the_myopic_slate() {
        let sim = trap();
        let config = DeepConfig {
            epsilon_decay: 20_000,
            warmup: 500,
            ..DeepConfig::default()
        };
        let slateq = SlateQ::train(&sim, 1, config, 40_000).expect("trains");
        let optimal = sim.optimal_slates(1, 1.0);
        let myopic = |s: usize| {
            let last = sim.last_of(s);
            let row = &sim.transition[last];
            vec![argmax(&row.iter().map(|&v| v as f32).collect::<Vec<_>>())]
        };
        let eval = |policy: &dyn Fn(usize) -> Vec<usize>| {
            mean_slate_return(&sim, policy, 20_000, &mut StdRng::seed_from_u64(9))
        };
        let (q, m, o) = (
            eval(&|s| slateq.policy[s].clone()),
            eval(&myopic),
            eval(&|s| optimal[s].clone()),
        );
        assert!(o > m * 1.05, "optimum {o}, myopic {m}");
        assert!(
            q > m,
            "SlateQ {q} beats myopic {m} (optimum {o}); {:?}",
            slateq.log
        );
        assert!(q > 0.95 * o, "SlateQ {q} is near the optimum {o}");
    }

    #[test]
    fn a_slate_value_sums_choice_times_item_value() {
        let sim = trap();
        let values = [2.0f32, 0.5, 3.0];
        let p = sim.slate_choice(0, &[2]);
        let by_hand = p[0] * 2.0 + p[1] * 0.5 + p[2] * 3.0 - (1.0 - p[2]);
        assert!((sim.slate_value(0, &[2], &values) - by_hand).abs() < 1e-9);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Suggesting a department raises its chance by the lift, renormalised.
        let plain = &sim.transition[0];
        assert!(p[2] > plain[2]);
    }
}
