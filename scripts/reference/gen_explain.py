#!/usr/bin/env python3
"""Reference explanation maps for MedFocus's `explain` module (issue 15).

A transcription in PyTorch of the two methods on the committed tiny CLIP fixtures (open_clip,
Hugging Face, BiomedCLIP's timm ViT), loaded unmodified by their own libraries:

- relevancy: Chefer, Gur & Wolf (ICCV 2021) as `CLIP_explainability.ipynb` computes it — the
  target is the image–text logit (logit scale included); per block from `start_layer` on,
  `cam = (grad * attn_probs).clamp(min=0).mean(heads)`, `R = R + cam @ R` from `R = I`;
  the map is `R[0, 1:]`. Gradients from torch.autograd.
- dense: MaskCLIP (ECCV 2022) — the last block's value path (ln_1, v, out_proj; residual and
  MLP kept), ln_post, the projection, scored like an image embedding.

Both for a plain image, the paper's overlay prompt, and the attention focus (strength 2 on the
class token's queries in every block). The tower is re-written here block by block so its
attention probabilities can be read and biased; the script first checks that, unbiased, it
reproduces each library's own image embedding.

    pip install torch open-clip-torch transformers timm safetensors pillow
    python scripts/reference/gen_explain.py     # -> tests/fixtures/explain (committed)
"""

import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
CLIP_FIXTURES = FIXTURES / "clip"
OUT = FIXTURES / "explain"
SHARED_DATA = Path(os.environ.get("MEDFOCUS_DATA", REPO.parent / "shared" / "data"))
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
CLASSES = 3
STRENGTH = 2.0
DTYPE = torch.float64


class Tower:
    """A ViT image tower as plain tensors: embed, blocks, pooling."""

    def __init__(self, embed, blocks, heads, post, proj, library_embedding):
        self.embed, self.blocks, self.heads = embed, blocks, heads
        self.post, self.proj, self.library_embedding = post, proj, library_embedding


def block_forward(block, x, heads, bias=None, probs=None, value_path=False):
    ln_1, (wq, bq, wk, bk, wv, bv), out_proj, ln_2, mlp = block
    h = ln_1(x)
    batch, tokens, width = h.shape
    head_dim = width // heads
    v = h @ wv.T + bv
    if value_path:
        attended = out_proj(v)
    else:
        split = lambda t: t.reshape(batch, tokens, heads, head_dim).transpose(1, 2)
        q, k = split(h @ wq.T + bq), split(h @ wk.T + bk)
        logits = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
        if bias is not None:
            logits = logits + bias
        a = logits.softmax(-1)
        if probs is not None:
            probs.append(a)
        attended = out_proj((a @ split(v)).transpose(1, 2).reshape(batch, tokens, width))
    x = x + attended
    return x + mlp(ln_2(x))


