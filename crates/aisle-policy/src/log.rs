//! Logged bandit feedback: one row per item a policy showed, with the probability it had.
//!
//! The layout on disk is the Open Bandit Dataset's (Saito et al., 2021), so logs move between
//! aisle and the Open Bandit Pipeline unchanged: `<dir>/<policy>/<campaign>/<campaign>.csv`
//! with the columns `,timestamp,item_id,position,click,propensity_score,user_feature_*,
//! user-item_affinity_*` and `item_context.csv` beside it.

use std::collections::BTreeSet;
use std::path::Path;

use crate::{Error, Result};

/// One logged impression of one item at one position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Round {
    /// The item shown, as an index into the action set.
    pub action: u32,
    /// The slot, 0-based (0 is the first).
    pub position: u8,
    /// What came of it: 1 for a click, or a value (a purchase's amount) where rewards are valued.
    pub reward: f64,
    /// The probability the serving policy gave this item at this position.
    pub pscore: f64,
}

/// A log of bandit feedback with its contexts.
#[derive(Debug, Clone, Default)]
pub struct BanditLog {
    /// Where it came from (a path, or a surface name).
    pub source: String,
    /// Number of distinct actions (items) the policy chose among.
    pub n_actions: usize,
    /// Number of positions in a served list.
    pub len_list: usize,
    /// The rounds in file order.
    pub rounds: Vec<Round>,
    /// Timestamps as written (kept for export).
    pub timestamps: Vec<String>,
    /// Raw categorical user features per round (`user_feature_*`).
    pub user_features: Vec<Vec<String>>,
    /// User-item affinity per round (`user-item_affinity_*`), one value per action.
    pub affinity: Vec<Vec<f32>>,
    /// Dense context per round: the user features one-hot encoded, the first category of each
    /// dropped (the Open Bandit Pipeline's encoding, so reward models see the same inputs).
    pub context: Vec<Vec<f64>>,
    /// Dense features per action: categorical item features label-encoded, then the numeric one.
    pub action_context: Vec<Vec<f64>>,
    /// `item_context.csv` as read: header, then one row per action.
    pub item_table: Vec<Vec<String>>,
}

impl BanditLog {
    /// Reads `<dir>/<policy>/<campaign>/` in the Open Bandit Dataset's layout.
    pub fn read_obd(dir: &Path, policy: &str, campaign: &str) -> Result<Self> {
        let folder = dir.join(policy).join(campaign);
        let mut log = Self::read_obd_file(&folder.join(format!("{campaign}.csv")))?;
        log.read_item_context(&folder.join("item_context.csv"))?;
        Ok(log)
    }

    /// Reads one impressions file; the item context is read separately.
    pub fn read_obd_file(path: &Path) -> Result<Self> {
        let (name, mut reader, header) = open_csv(path)?;
        let column = |wanted: &str| {
            header
                .iter()
                .position(|h| h == wanted)
                .ok_or_else(|| Error::Format {
                    path: name.clone(),
                    line: 1,
                    reason: format!("no column `{wanted}` in the header"),
                })
        };
        let (c_time, c_item, c_pos, c_click, c_ps) = (
            column("timestamp")?,
            column("item_id")?,
            column("position")?,
            column("click")?,
            column("propensity_score")?,
        );
        let user_cols: Vec<usize> = (0..header.len())
            .filter(|&i| header[i].starts_with("user_feature"))
            .collect();
        let affinity_cols: Vec<usize> = (0..header.len())
            .filter(|&i| header[i].starts_with("user-item_affinity"))
            .collect();
        let mut log = BanditLog {
            source: name.clone(),
            ..Default::default()
        };
        let mut positions = BTreeSet::new();
        for (n, record) in reader.records().enumerate() {
            let line = n as u64 + 2;
            let record = record.map_err(|e| csv_error(&name, e))?;
            let field = |i: usize, what: &str| -> Result<&str> {
                record.get(i).ok_or_else(|| Error::Format {
                    path: name.clone(),
                    line,
                    reason: format!("missing `{what}`"),
                })
            };
            let number = |i: usize, what: &str| -> Result<f64> {
                let text = field(i, what)?;
                text.trim().parse::<f64>().map_err(|_| Error::Format {
                    path: name.clone(),
                    line,
                    reason: format!("`{what}` is `{text}`, not a number"),
                })
            };
            let action = number(c_item, "item_id")?;
            let position = number(c_pos, "position")?;
            let pscore = number(c_ps, "propensity_score")?;
            if action < 0.0 || action.fract() != 0.0 || action > f64::from(u32::MAX) {
                return Err(format_error(
                    &name,
                    line,
                    "`item_id` must be a whole number ≥ 0",
                ));
            }
            if !(1.0..=255.0).contains(&position) || position.fract() != 0.0 {
                return Err(format_error(&name, line, "`position` must be 1 to 255"));
            }
            if !(pscore > 0.0 && pscore <= 1.0) {
                return Err(format_error(
                    &name,
                    line,
                    "`propensity_score` must be in (0, 1]: a row without a propensity cannot be evaluated",
                ));
            }
            positions.insert(position as u8);
            log.rounds.push(Round {
                action: action as u32,
                position: position as u8 - 1,
                reward: number(c_click, "click")?,
                pscore,
            });
            log.timestamps.push(field(c_time, "timestamp")?.to_owned());
            log.user_features.push(
                user_cols
                    .iter()
                    .map(|&i| field(i, &header[i]).map(str::to_owned))
                    .collect::<Result<_>>()?,
            );
            log.affinity.push(
                affinity_cols
                    .iter()
                    .map(|&i| number(i, &header[i]).map(|v| v as f32))
                    .collect::<Result<_>>()?,
            );
        }
        if log.rounds.is_empty() {
            return Err(Error::Invalid(format!("{name}: no rounds")));
        }
        // Positions are ranked densely, as the Open Bandit Pipeline does.
        let rank: Vec<u8> = positions.iter().copied().collect();
        for round in &mut log.rounds {
            round.position = rank
                .iter()
                .position(|&p| p == round.position + 1)
                .unwrap_or(0) as u8;
        }
        log.len_list = rank.len();
        log.n_actions = log
            .rounds
            .iter()
            .map(|r| r.action as usize + 1)
            .max()
            .unwrap_or(0);
        log.context = one_hot_drop_first(&log.user_features);
        Ok(log)
    }

