#!/usr/bin/env python3
"""Reference checkpoints and outputs for MedFocus's SAM2 port.

Builds SAM 2.1 with Meta's own builder (`sam2.build_sam.build_sam2`) and YAML configs, random
weights and fixed seeds, saves the checkpoint exactly as Meta publishes it (`torch.save({"model":
state_dict})`, the layout of `sam2.1_hiera_tiny.pt`), and records what `SAM2ImagePredictor` and
`SAM2AutomaticMaskGenerator` compute on images from ../shared/data.

    pip install torch torchvision safetensors pillow
    SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2
    python scripts/reference/gen_sam2.py small   # -> tests/fixtures/sam2   (committed, ~4 MB)
    python scripts/reference/gen_sam2.py large   # -> fixtures-large/sam2  (ignored; SAM2.1-tiny, ~160 MB)

small: the SAM 2.1 tiny YAML shrunk by Hydra overrides (256-pixel input, 16-wide Hiera with
window padding in q-pooling and global blocks, 64-wide decoder). large: the unmodified
`configs/sam2.1/sam2.1_hiera_t.yaml`.
"""

import copy
import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam2.build_sam import build_sam2
from sam2.sam2_image_predictor import SAM2ImagePredictor

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("MEDFOCUS_DATA", REPO.parent / "shared" / "data"))
CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"

SMALL_OVERRIDES = [
    "++model.image_size=256",
    "++model.image_encoder.trunk.embed_dim=16",
    "++model.image_encoder.trunk.num_heads=1",
    "++model.image_encoder.trunk.stages=[1,2,3,2]",
    "++model.image_encoder.trunk.global_att_blocks=[5]",
    "++model.image_encoder.trunk.window_spec=[8,4,6,3]",
    "++model.image_encoder.trunk.window_pos_embed_bkg_spatial_size=[7,7]",
    "++model.image_encoder.neck.d_model=64",
    "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
    # The video parts are in every official checkpoint; the image predictor never uses them.
    # Shrunk so the committed checkpoint stays small.
    "++model.memory_attention.d_model=64",
    "++model.memory_attention.num_layers=1",
    "++model.memory_attention.layer.d_model=64",
    "++model.memory_attention.layer.dim_feedforward=64",
    "++model.memory_attention.layer.self_attention.embedding_dim=64",
    "++model.memory_attention.layer.self_attention.feat_sizes=[16,16]",
    "++model.memory_attention.layer.cross_attention.embedding_dim=64",
    "++model.memory_attention.layer.cross_attention.feat_sizes=[16,16]",
    "++model.memory_attention.layer.cross_attention.kv_in_dim=16",
    "++model.memory_encoder.out_dim=16",
    "++model.memory_encoder.in_dim=64",
    "++model.memory_encoder.position_encoding.num_pos_feats=16",
    "++model.memory_encoder.mask_downsampler.embed_dim=64",
    "++model.memory_encoder.fuser.layer.dim=64",
    "++model.memory_encoder.fuser.num_layers=1",
]