def open_clip_tower(name):
    import open_clip
    cfg = json.loads((CLIP_FIXTURES / name / "open_clip_config.json").read_text())["model_cfg"]
    model = open_clip.model.CLIP(**cfg).eval()
    model.load_state_dict(load_file(str(CLIP_FIXTURES / name / "open_clip_model.safetensors")))
    model = model.to(DTYPE)
    v = model.visual

    def embed(x):
        x = v.conv1(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = v.class_embedding.reshape(1, 1, -1).expand(x.shape[0], 1, -1)
        return v.ln_pre(torch.cat([cls, x], 1) + v.positional_embedding)

    blocks = []
    for b in v.transformer.resblocks:
        w, bias = b.attn.in_proj_weight, b.attn.in_proj_bias
        d = w.shape[1]
        qkv = (w[:d], bias[:d], w[d:2 * d], bias[d:2 * d], w[2 * d:], bias[2 * d:])
        blocks.append((b.ln_1, qkv, b.attn.out_proj, b.ln_2, b.mlp))
    return Tower(embed, blocks, v.transformer.resblocks[0].attn.num_heads, v.ln_post,
                 lambda t: t @ v.proj, model.encode_image), model.logit_scale.exp().item()


def hf_tower(name):
    from transformers import CLIPModel
    model = CLIPModel.from_pretrained(CLIP_FIXTURES / name).eval().to(DTYPE)
    vm = model.vision_model

    def embed(x):
        return vm.pre_layrnorm(vm.embeddings(x))

    blocks = []
    for layer in vm.encoder.layers:
        at = layer.self_attn
        qkv = (at.q_proj.weight, at.q_proj.bias, at.k_proj.weight, at.k_proj.bias, at.v_proj.weight,
               at.v_proj.bias)
        blocks.append((layer.layer_norm1, qkv, at.out_proj, layer.layer_norm2, layer.mlp))

    def library(x):
        out = model.get_image_features(pixel_values=x)
        return out.pooler_output if hasattr(out, "pooler_output") else out

    return Tower(embed, blocks, model.config.vision_config.num_attention_heads, vm.post_layernorm,
                 model.visual_projection, library), model.logit_scale.exp().item()


def timm_tower(name):
    import timm
    state = torch.load(CLIP_FIXTURES / name / "open_clip_pytorch_model.bin", map_location="cpu")
    trunk_state = {k[len("visual.trunk."):]: t for k, t in state.items() if k.startswith("visual.trunk.")}
    proj = state["visual.head.proj.weight"].to(DTYPE)
    width, heads = trunk_state["cls_token"].shape[-1], 2
    patch = trunk_state["patch_embed.proj.weight"].shape[-1]
    depth = len({k.split(".")[1] for k in trunk_state if k.startswith("blocks.")})
    image_size = int(math.isqrt(trunk_state["pos_embed"].shape[1] - 1)) * patch
    trunk = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0, img_size=image_size,
                              patch_size=patch, embed_dim=width, depth=depth, num_heads=heads)
    trunk.load_state_dict(trunk_state)
    trunk = trunk.eval().to(DTYPE)

    def embed(x):
        return trunk.norm_pre(trunk._pos_embed(trunk.patch_embed(x)))

    blocks = []
    for b in trunk.blocks:
        w, bias = b.attn.qkv.weight, b.attn.qkv.bias
        d = w.shape[1]
        qkv = (w[:d], bias[:d], w[d:2 * d], bias[d:2 * d], w[2 * d:], bias[2 * d:])
        blocks.append((b.norm1, qkv, b.attn.proj, b.norm2, b.mlp))
    return Tower(embed, blocks, heads, trunk.norm, lambda t: t @ proj.T,
                 lambda x: trunk(x) @ proj.T), state["logit_scale"].exp().item()


TOWERS = {"openclip-tiny": open_clip_tower, "hf-clip-tiny": hf_tower, "biomedclip-tiny": timm_tower}


def overlay(pixels, mask):
    """The paper's overlay exactly as `focus::prompt` draws it (f32, round half away from 0)."""
    p = pixels.astype(np.float32)
    w = (mask > 127).astype(np.float32)[..., None]
    alpha = np.float32(0.35) * w
    colour = np.array([255, 0, 0], np.float32)
    tinted = (np.float32(1) - alpha) * p + alpha * colour
    return np.clip(np.floor(tinted + np.float32(0.5)), 0, 255).astype(np.uint8)


def normalise(pixels):
    x = torch.tensor(pixels, dtype=DTYPE).permute(2, 0, 1)[None] / 255.0
    mean = torch.tensor(OPENAI_MEAN, dtype=DTYPE).reshape(1, 3, 1, 1)
    std = torch.tensor(OPENAI_STD, dtype=DTYPE).reshape(1, 3, 1, 1)
    return (x - mean) / std


def attention_bias(mask, grid, patch):
    """strength × (w − 1) per patch key (w: the patch's mask mean), 0 for the class key, on the
    class token's queries only."""
    weights = torch.tensor((mask > 127).astype(np.float64)).reshape(grid, patch, grid, patch).mean((1, 3))
    keys = torch.cat([torch.zeros(1, dtype=DTYPE), STRENGTH * (weights.flatten() - 1.0)])
    bias = torch.zeros(1, 1, grid * grid + 1, grid * grid + 1, dtype=DTYPE)
    bias[0, 0, 0] = keys
    return bias


def logits_of(embedding, text, scale):
    return scale * F.normalize(embedding, dim=-1) @ text.T


