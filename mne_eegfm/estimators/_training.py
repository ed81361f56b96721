"""Training loops of :class:`~mne_eegfm.EEGFMClassifier`: linear probe, fine-tuning."""

import numpy as np
import torch
from mne.utils import logger

HEAD_PREFIX = "classifier."


def group_by_layout(windows_list):
    """Group window blocks sharing channels, positions and length.

    Returns a list of ``(data, positions, rows)``: ``rows`` are the indices of
    the windows of ``data`` in the concatenation of all blocks.
    """
    groups, start = {}, 0
    for windows in windows_list:
        n = len(windows.data)
        key = (
            tuple(windows.ch_names),
            windows.positions.tobytes(),
            windows.data.shape[1:],
        )
        group = groups.setdefault(key, ([], windows.positions, []))
        group[0].append(windows.data)
        group[2].append(np.arange(start, start + n))
        start += n
    return [
        (np.concatenate(data), positions, np.concatenate(rows))
        for data, positions, rows in groups.values()
    ]


class ProbeTrainer:
    """Linear probe: frozen encoder tokens (computed once), head trained on them."""

    def __init__(self, net, tokens, batch_size, device):
        self.net = net
        for name, param in net.named_parameters():
            param.requires_grad_(name.startswith(HEAD_PREFIX))
        net.eval()
        self.tokens = torch.as_tensor(tokens)
        self.device = device
        self.batch_size = batch_size

    def param_groups(self, lr, encoder_lr_scale):
        return [{"params": list(self.net.classifier.parameters()), "lr": lr}]

    def train_mode(self, training):
        self.net.classifier.train(training)

    def batches(self, indices, generator=None):
        batch_size = self.batch_size
        if generator is not None:
            indices = indices[torch.randperm(len(indices), generator=generator).numpy()]
        for start in range(0, len(indices), batch_size):
            rows = indices[start : start + batch_size]
            yield rows, (self.tokens[rows].to(self.device),)

    def forward(self, tokens):
        return self.net.classifier(tokens).float()


class FinetuneTrainer:
    """Fine-tuning: windows go through the whole model at each step."""

    def __init__(self, net, inputs, batch_size, device):
        self.net = net
        self.groups = group_by_layout(inputs.windows)
        self.group_of = np.empty(inputs.n_windows, int)
        self.row_in_group = np.empty(inputs.n_windows, int)
        for index, (_, _, rows) in enumerate(self.groups):
            self.group_of[rows] = index
            self.row_in_group[rows] = np.arange(len(rows))
        self.device = device
        self.batch_size = batch_size

    def param_groups(self, lr, encoder_lr_scale):
        """Every parameter trains (set here, when the optimiser is built)."""
        head, encoder = [], []
        for name, param in self.net.named_parameters():
            param.requires_grad_(True)
            (head if name.startswith(HEAD_PREFIX) else encoder).append(param)
        return [
            {"params": head, "lr": lr},
            {"params": encoder, "lr": lr * encoder_lr_scale},
        ]

    def train_mode(self, training):
        self.net.train(training)

    def batches(self, indices, generator=None):
        """Batches of windows that share a channel layout (shuffled if generator)."""
        batches = []
        for group in np.unique(self.group_of[indices]):
            members = indices[self.group_of[indices] == group]
            if generator is not None:
                members = members[
                    torch.randperm(len(members), generator=generator).numpy()
                ]
            batches += [
                (group, members[start : start + self.batch_size])
                for start in range(0, len(members), self.batch_size)
            ]
        if generator is not None:
            order = torch.randperm(len(batches), generator=generator).numpy()
            batches = [batches[i] for i in order]
        for group, rows in batches:
            data, positions, _ = self.groups[group]
            x = torch.as_tensor(data[self.row_in_group[rows]], device=self.device)
            pos = torch.as_tensor(positions, dtype=torch.float32, device=self.device)
            yield rows, (x, pos)

    def forward(self, x, positions):
        return self.net(x, positions).float()


def encoder_tokens(trainer, n_windows):
    """Tokens (n_windows, S, D) of the frozen encoder, in window order.

    ``trainer`` is a :class:`FinetuneTrainer`: its batches group the windows
    by channel layout.
    """
    trainer.net.eval()
    tokens = None
    with torch.no_grad():
        for rows, (x, positions) in trainer.batches(np.arange(n_windows)):
            out = trainer.net.encode(x, positions).float().cpu()
            if tokens is None:
                tokens = torch.empty((n_windows, *out.shape[1:]), dtype=out.dtype)
            tokens[rows] = out
    return tokens


def fit_loop(trainer, optimizer, loss_fn, y_index, split, *, seed, stopping):
    """Mini-batch training with early stopping on the validation loss.

    ``split`` is ``(train, valid)`` window indices; ``stopping`` is
    ``(max_epochs, patience)``; batches are shuffled from ``seed``.
    """
    train, valid = split
    max_epochs, patience = stopping
    generator = torch.Generator().manual_seed(seed)
    y_all = torch.as_tensor(y_index, dtype=torch.long)
    best, best_state, waited, history = np.inf, None, 0, []
    for epoch in range(1, max_epochs + 1):
        trainer.train_mode(True)
        total, count = 0.0, 0
        for rows, args in trainer.batches(train, generator):
            target = y_all[rows].to(trainer.device)
            loss = loss_fn(trainer.forward(*args), target)
            if not torch.isfinite(loss):
                raise RuntimeError(
                    f"Training diverged at epoch {epoch}: the loss is {float(loss)}; "
                    "try a lower lr."
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
            count += len(rows)
        valid_loss = _evaluate(trainer, loss_fn, y_all, valid)
        history.append(
            {"epoch": epoch, "train_loss": total / count, "valid_loss": valid_loss}
        )
        logger.debug(
            f"Epoch {epoch}: train loss {total / count:.4f}, "
            f"valid loss {valid_loss:.4f}"
        )
        if not len(valid):
            continue
        if valid_loss < best:
            best, waited = valid_loss, 0
            best_state = {
                k: v.detach().clone() for k, v in trainer.net.state_dict().items()
            }
        else:
            waited += 1
            if waited >= patience:
                logger.info(f"Early stopping after {epoch} epochs")
                break
    if best_state is not None:
        trainer.net.load_state_dict(best_state)
    return history


def _evaluate(trainer, loss_fn, y_all, indices):
    if not len(indices):
        return float("nan")
    trainer.train_mode(False)
    total = 0.0
    with torch.no_grad():
        for rows, args in trainer.batches(indices):
            target = y_all[rows].to(trainer.device)
            total += float(loss_fn(trainer.forward(*args), target)) * len(rows)
    return total / len(indices)