SMALL_IMAGES = [
    "brain-mri/meningioma/Te-me_0016.jpg",
    "brain-mri/notumor/Te-no_0021.jpg",
    "chest-xray/PNEUMONIA/person1946_bacteria_4874.jpeg",
]
LARGE_IMAGES = [
    "brain-mri/glioma/Te-gl_0010.jpg",
    "chest-xray/PNEUMONIA/person1946_bacteria_4874.jpeg",
]


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def randomize_(model, seed):
    """Random weights everywhere, zero-initialised parts included (Hiera's position embeddings,
    `no_mem_embed`), so that a port that ignored or misplaced any tensor would be caught."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2 and "embed" not in name and "token" not in name:
                fan_in = param[0].numel()
                param.copy_(torch.randn(param.shape, generator=gen) / np.sqrt(fan_in))
            elif "norm" in name and name.endswith("weight"):
                param.copy_(1.0 + 0.1 * torch.randn(param.shape, generator=gen))
            elif param.dim() >= 2:
                # Embeddings, tokens, position embeddings. Larger ones make the decoder's
                # attention so sharp that PyTorch's own float32 answer drifts ~2e-3 from the
                # float64 one; at 0.2 the float32 noise stays near 1e-5, below what parity tests.
                param.copy_(0.2 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(0.1 * torch.randn(param.shape, generator=gen))


def load_rgb(relative):
    return np.array(Image.open(SHARED_DATA / relative).convert("RGB"))


def prompts_for(height, width):
    """Point and box prompts in original-image pixels, (x, y)."""
    cx, cy = width / 2, height / 2
    return [
        {"name": "center_point", "points": [[cx, cy]], "labels": [1], "box": None,
         "multimask": True},
        {"name": "point_pair", "points": [[cx * 0.8, cy * 0.9], [width * 0.15, height * 0.2]],
         "labels": [1, 0], "box": None, "multimask": True},
        {"name": "box", "points": None, "labels": None,
         "box": [width * 0.2, height * 0.25, width * 0.75, height * 0.8], "multimask": False},
        {"name": "box_and_point", "points": [[cx * 1.1, cy]], "labels": [1],
         "box": [width * 0.1, height * 0.1, width * 0.9, height * 0.85], "multimask": True},
        {"name": "single_point_single_mask", "points": [[width * 0.6, height * 0.4]],
         "labels": [1], "box": None, "multimask": False},
        # A refinement: the best low-res mask of `center_point` fed back as the mask prompt.
        {"name": "point_with_mask", "points": [[cx, cy * 1.05]], "labels": [1], "box": None,
         "multimask": False, "mask_from": "center_point"},
    ]


def medfocus_config(model, name):
    """The model's shape in MedFocus's `Sam2Config` schema, read off the built modules."""
    trunk = model.image_encoder.trunk
    neck = model.image_encoder.neck
    decoder = model.sam_mask_decoder
    ends = trunk.stage_ends
    stages = [ends[0] + 1] + [b - a for a, b in zip(ends, ends[1:])]
    layer = decoder.transformer.layers[0]
    return {
        "name": name,
        "image_size": model.image_size,
        "hiera": {
            "embed_dim": trunk.patch_embed.proj.out_channels,
            "num_heads": trunk.blocks[0].attn.num_heads,
            "stages": stages,
            "global_att_blocks": list(trunk.global_att_blocks),
            "window_spec": list(trunk.window_spec),
            "window_pos_embed_bkg_spatial_size": list(trunk.window_pos_embed_bkg_spatial_size),
            "q_pool": len(trunk.q_pool_blocks),
            "dim_mul": 2.0,
            "head_mul": 2.0,
        },
        "neck": {
            "d_model": neck.d_model,
            "backbone_channel_list": list(neck.backbone_channel_list),
            "fpn_top_down_levels": list(neck.fpn_top_down_levels),
            "position_features": neck.position_encoding.num_pos_feats * 2,
        },
        "scalp": model.image_encoder.scalp,
        "decoder": {
            "transformer_depth": len(decoder.transformer.layers),
            "transformer_mlp_dim": layer.mlp.layers[0].out_features,
            "transformer_heads": layer.self_attn.num_heads,
            "attention_downsample_rate": layer.cross_attn_token_to_image.embedding_dim
            // layer.cross_attn_token_to_image.internal_dim,
            "num_multimask_outputs": decoder.num_multimask_outputs,
            "iou_head_depth": decoder.iou_prediction_head.num_layers,
            "iou_head_hidden_dim": decoder.iou_prediction_head.layers[0].out_features,
            "mask_in_chans": model.sam_prompt_encoder.mask_downscaling[3].out_channels,
            "pred_obj_scores": decoder.pred_obj_scores,
            "pred_obj_scores_mlp": not isinstance(decoder.pred_obj_score_head, torch.nn.Linear),
            "dynamic_multimask_via_stability": decoder.dynamic_multimask_via_stability,
            "dynamic_multimask_stability_delta": decoder.dynamic_multimask_stability_delta,
            "dynamic_multimask_stability_thresh": decoder.dynamic_multimask_stability_thresh,
        },
        "use_high_res_features": model.use_high_res_features_in_sam,
        "iou_prediction_use_sigmoid": decoder.iou_prediction_head.sigmoid_output,
        "directly_add_no_mem_embed": model.directly_add_no_mem_embed,
    }


def set_image_f64(predictor, image):
    """`SAM2ImagePredictor.set_image` with a float64 input (its transforms make float32)."""
    predictor.reset_predictor()
    predictor._orig_hw = [image.shape[:2]]
    model = predictor.model
    backbone = model.forward_image(predictor._transforms(image)[None].double())
    _, vision_feats, _, _ = model._prepare_backbone_features(backbone)
    vision_feats[-1] = vision_feats[-1] + model.no_mem_embed
    feats = [feat.permute(1, 2, 0).reshape(1, -1, *size) for feat, size in
             zip(vision_feats[::-1], predictor._bb_feat_sizes[::-1])][::-1]
    predictor._features = {"image_embed": feats[-1], "high_res_feats": feats[:-1]}
    predictor._is_image_set = True


def generate(kind):
    small = kind == "small"
    out = REPO / ("tests/fixtures/sam2" if small else "fixtures-large/sam2")
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(0)
    model = build_sam2(CONFIG, None, device="cpu", mode="eval",
                       hydra_overrides_extra=SMALL_OVERRIDES if small else [])
    randomize_(model, seed=1 if small else 2)
    model.eval()
    name = "sam2.1-tiny-small" if small else "sam2.1-hiera-tiny"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save({"model": state}, out / f"{name}.pt")
    (out / f"{name}.config.json").write_text(
        json.dumps(medfocus_config(model, name), indent=1) + "\n")

    predictor = SAM2ImagePredictor(model)
    # The predictor hard-codes the feature sizes of a 1024-pixel input.
    feat_sizes = [(model.image_size // s,) * 2 for s in (4, 8, 16)]
    predictor._bb_feat_sizes = feat_sizes
    # The same model in float64: the reference's own float32 answer is a few 1e-3 off the exact
    # one on some prompts (random weights make sharp attention), so parity is also measured
    # against this one. Its prompt encoder casts coordinates to float32; patched to keep f64.
    exact_model = copy.deepcopy(model).double()
    pe_layer = exact_model.sam_prompt_encoder.pe_layer
    encode = pe_layer._pe_encoding
    pe_layer._pe_encoding = lambda coords: encode(coords.double())
    embed_masks = exact_model.sam_prompt_encoder._embed_masks
    exact_model.sam_prompt_encoder._embed_masks = lambda masks: embed_masks(masks.double())
    exact = SAM2ImagePredictor(exact_model)
    exact._bb_feat_sizes = feat_sizes
    tensors = {}
    index = {"checkpoint": f"{name}.pt", "image_size": model.image_size,
             "config": CONFIG, "overrides": SMALL_OVERRIDES if small else [], "images": []}
    images = SMALL_IMAGES if small else LARGE_IMAGES
    with torch.no_grad():
        for image_index, relative in enumerate(images):
            image = load_rgb(relative)
            height, width = image.shape[:2]
            key = f"image{image_index}"
            tensors[f"{key}.input"] = predictor._transforms(image)[None].contiguous()
            predictor.set_image(image)
            set_image_f64(exact, image)
            for name, value in exact._features.items():
                if name == "image_embed":
                    tensors[f"{key}.image_embed_f64"] = value.float().contiguous()
            tensors[f"{key}.image_embed"] = predictor._features["image_embed"].contiguous()
            for level, feat in enumerate(predictor._features["high_res_feats"]):
                tensors[f"{key}.high_res_feats.{level}"] = feat.contiguous()
            if image_index == 0:
                # The neck's sine encoding depends only on the feature size; the coarsest level.
                backbone = model.image_encoder(tensors[f"{key}.input"])
                tensors["vision_pos_enc.last"] = backbone["vision_pos_enc"][-1].contiguous()
            entry = {"file": relative, "height": height, "width": width, "key": key,
                     "prompts": []}
            best_low_res = {}
            for prompt in prompts_for(height, width):
                mask_input = None
                if "mask_from" in prompt:
                    mask_input = best_low_res[prompt["mask_from"]][None, :, :]
                def run(which):
                    array = lambda v: None if v is None else np.array(v)
                    return which.predict(
                        point_coords=array(prompt["points"]), point_labels=array(prompt["labels"]),
                        box=array(prompt["box"]), mask_input=mask_input,
                        multimask_output=prompt["multimask"], return_logits=True)

                masks, ious, low_res = run(predictor)
                pkey = f"{key}.{prompt['name']}"
                best_low_res[prompt["name"]] = low_res[np.argmax(ious)]
                _, exact_ious, exact_low = run(exact)
                tensors[f"{pkey}.low_res_masks_f64"] = torch.as_tensor(exact_low).float().contiguous()
                tensors[f"{pkey}.iou_f64"] = torch.as_tensor(exact_ious).float().contiguous()
                tensors[f"{pkey}.low_res_masks"] = torch.as_tensor(low_res).contiguous()
                tensors[f"{pkey}.iou"] = torch.as_tensor(ious).contiguous()
                binary = (np.asarray(masks) > 0.0).astype(np.uint8)
                # Original-size masks, bit-packed row-major per mask (numpy's packbits order).
                tensors[f"{pkey}.masks_packed"] = torch.as_tensor(
                    np.packbits(binary.reshape(binary.shape[0], -1), axis=1))
                entry["prompts"].append(prompt)
            index["images"].append(entry)

        # The automatic mask generator on the first image, with thresholds a random-weight
        # model can pass (its IoU head is untrained). Random weights give masks whose boxes all
        # span the image, so box NMS keeps one; the second run switches NMS off (IoU > 1 never
        # happens) to compare every mask that passes the filters.
        image = load_rgb(images[0])
        index["amg"] = {"image": images[0], "runs": []}
        for nms in (0.7, 1.0):
            settings = {"points_per_side": 8, "points_per_batch": 16, "pred_iou_thresh": 0.3,
                        "stability_score_thresh": 0.6, "stability_score_offset": 1.0,
                        "box_nms_thresh": nms}
            generator = SAM2AutomaticMaskGenerator(model, **settings)
            generator.predictor._bb_feat_sizes = feat_sizes
            records = generator.generate(image)
            index["amg"]["runs"].append({
                "settings": settings,
                "masks": [{
                    "bbox_xywh": r["bbox"], "area": int(r["area"]),
                    "predicted_iou": r["predicted_iou"], "stability_score": r["stability_score"],
                    "point": r["point_coords"][0],
                } for r in records],
            })
    save_file(tensors, str(out / "reference.safetensors"))
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    counts = [len(run["masks"]) for run in index["amg"]["runs"]]
    print(f"wrote {out}: {len(index['images'])} images, automatic masks per run {counts}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("small", "large"):
        sys.exit("usage: gen_sam2.py small|large")
    generate(sys.argv[1])