    /// Reads `item_context.csv`: label-encodes the categorical features, keeps `item_feature_0`.
    pub fn read_item_context(&mut self, path: &Path) -> Result<()> {
        let (name, mut reader, header) = open_csv(path)?;
        let item_col = header
            .iter()
            .position(|h| h == "item_id")
            .ok_or_else(|| format_error(&name, 1, "no column `item_id`"))?;
        let numeric_col = header.iter().position(|h| h == "item_feature_0");
        let cat_cols: Vec<usize> = (0..header.len())
            .filter(|&i| header[i].starts_with("item_feature") && Some(i) != numeric_col)
            .collect();
        let mut rows: Vec<(usize, Vec<String>)> = Vec::new();
        for (n, record) in reader.records().enumerate() {
            let record = record.map_err(|e| csv_error(&name, e))?;
            let line = n as u64 + 2;
            let item: usize = record
                .get(item_col)
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| format_error(&name, line, "`item_id` is not a whole number"))?;
            rows.push((item, record.iter().map(str::to_owned).collect()));
        }
        let n_actions = rows
            .iter()
            .map(|(i, _)| i + 1)
            .max()
            .unwrap_or(0)
            .max(self.n_actions);
        let mut features = vec![Vec::new(); n_actions];
        let cat_values: Vec<Vec<String>> = cat_cols
            .iter()
            .map(|&c| {
                let set: BTreeSet<&str> = rows.iter().map(|(_, r)| r[c].as_str()).collect();
                set.into_iter().map(str::to_owned).collect()
            })
            .collect();
        for (item, row) in &rows {
            let mut f: Vec<f64> = cat_cols
                .iter()
                .zip(&cat_values)
                .map(|(&c, values)| values.binary_search(&row[c]).unwrap_or(0) as f64)
                .collect();
            if let Some(c) = numeric_col {
                f.push(
                    row[c]
                        .parse()
                        .map_err(|_| format_error(&name, 0, "`item_feature_0` is not a number"))?,
                );
            }
            features[*item] = f;
        }
        let width = features.iter().map(Vec::len).max().unwrap_or(0);
        for f in &mut features {
            f.resize(width, 0.0);
        }
        self.n_actions = n_actions;
        self.action_context = features;
        self.item_table = std::iter::once(header)
            .chain(rows.into_iter().map(|(_, r)| r))
            .collect();
        Ok(())
    }

    /// Writes the log in the Open Bandit Dataset's layout under `<dir>/<policy>/<campaign>/`.
    pub fn write_obd(&self, dir: &Path, policy: &str, campaign: &str) -> Result<()> {
        let folder = dir.join(policy).join(campaign);
        std::fs::create_dir_all(&folder).map_err(|e| io_error(&folder, e))?;
        let path = folder.join(format!("{campaign}.csv"));
        let mut out =
            csv::Writer::from_path(&path).map_err(|e| csv_error(&path.display().to_string(), e))?;
        let n_user = self.user_features.first().map_or(0, Vec::len);
        let n_aff = self.affinity.first().map_or(0, Vec::len);
        let mut header = vec![
            String::new(),
            "timestamp".into(),
            "item_id".into(),
            "position".into(),
        ];
        header.extend(["click".into(), "propensity_score".into()]);
        header.extend((0..n_user).map(|i| format!("user_feature_{i}")));
        header.extend((0..n_aff).map(|i| format!("user-item_affinity_{i}")));
        let werr = |e| csv_error(&path.display().to_string(), e);
        out.write_record(&header).map_err(werr)?;
        for (i, r) in self.rounds.iter().enumerate() {
            let mut row = vec![
                i.to_string(),
                self.timestamps.get(i).cloned().unwrap_or_default(),
                r.action.to_string(),
                (u32::from(r.position) + 1).to_string(),
                format_reward(r.reward),
                r.pscore.to_string(),
            ];
            row.extend(self.user_features.get(i).cloned().unwrap_or_default());
            row.extend(
                self.affinity
                    .get(i)
                    .map(|a| a.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
            out.write_record(&row).map_err(werr)?;
        }
        out.flush().map_err(|e| io_error(&path, e))?;
        if !self.item_table.is_empty() {
            let path = folder.join("item_context.csv");
            let mut out = csv::Writer::from_path(&path)
                .map_err(|e| csv_error(&path.display().to_string(), e))?;
            for row in &self.item_table {
                out.write_record(row)
                    .map_err(|e| csv_error(&path.display().to_string(), e))?;
            }
            out.flush().map_err(|e| io_error(&path, e))?;
        }
        Ok(())
    }

    /// The mean reward: the logging policy's own value, measured on-policy.
    pub fn mean_reward(&self) -> f64 {
        self.rounds.iter().map(|r| r.reward).sum::<f64>() / self.rounds.len().max(1) as f64
    }

    /// The rows at `indices`, in that order (a bootstrap sample or a split).
    pub fn select(&self, indices: &[usize]) -> Self {
        let pick = |v: &Vec<Vec<f64>>| indices.iter().map(|&i| v[i].clone()).collect();
        BanditLog {
            source: self.source.clone(),
            n_actions: self.n_actions,
            len_list: self.len_list,
            rounds: indices.iter().map(|&i| self.rounds[i]).collect(),
            timestamps: indices
                .iter()
                .filter_map(|&i| self.timestamps.get(i).cloned())
                .collect(),
            user_features: indices
                .iter()
                .filter_map(|&i| self.user_features.get(i).cloned())
                .collect(),
            affinity: indices
                .iter()
                .filter_map(|&i| self.affinity.get(i).cloned())
                .collect(),
            context: pick(&self.context),
            action_context: self.action_context.clone(),
            item_table: self.item_table.clone(),
        }
    }
}

/// A CSV reader with its header, and the path as errors name it.
fn open_csv(path: &Path) -> Result<(String, csv::Reader<std::fs::File>, Vec<String>)> {
    let name = path.display().to_string();
    let mut reader = csv::Reader::from_path(path).map_err(|e| csv_error(&name, e))?;
    let header = reader
        .headers()
        .map_err(|e| csv_error(&name, e))?
        .iter()
        .map(str::to_owned)
        .collect();
    Ok((name, reader, header))
}

fn format_reward(reward: f64) -> String {
    if reward.fract() == 0.0 {
        format!("{}", reward as i64)
    } else {
        reward.to_string()
    }
}

/// One-hot encodes each column's categories in sorted order and drops the first category of
/// each column (what `pandas.get_dummies(drop_first=True)` does).
pub fn one_hot_drop_first(rows: &[Vec<String>]) -> Vec<Vec<f64>> {
    let width = rows.first().map_or(0, Vec::len);
    let categories: Vec<Vec<&str>> = (0..width)
        .map(|c| {
            let set: BTreeSet<&str> = rows.iter().map(|r| r[c].as_str()).collect();
            set.into_iter().skip(1).collect()
        })
        .collect();
    let total: usize = categories.iter().map(Vec::len).sum();
    rows.iter()
        .map(|row| {
            let mut v = vec![0.0; total];
            let mut offset = 0;
            for (c, cats) in categories.iter().enumerate() {
                if let Ok(k) = cats.binary_search(&row[c].as_str()) {
                    v[offset + k] = 1.0;
                }
                offset += cats.len();
            }
            v
        })
        .collect()
}

fn csv_error(path: &str, e: csv::Error) -> Error {
    let line = e.position().map_or(0, csv::Position::line);
    Error::Format {
        path: path.to_owned(),
        line,
        reason: e.to_string(),
    }
}

fn format_error(path: &str, line: u64, reason: &str) -> Error {
    Error::Format {
        path: path.to_owned(),
        line,
        reason: reason.to_owned(),
    }
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}
