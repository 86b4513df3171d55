"""Train the full-precision checkpoints the task starts from (run once; outputs committed).

    cd tasks/lm-quantization-aware-training/repo && PYTHONPATH=. python ../pretrain.py d64-l2

Each model (repo/gpt.py, fixed seed 1234) is trained on data/train.txt only: 1500 AdamW steps of
32 windows of 64 bytes, lr 3e-3, betas (0.9, 0.95), weight decay 0.1 on matrices and the byte
table, 10% warmup then cosine to 10%, gradient clipping 1.0, one thread.  Parameters are stored
as float16 in checkpoints/<model>.npz (the harness loads them as float32).
"""

import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, ".")
import gpt  # noqa: E402
import settings as S  # noqa: E402

STEPS, BATCH, LR, SEED = 1500, 32, 3e-3, 1234


def main(model_name: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    m = S.MODELS[model_name]
    cfg = gpt.Config(
        vocab_size=S.VOCAB,
        d_model=m["d_model"],
        n_layer=m["n_layer"],
        n_head=m["n_head"],
        block_size=m["block_size"],
    )
    model = gpt.GPT(cfg)
    data = np.frombuffer(open(S.TRAIN_TEXT, "rb").read(), dtype=np.uint8)
    rng = np.random.default_rng(SEED)
    T = cfg.block_size
    decay = [model.tok] + list(model.matrices.parameters())
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
        lr=LR,
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    warmup = STEPS // 10
    t0 = time.time()
    for step in range(STEPS):
        lr = (
            LR * (step + 1) / warmup
            if step < warmup
            else LR
            * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (STEPS - warmup))))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        ix = rng.integers(0, len(data) - T - 1, size=BATCH)
        w = torch.from_numpy(np.stack([data[i : i + T + 1] for i in ix]).astype(np.int64))
        logits = model(w[:, :-1], model.matrix_params())
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), w[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 250 == 0 or step == STEPS - 1:
            print(
                f"{model_name} step {step} loss {loss.item():.4f} ({time.time() - t0:.0f}s)",
                flush=True,
            )
    out = {
        k: v.detach().numpy().astype(np.float16)
        for k, v in {**model.float_params(), **model.matrix_params()}.items()
    }
    np.savez(m["checkpoint"], **out)
    print("wrote", m["checkpoint"])


if __name__ == "__main__":
    main(sys.argv[1])
