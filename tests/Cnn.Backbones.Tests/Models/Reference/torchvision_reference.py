"""torchvision 0.14 references for every registered Cnn.Backbones model, generated at test time (ModelReference.cs drives it).

    torchvision_reference.py architecture JOBS.json   prints {spec: architecture dump} as JSON
    torchvision_reference.py parity JOBS.json         writes each job's folder: weights.pth, outputs.safetensors, meta.json
    torchvision_reference.py trunc_normal CASES.json  prints the statistics of torch.nn.init.trunc_normal_ for each case

A spec is a registry name, optionally followed by flags: googlenet+aux (aux_logits=True), inception_v3+noaux, +notransform
(transform_input=False), resnet18+blocks-2-2-2-3 (torchvision's ResNet(BasicBlock, [2, 2, 2, 3])). Without flags GoogLeNet and
Inception v3 use transform_input=True and torchvision's pretrained aux settings (GoogLeNet off, Inception on), which are the
library's defaults. Models without a torchvision equivalent have a builder here (EXTRA_BUILDERS): lenet5 (a plain PyTorch
LeNet-5), seresnet50/101 (torchvision's ResNet with timm's SE modules after bn3) and the clip_* image towers (OpenCLIP's own
image tower from shared/reference/open_clip, a test oracle only, with a linear head on its embedding).
Stage maps come from explicit_stages for the families written out there, else from forward hooks on the modules the C# model's
FeatureInfo names (given in each parity job).
One process serves many jobs, so torch is imported once.
"""
import collections
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.ops import StochasticDepth

M = torchvision.models


