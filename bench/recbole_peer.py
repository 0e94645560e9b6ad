"""RecBole's SASRec (cross-entropy over the catalogue) on an S3-Rec sequence file, for
bench/recbole.sh. Prints one JSON line: fit wall time, epochs, RecBole's own test metrics.

Usage: recbole_peer.py SEQUENCE_FILE WORK_DIR EPOCHS
"""
import json
import os
import sys
import time

import torch

torch.set_num_threads(2)

from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.model.sequential_recommender import SASRec  # noqa: E402
from recbole.trainer import Trainer  # noqa: E402
from recbole.utils import init_seed  # noqa: E402

sequence_file, work, epochs = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), int(sys.argv[3])
os.makedirs(f"{work}/beauty", exist_ok=True)
os.chdir(work)  # RecBole writes its logs and tensorboard files to the working directory
# RecBole's atomic file: one row per event; the position in the user's sequence is the time.
with open(sequence_file) as src, open(f"{work}/beauty/beauty.inter", "w") as out:
    out.write("user_id:token\titem_id:token\ttimestamp:float\n")
    for line in src:
        user, *items = line.split()
        for t, item in enumerate(items):
            out.write(f"{user}\t{item}\t{t}\n")

config = Config(
    model="SASRec",
    dataset="beauty",
    config_dict={
        "data_path": work,
        "checkpoint_dir": f"{work}/saved",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": 50,
        "train_neg_sample_args": None,
        "loss_type": "CE",
        "epochs": epochs,
        "eval_step": 1,
        "stopping_step": 1000,
        "train_batch_size": 128,
        "eval_batch_size": 1024,
        "learning_rate": 0.002,
        "hidden_size": 64,
        "inner_size": 256,
        "n_layers": 2,
        "n_heads": 2,
        "hidden_dropout_prob": 0.4,
        "attn_dropout_prob": 0.4,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Hit", "NDCG"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "use_gpu": False,
        "device": "cpu",
        "worker": 0,
        "show_progress": False,
        "seed": 42,
    },
)
init_seed(config["seed"], config["reproducibility"])
dataset = create_dataset(config)
train_data, valid_data, test_data = data_preparation(config, dataset)
model = SASRec(config, train_data.dataset).to(config["device"])
trainer = Trainer(config, model)
started = time.time()
trainer.fit(train_data, valid_data, saved=True, show_progress=False)
fit_seconds = time.time() - started
test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
print(json.dumps({"fit_seconds": fit_seconds, "epochs": epochs, "test": {k: float(v) for k, v in test.items()}}))
