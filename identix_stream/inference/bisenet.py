"""BiSeNet (Yu et al., ECCV 2018) for face parsing.

Context path on a torchvision ResNet with attention refinement modules and a global-context
branch; a three-convolution spatial path at 1/8 resolution; a feature fusion module; auxiliary
heads on the 1/8 and 1/16 context features used only while training.

With ``spatial_path=False`` the 1/8 ResNet feature stands in for the spatial path, which is the
layout of the public face-parsing.PyTorch checkpoints (``cp.*``, ``ffm.*``, ``conv_out*``); the
module names follow that layout so those checkpoints load as they are.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18, resnet50

Backbone = Literal["resnet18", "resnet50"]


class ConvBNReLU(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, ks: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, ks, stride, ks // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class SegHead(nn.Module):
    """3x3 conv block then a 1x1 classifier (``BiSeNetOutput`` in the public layout)."""

    def __init__(self, in_ch: int, mid_ch: int, n_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_ch, mid_ch, 3)
        self.conv_out = nn.Conv2d(mid_ch, n_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class AttentionRefinement(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_ch, out_ch, 3)
        self.conv_atten = nn.Conv2d(out_ch, out_ch, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        atten = torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean((2, 3), keepdim=True))))
        return feat * atten


class ResNetTrunk(nn.Module):
    """torchvision ResNet returning the 1/8, 1/16 and 1/32 features (``cp.resnet`` keys)."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        net = resnet18(weights=None) if backbone == "resnet18" else resnet50(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        expansion = 1 if backbone == "resnet18" else 4
        self.channels = (128 * expansion, 256 * expansion, 512 * expansion)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        feat32 = self.layer4(feat16)
        return feat8, feat16, feat32


class ContextPath(nn.Module):
    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.resnet = ResNetTrunk(backbone)
        c8, c16, c32 = self.resnet.channels
        self.arm16 = AttentionRefinement(c16, 128)
        self.arm32 = AttentionRefinement(c32, 128)
        self.conv_head32 = ConvBNReLU(128, 128, 3)
        self.conv_head16 = ConvBNReLU(128, 128, 3)
        self.conv_avg = ConvBNReLU(c32, 128, 1)
        self.feat8_channels = c8

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        avg = self.conv_avg(feat32.mean((2, 3), keepdim=True))
        feat32_sum = self.arm32(feat32) + avg
        feat32_up = self.conv_head32(F.interpolate(feat32_sum, size=feat16.shape[2:], mode="nearest"))
        feat16_sum = self.arm16(feat16) + feat32_up
        feat16_up = self.conv_head16(F.interpolate(feat16_sum, size=feat8.shape[2:], mode="nearest"))
        return feat8, feat16_up, feat32_up


class SpatialPath(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(3, 64, 3, 2)  # 3x3 (not 7x7): same receptive role, 5x cheaper on CPU
        self.conv2 = ConvBNReLU(64, 64, 3, 2)
        self.conv3 = ConvBNReLU(64, 64, 3, 2)
        self.conv_out = ConvBNReLU(64, 128, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv3(self.conv2(self.conv1(x))))


class FeatureFusion(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_ch, out_ch, 1)
        self.conv1 = nn.Conv2d(out_ch, out_ch // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_ch // 4, out_ch, 1, bias=False)

    def forward(self, sp: torch.Tensor, cp: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([sp, cp], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean((2, 3), keepdim=True)), inplace=True)))
        return feat + feat * atten


class BiSeNet(nn.Module):
    """Returns logits at input resolution; in training mode also the two auxiliary logits."""

    def __init__(self, n_classes: int, backbone: Backbone = "resnet18", spatial_path: bool = True) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.backbone: Backbone = backbone
        self.cp = ContextPath(backbone)
        self.sp: SpatialPath | None = SpatialPath() if spatial_path else None
        sp_channels = 128 if spatial_path else self.cp.feat8_channels
        self.ffm = FeatureFusion(sp_channels + 128, 256)
        self.conv_out = SegHead(256, 256, n_classes)
        self.conv_out16 = SegHead(128, 64, n_classes)
        self.conv_out32 = SegHead(128, 64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        size = x.shape[2:]
        feat8, feat_cp8, feat_cp16 = self.cp(x)
        feat_sp = self.sp(x) if self.sp is not None else feat8
        out = F.interpolate(self.conv_out(self.ffm(feat_sp, feat_cp8)), size=size, mode="bilinear", align_corners=False)
        if not self.training:
            return out
        out16 = F.interpolate(self.conv_out16(feat_cp8), size=size, mode="bilinear", align_corners=False)
        out32 = F.interpolate(self.conv_out32(feat_cp16), size=size, mode="bilinear", align_corners=False)
        return out, out16, out32
