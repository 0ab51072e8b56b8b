#!/usr/bin/env python3
"""Reference checkpoints and outputs for MedFocus's CLIP port.

Builds the *reference* implementations (open_clip, Hugging Face transformers, timm) with random
weights and fixed seeds, saves their checkpoints exactly as those libraries publish them, and
records what they compute, so the Rust port can be tested for parity without downloading any
real weights.

    pip install torch open-clip-torch transformers timm safetensors pillow
    python scripts/reference/gen_clip.py small   # -> tests/fixtures/clip   (committed)
    python scripts/reference/gen_clip.py large   # -> fixtures-large/clip   (ignored; ~1.5 GB)

small: tiny configs of each family, the tokenizer corpus, and the preprocessing references for
the images in ../shared/data. large: the real ViT-B/16 configs (OpenAI via open_clip, and
BiomedCLIP), random weights.
"""

import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

import open_clip
from open_clip.tokenizer import SimpleTokenizer

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("MEDFOCUS_DATA", REPO.parent / "shared" / "data"))
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def randomize_(model, seed):
    """Random weights everywhere, including LayerNorm affine and the zero-initialised parts,
    so that a port that ignored any tensor would be caught."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("logit_scale"):
                param.fill_(float(np.log(1 / 0.07)))
                continue
            scale = 0.02 if param.dim() >= 2 else 0.1
            noise = torch.randn(param.shape, generator=gen) * scale
            if "norm" in name.lower() or "ln_" in name or name.endswith("LayerNorm.weight"):
                param.copy_((1.0 + noise) if name.endswith("weight") else noise)
            else:
                param.copy_(noise)


def open_clip_config(model_cfg, image_size):
    return {
        "model_cfg": model_cfg,
        "preprocess_cfg": {
            "mean": list(OPENAI_MEAN),
            "std": list(OPENAI_STD),
            "interpolation": "bicubic",
            "resize_mode": "shortest",
            "size": image_size,
        },
    }


def save_open_clip(model, out_dir, model_cfg, image_size, formats=("bin", "safetensors")):
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if "bin" in formats:
        torch.save(state, out_dir / "open_clip_pytorch_model.bin")
    if "safetensors" in formats:
        save_file(state, str(out_dir / "open_clip_model.safetensors"))
    (out_dir / "open_clip_config.json").write_text(json.dumps(open_clip_config(model_cfg, image_size), indent=2))


def reference_io(out_path, image_size, context_length, vocab_size, eot_id, encode_image, encode_text,
                 logit_scale, seed, pad_id=0, sot_id=None, batch_images=2, batch_texts=3):
    """Random normalised pixels and token rows (each ending in end-of-text, then padding)."""
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.randn(batch_images, 3, image_size, image_size, generator=gen)
    tokens = torch.full((batch_texts, context_length), pad_id, dtype=torch.long)
    lengths = [3, context_length // 2, context_length]
    for row, length in enumerate(lengths[:batch_texts]):
        body = torch.randint(1, min(vocab_size, eot_id) - 1, (length,), generator=gen)
        if sot_id is not None:
            body[0] = sot_id
        body[length - 1] = eot_id
        tokens[row, :length] = body
    with torch.no_grad():
        image_embeds = encode_image(pixels)
        text_embeds = encode_text(tokens)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            "pixels": pixels.contiguous(),
            "tokens": tokens.contiguous(),
            "image_embeds": image_embeds.float().contiguous(),
            "text_embeds": text_embeds.float().contiguous(),
            "logit_scale": torch.tensor([float(logit_scale)]),
        },
        str(out_path),
    )


def gen_open_clip(out_root, ref_root, name, model_cfg, quick_gelu, seed, formats, vision_block_scale=1.0):
    seed_everything(seed)
    cfg = dict(model_cfg)
    if quick_gelu:
        cfg["quick_gelu"] = True
    model = open_clip.model.CLIP(**cfg).eval()
    randomize_(model, seed)
    if vision_block_scale != 1.0:
        # At std 0.02 the image tower's blocks barely mix the patches into the class token, so
        # every image embeds within cosine 0.998 of every other; ×10 spreads them (mean cosine
        # about 0.5), which a test of how heads learn from image differences needs.
        with torch.no_grad():
            for param in model.visual.transformer.parameters():
                if param.dim() == 2:
                    param.mul_(vision_block_scale)
    image_size = cfg["vision_cfg"]["image_size"]
    save_open_clip(model, out_root / name, cfg, image_size, formats)
    text = cfg["text_cfg"]
    vocab = text.get("vocab_size", 49408)
    reference_io(ref_root / f"{name}.safetensors", image_size, text.get("context_length", 77), vocab,
                 vocab - 1, model.encode_image, model.encode_text, model.logit_scale.exp().item(), seed + 1,
                 sot_id=vocab - 2)


def gen_hf_clip(out_root, ref_root, name, seed, vision, text, projection_dim, hidden_act):
    from transformers import CLIPConfig, CLIPModel
    seed_everything(seed)
    config = CLIPConfig(
        text_config=dict(text, hidden_act=hidden_act),
        vision_config=dict(vision, hidden_act=hidden_act),
        projection_dim=projection_dim,
    )
    model = CLIPModel(config).eval()
    randomize_(model, seed)
    out = out_root / name
    model.save_pretrained(out, safe_serialization=True)
    vocab = text["vocab_size"]
    eos = config.text_config.eos_token_id

    def encode_image(pixels):
        return model.get_image_features(pixel_values=pixels).pooler_output \
            if hasattr(model.get_image_features(pixel_values=pixels), "pooler_output") \
            else model.get_image_features(pixel_values=pixels)

    def encode_text(tokens):
        out = model.get_text_features(input_ids=tokens)
        return out.pooler_output if hasattr(out, "pooler_output") else out

    reference_io(ref_root / f"{name}.safetensors", vision["image_size"], text["max_position_embeddings"], vocab,
                 eos, encode_image, encode_text, model.logit_scale.exp().item(), seed + 1,
                 pad_id=config.text_config.pad_token_id, sot_id=config.text_config.bos_token_id)


def train_wordpiece_vocab(path, size):
    """A WordPiece vocabulary learnt from medical text (PubMedBERT's own cannot be downloaded
    here); the tokenizer algorithm is what the parity test checks."""
    from tokenizers import BertWordPieceTokenizer
    corpus = tokenizer_corpus() + [" ".join(MEDICAL_TERMS)] * 3
    tok = BertWordPieceTokenizer(lowercase=True, strip_accents=None, clean_text=True, handle_chinese_chars=True)
    tok.train_from_iterator(corpus, vocab_size=size, min_frequency=1, limit_alphabet=400,
                            special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    path.parent.mkdir(parents=True, exist_ok=True)
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    path.write_text("".join(f"{token}\n" for token, _ in vocab), encoding="utf-8")


def gen_biomedclip(out_root, ref_root, name, seed, vision, bert, embed_dim, context_length, vocab_file=None,
                   safetensors_too=False):
    """open_clip's CustomTextCLIP as BiomedCLIP builds it: timm ViT trunk + linear head, and a
    Hugging Face BERT text tower with CLS pooling and an MLP projection."""
    import timm
    from transformers import BertConfig, BertTokenizerFast
    seed_everything(seed)
    out = out_root / name
    out.mkdir(parents=True, exist_ok=True)
    text_dir = out / "text"
    text_dir.mkdir(exist_ok=True)
    if vocab_file is None:
        train_wordpiece_vocab(text_dir / "vocab.txt", bert.get("vocab_size", 2000))
    else:
        (text_dir / "vocab.txt").write_text(Path(vocab_file).read_text(encoding="utf-8"), encoding="utf-8")
    vocab_size = len((text_dir / "vocab.txt").read_text(encoding="utf-8").splitlines())
    bert_config = BertConfig(**dict(bert, vocab_size=vocab_size))
    bert_config.save_pretrained(text_dir)
    vocab = {token: index for index, token in enumerate((text_dir / "vocab.txt").read_text(encoding="utf-8").splitlines())}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    assert tokenizer("glioma").input_ids[1] != tokenizer.unk_token_id, "vocabulary not taken"
    tokenizer.save_pretrained(text_dir)

    model_cfg = {
        "embed_dim": embed_dim,
        "vision_cfg": {
            "timm_model_name": "vit_base_patch16_224",
            "timm_model_pretrained": False,
            "timm_pool": "",
            "timm_proj": "linear",
            "image_size": vision["img_size"],
        },
        "text_cfg": {
            "hf_model_name": str(text_dir),
            "hf_tokenizer_name": str(text_dir),
            "hf_proj_type": "mlp",
            "hf_pooler_type": "cls_last_hidden_state_pooler",
            "context_length": context_length,
        },
    }
    model = open_clip.model.CustomTextCLIP(embed_dim, model_cfg["vision_cfg"], dict(model_cfg["text_cfg"],
                                                                                    hf_model_pretrained=False))
    if vision != VIT_BASE:
        # A small trunk of the same timm architecture (ViT-B/16 itself is the large fixture).
        model.visual.trunk = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0, **vision)
        model.visual.head.proj = torch.nn.Linear(vision["embed_dim"], embed_dim, bias=False)
    model.eval()
    randomize_(model, seed)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, out / "open_clip_pytorch_model.bin")
    if safetensors_too:
        # BiomedCLIP publishes only the pickle; the browser needs SafeTensors (what
        # `medfocus weights fetch` converts to), so the small fixture carries both.
        save_file(state, str(out / "open_clip_model.safetensors"))
    # As published, the config names the hub repos; our loader reads the text tower from text/.
    model_cfg["text_cfg"]["hf_model_name"] = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
    model_cfg["text_cfg"]["hf_tokenizer_name"] = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
    (out / "open_clip_config.json").write_text(json.dumps(open_clip_config(model_cfg, vision["img_size"]), indent=2))
    reference_io(ref_root / f"{name}.safetensors", vision["img_size"], context_length, vocab_size,
                 tokenizer.sep_token_id, model.encode_image, model.encode_text, model.logit_scale.exp().item(),
                 seed + 1, pad_id=tokenizer.pad_token_id, sot_id=tokenizer.cls_token_id)


VIT_BASE = {"img_size": 224, "patch_size": 16, "embed_dim": 768, "depth": 12, "num_heads": 12}

MEDICAL_TERMS = """glioma meningioma pituitary adenoma notumor no tumor pneumonia normal chest x-ray
radiograph bacterial viral consolidation opacity infiltrate effusion pneumothorax cardiomegaly atelectasis
edema emphysema fibrosis nodule mass lesion hemorrhage infarct ischemia stroke hydrocephalus metastasis
glioblastoma astrocytoma oligodendroglioma schwannoma craniopharyngioma ependymoma medulloblastoma
lymphoma sarcoma carcinoma adenocarcinoma melanoma benign malignant contrast-enhanced gadolinium T1-weighted
T2-weighted FLAIR DWI ADC axial coronal sagittal MRI CT ultrasound echocardiogram mammogram biopsy
histopathology cytology dermoscopy fundus retina OCT tuberculosis COVID-19 SARS-CoV-2 ARDS COPD
hepatomegaly splenomegaly cholecystitis appendicitis diverticulitis pancreatitis nephrolithiasis
hydronephrosis osteoporosis osteoarthritis fracture dislocation scoliosis spondylolisthesis
thrombosis embolism aneurysm stenosis occlusion calcification necrosis abscess cyst polyp""".split()


def tokenizer_corpus():
    """>= 200 strings: medical terms, prompt templates, punctuation, unicode, over-length."""
    terms = MEDICAL_TERMS
    templates = ["a photo of a {}.", "an MRI scan showing {}", "a chest X-ray with {}!", "{}",
                 "This is an image of {} (confirmed by biopsy).", "no evidence of {}; follow-up in 3 months"]
    corpus = [templates[i % len(templates)].format(term) for i, term in enumerate(terms)]
    corpus += [
        "", " ", "   leading and trailing spaces   ", "tabs\tand\nnewlines\r\nmixed", "UPPER CASE TEXT",
        "MiXeD CaSe GlIoMa", "it's the patient's 2nd scan; they'll see what's wrong, we've noted it",
        "hello!!! ??? ... ,,, ;;; :::", "(parentheses) [brackets] {braces} <angles>", "a/b\\c|d_e-f+g=h",
        "email: doctor@hospital.org, url: https://example.org/path?q=1&r=2", "3.5 mm", "10x10 cm^2", "1,000,000",
        "0.001%", "#hashtag @mention $100 50% 3*4=12", "~tilde` backtick ^caret", "\"double quotes\" 'single'",
        "“curly double” ‘curly single’ „low“ «guillemets»", "Sjögren syndrome", "café au lait spots",
        "naïve coöperate", "Ménière's disease", "Guillain–Barré syndrome", "β-amyloid plaques", "α-synuclein",
        "µg/mL and μg/mL", "≥ 5 cm ≤ 2 mm ± 0.3", "°C 37.5 °F", "→ ← ↑ ↓", "Ω ohm", "½ ¼ ¾", "x² y³",
        "ﬁbrosis ﬂuid ﬀ ﬃ", "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ １２３", "肺炎 (pneumonia in Chinese)", "脳腫瘍",
        "폐렴", "пневмония", "الالتهاب الرئوي", "न्यूमोनिया", "ปอดบวม", "emoji 🫁🧠🩻 x-ray 😷",
        "zero\u200bwidth space", "non\u00a0breaking space", "soft\u00adhyphen", "combining e\u0301 accent",
        "precomposed é accent", "ﬁ ligature at start", "ǅ digraph", "İstanbul", "ΣΊΣΥΦΟΣ final sigma",
        "straße", "&amp; &lt;b&gt; &quot;entities&quot; &#39;apostrophe&#39; &eacute; &nbsp;x", "&amp;amp; double",
        "<start_of_text> literal markers <end_of_text>", "word" * 20, "a" * 300,
        "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
        "1234567890 0987654321", "v1.2.3-rc.4", "COVID19 covid-19 Covid_19", "T1w/T2w ratio",
        "left-sided pleural effusion with right lower lobe consolidation",
        "no acute cardiopulmonary abnormality", "status post median sternotomy",
    ]
    long_report = ("Findings: there is a large heterogeneously enhancing mass in the left frontal lobe with "
                   "surrounding vasogenic edema and 5 mm midline shift; differential includes glioblastoma, "
                   "metastasis, and lymphoma. Impression: findings most consistent with high-grade glioma. ")
    corpus += [long_report, long_report * 3, " ".join(terms), ", ".join(terms[:60]), "! " * 100]
    corpus += [f"a photo of a {a} and {b}" for a, b in zip(terms[::2], terms[1::2])][:40]
    return corpus


def gen_tokenizer_corpus(ref_root, bert_vocab_dir):
    from transformers import BertTokenizerFast
    from open_clip.tokenizer import HFTokenizer
    corpus = tokenizer_corpus()
    assert len(corpus) >= 200, len(corpus)
    clip_tok = open_clip.get_tokenizer("ViT-B-16")
    clip_ids = clip_tok(corpus).tolist()
    bert = HFTokenizer(str(bert_vocab_dir), context_length=256)
    bert_ids = bert(corpus).tolist()

    def trim(rows):
        out = []
        for row in rows:
            while row and row[-1] == 0:
                row = row[:-1]
            out.append(row)
        return out

    (ref_root / "tokenizer_corpus.json").write_text(json.dumps({
        "strings": corpus,
        "clip_context_length": 77,
        "clip_ids": trim(clip_ids),
        "bert_context_length": 256,
        "bert_ids": trim(bert_ids),
    }, ensure_ascii=False, indent=0), encoding="utf-8")


def gen_preprocess(ref_root, image_size=224):
    """open_clip's eval transform up to (not including) ToTensor/Normalize, which are exact
    arithmetic: resize shortest side (bicubic, PIL), centre crop, to RGB. Saved losslessly."""
    transform = open_clip.image_transform(image_size, is_train=False, mean=OPENAI_MEAN, std=OPENAI_STD)
    steps = transform.transforms
    out_dir = ref_root / "preprocess"
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {}
    for path in sorted(SHARED_DATA.rglob("*")):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        image = Image.open(path)
        for step in steps:
            if type(step).__name__ in ("MaybeToTensor", "ToTensor"):
                break
            image = step(image)
        image = image.convert("RGB")
        rel = path.relative_to(SHARED_DATA)
        name = str(rel).replace("/", "__").rsplit(".", 1)[0] + ".png"
        image.save(out_dir / name)
        index[str(rel)] = name
    # Lossless inputs isolate the resampling from the JPEG decoder: synthetic images (grey and
    # RGB, up- and downscaled) and Pillow's decode of one shared JPEG, each with Pillow's output.
    rng = np.random.default_rng(7)
    exact = {}
    for name, mode, (w, h) in [("synthetic-rgb", "RGB", (523, 397)), ("synthetic-grey-up", "L", (97, 133)),
                               ("synthetic-grey-down", "L", (640, 480))]:
        yy, xx = np.mgrid[0:h, 0:w]
        base = 127 + 100 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
        channels = 3 if mode == "RGB" else 1
        noise = rng.integers(-20, 21, size=(h, w, channels))
        pixels = np.clip(base[..., None] + noise + np.arange(channels) * 30, 0, 255).astype(np.uint8)
        exact[name] = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
    exact["decoded-Te-no_0021"] = Image.open(SHARED_DATA / "brain-mri/notumor/Te-no_0021.jpg").convert("RGB")
    exact_index = {}
    for name, image in exact.items():
        image.save(out_dir / f"{name}.input.png")
        for step in steps:
            if type(step).__name__ in ("MaybeToTensor", "ToTensor"):
                break
            image = step(image)
        image.convert("RGB").save(out_dir / f"{name}.output.png")
        exact_index[name] = {"input": f"{name}.input.png", "output": f"{name}.output.png"}
    (out_dir / "index.json").write_text(json.dumps({"image_size": image_size, "mean": OPENAI_MEAN,
                                                    "std": OPENAI_STD, "images": index, "exact": exact_index},
                                                   indent=1))


def small():
    out_root = REPO / "tests" / "fixtures" / "clip"
    ref_root = out_root / "reference"
    ref_root.mkdir(parents=True, exist_ok=True)
    gen_open_clip(out_root, ref_root, "openclip-tiny", {
        "embed_dim": 24,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 2},
    }, quick_gelu=True, seed=1, formats=("bin", "safetensors"))
    gen_open_clip(out_root, ref_root, "openclip-tiny-gelu", {
        "embed_dim": 24,
        "vision_cfg": {"image_size": 48, "layers": 3, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 20, "vocab_size": 500, "width": 32, "heads": 4, "layers": 1},
    }, quick_gelu=False, seed=2, formats=("safetensors",))
    gen_hf_clip(out_root, ref_root, "hf-clip-tiny", seed=3,
                vision={"image_size": 32, "patch_size": 8, "hidden_size": 48, "intermediate_size": 96,
                        "num_hidden_layers": 2, "num_attention_heads": 3},
                text={"vocab_size": 1000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                      "num_attention_heads": 2, "max_position_embeddings": 16, "eos_token_id": 999,
                      "bos_token_id": 998, "pad_token_id": 1},
                projection_dim=24, hidden_act="quick_gelu")
    gen_biomedclip(out_root, ref_root, "biomedclip-tiny", seed=4,
                   vision={"img_size": 32, "patch_size": 8, "embed_dim": 128, "depth": 2, "num_heads": 2},
                   bert={"vocab_size": 1500, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                         "intermediate_size": 256, "max_position_embeddings": 64},
                   embed_dim=24, context_length=64, safetensors_too=True)
    gen_tokenizer_corpus(ref_root, out_root / "biomedclip-tiny" / "text")
    gen_preprocess(ref_root)


def large():
    out_root = REPO / "fixtures-large" / "clip"
    ref_root = out_root / "reference"
    cfg = json.loads((Path(open_clip.__file__).parent / "model_configs" / "ViT-B-16.json").read_text())
    gen_open_clip(out_root, ref_root, "openai-vit-b-16", cfg, quick_gelu=True, seed=11, formats=("bin",))
    gen_biomedclip(out_root, ref_root, "biomedclip-vit-b-16", seed=12, vision=VIT_BASE,
                   bert={"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                         "intermediate_size": 3072, "max_position_embeddings": 512},
                   embed_dim=512, context_length=256,
                   vocab_file=REPO / "tests" / "fixtures" / "clip" / "biomedclip-tiny" / "text" / "vocab.txt")


def spread():
    """openclip-tiny's architecture and seed with an image tower that tells images apart: what
    the federated accuracy test (federated/tests) trains heads on."""
    out_root = REPO / "tests" / "fixtures" / "clip"
    gen_open_clip(out_root, out_root / "reference", "openclip-tiny-spread", {
        "embed_dim": 24,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 2},
    }, quick_gelu=True, seed=1, formats=("safetensors",), vision_block_scale=10.0)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "small"
    {"small": small, "large": large, "spread": spread}[which]()
