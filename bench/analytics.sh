#!/usr/bin/env bash
# Reference checks of aisle's analytics on the shared datasets:
#   Groceries: association rules at support 0.001, confidence 0.5 (arules: 5,668 rules).
#   CDNOW sample: BG/NBD on the 39-week calibration period (Fader, Hardie & Lee 2005:
#   r = 0.243, alpha = 4.414, a = 0.793, b = 2.426) and the holdout forecast.
#
#   bash bench/analytics.sh      -> bench/results/rules-groceries.md, bench/results/bgnbd-cdnow.md
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${AISLE_SHARED_DATA:-../shared/data}"
cargo build --release --quiet
aisle=target/release/aisle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$aisle import --data-dir "$work/groceries" --format groceries "$shared/groceries/groceries.csv" > /dev/null
$aisle import --data-dir "$work/cdnow" --format cdnow "$shared/cdnow/CDNOW_sample.txt" > /dev/null
{
  echo "# Association rules on Groceries (arules reference)"
  echo
  echo "Command: \`bash bench/analytics.sh\`, which runs"
  echo "\`aisle analyze rules --data-dir DIR --min-support 0.001 --min-confidence 0.5\` on the 9,835 baskets."
  echo "R's arules (\`apriori(Groceries, parameter = list(supp = 0.001, conf = 0.5))\`) gives 5,668 rules, and its"
  echo "top three by lift are {Instant food products, soda} => {hamburger meat} (lift 19.0),"
  echo "{soda, popcorn} => {salty snack} (16.7) and {flour, baking powder} => {sugar} (16.4)."
  echo
  echo '```'
  $aisle analyze rules --data-dir "$work/groceries" --min-support 0.001 --min-confidence 0.5 --top 10
  echo '```'
} > bench/results/rules-groceries.md
{
  echo "# BG/NBD on the CDNOW sample (Fader, Hardie & Lee, 2005)"
  echo
  echo "Command: \`bash bench/analytics.sh\`, which runs"
  echo "\`aisle predict churn --data-dir DIR --model bgnbd --calibration-end 1997-09-30\` on the 2,357 customers of"
  echo "CDNOW_sample (calibration: weeks 1-39; holdout: to 1998-06-30). Published: r = 0.243, alpha = 4.414,"
  echo "a = 0.793, b = 2.426, log-likelihood -9,582.4. Transactions are purchase days (same-day purchases count once)."
  echo
  echo '```'
  $aisle predict churn --data-dir "$work/cdnow" --model bgnbd --calibration-end 1997-09-30 --top 5
  echo '```'
} > bench/results/bgnbd-cdnow.md
cat bench/results/rules-groceries.md bench/results/bgnbd-cdnow.md