def relevancy(tower, x, bias, text, scale, start, cls):
    probs = []
    h = tower.embed(x)
    for block in tower.blocks:
        h = block_forward(block, h, tower.heads, bias, probs)
    logits = logits_of(tower.proj(tower.post(h[:, 0])), text, scale)
    target = logits[0, cls]
    tokens = probs[0].shape[-1]
    r = torch.eye(tokens, dtype=DTYPE)[None]
    start = len(tower.blocks) - 1 if start == -1 else start
    for index, a in enumerate(probs):
        if index < start:
            continue
        grad = torch.autograd.grad(target, [a], retain_graph=True)[0].detach()
        cam = (grad * a.detach()).clamp(min=0).mean(dim=1)
        r = r + torch.bmm(cam, r)
    return logits.detach()[0], r[0, 0, 1:]


def dense(tower, x, bias, text, scale, cls):
    h = tower.embed(x)
    for block in tower.blocks[:-1]:
        h = block_forward(block, h, tower.heads, bias)
    image = block_forward(tower.blocks[-1], h, tower.heads, bias)
    logits = logits_of(tower.proj(tower.post(image[:, 0])), text, scale)
    patches = tower.proj(tower.post(block_forward(tower.blocks[-1], h, tower.heads, value_path=True)[:, 1:]))
    return logits.detach()[0], logits_of(patches[0], text, scale)[:, cls].detach()


def input_map(patch_map, size):
    grid = int(math.isqrt(patch_map.numel()))
    up = F.interpolate(patch_map.reshape(1, 1, grid, grid), size=size, mode="bilinear").flatten()
    span = up.max() - up.min()
    return (up - up.min()) / span if span > 0 else torch.zeros_like(up)


def inputs():
    """A real brain MRI at the fixtures' input size (so preprocessing is normalisation alone)
    and an off-centre elliptic region."""
    size = 32
    image = Image.open(SHARED_DATA / "brain-mri/glioma/Te-gl_0010.jpg").convert("RGB")
    image = image.resize((size, size), Image.BICUBIC)
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse((5, 9, 21, 27), fill=255)
    return np.asarray(image), np.asarray(mask)


def main():
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    pixels, mask = inputs()
    Image.fromarray(pixels).save(OUT / "image.png")
    Image.fromarray(mask).save(OUT / "mask.png")
    prompted = overlay(pixels, mask)
    Image.fromarray(prompted).save(OUT / "overlay.png")
    for seed, (name, build) in enumerate(TOWERS.items()):
        tower, scale = build(name)
        x_plain = normalise(pixels)
        with torch.no_grad():
            mine = tower.embed(x_plain)
            for block in tower.blocks:
                mine = block_forward(block, mine, tower.heads)
            mine = tower.proj(tower.post(mine[:, 0]))
            theirs = tower.library_embedding(x_plain)
        assert torch.allclose(mine, theirs, atol=1e-9), f"{name}: transcription differs from the library"
        embed_dim = mine.shape[-1]
        text = F.normalize(torch.randn(CLASSES, embed_dim, generator=torch.Generator().manual_seed(seed),
                                       dtype=DTYPE), dim=-1)
        patch = tower.embed(x_plain).shape[1] - 1
        grid = int(math.isqrt(patch))
        size = pixels.shape[0]
        out = {"text_embeddings": text.float(), "logit_scale": torch.tensor([scale], dtype=torch.float32)}
        modes = {
            "plain": (x_plain, None),
            "overlay": (normalise(prompted), None),
            "attention": (x_plain, attention_bias(mask, grid, size // grid)),
        }
        for mode, (x, bias) in modes.items():
            with torch.no_grad():
                predicted = int(dense(tower, x, bias, text, scale, 0)[0].argmax())
            cases = {
                "relevancy": lambda cls: relevancy(tower, x, bias, text, scale, -1, cls),
                "relevancy-all": lambda cls: relevancy(tower, x, bias, text, scale, 0, cls),
                "dense": lambda cls: dense(tower, x, bias, text, scale, cls),
            }
            for case, run in cases.items():
                for which, cls in [("predicted", predicted), ("other", (predicted + 1) % CLASSES)]:
                    logits, patch_map = run(cls)
                    key = f"{mode}.{case}.{which}"
                    out[f"{key}.class"] = torch.tensor([cls], dtype=torch.int64)
                    out[f"{key}.logits"] = logits.float()
                    out[f"{key}.patch_map"] = patch_map.float().contiguous()
                    out[f"{key}.input_map"] = input_map(patch_map, size).float().contiguous()
        save_file(out, str(OUT / f"{name}.safetensors"))
        print(name, "grid", grid, "logit scale", round(scale, 3))


if __name__ == "__main__":
    main()
