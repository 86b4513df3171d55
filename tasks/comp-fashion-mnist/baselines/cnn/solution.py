"""Baseline: a small convolutional network (LeNet-style: LeCun et al., Proc. IEEE 86, 1998):
conv3x3(16)-BatchNorm-ReLU-maxpool, conv3x3(32)-BatchNorm-ReLU-maxpool (Ioffe & Szegedy,
ICML 2015), dense 128 with dropout 0.3 (Srivastava et al., JMLR 2014), softmax; Adam (Kingma &
Ba, ICLR 2015), lr 2e-3 with cosine decay (Loshchilov & Hutter, ICLR 2017), batch 64,
15 epochs, on inputs standardized with the training mean and std. One CPU thread.
"""

import os

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
torch.manual_seed(seed)
torch.set_num_threads(1)

train, test = np.load("train.npz"), np.load("test.npz")
x = torch.tensor(train["images"], dtype=torch.float32)[:, None] / 255.0
xt = torch.tensor(test["images"], dtype=torch.float32)[:, None] / 255.0
mean, std = x.mean(), x.std()
x, xt = (x - mean) / std, (xt - mean) / std
y = torch.tensor(train["labels"], dtype=torch.long)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)
        self.drop = nn.Dropout(0.3)

    def forward(self, inp):
        h = F.max_pool2d(F.relu(self.bn1(self.conv1(inp))), 2)
        h = F.max_pool2d(F.relu(self.bn2(self.conv2(h))), 2)
        return self.fc2(self.drop(F.relu(self.fc1(h.flatten(1)))))


net = Net()
EPOCHS, BATCH = 15, 64
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS * ((len(x) + BATCH - 1) // BATCH))
gen = torch.Generator().manual_seed(seed)
for epoch in range(EPOCHS):
    net.train()
    perm = torch.randperm(len(x), generator=gen)
    for i in range(0, len(x), BATCH):
        b = perm[i:i + BATCH]
        loss = F.cross_entropy(net(x[b]), y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
net.eval()
with torch.no_grad():
    pred = torch.cat([net(xt[i:i + 500]).argmax(1) for i in range(0, len(xt), 500)]).numpy()
pd.DataFrame({"id": test["ids"], "label": pred}).to_csv("submission.csv", index=False)