class LeNet5(nn.Module):
    # LeCun et al. 1998: 32x32 input, tanh, average pooling, 6-16 conv maps, 120-84 fully connected units.
    def __init__(self, num_classes=10, in_channels=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def stages(self, x):
        if x.shape[-1] == 28:
            x = F.pad(x, (2, 2, 2, 2))
        s0 = F.avg_pool2d(torch.tanh(self.conv1(x)), 2)
        s1 = F.avg_pool2d(torch.tanh(self.conv2(s0)), 2)
        return [s0, s1]

    def head(self, s):
        pre = torch.tanh(self.fc2(torch.tanh(self.fc1(torch.flatten(s, 1)))))
        return pre, self.fc3(pre)

    def forward(self, x):
        return self.head(self.stages(x)[-1])[1]


class TimmSE(nn.Module):
    # timm's SEModule with its defaults: rd_channels = make_divisible(C / 16, 8, round_limit=0), fc1 -> ReLU -> fc2 -> sigmoid.
    def __init__(self, channels):
        super().__init__()
        rd = max(8, int(channels / 16 + 4) // 8 * 8)
        self.fc1 = nn.Conv2d(channels, rd, 1)
        self.fc2 = nn.Conv2d(rd, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


def _se_bottleneck_forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.se(self.bn3(self.conv3(out)))
    return self.relu(out + identity)


def seresnet(depth_name):
    # timm's seresnet layout: torchvision's ResNet keys with se.fc1/fc2 registered right after each bottleneck's bn3.
    model = getattr(M, depth_name)()
    for module in model.modules():
        if isinstance(module, M.resnet.Bottleneck):
            items = list(module._modules.items())
            at = [k for k, _ in items].index("bn3") + 1
            module._modules = collections.OrderedDict(items[:at] + [("se", TimmSE(module.bn3.num_features))] + items[at:])
            module.forward = _se_bottleneck_forward.__get__(module)
    return model


def open_clip_module():
    """OpenCLIP from shared/reference (CNN_REFERENCE_DIR, else the first shared/reference above the working directory), imported
    as its README says: its timm and itself first on sys.path, the shims (ftfy, tqdm) last."""
    ref = os.environ.get("CNN_REFERENCE_DIR")
    here = os.path.abspath(os.getcwd())
    while not ref:
        for candidate in (os.path.join(here, "shared", "reference"), os.path.join(here, "..", "shared", "reference")):
            if os.path.isdir(os.path.join(candidate, "open_clip", "open_clip")):
                ref = os.path.abspath(candidate)
                break
        parent = os.path.dirname(here)
        if not ref and parent == here:
            raise SystemExit("OpenCLIP's reference source (shared/reference/open_clip) was not found; set CNN_REFERENCE_DIR.")
        here = parent
    if os.path.join(ref, "open_clip") not in sys.path:
        sys.dont_write_bytecode = True
        sys.path.insert(0, os.path.join(ref, "timm"))
        sys.path.insert(0, os.path.join(ref, "open_clip"))
        sys.path.append(os.path.join(ref, "shims"))
    import logging
    logging.disable(logging.WARNING)
    import open_clip
    return open_clip


class ClipImageTower(nn.Module):
    # OpenCLIP's image tower of a CLIP model ('visual', built by OpenCLIP from its model config) and a linear head on the embedding.
    def __init__(self, model_name, num_classes=1000):
        super().__init__()
        open_clip = open_clip_module()
        from open_clip.model import _build_vision_tower
        cfg = open_clip.get_model_config(model_name)
        self.visual = _build_vision_tower(cfg["embed_dim"], cfg["vision_cfg"], quick_gelu=cfg.get("quick_gelu", False))
        self.head = nn.Linear(cfg["embed_dim"], num_classes)

    def forward(self, x):
        return self.head(self.visual(x))

    def staged(self, x):
        # The library's stages: ResNet stem to act3 (stride 2), then avgpool + layer1, layer2..4; the ViT's blocks (tokens).
        v = self.visual
        if hasattr(v, "attnpool"):
            s = [v.act3(v.bn3(v.conv3(v.act2(v.bn2(v.conv2(v.act1(v.bn1(v.conv1(x)))))))))]
            for i, layer in enumerate((v.layer1, v.layer2, v.layer3, v.layer4)):
                s.append(layer(v.avgpool(s[-1]) if i == 0 else s[-1]))
            features = s[-1]
            pre = v.attnpool(features)
        else:
            t, s = v._embeds(x), []
            for block in v.transformer.resblocks:
                t = block(t)
                s.append(t)
            features = v.ln_post(t)
            pre = features[:, 0] @ v.proj
        return s, features, pre, self.head(pre)


CLIP_TOWERS = {
    "clip_vit_b32": "ViT-B-32", "clip_vit_b32_quickgelu": "ViT-B-32-quickgelu",
    "clip_vit_b16": "ViT-B-16", "clip_vit_b16_quickgelu": "ViT-B-16-quickgelu",
    "clip_vit_l14": "ViT-L-14", "clip_vit_l14_quickgelu": "ViT-L-14-quickgelu",
    "clip_rn50": "RN50",
}

EXTRA_BUILDERS = {
    "lenet5": lambda flags: LeNet5(),
    "seresnet50": lambda flags: seresnet("resnet50"),
    "seresnet101": lambda flags: seresnet("resnet101"),
    **{name: (lambda flags, clip=clip: ClipImageTower(clip)) for name, clip in CLIP_TOWERS.items()},
}


def build(spec, init=True):
    name, *flags = spec.split("+")
    if name in EXTRA_BUILDERS:
        return EXTRA_BUILDERS[name](flags)
    blocks = [f for f in flags if f.startswith("blocks-")]
    if blocks:
        # ResNet(block, layers) with other block counts per stage, the named variant's block type, groups and width.
        like = getattr(M, name)()
        counts = [int(n) for n in blocks[0][len("blocks-"):].split("-")]
        return M.resnet.ResNet(type(like.layer1[0]), counts, groups=like.groups, width_per_group=like.base_width)
    kw = {}
    if name in ("googlenet", "inception_v3"):
        kw["transform_input"] = "notransform" not in flags
        kw["aux_logits"] = ("aux" in flags) if name == "googlenet" else ("noaux" not in flags)
        kw["init_weights"] = init
    return getattr(M, name)(**kw)


def torchvision_weights(name):
    try:
        return getattr(M.get_model_weights(name), "IMAGENET1K_V1", None)
    except (ValueError, KeyError, AttributeError):
        return None


def torchvision_family(name):
    """The torchvision module that defines a builder (e.g. torchvision.models.resnet), or None for the extra builders."""
    return None if name in EXTRA_BUILDERS else getattr(M, name).__module__


def family_members(module):
    """Every builder of a torchvision module that has IMAGENET1K_V1 weights (e.g. resnet18 ... wide_resnet101_2)."""
    return sorted(n for n in dir(M) if n.islower() and callable(getattr(M, n)) and getattr(M, n).__module__ == module
                  and torchvision_weights(n) is not None)


def architecture(specs):
    # Only names and shapes are needed: skip the (slow) random initialisation.
    for fn in ("kaiming_normal_", "kaiming_uniform_", "normal_", "trunc_normal_", "xavier_uniform_", "zeros_", "ones_", "constant_", "uniform_"):
        setattr(torch.nn.init, fn, lambda t, *a, **k: t)
    for cls in (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm):
        cls.reset_parameters = lambda self: None
    nn.MultiheadAttention._reset_parameters = lambda self: None
    out = {}
    for spec in specs:
        name = spec.split("+")[0]
        model = build(spec, init=False)
        drops = [m.p for n, m in model.named_modules() if isinstance(m, nn.Dropout) and n.split(".")[0] in ("classifier", "heads", "dropout")]
        entry = {
            "family": torchvision_family(name),
            "keys": [[k, list(v.shape)] for k, v in model.state_dict().items()],
            "params": sum(p.numel() for p in model.parameters()),
            "dropout": drops[0] if drops else 0.0,
            "drop_path": [m.p for m in model.modules() if isinstance(m, StochasticDepth)],
            "weights": None,
        }
        weights = torchvision_weights(name) if name not in EXTRA_BUILDERS else None
        if weights is not None:
            t = weights.transforms()
            entry["weights"] = {
                "meta_params": weights.meta["num_params"], "min_size": list(weights.meta["min_size"]),
                "crop": t.crop_size[0], "resize": t.resize_size[0], "mean": list(t.mean), "std": list(t.std),
                "interpolation": t.interpolation.value, "classes": len(weights.meta["categories"])}
        out[spec] = entry
        del model
    families = sorted({e["family"] for e in out.values() if e["family"]})
    print(json.dumps({"models": out, "families": {f: family_members(f) for f in families}}))


def randomise(model):
    # Non-trivial norms, running statistics, layer scales and zero-initialised parameters (ViT's head and class token, biases),
    # so a wrong eps, affine order, scale or missing bias shows in the outputs.
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(17)
            elif isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):
                p.uniform_(0.2, 0.6)
            elif p.numel() == 1 or float(p.std()) == 0.0:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def pool_stages(features, x):
    # timm's convention for plain Sequentials: a stage ends just before each max pooling; the last one ends with the features.
    pools = [i for i, layer in enumerate(features) if isinstance(layer, nn.MaxPool2d)]
    bounds = [0] + pools + [len(features)]
    outs = []
    for a, b in zip(bounds, bounds[1:]):
        if a == b:
            continue
        for i in range(a, b):
            x = features[i](x)
        outs.append(x)
    return outs


def explicit_stages(name, m, x):
    """Stages, pre-logits and logits written out for the families whose stage maps are not plain module outputs in torchvision
    (functional activations, stems without a module of their own) or whose stages follow timm's rules; None for the rest.
    Chosen by the reference model's class, so a builder that returns one of these classes needs nothing more here."""
    if isinstance(m, LeNet5):
        s = m.stages(x)
        return (s,) + m.head(s[-1])
    if isinstance(m, M.ResNet):
        act1 = m.relu(m.bn1(m.conv1(x)))
        s = [act1]
        for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
            s.append(layer(m.maxpool(s[-1]) if len(s) == 1 else s[-1]))
        pre = torch.flatten(m.avgpool(s[-1]), 1)
        return s, pre, m.fc(pre)
    if isinstance(m, (M.AlexNet, M.VGG)):
        s = pool_stages(m.features, x)
        pre = m.classifier[:6](torch.flatten(m.avgpool(s[-1]), 1))
        return s, pre, m.classifier[6](pre)
    if isinstance(m, M.SqueezeNet):
        s = pool_stages(m.features, x)
        return s, torch.flatten(F.adaptive_avg_pool2d(s[-1], 1), 1), torch.flatten(m.classifier(s[-1]), 1)
    if isinstance(m, M.GoogLeNet):
        x = m._transform_input(x)
        s0 = m.conv1(x)
        s1 = m.conv3(m.conv2(m.maxpool1(s0)))
        s2 = m.inception3b(m.inception3a(m.maxpool2(s1)))
        s3 = m.inception4e(m.inception4d(m.inception4c(m.inception4b(m.inception4a(m.maxpool3(s2))))))
        s4 = m.inception5b(m.inception5a(m.maxpool4(s3)))
        s, fc = [s0, s1, s2, s3, s4], m.fc
    elif isinstance(m, M.Inception3):
        x = m._transform_input(x)
        s0 = m.Conv2d_2b_3x3(m.Conv2d_2a_3x3(m.Conv2d_1a_3x3(x)))
        s1 = m.Conv2d_4a_3x3(m.Conv2d_3b_1x1(m.maxpool1(s0)))
        s2 = m.Mixed_5d(m.Mixed_5c(m.Mixed_5b(m.maxpool2(s1))))
        s3 = m.Mixed_6e(m.Mixed_6d(m.Mixed_6c(m.Mixed_6b(m.Mixed_6a(s2)))))
        s4 = m.Mixed_7c(m.Mixed_7b(m.Mixed_7a(s3)))
        s, fc = [s0, s1, s2, s3, s4], m.fc
    elif isinstance(m, M.DenseNet):
        f = m.features
        s0 = f.relu0(f.norm0(f.conv0(x)))
        s1 = f.denseblock1(f.pool0(s0))
        s2 = f.denseblock2(f.transition1(s1))
        s3 = f.denseblock3(f.transition2(s2))
        s4 = F.relu(f.norm5(f.denseblock4(f.transition3(s3))))
        s, fc = [s0, s1, s2, s3, s4], m.classifier
    else:
        return None
    pre = torch.flatten(F.adaptive_avg_pool2d(s[-1], 1), 1)
    return s, pre, fc(pre)


def hooked_outputs(model, job, x):
    """Every stage map (the output of each module the model's FeatureInfo names), the features (the input of torchvision's
    avgpool, else the output of its encoder or features) and the pre-logits (the classifier's input), captured by hooks."""
    modules = dict(model.named_modules())
    captured, hooks = {}, []

    def keep(key):
        return lambda mod, inp, outp: captured.__setitem__(key, outp.clone())

    def keep_input(key):
        return lambda mod, inp: captured.__setitem__(key, inp[0].clone())

    for i, module in enumerate(job["stage_modules"]):
        hooks.append(modules[module].register_forward_hook(keep(f"stage{i}")))
    if "avgpool" in modules:
        hooks.append(modules["avgpool"].register_forward_pre_hook(keep_input("features")))
    else:
        hooks.append(modules["encoder" if "encoder" in modules else "features"].register_forward_hook(keep("features")))
    hooks.append(modules[job["classifier"]].register_forward_pre_hook(keep_input("pre_logits")))
    logits = model(x)
    for h in hooks:
        h.remove()
    stages = [captured[f"stage{i}"] for i in range(len(job["stage_modules"]))]
    return stages, captured["features"], captured["pre_logits"], logits


def eval_outputs(name, model, job, x):
    if isinstance(model, ClipImageTower):
        s, features, pre, logits = model.staged(x)
        assert torch.allclose(logits, model(x), rtol=0, atol=1e-5), "staged forward differs from model(x)"
        return s, features, pre, logits
    explicit = explicit_stages(name, model, x)
    if explicit is None:
        return hooked_outputs(model, job, x)
    s, pre, logits = explicit
    assert torch.allclose(logits, model(x), rtol=0, atol=1e-6), "staged forward differs from model(x)"
    return s, s[-1], pre, logits


def train_outputs(name, model, x, size, g):
    # Training mode (batch statistics) with every dropout off, so the auxiliary outputs are deterministic.
    model.train()
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    tensors, meta = {}, {}
    if isinstance(model, M.GoogLeNet):
        # Hooks on the aux modules themselves: torchvision 0.14's GoogLeNetOutputs swaps the field names (aux_logits1 holds aux2's output).
        captured = {}
        for k in ("aux1", "aux2"):
            getattr(model, k).register_forward_hook(lambda mod, inp, outp, k=k: captured.__setitem__(k, outp))
        model(x)
        tensors["aux1"], tensors["aux2"] = captured["aux1"], captured["aux2"]
    else:
        tensors["aux"] = model(x).aux_logits
        try:
            model(torch.randn(2, 3, size - 1, size - 1, generator=g))
            meta["aux_fails_one_pixel_smaller"] = False
        except RuntimeError:
            meta["aux_fails_one_pixel_smaller"] = True
    return tensors, meta


def resampled(name, model, extra, g):
    # timm's resample_abs_pos_embed (its defaults): keep the class token, antialiased bicubic (align_corners=False) on the grid.
    sd = model.state_dict()
    pos = sd["encoder.pos_embedding"]
    old, new = int((pos.shape[1] - 1) ** 0.5), extra["size"] // extra["patch"]
    grid = pos[:, 1:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False, antialias=True)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new * new, -1)
    sd["encoder.pos_embedding"] = torch.cat([pos[:, :1], grid], dim=1)
    other = getattr(M, name)(image_size=extra["size"])
    other.load_state_dict(sd)
    other.eval()
    x2 = torch.randn(1, 3, extra["size"], extra["size"], generator=g)
    return {"resampled_input": x2, "resampled_pos": sd["encoder.pos_embedding"], "resampled_logits": other(x2)}


def save_outputs(path, tensors):
    # Outputs as safetensors (a plain format, independent of the .pth reader under test).
    header, offset, blobs = {}, 0, []
    for k, t in tensors.items():
        b = t.detach().contiguous().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def parity(job):
    spec, size, out = job["spec"], job["size"], job["out"]
    name = spec.split("+")[0]
    torch.manual_seed(0)
    model = build(spec)
    randomise(model)
    model.eval()
    torch.save(model.state_dict(), os.path.join(out, "weights.pth"))
    g = torch.Generator().manual_seed(1234)
    channels = next(mod for mod in model.modules() if isinstance(mod, nn.Conv2d)).in_channels
    x = torch.randn(job["batch"], channels, size, size, generator=g)
    tensors, meta = {"input": x}, {}
    with torch.no_grad():
        if job["mode"] == "eval":
            stages, features, pre, logits = eval_outputs(name, model, job, x)
            tensors.update({f"stage{i}": t for i, t in enumerate(stages)})
            tensors.update({"features": features, "pre_logits": pre, "logits": logits})
            if job.get("resample"):
                tensors.update(resampled(name, model, job["resample"], g))
        else:
            train, meta = train_outputs(name, model, x, size, g)
            tensors.update(train)
    meta["num_stages"] = sum(1 for k in tensors if k.startswith("stage"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f)
    save_outputs(os.path.join(out, "outputs.safetensors"), tensors)


def trunc_normal(cases):
    # Statistics of PyTorch's own trunc_normal_ on a million samples per case (mean, std, a, b).
    torch.manual_seed(0)
    out = []
    for mean, std, a, b in cases:
        t = torch.nn.init.trunc_normal_(torch.empty(1_000_000, dtype=torch.float64), mean, std, a, b)
        out.append({"mean": float(t.mean()), "std": float(t.std()), "min": float(t.min()), "max": float(t.max())})
    print(json.dumps(out))


def main():
    command, jobs_path = sys.argv[1], sys.argv[2]
    with open(jobs_path) as f:
        jobs = json.load(f)
    if command == "architecture":
        architecture(jobs)
    elif command == "parity":
        for job in jobs:
            parity(job)
    elif command == "trunc_normal":
        trunc_normal(jobs)
    else:
        raise SystemExit(f"unknown command {command!r}: use 'architecture', 'parity' or 'trunc_normal'")


if __name__ == "__main__":
    main()
