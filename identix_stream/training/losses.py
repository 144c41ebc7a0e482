"""Losses for face parsing with fine (11-class) and coarse (background/face/hair) labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from identix_stream.core.classes import FACE_CLASSES, HAIR, IGNORE_INDEX, NUM_CLASSES


def coarse_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of background / face / hair, summing the fine face classes into "face"."""
    logp = logits.float().log_softmax(1)
    face = torch.logsumexp(logp[:, list(FACE_CLASSES)], dim=1, keepdim=True)
    return torch.cat([logp[:, :1], face, logp[:, HAIR : HAIR + 1]], dim=1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean soft Dice over the non-background classes present in the batch (ignores IGNORE)."""
    valid = (target != IGNORE_INDEX).unsqueeze(1).float()
    probs = logits.float().softmax(1) * valid
    onehot = F.one_hot(target.clamp_max(NUM_CLASSES - 1).long(), NUM_CLASSES).permute(0, 3, 1, 2).float() * valid
    inter = (probs * onehot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    present = onehot.sum((0, 2, 3))[1:] > 0
    dice = (2 * inter[1:] + 1.0) / (denom[1:] + 1.0)
    if not bool(present.any()):
        return logits.sum() * 0.0
    return 1.0 - dice[present].mean()


def parsing_loss(
    logits: torch.Tensor, target: torch.Tensor, coarse: torch.Tensor, dice_weight: float
) -> torch.Tensor:
    """Cross-entropy on fine items, coarse NLL on coarse items, plus Dice on fine items."""
    loss = logits.new_zeros(())
    fine = ~coarse
    if bool(fine.any()):
        loss = loss + F.cross_entropy(logits[fine].float(), target[fine].long(), ignore_index=IGNORE_INDEX)
        if dice_weight > 0:
            loss = loss + dice_weight * dice_loss(logits[fine], target[fine])
    if bool(coarse.any()):
        loss = loss + 0.5 * F.nll_loss(
            coarse_log_probs(logits[coarse]), target[coarse].long(), ignore_index=IGNORE_INDEX
        )
    return loss
